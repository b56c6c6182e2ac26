"""Run the whole malformed-input corpus (tests/fuzz/corpus.py) and print the counts per cause.

    python benchmarks/fuzz_corpus.py [--seed N] [--every N] [--only CAUSE] [--show]

Every case must exit 2 with one `kwscc: error:` line, no internal error, nothing written, in time;
the exit status is 1 if any case did not. CI runs a sample of it (tests/fuzz/test_corpus.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.corpus import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
