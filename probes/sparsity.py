"""Activation density: is a representation sparser on shifted inputs than on familiar ones?

Definitions (Jin et al. 2026, code MingyuJ666/sparsityLLM), for one vector h of dimension d:

* ``top{q}_energy``: ``sum of h_i^2`` over the ``ceil(q d / 100)`` largest ``|h_i|``, divided
  by ``||h||^2`` (higher = sparser);
* ``hoyer = (sqrt(d) - ||h||_1 / ||h||_2) / (sqrt(d) - 1)`` (0 = all equal, 1 = one-hot);
* ``gini`` of ``|h|``: ``sum_i (2i - d - 1) a_(i) / (d sum a)`` with ``a`` sorted ascending
  (``1 - k/d`` for k equal non-zeros);
* ``l1_l2 = ||h||_1 / ||h||_2`` (in ``[1, sqrt(d)]``; lower = sparser) and ``l1_norm``;
* ``effective_rank = exp(H(p)) / d`` with ``p = h^2 / ||h||^2`` (``weights="energy"``, the
  paper's default) or ``p = |h| / ||h||_1`` (``weights="abs"``, its QA benchmarks).

For a vector with k equal non-zeros: ``hoyer = (sqrt(d) - sqrt(k)) / (sqrt(d) - 1)``,
``l1_l2 = sqrt(k)``, ``top-q energy = min(ceil(q d / 100), k) / k``, ``effective_rank = k / d``.

Every row of every layer is measured (the paper takes one token position of the last layer;
we keep all rows and layers and let the caller choose the rows). Rows are compared between
conditions named by an item column (``condition``): the ``reference`` value is
in-distribution, every other value a shift. Reported per layer: the mean of each measure in
each condition, and ``<measure>_shift`` = mean(shifted) - mean(reference).

CIs: percentile bootstrap over the ``group`` column (sentence, episode); a sentence and its
shuffle share a group, so the difference is a paired bootstrap. Baselines: ``gaussian`` (the
measure on isotropic Gaussian vectors of the same d: a dense reference) and
``shuffled-condition``: condition labels permuted within each group (or across rows without
groups), whose 2.5-97.5% band is the null for the difference. The random-init twin is added
by the core when the set names one.
"""

from __future__ import annotations

import numpy as np

from geoprobe.contract import Interval, OPEN_UNIT, Options, POSITIVE_INT, SequenceOf
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import ProbeInputError
from geoprobe.plotting import BASELINE_COLOR, PALETTE, new_figure
from geoprobe.probe import Example, Probe, ProbeResult
from geoprobe.stats import ClusterBootstrap, shuffle_labels

#: measures drawn in the figure (``l1_norm`` is reported but scale-dependent)
FIGURE_MEASURES = ("top5_energy", "top10_energy", "hoyer", "gini", "l1_l2", "effective_rank")


def density_measures(H: np.ndarray, *, top=(5, 10), weights: str = "energy",
                     eps: float = 1e-12, chunk_rows: int = 4096) -> dict[str, np.ndarray]:
    """All density measures of each row of H.

    Parameters
    ----------
    H : ndarray of shape (n, d) (memory-maps welcome: read ``chunk_rows`` rows at a time,
        which bounds the temporaries to a few chunk-sized arrays)
    top : percentages q for ``top{q}_energy``
    weights : ``"energy"`` or ``"abs"`` for the effective rank's distribution

    Returns
    -------
    dict of measure name -> array of shape (n,)
    """
    if weights not in ("energy", "abs"):
        raise ProbeInputError(f"weights must be 'energy' or 'abs', got {weights!r}")
    parts = [_density_chunk(np.asarray(H[i:i + chunk_rows], dtype=np.float64), top, weights,
                            eps) for i in range(0, max(len(H), 1), chunk_rows)]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _density_chunk(H, top, weights, eps) -> dict[str, np.ndarray]:
    d = H.shape[1]
    a = np.abs(H)
    sq = a ** 2
    l1 = a.sum(1)
    l2sq = sq.sum(1)
    l2 = np.sqrt(l2sq)
    out = {}
    asc = np.sort(a, axis=1)  # one sort serves the top-k energies and the Gini
    for q in top:
        k = int(np.ceil(q * d / 100))
        out[f"top{q:g}_energy"] = (asc[:, d - k:] ** 2).sum(1) / np.maximum(l2sq, eps)
    ratio = l1 / np.maximum(l2, eps)
    out["hoyer"] = (np.sqrt(d) - ratio) / (np.sqrt(d) - 1)
    coef = (2 * np.arange(1, d + 1) - d - 1) / d
    out["gini"] = (asc @ coef) / np.maximum(l1, eps)
    out["l1_l2"] = ratio
    out["l1_norm"] = l1
    p = (sq / np.maximum(l2sq, eps)[:, None] if weights == "energy"
         else a / np.maximum(l1, eps)[:, None])
    entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=1)
    out["effective_rank"] = np.exp(entropy) / d
    return out


