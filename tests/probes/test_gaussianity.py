"""Planted tests of the Gaussianity and collapse diagnostics (probes/gaussianity.py)."""

import numpy as np
import pytest

from geoprobe import EmbeddingSet, ProbeInputError
from geoprobe.probes.gaussianity import (
    EppsPulleyAccumulator, Gaussianity, alpha_req, epps_pulley, epps_pulley_null, lidar,
    random_directions, sliced_epps_pulley_test, uniformity_terms,
)
from geoprobe.spectra import rankme


def _anchor_sigreg(X, A):
    """The anchor's formula written out directly with cos and sin (the reference)."""
    t = np.linspace(0, 3, 17)
    dt = t[1] - t[0]
    w = np.full(17, 2 * dt)
    w[[0, -1]] = dt
    w = w * np.exp(-t ** 2 / 2)
    x = X @ A  # (n, K)
    cos = np.cos(x[:, :, None] * t).mean(0)
    sin = np.sin(x[:, :, None] * t).mean(0)
    err = (cos - np.exp(-t ** 2 / 2)) ** 2 + sin ** 2
    return X.shape[0] * err @ w


def test_epps_pulley_matches_anchor_formula_for_any_chunking():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((301, 5)) * [1, 1, 2, 0.5, 1] + 0.3
    A = random_directions(5, 7, rng)
    ref = _anchor_sigreg(X, A)
    for chunk in (1, 17, 301, 10_000):
        got = epps_pulley(X, A, standardize="none", chunk_rows=chunk).statistic()
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    # blocked sums reweighted by ones give the same statistic
    acc = EppsPulleyAccumulator(A, np.zeros(7), n_blocks=4)
    acc.update(X, rng.integers(0, 4, X.shape[0]))
    np.testing.assert_allclose(acc.statistic(), ref, rtol=1e-10)


def test_isotropic_gaussian_passes_at_the_nominal_rate(tmp_path):
    rng = np.random.default_rng(1)
    p = [sliced_epps_pulley_test(rng.standard_normal((400, 6)), n_directions=32,
                                 standardize=mode, n_null=100, rng=rng, cache_dir=tmp_path)[1]
         for _ in range(20) for mode in ("scale", "whiten")]
    # 40 tests at level 0.05: expect 2 rejections; P(Binomial(40, .05) >= 7) < 0.005
    assert np.sum(np.array(p) < 0.05) <= 6
    assert np.mean(p) > 0.3  # p-values spread over (0, 1), not piled near 0


def test_collapsed_subspace_fails_when_scaled_and_passes_after_whitening(tmp_path):
    rng = np.random.default_rng(2)
    p_scale, p_white = [], []
    for _ in range(8):
        X = rng.standard_normal((400, 6))
        X[:, :2] *= 0.05  # two nearly collapsed directions: Gaussian but not isotropic
        p_scale.append(sliced_epps_pulley_test(X, n_directions=32, standardize="scale",
                                               n_null=100, rng=rng, cache_dir=tmp_path)[1])
        p_white.append(sliced_epps_pulley_test(X, n_directions=32, standardize="whiten",
                                               n_null=100, rng=rng, cache_dir=tmp_path)[1])
    assert max(p_scale) <= 1 / 101  # power ~1: every sample rejected at the smallest p
    assert np.sum(np.array(p_white) < 0.05) <= 2  # still Gaussian: nominal rate


def test_uniform_cube_fails_in_low_dimension(tmp_path):
    rng = np.random.default_rng(3)
    p = [sliced_epps_pulley_test(rng.uniform(-1, 1, (800, 3)), n_directions=32,
                                 standardize="whiten", n_null=100, rng=rng,
                                 cache_dir=tmp_path)[1] for _ in range(8)]
    assert np.mean(np.array(p) < 0.05) >= 0.875


