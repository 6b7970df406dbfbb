"""Planted dependency trees: word vectors generated from known trees through a known linear map.

The truth the syntax probes must recover is built in. Each sentence is a random tree over
``n`` words with one relation type per edge. Latent word positions ``z`` in R^rank start at the
root (a random point) and step from head to dependent by ``z_dep = z_head - e``, where the edge
vector ``e = a * u_type + sqrt(1 - a^2) * w`` has unit norm: a shared direction per relation
type (``u_type``, orthonormal across types) and a direction ``w`` of the sentence's own random
orthonormal frame in the remaining dimensions, one per edge. A path of p >= 2 edges then has
squared length at least ``p (1 - a^2) > 1`` (for ``a < 0.7``; default 0.4), so the minimum spanning tree of
the latent distances is exactly the planted tree, squared distances grow with tree distance,
and ``z_head - z_dep`` points the same way for one type, which is what the polar probe's
angular loss asks for. The root sits near the origin, so
``||z||^2`` is close to depth. Words are ``x = A z + noise``: ``A`` (dim x rank) an orthonormal
random map, plus Gaussian nuisance of scale ``nuisance`` per dimension in the orthogonal
complement of A's columns (and 0.02 everywhere), which blurs the raw (identity-probe)
distances but which a rank-``rank`` probe can project away.
"""

from __future__ import annotations

import numpy as np

from geoprobe.embeddings import EmbeddingSet

RELATIONS = ("nsubj", "obj", "amod", "det", "advmod", "nmod", "case", "punct")


def planted_trees(n_sentences: int = 300, dim: int = 64, rank: int = 28, n_layers: int = 2,
                  min_len: int = 4, max_len: int = 20, type_share: float = 0.4,
                  nuisance: float = 1.0, dev_fraction: float = 0.3,
                  seed: int = 0) -> EmbeddingSet:
    """An embedding set of planted trees with the item columns the syntax probes need.

    Layer 0 is pure nuisance (no tree in it, the planted "bad layer"); layers 1.. carry the
    trees, with the nuisance scale halved at each further layer.

    Returns an EmbeddingSet of shape (n_layers, n_words, dim) with columns item_id
    ("<sentence_id>:<position>"), sentence_id, position (1-based), head (0 = root), deprel,
    upos ("PUNCT" for ``punct`` edges, else "X"), word, split ("train"/"dev").
    """
    rng = np.random.default_rng(seed)
    n_types = len(RELATIONS)
    if rank < n_types + max_len - 1:
        raise ValueError(f"rank {rank} must be at least {n_types + max_len - 1} (relation types "
                         "+ longest sentence - 1), one direction per type and per edge")
    U = np.eye(rank)[:n_types]  # type directions; the random parts live in the rest
    lengths = rng.integers(min_len, max_len + 1, size=n_sentences)
    total = int(lengths.sum())
    sent = np.repeat(np.arange(n_sentences), lengths)
    start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.arange(total) - start[sent] + 1
    # Random tree: a random root; every other word attaches to a word placed before it in a
    # random order (so the heads form a tree), then positions are shuffled by that order.
    key = rng.random(total) + sent
    order_in_sent = np.argsort(np.argsort(key)) - start[sent]
    head = np.zeros(total, dtype=np.int64)
    rel = np.zeros(total, dtype=np.int64)
    Z = np.zeros((total, rank))
    by_rank = np.argsort(sent * (max_len + 1) + order_in_sent)  # words in attachment order
    word_at = np.empty((n_sentences, max_len), dtype=np.int64)
    word_at[sent[by_rank], order_in_sent[by_rank]] = by_rank
    # Each edge of a sentence gets its own direction from an orthonormal frame of the
    # non-type dimensions, so every non-edge pair is farther apart than every edge.
    frames, _ = np.linalg.qr(rng.standard_normal((n_sentences, rank - n_types, max_len - 1)))
    for r in range(max_len):
        alive = lengths > r
        words = word_at[alive, r]
        if r == 0:
            Z[words] = 0.05 * rng.standard_normal((len(words), rank))
            continue
        parents = word_at[alive, rng.integers(0, r, size=len(words))]
        # Punctuation stays a leaf: a word drawn to attach to a punct word takes its head.
        under_punct = (rel[parents] == n_types - 1) & (head[parents] > 0)
        parents[under_punct] = start[sent[parents[under_punct]]] + head[parents[under_punct]] - 1
        types = rng.integers(0, n_types, size=len(words))
        w = np.zeros((len(words), rank))
        w[:, n_types:] = frames[alive, :, r - 1]
        e = type_share * U[types] + np.sqrt(1 - type_share ** 2) * w
        Z[words] = Z[parents] - e
        head[words] = pos[parents]
        rel[words] = types
    is_punct = (rel == n_types - 1) & (head > 0)
    deprel = np.array(RELATIONS)[rel]
    deprel[head == 0] = "root"
    upos = np.where(is_punct, "PUNCT", "X")
    # The tree lives in a random rank-dim subspace; the nuisance fills its complement, which a
    # probe can project away and raw (identity) distances cannot.
    Q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    A, Q_perp = Q[:, :rank], Q[:, rank:]
    layers, names = [], []
    for layer in range(n_layers):
        noise = rng.standard_normal((total, dim - rank)) @ Q_perp.T * nuisance
        noise += 0.02 * rng.standard_normal((total, dim))
        if layer == 0:
            X = noise
        else:
            X = (Z @ A.T) + noise * 0.5 ** (layer - 1)
        layers.append(X.astype(np.float32))
        names.append(str(layer))
    sid = np.char.add("s", sent.astype(str))
    n_dev = int(round(dev_fraction * n_sentences))
    split = np.where(sent >= n_sentences - n_dev, "dev", "train")
    items = {"item_id": np.char.add(np.char.add(sid, ":"), pos.astype(str)),
             "sentence_id": sid, "position": pos, "head": head, "deprel": deprel,
             "upos": upos, "word": np.char.add("w", pos.astype(str)), "split": split}
    provenance = {"model": "generated:planted-trees",
                  "generator": {"name": "planted-trees", "n_sentences": n_sentences,
                                "dim": dim, "rank": rank, "n_layers": n_layers,
                                "min_len": min_len, "max_len": max_len,
                                "type_share": type_share, "nuisance": nuisance,
                                "dev_fraction": dev_fraction, "seed": seed}}
    return EmbeddingSet(np.stack(layers), items, provenance=provenance, layer_names=names,
                        source="generated:planted-trees")