class ActivationSparsity(Probe):
    """Density measures per layer, in-distribution vs shifted inputs, with paired CIs.

    Parameters
    ----------
    condition : str
        Item column naming each row's input condition.
    reference : str
        The in-distribution value of ``condition``.
    group : str or None
        Resampling unit (shared by a sentence and its shifted copy); rows if None.
    top : sequence of float
        Percentages q for the top-q energy.
    weights : "energy" or "abs"
        Distribution of the effective rank.
    n_boot, n_perm : int
        Bootstrap replicates, condition permutations.
    level : float
    """

    name = "activation-sparsity"
    summary = "Top-k energy, Hoyer, Gini, L1/L2, effective rank: in-distribution vs shifted."
    memory = "in memory: one layer in float64 (8 n d bytes) and its derived per-row arrays"
    parameter_constraints = {
        "condition": [str], "reference": [str], "group": [str, None],
        "top": [SequenceOf(Interval(float, 0, 100, closed="right"), min_len=1)],
        "weights": [Options({"energy", "abs"})], "n_boot": [POSITIVE_INT],
        "n_perm": [POSITIVE_INT], "level": [OPEN_UNIT],
    }
    column_parameters = ("condition", "group")
    # density is neither good nor bad: these describe, they do not rank
    metric_directions = {"top*_energy": None, "hoyer": None, "gini": None, "l1_l2": None,
                         "l1_norm": None, "effective_rank": None, "*_shift": None}

    @classmethod
    def example_input(cls, rng) -> Example:
        # 40 inputs seen in distribution and shifted (sparser: half the units silenced)
        X = rng.standard_normal((2, 40, 12))
        shifted = X * (np.arange(12) < 6)
        layers = np.concatenate([X, shifted], axis=1).astype(np.float32)
        items = {"condition": np.repeat(["in-distribution", "shifted"], 40),
                 "sentence": np.tile(np.arange(40), 2)}
        return Example(EmbeddingSet(layers, items, source="example"),
                       {"group": "sentence", "n_boot": 30, "n_perm": 20})

    def __init__(self, condition="condition", reference="in-distribution", group=None,
                 top=(5, 10), weights="energy", n_boot=1000, n_perm=200, level=0.95):
        self.condition = condition
        self.reference = reference
        self.group = group
        self.top = top
        self.weights = weights
        self.n_boot = n_boot
        self.n_perm = n_perm
        self.level = level

    def evaluate(self, ctx) -> ProbeResult:
        cond = np.asarray(ctx.column(self.condition)).astype(str)
        values = sorted(set(cond))
        if self.reference not in values or len(values) < 2:
            raise ProbeInputError(
                f"{ctx.embeddings.source}: column {self.condition!r} must contain the "
                f"reference {self.reference!r} and at least one other condition; found {values}")
        conditions = [self.reference] + [str(v) for v in values if v != self.reference]
        groups = ctx.column(self.group) if self.group else None
        n = ctx.embeddings.n_items
        # Same unit draws for every layer, measure and condition: shifts get paired intervals.
        boot = ClusterBootstrap(groups, n, n_boot=self.n_boot, rng=ctx.rng,
                                unit=self.group or "rows", level=self.level)
        perms = np.stack([shuffle_labels(cond, groups=groups, within_groups=groups is not None,
                                         rng=ctx.rng) for _ in range(self.n_perm)])
        # Row-averaging weights of each condition under each permutation: (n_perm, n)
        perm_avg = {c: (perms == c) / np.maximum((perms == c).sum(1, keepdims=True), 1)
                    for c in conditions}
        metrics = []
        for layer, X in ctx.iter_layers():
            measures = density_measures(X, top=self.top, weights=self.weights)
            gauss = density_measures(ctx.rng.standard_normal((min(n, 2000), X.shape[1])),
                                     top=self.top, weights=self.weights)
            for name, v in measures.items():
                samples = {}
                for c in conditions:
                    rows = cond == c
                    samples[c] = boot.ratio(np.where(rows, v, 0.0), rows.astype(float))
                    metrics.append(boot.metric(name, v[rows].mean(), samples[c], layer=layer,
                                               condition=c))
                metrics.append(boot.metric(name, gauss[name].mean(), layer=layer,
                                           baseline="gaussian"))
                ref_mean = v[cond == self.reference].mean()
                for c in conditions[1:]:
                    diff = v[cond == c].mean() - ref_mean
                    metrics.append(boot.metric(f"{name}_shift", diff,
                                               samples[c] - samples[self.reference],
                                               layer=layer, condition=c))
                    # the null's band is the percentile interval of the shuffled shifts
                    null = perm_avg[c] @ v - perm_avg[self.reference] @ v
                    metrics.append(boot.metric(f"{name}_shift", null.mean(), null, layer=layer,
                                               condition=c, baseline="shuffled-condition"))
        return self.result(ctx, metrics, conditions=conditions)

    @classmethod
    def plot(cls, result: ProbeResult):
        """Per measure: the shift mean(shifted) - mean(reference) by layer, with its CI, the
        shuffled-condition null band (grey bar) and the random-init twin's shift (x)."""
        layers = result.info["layers"]
        shifted = result.info["conditions"][1:]
        x = np.arange(len(layers))
        width = 0.7 / max(len(shifted), 1)
        fig, axes = new_figure(3, 2, width="double", aspect=0.7)
        for ax, name in zip(axes.ravel(), FIGURE_MEASURES):
            metric = f"{name}_shift"
            for i, c in enumerate(shifted):
                xs = x + (i - (len(shifted) - 1) / 2) * width
                null = result.series(metric, at=layers, condition=c,
                                     baseline="shuffled-condition")
                ax.bar(xs, null.ci_high - null.ci_low, bottom=null.ci_low,
                       width=0.9 * width, color=BASELINE_COLOR, alpha=0.35, lw=0,
                       label="shuffled-condition null (95%)" if i == 0 else None)
                ms = result.series(metric, at=layers, condition=c)
                err = np.abs(np.array([ms.ci_low, ms.ci_high]) - ms.values)
                ax.errorbar(xs, ms.values, yerr=err, marker="o", ms=3, capsize=2,
                            color=PALETTE[i], ls="-" if len(layers) > 1 else "none", label=c)
                tw = result.series(metric, at=layers, condition=c, baseline="random-init")
                if tw.found.any():
                    ax.plot(xs, tw.values, ls="none", marker="x", ms=4, color=PALETTE[i],
                            label="random-init twin (x)" if i == 0 else None)
            ax.axhline(0, color="k", lw=0.6)
            direction = "lower = sparser" if name in ("l1_l2", "effective_rank") else \
                "higher = sparser"
            # the direction in the title at a readable size (as a 6-point y label it was
            # illegible in print)
            ax.set_title(f"{name.replace('l1_l2', 'l1/l2').replace('_', ' ')} ({direction})",
                         fontsize=8)
            ax.set_ylabel("shift")
            ax.set_xticks(x, layers)
            ax.set_xlabel("layer")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4),
                   frameon=False, title=f"shift relative to {result.info['conditions'][0]}")
        return fig