def test_null_is_cached_atomically_and_reused(tmp_path):
    null = epps_pulley_null(50, 3, 4, n_null=5, seed=7, cache_dir=tmp_path)
    files = list(tmp_path.glob("ep-null-*.npy"))
    assert len(files) == 1 and not list(tmp_path.glob(".*tmp*"))
    stamp = files[0].stat().st_mtime_ns
    again = epps_pulley_null(50, 3, 4, n_null=5, seed=7, cache_dir=tmp_path)
    np.testing.assert_array_equal(null, again)
    assert files[0].stat().st_mtime_ns == stamp
    files[0].write_bytes(b"damaged")
    np.testing.assert_array_equal(epps_pulley_null(50, 3, 4, n_null=5, seed=7,
                                                   cache_dir=tmp_path), null)
    other = epps_pulley_null(50, 3, 4, n_null=5, seed=8, cache_dir=False)
    assert not np.array_equal(other, null)


def _exact_spectrum(n, s, rng, center):
    """Rows whose singular values (centred if ``center``) are exactly ``s``."""
    d = s.size
    G = rng.standard_normal((n, d))
    if center:
        G -= G.mean(0)
    U, _ = np.linalg.qr(G)
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (U * s) @ V.T


def test_rankme_and_alpha_req_match_closed_forms():
    rng = np.random.default_rng(4)
    # RankMe of a flat spectrum on r of d directions is r (up to eps).
    s = np.r_[np.ones(10), np.zeros(22)]
    X = _exact_spectrum(500, s, rng, center=False)
    res = Gaussianity(n_directions=8, standardize="scale", n_null=5, cache_dir=False,
                     n_boot=5).run(
        EmbeddingSet(X), seed=0, progress=False)
    assert res.metric("rankme", layer="0").value == pytest.approx(10, rel=1e-4)
    # alpha-ReQ of lambda_k = k^-alpha is alpha; PR has the closed form (sum l)^2 / sum l^2.
    alpha = 1.3
    lam = np.arange(1, 129) ** -alpha
    X = _exact_spectrum(1000, np.sqrt(lam * 1000), rng, center=True)
    res = Gaussianity(n_directions=8, standardize="scale", n_null=5, cache_dir=False,
                     n_boot=5).run(
        EmbeddingSet(X), seed=0, progress=False)
    assert res.metric("alpha_req", layer="0").value == pytest.approx(alpha, abs=1e-8)
    assert res.metric("participation_ratio", layer="0").value == pytest.approx(
        lam.sum() ** 2 / (lam ** 2).sum(), rel=1e-8)
    assert alpha_req(np.ones(50)) == pytest.approx(0, abs=1e-12)
    assert np.isnan(alpha_req(np.ones(6)))  # ranks 5..6 only: too few for a slope


def test_lidar_recovers_planted_rank():
    rng = np.random.default_rng(5)
    n_groups, views, d, r = 300, 8, 20, 4
    basis = np.linalg.qr(rng.standard_normal((d, r)))[0]
    centers = 5 * rng.standard_normal((n_groups, r)) @ basis.T
    X = np.repeat(centers, views, 0) + rng.standard_normal((n_groups * views, d))
    g = np.repeat(np.arange(n_groups), views)
    sums = np.zeros((n_groups, d))
    np.add.at(sums, g, X)
    value = lidar(sums, np.full(n_groups, float(views)), X.T @ X)
    assert r - 0.5 < value < r + 1.5  # d = 20 without the planted structure
    assert value > 0.9 * rankme(np.ones(r))


def test_sphere_statistics_match_brute_force():
    rng = np.random.default_rng(6)
    n, d = 120, 5
    X = rng.standard_normal((n, d)) + [1.5, 0, 0, 0, 0]
    views = np.repeat(np.arange(30), 4)
    res = Gaussianity(n_directions=8, n_null=5, cache_dir=False, views="views", n_boot=20,
                      n_pairs=200_000).run(EmbeddingSet(X, {"views": views}), seed=0,
                                           progress=False)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    C = U @ U.T
    off = ~np.eye(n, dtype=bool)
    assert res.metric("anisotropy", layer="0").value == pytest.approx(C[off].mean(), rel=1e-10)
    D2 = 2 - 2 * C
    same = (views[:, None] == views[None, :]) & off
    assert res.metric("alignment", layer="0").value == pytest.approx(D2[same].mean(), rel=1e-10)
    # uniformity over random pairs estimates the all-pairs value
    brute = np.log(np.exp(-2 * D2[off]).mean())
    assert res.metric("uniformity", layer="0").value == pytest.approx(brute, abs=0.01)
    i, j = np.array([0, 5]), np.array([3, 7])
    np.testing.assert_allclose(uniformity_terms(X, i, j), np.exp(-2 * D2[i, j]))


