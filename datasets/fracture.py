"""Planted unified and fractured representations of the same decodable factor.

Both kinds encode a factor ``f`` with the same within-context signal-to-noise ratio, so a
plain decodability probe scores them alike; they differ only in organisation:

- ``unified``: ``x = f a + g b + m_c + noise``, one direction ``a`` for every context;
- ``fractured``: ``x = f a_c + g b + m_c + noise``, a separate random direction ``a_c`` per
  context ``c`` (the FER picture: the same factor, rebuilt piecewise). With ``overlap`` o the
  directions share a common part, ``a_c = sqrt(1 - o) e_c + sqrt(o) e_0`` (cosine o between
  contexts): 0 is fully fractured, 1 the unified code.

:func:`planted_transfer_ratio` is the population value of the fracture probe's
``transfer_ratio`` on these sets, the truth its interval should cover.

``g`` is a second factor (for collateral damage and spill), ``m_c`` a context offset.
:func:`planted_fracture_model` gives torch models with the same contrast in their weights.
"""

from __future__ import annotations

import numpy as np

from geoprobe.embeddings import EmbeddingSet
from geoprobe.stats import preserves_torch_rng


def planted_fracture(kind: str = "unified", n_items: int = 2000, dim: int = 32,
                     n_contexts: int = 4, signal: float = 1.0, noise: float = 0.5,
                     group_size: int = 10, overlap: float = 0.0,
                     seed: int = 0) -> EmbeddingSet:
    """One-layer embedding set (n_items, dim) with columns ``factor``, ``other`` (floats),
    ``context`` (int), ``group`` (rows in groups of ``group_size``, one context per group)
    and ``factor_sign`` ("pos"/"neg", a categorical version of the factor)."""
    if kind not in ("unified", "fractured"):
        raise ValueError(f"kind must be 'unified' or 'fractured', got {kind!r}")
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap must lie in [0, 1], got {overlap!r}")
    if dim < n_contexts + 2:
        raise ValueError(f"dim={dim} must be at least n_contexts + 2 = {n_contexts + 2} "
                         "(orthogonal directions per context and for the other factor)")
    rng = np.random.default_rng(seed)
    group = np.arange(n_items) // group_size
    context = rng.integers(0, n_contexts, group.max() + 1)[group]
    f, g = rng.standard_normal(n_items), rng.standard_normal(n_items)
    basis = np.linalg.qr(rng.standard_normal((dim, n_contexts + 2)))[0].T
    b = basis[n_contexts + 1]
    # basis[n_contexts] is the shared part (unused, so overlap 0 draws exactly as before)
    a = (np.sqrt(1.0 - overlap) * basis[:n_contexts] + np.sqrt(overlap) * basis[n_contexts]
         if kind == "fractured" else np.repeat(basis[:1], n_contexts, 0))
    offsets = rng.standard_normal((n_contexts, dim)) * 0.5
    X = (signal * f[:, None] * a[context] + g[:, None] * b + offsets[context]
         + noise * rng.standard_normal((n_items, dim)))
    items = {"item_id": np.char.add("r", np.arange(n_items).astype(str)), "factor": f,
             "other": g, "context": context, "group": group,
             "factor_sign": np.where(f > 0, "pos", "neg")}
    provenance = {"model": f"generated:planted-fracture-{kind}",
                  "generator": {"name": "planted-fracture", "kind": kind, "n_items": n_items,
                                "dim": dim, "n_contexts": n_contexts, "signal": signal,
                                "noise": noise, "group_size": group_size, "overlap": overlap,
                                "seed": seed}}
    return EmbeddingSet(X.astype(np.float32)[None], items, provenance=provenance,
                        layer_names=[kind], source=f"generated:planted-fracture-{kind}")


def planted_transfer_ratio(kind: str = "unified", n_contexts: int = 4, signal: float = 1.0,
                           noise: float = 0.5, overlap: float = 0.0) -> float:
    """Population ``transfer_ratio`` of :func:`planted_fracture` (infinite data, exact probes).

    Within context c the best linear readout of f is along ``a_c`` (an eigenvector of the
    context's covariance), with correlation ``r_w = s / sqrt(s^2 + sigma^2)``. The probe scores
    context c' with the mean of the other contexts' readouts, ``u = mean_{k != c'} a_k``:
    ``u . a_c' = o`` and ``|u|^2 = (1 + (K - 2) o) / (K - 1)``, so ``r_t = s o / sqrt(s^2 o^2 +
    sigma^2 |u|^2)`` and the ratio is ``r_t / r_w`` (1 for unified sets, 0 at overlap 0).
    """
    o = 1.0 if kind == "unified" else overlap
    r_w = signal / np.sqrt(signal ** 2 + noise ** 2)
    u2 = (1 + (n_contexts - 2) * o) / (n_contexts - 1)
    r_t = signal * o / np.sqrt(signal ** 2 * o ** 2 + noise ** 2 * u2)
    return float(r_t / r_w)


@preserves_torch_rng
def planted_fracture_model(kind: str = "unified", dim: int = 16, hidden: int = 32,
                           seed: int = 0):
    """A torch model mapping inputs ``(f, g)`` (n, 2) to a representation (n, dim).

    ``unified``: two separate linear maps, ``f -> dim/2`` and ``g -> dim/2``, concatenated
    (every weight belongs to one factor's pathway, as in a sparse evolved network).
    ``fractured``: a dense MLP ``Linear(2, hidden) -> tanh -> Linear(hidden, dim)`` with
    random weights: every weight is shared by both factors.
    Returns the model (float64, ``requires_grad`` weights, no training needed).
    """
    import torch

    torch.manual_seed(seed)
    half = dim // 2

    class Unified(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.f_path = torch.nn.Linear(1, half, bias=False)
            self.g_path = torch.nn.Linear(1, dim - half, bias=False)

        def forward(self, x):
            return torch.cat([self.f_path(x[:, :1]), self.g_path(x[:, 1:2])], dim=1)

    if kind == "unified":
        model = Unified()
    elif kind == "fractured":
        model = torch.nn.Sequential(torch.nn.Linear(2, hidden, bias=False), torch.nn.Tanh(),
                                    torch.nn.Linear(hidden, dim, bias=False))
        with torch.no_grad():
            model[0].weight.mul_(0.5)
    else:
        raise ValueError(f"kind must be 'unified' or 'fractured', got {kind!r}")
    return model.double()
