"""Decoding trees from a map's predicted distances: minimum spanning trees of many sentences
at once, edges labelled and oriented by relation prototypes, counts of correct edges.
"""

from __future__ import annotations

import numpy as np


def batched_prim(D: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Minimum spanning trees of many small graphs at once (Prim's algorithm, batched).

    D : float array (B, L, L), symmetric distances; valid : bool array (B, L), the nodes to span.
    Returns parent (B, L) int: the tree edges are ``(i, parent[i])`` for parent >= 0; the first
    valid node of each graph, invalid nodes and graphs with one node have -1.
    """
    B, L = valid.shape
    parent = np.full((B, L), -1, dtype=np.int64)
    if L == 0:
        return parent
    rows = np.arange(B)
    start = np.argmax(valid, axis=1)
    in_tree = ~valid.copy()
    in_tree[rows, start] = True
    best = np.where(in_tree, np.inf, D[rows, start])
    best_from = np.repeat(start[:, None], L, axis=1)
    for _ in range(L - 1):
        nxt = np.argmin(best, axis=1)
        grow = np.isfinite(best[rows, nxt])
        if not grow.any():
            break
        g = rows[grow]
        n = nxt[grow]
        parent[g, n] = best_from[g, n]
        in_tree[g, n] = True
        closer = D[g, n] < best[g]
        best[g] = np.where(closer, D[g, n], best[g])
        best_from[g] = np.where(closer, n[:, None], best_from[g])
        best[in_tree] = np.inf
    return parent


def nearest_prototype(E: np.ndarray, protos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of edge vectors E (n, k) with prototypes (t, k): (argmax cos, cos matrix)."""
    U = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    P = protos / np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)
    C = U @ P.T
    return C.argmax(1), C


def _orient(parent, Zn, nodes, protos):
    """Label and orient MST edges: returns (b, u, v, head, dep, label) arrays."""
    b, u = np.nonzero((parent >= 0) & nodes)
    v = parent[b, u]
    vec = Zn[b, u] - Zn[b, v]
    _, C = nearest_prototype(vec, protos)
    label = np.abs(C).argmax(1)
    u_heads = C[np.arange(len(label)), label] > 0
    return b, u, v, np.where(u_heads, u, v), np.where(u_heads, v, u), label


def _tree_counts(parent, Zn, heads, rels, nodes, protos):
    """Per sentence: correct undirected, directed and labelled edges, and gold edge count."""
    B = parent.shape[0]
    b, u, v, head, dep, label = _orient(parent, Zn, nodes, protos)
    und = (heads[b, u] == v) | (heads[b, v] == u)
    directed = heads[b, dep] == head
    labelled = directed & (rels[b, dep] == label)
    gold = (heads >= 0) & nodes & np.take_along_axis(nodes, np.maximum(heads, 0), axis=1)
    return (np.bincount(b, und, B), np.bincount(b, directed, B), np.bincount(b, labelled, B),
            gold.sum(1))


def _example_tree(i, parent, Zn, heads, rels, nodes, protos):
    b, u, v, head, dep, label = _orient(parent[i:i + 1], Zn[i:i + 1], nodes[i:i + 1], protos)
    return {"pred_head": head, "pred_dep": dep, "pred_rel": label,
            "gold_head": heads[i], "gold_rel": rels[i], "nodes": nodes[i]}
