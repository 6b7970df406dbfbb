"""Gold dependency-tree geometry: depths and path lengths between words, vectorised.

Depths come from pointer-following over all words at once (one step per tree level),
distances from the ancestor matrix ``A`` (``A[i, a]`` is true when ``a`` is ``i`` or one of its
ancestors): the lowest common ancestor of ``i`` and ``j`` has depth ``(A @ A.T)[i, j] - 1``, so
``d(i, j) = depth_i + depth_j - 2 depth_lca``. :func:`batch_tree_distances` does the same for a
padded batch of sentences. Heads are CoNLL-U's: 1-based, 0 for the root.
"""

from __future__ import annotations

import numpy as np


def ancestor_matrix(heads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ancestors of every word, without checking that ``heads`` form a tree.

    Parameters
    ----------
    heads : array of int, shape (n,), 1-based heads with 0 for the root, each in 0..n

    Returns
    -------
    ancestors : ndarray of bool, shape (n, n), ancestor-or-self matrix
    reached : ndarray of bool, shape (n,), whether the word's head chain reaches the root
        within n steps (false only on cycles)
    """
    heads = np.asarray(heads, dtype=np.int64)
    n = len(heads)
    parent = heads - 1
    root_mask = parent < 0
    parent[root_mask] = np.flatnonzero(root_mask)  # the root is its own parent: a fixed point
    anc = np.eye(n, dtype=bool)
    cur = np.arange(n)
    rows = np.arange(n)
    for _ in range(n):
        nxt = parent[cur]
        if np.array_equal(nxt, cur):
            break
        anc[rows, nxt] = True
        cur = nxt
    return anc, root_mask[cur]


def _check_heads(heads) -> np.ndarray:
    heads = np.asarray(heads)
    if heads.ndim != 1 or heads.size == 0 or heads.dtype.kind not in "iu":
        raise ValueError(f"heads must be a non-empty 1-D integer array, got {heads.dtype} "
                         f"of shape {heads.shape}")
    if ((heads < 0) | (heads > len(heads))).any() or (heads == 0).sum() != 1:
        raise ValueError(f"heads {heads.tolist()} are not a tree: need exactly one 0 and "
                         "every other head in 1..n")
    return heads.astype(np.int64)


def _ancestors(heads) -> np.ndarray:
    anc, reached = ancestor_matrix(_check_heads(heads))
    if not reached.all():
        raise ValueError(f"heads {np.asarray(heads).tolist()} contain a cycle")
    return anc


def tree_depths(heads) -> np.ndarray:
    """Depth of each word: the number of edges from the root (root = 0).

    Parameters
    ----------
    heads : array of int, shape (n,), 1-based heads with 0 for the root (a valid tree)

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    return _ancestors(heads).sum(axis=1) - 1


def tree_distances(heads) -> np.ndarray:
    """Path lengths in the (undirected) tree between every pair of words.

    Parameters
    ----------
    heads : array of int, shape (n,), 1-based heads with 0 for the root (a valid tree)

    Returns
    -------
    ndarray of int64, shape (n, n), symmetric with a zero diagonal
    """
    return _distances_from_ancestors(_ancestors(heads)[None])[0]


def _distances_from_ancestors(anc: np.ndarray) -> np.ndarray:
    a = anc.astype(np.float32)
    depth = a.sum(axis=2) - 1                        # (B, L)
    common = np.rint(a @ a.transpose(0, 2, 1))       # (B, L, L): depth of the LCA + 1
    d = depth[:, :, None] + depth[:, None, :] - 2 * (common - 1)
    return d.astype(np.int64)


def batch_tree_distances(heads_list, *, pad: int = -1):
    """Tree distances and depths of many sentences at once, padded to the longest.

    Parameters
    ----------
    heads_list : sequence of B int arrays of shape (n_b,), each a valid tree
    pad : int
        Value written where a row or column lies beyond a sentence's length.

    Returns
    -------
    distances : ndarray of int64, shape (B, L, L), L = max n_b
    depths : ndarray of int64, shape (B, L)
    lengths : ndarray of int64, shape (B,)
    """
    lengths = np.array([len(h) for h in heads_list], dtype=np.int64)
    B, L = len(lengths), int(lengths.max(initial=0))
    valid = np.arange(L)[None, :] < lengths[:, None]           # (B, L)
    # Padding words become their own roots, so they never join a real word's ancestor chain.
    parent = np.tile(np.arange(L), (B, 1))
    for b, h in enumerate(heads_list):
        h = _check_heads(h)
        parent[b, :len(h)] = np.where(h > 0, h - 1, np.arange(len(h)))
    anc = np.zeros((B, L, L), dtype=bool)
    anc[:, np.arange(L), np.arange(L)] = True
    cur = np.tile(np.arange(L), (B, 1))
    rows_b = np.arange(B)[:, None]
    for _ in range(L):
        nxt = np.take_along_axis(parent, cur, axis=1)
        if np.array_equal(nxt, cur):
            break
        anc[rows_b, np.arange(L)[None, :], nxt] = True
        cur = nxt
    dist = _distances_from_ancestors(anc)
    depth = anc.sum(axis=2).astype(np.int64) - 1
    pair_valid = valid[:, :, None] & valid[:, None, :]
    dist[~pair_valid] = pad
    depth[~valid] = pad
    return dist, depth, lengths
