"""Representational similarity: how alike two spaces over the same items are.

What is compared
----------------
* **layer x layer**: every pair of the probed layers of one set (``against="layers"``);
* **against another set**: every probed layer against every layer of a second set aligned by
  item ID (``against="other"``): another checkpoint, another model, or the random-init twin.
  The second set is the optional annotation ``other`` (an :class:`EmbeddingSet` from Python,
  or a file path in a suite's ``annotations = { other = "ckpt2.gpemb" }`` or
  ``geoprobe probe similarity A.npy --annotation other=B.npy``); its rows are reordered to
  the probed set's item IDs, and a set with other items is refused naming the first missing.

When the probed set has a random-init twin, the core runs the probe on the twin too and its
layer x layer similarities become the ``random-init`` baseline.

Metrics (definitions in :mod:`geoprobe.similarity`)
----------------------------------------------------
``cka_linear`` / ``cka_linear_debiased`` (biased HSIC of Kornblith et al. 2019 / debiased
HSIC of Song et al. 2012), ``cka_rbf`` / ``cka_rbf_debiased`` (Gaussian kernel, bandwidth
``rbf_bandwidth`` x the median distance of each space), ``rsa`` (RDMs by ``dissimilarity``
compared by ``compare``), ``procrustes`` (orthogonal Procrustes distance of centred,
unit-norm spaces), ``shape_angle`` (its angular form, netrep's metric without whitening),
``svcca`` (mean canonical correlation after keeping the singular directions that explain
``svcca_variance`` of each space's variance; Raghu et al. 2017) and ``pwcca`` (canonical
correlations weighted by how much of the ``layer`` side each accounts for; Morcos et al.
2018). PWCCA is asymmetric: each layer x layer pair is reported both ways (``layer`` is the
side whose weights are used; the figure's row), and against another set it is weighted by
the probed set's layer. CCA needs more items than dimensions (with n <= d every canonical
correlation is 1); the ``permuted`` baseline shows how far above 0 a pair of unrelated
spaces of these shapes lands.

Items, memory and streaming
---------------------------
All but the biased linear CKA need n x n matrices (8 n^2 bytes each, three per layer with
every metric on: 24 MB per layer at n = 1,000). Above ``max_items`` items these are computed
on a random subsample of ``max_items`` items, with a warning (in the result's
``info["warnings"]``, results.json's ``warnings`` and on stderr). The biased linear CKA is then still computed
on every item, streamed over row chunks from ``X^T X``, ``Y^T Y``, ``X^T Y`` and the column
sums (memory-mapped sets larger than RAM work); its interval comes from the subsample,
centred on the full-data value (wider than a full-data interval: conservative).

Intervals and baseline
----------------------
Intervals are a cluster bootstrap over ``group`` (rows if None) through
:class:`~geoprobe.stats.ClusterBootstrap`: replicate matrices are the rows and columns of the
drawn items, so every pair and metric sees the same replicates. The interval is the
percentile interval centred on the estimate (:func:`~geoprobe.stats.centred_interval`),
because duplicated items shift these statistics. RSA leaves out the pairs of an item with its
own copy (zero dissimilarity in both spaces), as rsatoolbox's bootstrap does.

The ``permuted`` baseline breaks the item correspondence: the second space's items are
permuted at random (``n_perm`` times, whole rows, ignoring groups) and the metric recomputed;
its value is the mean over permutations and its interval the central ``level`` range of the
permutation distribution. A similarity inside that range is what unrelated spaces of these
shapes would give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geoprobe.contract import OPEN_UNIT, POSITIVE, POSITIVE_INT, Interval, Options, SequenceOf
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import EmbeddingError, ProbeInputError
from geoprobe.io import load_embeddings
from geoprobe.plotting import new_figure
from geoprobe.probe import Example, Probe, ProbeResult, Requirements
from geoprobe.progress import progress
from geoprobe.similarity import (COMPARISONS, DISSIMILARITIES, cka, linear_cka_streaming,
                                 median_distance, procrustes_distance, procrustes_rho, pwcca,
                                 rbf_gram, rdm, rsa, shape_angle, svcca)
from geoprobe.stats import ClusterBootstrap

#: metric -> (value of a space against itself, bounds of the statistic)
METRICS = {
    "cka_linear": (1.0, (0.0, 1.0)),
    "cka_linear_debiased": (1.0, (None, 1.0)),
    "cka_rbf": (1.0, (0.0, 1.0)),
    "cka_rbf_debiased": (1.0, (None, 1.0)),
    "rsa": (1.0, (-1.0, 1.0)),
    "procrustes": (0.0, (0.0, math.sqrt(2.0))),
    "shape_angle": (0.0, (0.0, math.pi / 2)),
    "svcca": (1.0, (0.0, 1.0)),
    "pwcca": (1.0, (0.0, 1.0)),
}
TITLES = {"cka_linear": "linear CKA", "cka_linear_debiased": "linear CKA (debiased)",
          "cka_rbf": "RBF CKA", "cka_rbf_debiased": "RBF CKA (debiased)", "rsa": "RSA",
          "procrustes": "Procrustes distance", "shape_angle": "shape angle (rad)",
          "svcca": "SVCCA", "pwcca": "PWCCA (weighted by row layer)"}
DEFAULT_METRICS = ("cka_linear", "cka_linear_debiased", "cka_rbf", "rsa", "procrustes")


@dataclass
class _Space:
    """One layer's rows of the compared items and the (n, n) matrices its metrics read."""

    X: np.ndarray                  # (m, dim) float64
    linear: np.ndarray | None      # X X^T
    rbf: np.ndarray | None         # Gaussian kernel
    dissim: np.ndarray | None      # RDM


