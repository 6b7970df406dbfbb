"""Representational similarity of two spaces over the same items: CKA, RSA, Procrustes.

Every function compares ``X`` (n, d1) and ``Y`` (n, d2) whose rows are the same n items in
the same order; the dimensions may differ. Gram-matrix forms take (n, n) kernel matrices
``K`` (of X) and ``L`` (of Y), so a caller can build them once and index them for bootstrap
and permutation replicates.

Definitions
-----------
HSIC, biased (Gretton et al. 2005, as in Kornblith et al. 2019)::

    HSIC_0(K, L) = tr(K H L H) / (n - 1)^2,        H = I - 11^T / n

HSIC, debiased (Song et al. 2012, the unbiased U-statistic), with K~, L~ the kernel matrices
with their diagonal set to zero::

    HSIC_1(K, L) = [ tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((n-1)(n-2))
                     - 2/(n-2) 1^T K~ L~ 1 ] / (n (n-3))

CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with either estimator (the normalising
constants cancel). The biased estimate is inflated when n is small against the dimension
(two independent Gaussian spaces give CKA far above 0); the debiased one is near 0 there, and
may be negative.

Linear CKA uses ``K = X X^T``; in feature space the biased form is
``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with column-centred ``Xc, Yc``, which needs
only the cross-products ``X^T X, Y^T Y, X^T Y`` and column sums, accumulated over row chunks
(:func:`linear_cka_streaming`, :class:`CrossMoments`). RBF CKA uses ``K_ij = exp(-||x_i - x_j||^2 / (2 sigma^2))``
with ``sigma = bandwidth * median_{i<j} ||x_i - x_j||`` (Kornblith et al.'s choice).

RSA (Kriegeskorte et al. 2008): a representational dissimilarity matrix (RDM) per space
(:func:`rdm`: ``correlation`` = 1 - Pearson r of the two rows across dimensions, ``cosine`` =
1 - cosine similarity, ``euclidean`` = Euclidean distance), compared by the Spearman or
Pearson correlation of their upper triangles (:func:`rsa`). rsatoolbox's ``euclidean`` is the
*squared* distance divided by the dimension: identical under Spearman (monotone), different
under Pearson.

Orthogonal Procrustes (Schönemann 1966; the shape metrics of Williams et al. 2021, netrep):
centre the columns and scale each space to unit Frobenius norm, pad the narrower one with zero
columns, and let ``rho = ||Xc^T Yc||_* `` (nuclear norm), the best correlation any orthogonal
map reaches. Then ``procrustes = min_Q ||Xc - Yc Q||_F = sqrt(2 - 2 rho)`` (in [0, sqrt 2])
and ``shape_angle = arccos(rho)`` (in [0, pi/2]; netrep's angular metric with alpha = 1, no
whitening).

Canonical correlation analysis: the canonical correlations ``rho_1 >= rho_2 >= ...`` of
column-centred X and Y are the singular values of ``Ux^T Uy``, where ``Ux`` (n, kx) is an
orthonormal basis of X's column space (its left singular vectors of non-negligible singular
value). They are invariant to any invertible linear map of either space.

* SVCCA (Raghu et al. 2017): X and Y are first reduced to their leading singular directions
  that explain ``variance`` (0.99, the paper's choice) of their variance; ``svcca`` is the
  mean canonical correlation of the reduced spaces.
* PWCCA (Morcos et al. 2018): the canonical correlations of the full spaces, weighted by how
  much of X each canonical direction accounts for: with ``h_i = Ux a_i`` the i-th canonical
  variate of X (unit norm, n values), ``alpha_i = sum_j |<h_i, x_j>|`` over X's centred
  columns ``x_j``, and ``pwcca = sum_i alpha_i rho_i / sum_i alpha_i``. It is asymmetric
  (weights from X), as in the paper's code; the paper reports the distance ``1 - pwcca``.
  We differ from google/svcca's pwcca.py in one respect: it takes the weights against the
  uncentred activations, we against the centred ones (CCA itself is centred, and the
  weights then do not move with the mean).

CCA needs more items than dimensions: with n <= d every canonical correlation is 1 whatever
the spaces (the ``permuted`` baseline shows this). Use SVCCA, fewer dimensions or more items.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform
from scipy.stats import rankdata

from .streaming import CHUNK_ROWS, covariance

DISSIMILARITIES = ("correlation", "cosine", "euclidean")
COMPARISONS = ("spearman", "pearson")


def center_gram(K: np.ndarray) -> np.ndarray:
    """``H K H`` for a symmetric (n, n) matrix: rows and columns centred."""
    row = K.mean(axis=0)
    return K - row[None, :] - row[:, None] + row.mean()


def hsic(K: np.ndarray, L: np.ndarray, *, debiased: bool = False) -> float:
    """HSIC of two (n, n) kernel matrices, up to a constant that cancels in CKA.

    Biased: ``sum(HKH * HLH)`` (``tr(KHLH)``, without the 1/(n-1)^2). Debiased: Song et al.'s
    unbiased estimator as in the module docstring (n >= 4).
    """
    if not debiased:
        return float(np.sum(center_gram(K) * L))  # tr(HKH L) = tr(KHLH): one centring is enough
    n = K.shape[0]
    if n < 4:
        raise ValueError(f"the debiased HSIC needs at least 4 items, got {n}")
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    k1, l1 = Kt.sum(axis=1), Lt.sum(axis=1)
    value = (np.sum(Kt * Lt) + k1.sum() * l1.sum() / ((n - 1) * (n - 2))
             - 2.0 / (n - 2) * (k1 @ l1))
    return float(value / (n * (n - 3)))


def cka(K: np.ndarray, L: np.ndarray, *, debiased: bool = False) -> float:
    """Centred kernel alignment of two (n, n) kernel matrices (NaN when a space is constant)."""
    denom = np.sqrt(hsic(K, K, debiased=debiased) * hsic(L, L, debiased=debiased))
    return float(hsic(K, L, debiased=debiased) / denom) if denom > 0 else float("nan")


def median_distance(X: np.ndarray) -> float:
    """Median Euclidean distance between distinct rows of X (n, d)."""
    return float(np.median(pdist(X)))


def rbf_gram(X: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian kernel matrix (n, n) of the rows of X (n, d) at bandwidth ``sigma``."""
    sq = squareform(pdist(X, "sqeuclidean"))
    return np.exp(-sq / (2.0 * sigma ** 2))


