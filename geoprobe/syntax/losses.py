"""The probes' losses, vectorised over a padded batch: every word pair of every sentence at
once (``benchmarks/syntax_reference.py`` has the per-pair reference form they are tested
against).

Z is the projected batch ``B h`` of shape (B, L, k), zero at padding.
"""

from __future__ import annotations

import torch

from geoprobe.syntax.corpus import Batch


def pairwise_sq_dists(Z: torch.Tensor) -> torch.Tensor:
    """``||z_i - z_j||^2`` for Z of shape (B, L, k) -> (B, L, L)."""
    sq = (Z * Z).sum(-1)
    return (sq[:, :, None] + sq[:, None, :] - 2.0 * Z @ Z.transpose(1, 2)).clamp_min(0.0)


def distance_loss(Z: torch.Tensor, batch: Batch) -> torch.Tensor:
    pair_mask = batch.mask[:, :, None] & batch.mask[:, None, :]
    err = (pairwise_sq_dists(Z) - batch.dist).abs() * pair_mask
    return (err.sum((1, 2)) / batch.lengths ** 2).mean()


def depth_loss(Z: torch.Tensor, batch: Batch) -> torch.Tensor:
    err = ((Z * Z).sum(-1) - batch.depth).abs() * batch.mask
    return (err.sum(1) / batch.lengths).mean()


def edge_vectors(Z: torch.Tensor, heads: torch.Tensor, rels: torch.Tensor):
    """Gold edge vectors ``z_head - z_dep`` (n_edges, k) and their relation codes (n_edges,)."""
    b, dep = torch.nonzero(heads >= 0, as_tuple=True)
    return Z[b, heads[b, dep]] - Z[b, dep], rels[b, dep]


def angular_loss(Z: torch.Tensor, batch: Batch) -> torch.Tensor:
    E, rel = edge_vectors(Z, batch.heads, batch.rels)
    if len(rel) < 2:
        return Z.new_zeros(())
    U = torch.nn.functional.normalize(E, dim=1, eps=1e-12)
    C = (1.0 - U @ U.T).clamp(0.0, 2.0)
    T = (rel[:, None] != rel[None, :]).to(Z.dtype)
    return ((C - T) ** 2).mean()


def root_loss(Z: torch.Tensor, batch: Batch, root: torch.Tensor) -> torch.Tensor:
    is_root = (batch.heads == -1) & batch.mask
    return ((Z[is_root] - root) ** 2).mean()


def polar_loss(Z: torch.Tensor, batch: Batch, root: torch.Tensor, *, lam: float,
               beta: float) -> torch.Tensor:
    """The polar probe's objective (Diego-Simon et al. 2024): distance + ``lam`` x angular +
    ``beta`` x root loss, for projected word vectors ``Z`` of shape (n_words, rank)."""
    return (distance_loss(Z, batch) + lam * angular_loss(Z, batch)
            + beta * root_loss(Z, batch, root))
