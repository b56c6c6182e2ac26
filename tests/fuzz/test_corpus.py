"""The malformed-input corpus (tests/fuzz/corpus.py): every case must be refused cleanly.

CI runs a sample (the first cases of every cause); benchmarks/fuzz_corpus.py runs all of them.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from kwscc import driver
from kwscc.cli import main
from tests.fuzz import corpus

SAMPLE_PER_CAUSE = 2
ALL = list(corpus.cases())
SAMPLE = [c for c in ALL if int(c.name.rsplit("-", 1)[1]) < SAMPLE_PER_CAUSE]


def test_corpus_is_large_and_names_every_cause():
    assert len(ALL) >= 1000
    assert len({c.name for c in ALL}) == len(ALL)
    causes = {c.cause for c in ALL}
    assert causes == set(corpus.all_families())
    assert all(sum(c.cause == cause for c in ALL) >= 2 for cause in causes)


def test_corpus_is_deterministic(tmp_path):
    """The same seed gives the same cases and the same malformed files."""
    assert [c.name for c in corpus.cases(seed=3)] == [c.name for c in corpus.cases(seed=3)]
    built = []
    for i in range(2):
        case = next(c for c in corpus.cases(seed=3) if c.cause == "conv_stride")
        folder = tmp_path / str(i)
        folder.mkdir()
        built.append(Path(case.build(folder)[0]).read_bytes())
    assert built[0] == built[1]


@pytest.mark.parametrize("case", SAMPLE, ids=[c.name for c in SAMPLE])
def test_refused_cleanly(case, tmp_path):
    problems, seconds, err = corpus.run_case(case, tmp_path)
    assert not problems, problems
    assert seconds < corpus.TIME_LIMIT


def test_sigterm_during_the_final_write_leaves_nothing(tmp_path, monkeypatch, capsys):
    """SIGTERM while files move into OUT: the staging folder and the new OUT are removed, exit 143."""
    real_replace = os.replace

    def replace_then_terminate(src, dst):
        real_replace(src, dst)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(driver.os, "replace", replace_then_terminate)
    out = tmp_path / "OUT"
    rc = main([str(corpus.KWS / "dnn_s_int8.tflite"), "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 128 + signal.SIGTERM
    assert err == ["kwscc: terminated"]
    assert not out.exists()
    assert not list(tmp_path.glob("**/.kwscc-*"))
