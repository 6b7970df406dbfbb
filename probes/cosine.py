"""Cosine non-uniqueness: how much item-item cosines are set by the regularizer, not the data.

Definitions (Steck, Ekanadham & Kallus 2024, "Is cosine-similarity of embeddings really about similarity?")
-------------------------------------------------------------------------------------------
The layer is a data matrix X of shape (n, p): rows are users (or samples), columns are items
(or features). A linear factorization ``X ~ X A B^T`` with A, B of shape (p, k) gives item
vectors, the rows of B. Closed forms (``geoprobe/linear_models.py``), with ``X = U S V^T``:

* obj1 ``||X - XAB^T||^2 + lam ||AB^T||^2``: ``A = V_k diag(shrink) D``, ``B = V_k D^-1``,
  ``shrink = s^2 / (s^2 + lam)``, optimal for *every* invertible diagonal D. Predictions
  ``X A B^T`` do not depend on D; the item-item cosines of ``B D^-1`` do.
* obj2 ``||X - XAB^T||^2 + lam (||XA||^2 + ||B||^2)``: ``B = V_k diag(sqrt((s - lam2)_+))``,
  unique up to rotation, so its cosines are unique, but they move with lam.

For obj1 at one lam, the probe draws rescalings D: the three the paper shows (``D = I``, so
``B = V_k``; ``symmetric`` ``D = shrink^-1/2``, so ``A = B``; ``D = shrink^-1``, so
``A = V_k``) and ``n_rescalings`` random ones, ``log D_c ~ N(0, rescale_sigma^2)``. It reports

* ``cosine_range_mean`` / ``cosine_range_p90``: over item pairs, the mean and 90th percentile
  of ``max_D cos_D(i, j) - min_D cos_D(i, j)`` (the range a pair's cosine can take);
* ``rescaling_rank_corr_mean`` / ``_min``: Spearman correlation of the off-diagonal cosines
  between every two rescalings (1 = the ranking of neighbours is unaffected);
* ``max_prediction_change``: ``max |X A_D B_D^T - X A_I B_I^T|`` over rescalings (zero up to
  rounding: the rescalings really leave every prediction unchanged).

Movement with lam: lam is given relative to ``s_k^2`` (the weakest kept direction), so
``lam_rel = 1`` halves that direction under obj1; obj2 gets ``sqrt(lam)`` (its penalty acts on
singular values). For each lam, ``lambda_rank_corr`` is the Spearman correlation of the
cosines with those at the smallest lam (obj1 with the symmetric split, and obj2), and, when
the data carries planted item clusters (``provenance["item_cluster"]``), ``cluster_gap`` is the
mean within- minus between-cluster cosine.

Baselines and controls: ``column-shuffled`` runs the same analysis on X with every column
permuted independently (no co-occurrence structure); ``prediction-space`` takes the cosines
of the rows of ``A B^T`` (the paper's remedy: project back to item space), whose range must
be 0; a random-init twin is added by the core when the embedding set names one. CIs: the
bootstrap over rows of X (users), refitting the closed forms, with the same rescalings D in
every replicate. They are *basic* intervals (as in ``covariance-spectrum``): duplicated rows
add noise to the spectrum, which shifts every eigenvector statistic; the basic interval
reflects that shift and targets the population value, so it may exclude the plug-in value.

Where we differ: the paper shows its toy result only as heatmaps; the range and rank
correlation summaries are ours. The paper's toy data (20,000 users, 1,000 items, 5 clusters,
power-law popularity) is replaced by our generator ``implicit-feedback`` at a smaller size.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from geoprobe.contract import Interval, NON_NEGATIVE, OPEN_UNIT, POSITIVE, POSITIVE_INT, SequenceOf
from geoprobe.errors import ProbeInputError
from geoprobe.linear_models import (
    cluster_gap, cosine_matrix, gram, obj1_factors, obj1_shrink, obj2_factors, off_diagonal,
    spearman_rows, top_eigen,
)
from geoprobe.plotting import BASELINE_COLOR, PALETTE, WIDTH
from geoprobe.probe import Example, Probe, ProbeResult
from geoprobe.stats import ClusterBootstrap

from geoprobe.datasets.recsys import item_clusters

CANONICAL = ("D=I", "symmetric", "A=V_k")
SCALARS = ("cosine_range_mean", "cosine_range_p90", "rescaling_rank_corr_mean",
           "rescaling_rank_corr_min")


def canonical_rescalings(s, lam) -> np.ndarray:
    """The paper's three rescalings D (``CANONICAL`` order), shape (3, k)."""
    shrink = obj1_shrink(s, lam)
    return np.stack([np.ones_like(s), shrink ** -0.5, 1.0 / shrink])


