"""Statistics shared by all probes: seeded generators, cluster bootstrap, shuffled baselines.

Rows of an embedding set are rarely independent: the words of one sentence, the frames of one
episode, the tokens of one word type. Every resampling helper here therefore takes ``groups``,
an array of shape (n_rows,) naming the unit each row belongs to, and resamples *units*, keeping
each unit's rows together. Without ``groups`` each row is its own unit.

Randomness always comes from a :class:`numpy.random.Generator` passed in explicitly; make one
from a seed with :func:`as_generator` once, at the boundary, and pass it down.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

DEFAULT_N_BOOT = 1000
DEFAULT_LEVEL = 0.95


def as_generator(seed) -> np.random.Generator:
    """A NumPy Generator from an int seed, a SeedSequence, or an existing Generator (returned)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise ValueError("a seed is required; geoprobe never draws unseeded randomness")
    return np.random.default_rng(seed)


def child_seed(rng: np.random.Generator) -> int:
    """Draw an int seed for a library that wants one (torch, scikit-learn)."""
    return int(rng.integers(0, 2**31 - 1))


def preserves_torch_rng(fn):
    """Decorator for functions that seed torch's global generator (model initialisation does
    not take a generator): the caller's torch random state is restored when they return, so
    library code never changes a user's global seeding."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import torch

        with torch.random.fork_rng(devices=[]):
            return fn(*args, **kwargs)

    return wrapper


def group_codes(groups, n_rows: int) -> tuple[np.ndarray, int]:
    """Integer codes 0..n_units-1 for ``groups`` (or one unit per row when None)."""
    if groups is None:
        return np.arange(n_rows), n_rows
    groups = np.asarray(groups)
    if groups.shape != (n_rows,):
        raise ValueError(f"groups has shape {groups.shape}, expected ({n_rows},)")
    _, codes = np.unique(groups, return_inverse=True)
    return codes, int(codes.max()) + 1 if n_rows else 0


def bootstrap_counts(groups, n_rows: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How many times each row is drawn in each cluster-bootstrap replicate.

    Returns an int array of shape (n_boot, n_rows): units are drawn with replacement and a
    row's count is its unit's count. Statistics that are weighted sums (means, Gram matrices,
    confusion counts) use these weights directly, with no index copying.
    """
    codes, n_units = group_codes(groups, n_rows)
    unit_counts = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot)
    return unit_counts[:, codes]


def block_bootstrap(groups, n_rows: int, *, max_blocks: int, n_boot: int,
                    rng: np.random.Generator):
    """Cluster bootstrap over at most ``max_blocks`` blocks of units, as weights.

    Units are dealt at random into ``min(n_units, max_blocks)`` blocks and whole blocks are
    resampled: random blocks of independent units are independent, so this keeps the
    bootstrap's variance while a statistic needs only per-block sufficient statistics (Gram
    matrices, sums). With no more units than ``max_blocks`` a block is a unit and this is the
    exact cluster bootstrap.

    Returns
    -------
    block_of_row : int array of shape (n_rows,)
    weights : int array of shape (n_boot, n_blocks), draws of each block per replicate
    n_units : int
    """
    codes, n_units = group_codes(groups, n_rows)
    n_blocks = min(n_units, max_blocks)
    unit_block = (np.arange(n_units) if n_blocks == n_units
                  else rng.permutation(np.arange(n_units) % n_blocks))
    weights = rng.multinomial(n_blocks, np.full(n_blocks, 1.0 / n_blocks), size=n_boot)
    return unit_block[codes], weights, n_units


