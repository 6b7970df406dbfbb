"""Decoding trees from a map's predicted distances: minimum spanning trees of many sentences
at once, edges labelled and oriented by relation prototypes, counts of correct edges.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class DecodedEdges:
    """Spanning-tree edges of a batch, each labelled and oriented; m edges in all.

    sentence : int array (m,), batch index of the edge's sentence
    u, v : int array (m,), the tree edge ``(u, parent[u])``
    head, dep : int array (m,), the same edge oriented head -> dependent
    label : int array (m,), relation-type code
    """

    sentence: np.ndarray
    u: np.ndarray
    v: np.ndarray
    head: np.ndarray
    dep: np.ndarray
    label: np.ndarray


@dataclass
class EdgeCounts:
    """Per-sentence counts of a batch's decoded trees, each of shape (B,)."""

    undirected: np.ndarray  # tree edges that are gold edges, either direction
    directed: np.ndarray    # ... with the right head
    labelled: np.ndarray    # ... with the right head and relation type
    gold: np.ndarray        # gold edges between two spanned words


def decode_edges(parent: np.ndarray, Z: np.ndarray, *, nodes: np.ndarray,
                 prototypes: np.ndarray) -> DecodedEdges:
    """Label and orient the spanning trees ``parent`` (B, L) of projected words Z (B, L, k).

    Each edge ``(u, v)`` takes the relation prototype (t, k) of largest ``|cos|`` with
    ``z_u - z_v`` and points ``u -> v`` (u the head) iff that cosine is positive; only edges
    whose word u is in ``nodes`` (B, L) count.
    """
    b, u = np.nonzero((parent >= 0) & nodes)
    v = parent[b, u]
    vec = Z[b, u] - Z[b, v]
    _, C = nearest_prototype(vec, prototypes)
    label = np.abs(C).argmax(1)
    u_heads = C[np.arange(len(label)), label] > 0
    return DecodedEdges(b, u, v, np.where(u_heads, u, v), np.where(u_heads, v, u), label)


def count_correct(parent: np.ndarray, Z: np.ndarray, *, heads: np.ndarray, rels: np.ndarray,
                  nodes: np.ndarray, prototypes: np.ndarray) -> EdgeCounts:
    """Decode the trees ``parent`` (B, L) and count, per sentence, what they get right.

    heads, rels : int arrays (B, L), gold 0-based heads (-1 root/padding) and relation codes.
    Gold edges count when both their words are in ``nodes`` (B, L).
    """
    B = parent.shape[0]
    e = decode_edges(parent, Z, nodes=nodes, prototypes=prototypes)
    und = (heads[e.sentence, e.u] == e.v) | (heads[e.sentence, e.v] == e.u)
    directed = heads[e.sentence, e.dep] == e.head
    labelled = directed & (rels[e.sentence, e.dep] == e.label)
    gold = (heads >= 0) & nodes & np.take_along_axis(nodes, np.maximum(heads, 0), axis=1)
    return EdgeCounts(np.bincount(e.sentence, und, B), np.bincount(e.sentence, directed, B),
                      np.bincount(e.sentence, labelled, B), gold.sum(1))


def example_tree(i: int, parent: np.ndarray, Z: np.ndarray, *, heads: np.ndarray,
                 rels: np.ndarray, nodes: np.ndarray, prototypes: np.ndarray) -> dict:
    """Sentence ``i`` of a batch, gold and decoded, as the arrays the figure draws."""
    e = decode_edges(parent[i:i + 1], Z[i:i + 1], nodes=nodes[i:i + 1], prototypes=prototypes)
    return {"pred_head": e.head, "pred_dep": e.dep, "pred_rel": e.label,
            "gold_head": heads[i], "gold_rel": rels[i], "nodes": nodes[i]}
