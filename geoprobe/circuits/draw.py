"""Drawing of one circuit: nodes in columns by layer, edges by the weights between them."""

from __future__ import annotations

import numpy as np

from geoprobe.plotting import PALETTE

from .tasks import VOCAB


def draw_circuit(ax, groups: list[str], nodes: dict[str, np.ndarray], edges: np.ndarray,
                 max_edges: int = 60) -> None:
    """Draw a circuit on ``ax``.

    groups : node group names in forward order, then ``"logits"``.
    nodes : group -> sorted node indices kept (logits: token ids).
    edges : array (m, 5): writer group position in ``groups``, writer index, reader group
        position, reader index, |weight|; the ``max_edges`` heaviest are drawn, line width
        by weight.
    """
    pos = {}
    for x, g in enumerate(groups):
        idx = nodes.get(g, np.array([], int))
        ys = np.linspace(0, 1, len(idx) + 2)[1:-1]
        for i, y in zip(idx, ys):
            pos[(x, int(i))] = y
        ax.scatter([x] * len(idx), ys, s=40, color=PALETTE[x % len(PALETTE)], zorder=3)
        for i, y in zip(idx, ys):
            name = VOCAB[int(i)] if g == "logits" else str(int(i))
            ax.annotate(name, (x, y), xytext=(4, 2), textcoords="offset points", fontsize=6)
    if len(edges):
        heavy = edges[np.argsort(-edges[:, 4])[:max_edges]]
        wmax = heavy[:, 4].max()
        for gw, i, gr, j, w in heavy:
            a, b = (int(gw), int(i)), (int(gr), int(j))
            if a in pos and b in pos:
                ax.plot([a[0], b[0]], [pos[a], pos[b]], color="0.4", lw=0.3 + 2.0 * w / wmax,
                        alpha=0.7, zorder=1)
    ax.set_xticks(range(len(groups)), groups, rotation=30)
    ax.set_yticks([])
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_ylim(0, 1)
