"""--ranges FILE: summaries saved once and re-applied with any method; bad files are clear errors."""
from __future__ import annotations

import json

import pytest

from kwscc.data import load_inputs
from kwscc.errors import DataError
from kwscc.frontends import read_model
from kwscc.passes import run_pipeline
from kwscc.quant.calibrate import calibrate, collect_ranges, load_ranges, ranges_for, save_ranges
from kwscc.quant.methods import METHODS


def _graph_and_feeds(small_models, name="convnet"):
    path, npz = small_models[name]
    graph = run_pipeline(read_model(path))
    return path, graph, load_inputs(f"{npz}:calib", graph)


def test_roundtrip_gives_the_same_ranges_for_every_method(small_models, tmp_path):
    path, graph, feeds = _graph_and_feeds(small_models)
    summaries = calibrate(graph, feeds, path)
    save_ranges(tmp_path / "r.json", summaries, {"model": path.name})
    loaded = load_ranges(tmp_path / "r.json", graph)
    for method in METHODS:
        assert ranges_for(loaded, method) == ranges_for(summaries, method), method


def test_max_method_is_the_exact_min_max(small_models):
    path, graph, feeds = _graph_and_feeds(small_models)
    exact = collect_ranges(graph, feeds, path)  # the original min/max collector
    assert ranges_for(calibrate(graph, feeds, path), "max") == exact


def test_plain_min_max_json_is_accepted(small_models, tmp_path):
    path, graph, feeds = _graph_and_feeds(small_models, "mlp")
    plain = {name: list(r) for name, r in collect_ranges(graph, feeds, path).items()}
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    loaded = load_ranges(tmp_path / "plain.json", graph)
    assert ranges_for(loaded, "mse") == ranges_for(loaded, "max")  # no histogram: the max rule


@pytest.mark.parametrize("text, message", [
    ("not json", "cannot read"),
    ("[1, 2]", "JSON object"),
    ('{"tensors": {"x": {"min": 2, "max": 1}}}', "invalid range"),
    ('{"tensors": {"x": {"min": 0}}}', "min and a max"),
])
def test_bad_ranges_files(tmp_path, text, message):
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(DataError, match=message):
        load_ranges(tmp_path / "bad.json")


def test_ranges_file_of_another_model_is_refused(small_models, tmp_path):
    path, graph, feeds = _graph_and_feeds(small_models, "mlp")
    save_ranges(tmp_path / "mlp.json", calibrate(graph, feeds, path))
    _, conv_graph, _ = _graph_and_feeds(small_models, "convnet")
    with pytest.raises(DataError, match="no range for"):
        load_ranges(tmp_path / "mlp.json", conv_graph)
