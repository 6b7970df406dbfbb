"""Dense and weight-sparse training of a :class:`~.model.CircuitTransformer`, and checkpoints.

Weight sparsity follows Gao et al. (2025): after every AdamW step, every weight matrix
(every parameter with two or more dimensions: embeddings, attention, MLP, unembedding)
keeps only its ``ceil(f * size)`` largest-magnitude entries and the rest are set to zero.
The kept fraction f is annealed linearly from 1 (dense) to ``density`` over the first
``anneal`` share of the steps and held there afterwards. Zeroed weights may grow back at a
later step if their gradient makes them large (the paper's top-k works the same way).
Simplifications: biases and LayerNorm gains stay dense, and the activations are not
sparsified (the paper also uses AbsTopK activations).

The model learns a mixture of tasks (:mod:`.tasks`) with the cross-entropy of the answer
token at the last position. A checkpoint is one safetensors file with the config and the
training record as metadata; loading reads tensors only, so a checkpoint never runs code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from geoprobe.io import read_tensor_checkpoint
from geoprobe.threads import follows_policy
from geoprobe.progress import progress
from geoprobe.provenance import atomic_path
from geoprobe.stats import preserves_torch_rng

from .model import CircuitConfig, CircuitTransformer
from .tasks import make_task

FORMAT = "geoprobe-circuits/1"


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    tasks : task names mixed in equal shares in every batch. length : sequence length.
    steps, batch, lr, weight_decay : AdamW training. density : fraction of each weight
    matrix kept at the end (1.0 = dense). anneal : share of the steps over which the kept
    fraction falls from 1 to ``density``. seed : initialisation and data.
    """

    tasks: tuple[str, ...] = ("quote", "bracket")
    length: int = 12
    steps: int = 1500
    batch: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.01
    density: float = 1.0
    anneal: float = 0.5
    seed: int = 0
    model: CircuitConfig = field(default_factory=CircuitConfig)


def kept_fraction(step: int, cfg: TrainConfig) -> float:
    """The fraction of each matrix kept after optimiser step ``step`` (0-based)."""
    ramp = max(1, math.ceil(cfg.anneal * cfg.steps))
    t = min(1.0, (step + 1) / ramp)
    return 1.0 - t * (1.0 - cfg.density)


def sparse_parameters(net: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weight matrices that weight sparsity applies to (every parameter of 2+ dims)."""
    return [p for p in net.parameters() if p.ndim >= 2]


@torch.no_grad()
def keep_top_magnitude(params, fraction: float) -> None:
    """Zero all but the ``ceil(fraction * size)`` largest-|w| entries of each tensor, in place."""
    if fraction >= 1.0:
        return
    for p in params:
        k = max(1, math.ceil(fraction * p.numel()))
        flat = p.view(-1)
        keep = torch.topk(flat.abs(), k, sorted=False).indices
        mask = torch.zeros_like(flat, dtype=torch.bool)
        mask[keep] = True
        flat[~mask] = 0.0


def batch_loss(net: CircuitTransformer, tokens: torch.Tensor, targets: torch.Tensor,
               node_fn=None, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of ``targets`` (n,) at the last position of ``tokens`` (n, T)."""
    logits = net(tokens, node_fn)[:, -1]
    return torch.nn.functional.cross_entropy(logits, targets, reduction=reduction)


def task_batch(tasks, n: int, length: int, seed) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences split evenly over ``tasks``, drawn with ``seed``: tokens, targets."""
    share = -(-n // len(tasks))
    parts = [make_task(t, share, length, [*np.atleast_1d(seed), i])
             for i, t in enumerate(tasks)]
    tokens = np.concatenate([p[0] for p in parts])[:n]
    targets = np.concatenate([p[1] for p in parts])[:n]
    return torch.from_numpy(tokens), torch.from_numpy(targets)


@follows_policy
@preserves_torch_rng
def train(cfg: TrainConfig, *, show_progress: bool = True) -> tuple[CircuitTransformer, dict]:
    """Train a model; returns it (eval mode) and a record: the final kept fraction, the loss
    of each task on held-out sequences, and the training loss every 100 steps."""
    torch.manual_seed(cfg.seed)
    net = CircuitTransformer(cfg.model)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    matrices = sparse_parameters(net)
    curve = []
    # seed streams: [seed, 0, step] training batches, [seed, 1] held-out loss, [seed, 2] the
    # generator's export, so none of them reuses another's sequences
    for step in progress(range(cfg.steps), desc=f"train density {cfg.density:g}",
                         unit="step", enable=show_progress):
        tokens, targets = task_batch(cfg.tasks, cfg.batch, cfg.length, [cfg.seed, 0, step])
        loss = batch_loss(net, tokens, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        keep_top_magnitude(matrices, kept_fraction(step, cfg))
        if step % 100 == 0 or step == cfg.steps - 1:
            curve.append([step, float(loss.detach())])
    net.eval()
    record = {"train_curve": curve, "density": weight_density(net),
              "task_loss": {t: evaluate_loss(net, t, cfg.length, seed=[cfg.seed, 1])
                            for t in cfg.tasks}}
    return net, record


def weight_density(net: torch.nn.Module) -> float:
    """Fraction of non-zero entries over all weight matrices of ``net``."""
    mats = sparse_parameters(net)
    return float(sum(int((p != 0).sum()) for p in mats) / sum(p.numel() for p in mats))


@torch.no_grad()
def evaluate_loss(net: CircuitTransformer, task: str, length: int, seed, n: int = 1024) -> float:
    """Mean answer cross-entropy of ``net`` on ``n`` fresh sequences of ``task``."""
    tokens, targets = task_batch([task], n, length, seed)
    return float(batch_loss(net, tokens, targets))


def save_checkpoint(path, net: CircuitTransformer, cfg: TrainConfig, record: dict) -> Path:
    """Write the model's tensors with its configs and training record, atomically."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    train_cfg = {k: v for k, v in cfg.__dict__.items() if k != "model"}
    meta = {"format": FORMAT, "model": cfg.model.to_json(), "train": json.dumps(train_cfg),
            "record": json.dumps(record)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_checkpoint(path) -> tuple[CircuitTransformer, dict]:
    """The model stored at ``path`` (eval mode) and its metadata (``train``, ``record``)."""
    meta, tensors = read_tensor_checkpoint(path, fmt=FORMAT, what="circuit")
    net = CircuitTransformer(CircuitConfig.from_json(meta["model"]))
    net.load_state_dict(tensors)
    net.eval()
    return net, {"train": json.loads(meta["train"]), "record": json.loads(meta["record"])}
