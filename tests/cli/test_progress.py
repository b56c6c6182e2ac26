"""Progress: bars on stderr only on a terminal or with --progress, never on a pipe by default;
-v logs each step when it starts."""
from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from kwscc import progress
from kwscc.cli import main

INT8_MODEL = Path(__file__).resolve().parents[2] / "examples" / "kws" / "ds_cnn_s_int8.tflite"  # no data needed


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def show_at_once(monkeypatch):
    """Draw every step at once (not after a second) so a quick compile shows its progress too."""
    monkeypatch.setattr(progress, "SHOW_AFTER", 0)
    yield
    progress.configure(None)


def compile_to(tmp_path, *extra) -> int:
    return main([str(INT8_MODEL), "-o", str(tmp_path / "out"), *extra])


def test_no_progress_on_a_pipe(tmp_path, capsys):
    assert compile_to(tmp_path) == 0
    assert capsys.readouterr().err == ""


def test_progress_on_a_pipe_when_asked(tmp_path, capsys):
    assert compile_to(tmp_path, "--progress") == 0
    assert "reading ds_cnn_s_int8.tflite" in capsys.readouterr().err


@pytest.mark.parametrize("flag, shown", [((), True), (("--no-progress",), False)])
def test_progress_on_a_terminal_unless_refused(flag, shown, tmp_path, monkeypatch, capsys):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert compile_to(tmp_path, *flag) == 0
    assert ("reading ds_cnn_s_int8.tflite" in terminal.getvalue()) == shown
    assert "reading" not in capsys.readouterr().out  # bars never mix into the printed report


def test_counting_bar_reaches_its_total(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with progress.bar(10, "calibrating") as shown:
        shown.update(4)
        shown.update(6)
    assert "calibrating" in terminal.getvalue() and "/10 " in terminal.getvalue()


def test_verbose_logs_a_step_when_it_starts(caplog):
    caplog.set_level(logging.INFO, logger="kwscc")
    with progress.step("reading a model"):
        assert [r.getMessage() for r in caplog.records] == ["reading a model ..."]


def test_verbose_compile_logs_steps_in_order(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="kwscc")
    assert compile_to(tmp_path, "-v") == 0
    messages = [r.getMessage() for r in caplog.records]
    starts = [messages.index(f"{step} ...") for step in ("reading ds_cnn_s_int8.tflite", "optimising the graph",
                                                          "rendering C", "building the report")]
    assert starts == sorted(starts)