def rdm(X: np.ndarray, dissimilarity: str = "correlation") -> np.ndarray:
    """Representational dissimilarity matrix (n, n) of the rows of X (n, d); see the module
    docstring for the three dissimilarities."""
    if dissimilarity not in DISSIMILARITIES:
        raise ValueError(f"dissimilarity must be one of {DISSIMILARITIES}, got {dissimilarity!r}")
    return squareform(pdist(X, dissimilarity))


def rsa(D1: np.ndarray, D2: np.ndarray, *, method: str = "spearman", mask=None) -> float:
    """Correlation of the upper triangles of two RDMs (n, n).

    mask : bool (n, n), optional; only pairs where it is True (and i < j) are compared, so a
        bootstrap replicate can leave out the pairs of an item with its own copy.
    """
    if method not in COMPARISONS:
        raise ValueError(f"method must be one of {COMPARISONS}, got {method!r}")
    iu = np.triu_indices(D1.shape[0], k=1)
    a, b = D1[iu], D2[iu]
    if mask is not None:
        keep = mask[iu]
        a, b = a[keep], b[keep]
    if method == "spearman":
        a, b = rankdata(a), rankdata(b)
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / denom) if denom > 0 else float("nan")


def procrustes_rho(X: np.ndarray, Y: np.ndarray) -> float:
    """``||Xc^T Yc||_*`` of column-centred, unit-Frobenius X (n, d1) and Y (n, d2), in [0, 1]."""
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    nx, ny = np.linalg.norm(Xc), np.linalg.norm(Yc)
    if nx == 0 or ny == 0:
        return float("nan")
    return float(np.linalg.svd(Xc.T @ Yc, compute_uv=False).sum() / (nx * ny))


def procrustes_distance(rho: float) -> float:
    """Orthogonal Procrustes distance sqrt(2 - 2 rho) of normalised spaces, in [0, sqrt 2]."""
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * rho)))


def shape_angle(rho: float) -> float:
    """Angular shape distance arccos(rho), in [0, pi/2]."""
    return float(np.arccos(np.clip(rho, -1.0, 1.0)))


def _column_basis(X: np.ndarray, variance: float | None = None) -> np.ndarray:
    """Orthonormal basis (n, k) of the column space of centred X (n, d): its left singular
    vectors, all of non-negligible singular value, or the fewest leading ones that explain
    ``variance`` of the total variance."""
    Xc = X - X.mean(axis=0)
    U, sing, _ = np.linalg.svd(Xc, full_matrices=False)
    if sing.size == 0 or sing[0] == 0:
        return U[:, :0]
    rank = int(np.sum(sing > sing[0] * max(Xc.shape) * np.finfo(np.float64).eps))
    if variance is not None:
        explained = np.cumsum(sing[:rank] ** 2) / np.sum(sing[:rank] ** 2)
        rank = min(rank, int(np.searchsorted(explained, variance - 1e-12)) + 1)
    return U[:, :rank]


def canonical_correlations(X: np.ndarray, Y: np.ndarray, variance: float | None = None
                           ) -> np.ndarray:
    """Canonical correlations (min(kx, ky),), descending, of X (n, d1) and Y (n, d2), each
    first reduced as :func:`_column_basis` does with ``variance`` (None: no reduction)."""
    Ux, Uy = _column_basis(X, variance), _column_basis(Y, variance)
    return np.clip(np.linalg.svd(Ux.T @ Uy, compute_uv=False), 0.0, 1.0)


