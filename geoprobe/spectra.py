"""Spectral effective dimensionality: RankMe, participation ratio and the spectra they read.

RankMe (Garrido et al. 2023, as used by LeJEPA and LeWorldModel)::

    p_k = sigma_k / ||sigma||_1 + eps,   RankMe = exp(-sum_k p_k log p_k)

with ``sigma_k`` the singular values of the (n_items, dim) embedding matrix, *uncentred* as in
the paper, and ``eps = 1e-7`` as the anchor gives. Participation ratio:
``PR = (sum_k lambda_k)^2 / sum_k lambda_k^2`` over the eigenvalues of the (centred)
covariance. Both read spectra computed from streamed moments (``geoprobe.streaming``), so the
eigenproblem is ``dim x dim`` whatever the number of rows. Shared by the
``covariance-spectrum``, ``gaussianity`` and ``fracture`` probes.
"""

from __future__ import annotations

import numpy as np

from .streaming import covariance


def rankme(singular_values: np.ndarray, eps: float = 1e-7) -> float:
    """RankMe of a set of singular values, shape (k,) -> float in [1, k] (up to eps)."""
    s = np.clip(np.asarray(singular_values, dtype=np.float64), 0.0, None)
    total = s.sum()
    if total <= 0:
        return 1.0
    p = s / total + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def participation_ratio(eigenvalues: np.ndarray) -> float:
    """(sum lambda)^2 / sum lambda^2 of covariance eigenvalues, shape (k,) -> float in [1, k]."""
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    denom = np.sum(lam ** 2)
    return float(lam.sum() ** 2 / denom) if denom > 0 else 1.0


def eigvals_desc(M: np.ndarray) -> np.ndarray:
    """Eigenvalues of a symmetric (k, k) matrix, descending and clipped at 0, shape (k,)."""
    return np.clip(np.linalg.eigvalsh(M)[::-1], 0.0, None)


def spectra_from_moments(count, total, gram, center: bool = False):
    """Singular values for RankMe and covariance eigenvalues (both descending) from a row
    count, column sums (dim,) and the uncentred Gram matrix (dim, dim)."""
    cov_eig = eigvals_desc(covariance(count, total, gram))
    if center:
        sing = np.sqrt(cov_eig * count)
    else:
        sing = np.sqrt(eigvals_desc(gram))
    return sing, cov_eig
