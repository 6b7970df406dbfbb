"""Layers larger than memory: streamed and in-memory runs agree, probes that cannot stream
subsample with a recorded warning, and every probe states its memory need."""

from pathlib import Path

import numpy as np
import pytest

import geoprobe
from geoprobe.decoding import group_folds, ridge_cv_predict
from geoprobe.probe import Probe
from geoprobe.probes.decodability import LinearDecodability
from geoprobe.probes.fracture import Fracture
from geoprobe.registry import available, get_probe
from geoprobe.stats import subsample_units
from geoprobe.testing import check_probe


def _relative(a, b) -> float:
    """Largest relative difference between the finite metrics of two results."""
    return max(abs(b.metric(m.name, **m.labels).value - m.value) / max(abs(m.value), 1e-300)
               for m in a.metrics if np.isfinite(m.value))


def _planted(n=600, d=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(0.3, 2, d) + 1.0
    Y = X @ rng.standard_normal((d, 2)) + rng.standard_normal((n, 2)) * [0.5, 3.0]
    return X.astype(np.float16), Y


@pytest.mark.parametrize("select", ["gcv", "loo"])
def test_ridge_from_chunks_of_a_memmap_equals_the_whole_array(tmp_path, select):
    X, Y = _planted()
    folds = group_folds(len(X), 5, groups=np.arange(len(X)) // 7, rng=1)
    whole = ridge_cv_predict(X.astype(np.float64), Y, folds, select=select,
                             chunk_rows=len(X))
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    for chunk in (1, 37, 250):  # rows of one fold spread over many chunks, and one per chunk
        got = ridge_cv_predict(mapped, Y, folds, select=select, chunk_rows=chunk)
        assert np.array_equal(got.alphas, whole.alphas)
        np.testing.assert_allclose(got.predictions, whole.predictions, rtol=1e-9, atol=1e-12)


def test_ridge_predictions_are_out_of_fold_after_streaming():
    # a planted row whose target is far off must not be fitted by the fold that predicts it
    X, Y = _planted(300, 6)
    Y = Y.copy()
    Y[5] += 1e4
    folds = group_folds(len(X), 3, rng=0)
    pred = ridge_cv_predict(X, Y, folds, chunk_rows=16).predictions
    assert abs(pred[5, 0] - Y[5, 0]) > 5e3


def test_linear_decodability_streams_a_memmap_in_chunks_with_the_same_numbers(tmp_path):
    X, Y = _planted(400, 8, seed=3)
    items = {"a": Y[:, 0], "b": Y[:, 1], "episode": np.arange(400) // 8}
    memory = geoprobe.EmbeddingSet(np.stack([X, X * 2 + 1]), items, source="memory")
    disk = geoprobe.EmbeddingSet.open(memory.save(tmp_path / "e.gpemb"))
    assert isinstance(disk.layer(0), np.memmap)
    kw = dict(targets=["a", "b"], group="episode", mlp=False, n_boot=50, n_splits=4)
    a = LinearDecodability(**kw).run(memory, seed=2, progress=False)
    b = LinearDecodability(chunk_rows=23, **kw).run(disk, seed=2, progress=False)
    assert len(a.metrics) == len(b.metrics) > 20
    assert _relative(a, b) < 1e-9
    assert a.metric("r2", layer="0", target="a").value > 0.5  # a real fit, not a degenerate one


def test_subsample_units_keeps_whole_groups_within_the_bound():
    groups = np.repeat(np.arange(100), np.arange(100) % 7 + 1)
    rows = subsample_units(groups, len(groups), 120, np.random.default_rng(0))
    assert 100 < len(rows) <= 120 and np.all(np.diff(rows) > 0)
    kept = np.unique(groups[rows])
    assert len(rows) == np.isin(groups, kept).sum()  # every kept group is whole
    again = subsample_units(groups, len(groups), 120, np.random.default_rng(0))
    assert np.array_equal(rows, again)


def test_fracture_subsamples_a_large_set_with_a_recorded_warning(caplog):
    ex = Fracture.example_input(np.random.default_rng(0))
    params = {**ex.params, "n_boot": 5, "n_resamples": 2}
    n = ex.embeddings.n_items
    full = Fracture(**params).run(ex.embeddings, seed=0, progress=False)
    assert "warnings" not in full.info and full.info["rows_used"] == n
    assert not caplog.records
    small = Fracture(max_rows=100, **params).run(ex.embeddings, seed=0, progress=False)
    (warning,) = small.info["warnings"]
    assert f"{n} rows is more than max_rows=100" in warning and "group" in warning
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("geoprobe.probe", "WARNING", warning)]
    assert small.info["rows_used"] <= 100 and small.info["n_items"] == n
    assert small.metric("global_score", layer=small.info["layers"][0]).n < full.metric(
        "global_score", layer=full.info["layers"][0]).n


def test_every_registered_probe_states_its_memory():
    for name in available():
        memory = get_probe(name).memory
        assert memory.startswith(("streams", "in memory")), (name, memory)
    assert get_probe("covariance-spectrum").memory.startswith("streams")
    assert get_probe("linear-decodability").memory.startswith("streams")
    assert get_probe("fracture").memory.startswith("in memory")


def test_check_probe_requires_a_memory_statement(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "plugin_pkg"))
    from geoprobe_testplugin import MeanNorm  # the test plug-in

    class Silent(MeanNorm):
        memory = ""

    with pytest.raises(AssertionError, match="memory must be one line beginning with"):
        check_probe(Silent, tmp_dir=tmp_path)
    assert Probe.memory == ""  # the base class states nothing: each probe must


def test_list_shows_each_probes_memory(capsys):
    from geoprobe.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "memory: streams row chunks" in out and "memory: in memory" in out


def test_a_probe_warning_reaches_stderr_and_results_json(tmp_path, capsys):
    import json

    from geoprobe.cli import main

    ex = Fracture.example_input(np.random.default_rng(0))
    path = ex.embeddings.save(tmp_path / "e.gpemb")
    assert main(["probe", "fracture", str(path), "--param", "target=factor", "--param",
                 "group=group", "--param", "max_rows=100", "--param", "n_boot=5", "--param",
                 "n_resamples=2", "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1 and err[0].startswith("geoprobe: warning: fracture: ")
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    (recorded,) = doc["warnings"]
    assert "max_rows=100" in recorded and recorded.startswith("probe 'fracture': ")
    # -qq hides warnings on stderr, but the results file still records them
    assert main(["probe", "fracture", str(path), "--param", "target=factor", "--param",
                 "group=group", "--param", "max_rows=100", "--param", "n_boot=5", "--param",
                 "n_resamples=2", "-o", str(tmp_path / "quiet"), "--no-progress", "-qq"]) == 0
    assert capsys.readouterr() == ("", "")
    doc = json.loads((tmp_path / "quiet" / "results.json").read_text())
    assert len(doc["warnings"]) == 1
