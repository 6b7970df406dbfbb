"""The syntax probes' figure: edge vectors in a polar plot, scores across layers, and one dev
sentence's gold and predicted trees; and the edge coordinates the polar plot draws."""

from __future__ import annotations

import numpy as np
import torch

from geoprobe.plotting import BASELINE_COLOR, PALETTE, layer_axis, legend_outside, new_figure
from geoprobe.syntax.corpus import Batch, gather
from geoprobe.syntax.losses import edge_vectors


def plot_syntax(result, curve_metrics):
    """The figure of a syntax probe's result; ``curve_metrics`` are drawn across layers."""
    fig, axes = new_figure(2, 2, width="double", aspect=0.75)
    # the polar panel and the tree take slots of the same grid: axes added on a grid of their
    # own are not spaced against the others, and the tree's arcs ran into the layer panel's
    # x label and the polar panel's angle labels
    grid = axes[0][0].get_subplotspec().get_gridspec()
    for ax in (axes[0][0], axes[1][0], axes[1][1]):
        fig.delaxes(ax)
    _plot_polar(fig.add_subplot(grid[0, 0], projection="polar"), result)
    _plot_layers(axes[0][1], result, curve_metrics)
    _plot_tree(fig.add_subplot(grid[1, :]), result)
    return fig


