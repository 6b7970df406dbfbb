"""Gaussianity and collapse diagnostics: sliced Epps-Pulley (SIGReg), RankMe, alpha-ReQ,
participation ratio, LiDAR, uniformity, alignment and anisotropy. Label-free and streaming.

Definitions (LeWorldModel, Maes et al. 2026, arXiv 2603.19312; LeJEPA, Balestriero & LeCun 2025, arXiv 2511.08544)
---------------------------------------
Sliced Epps-Pulley, the SIGReg statistic of LeJEPA / LeWorldModel. For a unit direction ``a``
and projections ``x_n = a^T z_n``::

    t = linspace(0, 3, 17),  dt = t[1] - t[0]
    w_k = (dt at both ends, 2 dt inside) * exp(-t_k^2 / 2)
    T_a = N * sum_k w_k [ (mean_n cos(t_k x_n) - exp(-t_k^2/2))^2 + (mean_n sin(t_k x_n))^2 ]

and SIGReg is the mean of ``T_a`` over random unit directions (256 by default; the anchor's
training code resamples 1024 per step). Every term is a per-row sum of ``cos(t_k x_n)`` and
``sin(t_k x_n)``, so :class:`EppsPulleyAccumulator` keeps those sums (per block of resampling
units) and any chunking of the rows gives the same statistic.

SIGReg's target is the standard Gaussian N(0, I), so the raw statistic also measures scale.
``standardize`` chooses what is tested:

- ``"none"``: the rows as given, against N(0, I): exactly the training regulariser.
- ``"scale"`` (default): centred and divided by one global scale ``sqrt(trace(C)/d)``, against
  an isotropic Gaussian of any scale: fails for non-Gaussian *or* anisotropic spaces.
- ``"whiten"``: centred and whitened with the sample covariance (``C^{-1/2}`` on its
  non-null eigenspace), against "some Gaussian": fails only for non-Gaussian shape. Comparing
  ``scale`` and ``whiten`` separates "not isotropic" from "not Gaussian". A collapsed
  direction has zero projection after whitening, which the statistic flags (cf(0) = 1).

Calibration: the p-value compares the mean statistic with a Monte Carlo null of
isotropic Gaussian samples of the same n and d put through the same standardisation (with its
estimated mean, scale or covariance, so the null is exact for every mode), with their own
random directions. ``N * integral |cf_hat - cf|^2`` has an n-independent limit under the null,
so above ``null_max_rows`` rows the null is simulated at ``null_max_rows`` (say so in the
report: for whitening with d close to n the finite-n null differs). The null is one seeded
draw shared by every run (so it can be cached), and a small one pins the 0.05 quantile
loosely: 100 replicates gave Gaussian samples p <= 0.05 in 8-10% of trials. It therefore
starts at ``n_null`` (250) replicates and doubles, up to ``max_null`` (2000), while the
p-value is within 3 Monte Carlo standard errors of ``p_level`` (0.05); ``sigreg_p`` reports
the null size as its ``n`` and +-2 standard errors as its interval, ``sigreg_p_se`` the
error. Null batches of 50 replicates are cached on disk per (n, d, n_directions, seed, mode,
grid, batch, version), written atomically. The per-direction
null gives a critical value and the fraction of directions that exceed it (5% under the null):
the distribution over directions shows whether a failure is global or confined to a few.

Spectrum statistics (from the streamed Gram matrix, ``geoprobe.streaming``):
- RankMe and participation ratio: ``geoprobe.spectra`` (uncentred RankMe, anchor).
- alpha-ReQ (Agrawal et al. 2022): ``alpha`` in ``lambda_k ~ k^{-alpha}``, the least-squares
  slope of log covariance eigenvalue on log rank over ranks 5..100 (1-based, clipped to d and
  to positive eigenvalues), as the anchor states; alpha -> 0 for an isotropic space.
- LiDAR (Thilak et al. 2023), when a column groups augmented views of one sample: the RankMe
  entropy of the eigenvalues of ``S_w^{-1/2} S_b S_w^{-1/2}``, ``S_b`` the covariance of the
  group means (groups weighted equally), ``S_w`` the pooled within-group covariance
  ``+ delta I`` (``delta = 1e-4``, absolute, as in the paper: scale-dependent).

Hypersphere statistics (Wang & Isola 2020) on ``u = z / ||z||``:
- uniformity ``log E exp(-2 ||u_i - u_j||^2)`` over random pairs ``i != j`` (``n_pairs``);
- alignment ``E ||u_i - u_j||^2`` over pairs of views of the same sample (alpha = 2), exact
  from per-group sums: ``sum_g (2 n_g^2 - 2 ||sum u||^2) / sum_g n_g (n_g - 1)``;
- anisotropy: mean cosine over all ordered pairs ``i != j``, exact from the sum of unit
  vectors, ``(||sum u||^2 - N) / (N (N - 1))``: the expectation of "mean cosine of random
  pairs" without sampling noise.

Confidence intervals: units (the ``group`` column, else the ``views`` column, else rows) are
split into at most ``max_blocks`` random blocks whose sufficient statistics are kept; random
blocks of independent units are independent, so each bootstrap replicate resamples blocks
(multinomial weights over blocks) and reweights their sums, with the basic interval. Pair
statistics weight a pair by the product of its two blocks' weights. SIGReg is a degenerate
V-statistic that resampling inflates by about its null level, so its interval is the
bootstrap's spread centred on the estimate (``value + q - mean(boot)``), floored at 0.
Baselines per layer: ``gaussian`` (the Monte Carlo null for Epps-Pulley, an isotropic Gaussian
sample of the same n and d for the others) and, added by the core, the random-init twin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from geoprobe.contract import (Check, Interval, NON_NEGATIVE, OPEN_UNIT, Options, POSITIVE,
                              POSITIVE_INT, SequenceOf)
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import ProbeInputError
from geoprobe.plotting import (BASELINE_COLOR, PALETTE, baseline_band, layer_axis,
                               legend_outside, new_figure)
from geoprobe.probe import Example, Metric, Probe, ProbeResult, Requirements
from geoprobe.provenance import atomic_path, cache_root
from geoprobe.sigreg import ep_grid
from geoprobe.spectra import participation_ratio, rankme, spectra_from_moments
from geoprobe.stats import ClusterBootstrap, group_codes
from geoprobe.streaming import MomentAccumulator, blocked_moments

STANDARDIZE = ("none", "scale", "whiten")
_EP_ELEMENTS = 1 << 21  # rows * directions * t-points held at once (32 MB of complex128)
CHUNK_ROWS = 32768
N_NULL = 250  # null replicates to start with
MAX_NULL = 2000  # ... and at most, for samples near the decision level
P_LEVEL = 0.05  # the level the null is grown to decide
NULL_BATCH = 50  # replicates per cached null file
NULL_VERSION = 2  # in the cache key: bump when the null's draws or statistic change


# -- the statistic ------------------------------------------------------------------------
def random_directions(dim: int, n_directions: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random unit vectors as columns, shape (dim, n_directions)."""
    A = rng.standard_normal((dim, n_directions))
    return A / np.linalg.norm(A, axis=0, keepdims=True)


