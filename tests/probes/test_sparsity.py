import math

import numpy as np
import pytest

import geoprobe
from geoprobe.probes.sparsity import density_measures


@pytest.mark.parametrize("k", [1, 5, 37, 100])
def test_k_equal_nonzeros_known_values(k):
    d = 100
    rng = np.random.default_rng(k)
    H = np.zeros((3, d))
    for row in H:
        row[rng.choice(d, k, replace=False)] = 2.5 * rng.choice([-1, 1])
    m = density_measures(H, top=(5, 10))
    np.testing.assert_allclose(m["hoyer"], (math.sqrt(d) - math.sqrt(k)) / (math.sqrt(d) - 1),
                               atol=1e-12)
    np.testing.assert_allclose(m["l1_l2"], math.sqrt(k), rtol=1e-12)
    np.testing.assert_allclose(m["top5_energy"], min(5, k) / k, rtol=1e-12)
    np.testing.assert_allclose(m["top10_energy"], min(10, k) / k, rtol=1e-12)
    np.testing.assert_allclose(m["gini"], 1 - k / d, atol=1e-12)
    np.testing.assert_allclose(m["effective_rank"], k / d, rtol=1e-10)
    np.testing.assert_allclose(m["l1_norm"], 2.5 * k, rtol=1e-12)


def test_unequal_nonzeros_match_the_definitions():
    """h = (0, 3, 0, -4): every measure worked out by hand from the module's definitions,
    with unequal magnitudes (the k-equal case above cannot tell |h| from its support) and
    the largest entry not last (so a missing sort would show)."""
    h = np.array([[0.0, 3.0, 0.0, -4.0]])
    d, l1, l2 = 4, 7.0, 5.0
    m = density_measures(h, top=(25, 50))
    np.testing.assert_allclose(m["l1_norm"], l1)
    np.testing.assert_allclose(m["l1_l2"], l1 / l2)
    np.testing.assert_allclose(m["hoyer"], (math.sqrt(d) - l1 / l2) / (math.sqrt(d) - 1))  # 0.6
    # gini: a sorted ascending (0, 0, 3, 4), weights (2i - d - 1) / d = (-3, -1, 1, 3) / 4
    np.testing.assert_allclose(m["gini"], (1 * 3 + 3 * 4) / (d * l1))  # 15 / 28
    # top 25 % of 4 entries is the largest one (16 of 25 energy); top 50 % holds all of it
    np.testing.assert_allclose(m["top25_energy"], 16 / 25)
    np.testing.assert_allclose(m["top50_energy"], 1.0)
    p = np.array([9, 16]) / 25
    np.testing.assert_allclose(m["effective_rank"], math.exp(-(p * np.log(p)).sum()) / d)
    q = np.array([3, 4]) / 7
    np.testing.assert_allclose(density_measures(h, weights="abs")["effective_rank"],
                               math.exp(-(q * np.log(q)).sum()) / d)


def test_one_hot_and_constant_vectors_are_the_extremes():
    d = 50
    one_hot, flat = np.zeros((1, d)), np.full((1, d), -0.7)
    one_hot[0, 17] = 4.0
    hot, even = density_measures(one_hot), density_measures(flat)
    np.testing.assert_allclose([hot["hoyer"][0], even["hoyer"][0]], [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose([hot["gini"][0], even["gini"][0]], [1 - 1 / d, 0.0], atol=1e-12)
    np.testing.assert_allclose([hot["effective_rank"][0], even["effective_rank"][0]],
                               [1 / d, 1.0], rtol=1e-10)
    # top 5 % of 50 is ceil(2.5) = 3 entries: all the one-hot's energy, 3/50 of the flat's
    np.testing.assert_allclose([hot["top5_energy"][0], even["top5_energy"][0]], [1.0, 3 / d])


def _planted(shift_density, n_groups=60, per=10, d=64, seed=0):
    """Each group has `per` in-distribution rows (dense Gaussian) and `per` shifted rows
    whose entries are non-zero with probability `shift_density`."""
    rng = np.random.default_rng(seed)
    n = n_groups * per
    ref = rng.standard_normal((n, d))
    shifted = rng.standard_normal((n, d)) * (rng.random((n, d)) < shift_density)
    shifted[:, 0] += 1e-3  # no all-zero rows
    groups = np.tile(np.repeat(np.arange(n_groups), per), 2)
    cond = np.repeat(["in-distribution", "shifted"], n)
    return geoprobe.EmbeddingSet(np.vstack([ref, shifted]),
                                 {"condition": cond, "sentence": groups})


def test_probe_recovers_planted_sparsification_and_null():
    probe = geoprobe.make_probe("activation-sparsity", group="sentence", n_boot=300,
                                n_perm=100)
    sparse = probe.run(_planted(0.25), seed=0, progress=False)
    shift = sparse.metric("hoyer_shift", condition="shifted")
    null = sparse.metric("hoyer_shift", condition="shifted", baseline="shuffled-condition")
    assert shift.ci_low > null.ci_high > 0 > null.ci_low
    assert sparse.metric("effective_rank_shift", condition="shifted").ci_high < 0
    same = probe.run(_planted(1.0), seed=0, progress=False)
    flat = same.metric("hoyer_shift", condition="shifted")
    assert flat.ci_low < 0 < flat.ci_high
    gauss = same.metric("hoyer", baseline="gaussian").value
    # both are means of Hoyer over isotropic Gaussian rows of d = 64 (600 rows and 1200): they
    # differ by sampling noise only, whose sd (per-row sd ~0.03 / sqrt(600)) is far below 0.02
    assert same.metric("hoyer", condition="in-distribution").value == pytest.approx(gauss,
                                                                                   abs=0.02)
    assert len(sparse.plot().axes) == 6
    again = probe.run(_planted(0.25), seed=0, progress=False)
    assert [m.value for m in again.metrics] == [m.value for m in sparse.metrics]
    assert [m.ci_low for m in again.metrics] == [m.ci_low for m in sparse.metrics]


def test_probe_rejects_missing_condition():
    emb = geoprobe.EmbeddingSet(np.ones((10, 4)), {"condition": np.repeat(["a"], 10)})
    with pytest.raises(geoprobe.ProbeInputError, match="reference"):
        geoprobe.make_probe("activation-sparsity").run(emb, seed=0, progress=False)
    with pytest.raises(geoprobe.ProbeInputError, match="cond2"):
        geoprobe.make_probe("activation-sparsity", condition="cond2").run(emb, seed=0,
                                                                          progress=False)
