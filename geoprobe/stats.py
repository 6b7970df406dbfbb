"""Statistics shared by all probes: seeded generators, cluster bootstrap, shuffled baselines.

Rows of an embedding set are rarely independent: the words of one sentence, the frames of one
episode, the tokens of one word type. Every resampling helper here therefore takes ``groups``,
an array of shape (n_rows,) naming the unit each row belongs to, and resamples *units*, keeping
each unit's rows together. Without ``groups`` each row is its own unit.

:class:`ClusterBootstrap` is the one resampling kernel: it draws the replicates once, evaluates
weighted-sum statistics on all of them, and turns replicate values into the interval and the
:class:`~geoprobe.probe.Metric` a probe reports. Probes resample through it instead of
drawing their own weights.

Randomness always comes from a :class:`numpy.random.Generator` passed in explicitly; make one
from a seed with :func:`as_generator` once, at the boundary, and pass it down.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from .metric import Interval, Metric

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


class ClusterBootstrap:
    """One set of cluster-bootstrap replicates, drawn once and shared by every statistic.

    Units (``groups``) are drawn with replacement ``n_boot`` times, as counts: a replicate
    weights each unit by how often it was drawn, and a row by its unit's count. Statistics
    that are weighted sums (means, ratios, Gram matrices, confusion counts) are evaluated on
    all replicates at once from per-unit sums (:meth:`sums`, :meth:`ratio`); others take
    :meth:`row_weights`. Every statistic resampled through one instance sees the same
    replicates, so a difference of two of them (MLP - linear, task - control) has a paired
    interval: take the difference of their samples.

    With ``max_blocks``, units are dealt at random into ``min(n_units, max_blocks)`` blocks
    and whole blocks are resampled: random blocks of independent units are independent, so
    this keeps the bootstrap's variance while a statistic needs only per-block sufficient
    statistics (memory ``max_blocks * dim^2`` for Gram matrices). With no more units than
    ``max_blocks`` (or no ``max_blocks``) a block is a unit and this is the exact cluster
    bootstrap.

    Parameters
    ----------
    groups : array of shape (n_rows,) or None
        Resampling unit of each row (sentence, episode, word type); None: rows are the units.
    n_rows : int
    n_boot : int
    rng : numpy Generator
        Draws, in this order: the dealing of units into blocks (block mode with more units
        than blocks only), then the block counts of all replicates.
    unit : str, optional
        Name of the units in reports (default "rows" or "groups").
    max_blocks : int, optional
    level : float
        Interval level of :meth:`interval` and :meth:`metric`.

    Attributes
    ----------
    counts : int array of shape (n_boot, n_blocks)
        Draws of each block per replicate (a block is a unit unless ``max_blocks`` binds).
    block_of_row : int array of shape (n_rows,)
    n_units, n_blocks : int
    unit : str
    level : float
    """

    def __init__(self, groups, n_rows: int, *, n_boot: int, rng: np.random.Generator,
                 unit: str | None = None, max_blocks: int | None = None,
                 level: float = DEFAULT_LEVEL):
        codes, self.n_units = group_codes(groups, n_rows)
        self.n_blocks = self.n_units if max_blocks is None else min(self.n_units, max_blocks)
        # Dealing units into blocks is a draw only when blocks are fewer than units.
        block_of_unit = (np.arange(self.n_units) if self.n_blocks == self.n_units
                         else rng.permutation(np.arange(self.n_units) % self.n_blocks))
        self.block_of_row = block_of_unit[codes]
        self.counts = rng.multinomial(self.n_blocks,
                                      np.full(self.n_blocks, 1.0 / self.n_blocks), size=n_boot)
        self.unit = unit or ("rows" if groups is None else "groups")
        self.level = level

    @property
    def n_boot(self) -> int:
        return self.counts.shape[0]

    def row_weights(self) -> np.ndarray:
        """How many times each row is drawn in each replicate: int array (n_boot, n_rows)."""
        return self.counts[:, self.block_of_row]

    def replicate_rows(self, b: int) -> np.ndarray:
        """Row indices of replicate ``b`` with repeats (each row as often as its block was
        drawn), in row order: for statistics that refit a model per replicate."""
        return np.repeat(np.arange(self.block_of_row.size), self.counts[b, self.block_of_row])

    def block_sums(self, rows) -> np.ndarray:
        """Sums of per-row statistics ``rows`` (n_rows, ...) within each block: (n_blocks, ...)."""
        rows = np.asarray(rows)
        flat = rows.reshape(rows.shape[0], -1)
        out = np.zeros((self.n_blocks, flat.shape[1]))
        np.add.at(out, self.block_of_row, flat)
        return out.reshape((self.n_blocks,) + rows.shape[1:])

    def sums(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """Full-sample and replicate sums of per-row stats ``rows`` (n_rows, ...).

        Returns arrays of shape (...) and (n_boot, ...).
        """
        shape = np.shape(rows)[1:]
        flat = self.block_sums(rows).reshape(self.n_blocks, -1)
        return flat.sum(0).reshape(shape), (self.counts @ flat).reshape((-1,) + shape)

    def ratio(self, num, den) -> np.ndarray:
        """Replicates of ``sum(num) / sum(den)`` over rows: num, den (n_rows, ...) -> (n_boot, ...).

        A mean is ``ratio(values, ones)``; leave NaNs out with ``ratio(where(ok, v, 0), ok)``.
        The full-sample estimate is left to the caller, computed as it reports it.
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums(num)[1] / self.sums(den)[1]

    def interval(self, estimate: float, samples, kind: str = "percentile",
                 bounds: tuple[float | None, float | None] = (None, None)) -> tuple[float, float]:
        """Interval at ``self.level`` from replicate values ``samples`` (n_boot,).

        kind : "percentile" (quantiles of the samples), "basic" (``2*est - q``, see
            :func:`basic_interval`), "centred" (percentile interval moved so the samples'
            median sits on the estimate, see :func:`centred_interval`) or "shifted" (moved so
            the samples' mean sits on it: for statistics that resampling inflates by a
            known-positive amount).
        bounds : the statistic's range (low, high); the interval is clipped to it.
        """
        if kind == "percentile":
            lo, hi = percentile_interval(samples, self.level)
        elif kind == "basic":
            lo, hi = basic_interval(estimate, samples, self.level)
        elif kind == "centred":
            lo, hi = centred_interval(estimate, samples, self.level)
        elif kind == "shifted":
            q_lo, q_hi = percentile_interval(samples, self.level)
            shift = estimate - float(np.mean(samples))
            lo, hi = q_lo + shift, q_hi + shift
        else:
            raise ValueError(f"interval kind must be 'percentile', 'basic', 'centred' or "
                             f"'shifted', got {kind!r}")
        if bounds[0] is not None:
            lo = max(lo, bounds[0])
        if bounds[1] is not None:
            hi = min(hi, bounds[1])
        return lo, hi

    def metric(self, name: str, estimate: float, samples=None, *, kind: str = "percentile",
               bounds: tuple[float | None, float | None] = (None, None),
               higher_is_better: bool | None = None, **labels):
        """A :class:`~geoprobe.probe.Metric` over this bootstrap's units.

        ``samples`` (n_boot,) are the statistic's replicate values; without them the metric
        has no interval (NaN), e.g. a baseline computed once. ``kind`` and ``bounds`` as in
        :meth:`interval`; labels are stored as strings.
        """
        lo, hi = (math.nan, math.nan) if samples is None else self.interval(
            estimate, samples, kind, bounds)
        return Metric(name, float(estimate), lo, hi, self.n_units, self.unit,
                      {k: str(v) for k, v in labels.items()}, higher_is_better)


