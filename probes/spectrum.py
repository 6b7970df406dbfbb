"""Covariance-spectrum diagnostics: RankMe, participation ratio and the eigen-spectrum figure.

Definitions
-----------
RankMe (Garrido et al. 2023, as used by LeJEPA and LeWorldModel)::

    p_k = sigma_k / ||sigma||_1 + eps,   RankMe = exp(-sum_k p_k log p_k)

with ``sigma_k`` the singular values of the (n_items, dim) embedding matrix, *uncentred* as in
the paper, and ``eps = 1e-7`` as the anchor gives (copies in the wild use 1e-5; pass ``eps``
to match one). ``center=True`` centres first, which we recommend when the mean is far from
the origin, and say so in the result.

Participation ratio: ``PR = (sum_k lambda_k)^2 / sum_k lambda_k^2`` over the eigenvalues of
the (centred) covariance, the usual linear effective dimensionality.

Both (:mod:`geoprobe.spectra`) are computed from ``X^T X`` accumulated in chunks (``geoprobe.streaming``), so
memory-mapped sets larger than RAM work, and singular values come from the ``dim x dim``
eigenproblem. Confidence intervals are a cluster bootstrap over resampling units (the
``group`` column, else rows): units are split into at most ``max_blocks`` random blocks whose
Gram matrices are kept, and each replicate reweights blocks. With more units than blocks this
is the bootstrap of random blocks of units, which for independent units has the same variance
to first order and costs one (blocks, d, d) sum and one d x d eigenproblem per replicate.

Intervals: resampling duplicates rows, which by itself lowers RankMe and PR, so the plain
percentile interval can sit entirely below the estimate. We report the percentile interval
shifted so that the bootstrap median sits on the estimate (:func:`geoprobe.stats.centred_interval`):
the sampling spread at this n, around the plug-in value. Both statistics are biased low at
finite n when the spectrum is flat (an isotropic Gaussian with n=2000, d=64 gives RankMe 63.7,
with n=1166, d=384 about 366): compare spaces at equal n, and read the ``gaussian`` baseline,
computed at the same n and d, as the attainable ceiling, and the n-sensitivity curve below
(docs/spectrum.md has it on planted ranks and on MiniLM).

Baselines, per layer:
- ``shuffled-features``: every column permuted independently (same marginals, no
  correlations); the value a space with no shared structure across dimensions would get.
- ``gaussian``: an isotropic Gaussian sample of the same n and dim, the finite-sample ceiling.
- ``random-init`` (added by the core) when the embedding set names a random-init twin.

n-sensitivity curve (``curve_points`` > 0, on by default): RankMe at a log grid of row counts
n, from ``d/4`` (at least 2) to ``min(n_items, max_baseline_rows)``, per layer, each point
the mean, min and max over ``curve_draws`` random row subsamples (without replacement; the
full set once at n = n_items), against two Gaussian references at the same n and d:

- the isotropic ceiling: RankMe of ``N(0, I)`` samples, the largest RankMe any n x d sample
  can be expected to reach (it rises with n towards d);
- the matched Gaussian: samples of ``N(0, M)`` with M the layer's own second-moment matrix
  (``X^T X / n_items``; the covariance with ``center=True``). Its RankMe tends to the layer's
  full-sample RankMe as n grows, so at each n it is the value the layer's spectrum gives a
  Gaussian sample of that size: where the data curve follows it, the layer's curve is
  finite-sample bias; where the data lie below, the data's rows are less "spread" than a
  Gaussian's (heavy tails, clusters). Only the eigenvalues of M are needed (RankMe is
  rotation-invariant), drawn as ``z * sqrt(eigenvalue)``.

A curve that keeps rising with n, like the ceiling, says RankMe at this n understates the
space; one that has flattened says more rows will not change it. Arrays ``rankme_curve_n``
(P,), ``rankme_curve`` and ``rankme_curve_matched`` (layers, P, 3: mean, min, max) and
``rankme_curve_isotropic`` (P, 3) go into results.json. The curve draws from its own stream
(jumped from the probe's generator without advancing it), so turning it on or off leaves every
other number unchanged.
"""

