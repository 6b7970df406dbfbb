"""The trainable linear map and the training loop of both probes."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from geoprobe.device import to_numpy
from geoprobe.syntax.corpus import Batch, Split, gather
from geoprobe.syntax.gradients import StepBatch, depth_grad, distance_grad, polar_grad, step_batch
from geoprobe.syntax.losses import depth_loss, distance_loss, polar_loss
from geoprobe.syntax.maps import FittedMap, fit_prototypes
from geoprobe.syntax.scoring import score


#: relative decrease of the selection loss that counts as progress for early stopping
LOSS_TOL = 1e-3


class LinearProbe(torch.nn.Module):
    """``z = W h`` with W of shape (k, d), plus a root point (k,) for the polar probe."""

    def __init__(self, dim: int, rank: int, generator: torch.Generator, init: float = 0.05):
        super().__init__()
        # Hewitt & Manning's uniform(-0.05, 0.05): the polar reference's 1e-5 stalls at the
        # start, since the gradient of ||Wh||^2 is proportional to W.
        self.weight = torch.nn.Parameter(
            (torch.rand(rank, dim, generator=generator) * 2 - 1) * init)
        self.root = torch.nn.Parameter(torch.zeros(rank))

    def forward(self, H: torch.Tensor) -> torch.Tensor:
        return H @ self.weight.T


@dataclass(frozen=True)
class TrainConfig:
    """What to train: the loss (``kind``), the map's rank and the optimiser's schedule.

    kind : "distance" (distance loss), "depth" (depth loss) or "polar"
        (``distance + lam * angular + beta * root``)
    rank : int, rows k of the map (k, d)
    lr : float, Adam learning rate
    epochs : int, maximum epochs; patience : int, epochs without improvement before stopping
    lam, beta : float, the polar loss's angular and root weights (unused otherwise)
    """

    kind: str
    rank: int
    lr: float
    epochs: int
    patience: int
    lam: float = 0.0
    beta: float = 0.0


@dataclass
class TrainedMap:
    """A trained map at its selected epoch.

    weight : float array (k, d); root : float array (k,), the learned root point (polar)
    epochs : epochs run; best_epoch : the selected one (0-based)
    history : the selection criterion after each epoch (selection LAS, or minus the selection
        loss)
    stopped_early : whether early stopping ended training before ``config.epochs``
    """

    weight: np.ndarray
    root: np.ndarray
    epochs: int
    best_epoch: int
    history: list[float]
    stopped_early: bool


def batch_on(batch: Batch, device) -> Batch:
    """``batch`` with its tensors on ``device`` (the same object on the CPU)."""
    if device.type == "cpu":
        return batch
    return replace(batch, **{f.name: getattr(batch, f.name).to(device) for f in fields(batch)
                             if isinstance(getattr(batch, f.name), torch.Tensor)})


def adam(params, lr: float, device) -> torch.optim.Adam:
    """torch's Adam, fused into one kernel per step where the device has one (the per-step
    cost of the unfused form was a quarter of a polar step; the update is the same)."""
    return torch.optim.Adam(params, lr=lr, fused=torch.device(device).type in ("cpu", "cuda"))


def train_step(X: torch.Tensor, model: LinearProbe, opt: torch.optim.Optimizer, sb: StepBatch,
               config: TrainConfig) -> None:
    """One optimiser step of ``config.kind``'s loss on one batch, with the hand-derived
    gradient of :mod:`geoprobe.syntax.gradients` (no autograd graph is recorded).

    X : float tensor (n_rows, d) on the model's device; sb : the batch's constant tensors.
    """
    with torch.no_grad():
        # (B*L, d); padding slots read row 0, which every loss weights by 0
        H = X.index_select(0, sb.rows)
        Z = H @ model.weight.T
        if config.kind == "polar":
            dZ, model.root.grad = polar_grad(Z, sb, model.root, lam=config.lam,
                                             beta=config.beta)
        else:
            dZ = (depth_grad if config.kind == "depth" else distance_grad)(Z, sb)
        model.weight.grad = dZ.T @ H
        opt.step()


def train_map(X: torch.Tensor, train: Split, select: Split, config: TrainConfig, *,
              seed: int, n_types: int, device=None) -> TrainedMap:
    """Train one probe map on the ``train`` sentences, selecting the epoch on ``select``.

    X : float tensor (n_rows, d), one layer's word vectors, on the CPU
    train, select : the training sentences and the selection sentences (a held-out slice of
        train by default, never the sentences the probe reports on)
    n_types : number of relation types (for the polar probe's per-epoch selection LAS)
    device : torch.device to train on (default the CPU). The map is initialised and the
        batches are shuffled by a CPU generator, so a seed gives the same start everywhere;
        the polar probe's per-epoch selection LAS is scored on the CPU.

    Selection: the epoch with the lowest selection loss ("distance", "depth", as Hewitt &
    Manning) or the highest selection LAS ("polar", as the polar reference); the kept map is
    that epoch's. The learning rate halves after every 2 epochs without a lower selection loss
    (``ReduceLROnPlateau`` with factor 0.5 and patience 1; Hewitt & Manning's code uses factor
    0.1 and patience 0). Training stops early after ``patience`` epochs without progress,
    that is without a selection loss at least ``LOSS_TOL`` (relative) below its best and, for
    the polar probe, without a higher selection LAS; else after ``config.epochs``.
    """
    kind, lam, beta = config.kind, config.lam, config.beta
    device = torch.device("cpu") if device is None else device
    gen = torch.Generator().manual_seed(seed)
    model = LinearProbe(X.shape[1], config.rank, gen).to(device)
    Xd = X.to(device)
    train_d = [step_batch(batch_on(b, device)) for b in train.batches]
    select_d = [batch_on(b, device) for b in select.batches]
    params = list(model.parameters()) if kind == "polar" else [model.weight]
    opt = adam(params, config.lr, device)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)

    def loss_of(batch):
        Z = model(gather(Xd, batch))
        if kind == "depth":
            return depth_loss(Z, batch)
        if kind == "polar":
            return polar_loss(Z, batch, model.root, lam=lam, beta=beta)
        return distance_loss(Z, batch)

    best, best_loss, best_state, best_epoch, history, waited = -np.inf, np.inf, None, -1, [], 0
    stopped = False
    for epoch in range(config.epochs):
        for j in torch.randperm(len(train_d), generator=gen).tolist():
            train_step(Xd, model, opt, train_d[j], config)
        with torch.no_grad():
            select_loss = float(np.mean([loss_of(b).item() for b in select_d]))
        if kind == "polar":
            W = model.weight.detach().cpu()
            protos = fit_prototypes(X, W, train.corpus, n_types=n_types, seed=seed)
            fitted = FittedMap(to_numpy(W).copy(), protos, to_numpy(model.root).copy())
            las = score(X, fitted, select, n_types=n_types, spearman=False).ours.las
            crit = las[:, 0].sum() / max(las[:, 1].sum(), 1)
        else:
            crit = -select_loss
        history.append(float(crit))
        sched.step(select_loss)
        checkpoint = crit > best + 1e-6
        if checkpoint:
            best, best_epoch = crit, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        # Progress: a selection loss LOSS_TOL below the best so far, or (polar) a better LAS,
        # which can stay flat for epochs while the distances are still being learned.
        progress = select_loss < best_loss * (1 - LOSS_TOL) or (kind == "polar" and checkpoint)
        best_loss = min(best_loss, select_loss)
        waited = 0 if progress else waited + 1
        if waited >= config.patience:
            stopped = True
            break
    model.load_state_dict(best_state)
    return TrainedMap(to_numpy(model.weight).copy(), to_numpy(model.root).copy(),
                      epoch + 1, best_epoch, history, stopped)
