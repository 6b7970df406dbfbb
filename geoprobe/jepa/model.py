"""The world model: conv encoder -> projector ending in BatchNorm -> latent z; an
action-conditioned predictor maps the last ``history`` latents and actions to the next latent.

Training objective (LeWorldModel, Maes et al. 2026, arXiv 2603.19312)::

    loss = mean ||pred(z_{t-h+1..t}, a_{t-h+1..t}) - z_{t+1}||^2 / D + lambda * SIGReg(z)

with gradients flowing through both the prediction and the target (no EMA teacher, no
stop-gradient); SIGReg is applied per time step over the batch and averaged over time steps.

Where we differ from LeWM and why: a 4-layer convolutional encoder on 64x64 frames instead of a
ViT-Tiny on 224x224 (two CPU cores, minutes of training), and an MLP predictor over a fixed
history window instead of a 6-layer causal transformer with AdaLN-zero (the windows are 3
frames long; an MLP over the concatenated window is the same function class at this size).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
from torch import nn

from geoprobe.errors import GeoprobeError
from geoprobe.sigreg import sigreg

from .worlds import world_from_meta


@dataclass
class JEPAConfig:
    """Everything that defines a training run (stored in every checkpoint).

    lam : SIGReg weight lambda (LeWM: 0.1; 0 = prediction loss only).
    dim : latent dimension D. patch : side of the first conv's kernel and stride (a patch
        embedding, as a ViT's; 4 keeps 64x64 frames affordable on a CPU). channels : conv
        widths (the first is the patch embedding, each later conv halves the side).
    hidden : projector / predictor width. history : frames the predictor sees.
    n_pred : predictions per training window (window length = history + n_pred).
    n_directions : SIGReg random directions per step.
    steps, batch, lr, weight_decay, warmup : optimisation (AdamW, linear warm-up then cosine).
    seed : seeds initialisation, batches and SIGReg directions (a pure function of seed+step,
        so a resumed run draws exactly what the uninterrupted run would have).
    data : dataset directory; val_episodes : episodes held out at the end of the dataset.
    image_size, action_dim, world, colours : set by training from the dataset (``colours``:
        how the dataset coloured its object, one of ``geoprobe.jepa.worlds.COLOUR_MODES``).
    """

    lam: float = 0.1
    dim: int = 32
    patch: int = 4
    channels: tuple[int, ...] = (32, 64, 64)
    hidden: int = 256
    history: int = 3
    n_pred: int = 1
    n_directions: int = 256
    steps: int = 2000
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-3
    warmup: int = 100
    seed: int = 0
    data: str = ""
    val_episodes: int = 32
    image_size: int = 64
    action_dim: int = 2
    world: dict = field(default_factory=dict)
    colours: str = "fixed"

    @classmethod
    def from_dict(cls, d: dict) -> "JEPAConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise GeoprobeError(f"unknown JEPA config key(s) {unknown}; known: {sorted(known)}")
        d = dict(d)
        if "channels" in d:
            d["channels"] = tuple(int(c) for c in d["channels"])
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


class Encoder(nn.Module):
    """uint8 frames (N, H, W, 3) -> features (N, hidden)."""

    def __init__(self, cfg: JEPAConfig):
        super().__init__()
        layers, c_in = [], 3
        for i, c in enumerate(cfg.channels):
            conv = (nn.Conv2d(c_in, c, cfg.patch, stride=cfg.patch) if i == 0
                    else nn.Conv2d(c_in, c, 4, stride=2, padding=1))
            layers += [conv, nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        self.conv = nn.Sequential(*layers)
        side = cfg.image_size // cfg.patch // 2 ** (len(cfg.channels) - 1)
        self.fc = nn.Linear(c_in * side * side, cfg.hidden)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        return self.fc(self.conv(x).flatten(1))


def projector(cfg: JEPAConfig) -> nn.Sequential:
    """MLP ending in BatchNorm: LeWM found a LayerNorm at the output defeats SIGReg."""
    return nn.Sequential(nn.Linear(cfg.hidden, cfg.hidden), nn.BatchNorm1d(cfg.hidden),
                         nn.ReLU(), nn.Linear(cfg.hidden, cfg.dim), nn.BatchNorm1d(cfg.dim))


class Predictor(nn.Module):
    """(z (N, history, D), actions (N, history, A)) -> next latent (N, D), as a residual on
    the last latent."""

    def __init__(self, cfg: JEPAConfig):
        super().__init__()
        d_in = cfg.history * (cfg.dim + cfg.action_dim)
        self.net = nn.Sequential(nn.Linear(d_in, 2 * cfg.hidden), nn.GELU(),
                                 nn.Linear(2 * cfg.hidden, 2 * cfg.hidden), nn.GELU(),
                                 nn.Linear(2 * cfg.hidden, cfg.dim))

    def forward(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return z[:, -1] + self.net(torch.cat([z, actions], -1).flatten(1))


class JEPA(nn.Module):
    """Encoder + projector + predictor. See the module docstring for the loss."""

    def __init__(self, cfg: JEPAConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.projector = projector(cfg)
        self.predictor = Predictor(cfg)

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (..., H, W, 3) uint8 -> z (..., D)."""
        lead = frames.shape[:-3]
        z = self.projector(self.encoder(frames.reshape(-1, *frames.shape[-3:])))
        return z.reshape(*lead, -1)

    def predict_windows(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Teacher-forced predictions of frames ``history..L-1`` of each window.

        z : (B, L, D), actions : (B, L, A) -> (B, L - history, D).
        """
        h = self.cfg.history
        preds = [self.predictor(z[:, j - h:j], actions[:, j - h:j]) for j in range(h, z.shape[1])]
        return torch.stack(preds, 1)

    def losses(self, frames: torch.Tensor, actions: torch.Tensor,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """frames (B, L, H, W, 3) uint8, actions (B, L, A) -> dict of scalar losses:
        ``pred`` (per-coordinate MSE), ``sigreg`` (0 when lam == 0: not even computed) and
        ``loss`` = pred + lam * sigreg."""
        z = self.embed(frames)
        pred = self.predict_windows(z, actions)
        l_pred = (pred - z[:, self.cfg.history:]).pow(2).mean()
        if self.cfg.lam > 0:
            l_sig = sigreg(z.transpose(0, 1), self.cfg.n_directions, generator)
        else:
            l_sig = torch.zeros((), dtype=z.dtype, device=z.device)
        return {"loss": l_pred + self.cfg.lam * l_sig, "pred": l_pred, "sigreg": l_sig}

    @torch.no_grad()
    def rollout(self, z_hist: torch.Tensor, a_hist: torch.Tensor,
                plan: torch.Tensor) -> torch.Tensor:
        """Imagine the latents after executing ``plan``.

        z_hist : (N, history, D) and a_hist : (N, history - 1, A), the context ending at the
        current frame; plan : (N, horizon, A). Returns (N, horizon, D): latents after each
        planned action.
        """
        z, a = z_hist, a_hist
        out = []
        for k in range(plan.shape[1]):
            a = torch.cat([a, plan[:, k:k + 1]], 1)[:, -self.cfg.history:]
            nxt = self.predictor(z, a)
            out.append(nxt)
            z = torch.cat([z[:, 1:], nxt[:, None]], 1)
            a = a[:, 1:]
        return torch.stack(out, 1)


class WorldModel:
    """A trained :class:`JEPA` with its world, in eval mode, behind a numpy interface.

    This is the protocol the world-model probes use (any object with these members works):
    ``world`` (a :class:`geoprobe.jepa.worlds.World`), ``image_size``, ``history``,
    ``encode(frames (n, H, W, 3) uint8) -> (n, D)``, ``predict(z (n, history, D),
    actions (n, history, A)) -> (n, D)`` and ``rollout(z_hist, a_hist, plan)``.
    """

    def __init__(self, net: JEPA, world=None):
        self.net = net.eval()
        self.cfg = net.cfg
        self.world = world if world is not None else world_from_meta(net.cfg.world)
        self.image_size = net.cfg.image_size
        self.history = net.cfg.history

    @torch.no_grad()
    def encode(self, frames: np.ndarray, batch: int = 512) -> np.ndarray:
        frames = np.asarray(frames)
        out = [self.net.embed(torch.from_numpy(np.array(frames[i:i + batch])))
               for i in range(0, len(frames), batch)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.cfg.dim), np.float32)

    @torch.no_grad()
    def predict(self, z: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return self.net.predictor(torch.as_tensor(z, dtype=torch.float32),
                                  torch.as_tensor(actions, dtype=torch.float32)).numpy()

    def rollout(self, z_hist, a_hist, plan) -> torch.Tensor:
        return self.net.rollout(torch.as_tensor(z_hist, dtype=torch.float32),
                                torch.as_tensor(a_hist, dtype=torch.float32),
                                torch.as_tensor(plan, dtype=torch.float32))
