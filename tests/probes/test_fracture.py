"""Planted tests of the fracture probe: a unified and a fractured code of one factor."""

import numpy as np
import pytest
import torch

from geoprobe import EmbeddingSet, ProbeInputError
from geoprobe.datasets.fracture import (planted_fracture, planted_fracture_model,
                                        planted_transfer_ratio)
from geoprobe.decoding import ridge_cv_predict
from geoprobe.probe import ProbeResult
from geoprobe.probes.fracture import (
    Fracture, covariance_root, distinct_features, fracture_table, leace, mean_pairwise_cosine,
    ridge_map, weight_sweep,
)


def test_ridge_map_reproduces_the_engines_predictions():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6))
    Y = X @ rng.standard_normal((6, 2)) + 0.1 * rng.standard_normal((200, 2)) + 3.0
    train = np.arange(150)
    W, b = ridge_map(X, Y, train)
    folds = np.r_[np.zeros(150, int), np.ones(50, int)]
    engine = ridge_cv_predict(X, Y, folds).predictions[150:]
    np.testing.assert_allclose(X[150:] @ W + b, engine, rtol=1e-8, atol=1e-8)


def test_leace_removes_all_linear_information_and_only_it():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2000, 8)) @ rng.standard_normal((8, 8))
    z = X @ rng.standard_normal(8) + rng.standard_normal(2000)
    mu, E = leace(X, z[:, None])
    Xe = X - (X - mu) @ E.T
    cross = (Xe - Xe.mean(0)).T @ (z - z.mean()) / len(z)
    assert np.abs(cross).max() < 1e-9 * np.abs(X).max() * np.abs(z).max()
    assert np.linalg.matrix_rank(E, tol=1e-8) == 1  # one target: one direction erased


def test_distinct_features_counts_planted_duplicates():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((500, 10))
    B = np.c_[A[:, :4] * -2.0 + 1e-4 * rng.standard_normal((500, 4)),  # 4 copies (sign-flipped)
              rng.standard_normal((500, 5)), np.ones((500, 1))]        # 5 novel, 1 constant
    n_distinct, n_live, stacked = distinct_features([A, B])
    assert (n_distinct, n_live) == (15, 19)
    # centred spectrum: 11 unit-variance directions and 4 of variance 1 + 4 (copy pairs)
    s = np.r_[np.ones(11), np.full(4, 5 ** 0.5)]
    p = s / s.sum()
    assert stacked == pytest.approx(np.exp(-(p * np.log(p)).sum()), abs=0.3)


def test_mean_pairwise_cosine():
    d = np.array([[[1.0], [0.0]], [[0.0], [1.0]], [[1.0], [1.0]]])
    assert mean_pairwise_cosine(d) == pytest.approx((0 + 2 ** -0.5 + 2 ** -0.5) / 3)
    # Under the data-covariance inner product, weight on a direction the data never visit
    # does not count: [1, 0] and [1, 1] are the same readout when the 2nd coordinate is constant.
    X = np.c_[np.random.default_rng(0).standard_normal(100), np.full(100, 3.0)]
    same = np.array([[[1.0], [0.0]], [[1.0], [1.0]]])
    assert mean_pairwise_cosine(same, covariance_root(X)) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def planted_results():
    out = {}
    for kind in ("unified", "fractured"):
        emb = planted_fracture(kind, n_items=800, dim=16, seed=3)
        model = planted_fracture_model(kind, dim=12, hidden=16)
        inputs = torch.as_tensor(np.c_[emb.items["factor"], emb.items["other"]])
        out[kind] = Fracture(target="factor", context="context", others=["other"],
                             group="group", n_resamples=6, n_boot=50, n_refits=30,
                             sweep_directions=30).run(emb, seed=0, model=model,
                                                      annotations={"inputs": inputs},
                                                      progress=False)
    return out


def test_unified_and_fractured_are_equally_decodable_within_contexts(planted_results):
    u, f = (planted_results[k].metric("within_score", layer=k) for k in ("unified",
                                                                          "fractured"))
    assert u.value > 0.8 and f.value > 0.8
    assert abs(u.value - f.value) < 0.05


@pytest.mark.parametrize("name,gap", [("transfer_ratio", 0.6), ("context_cosine", 0.6)])
def test_consistency_separates_unified_from_fractured(planted_results, name, gap):
    u = planted_results["unified"].metric(name, layer="unified")
    f = planted_results["fractured"].metric(name, layer="fractured")
    assert u.value > 0.8 and f.value < 0.2
    assert u.ci_low - f.ci_high > gap


