"""Baselines for the syntax probes' losses, written from the reference implementations.

Three forms, strongest first (``bench_syntax.py`` times ours against each):

* ``polar_step_reference``: the polar probe's loss as the published PolarProbe ``train.py``
  (Diego-Simon et al. 2024) computes it in one optimiser step. That code projects each sentence's
  words once; fills a zero (n, n) matrix of squared distances with a Python loop over the pairs
  i < j (each entry written twice); takes ``nn.L1Loss`` (mean over the n^2 entries) of the
  flattened matrix against the gold tree distances, averaged over sentences; stacks the gold
  edge vectors ``z_head - z_dep`` of the whole batch, sorts them by relation, and computes the
  angular loss as one matrix product of the normalised edges, ``clamp(1 - cos, 0, 2)``, against
  a gold matrix of ones zeroed block by block; and takes the MSE between each sentence's root
  word and the learned root point. Total: ``dist + lam * ang + beta * root``. The transcription
  follows it step by step in our own code. Two things differ, both in the reference's favour:
  the language model's forward pass is left out (both sides read stored vectors), and the gold
  matrix's blocks are zeroed once per relation, where the reference iterates over a ``set`` of
  0-d tensors, which holds every edge separately.
* ``distance_loss_batched``: the structural probe's distance loss as Hewitt and Manning's
  ``structural-probes`` code computes it: a padded (B, L, d) batch, ``B h`` as one matmul,
  every pair's difference as a broadcast (B, L, L, k) tensor, squared and summed, then the
  masked L1 per sentence divided by n^2 and averaged over the batch's sentences.
* ``*_loop``: every ordered word pair and every pair of edges in a Python loop. No reference
  implementation is written this way; it is the naive form, kept as the weaker baseline and as
  the slow, obviously correct definition ``tests/probes/test_syntax.py`` checks the vectorised
  losses against.

Sentences are given as dicts with ``H`` (n, d) tensor, ``dist`` (n, n), ``depth`` (n,),
``heads`` (n,) 0-based (-1 root) and ``rels`` (n,) relation codes.
"""

from __future__ import annotations

import torch


def distance_loss_loop(W: torch.Tensor, sentences) -> torch.Tensor:
    """mean over sentences of (1/n^2) sum_ij |d_T(i,j) - ||W(h_i - h_j)||^2|."""
    total = 0.0
    for s in sentences:
        n = len(s["heads"])
        acc = 0.0
        for i in range(n):
            for j in range(n):
                diff = W @ (s["H"][i] - s["H"][j])
                acc = acc + torch.abs(s["dist"][i, j] - diff @ diff)
        total = total + acc / n ** 2
    return total / len(sentences)


def depth_loss_loop(W: torch.Tensor, sentences) -> torch.Tensor:
    """mean over sentences of (1/n) sum_i |depth(i) - ||W h_i||^2|."""
    total = 0.0
    for s in sentences:
        n = len(s["heads"])
        acc = 0.0
        for i in range(n):
            z = W @ s["H"][i]
            acc = acc + torch.abs(s["depth"][i] - z @ z)
        total = total + acc / n
    return total / len(sentences)


def angular_loss_loop(W: torch.Tensor, sentences) -> torch.Tensor:
    """MSE between clamp(1 - cos(e_a, e_b), 0, 2) and [type_a != type_b] over edge pairs."""
    edges, types = [], []
    for s in sentences:
        for dep, head in enumerate(s["heads"].tolist()):
            if head >= 0:
                edges.append(W @ s["H"][head] - W @ s["H"][dep])
                types.append(int(s["rels"][dep]))
    acc = 0.0
    for a in range(len(edges)):
        for b in range(len(edges)):
            cos = torch.nn.functional.cosine_similarity(edges[a], edges[b], dim=0, eps=1e-12)
            c = torch.clamp(1 - cos, 0.0, 2.0)
            acc = acc + (c - float(types[a] != types[b])) ** 2
    return acc / len(edges) ** 2


def root_loss_loop(W: torch.Tensor, root: torch.Tensor, sentences) -> torch.Tensor:
    """MSE between the projected root word and the root point."""
    acc, n = 0.0, 0
    for s in sentences:
        for i, head in enumerate(s["heads"].tolist()):
            if head < 0:
                acc = acc + ((W @ s["H"][i] - root) ** 2).mean()
                n += 1
    return acc / n


def _pdist_pairs(Z: torch.Tensor) -> torch.Tensor:
    """Squared distances (n, n) of the rows of Z, one pair i < j at a time (as train.py)."""
    n = len(Z)
    D = torch.zeros((n, n), dtype=Z.dtype)
    for i in range(n):
        for j in range(i + 1, n):
            d = (Z[i] - Z[j]).square().sum()
            D[i, j] = d
            D[j, i] = d
    return D


def polar_step_reference(W: torch.Tensor, root: torch.Tensor, sentences, *, lam: float,
                         beta: float) -> torch.Tensor:
    """The polar loss of one step over ``sentences``, as PolarProbe's train.py computes it.

    W : (k, d) map; root : (k,) root point. Returns a scalar tensor.
    """
    projected = [s["H"] @ W.T for s in sentences]  # each word projected once
    l1 = torch.nn.L1Loss()
    dist = sum(l1(_pdist_pairs(Z).flatten(), s["dist"].flatten().to(Z.dtype))
               for Z, s in zip(projected, sentences)) / len(sentences)
    edges, rels, roots = [], [], []
    for Z, s in zip(projected, sentences):
        for dep, head in enumerate(s["heads"].tolist()):
            if head >= 0:
                edges.append(Z[head] - Z[dep])
                rels.append(int(s["rels"][dep]))
            else:
                roots.append(Z[dep])
    rel = torch.tensor(rels)
    order = torch.argsort(rel)
    rel, E = rel[order], torch.stack(edges)[order]
    U = torch.nn.functional.normalize(E, p=2, dim=1)
    C = torch.clamp(1 - torch.mm(U, U.t()), min=0, max=2)
    gold = torch.ones_like(C)
    for r in torch.unique(rel):
        block = torch.where(rel == r)[0]
        gold[block[:, None], block] = 0
    ang = torch.nn.functional.mse_loss(C, gold)
    R = torch.stack(roots)
    root_term = torch.nn.functional.mse_loss(R, root.expand_as(R))
    return dist + beta * root_term + lam * ang


def distance_loss_batched(W: torch.Tensor, H: torch.Tensor, dist: torch.Tensor,
                          lengths: torch.Tensor) -> torch.Tensor:
    """The distance loss as Hewitt and Manning's batched code computes it.

    H : (B, L, d) padded word vectors; dist : (B, L, L) gold distances, -1 at padding;
    lengths : (B,). Returns a scalar tensor.
    """
    Z = torch.matmul(H, W.T)
    L = Z.shape[1]
    Zi = Z.unsqueeze(2).expand(-1, -1, L, -1)
    pred = (Zi - Zi.transpose(1, 2)).pow(2).sum(-1)
    keep = (dist != -1).to(Z.dtype)
    per_sentence = (pred * keep - dist * keep).abs().sum((1, 2)) / lengths.pow(2).to(Z.dtype)
    return per_sentence.sum() / (lengths != 0).sum().to(Z.dtype)
