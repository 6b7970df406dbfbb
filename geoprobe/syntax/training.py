"""The trainable linear map and the training loop of both probes."""

from __future__ import annotations

import numpy as np
import torch

from geoprobe.syntax.corpus import Batch, Corpus, gather
from geoprobe.syntax.losses import angular_loss, depth_loss, distance_loss, root_loss
from geoprobe.syntax.maps import FittedMap, fit_prototypes
from geoprobe.syntax.scoring import score


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


def train_map(X: torch.Tensor, train: list[Batch], dev: list[Batch], *, rank: int,
              kind: str, lam: float, beta: float, lr: float, epochs: int, patience: int,
              seed: int, n_types: int, dev_corpus: Corpus | None = None) -> dict:
    """Train one probe map. ``kind``: "distance", "depth" or "polar".

    Selection: the epoch with the lowest dev loss ("distance", "depth", as Hewitt & Manning)
    or the highest dev LAS ("polar", as the polar reference), with ReduceLROnPlateau(0.1,
    patience 0) and early stopping after ``patience`` epochs without improvement.
    Returns dict(weight (k, d), root (k,), epochs run, best epoch, history of dev scores).
    """
    gen = torch.Generator().manual_seed(seed)
    model = LinearProbe(X.shape[1], rank, gen)
    params = list(model.parameters()) if kind == "polar" else [model.weight]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)

    def loss_of(batch):
        Z = model(gather(X, batch))
        if kind == "depth":
            return depth_loss(Z, batch)
        loss = distance_loss(Z, batch)
        if kind == "polar":
            loss = loss + lam * angular_loss(Z, batch) + beta * root_loss(Z, batch, model.root)
        return loss

    best, best_state, best_epoch, history, waited = -np.inf, None, -1, [], 0
    for epoch in range(epochs):
        for j in torch.randperm(len(train), generator=gen).tolist():
            opt.zero_grad()
            loss_of(train[j]).backward()
            opt.step()
        with torch.no_grad():
            dev_loss = float(np.mean([loss_of(b).item() for b in dev]))
        if kind == "polar":
            W = model.weight.detach()
            fitted = FittedMap(W.numpy().copy(), fit_prototypes(X, W, train, n_types),
                               model.root.detach().numpy().copy())
            sc = score(X, fitted, dev_corpus, dev, n_types, spearman=False)
            crit = sc.las[:, 0].sum() / max(sc.las[:, 1].sum(), 1)
        else:
            crit = -dev_loss
        history.append(float(crit))
        sched.step(dev_loss)
        if crit > best + 1e-6:
            best, best_epoch, waited = crit, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    model.load_state_dict(best_state)
    return {"weight": model.weight.detach().numpy().copy(),
            "root": model.root.detach().numpy().copy(), "epochs": epoch + 1,
            "best_epoch": best_epoch, "history": history}
