"""EASE^R: the zero-diagonal linear autoencoder, its negative weights and its item geometry.

Definitions (Steck 2019, "Embarrassingly shallow autoencoders for sparse data")
-------------------------------------------------------------------------
``min_B ||X - XB||_F^2 + lam ||B||_F^2`` subject to ``diag(B) = 0`` has the closed form
``P = (X^T X + lam I)^-1``, ``B = I - P diagMat(1/diag P)``, i.e. ``B_ij = -P_ij / P_jj``.
A user's scores are ``x_u B``.

Protocol (Liang et al. 2018 strong generalization, as EASE^R is evaluated): B is fitted on the
training users only; each validation / test user's items are split at random into an 80%
fold-in and a 20% target part; items in the fold-in are excluded from the ranking.

* ``Recall@k = |top-k ∩ target| / min(k, |target|)``;
* ``NDCG@k`` with binary gains, ``DCG = sum_r hit_r / log2(r + 2)`` normalised by the ideal
  DCG of ``min(k, |target|)`` hits.

lam is chosen on validation users by NDCG@100 and the test numbers are reported at that lam.

Geometry: ``negative_share`` is the share of off-diagonal weights below zero; the
``ease-nonneg`` model zeroes them (``max(B, 0)``), which the anchor reports drops accuracy to
about SLIM's level. Item vectors are compared across lam for three models: EASE^R's columns
``B[:, j]`` (how item j is predicted from the others), and the item factors of the two
regularized factorizations of Steck et al. 2024 (``geoprobe/linear_models.py``): obj1 with the
symmetric split ``A = B = V_k diag(sqrt(shrink))`` and obj2 with ``B = V_k
diag(sqrt((s - sqrt(lam))_+))`` (obj2's penalty lives on the singular-value scale, so the
common grid uses ``sqrt(lam)`` for it). For each we report the Spearman correlation of the
item-item cosines with the raw co-occurrence cosines (columns of X), and, when the data
carries planted item clusters, the within- minus between-cluster cosine gap.

Where we differ: the anchor's numbers are on ML-20M / Netflix / MSD, which are not available
offline; we evaluate on :func:`geoprobe.datasets.recsys.implicit_feedback`, so absolute values
are not comparable, only the protocol and the direction of the effects. The anchor's large
drop when negatives are zeroed appears there only with substitute items (the generator's
``substitute_strength`` near 1; docs/regularization.md, ``examples/ease_substitutes.py``).

Baselines: ``popularity`` (rank by training counts) and ``random`` ranking. CIs: percentile
bootstrap over held-out users (the unit of the protocol). The negative share's CI refits B on
bootstrap resamples of training users and is the *basic* interval: duplicated users add
sampling noise to the Gram matrix, which pushes the share toward 1/2, and the plug-in estimate
is biased the same way by the finite sample, so the basic interval (which reflects that shift)
targets the population value and can lie below the plug-in estimate. A random-init twin does not apply (the input is data,
not a model's embeddings).
"""

from __future__ import annotations

import numpy as np

from geoprobe.contract import OPEN_UNIT, POSITIVE, POSITIVE_INT, SequenceOf
from geoprobe.errors import ProbeInputError
from geoprobe.linear_models import (
    cluster_gap, cosine_matrix, ease_weights, gram, obj1_factors, obj1_shrink, obj2_factors,
    off_diagonal, spearman_rows, top_eigen,
)
from geoprobe.plotting import BASELINE_COLOR, PALETTE, legend_outside, new_figure
from geoprobe.probe import Example, Metric, Probe, ProbeResult, Requirements
from geoprobe.stats import ClusterBootstrap, bootstrap_mean

from geoprobe.datasets.recsys import fold_in_split, item_clusters

#: the models compared across lam, in figure order
MODELS = ("ease", "ease-nonneg", "obj1", "obj2")
GEOMETRY_MODELS = ("ease", "obj1", "obj2")


