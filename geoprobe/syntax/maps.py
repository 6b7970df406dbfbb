"""A fixed linear map with what decoding needs: relation prototypes and a root point."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from geoprobe.syntax.corpus import Batch, gather
from geoprobe.syntax.losses import edge_vectors


@dataclass
class FittedMap:
    """A fixed linear map (k, d) with what evaluation needs: relation prototypes (t, k), the
    root point (k,) and an optional separate depth map (k2, d)."""

    weight: np.ndarray
    prototypes: np.ndarray
    root: np.ndarray | None = None
    depth_weight: np.ndarray | None = None


def fit_prototypes(X: torch.Tensor, W: torch.Tensor, batches: list[Batch], *, n_types: int,
                   max_sentences: int = 5000) -> np.ndarray:
    """Mean gold edge vector per relation type over at most ``max_sentences`` train sentences.

    Returns (n_types, k); types with no train edge get a zero prototype (never predicted).
    """
    k = W.shape[0]
    sums = torch.zeros(n_types, k, dtype=torch.float64)
    counts = torch.zeros(n_types, dtype=torch.float64)
    seen = 0
    with torch.no_grad():
        for batch in batches:
            if seen >= max_sentences:
                break
            seen += len(batch.sent)
            E, rel = edge_vectors(gather(X, batch) @ W.T, batch.heads, batch.rels)
            keep = rel >= 0
            sums.index_add_(0, rel[keep], E[keep].double())
            counts += torch.bincount(rel[keep], minlength=n_types).double()
    protos = sums / counts.clamp_min(1.0)[:, None]
    return protos.numpy()


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