from __future__ import annotations

import numpy as np

from geoprobe.plotting import (BASELINE_COLOR, PALETTE, baseline_band, interval,
                               layer_axis, new_figure)
from geoprobe.contract import Interval, NON_NEGATIVE, OPEN_UNIT, POSITIVE_INT
from geoprobe.probe import Example, Probe, ProbeResult
from geoprobe.spectra import eigvals_desc, participation_ratio, rankme, spectra_from_moments
from geoprobe.stats import ClusterBootstrap
from geoprobe.streaming import CHUNK_ROWS, MomentAccumulator, blocked_moments, covariance

#: Memory for the shuffled baseline's random sort keys of one block of columns.
_BASELINE_KEY_BYTES = 64 * 2**20


def _bootstrap_pair(count, total, gram, center: bool, eps: float) -> tuple[float, float]:
    """RankMe and PR of one replicate with a single eigenproblem.

    PR needs no eigenvalues: (sum lambda)^2 / sum lambda^2 = tr(C)^2 / ||C||_F^2.
    """
    cov = covariance(count, total, gram)
    frob = np.sum(cov * cov)
    pr = float(np.trace(cov) ** 2 / frob) if frob > 0 else 1.0
    sing = np.sqrt(eigvals_desc(cov * count if center else gram))
    return rankme(sing, eps), pr


