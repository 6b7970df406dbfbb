"""A generated implicit-feedback dataset (users x items, binary) with clustered items.

The set mimics the toy setting of Steck, Ekanadham & Kallus (2024) and the protocol of Liang
et al. (2018) that EASE^R is evaluated with (Steck 2019):

* items fall into ``n_clusters`` clusters (columns are sorted by cluster) and have power-law
  popularity ``pop_j ~ rank_j^(-popularity_exponent)``;
* each user prefers one cluster; the chance of consuming item ``j`` is proportional to
  ``pop_j * (affinity if cluster_j == preferred else 1)``;
* a user's activity (number of items) is log-normal, at least ``min_items``;
* optionally (``substitute_size`` > 1, ``substitute_strength`` > 0) items come in
  *substitute groups*: runs of ``substitute_size`` consecutive items of one cluster
  (near-duplicates, competing products). For each user and group, with probability
  ``substitute_strength`` the user takes at most one item of the group (the one they would
  have drawn first): a negative co-occurrence inside the group *conditional on taste*, which
  the additive popularity x affinity model alone never produces and which EASE^R can only
  express with negative weights (Steck 2019, Section 4);
* users are split *by user* into ``train`` / ``validation`` / ``test`` (strong
  generalization: held-out users are never seen while fitting; their items are split into a
  fold-in part and a target part at evaluation time, see :func:`fold_in_split`).

The embedding set's single layer is the binary matrix X of shape (n_users, n_items); its rows
are users. Item (column) facts live in the provenance: ``provenance["item_cluster"]`` (length
n_items), ``provenance["item_popularity"]`` and, with substitutes,
``provenance["item_substitute_group"]``.
"""

from __future__ import annotations

import numpy as np

from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import ProbeInputError


