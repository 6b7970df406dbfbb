"""Weight sparsity, neuron connectivity, modularity and circuit edges of a checkpoint.

* ``zero_fraction``: share of exactly-zero entries over every weight matrix.
* Connectivity of an MLP neuron: the number of non-zero weights that read it from the
  residual stream (``mlp_in`` row) plus those that write it back (``mlp_out`` column).
* Modularity of layer l: the weight graph joins residual channel c and neuron i with weight
  ``|W_in[i, c]| + |W_out[c, i]|``; isolated nodes are dropped, the rest split into
  ``n_clusters`` groups by spectral clustering, and Newman's modularity
  ``Q = sum_ij [A_ij - k_i k_j / 2m] [c_i = c_j] / 2m`` of that split is reported (higher =
  more modular; 0 for a graph no better split than chance).
* Edges between nodes (:func:`virtual_weights`): writer node -> reader node through the
  residual stream, ``R_reader @ W_writer`` (norms ignored; attention channels read through
  their value weights only, the query/key path is left out). An edge exists where this
  product is non-zero; a circuit's edges are those between its kept nodes, writer before
  reader, plus the kept nodes' edges to the answer logits.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch

from .model import CircuitTransformer
from .train import sparse_parameters


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


def zero_fraction(net: CircuitTransformer) -> float:
    """Share of exactly-zero entries over all weight matrices of ``net``."""
    mats = sparse_parameters(net)
    return float(sum(int((p == 0).sum()) for p in mats) / sum(p.numel() for p in mats))


def neuron_degrees(net: CircuitTransformer) -> np.ndarray:
    """Non-zero in + out weights of every MLP neuron, shape (n_layers, d_mlp)."""
    return np.stack([_np((b.mlp_in.weight != 0).sum(1) + (b.mlp_out.weight != 0).sum(0))
                     for b in net.blocks])


def mlp_graph(net: CircuitTransformer, layer: int) -> np.ndarray:
    """Symmetric weight graph of layer ``layer``: (d_model + d_mlp) square, residual
    channels first, then neurons."""
    blk = net.blocks[layer]
    B = np.abs(_np(blk.mlp_in.weight)).T + np.abs(_np(blk.mlp_out.weight))  # (d, d_mlp)
    d, h = B.shape
    A = np.zeros((d + h, d + h))
    A[:d, d:], A[d:, :d] = B, B.T
    return A


def modularity(A: np.ndarray, labels: np.ndarray) -> float:
    """Newman's modularity of the partition ``labels`` (n,) of the weighted graph A (n, n)."""
    k = A.sum(1)
    two_m = k.sum()
    same = labels[:, None] == labels[None, :]
    return float(((A - np.outer(k, k) / two_m) * same).sum() / two_m)


def spectral_modularity(A: np.ndarray, n_clusters: int, seed: int) -> float:
    """Modularity of a spectral clustering of the non-isolated nodes of A (n, n); NaN when
    fewer nodes than clusters remain."""
    from sklearn.cluster import SpectralClustering

    alive = A.sum(1) > 0
    A = A[np.ix_(alive, alive)]
    if len(A) <= n_clusters:
        return float("nan")
    with warnings.catch_warnings():
        # a disconnected weight graph is the most modular case, not a failure
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        labels = SpectralClustering(n_clusters, affinity="precomputed",
                                    random_state=seed).fit_predict(A)
    return modularity(A, labels)


def shuffled_weights(net: CircuitTransformer, seed: int) -> CircuitTransformer:
    """A copy of ``net`` with every weight matrix's entries permuted at random: the same
    weights and the same sparsity, with any structure in where they sit destroyed."""
    twin = copy.deepcopy(net)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in sparse_parameters(twin):
            flat = p.view(-1)
            flat.copy_(flat[torch.randperm(flat.numel(), generator=gen)])
    return twin


def _readers_writers(net: CircuitTransformer):
    """Per node group: reading matrix (width, d_model) and writing matrix (d_model, width)."""
    d = net.cfg.d_model
    read, write = {}, {"embed": np.eye(d)}
    for i, b in enumerate(net.blocks):
        read[f"attn{i}"] = _np(b.qkv.weight[2 * d:])
        write[f"attn{i}"] = _np(b.out.weight)
        read[f"mlp{i}"] = _np(b.mlp_in.weight)
        write[f"mlp{i}"] = _np(b.mlp_out.weight)
    read["logits"] = _np(net.unembed.weight)
    return read, write


def virtual_weights(net: CircuitTransformer) -> dict[tuple[str, str], np.ndarray]:
    """(writer group, reader group) -> |R_reader @ W_writer| of shape (reader width, writer
    width), for every writer earlier in the forward pass than the reader (``logits`` is the
    last reader, one row per token)."""
    read, write = _readers_writers(net)
    order = list(net.node_groups()) + ["logits"]
    return {(w, r): np.abs(read[r] @ write[w]) for i, r in enumerate(order) if r in read
            for w in order[:i]}


def circuit_edges(net: CircuitTransformer, keep: np.ndarray, answers) -> list[tuple]:
    """Edges among the kept nodes ``keep`` (n_nodes,) bool and to the logits of ``answers``
    (token ids): a list of (writer group, writer index, reader group, reader index, |weight|)
    with non-zero weight."""
    start, kept = 0, {}
    for g, w in net.node_groups().items():
        kept[g] = np.flatnonzero(keep[start:start + w])
        start += w
    kept["logits"] = np.asarray(sorted(set(int(a) for a in answers)))
    edges = []
    for (w, r), V in virtual_weights(net).items():
        for j in kept[r]:
            for i in kept[w]:
                if V[j, i] > 0:
                    edges.append((w, int(i), r, int(j), float(V[j, i])))
    return edges