class CovarianceSpectrum(Probe):
    """RankMe and participation ratio per layer, with bootstrap CIs and baselines.

    Parameters
    ----------
    center : bool, default False
        Centre before RankMe (the paper does not; PR always uses the covariance).
    eps : float, default 1e-7
        RankMe's smoothing constant (anchor value).
    group : str or None
        Item column naming the resampling unit (sentence, episode); rows if None.
    n_boot : int, default 100
    level : float, default 0.95
    max_blocks : int, default 100
        Largest number of unit blocks kept for the bootstrap (memory ``max_blocks * dim^2``).
    max_baseline_rows : int, default 100000
        Rows sampled for the shuffled-features baseline, and the largest n of the RankMe
        n-sensitivity curve.
    curve_points : int, default 7
        Points of the n-sensitivity curve (log grid of n); 0 turns it off.
    curve_draws : int, default 3
        Row subsamples (and Gaussian samples) per point of the curve. Cost per layer:
        ``2 * curve_draws * curve_points`` d x d eigenproblems and Gram matrices of the
        subsampled rows (at most ``max_baseline_rows`` each).
    """

    name = "covariance-spectrum"
    summary = "RankMe, participation ratio and the eigen-spectrum (collapse diagnostics)."
    memory = ("streams row chunks: per-block Gram matrices, 8 max_blocks d^2 bytes, plus a "
              "32768-row chunk (baselines on at most max_baseline_rows rows)")
    parameter_constraints = {
        "center": [bool], "eps": [NON_NEGATIVE], "group": [str, None],
        "n_boot": [POSITIVE_INT], "level": [OPEN_UNIT],
        "max_blocks": [POSITIVE_INT], "max_baseline_rows": [POSITIVE_INT],
        "curve_points": [Interval(int, 0, None)], "curve_draws": [POSITIVE_INT],
    }
    column_parameters = ("group",)
    metric_directions = {"rankme": True, "participation_ratio": True}

    @classmethod
    def example_input(cls, rng) -> Example:
        from geoprobe.datasets.synthetic import planted_spectrum

        emb = planted_spectrum(n_items=200, dim=16, ranks=(16, 2), episode_length=10,
                               seed=int(rng.integers(2**31)))
        return Example(emb, {"group": "episode", "n_boot": 20, "curve_points": 4,
                             "curve_draws": 2})

    def __init__(self, center=False, eps=1e-7, group=None, n_boot=100, level=0.95,
                 max_blocks=100, max_baseline_rows=100_000, curve_points=7, curve_draws=3):
        self.center = center
        self.eps = eps
        self.group = group
        self.n_boot = n_boot
        self.level = level
        self.max_blocks = max_blocks
        self.max_baseline_rows = max_baseline_rows
        self.curve_points = curve_points
        self.curve_draws = curve_draws

    def evaluate(self, ctx) -> ProbeResult:
        n = ctx.embeddings.n_items
        groups = ctx.column(self.group) if self.group else None
        boot = ClusterBootstrap(groups, n, n_boot=self.n_boot, rng=ctx.rng,
                                unit=self.group or "rows", max_blocks=self.max_blocks,
                                level=self.level)
        n_blocks = boot.n_blocks
        metrics, spectra, shuffled_spectra, curves = [], [], [], []
        # The curve's own stream, jumped ahead of ctx.rng without advancing it: the other
        # numbers do not depend on whether the curve is drawn.
        curve_rng = np.random.Generator(ctx.rng.bit_generator.jumped())
        grid = self._curve_grid(n, ctx.embeddings.dim)
        isotropic = np.array([self._draws(n_rows, lambda m: self._gaussian(
            m, ctx.embeddings.dim, curve_rng)[0]) for n_rows in grid])
        for layer, X in ctx.iter_layers(dtype=None):
            counts, sums, grams = blocked_moments(X, boot.block_of_row, n_blocks)
            sing, cov_eig = spectra_from_moments(counts.sum(), sums.sum(0), grams.sum(0),
                                                 self.center)
            spectra.append(cov_eig / max(cov_eig.sum(), 1e-300))
            if len(grid):
                curves.append(self._curve(X, sing, grid, curve_rng))
            boot_rm, boot_pr = np.empty(self.n_boot), np.empty(self.n_boot)
            for b, w in enumerate(boot.counts):
                boot_rm[b], boot_pr[b] = _bootstrap_pair(w @ counts, w @ sums,
                                                         np.tensordot(w, grams, 1),
                                                         self.center, self.eps)
            for name, value, samples in (("rankme", rankme(sing, self.eps), boot_rm),
                                         ("participation_ratio", participation_ratio(cov_eig),
                                          boot_pr)):
                metrics.append(boot.metric(name, value, samples, kind="centred",
                                           bounds=(1.0, float(X.shape[1])), layer=layer))
            sh_sing, sh_eig = self._shuffled(X, ctx.rng)
            shuffled_spectra.append(sh_eig / max(sh_eig.sum(), 1e-300))
            g_sing, g_eig = self._gaussian(n, X.shape[1], ctx.rng)
            for baseline, (bs, be) in (("shuffled-features", (sh_sing, sh_eig)),
                                       ("gaussian", (g_sing, g_eig))):
                metrics.append(boot.metric("rankme", rankme(bs, self.eps), layer=layer,
                                           baseline=baseline))
                metrics.append(boot.metric("participation_ratio", participation_ratio(be),
                                           layer=layer, baseline=baseline))
        arrays = {"spectrum": np.array(spectra), "spectrum_shuffled": np.array(shuffled_spectra)}
        if len(grid):
            arrays.update(rankme_curve_n=grid, rankme_curve=np.array([c[0] for c in curves]),
                          rankme_curve_matched=np.array([c[1] for c in curves]),
                          rankme_curve_isotropic=isotropic)
        return self.result(ctx, metrics, arrays, centered=self.center, n_blocks=n_blocks)

    def _shuffled(self, X, rng):
        """Spectra of at most ``max_baseline_rows`` rows of ``X`` (n, dim) with every column
        permuted independently, as ``rng.random((m, dim)).argsort(axis=0)`` permutes them.

        Memory stays bounded whatever ``dim``: the sampled rows are kept in the layer's own
        dtype (a permutation moves values, so nothing is lost), the random sort keys are
        drawn again from the saved generator state for each block of columns (a block's keys
        and ranks take at most ``_BASELINE_KEY_BYTES``), and the moments are accumulated in
        float64 row chunks. Same draws and same permutation as one big call; ``rng`` ends
        where that call would have left it.
        """
        n = X.shape[0]
        rows = (np.sort(rng.choice(n, self.max_baseline_rows, replace=False))
                if n > self.max_baseline_rows else slice(None))
        Xs = np.asarray(X[rows])
        m, d = Xs.shape
        shuffled = np.empty_like(Xs)
        width = int(np.clip(_BASELINE_KEY_BYTES // (16 * m), 1, d))  # float64 key + int64 rank
        key_rows = max(1, _BASELINE_KEY_BYTES // (8 * d))  # rows of (·, dim) keys drawn at once
        start_state = rng.bit_generator.state
        for lo in range(0, d, width):
            rng.bit_generator.state = start_state  # the same stream for every column block
            keys = np.empty((m, min(width, d - lo)))
            for r in range(0, m, key_rows):
                keys[r:r + key_rows] = rng.random((min(key_rows, m - r), d))[:, lo:lo + width]
            shuffled[:, lo:lo + width] = np.take_along_axis(Xs[:, lo:lo + width],
                                                            keys.argsort(axis=0), axis=0)
        acc = MomentAccumulator.from_array(shuffled)
        return spectra_from_moments(acc.n, acc.sum, acc.gram, self.center)

    def _gaussian(self, n, d, rng, scale=1.0):
        """Spectra of a Gaussian sample (min(n, max_baseline_rows), d) with independent columns
        of standard deviation ``scale`` (a float or shape (d,)), drawn and accumulated in row
        chunks (chunked draws continue the stream of one big draw)."""
        m = min(n, self.max_baseline_rows)
        acc = MomentAccumulator(d)
        for start in range(0, m, CHUNK_ROWS):
            acc.update(rng.standard_normal((min(CHUNK_ROWS, m - start), d)) * scale)
        return spectra_from_moments(m, acc.sum, acc.gram, self.center)

    def _curve_grid(self, n, d) -> np.ndarray:
        """Row counts of the n-sensitivity curve: ``curve_points`` log-spaced from d/4 (at
        least 2) to min(n, max_baseline_rows), distinct ints, shape (P,) (empty when off)."""
        top = min(n, self.max_baseline_rows)
        if self.curve_points == 0:
            return np.zeros(0, dtype=np.int64)
        low = min(max(2, d // 4), top)
        return np.unique(np.round(np.geomspace(low, top, self.curve_points)).astype(np.int64))

    def _draws(self, n_rows, singular_values) -> np.ndarray:
        """Mean, min and max of RankMe over ``curve_draws`` calls of ``singular_values(n_rows)``,
        shape (3,)."""
        values = [rankme(singular_values(n_rows), self.eps) for _ in range(self.curve_draws)]
        return np.array([np.mean(values), np.min(values), np.max(values)])

    def _curve(self, X, sing, grid, rng):
        """RankMe of row subsamples of X (n, d) and of matched-Gaussian samples at each n of
        ``grid``: two arrays of shape (P, 3) (mean, min, max over draws).

        The matched Gaussian has the eigenvalues ``sing**2 / n`` of the layer's second-moment
        (or, centred, covariance) matrix; the subsample at n = n_items is the set itself.
        """
        n, d = X.shape
        scale = sing / np.sqrt(n)

        def subsample(m):
            rows = np.sort(rng.choice(n, m, replace=False))
            acc = MomentAccumulator(d)
            for start in range(0, m, CHUNK_ROWS):
                acc.update(X[rows[start:start + CHUNK_ROWS]])
            return spectra_from_moments(m, acc.sum, acc.gram, self.center)[0]

        data = np.array([np.full(3, rankme(sing, self.eps)) if m == n
                         else self._draws(m, subsample) for m in grid])
        matched = np.array([self._draws(m, lambda k: self._gaussian(k, d, rng, scale)[0])
                            for m in grid])
        return data, matched

    @classmethod
    def plot(cls, result: ProbeResult):
        layers = result.info["layers"]
        spectra = result.arrays["spectrum"]
        has_curve = "rankme_curve" in result.arrays
        fig, axes = new_figure(3 if has_curve else 2, width="double",
                               aspect=0.9 if has_curve else 0.7)
        ax_spec, ax_rank = axes[0][:2]
        colors = [PALETTE[i % len(PALETTE)] for i in range(len(layers))]
        k = np.arange(1, spectra.shape[1] + 1)
        for i, layer in enumerate(layers):
            ax_spec.loglog(k, np.maximum(spectra[i], 1e-12), color=colors[i], label=f"layer {layer}")
        if "spectrum_shuffled" in result.arrays:
            ax_spec.loglog(k, np.maximum(result.arrays["spectrum_shuffled"][-1], 1e-12),
                           color=BASELINE_COLOR, ls="--", label="shuffled features (last)")
        ax_spec.set_xlabel("eigenvalue rank k")
        ax_spec.set_ylabel("share of variance")
        ax_spec.set_title("covariance eigen-spectrum")
        ax_spec.legend(frameon=False, ncol=1 if len(layers) < 6 else 2)

        x = np.arange(len(layers))
        main = result.series("rankme", at=layers)
        for baseline, color in (("gaussian", BASELINE_COLOR), ("shuffled-features", PALETTE[1]),
                                ("random-init", PALETTE[3])):
            b = result.series("rankme", at=layers, baseline=baseline)
            if not b.found.any():
                continue
            if baseline == "gaussian":
                baseline_band(ax_rank, x, np.zeros_like(b.values), b.values,
                              label="isotropic Gaussian")
            else:
                ax_rank.plot(x, b.values, ls="--", marker=".", color=color, label=baseline)
                interval(ax_rank, x, *b.band(), color=color)
        ax_rank.errorbar(x, main.values, yerr=main.yerr(), marker="o", color=PALETTE[0],
                         capsize=2, label="RankMe (95% CI)")
        layer_axis(ax_rank, layers, rotate_over=6)
        ax_rank.set_ylabel("RankMe")
        ax_rank.set_ylim(bottom=0)
        ax_rank.set_title("effective rank by layer")
        ax_rank.legend(frameon=False)
        if has_curve:
            cls._plot_curve(axes[0][2], result, colors)
        return fig

    @staticmethod
    def _plot_curve(ax, result: ProbeResult, colors):
        """RankMe against n (log x): each layer's subsamples (solid, band: min-max over
        draws), the Gaussian with its spectrum (dashed) and the isotropic ceiling (grey)."""
        from matplotlib.lines import Line2D

        a = result.arrays
        grid = a["rankme_curve_n"].astype(float)
        iso = a["rankme_curve_isotropic"]
        ax.plot(grid, iso[:, 0], color=BASELINE_COLOR, lw=1.2)
        interval(ax, grid, iso[:, 1], iso[:, 2], color=BASELINE_COLOR)
        for i, color in enumerate(colors):
            for key, ls in (("rankme_curve", "-"), ("rankme_curve_matched", "--")):
                c = a[key][i]
                ax.plot(grid, c[:, 0], ls=ls, marker="." if ls == "-" else None, color=color,
                        lw=1)
                interval(ax, grid, c[:, 1], c[:, 2], color=color, alpha=0.15)
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("rows n (subsample)")
        ax.set_ylabel("RankMe")
        ax.set_title("RankMe vs rows n")
        ax.legend([Line2D([], [], color="k", marker="."), Line2D([], [], color="k", ls="--"),
                   Line2D([], [], color=BASELINE_COLOR, lw=1.2)],
                  ["layer, row subsamples", "Gaussian, layer's spectrum",
                   "isotropic Gaussian (ceiling)"], frameon=False, fontsize=6, loc="best",
                  title="bands: min-max of draws", title_fontsize=6)
