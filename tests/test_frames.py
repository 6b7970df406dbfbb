"""Frame sensitivity finds exactly the planted invariances."""

import numpy as np
import pytest

from geoprobe import make_probe
from geoprobe.datasets.synthetic import planted_spectrum
from geoprobe.errors import GeoprobeError, SuiteError
from geoprobe.frames import GROUPS, frame_sensitivity, random_frame, reframe
from geoprobe.metric import Metric
from geoprobe.probe import Probe


@pytest.mark.parametrize("group", GROUPS)
def test_random_frames_belong_to_their_group(group):
    A = random_frame(group, 12, np.random.default_rng(0), max_condition=5.0)
    s = np.linalg.svd(A, compute_uv=False)
    assert s.max() / s.min() <= 5.0 + 1e-9
    is_orthogonal = np.allclose(A.T @ A, np.eye(12))
    is_diagonal = np.allclose(A, np.diag(np.diag(A)))
    assert is_orthogonal == (group == "orthogonal")
    assert is_diagonal == (group == "diagonal")
    if group == "diagonal":
        assert (np.diag(A) > 0).all()
    np.testing.assert_array_equal(A, random_frame(group, 12, np.random.default_rng(0), 5.0))
    with pytest.raises(GeoprobeError, match="unknown group"):
        random_frame("affine", 3, np.random.default_rng(0))


def test_reframe_maps_each_layer_by_its_own_draw():
    emb = planted_spectrum(n_items=50, dim=6, ranks=(6, 5), seed=0)
    framed = reframe(emb, "orthogonal", np.random.default_rng(1))
    X0, X1 = (emb.layer(i, dtype=np.float64) for i in range(2))
    A0 = np.linalg.lstsq(X0, framed.layer(0), rcond=None)[0]
    A1 = np.linalg.lstsq(X1, framed.layer(1), rcond=None)[0]
    np.testing.assert_allclose(A0.T @ A0, np.eye(6), atol=1e-4)  # orthogonal, as drawn
    assert not np.allclose(A0, A1, atol=1e-3)                     # independent per layer
    assert framed.layer_names == emb.layer_names and list(framed.ids) == list(emb.ids)


class Readouts(Probe):
    """Two statistics with known invariances, without intervals (exact tolerance):
    the in-sample R^2 of least squares on a planted target (invariant under any invertible
    map) and the mean cosine between items (invariant under orthogonal maps only)."""

    name = "readouts"
    metric_directions = {"ols_r2": True, "mean_cosine": None}

    def evaluate(self, ctx):
        y = ctx.column("target")
        metrics = []
        for layer, X in ctx.iter_layers():
            Xc = np.hstack([X, np.ones((len(X), 1))])
            resid = y - Xc @ np.linalg.lstsq(Xc, y, rcond=None)[0]
            unit = X / np.linalg.norm(X, axis=1, keepdims=True)
            metrics += [Metric("ols_r2", 1 - resid.var() / y.var(), labels={"layer": layer}),
                        Metric("mean_cosine", float((unit @ unit.T).mean()),
                               labels={"layer": layer})]
        return self.result(ctx, metrics)


def dependence(rows):
    return {(r["metric"], r["group"]): r["dependent"] for r in rows
            if r["labels"].get("layer", "") in ("", "rank8")}


def test_planted_invariances_are_found_exactly():
    emb = planted_spectrum(n_items=400, dim=8, ranks=(8,), episode_length=10, seed=2)
    rng = np.random.default_rng(3)
    emb = emb.with_items({**{c: emb.items[c] for c in emb.items.names},
                          "target": emb.layer(0, dtype=np.float64) @ rng.standard_normal(8)
                          + 0.5 * rng.standard_normal(400)})
    readouts = Readouts()
    got = dependence(frame_sensitivity(readouts, emb, readouts.run(emb, progress=False),
                                       n_frames=3))
    assert got == {("ols_r2", "orthogonal"): False, ("ols_r2", "diagonal"): False,
                   ("ols_r2", "linear"): False, ("mean_cosine", "orthogonal"): False,
                   ("mean_cosine", "diagonal"): True, ("mean_cosine", "linear"): True}

    spectrum = make_probe("covariance-spectrum", group="episode", n_boot=30)
    rows = frame_sensitivity(spectrum, emb, spectrum.run(emb, seed=0, progress=False),
                             n_frames=3, seed=0)
    got = dependence(rows)
    for name in ("rankme", "participation_ratio"):  # functions of the singular values
        assert got[name, "orthogonal"] is False
        assert got[name, "diagonal"] is True and got[name, "linear"] is True
    row = next(r for r in rows if r["metric"] == "rankme" and r["group"] == "diagonal")
    assert row["frame_min"] < row["value"] - row["ci_width"]  # rescaling lowers RankMe


def test_suite_option_writes_frames_and_report(tmp_path):
    from geoprobe.runner import run_suite
    from geoprobe.suite import load_suite

    suite = load_suite("planted", ["sources.planted.params.n_items=400",
                                   "sources.planted.params.dim=8",
                                   "sources.planted.params.ranks=[8, 2]",
                                   "probes.spectrum.params.n_boot=20"])
    doc = run_suite(suite, tmp_path / "o", show_progress=False, frames=("orthogonal",),
                    n_frames=2)
    rows = doc["frames"]["probes"]["spectrum"]
    assert {r["group"] for r in rows} == {"orthogonal"}
    assert not any(r["dependent"] for r in rows if r["metric"] == "rankme")
    assert "Frame sensitivity" in (tmp_path / "o" / "report.md").read_text()
    with pytest.raises(SuiteError, match="unknown group"):
        run_suite(suite, tmp_path / "p", frames=("shear",))


def test_a_probe_refusing_reframed_input_gets_no_verdict():
    from geoprobe.registry import get_probe

    cls = get_probe("ease")  # reads 0/1 interactions, which no change of frame preserves
    ex = cls.example_input(np.random.default_rng(0))
    probe = cls(**ex.params)
    result = probe.run(ex.embeddings, seed=0, twin=False, progress=False)
    rows = frame_sensitivity(probe, ex.embeddings, result, groups=("diagonal",), n_frames=1)
    assert rows and all(r["dependent"] is None and "0/1" in r["refused"] for r in rows)
