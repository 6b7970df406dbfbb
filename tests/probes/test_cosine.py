import numpy as np
import pytest

import geoprobe
from geoprobe.datasets.recsys import implicit_feedback
from geoprobe.linear_models import gram, obj1_factors, obj2_factors, top_eigen
from geoprobe.probes.cosine import canonical_rescalings, rescaling_spread


def _obj1(X, A, B, lam):
    return np.sum((X - X @ A @ B.T) ** 2) + lam * np.sum((A @ B.T) ** 2)


def _obj2(X, A, B, lam):
    return np.sum((X - X @ A @ B.T) ** 2) + lam * (np.sum((X @ A) ** 2) + np.sum(B ** 2))


@pytest.mark.parametrize("which", ["obj1", "obj2"])
def test_closed_forms_are_local_optima(which):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 12)) @ rng.standard_normal((12, 12))
    s, Vk = top_eigen(gram(X), 4)
    if which == "obj1":
        lam, f = 30.0, _obj1
        A, B = obj1_factors(s, Vk, lam, D=rng.uniform(0.5, 2, 4))
    else:
        lam, f = 5.0, _obj2
        A, B = obj2_factors(s, Vk, lam)
    best = f(X, A, B, lam)
    for _ in range(20):
        dA, dB = 1e-3 * rng.standard_normal(A.shape), 1e-3 * rng.standard_normal(B.shape)
        assert f(X, A + dA, B + dB, lam) >= best - 1e-9 * best


def test_obj1_full_rank_matches_ridge():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 8))
    G = gram(X)
    s, V = top_eigen(G, 8)
    A, B = obj1_factors(s, V, 4.0)
    np.testing.assert_allclose(A @ B.T, np.linalg.solve(G + 4.0 * np.eye(8), G), atol=1e-10)


def _clustered(strengths, size=6, users=40, overlap=False, seed=0):
    """Items of a cluster are identical columns; clusters use disjoint users unless overlap."""
    rng = np.random.default_rng(seed)
    blocks = []
    for c, w in enumerate(strengths):
        col = np.zeros(users * len(strengths))
        col[c * users:(c + 1) * users] = w * (1 + rng.random(users))
        if overlap:
            col += 0.3 * rng.random(col.shape)
        blocks.append(np.repeat(col[:, None], size, axis=1))
    return np.hstack(blocks)


def test_spread_zero_for_rescaling_invariant_construction_positive_otherwise():
    rng = np.random.default_rng(2)
    D = np.exp(rng.standard_normal((10, 3)))
    for overlap, expect_zero in ((False, True), (True, False)):
        X = _clustered([1.0, 2.0, 3.0], overlap=overlap)
        s, Vk = top_eigen(gram(X), 3)
        D_all = np.vstack([canonical_rescalings(s, s[-1] ** 2), D])
        spread = rescaling_spread(Vk, D_all)
        if expect_zero:
            assert spread["cosine_range_mean"] < 1e-8
            assert spread["rescaling_rank_corr_min"] > 1 - 1e-8
        else:
            assert spread["cosine_range_mean"] > 0.05


def test_probe_on_generated_data():
    emb = implicit_feedback(n_users=800, n_items=60, heldout_users=100, seed=4)
    probe = geoprobe.make_probe("cosine-nonuniqueness", rank=6, n_boot=5, n_rescalings=8,
                                lambdas=(0.1, 1.0, 3.0))
    r = probe.run(emb, seed=0, progress=False)
    rng_mean = r.metric("cosine_range_mean")
    assert rng_mean.value > 0.2
    assert r.metric("cosine_range_mean", baseline="prediction-space").value < 1e-8
    assert r.metric("max_prediction_change").value < 1e-8
    assert r.metric("lambda_rank_corr", model="obj2", lambda_rel="0.1").value == pytest.approx(1)
    assert r.metric("cluster_gap", model="obj1-symmetric", lambda_rel="1").value > 0.2
    assert r.arrays["heatmaps"].shape == (6, 60, 60)
    again = probe.run(emb, seed=0, progress=False)
    assert [m.value for m in again.metrics] == pytest.approx([m.value for m in r.metrics],
                                                             nan_ok=True)
    assert len(r.plot().axes) >= 8


def test_probe_rejects_bad_rank():
    emb = implicit_feedback(n_users=300, n_items=20, heldout_users=50, seed=0)
    with pytest.raises(geoprobe.ProbeInputError, match="rank"):
        geoprobe.make_probe("cosine-nonuniqueness", rank=50).run(emb, seed=0, progress=False)