def svcca(X: np.ndarray, Y: np.ndarray, variance: float = 0.99) -> float:
    """SVCCA similarity of X (n, d1) and Y (n, d2), in [0, 1] (NaN when a space is constant)."""
    rho = canonical_correlations(X, Y, variance)
    return float(rho.mean()) if rho.size else float("nan")


def pwcca(X: np.ndarray, Y: np.ndarray) -> float:
    """PWCCA similarity of X (n, d1) to Y (n, d2), weighted by X, in [0, 1] (NaN when a
    space is constant); see the module docstring."""
    Ux, Uy = _column_basis(X), _column_basis(Y)
    if Ux.shape[1] == 0 or Uy.shape[1] == 0:
        return float("nan")
    A, rho, _ = np.linalg.svd(Ux.T @ Uy, full_matrices=False)
    H = Ux @ A                                         # (n, k): X's canonical variates
    alpha = np.abs((X - X.mean(axis=0)).T @ H).sum(axis=0)
    return float(np.clip(alpha @ np.clip(rho, 0.0, 1.0) / alpha.sum(), 0.0, 1.0))


class CrossMoments:
    """Running moments of paired rows: count, column sums, ``X^T X``, ``Y^T Y`` and ``X^T Y``.

    Each chunk's products are taken in the data's precision (float32 stays float32, float16
    becomes float32, float64 stays float64) and summed into float64 totals: a float32 set is
    not copied to float64, which would double the memory traffic and halve the BLAS speed.
    So that the products lose nothing to a mean far from the origin, every row is first
    shifted by the first chunk's mean (CKA does not change under translation; the moments
    are those of the shifted rows).

    Attributes
    ----------
    n : int
    sum_x, sum_y : (d1,), (d2,) float64 column sums of the shifted rows
    gram_x, gram_y, cross : (d1, d1), (d2, d2), (d1, d2) float64 sums of products
    shift_x, shift_y : the shifts, or None before the first chunk
    """

    def __init__(self, dx: int, dy: int):
        self.n = 0
        self.sum_x, self.sum_y = np.zeros(dx), np.zeros(dy)
        self.gram_x, self.gram_y = np.zeros((dx, dx)), np.zeros((dy, dy))
        self.cross = np.zeros((dx, dy))
        self.shift_x = self.shift_y = None

    def update(self, X: np.ndarray, Y: np.ndarray) -> "CrossMoments":
        """Add paired rows X (m, d1), Y (m, d2)."""
        X, Y = np.asarray(X), np.asarray(Y)
        dtype = np.result_type(X.dtype, Y.dtype, np.float32)
        if self.shift_x is None:
            self.shift_x = X.mean(axis=0, dtype=np.float64).astype(dtype)
            self.shift_y = Y.mean(axis=0, dtype=np.float64).astype(dtype)
        Xs, Ys = X.astype(dtype) - self.shift_x, Y.astype(dtype) - self.shift_y
        self.n += Xs.shape[0]
        self.sum_x += Xs.sum(axis=0, dtype=np.float64)
        self.sum_y += Ys.sum(axis=0, dtype=np.float64)
        self.gram_x += Xs.T @ Xs
        self.gram_y += Ys.T @ Ys
        self.cross += Xs.T @ Ys
        return self

    @classmethod
    def from_arrays(cls, X, Y, chunk_rows: int = CHUNK_ROWS) -> "CrossMoments":
        """One pass over X (n, d1) and Y (n, d2), memory-mapped or not, in row chunks."""
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows, Y has {Y.shape[0]}")
        acc = cls(X.shape[1], Y.shape[1])
        for start in range(0, X.shape[0], chunk_rows):
            acc.update(X[start:start + chunk_rows], Y[start:start + chunk_rows])
        return acc

    def linear_cka(self) -> float:
        """Biased linear CKA from the accumulated moments (NaN when a space is constant)."""
        cxx = covariance(self.n, self.sum_x, self.gram_x)
        cyy = covariance(self.n, self.sum_y, self.gram_y)
        cxy = self.cross / self.n - np.outer(self.sum_x / self.n, self.sum_y / self.n)
        denom = np.linalg.norm(cxx) * np.linalg.norm(cyy)
        return float(np.sum(cxy * cxy) / denom) if denom > 0 else float("nan")


def linear_cka_streaming(X, Y, chunk_rows: int = CHUNK_ROWS) -> float:
    """Biased linear CKA of X (n, d1) and Y (n, d2) in one chunked pass; memory
    O(d1^2 + d2^2 + d1 d2) whatever n, so memory-mapped sets larger than RAM work."""
    return CrossMoments.from_arrays(X, Y, chunk_rows).linear_cka()