def standardizer(moments: MomentAccumulator, mode: str):
    """``(M, offset)`` with standardised rows ``x @ M - offset`` for ``mode`` in STANDARDIZE.

    M has shape (dim, dim); offset (dim,). Built from the streamed first and second moments.
    """
    d = moments.dim
    if mode == "none":
        return np.eye(d), np.zeros(d)
    mean = moments.sum / moments.n
    cov = moments.covariance()
    if mode == "scale":
        M = np.eye(d) / np.sqrt(max(np.trace(cov) / d, 1e-300))
    elif mode == "whiten":
        lam, V = np.linalg.eigh(cov)
        keep = lam > max(lam.max(), 1e-300) * 1e-10
        M = (V[:, keep] / np.sqrt(lam[keep])) @ V[:, keep].T
    else:
        raise ProbeInputError(f"standardize must be one of {STANDARDIZE}, got {mode!r}")
    return M, mean @ M


def _block_sums(values: np.ndarray, codes: np.ndarray, n_blocks: int) -> np.ndarray:
    """Sum rows of ``values`` (b, ...) per block code (b,) -> (n_blocks, ...)."""
    out = np.zeros((n_blocks,) + values.shape[1:])
    order = np.argsort(codes, kind="stable")
    c = codes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(c)) + 1]
    out[c[starts]] = np.add.reduceat(values[order], starts, axis=0)
    return out