def rescaling_spread(Vk, D, pairs=None) -> dict[str, float]:
    """Range and rank agreement of item-item cosines of ``V_k D^-1`` over the rescalings D.

    Vk : (p, k); D : (r, k); pairs : indices into the off-diagonal pairs used for the rank
    correlations (all when None; ranking is the costly step). Returns the four ``SCALARS``.
    """
    cos = off_diagonal(np.stack([cosine_matrix(Vk / d) for d in D]))
    spread = cos.max(0) - cos.min(0)
    rho = spearman_rows(cos if pairs is None else cos[:, pairs])
    pairs = rho[np.triu_indices(len(D), 1)]
    return {"cosine_range_mean": float(spread.mean()),
            "cosine_range_p90": float(np.quantile(spread, 0.9)),
            "rescaling_rank_corr_mean": float(np.nanmean(pairs)),
            "rescaling_rank_corr_min": float(np.nanmin(pairs))}


def _analyse(G, rank, lam_rel, lambdas_rel, D_random, clusters, pairs):
    """All statistics of one fit from the Gram matrix G (p, p); D_random (r, k) is fixed."""
    s, Vk = top_eigen(G, rank)
    scale = s[-1] ** 2 if s[-1] > 0 else np.mean(s ** 2)
    lam = lam_rel * scale
    D = np.vstack([canonical_rescalings(s, lam), D_random])
    out = rescaling_spread(Vk, D, pairs)
    lams = np.asarray(lambdas_rel) * scale
    # (2 models, n_lambdas, p, p): obj1 with the symmetric split A = B, and obj2
    cos = np.stack([[cosine_matrix(Vk * np.sqrt(obj1_shrink(s, x))) for x in lams],
                    [cosine_matrix(obj2_factors(s, Vk, np.sqrt(x))[1]) for x in lams]])
    off = off_diagonal(cos)[..., pairs]
    out["lambda_rank_corr"] = np.stack([spearman_rows(o, o[0]) for o in off])
    if clusters is not None:
        out["cluster_gap"] = np.array([[cluster_gap(c, clusters) for c in row] for row in cos])
    out["_fit"] = (s, Vk, lam, D)
    return out


