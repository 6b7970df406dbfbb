"""Hand-derived gradients of the probes' losses, for the training loop.

Every loss of :mod:`geoprobe.syntax.losses` is a smooth (almost everywhere) function of the
projected batch ``Z = H W^T``, so one training step needs only ``dL/dZ`` and then one matrix
product ``dL/dW = (dL/dZ)^T H``. Writing ``dL/dZ`` by hand replaces autograd's recorded graph
of ~40 small operations per batch with ~30 plain ones, and the constant tensors a step needs
(loss weights, flat positions of the gold edges and roots) are built once per run by
:func:`step_batch` instead of once per step. The loss values are not computed: training needs
only the gradients, and the selection loss comes from the definitions.
``tests/probes/test_syntax.py`` checks the gradients against autograd on the definitions in
:mod:`geoprobe.syntax.losses`.

Derivations (``sign`` is ``d|x|/dx``, 0 at 0, as torch's):

* distance: with ``E = D - dist`` (``D`` the predicted squared distances) and
  weights ``w_bij = mask_bi mask_bj / (n_b^2 B)``, ``L = sum w |E|`` and ``G = w sign(E)``;
  since ``D_ij = |z_i|^2 + |z_j|^2 - 2 z_i.z_j`` and ``G`` is symmetric,
  ``dL/dz_i = 4 (sum_j G_ij) z_i - 4 sum_j G_ij z_j``.
* depth: ``L = sum_i w_i |(|z_i|^2 - depth_i)|`` with ``w_i = mask_i / (n_b B)``, so
  ``dL/dz_i = 2 w_i sign(.) z_i``.
* angular: ``U`` the edges ``e = z_head - z_dep`` normalised, ``S = U U^T``, ``T = 1 - same``
  (``same_ab`` = 1 for edges of one relation type), ``C = 1 - S`` (the clamp to [0, 2] is
  active only by rounding, see :func:`add_angular_grad`), so ``C - T = same - S`` and
  ``L = mean (same - S)^2``; ``dL/dU = 4 (S U - same U) / n_e^2``,
  ``dL/de = (dL/dU - u (u . dL/dU)) / |e|``, scattered to the head (+) and the dependent (-).
* root: ``L = mean (z_root - r)^2`` over roots and coordinates; ``dL/dz_root = 2 (z_root - r)
  / (n_r k)``, ``dL/dr = -sum`` of those.

The definition clamps ``D`` at 0. Where the clamp is active (``D < 0`` by rounding: the
diagonal, or two words with equal projections) autograd's gradient is 0 and this one is
``G_ij``; its factor ``z_i - z_j`` is zero there up to rounding, so the two agree to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from geoprobe.syntax.corpus import Batch

#: ``torch.nn.functional.normalize``'s default floor on an edge's norm
NORM_EPS = 1e-12


@dataclass
class StepBatch:
    """A batch's constant tensors for one training step, built once per run.

    rows : long (B*L,), embedding row of each padded slot (padding -> row 0: its projection
        gets zero weight in every loss, so it needs no mask)
    shape : (B, L)
    dist, dist_weight : float (B, L, L), gold distances and the distance loss's weights
    depth, depth_weight : float (B*L,), gold depths and the depth loss's weights
    head, dep : long (n_e,), flat slots of each gold edge's head and dependent
    rel : long (n_e,), each edge's relation type, renumbered 0..n_rel-1 within the batch
    n_rel : relation types in the batch
    root : long (n_r,), flat slots of the root words
    """

    rows: torch.Tensor
    shape: tuple[int, int]
    dist: torch.Tensor
    dist_weight: torch.Tensor
    depth: torch.Tensor
    depth_weight: torch.Tensor
    head: torch.Tensor
    dep: torch.Tensor
    rel: torch.Tensor
    n_rel: int
    root: torch.Tensor


def step_batch(batch: Batch) -> StepBatch:
    """The constant tensors of ``batch``'s training step (on ``batch``'s device)."""
    B, L = batch.mask.shape
    mask = batch.mask.to(batch.dist.dtype)
    n = batch.lengths.to(batch.dist.dtype)
    pair = mask[:, :, None] * mask[:, None, :]
    b, dep = torch.nonzero(batch.heads >= 0, as_tuple=True)
    root = torch.nonzero(((batch.heads == -1) & batch.mask).flatten(), as_tuple=True)[0]
    # unknown types (code -1) form one group, as they compare equal in the definition
    types, rel = torch.unique(batch.rels[b, dep], return_inverse=True)
    return StepBatch(
        rows=batch.rows.flatten(), shape=(B, L), dist=batch.dist,
        dist_weight=pair / (n ** 2 * B)[:, None, None],
        depth=batch.depth.flatten(), depth_weight=(mask / (n * B)[:, None]).flatten(),
        head=b * L + batch.heads[b, dep], dep=b * L + dep, rel=rel, n_rel=len(types),
        root=root)


def distance_grad(Z: torch.Tensor, sb: StepBatch) -> torch.Tensor:
    """Gradient of the distance loss; Z (B*L, k) -> (B*L, k)."""
    Zb = Z.view(*sb.shape, -1)
    sq = (Zb * Zb).sum(-1)
    D = torch.baddbmm(sq[:, :, None] + sq[:, None, :], Zb, Zb.transpose(1, 2), alpha=-2.0)
    G = D.sub_(sb.dist).sign_().mul_(sb.dist_weight)
    dZ = torch.baddbmm(Zb * G.sum(2, keepdim=True), G, Zb, alpha=-1.0).mul_(4.0)
    return dZ.view(Z.shape)


def depth_grad(Z: torch.Tensor, sb: StepBatch) -> torch.Tensor:
    """Gradient of the depth loss; Z (B*L, k) -> (B*L, k)."""
    G = (Z * Z).sum(1).sub_(sb.depth).sign_().mul_(sb.depth_weight)
    return Z * (2.0 * G)[:, None]


def add_angular_grad(Z: torch.Tensor, sb: StepBatch, dZ: torch.Tensor, scale: float) -> None:
    """Add ``scale`` x the gradient of the angular loss to ``dZ`` (B*L, k) in place.

    With ``S = U U^T`` and ``P`` the sum of the unit edges of each relation type,
    ``same U = P[rel]``, and ``S U = U (U^T U)`` needs no (n_e, n_e) matrix when the rank k is
    below n_e: two (k, k)-sized products instead of two (n_e, n_e)-sized ones and ~10 passes
    over n_e^2 entries. The clamp of ``1 - cos`` to [0, 2] is left out: it is active only by
    rounding (``|cos| > 1``: an edge with itself, whose entry is 0 either way, or two parallel
    edges, whose term the projection orthogonal to ``u`` removes). Below ``NORM_EPS`` the
    definition's normalisation ``e / eps`` is linear and has no projection term; this one
    keeps it, which differs only for edges shorter than 1e-12 but not zero (at zero ``u = 0``
    and both give 0).
    """
    n_e = len(sb.rel)
    if n_e < 2:
        return
    E = Z.index_select(0, sb.head) - Z.index_select(0, sb.dep)
    floor = E.norm(dim=1, keepdim=True).clamp_min_(NORM_EPS)
    U = E / floor
    P = U.new_zeros(sb.n_rel, U.shape[1]).index_add_(0, sb.rel, U)
    SU = U @ (U.T @ U) if U.shape[1] < n_e else (U @ U.T) @ U
    dU = SU.sub_(P.index_select(0, sb.rel)).mul_(4.0 * scale / n_e ** 2)
    dE = dU.sub_(U * (U * dU).sum(1, keepdim=True)).div_(floor)
    dZ.index_add_(0, sb.head, dE)
    dZ.index_add_(0, sb.dep, dE.neg_())


def add_root_grad(Z: torch.Tensor, sb: StepBatch, root: torch.Tensor, dZ: torch.Tensor,
                  scale: float) -> torch.Tensor:
    """Add ``scale`` x the gradient of the root loss to ``dZ`` in place; returns ``scale`` x
    its gradient with respect to ``root`` (k,)."""
    diff = Z.index_select(0, sb.root) - root
    g = diff.mul_(2.0 * scale / diff.numel())
    dZ.index_add_(0, sb.root, g)
    return -g.sum(0)


def polar_grad(Z: torch.Tensor, sb: StepBatch, root: torch.Tensor, *, lam: float,
               beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of the polar loss (distance + ``lam`` angular + ``beta`` root) with respect
    to Z (B*L, k) and ``root`` (k,)."""
    dZ = distance_grad(Z, sb)
    add_angular_grad(Z, sb, dZ, lam)
    return dZ, add_root_grad(Z, sb, root, dZ, beta)
