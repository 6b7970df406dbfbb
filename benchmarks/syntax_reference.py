"""The syntax probes' losses written per pair, the way the reference implementations loop.

The polar-probe reference (pjdisi/PolarProbe) and the structural-probe reference build each
sentence's loss from Python loops over word pairs and edge pairs. This module keeps that form
(our own code, same arithmetic) as the baseline that ``bench_syntax.py`` times the vectorised
losses against, and that ``tests/probes/test_syntax.py`` checks them against.

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