def bootstrap_indices(groups, n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one cluster-bootstrap replicate (units drawn with replacement)."""
    codes, n_units = group_codes(groups, n_rows)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(n_units + 1))
    drawn = rng.integers(0, n_units, size=n_units)
    lengths = starts[drawn + 1] - starts[drawn]
    offsets = np.repeat(starts[drawn] - np.cumsum(lengths) + lengths, lengths)
    return order[offsets + np.arange(lengths.sum())]


def subsample_units(groups, n_rows: int, max_rows: int, rng: np.random.Generator
                    ) -> np.ndarray:
    """Sorted row indices of whole units (``groups``; rows if None) taken in random order
    while their rows total at most ``max_rows`` (at least one unit): a subsample that keeps
    every group intact, for a computation that must fit in memory."""
    codes, n_units = group_codes(groups, n_rows)
    sizes = np.bincount(codes, minlength=n_units)
    order = rng.permutation(n_units)
    taken = order[:max(1, int(np.searchsorted(np.cumsum(sizes[order]), max_rows, "right")))]
    return np.flatnonzero(np.isin(codes, taken))


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


def seed_interval(values, level: float = DEFAULT_LEVEL) -> Interval:
    """Mean over independent runs (training seeds) and its Student-t interval.

    ``values`` has shape (n_seeds,), one number per seed; NaNs (a metric undefined for that
    seed) are left out and ``n`` counts the rest. The interval is
    ``mean +- t_{(1+level)/2, n-1} s / sqrt(n)``, ``s`` the sample standard deviation: with a
    handful of seeds a bootstrap over seeds would have too few distinct replicates, and the
    t-interval is the usual choice (it assumes the per-seed values are roughly normal).
    Raises ``ValueError`` with fewer than two finite values: one seed has no spread.
    """
    from scipy.stats import t

    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2:
        raise ValueError(f"an across-seed interval needs at least 2 seeds with a finite value, "
                         f"got {v.size}")
    mean = float(v.mean())
    half = float(t.ppf((1.0 + level) / 2.0, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return Interval(mean, mean - half, mean + half, int(v.size), "seeds")


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
    boot = ClusterBootstrap(groups, values.shape[0], n_boot=n_boot, rng=rng, unit=unit,
                            level=level)
    samples = boot.ratio(values, np.ones_like(values))
    value = float(values.mean())
    return Interval(value, *boot.interval(value, samples), boot.n_units, boot.unit)


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
