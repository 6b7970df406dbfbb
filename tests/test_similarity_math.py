"""geoprobe.similarity against independent transcriptions of the definitions, and planted
invariances."""

import itertools

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr, spearmanr

from geoprobe.similarity import (CrossMoments, canonical_correlations, cka, hsic,
                                 linear_cka_streaming, median_distance, procrustes_distance,
                                 procrustes_rho, pwcca, rbf_gram, rdm, rsa, shape_angle, svcca)


def ref_hsic_biased(K, L):
    """tr(K H L H) / (n-1)^2 with the explicit centring matrix H."""
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return np.trace(K @ H @ L @ H) / (n - 1) ** 2


def ref_hsic_unbiased(K, L):
    """The U-statistic over distinct indices: E k_ij l_ij + E k_ij l_qr - 2 E k_ij l_iq, each
    expectation a mean over distinct index tuples (Song et al. 2012, by brute force)."""
    n = K.shape[0]
    pairs = np.mean([K[i, j] * L[i, j] for i, j in itertools.permutations(range(n), 2)])
    quads = np.mean([K[i, j] * L[q, r] for i, j, q, r in itertools.permutations(range(n), 4)])
    triples = np.mean([K[i, j] * L[i, q] for i, j, q in itertools.permutations(range(n), 3)])
    return pairs + quads - 2 * triples


def ref_linear_cka(X, Y):
    """Kornblith et al. 2019, feature space: ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    return (np.linalg.norm(Yc.T @ Xc) ** 2
            / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc)))


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6)) + 3.0  # an offset: centring must matter
    Y = np.tanh(X @ rng.standard_normal((6, 9))) + 0.3 * rng.standard_normal((40, 9))
    return X, Y


def test_biased_cka_matches_explicit_centring_matrix(pair):
    X, Y = pair
    for K, L in ((X @ X.T, Y @ Y.T), (rbf_gram(X, 2.0), rbf_gram(Y, 1.5))):
        want = ref_hsic_biased(K, L) / np.sqrt(ref_hsic_biased(K, K) * ref_hsic_biased(L, L))
        assert cka(K, L) == pytest.approx(want, rel=1e-10)
    assert cka(X @ X.T, Y @ Y.T) == pytest.approx(ref_linear_cka(X, Y), rel=1e-10)


def test_debiased_hsic_is_the_u_statistic():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    K, L = X @ X.T, rbf_gram(Y, 1.0)
    assert hsic(K, L, debiased=True) == pytest.approx(ref_hsic_unbiased(K, L), rel=1e-9)


def test_streaming_linear_cka_matches_gram_form(pair):
    X, Y = pair
    # chunks of 7 rows: several partial chunks, and a last one shorter than the rest
    assert linear_cka_streaming(X, Y, chunk_rows=7) == pytest.approx(ref_linear_cka(X, Y),
                                                                     rel=1e-10)
    acc = CrossMoments.from_arrays(X, Y, chunk_rows=7)
    # moments of the rows shifted by the first chunk's mean
    np.testing.assert_allclose(acc.cross, (X - X[:7].mean(0)).T @ (Y - Y[:7].mean(0)))
    # float32 data: products in float32, still the float64 value to float32 precision, even
    # with a mean far from the origin (the shift keeps the products small)
    far = (X + 1000.0).astype(np.float32), (Y - 500.0).astype(np.float32)
    assert linear_cka_streaming(*far, chunk_rows=7) == pytest.approx(ref_linear_cka(X, Y),
                                                                     rel=1e-4)
    with pytest.raises(ValueError, match="rows"):
        CrossMoments.from_arrays(X, Y[:-1])


def test_cka_invariant_to_rotation_and_scale_not_to_linear_maps(pair):
    X, _ = pair
    rng = np.random.default_rng(2)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    Z = 3.7 * X @ Q + 5.0  # rotated, scaled, shifted
    for debiased in (False, True):
        assert cka(X @ X.T, Z @ Z.T, debiased=debiased) == pytest.approx(1.0, abs=1e-10)
    A = np.diag([10.0, 1, 1, 0.1, 0.1, 0.1]) @ Q  # invertible but anisotropic
    assert cka(X @ X.T, (X @ A) @ (X @ A).T) < 0.9


def test_debiased_cka_near_zero_for_independent_spaces_at_small_n():
    rng = np.random.default_rng(3)
    biased, debiased = [], []
    for _ in range(20):
        X, Y = rng.standard_normal((20, 500)), rng.standard_normal((20, 500))
        biased.append(cka(X @ X.T, Y @ Y.T))
        debiased.append(cka(X @ X.T, Y @ Y.T, debiased=True))
    assert np.mean(biased) > 0.6          # n << d: the biased estimator is far from 0
    assert abs(np.mean(debiased)) < 0.05  # the debiased one is centred on it
    with pytest.raises(ValueError, match="4 items"):
        hsic(np.eye(3), np.eye(3), debiased=True)


def test_rsa_against_scipy_and_monotone_invariance(pair):
    X, Y = pair
    for dissimilarity, metric in (("correlation", "correlation"), ("cosine", "cosine"),
                                  ("euclidean", "euclidean")):
        D1, D2 = rdm(X, dissimilarity), rdm(Y, dissimilarity)
        a, b = pdist(X, metric), pdist(Y, metric)
        assert rsa(D1, D2) == pytest.approx(spearmanr(a, b)[0], rel=1e-10)
        assert rsa(D1, D2, method="pearson") == pytest.approx(pearsonr(a, b)[0], rel=1e-10)
    # correlation distance explicitly: 1 - Pearson r between rows
    np.testing.assert_allclose(rdm(X, "correlation"), 1 - np.corrcoef(X), atol=1e-12)
    D = rdm(X, "euclidean")
    assert rsa(D, D ** 2 + np.exp(D)) == pytest.approx(1.0)               # monotone: Spearman 1
    assert rsa(D, D ** 2 + np.exp(D), method="pearson") < 0.999           # Pearson is not
    with pytest.raises(ValueError, match="dissimilarity"):
        rdm(X, "manhattan")


def test_rsa_mask_leaves_out_pairs():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 3))
    D1, D2 = rdm(X, "euclidean"), rdm(Y, "euclidean")
    mask = np.ones((10, 10), bool)
    mask[:, 0] = mask[0, :] = False  # drop item 0's pairs: the same as dropping the item
    assert rsa(D1, D2, mask=mask) == pytest.approx(rsa(D1[1:, 1:], D2[1:, 1:]))


def test_procrustes_against_scipy(pair):
    X, Y = pair
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    rho = procrustes_rho(X, 2.0 * X @ Q + 1.0)
    assert procrustes_distance(rho) == pytest.approx(0.0, abs=1e-6)
    assert shape_angle(rho) == pytest.approx(0.0, abs=1e-6)
    # reference: scipy's optimal rotation on centred, unit-norm, zero-padded spaces
    Xn = X - X.mean(0)
    Xn = np.hstack([Xn / np.linalg.norm(Xn), np.zeros((40, 3))])
    Yn = (Y - Y.mean(0)) / np.linalg.norm(Y - Y.mean(0))
    R, _ = orthogonal_procrustes(Xn, Yn)
    want = np.linalg.norm(Xn @ R - Yn)
    rho = procrustes_rho(X, Y)
    assert procrustes_distance(rho) == pytest.approx(want, rel=1e-8)
    assert shape_angle(rho) == pytest.approx(np.arccos(1 - want ** 2 / 2), rel=1e-8)


def test_median_distance_and_rbf_gram():
    X = np.array([[0.0], [1.0], [3.0]])
    assert median_distance(X) == 2.0  # distances 1, 2, 3
    np.testing.assert_allclose(rbf_gram(X, 1.0)[0, 1], np.exp(-0.5))


def ref_canonical_correlations(X, Y):
    """Square roots of the eigenvalues of Sxx^-1 Sxy Syy^-1 Syx (Hotelling 1936)."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Sxy = Xc.T @ Yc
    M = np.linalg.solve(Xc.T @ Xc, Sxy) @ np.linalg.solve(Yc.T @ Yc, Sxy.T)
    k = min(X.shape[1], Y.shape[1])
    return np.sqrt(np.clip(np.sort(np.linalg.eigvals(M).real)[::-1][:k], 0, None))


