"""kwscc: compile neural networks to C for microcontrollers."""
__version__ = "0.1.0"
