"""SIGReg: the sketched isotropic-Gaussian regulariser of LeJEPA / LeWorldModel, vectorised.

Definition (Balestriero & LeCun, LeJEPA, arXiv 2511.08544)::

    SIGReg(Z) = mean over M random unit directions a of T({a^T z_n}_{n=1..N})
    T(x) = N * sum_k w_k * [ (mean_n cos(t_k x_n) - exp(-t_k^2/2))^2 + (mean_n sin(t_k x_n))^2 ]

the Epps-Pulley statistic against N(0, 1): ``t = linspace(0, 3, 17)``, ``w`` the published
trapezoid weights (``2 dt`` inside, ``dt`` at both ends, doubling the half-line integral because
the integrand is even) times ``exp(-t^2/2)``. Directions are redrawn every call. LeWM applies it
per time step over the batch and averages over time steps; an input of shape (T, N, D) does
exactly that, (N, D) is one time step.

All directions, points and time steps are evaluated in one broadcast: the cost is
O(T * N * D * M + T * N * M * 17) with no Python loop.

This module is the one definition of the Epps-Pulley test: the JEPA's training loss
(:mod:`geoprobe.jepa.model`) calls :func:`sigreg`, and the ``gaussianity`` probe streams the
same statistic over memory-mapped rows with the quadrature of :func:`ep_grid`.
"""

from __future__ import annotations

import torch

T_MAX = 3.0
N_POINTS = 17


def ep_grid(t_max: float = T_MAX, n_points: int = N_POINTS, *, dtype=torch.float32,
            device=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Epps-Pulley quadrature ``(t, phi, weights)``, each of shape (n_points,): the grid ``t``,
    the target characteristic function ``phi = exp(-t^2/2)`` and the trapezoid weights times
    ``phi``. Computed in ``dtype`` (the training loss runs in its batch's dtype; the probe
    asks for float64)."""
    t = torch.linspace(0.0, t_max, n_points, dtype=dtype, device=device)
    dt = t_max / (n_points - 1)
    w = torch.full((n_points,), 2 * dt, dtype=dtype, device=device)
    w[0] = w[-1] = dt
    phi = torch.exp(-0.5 * t * t)
    return t, phi, w * phi


def epps_pulley(x: torch.Tensor, t_max: float = T_MAX, n_points: int = N_POINTS) -> torch.Tensor:
    """Epps-Pulley statistic of each column of ``x`` against N(0, 1).

    x : (..., N, M) — N samples of M univariate projections. Returns (..., M).
    """
    t, phi, w = ep_grid(t_max, n_points, dtype=x.dtype, device=x.device)
    xt = x.unsqueeze(-1) * t  # (..., N, M, K)
    err = (torch.cos(xt).mean(-3) - phi) ** 2 + torch.sin(xt).mean(-3) ** 2
    return (err @ w) * x.shape[-2]


def random_directions(dim: int, n_directions: int, generator: torch.Generator | None = None,
                      dtype=torch.float32, device=None) -> torch.Tensor:
    """Unit vectors as the columns of a (dim, n_directions) matrix, on ``device``.

    With a ``generator`` they are drawn on the generator's device and then moved, so a CPU
    generator gives the same directions whichever device trains.
    """
    if generator is None:
        a = torch.randn(dim, n_directions, dtype=dtype, device=device)
    else:
        a = torch.randn(dim, n_directions, generator=generator, dtype=dtype,
                        device=generator.device)
        a = a if device is None else a.to(device)
    return a / a.norm(dim=0, keepdim=True)


def sigreg(z: torch.Tensor, n_directions: int = 256, generator: torch.Generator | None = None,
           directions: torch.Tensor | None = None, t_max: float = T_MAX,
           n_points: int = N_POINTS) -> torch.Tensor:
    """SIGReg of embeddings ``z`` (N, D) or (T, N, D): a scalar, averaged over directions
    (and time steps). ``directions`` (D, M) overrides the random draw (for tests)."""
    if directions is None:
        directions = random_directions(z.shape[-1], n_directions, generator, z.dtype, z.device)
    return epps_pulley(z @ directions, t_max, n_points).mean()


def sigreg_reference(z, directions) -> float:
    """The published formula written out term by term (one direction, one grid point at a
    time, float64, the published constants written as literals): the slow reference that
    tests and benchmarks hold :func:`sigreg` to.

    z : (N, D) array; directions : (D, M) array of unit columns.
    """
    import math

    import numpy as np

    z, A = np.asarray(z, np.float64), np.asarray(directions, np.float64)
    dt = 3.0 / 16
    stats = []
    for m in range(A.shape[1]):
        x = z @ A[:, m]
        total = 0.0
        for k in range(17):
            tk = k * dt
            w = (dt if k in (0, 16) else 2 * dt) * math.exp(-tk * tk / 2)
            total += w * ((np.cos(tk * x).mean() - math.exp(-tk * tk / 2)) ** 2
                          + np.sin(tk * x).mean() ** 2)
        stats.append(z.shape[0] * total)
    return float(np.mean(stats))