def test_canonical_correlations_match_hotelling(pair):
    X, Y = pair
    np.testing.assert_allclose(canonical_correlations(X, Y), ref_canonical_correlations(X, Y),
                               atol=1e-9)


def test_cca_invariant_to_invertible_linear_maps_unlike_cka(pair):
    X, _ = pair
    rng = np.random.default_rng(1)
    M = np.diag(np.geomspace(20, 0.05, X.shape[1])) @ rng.standard_normal((6, 6))
    assert svcca(X, X @ M, variance=0.999999) == pytest.approx(1.0)
    assert pwcca(X, X @ M) == pytest.approx(1.0) and pwcca(X @ M, X) == pytest.approx(1.0)
    assert cka(X @ X.T, (X @ M) @ (X @ M).T) < 0.9


def test_svcca_keeps_the_directions_that_explain_the_variance():
    """X = [10 a, b] and Y = [a, c] with b, c independent noise: canonical correlations
    (1, ~0). SVCCA at 99 % keeps only X's first direction (100/101 of its variance), so it is
    1; with every direction kept it is the mean, ~0.5."""
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((3, 4000))
    X, Y = np.c_[10 * a, b], np.c_[10 * a, c]
    assert svcca(X, Y, variance=0.99) == pytest.approx(1.0)
    assert svcca(X, Y, variance=0.999999) == pytest.approx(0.5, abs=0.03)


def test_pwcca_weights_by_how_much_of_x_each_direction_accounts_for():
    """X = [10 a, b], Y = [a, c]: the correlated direction carries ~10/11 of X's summed
    |projections| (alpha_1 = sum_j |<h_1, x_j>| = 10 |a|, alpha_2 = |b| = |a|), so PWCCA
    ~ 10/11 weighted by X; weighted by Y both directions weigh alike, ~1/2."""
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((3, 4000))
    X, Y = np.c_[10 * a, b], np.c_[a, c]
    assert pwcca(X, Y) == pytest.approx(10 / 11, abs=0.02)
    assert pwcca(Y, X) == pytest.approx(0.5, abs=0.03)
    assert np.isnan(pwcca(np.ones((10, 3)), Y[:10]))