def rank_metrics(scores: np.ndarray, fold_in: np.ndarray, target: np.ndarray,
                 ks=(20, 50, 100)) -> dict[str, np.ndarray]:
    """Per-user Recall@k and NDCG@k (binary gains), excluding fold-in items from the ranking.

    Parameters
    ----------
    scores : ndarray of shape (n_users, n_items)
    fold_in, target : bool arrays of shape (n_users, n_items)
    ks : cut-offs

    Returns
    -------
    dict ``"recall@k"`` / ``"ndcg@k"`` -> array of shape (n_users,)
    """
    scores = np.where(fold_in, -np.inf, np.asarray(scores, dtype=np.float64))
    kmax = min(max(ks), scores.shape[1])
    top = np.argpartition(-scores, kmax - 1, axis=1)[:, :kmax]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, 1)
    hits = np.take_along_axis(target, top, 1).astype(float)
    n_target = target.sum(1)
    discount = 1.0 / np.log2(np.arange(2, kmax + 2))
    ideal = np.cumsum(discount)
    out = {}
    for k in ks:
        k_eff = min(k, kmax)
        best = np.minimum(k_eff, n_target)
        out[f"recall@{k}"] = hits[:, :k_eff].sum(1) / np.maximum(best, 1)
        out[f"ndcg@{k}"] = (hits[:, :k_eff] @ discount[:k_eff]) / ideal[np.maximum(best, 1) - 1]
    return out


