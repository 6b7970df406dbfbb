"""Training loop, checkpoints and resumption.

A checkpoint is one safetensors file: the model's tensors under ``model.<name>``, AdamW's
moments under ``optim.<i>.<key>``, and JSON metadata (the :class:`JEPAConfig`, the step, the
optimiser's hyperparameters). Loading uses ``safetensors`` only, so a checkpoint can never run
code. Every random draw of step ``s`` (the batch, the SIGReg directions) is a function of
``(seed, s)`` alone, so training resumed from a checkpoint takes exactly the steps the
uninterrupted run would have and ends with the same weights.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from geoprobe import threads as thread_policy
from geoprobe.device import resolve_device
from geoprobe.errors import FormatError, GeoprobeError
from geoprobe.io import read_tensor_checkpoint
from geoprobe.progress import progress
from geoprobe.provenance import atomic_path
from geoprobe.stats import preserves_torch_rng

from .model import JEPA, JEPAConfig, WorldModel
from .worlds import open_dataset

CHECKPOINT = "checkpoint.safetensors"
LOG = "log.jsonl"
#: folder of a run's snapshots, ``step_NNNNNN.safetensors`` (``train(save_every=N)``)
SNAPSHOTS = "checkpoints"
#: config keys that may change when a run is resumed (extending training is allowed)
RESUMABLE_CHANGES = {"steps"}


def step_rngs(seed: int, step: int) -> tuple[np.random.Generator, torch.Generator]:
    """The numpy (batch) and torch (SIGReg directions) generators of one training step."""
    return (np.random.default_rng([seed, step]),
            torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, 1])
                                              .generate_state(1)[0])))


def sample_windows(data: dict, n_train: int, window: int, batch: int,
                   rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random sub-trajectories of the first ``n_train`` episodes.

    Returns frames (batch, window, H, W, 3) uint8 and actions (batch, window, A) float32.
    """
    steps = data["frames"].shape[1]
    ep = rng.integers(0, n_train, batch)
    t = rng.integers(0, steps - window + 1, batch)[:, None] + np.arange(window)
    frames = data["frames"][ep[:, None], t]
    actions = data["actions"][ep[:, None], t]
    return torch.from_numpy(np.ascontiguousarray(frames)), torch.from_numpy(actions.copy())


def learning_rate(cfg: JEPAConfig, step: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 10 % of ``lr``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return cfg.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(frac, 1.0))))


