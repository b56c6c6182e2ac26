"""Session fixtures of the end-to-end tests: each real model is compiled once (tests.e2e.kws_shared)."""
from __future__ import annotations

import pytest

from kwscc.cli import main
from tests.e2e import kws_shared as kws


@pytest.fixture(scope="session")
def kws_compiled():
    """kws_compiled(model, rounding=..., cpu=..., weights=...) -> Compiled, cached for the session."""
    return kws.compiled


@pytest.fixture(scope="session")
def ds_cnn_s_cli_outputs(tmp_path_factory):
    """ds_cnn_s compiled by the CLI twice, with identical argv from two working directories:
    (tmp/a/out, tmp/b/out). Both runs pass --with-host-kernels."""
    base = tmp_path_factory.mktemp("ds_cnn_s_cli")
    outs = []
    for sub in ("a", "b"):
        work = base / sub
        work.mkdir()
        with kws.chdir(work):
            rc = main(kws.compile_argv("ds_cnn_s", "out", "--with-host-kernels"))
        assert rc == 0
        outs.append(work / "out")
    return tuple(outs)