def implicit_feedback(n_users: int = 6000, n_items: int = 400, n_clusters: int = 5,
                      popularity_exponent: float = 0.8, affinity: float = 8.0,
                      mean_items: float = 25.0, min_items: int = 5,
                      heldout_users: int = 1000, substitute_size: int = 1,
                      substitute_strength: float = 0.0, seed: int = 0) -> EmbeddingSet:
    """Binary user-item matrix with clustered items and a strong-generalization user split.

    Parameters
    ----------
    n_users, n_items, n_clusters : int
    popularity_exponent : float
        Zipf exponent of item popularity (0 = uniform).
    affinity : float
        Odds multiplier for items of a user's preferred cluster (1 = no cluster structure).
    mean_items : float
        Median user activity (log-normal with sigma 0.6), clipped to [min_items, n_items // 2].
    heldout_users : int
        Users in each of the validation and test splits.
    substitute_size : int
        Items per substitute group (consecutive items, never across clusters); 1: none.
    substitute_strength : float in [0, 1]
        Chance, per user and group, that the user takes at most one item of the group. A
        user's activity is capped at the items still open to them. Drawn after the split, so
        the same seed gives the same users, split and item preferences at every strength.
    seed : int

    Returns
    -------
    EmbeddingSet with one layer ``"interactions"`` of shape (n_users, n_items) (float32, 0/1)
    and item columns ``item_id`` (user IDs), ``split``, ``preferred_cluster``, ``n_interactions``.
    """
    if 2 * heldout_users >= n_users:
        raise ProbeInputError(f"heldout_users={heldout_users} leaves no training users out of "
                              f"{n_users}; use fewer than n_users / 2")
    if n_clusters < 1 or n_items < n_clusters:
        raise ProbeInputError(f"need 1 <= n_clusters <= n_items, got {n_clusters}, {n_items}")
    if substitute_size < 1 or not 0.0 <= substitute_strength <= 1.0:
        raise ProbeInputError("need substitute_size >= 1 and 0 <= substitute_strength <= 1, "
                              f"got {substitute_size}, {substitute_strength}")
    rng = np.random.default_rng(seed)
    item_cluster = np.sort(rng.integers(0, n_clusters, n_items))
    popularity = rng.permutation(np.arange(1, n_items + 1) ** -float(popularity_exponent))
    preferred = rng.integers(0, n_clusters, n_users)
    log_w = (np.log(popularity)[None, :]
             + np.log(affinity) * (item_cluster[None, :] == preferred[:, None]))
    activity = np.clip(np.round(mean_items * np.exp(0.6 * rng.standard_normal(n_users))),
                       min_items, n_items // 2).astype(int)
    # Gumbel top-k draws `activity` distinct items per user with probability proportional to w.
    keys = log_w - np.log(-np.log(rng.random((n_users, n_items))))
    split = np.full(n_users, "train", dtype="<U10")
    held = rng.permutation(n_users)[:2 * heldout_users]
    split[held[:heldout_users]] = "validation"
    split[held[heldout_users:]] = "test"
    group = substitute_groups(item_cluster, substitute_size)
    if substitute_size > 1 and substitute_strength > 0:
        keys = _exclude_substitutes(keys, group, substitute_strength, rng)
        activity = np.minimum(activity, np.isfinite(keys).sum(1))
    ranks = np.argsort(np.argsort(-keys, axis=1), axis=1)
    X = (ranks < activity[:, None]).astype(np.float32)
    items = {"item_id": np.char.add("u", np.arange(n_users).astype(str)), "split": split,
             "preferred_cluster": preferred, "n_interactions": activity}
    params = {"name": "implicit-feedback", "n_users": n_users, "n_items": n_items,
              "n_clusters": n_clusters, "popularity_exponent": popularity_exponent,
              "affinity": affinity, "mean_items": mean_items, "min_items": min_items,
              "heldout_users": heldout_users, "substitute_size": substitute_size,
              "substitute_strength": substitute_strength, "seed": seed}
    provenance = {"model": "generated:implicit-feedback", "generator": params,
                  "item_cluster": item_cluster.tolist(),
                  "item_popularity": popularity.round(6).tolist()}
    if substitute_size > 1:
        provenance["item_substitute_group"] = group.tolist()
    return EmbeddingSet(X[None], items, provenance=provenance, layer_names=["interactions"],
                        source="generated:implicit-feedback")


def substitute_groups(item_cluster: np.ndarray, size: int) -> np.ndarray:
    """Substitute group of each item, shape (n_items,): runs of ``size`` consecutive items of
    one cluster (``item_cluster`` sorted, as the generator makes it); a cluster's last run may
    be shorter. ``size`` 1 gives every item its own group."""
    item_cluster = np.asarray(item_cluster)
    position = np.arange(len(item_cluster)) - np.searchsorted(item_cluster, item_cluster)
    return np.cumsum(position % size == 0) - 1


def _exclude_substitutes(keys: np.ndarray, group: np.ndarray, strength: float,
                         rng: np.random.Generator) -> np.ndarray:
    """Gumbel keys (n_users, n_items) with every item but the top one of a group set to -inf
    where the user is exclusive in that group (chance ``strength`` per user and group)."""
    n_groups = int(group.max()) + 1
    starts = np.flatnonzero(np.r_[True, np.diff(group) != 0])
    top = np.maximum.reduceat(keys, starts, axis=1)           # (n_users, n_groups)
    exclusive = rng.random((keys.shape[0], n_groups)) < strength
    drop = exclusive[:, group] & (keys < top[:, group])
    return np.where(drop, -np.inf, keys)


def fold_in_split(X: np.ndarray, target_fraction: float = 0.2, *,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split each held-out user's items into fold-in and target parts (Liang et al. 2018).

    Parameters
    ----------
    X : ndarray of shape (n_users, n_items), binary
    target_fraction : float
        Share of each user's items held out as targets, rounded, at least 1 (users with a
        single item keep it as target and have an empty fold-in).

    Returns
    -------
    fold_in, target : bool arrays of shape (n_users, n_items) with ``fold_in | target == X``.
    """
    X = np.asarray(X) > 0
    keys = np.where(X, rng.random(X.shape), np.inf)
    ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
    n_target = np.maximum(1, np.round(target_fraction * X.sum(1))).astype(int)
    target = X & (ranks < n_target[:, None])
    return X & ~target, target


def item_clusters(embeddings: EmbeddingSet) -> np.ndarray | None:
    """The planted item (column) clusters of a generated set, shape (dim,), or None."""
    clusters = embeddings.provenance.get("item_cluster")
    if clusters is None or len(clusters) != embeddings.dim:
        return None
    return np.asarray(clusters, dtype=int)


def two_layer_example(*, seed: int, **params) -> EmbeddingSet:
    """A small :func:`implicit_feedback` set with a second layer for the probes' example
    inputs (``check_probe`` runs one- and multi-layer sets): layer 1 is layer 0 with every
    other item's interactions dropped. ``params`` go to :func:`implicit_feedback`."""
    one = implicit_feedback(seed=seed, **params)
    X = one.layer(0)
    layers = np.stack([X, X * (np.arange(X.shape[1]) % 2 == 0)])
    return EmbeddingSet(layers, dict(one.items.items()), provenance=one.provenance,
                        source="example")