class EASE(Probe):
    """EASE^R ranking quality, negative weights and item geometry across lam.

    The layer is the binary interaction matrix X of shape (n_users, n_items) (rows = users),
    e.g. from the ``implicit-feedback`` generator. Metrics are per layer; the figure's arrays
    are the last layer's.

    Parameters
    ----------
    lambdas : sequence of float
        L2 penalties on the Gram scale (EASE^R and obj1; obj2 uses their square roots).
    rank : int
        Number of factors k of the two factorizations.
    split : str
        User column with ``train`` / ``validation`` / ``test``. Without ``validation`` users,
        half the test users (at random) validate; without the column, users are split
        70/15/15 at random.
    target_fraction : float
        Share of each held-out user's items used as ranking targets.
    ks : sequence of int
        Cut-offs for Recall@k and NDCG@k; the largest selects lam (NDCG).
    n_boot : int
        Bootstrap replicates over held-out users.
    n_boot_fit : int
        Refits on resampled training users for the negative-share CI.
    level : float
    """

    name = "ease"
    summary = "EASE^R zero-diagonal autoencoder: Recall/NDCG, negative weights, item cosines vs lam."
    memory = "in memory: one interaction layer in float64 (8 n d bytes) and d x d Gram matrices"
    requires = Requirements(min_items=20)
    uses_twin = False
    # ``split`` is optional (users are split at random without it): not a required column
    parameter_constraints = {
        "lambdas": [SequenceOf(POSITIVE, min_len=1)], "rank": [POSITIVE_INT], "split": [str, None],
        "target_fraction": [OPEN_UNIT], "ks": [SequenceOf(POSITIVE_INT, min_len=1)],
        "n_boot": [POSITIVE_INT],
        "n_boot_fit": [POSITIVE_INT], "level": [OPEN_UNIT],
    }
    # the drop pattern comes first: "ndcg@*" would match it too
    metric_directions = {"ndcg@*_drop_when_negatives_zeroed": None, "recall@*": True,
                         "ndcg@*": True, "negative_share": None, "selected_lambda": None}

    @classmethod
    def example_input(cls, rng) -> Example:
        from geoprobe.datasets.recsys import two_layer_example

        emb = two_layer_example(n_users=200, n_items=30, n_clusters=3, mean_items=8,
                                heldout_users=60, seed=int(rng.integers(2**31)))
        return Example(emb,
                       {"lambdas": (10, 100), "rank": 4, "ks": (5, 10), "n_boot": 20,
                        "n_boot_fit": 3})

    def __init__(self, lambdas=(10, 30, 100, 300, 1000, 3000, 10000), rank=50, split="split",
                 target_fraction=0.2, ks=(20, 50, 100), n_boot=500, n_boot_fit=20, level=0.95):
        self.lambdas = lambdas
        self.rank = rank
        self.split = split
        self.target_fraction = target_fraction
        self.ks = ks
        self.n_boot = n_boot
        self.n_boot_fit = n_boot_fit
        self.level = level

    def _user_splits(self, ctx) -> dict[str, np.ndarray]:
        n = ctx.embeddings.n_items
        if self.split in ctx.items:
            split = np.asarray(ctx.column(self.split)).astype(str)
            masks = {s: split == s for s in ("train", "validation", "test")}
            if not masks["train"].any() or not masks["test"].any():
                raise ProbeInputError(f"{ctx.embeddings.source}: column {self.split!r} needs "
                                      f"'train' and 'test' users, found {sorted(set(split))}")
            if not masks["validation"].any():
                test = np.flatnonzero(masks["test"])
                val = ctx.rng.permutation(test)[:len(test) // 2]
                masks["validation"][val] = True
                masks["test"][val] = False
            return masks
        part = ctx.rng.permutation(n) % 20
        return {"train": part < 14, "validation": (part >= 14) & (part < 17), "test": part >= 17}

    def evaluate(self, ctx) -> ProbeResult:
        lambdas = np.asarray(self.lambdas, dtype=float)
        ks = tuple(int(k) for k in self.ks)
        select = f"ndcg@{max(ks)}"
        clusters = item_clusters(ctx.embeddings)
        masks = self._user_splits(ctx)
        metrics, curves = [], {}
        for layer, X in ctx.iter_layers():
            if not np.isin(X, (0.0, 1.0)).all():
                raise ProbeInputError(f"{ctx.embeddings.source}: layer {layer!r} is not a 0/1 "
                                      "interaction matrix (users x items)")
            Xtr = X[masks["train"]]
            G = gram(Xtr)
            p = G.shape[0]
            s, Vk = top_eigen(G, min(self.rank, p))
            data_cos = off_diagonal(cosine_matrix(Xtr.T))
            held = {name: fold_in_split(X[masks[name]], self.target_fraction, rng=ctx.rng)
                    for name in ("validation", "test")}

            weights = {lam: ease_weights(G, lam) for lam in lambdas}

            def scores_of(model, lam, fold_in):
                if model in ("ease", "ease-nonneg"):
                    B = weights[lam]
                    return fold_in @ (np.maximum(B, 0) if model == "ease-nonneg" else B)
                A, Bf = (obj1_factors(s, Vk, lam) if model == "obj1"
                         else obj2_factors(s, Vk, np.sqrt(lam)))
                return (fold_in @ A) @ Bf.T

            fv, tv = held["validation"]
            val = np.array([[rank_metrics(scores_of(m, lam, fv), fv, tv, ks)[select].mean()
                             for lam in lambdas] for m in MODELS])
            neg_share = np.array([np.mean(off_diagonal(weights[lam]) < 0) for lam in lambdas])
            gap = np.full((len(GEOMETRY_MODELS), len(lambdas)), np.nan)
            corr = np.empty_like(gap)
            for j, lam in enumerate(lambdas):
                vectors = (weights[lam].T, Vk * np.sqrt(obj1_shrink(s, lam)),
                           obj2_factors(s, Vk, np.sqrt(lam))[1])
                cos = np.stack([cosine_matrix(V) for V in vectors])
                corr[:, j] = spearman_rows(off_diagonal(cos), data_cos)
                if clusters is not None:
                    gap[:, j] = [cluster_gap(C, clusters) for C in cos]
            best = val.argmax(axis=1)
            lam_star = lambdas[best[0]]

            ft, tt = held["test"]
            per_user = {m: rank_metrics(scores_of(m, lambdas[best[i]], ft), ft, tt, ks)
                        for i, m in enumerate(MODELS)}
            per_user["popularity"] = rank_metrics(np.broadcast_to(Xtr.sum(0), ft.shape), ft,
                                                  tt, ks)
            per_user["random"] = rank_metrics(ctx.rng.random(ft.shape), ft, tt, ks)
            for model, values in per_user.items():
                labels = {"layer": layer, "model": model}
                if model in ("popularity", "random"):
                    labels["baseline"] = model
                for name, v in values.items():
                    ci = bootstrap_mean(v, n_boot=self.n_boot, level=self.level, rng=ctx.rng,
                                        unit="test users")
                    metrics.append(Metric.from_interval(name, ci, higher_is_better=True,
                                                        **labels))
            drop = per_user["ease"][select] - per_user["ease-nonneg"][select]
            ci = bootstrap_mean(drop, n_boot=self.n_boot, level=self.level, rng=ctx.rng,
                                unit="test users")
            metrics.append(Metric.from_interval(f"{select}_drop_when_negatives_zeroed", ci,
                                                layer=layer))
            metrics.append(self._negative_share(ctx, Xtr, weights[lam_star], lam_star, layer))
            for i, m in enumerate(MODELS):
                metrics.append(Metric("selected_lambda", float(lambdas[best[i]]), n=p,
                                      unit="items", labels={"layer": layer, "model": m}))
            B = weights[lam_star]
            w = off_diagonal(B)
            hist_edges = np.quantile(w, [0.005, 0.995])
            counts, edges = np.histogram(w, bins=60, range=tuple(hist_edges))
            curves = {"lambdas": lambdas, "val_selected": val, "negative_share": neg_share,
                      "cluster_gap": gap, "data_cosine_spearman": corr,
                      "weight_hist": counts.astype(float), "weight_edges": edges,
                      "diag_max_abs": np.array([np.abs(np.diag(B)).max()])}
        return self.result(ctx, metrics, curves, select_by=f"validation {select}",
                           obj2_lambda="sqrt(lambda)",
                           n_users={k: int(v.sum()) for k, v in masks.items()})

    def _negative_share(self, ctx, Xtr, B, lam, layer) -> Metric:
        """Share of negative off-diagonal weights of B (fitted with ``lam`` on ``Xtr``), with a
        CI from refits on resampled training users."""
        value = float(np.mean(off_diagonal(B) < 0))
        boot = ClusterBootstrap(None, Xtr.shape[0], n_boot=self.n_boot_fit, rng=ctx.rng,
                                unit="training users", level=self.level)
        samples = np.array([np.mean(off_diagonal(ease_weights(gram(Xtr, w), lam)) < 0)
                            for w in boot.row_weights()])
        return boot.metric("negative_share", value, samples, kind="basic", layer=layer,
                           **{"lambda": f"{lam:g}"})

    @classmethod
    def plot(cls, result: ProbeResult):
        a = result.arrays
        lambdas = a["lambdas"]
        select = result.info.get("select_by", "validation ndcg@100").split()[-1]
        fig, axes = new_figure(2, 2, width="double", aspect=0.62)
        (ax_q, ax_neg), (ax_w, ax_geo) = axes
        colors = dict(zip(MODELS, PALETTE))
        for i, m in enumerate(MODELS):
            ax_q.semilogx(lambdas, a["val_selected"][i], marker="o", ms=3, color=colors[m],
                          label=m)
        layer = result.info["layers"][-1]
        for base, ls in (("popularity", "--"), ("random", ":")):
            b = result.find(select, layer=layer, baseline=base)
            if b is not None:
                ax_q.axhline(b.value, color=BASELINE_COLOR, ls=ls, label=f"{base} (test)")
        ax_q.set_xlabel("lambda (Gram scale; obj2 uses sqrt)")
        ax_q.set_ylabel(f"validation {select}")
        ax_q.set_title("ranking quality across lambda")
        legend_outside(ax_q)

        ax_neg.semilogx(lambdas, a["negative_share"], marker="o", ms=3, color=PALETTE[0])
        ax_neg.set_xlabel("lambda")
        ax_neg.set_ylabel("share of negative weights")
        ax_neg.set_ylim(0, 1)
        ax_neg.axhline(0.5, color=BASELINE_COLOR, lw=0.8, ls=":")
        neg = result.metric("negative_share", layer=layer)
        ax_neg.set_title(f"EASE$^\\mathrm{{R}}$: {neg.value:.0%} negative weights\n"
                         "(selected lambda)")

        edges = a["weight_edges"]
        centers = 0.5 * (edges[1:] + edges[:-1])
        ax_w.bar(centers, a["weight_hist"], width=np.diff(edges), color=PALETTE[0],
                 edgecolor="none")
        ax_w.axvline(0, color="k", lw=0.8)
        ax_w.set_yscale("log")
        ax_w.set_xlabel(f"off-diagonal weight $B_{{ij}}$ (lambda={neg.labels['lambda']})")
        ax_w.set_ylabel("count")
        drop = result.metric(f"{select}_drop_when_negatives_zeroed", layer=layer)
        # "drops by", not a minus sign: "-0.003 (95% CI [0.002, 0.005])" read as an estimate
        # outside its own interval
        ax_w.set_title(f"zeroing negatives: test {select} drops by {drop.value:.3f}\n"
                       f"(95% CI [{drop.ci_low:.3f}, {drop.ci_high:.3f}])")

        for i, m in enumerate(GEOMETRY_MODELS):
            ax_geo.semilogx(lambdas, a["data_cosine_spearman"][i], marker="o", ms=3,
                            color=colors[m], label=m)
            if np.isfinite(a["cluster_gap"][i]).any():
                ax_geo.semilogx(lambdas, a["cluster_gap"][i], ls="--", marker="s", ms=3,
                                color=colors[m])
        ax_geo.set_xlabel("lambda")
        ax_geo.set_ylabel("solid: rank corr. with data cosine\ndashed: within-between cluster gap")
        ax_geo.set_title("item-item cosines move with lambda")
        legend_outside(ax_geo)
        return fig