class EppsPulleyAccumulator:
    """Streaming sliced Epps-Pulley: per-block sums of cos/sin of ``t_k * projection``.

    Parameters
    ----------
    projection : array (dim, n_directions)
        Standardising map times unit directions: a row ``z`` projects to ``z @ projection -
        offset``.
    offset : array (n_directions,)
    t_max, n_points : the anchor's grid (3.0, 17)
    n_blocks : int
        Number of bootstrap blocks whose sums are kept separately (1 = no bootstrap).
    """

    def __init__(self, projection, offset, *, t_max=3.0, n_points=17, n_blocks=1):
        self.projection = np.asarray(projection, dtype=np.float64)
        self.offset = np.asarray(offset, dtype=np.float64)
        self.t, self.phi, self.weights = (a.numpy() for a in ep_grid(t_max, n_points,
                                                                      dtype=torch.float64))
        self.dt = self.t[1] - self.t[0]
        k = self.projection.shape[1]
        self.counts = np.zeros(n_blocks)
        self.cos_sum = np.zeros((n_blocks, n_points, k))
        self.sin_sum = np.zeros((n_blocks, n_points, k))

    def update(self, chunk: np.ndarray, blocks: np.ndarray | None = None):
        """Add rows ``chunk`` (b, dim); ``blocks`` (b,) gives each row's block (default 0)."""
        chunk = np.asarray(chunk, dtype=np.float64)
        n_blocks, nt, k = self.cos_sum.shape
        if blocks is None:
            blocks = np.zeros(chunk.shape[0], dtype=np.int64)
        order = np.argsort(blocks, kind="stable")
        chunk, blocks = chunk[order], blocks[order]
        self.counts += np.bincount(blocks, minlength=n_blocks)
        step = max(1, _EP_ELEMENTS // (k * nt))
        for lo in range(0, chunk.shape[0], step):
            proj = chunk[lo:lo + step] @ self.projection - self.offset
            # The grid is uniform, t_j = j dt, so exp(i t_j x) = exp(i dt x)^j: one complex
            # exponential per projection and a running product replace 2 * n_points
            # transcendental calls (several times faster; rounding grows like j * 1e-16).
            step_phase = np.exp(1j * self.dt * proj)
            powers = np.empty((nt,) + proj.shape, dtype=np.complex128)
            powers[0] = 1.0
            for j in range(1, nt):
                np.multiply(powers[j - 1], step_phase, out=powers[j])
            b = blocks[lo:lo + step]
            bounds = np.r_[0, np.flatnonzero(np.diff(b)) + 1, b.size]
            for start, stop in zip(bounds[:-1], bounds[1:]):
                total = powers[:, start:stop].sum(axis=1)
                self.cos_sum[b[start]] += total.real
                self.sin_sum[b[start]] += total.imag
        return self

    def statistic(self, block_weights: np.ndarray | None = None) -> np.ndarray:
        """Per-direction statistic ``T_a``, shape (n_directions,); blocks reweighted if given."""
        w = np.ones(self.counts.shape[0]) if block_weights is None else block_weights
        n = w @ self.counts
        mc = np.tensordot(w, self.cos_sum, 1) / n
        ms = np.tensordot(w, self.sin_sum, 1) / n
        return n * (self.weights @ ((mc - self.phi[:, None]) ** 2 + ms ** 2))


def epps_pulley(X: np.ndarray, directions: np.ndarray, *, standardize: str = "none",
                t_max: float = 3.0, n_points: int = 17, chunk_rows: int = CHUNK_ROWS):
    """Sliced Epps-Pulley of rows ``X`` (n, dim), memory-mapped or not, streamed in chunks.

    Returns the filled :class:`EppsPulleyAccumulator` (``.statistic()`` gives the per-direction
    values, shape (n_directions,); SIGReg is their mean).
    """
    moments = MomentAccumulator(X.shape[1])
    if standardize != "none":
        moments = MomentAccumulator.from_array(X, chunk_rows)
    M, offset = standardizer(moments, standardize)
    acc = EppsPulleyAccumulator(M @ directions, offset @ directions, t_max=t_max,
                                n_points=n_points)
    for start in range(0, X.shape[0], chunk_rows):
        acc.update(X[start:start + chunk_rows])
    return acc


def default_cache_dir() -> Path:
    """Subfolder ``epps-pulley-null`` of geoprobe's cache (:func:`geoprobe.provenance.cache_root`)."""
    return cache_root() / "epps-pulley-null"


class EppsPulleyNull:
    """Monte Carlo null of the sliced Epps-Pulley statistic, grown on demand.

    Each replicate is an isotropic Gaussian sample (n, dim) with its own ``n_directions``
    random unit directions, put through the same standardisation as the data. Replicates come
    in batches of :data:`NULL_BATCH`, batch ``b`` drawn from the seed ``(seed, n, dim,
    n_directions, mode, b)`` alone (a null smaller than a batch computes only what it uses): a null of size B is always the first B replicates of any
    larger one, so a null can grow (:func:`sequential_p_value`) without changing what a
    smaller one holds, and every configuration (including each standardisation) gets its own
    draws. Batches are cached as ``.npy`` in ``cache_dir`` (default :func:`default_cache_dir`;
    ``False`` disables), keyed by every one of those inputs, the grid and
    :data:`NULL_VERSION`, and written atomically; a damaged file is recomputed.

    Parameters
    ----------
    n, dim, n_directions : int
    standardize : one of STANDARDIZE
    seed : int
    t_max, n_points : the Epps-Pulley grid
    cache_dir : path, None or False
    """

    def __init__(self, n: int, dim: int, n_directions: int, *, standardize: str = "scale",
                 seed: int = 0, t_max: float = 3.0, n_points: int = 17, cache_dir=None):
        if standardize not in STANDARDIZE:
            raise ProbeInputError(f"standardize must be one of {STANDARDIZE}, got "
                                  f"{standardize!r}")
        self.n, self.dim, self.n_directions = n, dim, n_directions
        self.standardize, self.seed = standardize, seed
        self.t_max, self.n_points = t_max, n_points
        self.cache_dir = cache_dir
        self._batches: list[np.ndarray] = []  # batches drawn so far in this process

    def draw(self, size: int) -> np.ndarray:
        """The first ``size`` replicates' per-direction values, shape (size, n_directions)."""
        n_batches = -(-size // NULL_BATCH)
        for b in range(n_batches):  # batches are drawn in order: b <= len(self._batches)
            want = min(NULL_BATCH, size - b * NULL_BATCH)
            if b == len(self._batches):
                self._batches.append(self._batch(b, want))
            elif len(self._batches[b]) < want:
                self._batches[b] = self._batch(b, want)
        return np.concatenate(self._batches[:n_batches])[:size]

    def _batch(self, index: int, count: int) -> np.ndarray:
        """The first ``count`` replicates of batch ``index``: a prefix of the full batch,
        since replicates are drawn from the batch's generator one after another."""
        key = (f"v{NULL_VERSION}-n{self.n}-d{self.dim}-k{self.n_directions}-s{self.seed}-"
               f"{self.standardize}-t{self.t_max:g}x{self.n_points}-b{index}x{NULL_BATCH}")
        done = np.empty((0, self.n_directions))
        path = None
        if self.cache_dir is not False:
            path = Path(self.cache_dir or default_cache_dir()) / f"ep-null-{key}.npy"
            if path.exists():
                try:
                    cached = np.load(path, allow_pickle=False)
                    if (cached.ndim == 2 and cached.shape[1] == self.n_directions
                            and cached.shape[0] <= NULL_BATCH):
                        done = cached
                except (OSError, ValueError):
                    pass  # a damaged cache file is recomputed and replaced
        if len(done) >= count:
            return done[:count]
        rng = np.random.default_rng([self.seed, self.n, self.dim, self.n_directions,
                                     STANDARDIZE.index(self.standardize), index])
        batch = np.empty((count, self.n_directions))
        batch[:len(done)] = done
        for r in range(count):
            # replicates already known are drawn again (cheap) only to advance the generator
            G = rng.standard_normal((self.n, self.dim))
            A = random_directions(self.dim, self.n_directions, rng)
            if r >= len(done):
                batch[r] = epps_pulley(G, A, standardize=self.standardize, t_max=self.t_max,
                                       n_points=self.n_points).statistic()
        if path is not None:
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, batch)
        return batch


def epps_pulley_null(n: int, dim: int, n_directions: int, *, standardize: str = "scale",
                     n_null: int = N_NULL, seed: int = 0, t_max: float = 3.0,
                     n_points: int = 17, cache_dir=None) -> np.ndarray:
    """Per-direction Epps-Pulley values of ``n_null`` isotropic Gaussian samples (n, dim):
    the first ``n_null`` replicates of :class:`EppsPulleyNull`, shape (n_null, n_directions)."""
    return EppsPulleyNull(n, dim, n_directions, standardize=standardize, seed=seed,
                          t_max=t_max, n_points=n_points, cache_dir=cache_dir).draw(n_null)


def null_p_value(observed: float, null_means: np.ndarray) -> float:
    """One-sided Monte Carlo p-value ``(1 + #{null >= observed}) / (1 + n_null)``."""
    return float((1 + np.sum(null_means >= observed)) / (1 + null_means.size))


@dataclass
class NullTest:
    """A Monte Carlo p-value with its precision.

    p_value : ``(1 + #{null >= observed}) / (1 + null_size)``
    p_se : its Monte Carlo standard error ``sqrt(p (1 - p) / null_size)``
    null_size : replicates used
    null : (null_size, n_directions) the per-direction null they came from
    """

    p_value: float
    p_se: float
    null_size: int
    null: np.ndarray


def sequential_p_value(observed: float, null: EppsPulleyNull, *, n_null: int = N_NULL,
                       max_null: int = MAX_NULL, level: float = P_LEVEL,
                       z: float = 3.0) -> NullTest:
    """p-value of the mean statistic ``observed`` with a null grown until it decides.

    Starts with ``n_null`` replicates and doubles them (up to ``max_null``) while the p-value
    lies within ``z`` Monte Carlo standard errors of ``level``: a clear rejection or a clear
    pass stops early, and only samples near the decision pay for a large null. Because the
    null is one fixed draw shared by every user (so that it can be cached), what matters for
    calibration is how closely it pins the ``level`` quantile: with 100 replicates the chance
    that a Gaussian sample is rejected at 0.05 varies from null draw to null draw with a
    standard deviation of about 0.022 (8-10% for the old seed-0 null), with 2000 about 0.005.
    """
    size = min(n_null, max_null)
    while True:
        values = null.draw(size)
        p = null_p_value(observed, values.mean(1))
        se = float(np.sqrt(p * (1 - p) / size))
        if size >= max_null or abs(p - level) > z * se:
            return NullTest(p, se, size, values)
        size = min(2 * size, max_null)


class EppsPulleyTest(NamedTuple):
    """:func:`sliced_epps_pulley_test`'s answer; ``per_direction`` has shape (n_directions,)
    and ``statistic`` is its mean."""

    statistic: float
    p_value: float
    p_se: float
    null_size: int
    per_direction: np.ndarray


def sliced_epps_pulley_test(X: np.ndarray, *, n_directions: int = 256,
                            standardize: str = "scale", n_null: int = N_NULL,
                            max_null: int = MAX_NULL, p_level: float = P_LEVEL,
                            null_seed: int = 0, rng: np.random.Generator, t_max: float = 3.0,
                            n_points: int = 17, cache_dir=None,
                            chunk_rows: int = CHUNK_ROWS) -> EppsPulleyTest:
    """SIGReg of rows ``X`` (n, dim) with its Monte Carlo p-value against a Gaussian.

    Directions come from ``rng``; the null grows from ``n_null`` to at most ``max_null``
    replicates until the p-value is clearly on one side of ``p_level``
    (:func:`sequential_p_value`).
    """
    directions = random_directions(X.shape[1], n_directions, rng)
    per_direction = epps_pulley(X, directions, standardize=standardize, t_max=t_max,
                                n_points=n_points, chunk_rows=chunk_rows).statistic()
    null = EppsPulleyNull(X.shape[0], X.shape[1], n_directions, standardize=standardize,
                          seed=null_seed, t_max=t_max, n_points=n_points, cache_dir=cache_dir)
    statistic = float(per_direction.mean())
    test = sequential_p_value(statistic, null, n_null=n_null, max_null=max_null,
                              level=p_level)
    return EppsPulleyTest(statistic, test.p_value, test.p_se, test.null_size, per_direction)


# -- spectrum and sphere statistics ---------------------------------------------------------
def alpha_req(eigenvalues: np.ndarray, ranks=(5, 100)) -> float:
    """alpha in ``lambda_k ~ k^-alpha``: minus the log-log slope over 1-based ``ranks`` (lo, hi).

    ``eigenvalues`` (k,) in any order; ranks beyond the positive eigenvalues are dropped.
    NaN when fewer than 3 ranks remain.
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=np.float64))[::-1]
    k = np.arange(1, lam.size + 1)
    sel = (k >= ranks[0]) & (k <= ranks[1]) & (lam > lam[0] * 1e-12)
    if sel.sum() < 3:
        return float("nan")
    slope = np.polyfit(np.log(k[sel]), np.log(lam[sel]), 1)[0]
    return float(-slope)


def lidar(group_sums: np.ndarray, group_counts: np.ndarray, gram: np.ndarray,
          delta: float = 1e-4, eps: float = 1e-7) -> float:
    """LiDAR from per-group sums (g, d), counts (g,) and the total Gram matrix (d, d)."""
    keep = group_counts > 0
    sums, counts = group_sums[keep], group_counts[keep]
    means = sums / counts[:, None]
    within = (gram - (sums.T / counts) @ sums) / counts.sum()
    within += delta * np.eye(gram.shape[0])
    centred = means - means.mean(0)
    between = centred.T @ centred / means.shape[0]
    lam, V = np.linalg.eigh(within)
    root_inv = (V / np.sqrt(np.clip(lam, 1e-300, None))) @ V.T
    eig = np.clip(np.linalg.eigvalsh(root_inv @ between @ root_inv), 0.0, None)
    return rankme(eig, eps)


def _unit_rows(chunk: np.ndarray) -> np.ndarray:
    return chunk / np.maximum(np.linalg.norm(chunk, axis=1, keepdims=True), 1e-12)


def random_pairs(n: int, n_pairs: int, rng: np.random.Generator):
    """``n_pairs`` pairs ``(i, j)`` with ``i != j``, uniform, each of shape (n_pairs,)."""
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n
    return i, j


def uniformity_terms(X: np.ndarray, i: np.ndarray, j: np.ndarray, t: float = 2.0,
                     chunk: int = 8192) -> np.ndarray:
    """``exp(-t ||u_i - u_j||^2)`` per pair, shape (n_pairs,); rows read in sorted batches."""
    out = np.empty(i.shape[0])
    for lo in range(0, i.shape[0], chunk):
        ii, jj = i[lo:lo + chunk], j[lo:lo + chunk]
        rows, inv = np.unique(np.r_[ii, jj], return_inverse=True)
        U = _unit_rows(np.asarray(X[rows], dtype=np.float64))
        diff = U[inv[:ii.size]] - U[inv[ii.size:]]
        out[lo:lo + chunk] = np.exp(-t * np.einsum("ij,ij->i", diff, diff))
    return out


# -- the probe ---------------------------------------------------------------------------------
class Gaussianity(Probe):
    """Label-free Gaussianity and collapse diagnostics per layer (see module docstring).

    Parameters
    ----------
    n_directions : int, default 256
        Random unit directions for the sliced Epps-Pulley statistic.
    standardize : {"none", "scale", "whiten"} or list of them, default ("scale", "whiten")
        Spaces in which the statistic is reported (label ``space``).
    t_max, n_points : float, int
        The anchor's integration grid (3.0, 17).
    n_null : int, default 250
        Monte Carlo null replicates to start with (p-value floor ``1/(n_null+1)``).
    max_null : int, default 2000
        Most null replicates: the null doubles from ``n_null`` while a layer's p-value is
        within 3 Monte Carlo standard errors of ``p_level`` (:func:`sequential_p_value`).
    p_level : float, default 0.05
        The test level the null is grown to decide.
    null_seed : int, default 0
        Seed of the null (fixed so the cache is shared across runs).
    null_max_rows : int, default 5000
        Rows of the simulated null when the set has more (the statistic's null is n-free).
    cache_dir : str, path, None or False
        Null cache (None: ``$GEOPROBE_CACHE`` or ``~/.cache/geoprobe``; False: no cache).
    group : str or None
        Item column naming the resampling unit (sentence, episode) for CIs.
    views : str or None
        Item column grouping augmented views of one sample: enables LiDAR and alignment.
    n_pairs : int, default 20000
        Random pairs for uniformity.
    req_ranks : (int, int), default (5, 100)
        Rank range of the alpha-ReQ fit.
    lidar_delta : float, default 1e-4
    eps : float, default 1e-7
        RankMe / LiDAR smoothing constant.
    n_boot, level, max_blocks : bootstrap settings (200, 0.95, 32).
    chunk_rows : int
        Rows read at a time (memory is ``chunk_rows * dim`` plus the block statistics).
    """

    name = "gaussianity"
    summary = ("SIGReg / sliced Epps-Pulley with calibrated p-value, RankMe, alpha-ReQ, PR, "
               "LiDAR, uniformity, alignment, anisotropy (streaming).")
    memory = ("streams row chunks: per-block Gram matrices and Epps-Pulley sums, 8 max_blocks (d^2 + "
              "n_points n_directions) bytes, plus chunk_rows d and n_pairs d")
    requires = Requirements(min_items=8)
    parameter_constraints = {
        "n_directions": [POSITIVE_INT],
        "standardize": [Options(STANDARDIZE), SequenceOf(Options(STANDARDIZE), min_len=1)],
        "t_max": [POSITIVE], "n_points": [Interval(int, 2, None)], "n_null": [POSITIVE_INT],
        "max_null": [POSITIVE_INT], "p_level": [OPEN_UNIT],
        "null_seed": [Interval(int, 0, None)], "null_max_rows": [Interval(int, 8, None)],
        "cache_dir": [str, Path, None, Check(lambda v: v is False, "False")],
        "group": [str, None], "views": [str, None], "n_pairs": [POSITIVE_INT],
        "req_ranks": [SequenceOf(POSITIVE_INT, min_len=2, max_len=2)],
        "lidar_delta": [POSITIVE], "eps": [NON_NEGATIVE], "n_boot": [POSITIVE_INT],
        "level": [OPEN_UNIT], "max_blocks": [POSITIVE_INT], "chunk_rows": [POSITIVE_INT],
    }
    column_parameters = ("group", "views")
    metric_directions = {
        "rankme": True, "participation_ratio": True, "alpha_req": None, "lidar": True,
        "anisotropy": False, "uniformity": False, "alignment": False, "sigreg": False,
        "sigreg_p": True, "sigreg_p_se": None, "sigreg_z": False, "directions_rejected": False,
    }

    @classmethod
    def example_input(cls, rng) -> Example:
        # 60 samples seen in two augmented views each; layer 1 is anisotropic
        base = rng.standard_normal((60, 10))
        views = np.repeat(base, 2, axis=0) + 0.3 * rng.standard_normal((120, 10))
        layers = np.stack([views, views * np.linspace(0.1, 2.0, 10)]).astype(np.float32)
        items = {"sample": np.repeat(np.arange(60), 2)}
        return Example(EmbeddingSet(layers, items, source="example"),
                       {"views": "sample", "n_directions": 16, "n_null": 20, "max_null": 40,
                        "cache_dir": False,
                        "n_pairs": 500, "req_ranks": (2, 8), "n_boot": 20, "max_blocks": 8})

    def __init__(self, n_directions=256, standardize=("scale", "whiten"), t_max=3.0,
                 n_points=17, n_null=N_NULL, max_null=MAX_NULL, p_level=P_LEVEL, null_seed=0,
                 null_max_rows=5000, cache_dir=None,
                 group=None, views=None, n_pairs=20000, req_ranks=(5, 100), lidar_delta=1e-4,
                 eps=1e-7, n_boot=200, level=0.95, max_blocks=32, chunk_rows=CHUNK_ROWS):
        self.n_directions = n_directions
        self.standardize = standardize
        self.t_max = t_max
        self.n_points = n_points
        self.n_null = n_null
        self.max_null = max_null
        self.p_level = p_level
        self.null_seed = null_seed
        self.null_max_rows = null_max_rows
        self.cache_dir = cache_dir
        self.group = group
        self.views = views
        self.n_pairs = n_pairs
        self.req_ranks = req_ranks
        self.lidar_delta = lidar_delta
        self.eps = eps
        self.n_boot = n_boot
        self.level = level
        self.max_blocks = max_blocks
        self.chunk_rows = chunk_rows

    # -- evaluation ------------------------------------------------------------------------
    def _modes(self) -> list[str]:
        modes = [self.standardize] if isinstance(self.standardize, str) else list(
            self.standardize)
        bad = [m for m in modes if m not in STANDARDIZE]
        if bad or not modes:
            raise ProbeInputError(f"gaussianity: standardize must be among {STANDARDIZE}, "
                                  f"got {self.standardize!r}")
        return modes

    def evaluate(self, ctx) -> ProbeResult:
        modes = self._modes()
        n, d = ctx.embeddings.n_items, ctx.embeddings.dim
        unit_col = self.group or self.views
        boot = ClusterBootstrap(ctx.column(unit_col) if unit_col else None, n,
                                n_boot=self.n_boot, rng=ctx.rng, unit=unit_col or "rows",
                                max_blocks=self.max_blocks, level=self.level)
        blocks, boot_w = boot.block_of_row, boot.counts.astype(np.float64)
        n_blocks = boot.n_blocks
        view_codes, n_views = (group_codes(ctx.column(self.views), n) if self.views
                               else (None, 0))
        directions = random_directions(d, self.n_directions, ctx.rng)
        pair_i, pair_j = random_pairs(n, self.n_pairs, ctx.rng)
        n_null_rows = min(n, self.null_max_rows)
        nulls = {m: EppsPulleyNull(n_null_rows, d, self.n_directions, standardize=m,
                                   seed=self.null_seed, t_max=self.t_max,
                                   n_points=self.n_points, cache_dir=self.cache_dir)
                 for m in modes}
        null_sizes = {m: {} for m in modes}
        gauss = self._layer_stats(
            np.random.default_rng(self.null_seed).standard_normal((n_null_rows, d)), modes,
            directions, np.zeros(n_null_rows, dtype=np.int64), 1, None, 0,
            *random_pairs(n_null_rows, self.n_pairs, ctx.rng))
        metrics, arrays = [], {f"ep_directions_{m}": [] for m in modes}
        for layer, X in ctx.iter_layers(dtype=None):
            st = self._layer_stats(X, modes, directions, blocks, n_blocks, view_codes, n_views,
                                   pair_i, pair_j)
            # replicate-major, so each replicate's spectrum is decomposed once for all names
            rows = [{name: fn(w) for name, fn in st["boot"].items()} for w in boot_w]
            samples = {name: np.array([r[name] for r in rows]) for name in st["boot"]}
            labels = {"layer": layer}
            for name, value in st["values"].items():
                metric_name, space = (name.split(":") + [None])[:2]
                lab = dict(labels, space=space) if space else dict(labels)
                # Resampling duplicates rows, which inflates SIGReg by about its null level (a
                # degenerate V-statistic: neither percentile nor basic interval is centred).
                # Keep the bootstrap's spread, centred on the estimate.
                kind, bounds = (("shifted", (0.0, None)) if metric_name == "sigreg"
                                else ("basic", (None, None)))
                metrics.append(boot.metric(metric_name, value, samples.get(name), kind=kind,
                                           bounds=bounds,
                                           higher_is_better=_HIGHER.get(metric_name), **lab))
                g = gauss["values"].get(name)
                if g is not None and not metric_name.startswith("sigreg"):
                    metrics.append(Metric(metric_name, g, n=n_null_rows, unit="rows",
                                          labels=dict(lab, baseline="gaussian")))
            for m in modes:
                per_dir = st["per_direction"][m]
                obs = float(per_dir.mean())
                test = sequential_p_value(obs, nulls[m], n_null=self.n_null,
                                          max_null=self.max_null, level=self.p_level)
                null_sizes[m][layer] = test.null_size
                null_mean = test.null.mean(1)
                crit = np.quantile(test.null, 0.95)
                lab = dict(labels, space=m)
                z = (obs - null_mean.mean()) / max(null_mean.std(ddof=1), 1e-300)
                # the p-value's interval is its Monte Carlo error (+-2 SE) over null_size draws
                p, se = test.p_value, test.p_se
                metrics += [
                    Metric("sigreg_p", p, max(p - 2 * se, 0.0), min(p + 2 * se, 1.0),
                           n=test.null_size, unit="null samples", labels=lab,
                           higher_is_better=True),
                    Metric("sigreg_p_se", se, n=test.null_size, unit="null samples",
                           labels=lab),
                    Metric("sigreg_z", float(z), n=n, unit="rows", labels=lab,
                           higher_is_better=False),
                    Metric("directions_rejected", float(np.mean(per_dir > crit)),
                           n=self.n_directions,
                           unit="directions", labels=lab, higher_is_better=False),
                    Metric("sigreg", float(null_mean.mean()),
                           *np.quantile(null_mean, [(1 - self.level) / 2, (1 + self.level) / 2]),
                           n=test.null_size, unit="null samples",
                           labels=dict(lab, baseline="gaussian")),
                    Metric("directions_rejected", 0.05, n=self.n_directions, unit="directions",
                           labels=dict(lab, baseline="gaussian")),
                ]
                arrays[f"ep_directions_{m}"].append(np.sort(per_dir))
        for m in modes:
            arrays[f"ep_directions_{m}"] = np.array(arrays[f"ep_directions_{m}"])
            # the largest null any layer needed (the others are its leading replicates)
            largest = nulls[m].draw(max(null_sizes[m].values()))
            arrays[f"ep_null_quantiles_{m}"] = np.quantile(largest, np.linspace(0, 1, 101))
        return self.result(ctx, metrics, arrays, modes=modes, n_blocks=n_blocks,
                           null_rows=n_null_rows, null_seed=self.null_seed,
                           null_sizes=null_sizes)

    def _layer_stats(self, X, modes, directions, blocks, n_blocks, view_codes, n_views,
                     pair_i, pair_j) -> dict:
        """Point values, per-direction Epps-Pulley and bootstrap closures for one layer."""
        d = X.shape[1]
        counts, sums, grams = blocked_moments(X, blocks, n_blocks, self.chunk_rows)
        moments = MomentAccumulator(d)
        moments.n, moments.sum, moments.gram = counts.sum(), sums.sum(0), grams.sum(0)
        eps_acc = {}
        for m in modes:
            M, offset = standardizer(moments, m)
            eps_acc[m] = EppsPulleyAccumulator(M @ directions, offset @ directions,
                                               t_max=self.t_max, n_points=self.n_points,
                                               n_blocks=n_blocks)
        unit_sums = np.zeros((n_blocks, d))
        if view_codes is not None:
            view_raw, view_unit = np.zeros((n_views, d)), np.zeros((n_views, d))
            view_counts = np.bincount(view_codes, minlength=n_views).astype(np.float64)
        for start in range(0, X.shape[0], self.chunk_rows):
            chunk = np.asarray(X[start:start + self.chunk_rows], dtype=np.float64)
            b = blocks[start:start + self.chunk_rows]
            for acc in eps_acc.values():
                acc.update(chunk, b)
            U = _unit_rows(chunk)
            unit_sums += _block_sums(U, b, n_blocks)
            if view_codes is not None:
                v = view_codes[start:start + self.chunk_rows]
                view_raw += _block_sums(chunk, v, n_views)
                view_unit += _block_sums(U, v, n_views)
        # Sums and counts of pair terms per (block, block): a replicate weights a pair by the
        # product of its two blocks' weights.
        pair_cells = blocks[pair_i] * n_blocks + blocks[pair_j]
        pair_sum = np.bincount(pair_cells, uniformity_terms(X, pair_i, pair_j),
                               n_blocks ** 2).reshape(n_blocks, n_blocks)
        pair_count = np.bincount(pair_cells, minlength=n_blocks ** 2).reshape(n_blocks, n_blocks)

        def spectrum_stats(w):
            return spectra_from_moments(w @ counts, w @ sums, np.tensordot(w, grams, 1))

        cache = {}

        def spec(w):
            key = w.tobytes()
            if key not in cache:
                cache.clear()
                cache[key] = spectrum_stats(w)
            return cache[key]

        def anisotropy(w):
            # A block drawn w times holds w copies of each of its rows; pairs of copies of one
            # row (w (w - 1) per row, cosine 1) are not pairs of distinct items: leave them out.
            c, s = w @ counts, w @ unit_sums
            same = (w ** 2) @ counts
            return float((s @ s - same) / (c * c - same))

        def uniformity(w):
            return float(np.log((w @ pair_sum @ w) / max(w @ pair_count @ w, 1e-300)))

        boot = {
            "rankme": lambda w: rankme(spec(w)[0], self.eps),
            "participation_ratio": lambda w: participation_ratio(spec(w)[1]),
            "alpha_req": lambda w: alpha_req(spec(w)[1], self.req_ranks),
            "anisotropy": anisotropy,
            "uniformity": uniformity,
        }
        for m, acc in eps_acc.items():
            boot[f"sigreg:{m}"] = lambda w, acc=acc: float(acc.statistic(w).mean())
        ones = np.ones(n_blocks)
        values = {name: fn(ones) for name, fn in boot.items()}
        if view_codes is not None:
            values["lidar"] = lidar(view_raw, view_counts, moments.gram, self.lidar_delta,
                                    self.eps)
            pairs = np.sum(view_counts * (view_counts - 1))
            values["alignment"] = float(np.sum(2 * view_counts ** 2 - 2 * np.einsum(
                "ij,ij->i", view_unit, view_unit)) / pairs) if pairs > 0 else float("nan")
        return {"values": values, "boot": boot,
                "per_direction": {m: acc.statistic() for m, acc in eps_acc.items()}}

    # -- figure ------------------------------------------------------------------------------
    @classmethod
    def plot(cls, result: ProbeResult):
        layers = result.info["layers"]
        modes = result.info["modes"]
        fig, axes = new_figure(2, 2, width="double", aspect=0.62)
        x = np.arange(len(layers))
        ax = axes[0][0]
        for i, m in enumerate(modes):
            ms = result.series("sigreg", at=layers, space=m)
            base = result.series("sigreg", at=layers, space=m, baseline="gaussian")
            baseline_band(ax, x, base.ci_low, base.ci_high,
                          label="Gaussian null (95%)" if i == 0 else None)
            twin = result.series("sigreg", at=layers, space=m, baseline="random-init")
            has_twin = twin.found.any()
            if has_twin:
                ax.plot(x, twin.values, ls=_BASELINE_LS["random-init"], marker="x",
                        color=PALETTE[i], alpha=0.7)
            ax.errorbar(x, ms.values, yerr=ms.yerr(), marker="o", capsize=2, color=PALETTE[i],
                        label=f"{m}")
        ax.set_yscale("log")
        layer_axis(ax, layers, rotate_over=4)
        ax.set_ylabel("SIGReg (mean Epps-Pulley)")
        ax.set_title("distance from a Gaussian, by layer")
        _legend_with_key(ax, ["random-init"] if has_twin else [])

        ax = axes[0][1]
        m = modes[0]
        per_dir = result.arrays[f"ep_directions_{m}"]
        q = np.linspace(0, 1, per_dir.shape[1])
        for i, layer in enumerate(layers):
            ax.plot(per_dir[i], q, color=PALETTE[i % len(PALETTE)], label=str(layer))
        ax.plot(result.arrays[f"ep_null_quantiles_{m}"], np.linspace(0, 1, 101),
                color=BASELINE_COLOR, ls="--", lw=2, label="Gaussian null")
        ax.set_xscale("log")
        ax.set_xlabel(f"Epps-Pulley per direction ({m})")
        ax.set_ylabel("fraction of directions")
        ax.set_title("distribution over directions")
        legend_outside(ax, fontsize=6)

        for ax, names, title in ((axes[1][0], ("rankme", "participation_ratio"),
                                  "effective dimension"),
                                 (axes[1][1], ("anisotropy", "uniformity", "alpha_req"),
                                  "sphere statistics and alpha-ReQ")):
            drawn = set()
            for i, name in enumerate(names):
                ms = result.series(name, at=layers)
                if not ms.found.any():
                    continue
                color = PALETTE[i]
                ax.errorbar(x, ms.values, yerr=ms.yerr(), marker="o", capsize=2, color=color,
                            label=name)
                for baseline, ls in _BASELINE_LS.items():
                    b = result.series(name, at=layers, baseline=baseline)
                    if b.found.any():
                        ax.plot(x, b.values, ls=ls, marker="x", color=color, alpha=0.7)
                        drawn.add(baseline)
            layer_axis(ax, layers, rotate_over=4)
            ax.set_title(title)
            _legend_with_key(ax, [b for b in _BASELINE_LS if b in drawn])
        return fig


#: line style of each baseline in the figure (colour: the metric it belongs to)
_BASELINE_LS = {"gaussian": ":", "random-init": "--"}
_BASELINE_NAMES = {"gaussian": "isotropic Gaussian", "random-init": "random-init twin"}


def _legend_with_key(ax, baselines):
    """Beside the axes (inside, legends covered curves): one entry per metric colour, then one
    per baseline line style, instead of an entry for every metric x baseline pair."""
    from matplotlib.lines import Line2D

    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.35", ls=_BASELINE_LS[b], marker="x",
                       label=_BASELINE_NAMES[b]) for b in baselines]
    legend_outside(ax, handles=handles, fontsize=6, handlelength=3)  # long enough to show dashes


_HIGHER = {"rankme": True, "participation_ratio": True, "alpha_req": None, "lidar": True,
           "anisotropy": False, "uniformity": False, "alignment": False, "sigreg": False}
