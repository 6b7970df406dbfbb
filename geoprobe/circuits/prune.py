"""Find the smallest circuit that does a task: learned node masks, then a size search.

Method (after Gao et al. 2025, simplified where said):

1. **Mean ablation.** A pruned node's activation is replaced by its mean over the task's
   pruning sequences at the same position (the paper's choice; zero ablation would push
   the model off its input distribution).
2. **Learned masks.** Every node has a logit tau (initial ``init``). The forward pass keeps
   the node when tau > 0 (``h -> m h + (1 - m) mean`` with m the Heaviside step of tau); the
   backward pass uses the gradient of ``sigmoid(tau)`` instead (a straight-through sigmoid
   surrogate). The objective is the task loss plus ``penalty`` times the sum of
   ``sigmoid(tau)`` over nodes, minimised with Adam for ``steps`` steps.
3. **Size search.** The paper sweeps the penalty until the kept set meets the target loss;
   we instead rank nodes by their learned tau and bisect for the smallest k whose top-k
   nodes alone reach ``target_loss`` on the pruning sequences (the loss need not fall
   monotonically with k; the bisection returns a k that meets the target, checked).

Circuit size is the number of kept nodes (the paper reports edges; :mod:`.graph` counts
the weights between kept nodes). Sufficiency is the loss of the circuit alone (all other
nodes mean-ablated), necessity the loss of the model with only the circuit mean-ablated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .model import CircuitTransformer
from .train import batch_loss


@torch.no_grad()
def node_means(net: CircuitTransformer, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean activation of every node at every position over ``tokens`` (n, T):
    group -> tensor (T, width)."""
    means = {}

    def record(group, h):
        means[group] = h.mean(0)
        return h

    net(tokens, record)
    return means


def split_keep(keep: np.ndarray, net: CircuitTransformer) -> dict[str, torch.Tensor]:
    """A flat 0/1 vector over all nodes (shape (n_nodes,)) as group -> float tensor (width,)."""
    out, start = {}, 0
    for group, width in net.node_groups().items():
        out[group] = torch.as_tensor(np.asarray(keep[start:start + width]), dtype=torch.float32)
        start += width
    return out


def ablation(keep: dict[str, torch.Tensor], means: dict[str, torch.Tensor]):
    """A ``node_fn`` that mean-ablates every node whose ``keep`` value is 0 (or mixes by it)."""
    def node_fn(group, h):
        m = keep[group]
        return m * h + (1 - m) * means[group][: h.shape[1]]
    return node_fn


@torch.no_grad()
def circuit_losses(net: CircuitTransformer, tokens, targets, keep: np.ndarray,
                   means: dict[str, torch.Tensor]) -> np.ndarray:
    """Per-sequence answer loss (n,) with every node outside ``keep`` (n_nodes,) ablated."""
    fn = ablation(split_keep(keep, net), means)
    return batch_loss(net, tokens, targets, fn, reduction="none").numpy().astype(np.float64)


@dataclass
class CircuitPruner:
    """Learned-mask pruning to the smallest circuit that meets ``target_loss``.

    Parameters: target_loss (nats, mean answer cross-entropy), penalty (per node), steps,
    lr (Adam on the mask logits), init (initial logit), seed.

    Learned attributes (after :meth:`fit`): ``scores_`` (n_nodes,) the mask logits tau;
    ``order_`` node indices by decreasing tau; ``keep_`` (n_nodes,) bool, the circuit;
    ``size_``; ``loss_`` its loss on the pruning sequences; ``reached_`` whether it meets
    the target; ``trace_`` (m, 2) array of (k, loss) pairs the size search evaluated.
    """

    target_loss: float = 0.15
    penalty: float = 1e-3
    steps: int = 300
    lr: float = 0.05
    init: float = 1.0
    seed: int = 0

    def fit(self, net: CircuitTransformer, tokens: torch.Tensor, targets: torch.Tensor,
            means: dict[str, torch.Tensor] | None = None) -> "CircuitPruner":
        """tokens (n, T) int64, targets (n,) int64 from one task; ``means`` defaults to the
        node means over ``tokens``."""
        means = node_means(net, tokens) if means is None else means
        torch.manual_seed(self.seed)
        for p in net.parameters():
            p.requires_grad_(False)
        try:
            self.scores_ = self._learn(net, tokens, targets, means)
        finally:
            for p in net.parameters():
                p.requires_grad_(True)
        self.order_ = np.argsort(-self.scores_, kind="stable")
        self._search(net, tokens, targets, means)
        return self

    def _learn(self, net, tokens, targets, means) -> np.ndarray:
        groups = net.node_groups()
        tau = {g: torch.full((w,), float(self.init), requires_grad=True)
               for g, w in groups.items()}
        opt = torch.optim.Adam(tau.values(), lr=self.lr)
        for _ in range(self.steps):
            soft = {g: torch.sigmoid(t) for g, t in tau.items()}
            # Heaviside forward, sigmoid gradient backward
            keep = {g: (tau[g] > 0).float() + s - s.detach() for g, s in soft.items()}
            loss = batch_loss(net, tokens, targets, ablation(keep, means))
            loss = loss + self.penalty * sum(s.sum() for s in soft.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
        return torch.cat([t.detach() for t in tau.values()]).numpy().astype(np.float64)

    def _loss_at(self, k, net, tokens, targets, means) -> float:
        keep = np.zeros(len(self.order_), bool)
        keep[self.order_[:k]] = True
        return float(circuit_losses(net, tokens, targets, keep, means).mean())

    def _search(self, net, tokens, targets, means) -> None:
        n = len(self.order_)
        trace = {n: self._loss_at(n, net, tokens, targets, means)}
        lo, hi = 0, n  # invariant: the top-hi nodes meet the target (or hi = n)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            trace[mid] = self._loss_at(mid, net, tokens, targets, means)
            if trace[mid] <= self.target_loss:
                hi = mid
            else:
                lo = mid
        trace.setdefault(hi, self._loss_at(hi, net, tokens, targets, means))
        self.size_ = hi
        self.keep_ = np.zeros(n, bool)
        self.keep_[self.order_[:hi]] = True
        self.loss_ = trace[hi]
        self.reached_ = bool(self.loss_ <= self.target_loss)
        self.trace_ = np.array(sorted(trace.items()), dtype=np.float64)
