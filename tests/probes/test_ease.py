import numpy as np
import pytest

import geoprobe
from geoprobe.datasets.recsys import fold_in_split, implicit_feedback
from geoprobe.linear_models import ease_weights, gram
from geoprobe.probes.ease import rank_metrics


@pytest.fixture(scope="module")
def small():
    return implicit_feedback(n_users=1500, n_items=120, heldout_users=250, mean_items=15,
                             seed=3)


def test_ease_zero_diagonal_and_optimality():
    rng = np.random.default_rng(0)
    X = (rng.random((300, 40)) < 0.15).astype(float)
    lam = 7.0
    G = gram(X)
    B = ease_weights(G, lam)
    assert np.all(np.diag(B) == 0)
    # KKT: the gradient (G + lam I) B - G may be non-zero only on the diagonal.
    M = (G + lam * np.eye(40)) @ B - G
    off = M - np.diag(np.diag(M))
    assert np.abs(off).max() < 1e-8 * np.abs(G).max()
    # Each column is the ridge regression of item j on the other items.
    j = 5
    others = np.delete(np.arange(40), j)
    Xo = X[:, others]
    w = np.linalg.solve(Xo.T @ Xo + lam * np.eye(39), Xo.T @ X[:, j])
    np.testing.assert_allclose(B[others, j], w, atol=1e-10)


def test_rank_metrics_known_values():
    target = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 1]], bool)
    fold_in = np.array([[0, 0, 1, 0, 0], [1, 0, 0, 0, 0]], bool)
    scores = np.array([[5.0, 1.0, 9.0, 4.0, 0.0],    # ranking (fold-in excluded): 0, 3, 1, 4
                       [9.0, 0.0, 0.0, 0.0, 1.0]])   # ranking: 4 first
    out = rank_metrics(scores, fold_in, target, ks=(1, 2, 3))
    np.testing.assert_allclose(out["recall@1"], [1.0, 1.0])
    np.testing.assert_allclose(out["recall@2"], [0.5, 1.0])
    ndcg3 = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    np.testing.assert_allclose(out["ndcg@3"], [ndcg3, 1.0])


def test_fold_in_split_partitions_each_user():
    rng = np.random.default_rng(1)
    X = rng.random((50, 30)) < 0.3
    X[:, 0] = True
    f, t = fold_in_split(X, 0.2, rng=rng)
    assert not (f & t).any() and ((f | t) == X).all()
    np.testing.assert_array_equal(t.sum(1), np.maximum(1, np.round(0.2 * X.sum(1))))


def test_ease_probe_beats_baselines_and_is_seeded(small):
    probe = geoprobe.make_probe("ease", lambdas=(30, 300), n_boot=100, n_boot_fit=5)
    r = probe.run(small, seed=0, progress=False)
    ease = r.metric("ndcg@100", model="ease")
    pop = r.metric("ndcg@100", baseline="popularity")
    rnd = r.metric("ndcg@100", baseline="random")
    assert ease.ci_low > pop.ci_high > rnd.ci_high
    share = r.metric("negative_share")
    assert 0.1 < share.value < 0.9
    assert r.arrays["diag_max_abs"][0] == 0
    again = probe.run(small, seed=0, progress=False)
    assert [m.value for m in again.metrics] == [m.value for m in r.metrics]
    fig = r.plot()
    assert len(fig.axes) == 4
    # the drop is stated as a drop, not as a negative number beside a positive interval
    drop = next(m for m in r.metrics if m.name.endswith("_drop_when_negatives_zeroed"))
    assert f"drops by {drop.value:.3f}" in "".join(ax.get_title() for ax in fig.axes)


def test_ease_probe_rejects_non_binary(small):
    X = small.layer(0) * 2.0
    emb = geoprobe.EmbeddingSet(X, {"split": small.column("split")})
    with pytest.raises(geoprobe.ProbeInputError, match="0/1"):
        geoprobe.make_probe("ease").run(emb, seed=0, progress=False)


def test_regularization_suite_names_registered_probes_and_generators():
    from geoprobe.registry import GENERATOR_GROUP, available
    from geoprobe.suite import load_suite

    suite = load_suite("regularization")
    assert {p.probe for p in suite.probes} <= set(available())
    assert {s.generate for s in suite.sources.values()} <= set(available(GENERATOR_GROUP))


def test_zeroing_negative_weights_costs_ndcg_only_when_items_have_substitutes():
    """Without substitutes the generator's structure is additive (popularity x cluster
    affinity) and the negative weights carry no ranking signal; when each user takes at most
    one item of each group of 4, B needs them to demote the substitutes of what a user has,
    and zeroing them costs NDCG (Steck 2019's effect)."""
    drops = {}
    for strength in (0.0, 1.0):
        emb = implicit_feedback(n_users=1500, n_items=120, heldout_users=250, mean_items=15,
                                substitute_size=4, substitute_strength=strength, seed=3)
        res = geoprobe.make_probe("ease", lambdas=(10, 100, 1000), n_boot=200,
                                  n_boot_fit=3).run(emb, seed=0, progress=False)
        drops[strength] = res.metric("ndcg@100_drop_when_negatives_zeroed",
                                     layer="interactions")
    assert abs(drops[0.0].value) < 0.01 and drops[0.0].ci_low < 0.005
    assert drops[1.0].ci_low > 0.02 and drops[1.0].ci_low > drops[0.0].ci_high