class CosineNonuniqueness(Probe):
    """Item-item cosine spread under prediction-preserving rescalings, and its move with lam.

    Each layer is a data matrix (rows = users or samples, columns = items or features).
    Metrics are per layer; the figure's arrays are the last layer's.

    Parameters
    ----------
    rank : int
        Number of factors k (at most the number of columns).
    lam : float
        obj1's lam for the rescaling analysis, relative to ``s_k^2``.
    lambdas : sequence of float
        Relative lam grid for the movement with lam (ascending).
    n_rescalings : int
        Random rescalings D besides the paper's three.
    rescale_sigma : float
        Standard deviation of ``log D``.
    n_boot : int
        Bootstrap refits over rows.
    max_pairs : int
        Item pairs (a fixed random subset) entering the rank correlations; ranges and
        cluster gaps use every pair.
    figure_items : int
        Items shown in the heatmaps (a random subset, sorted by planted cluster).
    level : float
    """

    name = "cosine-nonuniqueness"
    summary = "Item cosines under prediction-preserving rescalings (Steck 2024) and across lambda."
    memory = "in memory: one layer in float64 (8 n d bytes) and per-replicate d x d Gram matrices"
    parameter_constraints = {
        "rank": [POSITIVE_INT], "lam": [POSITIVE], "lambdas": [SequenceOf(POSITIVE, min_len=1)],
        "n_rescalings": [Interval(int, 0, None)], "rescale_sigma": [NON_NEGATIVE],
        "n_boot": [POSITIVE_INT], "max_pairs": [POSITIVE_INT], "figure_items": [POSITIVE_INT],
        "level": [OPEN_UNIT],
    }
    # how arbitrary cosines are: descriptions of the model class, not scores to improve
    metric_directions = {"cosine_range_*": None, "rescaling_rank_corr_*": None,
                         "max_prediction_change": None, "lambda_rank_corr": None,
                         "cluster_gap": None}

    @classmethod
    def example_input(cls, rng) -> Example:
        from geoprobe.datasets.recsys import two_layer_example

        emb = two_layer_example(n_users=150, n_items=30, n_clusters=3, mean_items=8,
                                heldout_users=30, seed=int(rng.integers(2**31)))
        return Example(emb,
                       {"rank": 4, "lambdas": (0.1, 1.0), "n_rescalings": 3, "n_boot": 3,
                        "max_pairs": 200, "figure_items": 20})

    def __init__(self, rank=10, lam=1.0, lambdas=(0.01, 0.1, 0.3, 1.0, 3.0, 10.0),
                 n_rescalings=20, rescale_sigma=1.0, n_boot=30, max_pairs=20000,
                 figure_items=100, level=0.95):
        self.rank = rank
        self.lam = lam
        self.lambdas = lambdas
        self.n_rescalings = n_rescalings
        self.rescale_sigma = rescale_sigma
        self.n_boot = n_boot
        self.max_pairs = max_pairs
        self.figure_items = figure_items
        self.level = level

    def evaluate(self, ctx) -> ProbeResult:
        clusters = item_clusters(ctx.embeddings)
        p = ctx.embeddings.dim
        k = int(self.rank)
        if not 1 <= k <= p:
            raise ProbeInputError(f"cosine-nonuniqueness: rank={k} must lie in [1, {p}] "
                                  f"(the number of columns of {ctx.embeddings.source})")
        lambdas = np.asarray(self.lambdas, dtype=float)
        D_random = np.exp(self.rescale_sigma * ctx.rng.standard_normal((self.n_rescalings, k)))
        show = np.sort(ctx.rng.choice(p, min(p, self.figure_items), replace=False))
        n_pairs = p * (p - 1) // 2
        pairs = np.sort(ctx.rng.choice(n_pairs, min(n_pairs, self.max_pairs), replace=False))
        if clusters is not None:
            show = show[np.argsort(clusters[show], kind="stable")]
        metrics, arrays = [], {"lambdas": lambdas}
        for layer, X in ctx.iter_layers():
            fit = _analyse(gram(X), k, self.lam, lambdas, D_random, clusters, pairs)
            boot = ClusterBootstrap(None, X.shape[0], n_boot=self.n_boot, rng=ctx.rng,
                                    level=self.level)
            boots = [_analyse(gram(X, w), k, self.lam, lambdas, D_random, clusters, pairs)
                     for w in boot.row_weights()]
            labels = {"layer": layer, "lambda_rel": f"{self.lam:g}"}
            for name in SCALARS:
                metrics.append(boot.metric(name, fit[name], np.array([b[name] for b in boots]),
                                           kind="basic", **labels))
            s, Vk, lam, D = fit["_fit"]
            preds = np.stack([(A @ B.T) for A, B in (obj1_factors(s, Vk, lam, d) for d in D)])
            metrics.append(boot.metric("max_prediction_change",
                                       float(np.abs(preds - preds[0]).max()), **labels))
            shuffled = np.take_along_axis(np.asarray(X), ctx.rng.random(X.shape).argsort(0), 0)
            base = _analyse(gram(shuffled), k, self.lam, lambdas, D_random, None, pairs)
            pred_space = off_diagonal(np.stack([cosine_matrix(P) for P in preds]))
            controls = {"column-shuffled": base,
                        "prediction-space": {"cosine_range_mean": float(
                            (pred_space.max(0) - pred_space.min(0)).mean())}}
            for baseline, stats in controls.items():
                for name in SCALARS:
                    if name in stats:
                        metrics.append(boot.metric(name, stats[name], **labels,
                                                   baseline=baseline))
            per_lambda = ["lambda_rank_corr"] + (["cluster_gap"] if clusters is not None else [])
            for stat in per_lambda:
                for m, model in enumerate(("obj1-symmetric", "obj2")):
                    for j, x in enumerate(lambdas):
                        metrics.append(boot.metric(stat, fit[stat][m, j],
                                                   np.array([b[stat][m, j] for b in boots]),
                                                   kind="basic", layer=layer, model=model,
                                                   lambda_rel=f"{x:g}"))
            arrays.update(self._figure_arrays(X, fit, base, show, clusters, lambdas))
        return self.result(ctx, metrics, arrays, lambda_scale="relative to s_k^2",
                           obj2_lambda="sqrt(lambda)", heatmap_items=show.tolist())

    def _figure_arrays(self, X, fit, base, show, clusters, lambdas) -> dict:
        s, Vk, lam, D = fit["_fit"]
        V = Vk[show]
        panels = [np.asarray(clusters[show][:, None] == clusters[show][None, :], float)
                  if clusters is not None else cosine_matrix(np.asarray(X).T[show])]
        # the paper's three rescalings and the first random one
        panels += [cosine_matrix(V / d) for d in D[:4]]
        panels.append(cosine_matrix(obj2_factors(s, V, np.sqrt(lam))[1]))
        cos = off_diagonal(np.stack([cosine_matrix(Vk / d) for d in D]))
        spread = cos.max(0) - cos.min(0)
        s_b, Vk_b, _, D_b = base["_fit"]
        cos_b = off_diagonal(np.stack([cosine_matrix(Vk_b / d) for d in D_b]))
        edges = np.linspace(0, 2, 41)
        out = {"heatmaps": np.stack(panels),
               "range_hist": np.histogram(spread, edges)[0].astype(float),
               "range_hist_shuffled": np.histogram(cos_b.max(0) - cos_b.min(0), edges)[0]
               .astype(float), "range_edges": edges,
               "lambda_rank_corr": fit["lambda_rank_corr"]}
        if "cluster_gap" in fit:
            out["cluster_gap"] = fit["cluster_gap"]
        return out

    @classmethod
    def plot(cls, result: ProbeResult):
        a = result.arrays
        fig = Figure(figsize=(WIDTH["double"], 4.2), layout="constrained")
        top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.4])
        axd = top.subplot_mosaic([["h0", "h1", "h2", "h3", "h4", "h5", "cb"]],
                                 width_ratios=[1] * 6 + [0.08])
        axd.update(bottom.subplot_mosaic([["range", "lam"]]))
        titles = ["planted clusters" if "cluster_gap" in a else "data cosine",
                  "obj1, D = I", "obj1, A = B", "obj1, A = V_k", "obj1, random D",
                  "obj2 (unique)"]
        for i, t in enumerate(titles):
            ax = axd[f"h{i}"]
            im = ax.imshow(a["heatmaps"][i], cmap="RdBu_r", vmin=-1, vmax=1,
                           interpolation="nearest")
            ax.set_title(t, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        top.colorbar(im, cax=axd["cb"], label="cosine")
        layer = result.info["layers"][-1]
        lam_rel = result.params["lam"]
        edges = a["range_edges"]
        centers = 0.5 * (edges[1:] + edges[:-1])
        ax = axd["range"]
        ax.step(centers, a["range_hist_shuffled"] / a["range_hist_shuffled"].sum(),
                where="mid", color=BASELINE_COLOR, label="column-shuffled data")
        ax.step(centers, a["range_hist"] / a["range_hist"].sum(), where="mid",
                color=PALETTE[0], label="data")
        mean = result.metric("cosine_range_mean", layer=layer)
        rho = result.metric("rescaling_rank_corr_mean", layer=layer)
        ax.set_xlabel("range of cos(i, j) over rescalings D")
        ax.set_ylabel("share of item pairs")
        ax.set_title(f"obj1 rescalings (lam = {lam_rel:g} $s_k^2$)\nmean range "
                     f"{mean.value:.2f}, mean rank corr {rho.value:.2f}")
        ax.legend(frameon=False)
        ax = axd["lam"]
        lambdas = a["lambdas"]
        for m, (model, color) in enumerate((("obj1, A = B", PALETTE[2]), ("obj2", PALETTE[3]))):
            ax.semilogx(lambdas, a["lambda_rank_corr"][m], marker="o", ms=3, color=color,
                        label=f"{model}: rank corr. with smallest lam")
            if "cluster_gap" in a:
                ax.semilogx(lambdas, a["cluster_gap"][m], marker="s", ms=3, ls="--",
                            color=color, label=f"{model}: cluster gap")
        ax.set_xlabel("lam / $s_k^2$ (obj2: sqrt)")
        ax.set_ylabel("item-item cosine summary")
        ax.set_title("cosines move with lam")
        ax.legend(frameon=False, fontsize=6)
        return fig