def make_optimizer(net: JEPA, cfg: JEPAConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


# -- checkpoints -----------------------------------------------------------------------------

def save_checkpoint(path, net: JEPA, opt: torch.optim.Optimizer | None, step: int) -> Path:
    """Write model (and optimiser) state with the config, atomically."""
    path = Path(path)
    # .cpu(): safetensors writes host memory (a no-op for a model trained on the CPU)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    groups = []
    if opt is not None:
        sd = opt.state_dict()
        for i, state in sd["state"].items():
            for key, val in state.items():
                tensors[f"optim.{i}.{key}"] = torch.as_tensor(val).cpu().contiguous()
        groups = sd["param_groups"]
    meta = {"config": json.dumps(net.cfg.to_dict()), "step": str(step),
            "param_groups": json.dumps(groups), "format": "geoprobe-jepa/1"}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_checkpoint(path) -> tuple[JEPAConfig, int, dict, dict, list]:
    """(config, step, model state, optimiser state by param index, param groups)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise FormatError(f"{path}: no such checkpoint; train one with `geoprobe jepa train`")
    meta, tensors = read_tensor_checkpoint(path, fmt="geoprobe-jepa/1", what="JEPA")
    cfg = JEPAConfig.from_dict(json.loads(meta["config"]))
    model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    optim: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, key = k.split(".", 2)
            optim.setdefault(int(i), {})[key] = v
    return cfg, int(meta["step"]), model, optim, json.loads(meta["param_groups"])


def load_model(path) -> tuple[JEPA, int]:
    """The JEPA stored at ``path`` (a checkpoint file or a run directory) and its step."""
    cfg, step, model, _, _ = read_checkpoint(path)
    net = JEPA(cfg)
    net.load_state_dict(model)
    return net, step


def load_world_model(path) -> WorldModel:
    """A :class:`WorldModel` (eval mode, numpy interface) from a checkpoint."""
    return WorldModel(load_model(path)[0])


# -- training --------------------------------------------------------------------------------

@preserves_torch_rng
def train(cfg: JEPAConfig, out_dir, *, resume: bool = True, checkpoint_every: int = 250,
          stop_after: int | None = None, show_progress: bool = True,
          threads: int | str | None = None, device="cpu",
          save_every: int | None = None) -> Path:
    """Train a JEPA on ``cfg.data``; write ``checkpoint.safetensors`` and ``log.jsonl``.

    resume : continue from ``out_dir``'s checkpoint when there is one (its config must match
        ``cfg`` except for ``steps``).
    stop_after : stop after this global step (simulates an interruption; for tests).
    threads : BLAS and torch threads for the run (a count or "auto"); None follows
        :func:`geoprobe.threads.policy`. The caller's settings are restored on return.
    device : where to train: "cpu" (default), "cuda", "cuda:N", "mps" or "auto" (see
        :mod:`geoprobe.device`). A run option, not part of :class:`JEPAConfig`: the
        checkpoint's config stays what defines the model, and a run may resume on another
        device. The weights are initialised and every step's batch and SIGReg directions
        are drawn on the CPU, so a seed gives the same draws on every device (not the same
        weights: GPU kernels round differently). Checkpoints are always saved from the CPU.
    save_every : also keep the model (without the optimiser) at step 0 and every
        ``save_every`` steps, as ``checkpoints/step_NNNNNN.safetensors`` in ``out_dir``: the
        training dynamics that ``geoprobe sweep`` probes (docs/sweeps.md). A snapshot is a
        checkpoint file; step 0 is the untrained model.
    Returns the checkpoint path.
    """
    if save_every is not None and (isinstance(save_every, bool) or save_every < 1):
        raise GeoprobeError(f"save_every {save_every!r}: expected a positive number of steps")
    device = resolve_device(device)
    with thread_policy.policy(threads):
        return _train(cfg, out_dir, resume, checkpoint_every, stop_after, show_progress,
                      device, save_every)


def snapshot_path(out_dir, step: int) -> Path:
    """Where ``train(save_every=...)`` keeps the model at ``step``."""
    return Path(out_dir) / SNAPSHOTS / f"step_{step:06d}.safetensors"


def _train(cfg, out_dir, resume, checkpoint_every, stop_after, show_progress, device,
           save_every=None) -> Path:
    """The body of :func:`train`, under its thread policy."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = open_dataset(cfg.data)
    meta = data["meta"]
    # The dataset decides the world, image size and action width (the caller's cfg is
    # left untouched).
    cfg = replace(cfg, world=meta["world"], image_size=meta["size"],
                  action_dim=data["actions"].shape[-1],
                  colours=meta.get("colours", "fixed"))  # datasets before the option: red
    n_eps, n_steps = data["frames"].shape[:2]
    n_train = n_eps - cfg.val_episodes
    window = cfg.history + cfg.n_pred
    if n_train < 1 or n_steps < window:
        raise GeoprobeError(f"{cfg.data}: {n_eps} episodes of {n_steps} steps cannot give "
                            f"training windows of {window} frames with {cfg.val_episodes} "
                            f"episodes held out")
    torch.manual_seed(cfg.seed)
    net = JEPA(cfg).to(device)  # initialised on the CPU under the seed, then moved
    opt = make_optimizer(net, cfg)
    ckpt = out / CHECKPOINT
    start = 0
    if resume and ckpt.exists():
        start = _restore(ckpt, cfg, net, opt)
    log_path = out / LOG
    _truncate_log(log_path, start)
    net.train()
    t0 = time.perf_counter()
    last = min(cfg.steps, stop_after) if stop_after is not None else cfg.steps
    bar = progress(range(start, last), desc=f"train lam={cfg.lam:g}", unit="step",
                   enable=show_progress, initial=start, total=last)
    if save_every and start == 0:
        save_checkpoint(snapshot_path(out, 0), net, None, 0)
    with open(log_path, "a") as log:
        for step in bar:
            rng, gen = step_rngs(cfg.seed, step)
            frames, actions = sample_windows(data, n_train, window, cfg.batch, rng)
            for g in opt.param_groups:
                g["lr"] = learning_rate(cfg, step)
            losses = net.losses(frames.to(device), actions.to(device), gen)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            if step % 10 == 0 or step == last - 1:
                rec = {k: float(v.detach()) for k, v in losses.items()}
                rec.update(step=step, seconds=time.perf_counter() - t0)
                log.write(json.dumps(rec) + "\n")
                log.flush()
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(pred=f"{rec['pred']:.4f}", sig=f"{rec['sigreg']:.3f}")
            if save_every and (step + 1) % save_every == 0:
                save_checkpoint(snapshot_path(out, step + 1), net, None, step + 1)
            if (step + 1) % checkpoint_every == 0 and step + 1 < last:
                save_checkpoint(ckpt, net, opt, step + 1)
    save_checkpoint(ckpt, net, opt, last)
    return ckpt


def _restore(ckpt: Path, cfg: JEPAConfig, net: JEPA, opt: torch.optim.Optimizer) -> int:
    saved, step, model, optim, groups = read_checkpoint(ckpt)
    a, b = saved.to_dict(), cfg.to_dict()
    diff = sorted(k for k in a if a[k] != b[k] and k not in RESUMABLE_CHANGES)
    if diff:
        raise GeoprobeError(f"{ckpt}: cannot resume, config differs in {diff} "
                            f"(checkpoint {[a[k] for k in diff]} vs now {[b[k] for k in diff]});"
                            f" use another output directory or --no-resume")
    net.load_state_dict(model)
    opt.load_state_dict({"state": optim, "param_groups": groups})
    return step


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (left by an interrupted run) so the log has no repeats."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line)["step"] < step]
    path.write_text("".join(line + "\n" for line in keep))
