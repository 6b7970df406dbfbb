"""A tiny pre-norm transformer whose nodes can be masked: the model the circuits are cut from.

Nodes (what a circuit keeps or ablates), by group:

* ``embed``: the ``d_model`` residual channels written by the token and position embeddings;
* ``attn{l}``: the ``d_model`` attention channels of layer l (every head's value-weighted
  outputs, concatenated, before the output projection);
* ``mlp{l}``: the ``d_mlp`` neurons of layer l (after the ReLU).

The paper (Gao et al. 2025) also treats the residual read and write channels of every layer
as nodes; we keep only the embedding's (a simplification: later residual channels are sums
of the nodes above, so ablating them adds no new cut through the model).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CircuitConfig:
    """Shape of a :class:`CircuitTransformer`.

    vocab : vocabulary size. max_len : longest sequence. d_model : residual width.
    n_heads : attention heads (d_model must divide by it). d_mlp : neurons per MLP.
    n_layers : blocks. norm : ``"layer"`` (LayerNorm) or ``"none"`` (identity: the
    hand-built planted model, whose arithmetic a norm would rescale).
    """

    vocab: int = 14
    max_len: int = 16
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    n_layers: int = 2
    norm: str = "layer"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "CircuitConfig":
        return cls(**json.loads(text))


class Block(nn.Module):
    def __init__(self, cfg: CircuitConfig):
        super().__init__()
        norm = nn.LayerNorm if cfg.norm == "layer" else (lambda d: nn.Identity())
        self.n_heads = cfg.n_heads
        self.ln1, self.ln2 = norm(cfg.d_model), norm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.mlp_in = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.mlp_out = nn.Linear(cfg.d_mlp, cfg.d_model)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Causal attention channels of x (n, T, d): shape (n, T, d), heads concatenated."""
        n, T, d = x.shape
        q, k, v = self.qkv(x).view(n, T, 3, self.n_heads, d // self.n_heads).unbind(2)
        att = nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return att.transpose(1, 2).reshape(n, T, d)


class CircuitTransformer(nn.Module):
    """Token sequences (n, T) -> next-token logits (n, T, vocab), with maskable nodes."""

    def __init__(self, cfg: CircuitConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab, cfg.d_model)
        self.pos = nn.Parameter(torch.randn(cfg.max_len, cfg.d_model) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model) if cfg.norm == "layer" else nn.Identity()
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab)

    def node_groups(self) -> dict[str, int]:
        """Node group name -> number of nodes, in the order of the forward pass."""
        groups = {"embed": self.cfg.d_model}
        for i in range(self.cfg.n_layers):
            groups[f"attn{i}"] = self.cfg.d_model
            groups[f"mlp{i}"] = self.cfg.d_mlp
        return groups

    def forward(self, tokens: torch.Tensor, node_fn=None, *, residuals: bool = False):
        """Logits (n, T, vocab) of ``tokens`` (n, T) int64.

        node_fn : optional ``f(group, h) -> h`` applied to every node group's activations
            h (n, T, width) as they are made (masking, ablation, recording).
        residuals : also return the residual stream after the embedding and after each
            block, a list of (n, T, d_model) tensors.
        """
        def nodes(group, h):
            return h if node_fn is None else node_fn(group, h)

        x = nodes("embed", self.tok(tokens) + self.pos[: tokens.shape[1]])
        stream = [x]
        for i, blk in enumerate(self.blocks):
            x = x + blk.out(nodes(f"attn{i}", blk.attention(blk.ln1(x))))
            x = x + blk.mlp_out(nodes(f"mlp{i}", torch.relu(blk.mlp_in(blk.ln2(x)))))
            stream.append(x)
        logits = self.unembed(self.ln_f(x))
        return (logits, stream) if residuals else logits