def bootstrap_indices(groups, n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one cluster-bootstrap replicate (units drawn with replacement)."""
    codes, n_units = group_codes(groups, n_rows)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(n_units + 1))
    drawn = rng.integers(0, n_units, size=n_units)
    lengths = starts[drawn + 1] - starts[drawn]
    offsets = np.repeat(starts[drawn] - np.cumsum(lengths) + lengths, lengths)
    return order[offsets + np.arange(lengths.sum())]


def basic_interval(estimate: float, samples: np.ndarray,
                   level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Basic (reverse-percentile) bootstrap interval ``[2*est - q_hi, 2*est - q_lo]``.

    It corrects the bootstrap's shift as an estimate of the estimator's bias, so it targets
    the population value: for a statistic that finite samples bias, it may exclude the
    plug-in estimate. See :func:`centred_interval` for an interval around the estimate.
    """
    lo, hi = percentile_interval(samples, level)
    return 2 * estimate - hi, 2 * estimate - lo


def centred_interval(estimate: float, samples: np.ndarray,
                     level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Percentile interval shifted so the bootstrap median sits on the estimate.

    ``[est - (median - q_lo), est + (q_hi - median)]``. Use it for statistics that resampling
    itself shifts: spectrum statistics such as RankMe drop when rows are duplicated, so the
    plain percentile interval can miss the estimate entirely, and the basic interval
    (``2*est - q``) over-corrects by extrapolating the finite-sample bias. This interval keeps
    the bootstrap's spread and skew around the plug-in estimate; the estimator's own
    finite-sample bias is left to the probe's documentation.
    """
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    lo, hi = percentile_interval(samples, level)
    med = float(np.median(samples))
    return estimate - (med - lo), estimate + (hi - med)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval over ``n`` resampling units."""

    value: float
    low: float
    high: float
    n: int
    unit: str = "rows"


def percentile_interval(samples: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap(statistic: Callable[[np.ndarray], float], n_rows: int, *, groups=None,
              n_boot: int = DEFAULT_N_BOOT, level: float = DEFAULT_LEVEL,
              rng: np.random.Generator, unit: str | None = None) -> Interval:
    """Cluster-bootstrap interval of ``statistic(row_indices)``.

    Parameters
    ----------
    statistic : callable
        Takes an int array of row indices (with repeats) and returns a float. It is called
        once with ``np.arange(n_rows)`` for the point estimate and ``n_boot`` times more.
    n_rows : int
    groups : array of shape (n_rows,), optional
        Resampling unit of each row (sentence, episode, word type).
    n_boot, level : int, float
    rng : numpy Generator
    unit : str, optional
        Name of the unit for the report (default "rows" or "groups").
    """
    value = float(statistic(np.arange(n_rows)))
    _, n_units = group_codes(groups, n_rows)
    samples = np.array([statistic(bootstrap_indices(groups, n_rows, rng)) for _ in range(n_boot)])
    lo, hi = percentile_interval(samples, level)
    return Interval(value, lo, hi, n_units, unit or ("rows" if groups is None else "groups"))


def bootstrap_mean(values, *, groups=None, n_boot: int = DEFAULT_N_BOOT,
                   level: float = DEFAULT_LEVEL, rng: np.random.Generator,
                   unit: str | None = None) -> Interval:
    """Cluster-bootstrap interval of the mean of per-row ``values`` (vectorised).

    ``values`` has shape (n_rows,); the mean over resampled rows is a ratio of weighted sums,
    computed from per-unit totals for all replicates at once.
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    codes, n_units = group_codes(groups, n)
    sums = np.bincount(codes, weights=values, minlength=n_units)
    sizes = np.bincount(codes, minlength=n_units).astype(float)
    counts = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot)
    samples = (counts @ sums) / (counts @ sizes)
    lo, hi = percentile_interval(samples, level)
    return Interval(float(values.mean()), lo, hi, n_units,
                    unit or ("rows" if groups is None else "groups"))


def shuffle_labels(y, *, groups=None, within_groups: bool = False,
                   rng: np.random.Generator) -> np.ndarray:
    """A shuffled copy of ``y`` (shape (n_rows, ...)) for a shuffled-label baseline.

    - no ``groups``: rows are permuted;
    - ``groups`` with ``within_groups=True``: labels are permuted inside each unit, which keeps
      every unit's label mix and breaks only the pairing of rows with labels;
    - ``groups`` with ``within_groups=False``: whole units trade their label blocks, which keeps
      the within-unit dependence of the labels. Blocks move only between units of the same
      size, so that every row still receives exactly one label.
    """
    y = np.asarray(y)
    n = y.shape[0]
    if groups is None:
        return y[rng.permutation(n)]
    codes, n_units = group_codes(groups, n)
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=n_units)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    if within_groups:
        keys = codes[order] + rng.random(n)  # random order inside each unit, units kept apart
        perm = order[np.argsort(keys, kind="stable")]
        out = np.empty_like(y)
        out[order] = y[perm]
        return out
    # Swap whole units among units of equal size.
    target_unit = np.arange(n_units)
    for size in np.unique(sizes):
        members = np.flatnonzero(sizes == size)
        target_unit[members] = rng.permutation(members)
    src = np.empty(n, dtype=np.int64)
    within = np.arange(n) - np.repeat(starts, sizes)
    src[order] = order[np.repeat(starts[target_unit], sizes) + within]
    return y[src]


def permutation_null(statistic: Callable[[np.ndarray], float], y, *, groups=None,
                     n_perm: int = 100, within_groups: bool = False,
                     rng: np.random.Generator) -> np.ndarray:
    """``statistic(shuffled_y)`` for ``n_perm`` shuffles: the null distribution, shape (n_perm,)."""
    return np.array([statistic(shuffle_labels(y, groups=groups, within_groups=within_groups,
                                              rng=rng)) for _ in range(n_perm)])


def permutation_p_value(observed: float, null: np.ndarray, *, greater: bool = True) -> float:
    """One-sided permutation p-value with the +1 correction (never exactly 0)."""
    null = np.asarray(null, dtype=float)
    extreme = np.sum(null >= observed) if greater else np.sum(null <= observed)
    return float((extreme + 1) / (null.size + 1))
