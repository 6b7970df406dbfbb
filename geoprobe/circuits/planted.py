"""A hand-built model whose ``close-last`` circuit is known: the planted truth for pruning.

One layer, no norm, d_model 32, d_mlp 16. The token embedding writes ``(`` onto residual
channel 3 and ``[`` onto channel 7; MLP neuron 5 fires (``relu(2 x_3 - 1)``) on ``(`` and
writes channel 20, neuron 9 fires on ``[`` and writes channel 21; the unembedding reads
``)`` from channel 20 and ``]`` from channel 21 (gain 10). Everything else is noise that
the answer never reads: random embeddings on channels 10-19, the other neurons reading them
and writing channels 24-31, and attention with zero weights (its output is 0). So the
smallest circuit for ``close-last`` at a target loss of 0.01 nats is exactly
:data:`PLANTED_CIRCUIT`: four nodes. (At a looser target, 0.15, two nodes suffice: with
neuron 9 mean-ablated, ``]`` keeps half its logit, 5, which alone gives a loss of 0.04.)
"""

from __future__ import annotations

import torch

from .model import CircuitConfig, CircuitTransformer
from .tasks import TOKEN

#: (group, index) of every node of the planted circuit
PLANTED_CIRCUIT = (("embed", 3), ("embed", 7), ("mlp0", 5), ("mlp0", 9))


@torch.no_grad()
def planted_model(seed: int = 0, gain: float = 10.0) -> CircuitTransformer:
    """The hand-built model (eval mode); ``seed`` draws its noise."""
    gen = torch.Generator().manual_seed(seed)
    cfg = CircuitConfig(d_model=32, n_heads=2, d_mlp=16, n_layers=1, norm="none")
    net = CircuitTransformer(cfg)
    for p in net.parameters():
        p.zero_()
    noise = slice(10, 20)
    net.tok.weight[:, noise] = torch.randn(cfg.vocab, 10, generator=gen)
    net.pos[:, noise] = torch.randn(cfg.max_len, 10, generator=gen)
    net.tok.weight[TOKEN["("], 3] = 1.0
    net.tok.weight[TOKEN["["], 7] = 1.0
    blk = net.blocks[0]
    for neuron, channel, out in ((5, 3, 20), (9, 7, 21)):
        blk.mlp_in.weight[neuron, channel] = 2.0
        blk.mlp_in.bias[neuron] = -1.0
        blk.mlp_out.weight[out, neuron] = 1.0
    others = [i for i in range(cfg.d_mlp) if i not in (5, 9)]
    blk.mlp_in.weight[others, noise] = torch.randn(len(others), 10, generator=gen)
    blk.mlp_out.weight[24:32, others] = torch.randn(8, len(others), generator=gen)
    net.unembed.weight[TOKEN[")"], 20] = gain
    net.unembed.weight[TOKEN["]"], 21] = gain
    return net.eval()