def test_refitted_transfer_ratio_interval_covers_the_planted_truth():
    # fully fractured sets (truth 0) and half-shared ones (truth 0.866): intervals that left out
    # the probes' fitting noise covered the truth in 2 of 8 sets at overlap 0
    covered = []
    for overlap in (0.0, 0.5):
        truth = planted_transfer_ratio("fractured", overlap=overlap)
        for seed in range(3):
            emb = planted_fracture("fractured", n_items=600, dim=16, overlap=overlap, seed=seed)
            m = Fracture(target="factor", context="context", group="group", n_splits=3,
                         n_resamples=2, noise_levels=(1.0,), n_boot=10, n_refits=40).run(
                emb, seed=seed, progress=False).metric("transfer_ratio")
            assert m.ci_high - m.ci_low > 0.02  # an interval, not a point
            covered.append(m.ci_low <= truth <= m.ci_high)
    assert sum(covered) >= 5


def test_amnesic_residual_separates_them(planted_results):
    u = planted_results["unified"].metric("residual_within", layer="unified")
    f = planted_results["fractured"].metric("residual_within", layer="fractured")
    assert u.value < 0.15 and f.value > 0.8
    for k in ("unified", "fractured"):  # erasing f costs the other factor nothing
        assert abs(planted_results[k].metric("collateral", layer=k).value) < 0.05


def test_perturbations_separate_them(planted_results):
    u, f = planted_results["unified"], planted_results["fractured"]
    assert (u.metric("noise_auc", layer="unified").value
            > f.metric("noise_auc", layer="fractured").value + 0.03)
    for sweep in ("single", "column"):
        su = u.metric("on_target_share", layer="model", sweep=sweep)
        sf = f.metric("on_target_share", layer="model", sweep=sweep)
        assert su.value > 0.99 and sf.value < 0.9
    assert (u.metric("weight_noise_auc", layer="model").value
            > f.metric("weight_noise_auc", layer="model").value + 0.2)


def test_baselines_table_and_figure(planted_results):
    res = planted_results["fractured"]
    shuffled = res.metric("within_score", layer="fractured", baseline="shuffled")
    assert shuffled.value < 0.1
    table = fracture_table(res)
    assert "| fractured |" in table and "shuf" in table and "on_target_share" in table
    assert len(res.plot().axes) == 4


def test_figure_leaves_undrawable_series_out_of_the_legend(planted_results):
    # a series whose every value is NaN (ratios undefined by min_score) draws nothing, so it
    # must not be listed either
    doc = planted_results["fractured"].to_dict()
    for m in doc["metrics"]:
        if m["name"] == "noise_auc":
            m["value"] = m["ci_low"] = m["ci_high"] = float("nan")
    fig = ProbeResult.from_dict(doc).plot()
    labels = [t.get_text() for ax in fig.axes if ax.get_legend()
              for t in ax.get_legend().get_texts()]
    assert "transfer / within (1: unified)" in labels
    assert "noise robustness (1: robust)" not in labels


def test_weight_sweep_restores_the_model():
    model = planted_fracture_model("fractured", dim=6, hidden=5)
    before = [p.detach().clone() for p in model.parameters()]
    inputs = torch.randn(50, 2, dtype=torch.float64)
    rep = model(inputs).detach().numpy()
    readouts = [ridge_map(rep, inputs[:, :1].numpy()), ridge_map(rep, inputs[:, 1:].numpy())]
    shares, changes = weight_sweep(model, inputs, readouts, rng=np.random.default_rng(0),
                                   n_directions=5, mode="column")
    assert shares.shape == (5,) and changes.shape == (5, 2)
    assert np.all((shares >= 0.5) & (shares <= 1.0))
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p, q)


def test_bad_input_is_named():
    emb = planted_fracture("unified", n_items=100, dim=8)
    with pytest.raises(ProbeInputError, match="target"):
        Fracture().run(emb, seed=0, progress=False)
    with pytest.raises(ProbeInputError, match="nope"):
        Fracture(target="nope").run(emb, seed=0, progress=False)
    one_ctx = EmbeddingSet(np.random.default_rng(0).standard_normal((40, 3)),
                           {"y": np.arange(40.0), "c": np.zeros(40, int)})
    with pytest.raises(ProbeInputError, match="at least two contexts"):
        Fracture(target="y", context="c").run(one_ctx, seed=0, progress=False)