def _sub(M: np.ndarray, idx) -> np.ndarray:
    return M if idx is None else M[np.ix_(idx, idx)]


class Similarity(Probe):
    """CKA, RSA and Procrustes similarity, layer x layer and against another set.

    Parameters
    ----------
    metrics : sequence of str
        Any of ``cka_linear``, ``cka_linear_debiased``, ``cka_rbf``, ``cka_rbf_debiased``,
        ``rsa``, ``procrustes``, ``shape_angle``, ``svcca``, ``pwcca``.
    rbf_bandwidth : float, default 0.8
        RBF kernel width as a fraction of each space's median pairwise distance.
    svcca_variance : float, default 0.99
        Share of each space's variance that SVCCA's leading singular directions keep.
    dissimilarity : {"correlation", "cosine", "euclidean"}
        RSA's dissimilarity.
    compare : {"spearman", "pearson"}
        How RSA compares the two RDMs' upper triangles.
    group : str or None
        Item column naming the bootstrap's resampling unit; rows if None.
    n_boot : int, default 100
    n_perm : int, default 20
        Permutations of the item correspondence for the ``permuted`` baseline.
    level : float, default 0.95
    max_items : int, default 1000
        Most items in the n x n matrices (see the module docstring).
    """

    name = "similarity"
    summary = ("How alike two spaces are: linear/RBF CKA (biased and debiased), RSA, "
               "Procrustes, SVCCA, PWCCA; layer x layer and against another set "
               "(annotation 'other').")
    requires = Requirements(min_items=4)
    parameter_constraints = {
        "metrics": [SequenceOf(Options(set(METRICS)), min_len=1)],
        "rbf_bandwidth": [POSITIVE], "svcca_variance": [OPEN_UNIT], "dissimilarity": [Options(set(DISSIMILARITIES))],
        "compare": [Options(set(COMPARISONS))], "group": [str, None],
        "n_boot": [POSITIVE_INT], "n_perm": [POSITIVE_INT], "level": [OPEN_UNIT],
        "max_items": [Interval(int, 4, None)],
    }
    column_parameters = ("group",)
    metric_directions = {name: None for name in METRICS}
    layer_labels = ("layer", "vs_layer")
    memory = ("streams row chunks for the biased linear CKA (8 (d_x + d_y)^2 bytes); in memory "
              "for the rest: n x n matrices on at most max_items items (8 max_items^2 bytes "
              "each, three per layer), subsampled with a warning")

    def __init__(self, metrics=DEFAULT_METRICS, rbf_bandwidth=0.8, svcca_variance=0.99,
                 dissimilarity="correlation", compare="spearman", group=None, n_boot=100,
                 n_perm=20, level=0.95, max_items=1000):
        self.metrics = metrics
        self.rbf_bandwidth = rbf_bandwidth
        self.svcca_variance = svcca_variance
        self.dissimilarity = dissimilarity
        self.compare = compare
        self.group = group
        self.n_boot = n_boot
        self.n_perm = n_perm
        self.level = level
        self.max_items = max_items

    @classmethod
    def example_input(cls, rng) -> Example:
        """Three layers (a space, a rotated and rescaled copy, an unrelated space) and an
        ``other`` set holding a noisy copy of the first."""
        n, d = 60, 8
        base = rng.standard_normal((n, d))
        rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
        layers = np.stack([base, 2.0 * base @ rotation, rng.standard_normal((n, d))])
        items = {"item_id": np.char.add("w", np.arange(n).astype(str)),
                 "sentence": np.arange(n) // 4}
        emb = EmbeddingSet(layers, items, layer_names=["a", "a_rotated", "unrelated"],
                           source="example:similarity")
        other = EmbeddingSet((base + 0.1 * rng.standard_normal((n, d)))[::-1],
                             {"item_id": items["item_id"][::-1]}, source="example:other")
        return Example(emb, {"group": "sentence", "n_boot": 10, "n_perm": 5,
                             "metrics": tuple(METRICS)}, annotations={"other": other})

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, ctx) -> ProbeResult:
        metrics_on = [m for m in METRICS if m in self.metrics]
        other = None if ctx.is_twin else self._other(ctx)
        n = ctx.embeddings.n_items
        rows = None
        if n > self.max_items:
            rows = np.sort(ctx.rng.choice(n, self.max_items, replace=False))
            ctx.warn(f"similarity: {n} items; the n x n metrics use a random subsample of "
                     f"max_items={self.max_items} (cka_linear uses all, streamed)")
        m = n if rows is None else len(rows)
        groups = ctx.column(self.group) if self.group else None
        if groups is not None and rows is not None:
            groups = groups[rows]
        boot = ClusterBootstrap(groups, m, n_boot=self.n_boot, rng=ctx.rng,
                                unit=self.group or "rows", level=self.level)
        replicates = [np.repeat(np.arange(m), w) for w in boot.row_weights()]
        perms = [ctx.rng.permutation(m) for _ in range(self.n_perm)]

        sets = {"layers": ctx.embeddings}
        pairs = [("layers", a, b) for i, a in enumerate(ctx.layers) for b in ctx.layers[i + 1:]]
        if other is not None:
            sets["other"] = other
            pairs += [("other", a, b) for a in ctx.layers for b in other.layer_names]
        spaces = {}
        for layer in ctx.layers:
            spaces["layers", layer] = self._space(ctx.embeddings.layer(layer), rows, metrics_on)
        if other is not None:
            for layer in other.layer_names:
                spaces["other", layer] = self._space(other.layer(layer), rows, metrics_on)

        matrices = self._matrices(ctx.layers, other, metrics_on)
        results = []
        for against, a, b in progress(pairs, desc="pairs", unit="pair", enable=ctx.progress):
            sa, sb = spaces["layers", a], spaces[against, b]
            # PWCCA is asymmetric: layer x layer pairs are computed i < j and reported both ways
            both_ways = against == "layers"
            est = self._pair(sa, sb, metrics_on, both_ways=both_ways)
            if rows is not None and "cka_linear" in est:
                est["cka_linear"] = linear_cka_streaming(ctx.embeddings.layer(a, dtype=None),
                                                         sets[against].layer(b, dtype=None))
            boots = [self._pair(sa, sb, metrics_on, idx, idx, both_ways=both_ways)
                     for idx in replicates]
            nulls = [self._pair(sa, sb, metrics_on, None, p, both_ways=both_ways)
                     for p in perms]
            # (key in _pair's output, metric name, row layer, column layer)
            entries = [(name, name, a, b) for name in metrics_on]
            if "pwcca" in metrics_on and both_ways:
                entries.append(("pwcca_reverse", "pwcca", b, a))
            for key, name, row, col in entries:
                labels = {"layer": row, "vs_layer": col, "against": against}
                bounds = METRICS[name][1]
                samples = np.array([r[key] for r in boots])
                null = np.array([r[key] for r in nulls])
                results.append(boot.metric(name, est[key], samples, kind="centred",
                                           bounds=bounds, **labels))
                results.append(boot.metric(name, float(np.mean(null)), null, bounds=bounds,
                                           baseline="permuted", **labels))
                self._fill(matrices, name, against, ctx.layers, other, row, col, est[key])
        return self.result(ctx, results, matrices, n_compared=m,
                           other_layers=None if other is None else other.layer_names,
                           other_source=None if other is None else other.source,
                           compared=metrics_on)

    def _other(self, ctx) -> EmbeddingSet | None:
        other = ctx.annotations.get("other")
        if other is None:
            return None
        if not isinstance(other, EmbeddingSet):
            other = load_embeddings(other)
        try:
            return other.align_to(ctx.embeddings)
        except EmbeddingError as exc:
            raise ProbeInputError(f"probe {self.name!r}: annotation 'other' ({other.source}): "
                                  f"{exc}") from None

    def _space(self, X, rows, metrics_on) -> _Space:
        X = np.asarray(X if rows is None else X[rows], dtype=np.float64)
        linear = X @ X.T if any(m.startswith("cka_linear") for m in metrics_on) else None
        rbf = (rbf_gram(X, self.rbf_bandwidth * median_distance(X))
               if any(m.startswith("cka_rbf") for m in metrics_on) else None)
        dissim = rdm(X, self.dissimilarity) if "rsa" in metrics_on else None
        return _Space(X, linear, rbf, dissim)

    def _pair(self, a: _Space, b: _Space, metrics_on, ia=None, ib=None, *,
              both_ways: bool = False) -> dict[str, float]:
        """Every metric of spaces ``a`` and ``b`` on items ``ia`` of a and ``ib`` of b (index
        arrays of equal length; None: all, in order)."""
        out = {}
        for name in metrics_on:
            if name.startswith("cka_"):
                kernel = "linear" if name.startswith("cka_linear") else "rbf"
                out[name] = cka(_sub(getattr(a, kernel), ia), _sub(getattr(b, kernel), ib),
                                debiased=name.endswith("_debiased"))
            elif name == "rsa":
                # a bootstrap replicate's copies of one item are not a pair of items
                mask = None if ia is None else ia[:, None] != ia[None, :]
                out[name] = rsa(_sub(a.dissim, ia), _sub(b.dissim, ib), method=self.compare,
                                mask=mask)
        Xa, Xb = (a.X if ia is None else a.X[ia]), (b.X if ib is None else b.X[ib])
        if "procrustes" in metrics_on or "shape_angle" in metrics_on:
            rho = procrustes_rho(Xa, Xb)
            out["procrustes"], out["shape_angle"] = procrustes_distance(rho), shape_angle(rho)
        if "svcca" in metrics_on:
            out["svcca"] = svcca(Xa, Xb, self.svcca_variance)
        if "pwcca" in metrics_on:
            out["pwcca"] = pwcca(Xa, Xb)
            if both_ways:  # weighted by b as well
                out["pwcca_reverse"] = pwcca(Xb, Xa)
        return out

    @staticmethod
    def _matrices(layers, other, metrics_on) -> dict[str, np.ndarray]:
        """Figure arrays: ``<metric>`` (layers x layers) and ``<metric>_other`` (layers x the
        other set's layers), diagonal set to the self-similarity, NaN until filled."""
        out = {}
        for name in metrics_on:
            mat = np.full((len(layers), len(layers)), np.nan)
            np.fill_diagonal(mat, METRICS[name][0])
            out[name] = mat
            if other is not None:
                out[f"{name}_other"] = np.full((len(layers), other.n_layers), np.nan)
        return out

    @staticmethod
    def _fill(matrices, name, against, layers, other, a, b, value) -> None:
        i = layers.index(a)
        if against == "layers":
            j = layers.index(b)
            matrices[name][i, j] = value
            if name != "pwcca":  # the one asymmetric metric fills [j, i] from its own entry
                matrices[name][j, i] = value
        else:
            matrices[f"{name}_other"][i, other.layer_names.index(b)] = value

    # -- figure ------------------------------------------------------------------------------
    @classmethod
    def plot(cls, result: ProbeResult):
        names = list(result.info["compared"])
        layers = list(result.info["layers"])
        other_layers = result.info.get("other_layers")
        panels = [(name, "") for name in names]
        if other_layers:
            panels += [(name, "_other") for name in names]
        ncols = min(3, math.ceil(math.sqrt(len(panels))))
        nrows = math.ceil(len(panels) / ncols)
        fig, axes = new_figure(ncols, nrows, width="double", aspect=0.95)
        for ax in axes.flat[len(panels):]:
            ax.set_axis_off()
        for ax, (name, suffix) in zip(axes.flat, panels):
            mat = result.arrays[name + suffix]
            low, high = METRICS[name][1]
            low = 0.0 if low is None else low  # debiased CKA may dip below 0: clipped colour
            image = ax.imshow(mat, cmap="cividis", vmin=low, vmax=high)
            if mat.size <= 144:  # annotate while the numbers stay legible
                for (i, j), v in np.ndenumerate(mat):
                    if np.isfinite(v):
                        light = (v - low) / (high - low) > 0.6
                        text = f"{v:.2f}".replace("0.", ".", 1)  # ".93": fits a cell
                        ax.text(j, i, text, ha="center", va="center", fontsize=6,
                                color="black" if light else "white")
            cols = other_layers if suffix else layers
            # 6 points: the least that stays legible in print (5 did not)
            ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=6)
            ax.set_yticks(range(len(layers)), layers, fontsize=6)
            ax.spines[:].set_visible(False)
            title = TITLES[name]
            if suffix:
                title += f"\nvs {result.info.get('other_source') or 'other set'}"
            ax.set_title(title, fontsize=8)
            fig.colorbar(image, ax=ax, shrink=0.6)
        return fig
