"""A fixed linear map with what decoding needs: relation prototypes and a root point."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from geoprobe.device import to_numpy
from geoprobe.syntax.corpus import Batch, Corpus, gather


@dataclass
class FittedMap:
    """A fixed linear map (k, d) with what evaluation needs: relation prototypes (t, k), the
    root point (k,) and an optional separate depth map (k2, d)."""

    weight: np.ndarray
    prototypes: np.ndarray
    root: np.ndarray | None = None
    depth_weight: np.ndarray | None = None


def prototype_sentences(corpus: Corpus, *, max_sentences: int, seed: int) -> np.ndarray:
    """Sorted indices of the sentences prototypes are fitted on: all of them, or a uniform
    random ``max_sentences`` of them (int array of length min(n, max_sentences))."""
    if corpus.n <= max_sentences:
        return np.arange(corpus.n)
    return np.sort(np.random.default_rng(seed).choice(corpus.n, max_sentences, replace=False))


def fit_prototypes(X: torch.Tensor, W: torch.Tensor, corpus: Corpus, *, n_types: int,
                   max_sentences: int = 5000, seed: int = 0) -> np.ndarray:
    """Mean gold edge vector ``W h_head - W h_dep`` per relation type over at most
    ``max_sentences`` train sentences (the reference's cap), drawn at random with ``seed``.

    X : float tensor (n_rows, d); W : float tensor (k, d); corpus : the train sentences.
    The sentences are a uniform random sample, not the first ones of the length-sorted
    batches, which would take the prototypes from the shortest sentences only. Since the map
    is linear, the mean edge is taken in the model's space and projected once.

    Returns (n_types, k); types with no sampled edge get a zero prototype (never predicted).
    """
    sel = prototype_sentences(corpus, max_sentences=max_sentences, seed=seed)
    heads, rels, rows = corpus.heads[sel], corpus.rels[sel], corpus.rows[sel]
    s, dep = np.nonzero((heads >= 0) & (rels >= 0))
    head_rows = torch.from_numpy(rows[s, heads[s, dep]])
    dep_rows = torch.from_numpy(rows[s, dep])
    rel = torch.from_numpy(rels[s, dep])
    with torch.no_grad():
        diff = (X[head_rows] - X[dep_rows]).double()
        sums = torch.zeros(n_types, X.shape[1], dtype=torch.float64).index_add_(0, rel, diff)
        counts = torch.bincount(rel, minlength=n_types).double()
        protos = (sums / counts.clamp_min(1.0)[:, None]) @ W.detach().cpu().double().T
    return to_numpy(protos)


def fit_root(X: torch.Tensor, W: torch.Tensor, batches: list[Batch]) -> np.ndarray:
    """Mean projected root word over train: the root point of an untrained map."""
    total, n = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            Z = gather(X, batch) @ W.T
            R = Z[(batch.heads == -1) & batch.mask]
            total = total + R.double().sum(0)
            n += len(R)
    return (total / max(n, 1)).numpy()
