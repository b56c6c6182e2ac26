"""python -m kwscc"""
import sys

from kwscc.cli import main

sys.exit(main())
