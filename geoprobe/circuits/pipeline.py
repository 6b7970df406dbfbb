"""The ``circuit-transformer`` generator: train (or reuse) a dense or weight-sparse model and
export its residual stream at the answer position, with the checkpoint in the provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from geoprobe.embeddings import EmbeddingSet
from geoprobe.locks import work_dir
from geoprobe.safepath import check_name, inside

from .model import CircuitConfig
from .tasks import TASKS, VOCAB
from .train import TrainConfig, load_checkpoint, save_checkpoint, task_batch, train


def trained_model(cfg: TrainConfig, workdir, *, show_progress: bool = True) -> Path:
    """The checkpoint of ``cfg`` in ``workdir``: trained once, reused after (its file name
    is derived from the whole config)."""
    for task in cfg.tasks:
        check_name(task, what="circuit-transformer: task")
    m = cfg.model
    name = (f"{'+'.join(cfg.tasks)}-L{cfg.length}-s{cfg.steps}-b{cfg.batch}-lr{cfg.lr:g}"
            f"-wd{cfg.weight_decay:g}-dens{cfg.density:g}-ann{cfg.anneal:g}-seed{cfg.seed}"
            f"-d{m.d_model}h{m.n_heads}m{m.d_mlp}l{m.n_layers}{m.norm}.safetensors")
    path = inside(workdir, name, what="circuit-transformer: checkpoint")
    if not path.exists():
        net, record = train(cfg, show_progress=show_progress)
        save_checkpoint(path, net, cfg, record)
    return path


def circuit_transformer(tasks=("quote", "bracket"), density: float = 1.0, steps: int = 1500,
                        d_model: int = 64, n_heads: int = 4, d_mlp: int = 256,
                        n_layers: int = 2, length: int = 12, batch: int = 128,
                        lr: float = 3e-3, anneal: float = 0.5, n_items: int = 512,
                        seed: int = 0, workdir=None, show_progress: bool = True
                        ) -> EmbeddingSet:
    """Train a small dense or weight-sparse transformer on algorithmic tasks and export its
    residual stream at the answer position, checkpoint in provenance.

    ``density=1`` is dense, below 1 weight-sparse (:mod:`geoprobe.circuits.train`); the
    export holds ``n_items`` fresh sequences per task.

    Returns an :class:`EmbeddingSet` of shape (n_layers + 1, n_items * len(tasks),
    d_model): layers ``embed``, ``block0``, ...; columns ``task`` and ``answer`` (the token
    that comes next); provenance with the ``checkpoint`` path (for the ``circuit`` and
    ``weight-sparsity`` probes), the configs and the training record. The checkpoint is
    cached in ``workdir`` (a per-process scratch folder if None).
    """
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"circuit-transformer: unknown task(s) {unknown}; known: {sorted(TASKS)}")
    model = CircuitConfig(d_model=d_model, n_heads=n_heads, d_mlp=d_mlp, n_layers=n_layers,
                          max_len=max(16, length))
    cfg = TrainConfig(tasks=tasks, length=length, steps=steps, batch=batch, lr=lr,
                      density=density, anneal=anneal, seed=seed, model=model)
    workdir = Path(workdir) if workdir else work_dir("circuits")
    workdir.mkdir(parents=True, exist_ok=True)
    path = trained_model(cfg, workdir, show_progress=show_progress)
    net, meta = load_checkpoint(path)
    tokens, answers = task_batch(tasks, n_items * len(tasks), length, [seed, 2])
    with torch.no_grad():
        _, stream = net(tokens, residuals=True)
    layers = np.stack([h[:, -1].numpy() for h in stream]).astype(np.float32)
    names = ["embed"] + [f"block{i}" for i in range(n_layers)]
    items = {"task": np.repeat(np.array(tasks), n_items),
             "answer": np.array([VOCAB[a] for a in answers.numpy()])}
    provenance = {"model": "circuit-transformer", "checkpoint": str(path), "length": length,
                  "train": meta["train"], "record": meta["record"], "seed": seed}
    return EmbeddingSet(layers, items, provenance=provenance, layer_names=names,
                        source=f"circuit-transformer(density={density:g})")