def edge_plot_arrays(X: torch.Tensor, weight: np.ndarray, batches: list[Batch], *,
                     n_types: int, plot_types: int, plot_edges: int,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Polar-plot coordinates of gold edge vectors under the map ``weight`` (k, d).

    The ``plot_types`` most frequent relation types, at most ``plot_edges`` random edges each,
    projected on their :func:`separating_plane`. Returns ``edge_xy`` (m, 2) float32 and
    ``edge_type`` (m,) int32 relation codes.
    """
    W = torch.from_numpy(weight).float()
    E_all, R_all = [], []
    with torch.no_grad():
        for batch in batches:
            E, rel = edge_vectors(gather(X, batch) @ W.T, batch.heads, batch.rels)
            E_all.append(E.double().numpy())
            R_all.append(rel.numpy())
    E, R = np.concatenate(E_all), np.concatenate(R_all)
    counts = np.bincount(R[R >= 0], minlength=n_types)
    top = np.argsort(-counts)[:plot_types]
    top = top[counts[top] > 0]
    plane = separating_plane(E, R, top)
    pts, labs = [], []
    for t in top:
        idx = np.flatnonzero(R == t)
        idx = rng.choice(idx, min(len(idx), plot_edges), replace=False)
        pts.append(E[idx] @ plane.T)
        labs.append(np.full(len(idx), t))
    return {"edge_xy": np.concatenate(pts).astype(np.float32),
            "edge_type": np.concatenate(labs).astype(np.int32)}


def separating_plane(E: np.ndarray, R: np.ndarray, types: np.ndarray) -> np.ndarray:
    """The 2-D plane (2, k) that best separates the directions of the given relation types.

    Linear discriminant analysis on unit edge vectors (directions are what the angular loss
    shapes): the top two generalised eigenvectors of between- vs within-type scatter,
    orthonormalised so the plot keeps angles within the plane.
    """
    sel = np.isin(R, types)
    U = E[sel] / np.maximum(np.linalg.norm(E[sel], axis=1, keepdims=True), 1e-12)
    y = R[sel]
    mu = U.mean(0)
    k = U.shape[1]
    Sw, Sb = np.zeros((k, k)), np.zeros((k, k))
    for t in types:
        Ut = U[y == t]
        m = Ut.mean(0)
        Sw += (Ut - m).T @ (Ut - m)
        Sb += len(Ut) * np.outer(m - mu, m - mu)
    Sw += 1e-3 * np.trace(Sw) / k * np.eye(k)
    evals, evecs = np.linalg.eig(np.linalg.solve(Sw, Sb))
    top = evecs[:, np.argsort(-evals.real)[:2]].real
    q, _ = np.linalg.qr(top)
    return q.T


def _plot_polar(ax, result):
    xy, t = result.arrays["edge_xy"], result.arrays["edge_type"]
    types = result.info["relation_types"]
    ang = np.arctan2(xy[:, 1], xy[:, 0])
    rad = np.linalg.norm(xy, axis=1)
    for j, code in enumerate(np.unique(t)):
        sel = t == code
        ax.scatter(ang[sel], rad[sel], s=3, alpha=0.5, color=PALETTE[j % len(PALETTE)],
                   label=types[code], lw=0)
    ax.set_yticklabels([])
    ax.set_title(f"edge vectors at {_layer_label(result.info['best_layer'])}", pad=12)
    ax.legend(frameon=False, fontsize=6, loc="center right", bbox_to_anchor=(-0.12, 0.5),
              markerscale=3)


def _plot_layers(ax, result, names):
    layers = result.info["layers"]
    x = np.arange(len(layers))
    for j, name in enumerate(names):
        ms = result.series(name, at=layers)
        ax.errorbar(x, ms.values, yerr=ms.yerr(), marker="o", ms=3, capsize=2,
                    color=PALETTE[j], label=name.replace("_", " "))
        for baseline, ls in (("identity", ":"), ("random-probe", "-."), ("random-init", "--")):
            b = result.series(name, at=layers, baseline=baseline).values
            if np.isfinite(b).any():
                ok = np.isfinite(b)
                ax.plot(x[ok], b[ok], ls=ls, marker=".", ms=2, color=PALETTE[j], alpha=0.5,
                        lw=1, label=f"{baseline}" if j == 0 else None)
    # "embeddings" in full runs into the next tick label at print size
    layer_axis(ax, [str(layer).replace("layer_", "").replace("embeddings", "emb")
                    for layer in layers])
    ax.set_ylabel(f"{result.params.get('report_split', 'dev')} score")
    ax.set_ylim(0, 1)
    ax.set_title("across layers (95% CI)")
    legend_outside(ax, fontsize=6)  # inside, it covers the baselines near the top


def _layer_label(layer) -> str:
    return str(layer) if str(layer).startswith("layer") else f"layer {layer}"


def _plot_tree(ax, result):
    a = result.arrays
    if "gold_head" not in a:
        ax.set_axis_off()
        return
    words = result.info["example_words"]
    types = result.info["relation_types"]
    n = len(words)
    gold_head, gold_rel = a["gold_head"][:n], a["gold_rel"][:n]

    def arc(h, d, up, color, label):
        lo, hi = sorted((h, d))
        mid, w = (lo + hi) / 2, hi - lo
        t = np.linspace(0, np.pi, 30)
        hgt = 0.3 * w ** 0.7 * (1 if up else -1)
        ax.plot(mid - w / 2 * np.cos(t), hgt * np.sin(t), color=color, lw=0.8)
        ax.annotate("", (d, 0.12 if up else -0.12), (d + 0.001, 0.35 if up else -0.35),
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=0.5))
        ax.text(mid, hgt * 1.02, label, ha="center", va="bottom" if up else "top", fontsize=6,
                color=color)

    for d in range(n):
        if gold_head[d] >= 0:
            arc(gold_head[d], d, True, BASELINE_COLOR, types[gold_rel[d]] if gold_rel[d] >= 0
                else "?")
    gold = {(int(gold_head[d]), d, int(gold_rel[d])) for d in range(n) if gold_head[d] >= 0}
    for h, d, r in zip(a["pred_head"], a["pred_dep"], a["pred_rel"]):
        ok_head = (int(h), int(d)) in {(g[0], g[1]) for g in gold}
        color = PALETTE[2] if (int(h), int(d), int(r)) in gold else (
            PALETTE[1] if ok_head else PALETTE[3])
        arc(int(h), int(d), False, color, types[int(r)])
    for i, w in enumerate(words):
        ax.text(i, 0, w, ha="center", va="center", fontsize=7, rotation=90 if n > 18 else 0,
                color="black" if a["nodes"][i] else BASELINE_COLOR)
    ax.set_xlim(-0.7, n - 0.3)
    span = 0.3 * max(n - 1, 1) ** 0.7
    # room for the two-line caption under the deepest arc's label (at -1.45 they touched)
    ax.set_ylim(-span * 1.6, span * 1.15)
    ax.set_axis_off()
    split = result.params.get("report_split", "dev")
    caption = ax.text(0.5, 0.0, f"{split} sentence {result.info['example_sentence']}\n"
                      f"{_layer_label(result.info['best_layer'])}: gold tree above (grey), "
                      "predicted below (green = right head and label, orange = right head, "
                      "red = wrong)", fontsize=7, ha="center", va="bottom", transform=ax.transAxes)
    caption.set_in_layout(False)  # a long caption must not squeeze the tree
