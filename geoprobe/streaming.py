"""Streaming second moments: one implementation for in-memory and memory-mapped data.

:class:`MomentAccumulator` keeps the sufficient statistics of a covariance spectrum (row
count, column sums and the uncentred Gram matrix ``X^T X``) with ``update(chunk)`` /
``compute``-style methods, so a set larger than RAM is read in chunks and gives the same
numbers as the in-memory path. :func:`blocked_moments` keeps the same statistics per block of
resampling units, which makes a cluster bootstrap of any spectrum statistic cost one
``(n_blocks, d, d)`` weighted sum per replicate instead of a pass over the data.
"""

from __future__ import annotations

import numpy as np

CHUNK_ROWS = 32768


def covariance(count, total: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """Maximum-likelihood covariance (divides by ``count``) from a row count, column sums
    (dim,) and the uncentred Gram matrix (dim, dim)."""
    mean = total / count
    return gram / count - np.outer(mean, mean)


class MomentAccumulator:
    """Running count, column sum and Gram matrix of rows of width ``dim`` (float64)."""

    def __init__(self, dim: int):
        self.dim = dim
        self.n = 0
        self.sum = np.zeros(dim)
        self.gram = np.zeros((dim, dim))

    def update(self, chunk: np.ndarray) -> "MomentAccumulator":
        """Add rows; ``chunk`` has shape (n_rows, dim)."""
        chunk = np.asarray(chunk, dtype=np.float64)
        self.n += chunk.shape[0]
        self.sum += chunk.sum(axis=0)
        self.gram += chunk.T @ chunk
        return self

    @classmethod
    def from_array(cls, X: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> "MomentAccumulator":
        acc = cls(X.shape[1])
        for start in range(0, X.shape[0], chunk_rows):
            acc.update(X[start:start + chunk_rows])
        return acc

    def covariance(self) -> np.ndarray:
        """Maximum-likelihood covariance (divides by n), shape (dim, dim)."""
        return covariance(self.n, self.sum, self.gram)


def blocked_moments(X: np.ndarray, codes: np.ndarray, n_blocks: int,
                    chunk_rows: int = CHUNK_ROWS):
    """Per-block row counts, column sums and Gram matrices.

    Parameters
    ----------
    X : array of shape (n_rows, dim), memory-mapped or not
    codes : int array of shape (n_rows,) with values in [0, n_blocks)
    n_blocks : int

    Returns
    -------
    counts : (n_blocks,), sums : (n_blocks, dim), grams : (n_blocks, dim, dim)
    """
    d = X.shape[1]
    counts = np.bincount(codes, minlength=n_blocks).astype(np.float64)
    sums = np.zeros((n_blocks, d))
    grams = np.zeros((n_blocks, d, d))
    for start in range(0, X.shape[0], chunk_rows):
        chunk = np.asarray(X[start:start + chunk_rows], dtype=np.float64)
        c = codes[start:start + chunk_rows]
        order = np.argsort(c, kind="stable")
        c, chunk = c[order], chunk[order]
        bounds = np.flatnonzero(np.diff(c)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(c)]):
            block = chunk[lo:hi]
            sums[c[lo]] += block.sum(axis=0)
            grams[c[lo]] += block.T @ block
    return counts, sums, grams
