"""Progress on the terminal (tqdm) for the steps that take more than a second; `-v` logs each step as it starts.

Shown on stderr only when it is a terminal, unless the command line asks for it (`--progress`) or
against it (`--no-progress`): a pipe or a log file gets no bars.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Iterator

log = logging.getLogger("kwscc")

SHOW_AFTER = 1.0  # seconds: quicker steps never draw anything
REFRESH = 0.25  # seconds between redraws of a step's elapsed time

_wanted: bool | None = None  # None: only on a terminal


def configure(wanted: bool | None) -> None:
    """True/False: always/never show progress; None: only when stderr is a terminal."""
    global _wanted
    _wanted = wanted


def enabled() -> bool:
    if _wanted is not None:
        return _wanted
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def logging_above_bars() -> AbstractContextManager:
    """While bars may show, log lines go above them instead of through them."""
    if not enabled():
        return nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm  # imports asyncio (0.1-0.2 s): only for a terminal

    return logging_redirect_tqdm([log])


class _NoBar:
    """What bar() gives when nothing is shown: tqdm is not even imported (it costs 0.1 s)."""

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass


def bar(total: int, label: str, unit: str = "sample"):
    """A counting bar for a loop over `total` items (samples, layers): a context manager with update(n)."""
    if not enabled():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit=unit, file=sys.stderr, leave=False, delay=SHOW_AFTER,
                dynamic_ncols=True)


@contextmanager
def step(label: str) -> Iterator[None]:
    """One step without a count: logged at its start (-v), its elapsed time shown after a second."""
    log.info("%s ...", label)
    start = time.monotonic()
    if not enabled():
        yield
    else:
        with _Ticker(label):
            yield
    log.debug("%s: %.1f s", label, time.monotonic() - start)


class _Ticker:
    """A tqdm line `label 0:03` redrawn by a background thread, since the step itself reports nothing."""

    def __init__(self, label: str) -> None:
        from tqdm import tqdm

        self.line = tqdm(total=None, desc=label, bar_format="{desc} {elapsed}", file=sys.stderr, leave=False,
                         delay=SHOW_AFTER, dynamic_ncols=True)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(REFRESH):
            self.line.update(0)  # redraws the elapsed time once tqdm's delay has passed

    def __enter__(self) -> "_Ticker":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.line.close()
