"""Checks of untrusted input, run before any pass: each problem becomes one clear KwsccError.

- limits: the documented size limits (any tensor, the arena, data files), checked before allocating;
- onnx_model: an ONNX model's structure (names, initializers, external data) and each node's
  attributes and input shapes, before the reader turns the node into IR;
- tflite_model: a parsed TFLite model's operators (options, tensor types);
- graph: every tensor of an IR graph within the limits and every constant finite (after reading
  and after each pass, so that values constant folding creates are checked too).
"""
