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
