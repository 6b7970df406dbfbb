"""Closed forms of the linear autoencoders whose geometry the regularization probes compare.

All three work from the item Gram matrix ``G = X^T X`` (p x p) of a data matrix X (n x p),
with ``G = V diag(s^2) V^T`` from one ``eigh`` (so ``s`` are the singular values of X):

* EASE^R (Steck 2019): ``min ||X - XB||^2 + lam ||B||^2`` s.t. ``diag(B) = 0``;
  ``P = (G + lam I)^-1``, ``B = I - P diagMat(1/diag P)``.
* Obj1 (Steck et al. 2024; dropout-like): ``min ||X - XAB^T||^2 + lam ||AB^T||^2``;
  ``AB^T = V_k diag(s^2 / (s^2 + lam)) V_k^T``. Any ``A = V_k diag(shrink) D``,
  ``B = V_k D^-1`` with invertible diagonal D is optimal.
* Obj2 (weight-decay-like): ``min ||X - XAB^T||^2 + lam (||XA||^2 + ||B||^2)``;
  ``XA = U_k diag(sqrt((s - lam)_+))``, ``B = V_k diag(sqrt((s - lam)_+))``, unique up to a
  rotation (so cosines are unique). Its lam is on the scale of s, obj1's and EASE's on the
  scale of s^2; the probes put them on one grid with ``lam2 = sqrt(lam)`` (say so in results).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.stats import rankdata


def gram(X, weights=None) -> np.ndarray:
    """``X^T diag(weights) X`` as a dense float64 (p, p) array; X dense or sparse (n, p).

    A dense X stays dense (one BLAS product): converting it to sparse first made EASE^R slower
    than a plain dense closed form (benchmarks/results/regularization.md)."""
    if not sparse.issparse(X):
        X = np.asarray(X, dtype=np.float64)
        return X.T @ (X if weights is None else np.asarray(weights, float)[:, None] * X)
    Xs = sparse.csr_matrix(X, dtype=np.float64)
    if weights is None:
        return np.asarray((Xs.T @ Xs).todense())
    return np.asarray((Xs.T @ sparse.diags(np.asarray(weights, float)) @ Xs).todense())


def ease_weights(G: np.ndarray, lam: float) -> np.ndarray:
    """EASE^R weights B of shape (p, p) (zero diagonal) from the Gram matrix G (p, p)."""
    A = np.array(G, dtype=np.float64)  # a copy: the caller's G is reused across lambdas
    A[np.diag_indices_from(A)] += lam
    P = np.linalg.inv(A)
    P /= -np.diag(P)[None, :]  # in place: no (p, p) temporaries beyond the inverse
    np.fill_diagonal(P, 0.0)
    return P


def top_eigen(G: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``rank`` singular values s (rank,) and right singular vectors V_k (p, rank) of X."""
    evals, evecs = np.linalg.eigh(G)
    order = np.argsort(evals)[::-1][:rank]
    return np.sqrt(np.clip(evals[order], 0.0, None)), evecs[:, order]


def obj1_shrink(s: np.ndarray, lam: float) -> np.ndarray:
    """Obj1's per-direction shrinkage ``s^2 / (s^2 + lam)``, shape like s."""
    return s ** 2 / (s ** 2 + lam)


def obj1_factors(s, Vk, lam, D=None) -> tuple[np.ndarray, np.ndarray]:
    """One optimum (A, B), each (p, k), of obj1 for the diagonal rescaling D (k,) (default I)."""
    D = np.ones(Vk.shape[1]) if D is None else np.asarray(D, float)
    return Vk * (obj1_shrink(s, lam) * D), Vk / D


def obj2_factors(s, Vk, lam2) -> tuple[np.ndarray, np.ndarray]:
    """The optimum (A, B), each (p, k), of obj2 with penalty ``lam2`` (singular-value scale).

    Directions with ``s <= lam2`` get zero columns.
    """
    root = np.sqrt(np.clip(s - lam2, 0.0, None))
    return Vk * np.divide(root, s, out=np.zeros_like(s), where=s > 0), Vk * root


def cosine_matrix(V: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarities of V (m, k) -> (m, m); zero rows give cosine 0."""
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    U = np.divide(V, norms, out=np.zeros_like(V, dtype=float), where=norms > 0)
    return U @ U.T


def off_diagonal(C: np.ndarray) -> np.ndarray:
    """Strict upper triangle of a (m, m) matrix (or of each matrix of a (..., m, m) stack)."""
    iu = np.triu_indices(C.shape[-1], 1)
    return C[..., iu[0], iu[1]]


def spearman_rows(A: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Spearman correlations: of every row pair of A (r, m) -> (r, r), or of each row with b.

    A constant row (e.g. all cosines 0 when obj2 zeroes every factor) has no ranking: NaN.
    """
    R = rankdata(np.atleast_2d(A), axis=1)
    R = R - R.mean(1, keepdims=True)
    norms = np.linalg.norm(R, axis=1, keepdims=True)
    R = np.divide(R, norms, out=np.full_like(R, np.nan), where=norms > 0)
    if b is None:
        return R @ R.T
    rb = rankdata(b)
    rb = rb - rb.mean()
    return R @ (rb / np.linalg.norm(rb))


def cluster_gap(C: np.ndarray, clusters: np.ndarray) -> float:
    """Mean within-cluster minus mean between-cluster off-diagonal cosine of C (m, m)."""
    same = clusters[:, None] == clusters[None, :]
    off = ~np.eye(len(clusters), dtype=bool)
    return float(C[same & off].mean() - C[~same].mean())