def test_streaming_memmap_equals_in_memory(tmp_path):
    rng = np.random.default_rng(7)
    n, d = 700, 12
    X = np.stack([rng.standard_normal((n, d)), rng.uniform(-1, 1, (n, d)) + 0.2])
    items = {"sentence": np.arange(n) // 7, "views": np.arange(n) // 5}
    path = EmbeddingSet(X.astype(np.float32), items).save(tmp_path / "e.gpemb")
    on_disk = EmbeddingSet.open(path)
    assert isinstance(on_disk.layer(0), np.memmap)
    in_memory = EmbeddingSet(np.asarray(X, dtype=np.float32), items)
    kw = dict(n_directions=16, n_null=10, cache_dir=tmp_path, group="sentence", views="views",
              n_boot=30, n_pairs=3000, max_blocks=8)
    a = Gaussianity(chunk_rows=53, **kw).run(on_disk, seed=3, progress=False)
    b = Gaussianity(**kw).run(in_memory, seed=3, progress=False)
    assert [m.key() for m in a.metrics] == [m.key() for m in b.metrics]
    for ma, mb in zip(a.metrics, b.metrics):
        for x, y in ((ma.value, mb.value), (ma.ci_low, mb.ci_low), (ma.ci_high, mb.ci_high)):
            assert x == pytest.approx(y, rel=1e-9, abs=1e-12, nan_ok=True), ma.key()
    names = {m.name for m in a.metrics}
    assert {"sigreg", "sigreg_p", "rankme", "alpha_req", "participation_ratio", "lidar",
            "alignment", "uniformity", "anisotropy", "directions_rejected"} <= names


def test_probe_separates_planted_layers_and_draws(tmp_path):
    rng = np.random.default_rng(8)
    n, d = 600, 16
    iso = rng.standard_normal((n, d))
    collapsed = iso.copy()
    collapsed[:, :6] *= 0.02
    emb = EmbeddingSet(np.stack([iso, collapsed]).astype(np.float32),
                       layer_names=["iso", "collapsed"])
    res = Gaussianity(n_directions=64, n_null=40, cache_dir=tmp_path, n_boot=50).run(
        emb, seed=0, progress=False)
    p_iso = res.metric("sigreg_p", layer="iso", space="scale").value
    p_col = res.metric("sigreg_p", layer="collapsed", space="scale").value
    assert p_iso > 0.05 and p_col <= 1 / 41
    col = res.metric("sigreg", layer="collapsed", space="scale")
    null = res.metric("sigreg", layer="collapsed", space="scale", baseline="gaussian")
    assert col.ci_low > null.ci_high
    assert res.metric("directions_rejected", layer="collapsed", space="scale").value > 0.3
    assert res.metric("rankme", layer="collapsed").value < 0.75 * res.metric(
        "rankme", layer="iso").value
    fig = res.plot()
    assert len(fig.axes) == 4
    with pytest.raises(ProbeInputError, match="standardize"):
        Gaussianity(standardize="bogus").run(emb, seed=0, progress=False)
    with pytest.raises(ProbeInputError, match="views_col"):
        Gaussianity(views="views_col").run(emb, seed=0, progress=False)


def test_numpy_diagnostic_agrees_with_the_jepa_training_loss():
    """The torch SIGReg the JEPA trains with and this numpy diagnostic are one statistic."""
    import torch

    from geoprobe.sigreg import sigreg

    rng = np.random.default_rng(9)
    Z = rng.standard_normal((512, 24)) * np.linspace(0.3, 2.0, 24) + 0.5
    A = random_directions(24, 64, rng)
    ours = epps_pulley(Z, A, standardize="none", chunk_rows=100).statistic().mean()
    theirs = sigreg(torch.as_tensor(Z), directions=torch.as_tensor(A)).item()
    assert ours == pytest.approx(theirs, rel=1e-10)
    # and over time steps (T, N, D): the mean of per-step statistics
    Z3 = rng.standard_normal((3, 100, 24))
    per_step = [epps_pulley(z, A).statistic().mean() for z in Z3]
    assert np.mean(per_step) == pytest.approx(
        sigreg(torch.as_tensor(Z3), directions=torch.as_tensor(A)).item(), rel=1e-10)


def test_null_grows_by_prefix_only_near_the_level_and_differs_per_mode(tmp_path):
    from geoprobe.probes.gaussianity import EppsPulleyNull, sequential_p_value

    null = EppsPulleyNull(60, 3, 4, standardize="scale", seed=7, cache_dir=tmp_path)
    big = null.draw(200)
    # a larger null starts with the smaller one, also when read back from the cache
    np.testing.assert_array_equal(EppsPulleyNull(60, 3, 4, seed=7, cache_dir=tmp_path)
                                  .draw(100), big[:100])
    # each standardisation has its own draws, not one shared sample
    whiten = EppsPulleyNull(60, 3, 4, standardize="whiten", seed=7, cache_dir=False).draw(50)
    none = EppsPulleyNull(60, 3, 4, standardize="none", seed=7, cache_dir=False).draw(50)
    assert not np.allclose(whiten, big[:50]) and not np.allclose(none, big[:50])
    means = big.mean(1)
    # far beyond the null: at 50 replicates p = 1/51 is within 3 SE of 0.05, at 100 not
    far = sequential_p_value(means.max() * 10, null, n_null=50, max_null=200)
    assert far.null_size == 100 and far.p_value == 1 / 101
    assert far.p_se == pytest.approx(np.sqrt((1 / 101) * (100 / 101) / 100))
    # at the null's own 95% quantile the decision is open: the null grows to its cap
    near = sequential_p_value(np.quantile(means, 0.95), null, n_null=50, max_null=200)
    assert near.null_size == 200 and abs(near.p_value - 0.05) < 0.02
    assert near.null.shape == (200, 4)


def test_gaussian_samples_are_rejected_at_the_nominal_rate(tmp_path):
    # the fixed, cached null must pin its 5% tail: 300 Gaussian samples against it (the cache
    # computes the null once, as for a user)
    rng = np.random.default_rng(11)
    p = np.array([sliced_epps_pulley_test(rng.standard_normal((100, 3)), n_directions=8,
                                          rng=rng, cache_dir=tmp_path).p_value
                  for _ in range(300)])
    # Binomial(300, 0.05) lies in 5..25 with probability > 0.999; a null too narrow by the
    # 100-replicate amount (rate 0.08-0.10) lands near or above the top
    assert 5 <= np.sum(p <= 0.05) <= 25
    assert 0.4 < p.mean() < 0.6  # p-values uniform, not piled at either end


def test_a_null_smaller_than_a_batch_is_a_prefix_of_the_cached_batch(tmp_path):
    from geoprobe.probes.gaussianity import EppsPulleyNull

    small = EppsPulleyNull(40, 3, 4, seed=2, cache_dir=tmp_path).draw(7)
    assert small.shape == (7, 4)
    # grown later, from the cached 7, to the whole batch and beyond: the same first 7
    full = EppsPulleyNull(40, 3, 4, seed=2, cache_dir=tmp_path).draw(60)
    np.testing.assert_array_equal(full[:7], small)
    np.testing.assert_array_equal(full, EppsPulleyNull(40, 3, 4, seed=2,
                                                       cache_dir=False).draw(60))
