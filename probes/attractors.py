"""Latent attractors: fixed points of z <- E(D(z)), their basins, contraction and memorization.

Definitions (Fumero, Moschella, Rodola & Locatello 2025, "Navigating the latent space dynamics of
neural models")
------------------------------------------------------------------------------------------
``f(z) = E(D(z))`` for an encoder E and decoder D. Starting points are iterated with
``z_{t+1} = f(z_t)`` until ``||z_{t+1} - z_t||^2 < tol * s^2`` or ``max_steps``, where ``s^2``
is the mean squared norm of the encoded data (the anchor's tolerance is absolute; ours is
relative so that one default fits any latent scale). Starts: the encoded data (every row of
the embedding set), ``n_noise`` Gaussian draws ``N(0, I)`` (the data-free start), and, for
2-D latents, a ``grid_size`` x ``grid_size`` grid over the data's bounding box (padded 50%).

Merge rule (documented, and its sensitivity reported): converged end points are linked when
their Euclidean distance is below ``merge_radius * s`` and grouped by single linkage
(connected components); an attractor is its group's mean. The anchor's notebook merges
points with cosine > 0.99, which the replication found to give 1 attractor where Euclidean
merging gave 300; we report the number of groups for radius multipliers 0.1..10 and for the
cosine rule as ``n_attractors_sensitivity``.

Per attractor z*: the basin (starts that end there), the spectral radius of the Jacobian
``J_f(z*)`` (by ``torch.func``; below 1 = locally attracting), and memorization
``mem(z*) = max_x cos(D(z*), x)`` over training examples x (max, as the replication argues;
the paper's text says min). To separate memorization from generalization we also take the
same maximum over an equally large set of held-out examples: ``memorization_gap = mean over
attractors of [max cos to train - max cos to test]`` is near 0 when attractors are prototypes
and positive when they are copies of training images.

Other outputs: steps to converge and their Pearson correlation with the start's distance to
its attractor (the paper reports ~0.99), the share of noise starts that end at an attractor
also reached from data, and the converged share.

Baselines: ``test-to-train`` (the max cosine of each held-out image to the training set: how
similar a novel real image is) and ``random-init`` (the same probe on a re-initialised copy of
the model, when its modules have ``reset_parameters``). CIs: percentile bootstrap over
attractors for attractor means, over starts for step statistics.

The iteration works for any map; :func:`iterate_map` and :func:`merge_endpoints` are public so
that a world model's predictor rolled out under a fixed action (``z <- P(z, a)``) can be
searched for fixed points the same way.
"""

from __future__ import annotations

import copy

import numpy as np
from matplotlib.ticker import MaxNLocator, NullLocator
from scipy.cluster.hierarchy import fcluster, linkage

from geoprobe.contract import Interval, OPEN_UNIT, POSITIVE, POSITIVE_INT, SequenceOf
from geoprobe.device import DEVICE_CONSTRAINT, resolve_device, to_numpy
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import ProbeInputError
from geoprobe.plotting import BASELINE_COLOR, PALETTE, new_figure, plain_log_ticks
from geoprobe.probe import Example, Metric, Probe, ProbeResult, Requirements
from geoprobe.stats import bootstrap_mean, child_seed, percentile_interval, preserves_torch_rng

SENSITIVITY = (0.1, 0.3, 1.0, 3.0, 10.0)
COSINE_RULE = 0.99


def iterate_map(f, Z0, *, tol: float, max_steps: int):
    """Iterate ``z <- f(z)`` for every row of Z0 until ``||dz||^2 < tol`` or ``max_steps``.

    f : callable on a torch tensor (m, k) -> (m, k)
    Z0 : torch tensor of shape (n, k)

    Returns (Z, steps, converged): end points (n, k), steps taken (n,), bool (n,).
    """
    import torch

    Z = Z0.clone()
    steps = torch.zeros(len(Z), dtype=torch.long, device=Z.device)
    done = torch.zeros(len(Z), dtype=torch.bool, device=Z.device)
    with torch.no_grad():
        for _ in range(max_steps):
            active = torch.nonzero(~done).squeeze(1)
            if len(active) == 0:
                break
            new = f(Z[active])
            d2 = ((new - Z[active]) ** 2).sum(1)
            Z[active] = new
            steps[active] += 1
            done[active] = d2 < tol
    return Z, to_numpy(steps), to_numpy(done)


def merge_endpoints(Z: np.ndarray, radius: float, metric: str = "euclidean") -> np.ndarray:
    """Single-linkage groups of end points Z (n, k): labels 0..g-1 of shape (n,).

    Two points are linked when their distance is below ``radius`` (``metric="cosine"``:
    cosine distance ``1 - cos``; points at the origin have no direction and form one group
    of their own).
    """
    Z = np.asarray(Z, dtype=np.float64)
    labels = np.zeros(len(Z), dtype=int)
    rows = np.arange(len(Z))
    if metric == "cosine":
        origin = np.linalg.norm(Z, axis=1) < 1e-12
        rows = np.flatnonzero(~origin)
        labels[origin] = len(rows)  # a group after every possible linkage group
    if len(rows) > 1:
        tree = linkage(Z[rows], method="single", metric=metric)
        labels[rows] = fcluster(tree, t=radius, criterion="distance") - 1
    # Relabel 0..g-1 by decreasing group size so that attractor 0 has the largest basin.
    _, labels = np.unique(labels, return_inverse=True)
    sizes = np.bincount(labels)
    rank = np.empty_like(sizes)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(len(sizes))
    return rank[labels]


def _maps(model):
    """(encode, decode) callables from a model with encode/decode, encoder/decoder, or a pair."""
    if isinstance(model, (tuple, list)) and len(model) == 2:
        return model[0], model[1]
    for enc, dec in (("encode", "decode"), ("encoder", "decoder")):
        if callable(getattr(model, enc, None)) and callable(getattr(model, dec, None)):
            return getattr(model, enc), getattr(model, dec)
    raise ProbeInputError("latent-attractors needs a model with encode()/decode() methods, "
                          "encoder/decoder modules, or an (encoder, decoder) pair; got "
                          f"{type(model).__name__}")


def _on_device(model, device):
    """``model`` (a module, or an (encoder, decoder) pair) on ``device``: itself on the CPU,
    else a moved copy (the caller's model is never moved)."""
    import torch

    if device.type == "cpu":
        return model
    if isinstance(model, (tuple, list)):
        return type(model)(_on_device(m, device) for m in model)
    return copy.deepcopy(model).to(device) if isinstance(model, torch.nn.Module) else model


@preserves_torch_rng
def _reinitialised(model, seed: int):
    """A copy of model with every submodule's ``reset_parameters`` applied, or None."""
    import torch

    twin = copy.deepcopy(model)
    parts = twin if isinstance(twin, (tuple, list)) else [twin]
    modules = [m for p in parts if isinstance(p, torch.nn.Module) for m in p.modules()
               if hasattr(m, "reset_parameters")]
    if not modules:
        return None
    torch.manual_seed(seed)
    for m in modules:
        m.reset_parameters()
    return twin


def spectral_radii(f, Z: np.ndarray, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """Spectral radius and spectral norm of the Jacobian of f at each row of Z (m, k); f runs
    on ``device``, the eigenvalues in float64 numpy."""
    import torch
    from torch.func import jacrev, vmap

    z = torch.as_tensor(np.asarray(Z), dtype=torch.float32, device=device)
    J = to_numpy(vmap(jacrev(lambda v: f(v[None])[0]))(z)).astype(np.float64)
    radius = np.abs(np.linalg.eigvals(J)).max(axis=1)
    norm = np.linalg.norm(J, ord=2, axis=(1, 2))
    return radius, norm


def predictor_map(model, action):
    """The fixed-action rollout of a world model as a map on its history window.

    model : object with ``history`` and ``predict(z (n, history, D), actions (n, history, A))
        -> (n, D)`` (numpy), the ``WorldModel`` interface of ``geoprobe.jepa``.
    action : array of shape (A,), applied at every step.

    Returns f on torch tensors (n, history * D) -> (n, history * D): the window
    ``(z_1, ..., z_h)`` becomes ``(z_2, ..., z_h, P(z_1..z_h, a))``. A fixed point of f is a
    window of equal latents z* with ``P(z*, ..., z*; a) = z*``: a state the model predicts it
    stays in under that action.
    """
    import torch

    h = int(model.history)
    a = np.asarray(action, dtype=np.float32)

    def f(window):
        z = to_numpy(window).reshape(len(window), h, -1)
        acts = np.tile(a, (len(z), h, 1))
        nxt = np.asarray(model.predict(z, acts), dtype=np.float32)
        out = np.concatenate([z[:, 1:], nxt[:, None]], axis=1).reshape(len(z), -1)
        return torch.as_tensor(out)

    return f


def finite_difference_radii(f, Z: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Spectral radius of the Jacobian of f at each row of Z (m, k) by central differences,
    for maps torch cannot differentiate (numpy models); all 2k probes of a row in one call."""
    import torch

    Z = np.asarray(Z, dtype=np.float64)
    m, k = Z.shape
    steps = eps * np.eye(k)
    probes = np.concatenate([Z[:, None] + steps, Z[:, None] - steps], axis=1)  # (m, 2k, k)
    out = to_numpy(f(torch.as_tensor(probes.reshape(-1, k), dtype=torch.float32)))
    out = out.astype(np.float64).reshape(m, 2, k, k)
    J = ((out[:, 0] - out[:, 1]) / (2 * eps)).transpose(0, 2, 1)  # J[i, j] = d f_i / d z_j
    return np.abs(np.linalg.eigvals(J)).max(axis=1)


def predictor_fixed_points(model, action, starts: np.ndarray, *, tol: float = 1e-6,
                           max_steps: int = 500, merge_radius: float = 0.05) -> dict:
    """Latent fixed points of a world model's predictor rolled out under one fixed action.

    starts : latents of shape (n, D) (each start window repeats its latent) or windows of
        shape (n, history, D), e.g. encoded frames of the training world.
    tol, merge_radius : relative to the mean squared norm / RMS norm of the starts, as in
        :class:`LatentAttractors`.

    Returns a dict: ``fixed_points`` (g, D), ``basin`` (g,), ``spectral_radius`` (g,)
    (central differences on the window map), ``labels`` (n,) (-1 = not converged),
    ``steps`` (n,), ``converged`` (n,).
    """
    import torch

    h = int(model.history)
    S = np.asarray(starts, dtype=np.float32)
    if S.ndim == 2:
        S = np.repeat(S[:, None], h, axis=1)
    if S.ndim != 3 or S.shape[1] != h:
        raise ProbeInputError(f"starts must have shape (n, D) or (n, {h}, D); got {S.shape}")
    f = predictor_map(model, action)
    W0 = torch.as_tensor(S.reshape(len(S), -1))
    scale2 = float((S[:, -1] ** 2).sum(1).mean())
    W, steps, conv = iterate_map(f, W0, tol=tol * scale2, max_steps=max_steps)
    last = to_numpy(W).reshape(len(S), h, -1)[:, -1].astype(np.float64)
    labels = np.full(len(S), -1)
    if conv.any():
        labels[conv] = merge_endpoints(last[conv], merge_radius * np.sqrt(scale2))
    g = labels.max() + 1
    windows = np.array([to_numpy(W)[labels == i].mean(0) for i in range(g)]).reshape(
        g, W.shape[1])
    return {"fixed_points": windows.reshape(g, h, S.shape[2])[:, -1],
            "basin": np.bincount(labels[labels >= 0], minlength=g),
            "spectral_radius": (finite_difference_radii(f, windows) if g else np.zeros(0)),
            "labels": labels, "steps": steps, "converged": conv}


def _max_cosine(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of A (m, d): max cosine to the rows of B (n, d) and its argmax."""
    An = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)
    Bn = B / np.maximum(np.linalg.norm(B, axis=1, keepdims=True), 1e-12)
    C = An @ Bn.T
    return C.max(1), C.argmax(1)


class LatentAttractors(Probe):
    """Fixed points of z <- E(D(z)) from data, noise and grid starts; basins, contraction,
    memorization.

    The embedding set holds the model's *inputs*, flattened (rows = examples; the last
    requested layer is used), with an optional ``split`` column (``train`` rows are the memorization reference, ``test`` rows
    the held-out comparison; without it every row is training data and the gap is NaN).

    Parameters
    ----------
    input_shape : tuple or None
        Shape of one input for the encoder (default: the model's ``input_shape`` attribute,
        else the set's ``provenance["input_shape"]``, else flat).
    tol : float
        Convergence threshold on ``||dz||^2`` relative to the mean squared latent norm.
    max_steps : int
    n_noise : int
        Gaussian starts.
    grid_size : int
        Grid starts per axis for 2-D latents.
    merge_radius : float
        Single-linkage radius relative to the RMS latent norm.
    n_boot : int
    random_init_control : bool
        Also run on a re-initialised copy of the model.
    level : float
    device : str
        Where the model's maps run: "cpu" (default), "cuda", "cuda:N", "mps" or "auto". Off
        the CPU a moved copy of the model is used; starts are drawn on the CPU and moved, so
        they are the same on every device, and end points come back in float32 for the
        float64 clustering and eigenvalues in numpy.
    """

    name = "latent-attractors"
    summary = "Fixed points of z <- E(D(z)): attractors, basins, Jacobian radius, memorization."
    memory = ("in memory: the last layer in float32 (4 n d bytes) and the trajectories it integrates")
    requires = Requirements(model=True)
    uses_twin = False
    parameter_constraints = {
        "input_shape": [SequenceOf(POSITIVE_INT, min_len=1), None], "tol": [POSITIVE],
        "max_steps": [POSITIVE_INT], "n_noise": [Interval(int, 0, None)],
        "grid_size": [Interval(int, 0, None)], "merge_radius": [POSITIVE],
        "n_boot": [POSITIVE_INT],
        "random_init_control": [bool], "level": [OPEN_UNIT], "device": [DEVICE_CONSTRAINT],
    }
    # every metric describes the map's dynamics (more attractors or more memorization is
    # neither good nor bad in itself): checks on them are two-sided
    metric_directions = {"memorization*": None, "n_attractors*": None, "n_fixed_points": None,
                         "converged_share": None, "noise_to_data_share": None,
                         "steps_to_converge": None, "steps_distance_pearson": None,
                         "spectral_radius": None, "jacobian_norm": None,
                         "fixed_point_residual": None}

    @classmethod
    def example_input(cls, rng) -> Example:
        import torch
        from torch import nn

        # a linear autoencoder whose E(D(z)) = A z + c contracts to one fixed point
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        M, _ = torch.linalg.qr(torch.randn(8, 2, generator=g))
        dec, enc = nn.Linear(2, 8), nn.Linear(8, 2)
        with torch.no_grad():
            dec.weight.copy_(M)
            enc.weight.copy_(0.6 * M.T)
        X = rng.standard_normal((2, 40, 8)).astype(np.float32)
        split = np.where(np.arange(40) < 20, "train", "test")
        return Example(EmbeddingSet(X, {"split": split}, source="example"),
                       {"n_noise": 20, "grid_size": 4, "max_steps": 100, "n_boot": 50},
                       model=(enc, dec))

    def __init__(self, input_shape=None, tol=1e-6, max_steps=500, n_noise=500, grid_size=30,
                 merge_radius=0.05, n_boot=500, random_init_control=True, level=0.95,
                 device="cpu"):
        self.input_shape = input_shape
        self.tol = tol
        self.max_steps = max_steps
        self.n_noise = n_noise
        self.grid_size = grid_size
        self.merge_radius = merge_radius
        self.n_boot = n_boot
        self.random_init_control = random_init_control
        self.level = level
        self.device = device

    def evaluate(self, ctx) -> ProbeResult:
        shape = (self.input_shape or getattr(ctx.model, "input_shape", None)
                 or ctx.embeddings.provenance.get("input_shape"))
        X = np.asarray(ctx.embeddings.layer(ctx.layers[-1], dtype=np.float32))
        if shape is not None and int(np.prod(shape)) != X.shape[1]:
            raise ProbeInputError(f"{ctx.embeddings.source}: rows have {X.shape[1]} values "
                                  f"but input_shape {tuple(shape)} needs {int(np.prod(shape))}")
        split = (np.asarray(ctx.column("split")).astype(str) if "split" in ctx.items
                 else np.full(len(X), "train"))
        train, test = X[split == "train"], X[split == "test"]
        if len(train) == 0:
            raise ProbeInputError(f"{ctx.embeddings.source}: no 'train' rows in column 'split'")
        m = min(len(train), len(test))
        ref_rng = np.random.default_rng(child_seed(ctx.rng))
        train_ref = train[np.sort(ref_rng.choice(len(train), m, replace=False))] if m else train
        test_ref = test[np.sort(ref_rng.choice(len(test), m, replace=False))] if m else test
        torch_seed = child_seed(ctx.rng)
        device = resolve_device(self.device)
        found = self._analyse(_on_device(ctx.model, device), X, shape, train, train_ref,
                              test_ref, torch_seed, ctx.rng)
        metrics = self._metrics(found, ctx.rng, {})
        if m:
            base, _ = _max_cosine(test_ref, train)
            ci = bootstrap_mean(base, n_boot=self.n_boot, level=self.level, rng=ctx.rng,
                                unit="test examples")
            metrics.append(Metric.from_interval("memorization", ci, baseline="test-to-train"))
        if self.random_init_control:
            twin = _reinitialised(ctx.model, torch_seed)
            if twin is not None:
                other = self._analyse(_on_device(twin, device), X, shape, train, train_ref,
                                      test_ref, torch_seed, ctx.rng)
                metrics += self._metrics(other, ctx.rng, {"baseline": "random-init"},
                                         headline_only=True)
        return self.result(ctx, metrics, found["arrays"], input_shape=list(shape or []),
                           latent_dim=found["k"], merge_rule=(
                               f"single linkage, Euclidean radius {self.merge_radius} x RMS "
                               "latent norm"))

    def _analyse(self, model, X, shape, train, train_ref, test_ref, torch_seed, rng) -> dict:
        import torch

        device = resolve_device(self.device)
        encode, decode = _maps(model)
        in_shape = (-1, *shape) if shape is not None else (-1, X.shape[1])

        def f(z):
            return encode(decode(z))

        with torch.no_grad():
            Zd = encode(torch.as_tensor(X, device=device).reshape(in_shape)).reshape(
                len(X), -1).float()
        k = Zd.shape[1]
        scale2 = float((Zd ** 2).sum(1).mean())
        gen = torch.Generator().manual_seed(torch_seed)
        starts = {"data": Zd, "noise": torch.randn(self.n_noise, k, generator=gen).to(device)}
        if k == 2:
            lo, hi = Zd.min(0).values, Zd.max(0).values
            pad = 0.5 * (hi - lo)
            axes = [torch.linspace(float(lo[i] - pad[i]), float(hi[i] + pad[i]), self.grid_size)
                    for i in range(2)]
            gx, gy = torch.meshgrid(axes[0], axes[1], indexing="xy")
            starts["grid"] = torch.stack([gx.ravel(), gy.ravel()], 1).to(device)
        kinds = np.concatenate([np.full(len(v), name) for name, v in starts.items()])
        Z0 = torch.cat(list(starts.values()))
        Z, steps, conv = iterate_map(f, Z0, tol=self.tol * scale2, max_steps=self.max_steps)
        Zn, Z0n = to_numpy(Z).astype(np.float64), to_numpy(Z0).astype(np.float64)
        scale = np.sqrt(scale2)
        labels = np.full(len(Zn), -1)
        if conv.any():
            labels[conv] = merge_endpoints(Zn[conv], self.merge_radius * scale)
        n_groups = labels.max() + 1
        centers = np.array([Zn[labels == g].mean(0) for g in range(n_groups)]).reshape(-1, k)
        sensitivity = {f"euclidean x{c:g}": int(merge_endpoints(Zn[conv], c * self.merge_radius
                                                                * scale).max() + 1)
                       if conv.any() else 0 for c in SENSITIVITY}
        sensitivity[f"cosine > {COSINE_RULE}"] = (
            int(merge_endpoints(Zn[conv], 1 - COSINE_RULE, "cosine").max() + 1)
            if conv.any() else 0)
        radius, norm = (spectral_radii(f, centers, device) if n_groups
                        else (np.zeros(0), np.zeros(0)))
        with torch.no_grad():
            z_star = torch.as_tensor(centers, dtype=torch.float32, device=device)
            decoded = (to_numpy(decode(z_star).reshape(n_groups, -1)) if n_groups
                       else np.zeros((0, X.shape[1])))
            residual = (np.linalg.norm(to_numpy(f(z_star)) - centers, axis=1) / scale
                        if n_groups else np.zeros(0))
        mem, nearest = _max_cosine(decoded, train) if n_groups else (np.zeros(0), np.zeros(0, int))
        mem_tr, _ = _max_cosine(decoded, train_ref) if n_groups else (np.zeros(0), None)
        mem_te = (_max_cosine(decoded, test_ref)[0] if n_groups and len(test_ref)
                  else np.full(n_groups, np.nan))
        basin = {kind: np.bincount(labels[(kinds == kind) & (labels >= 0)], minlength=n_groups)
                 for kind in starts}
        dist = np.full(len(Zn), np.nan)
        dist[conv] = np.linalg.norm(Z0n[conv] - centers[labels[conv]], axis=1) / scale
        out = {"k": k, "kinds": kinds, "labels": labels, "steps": steps, "conv": conv,
               "dist": dist, "radius": radius, "norm": norm, "mem": mem, "mem_tr": mem_tr,
               "mem_te": mem_te, "residual": residual, "basin": basin,
               "sensitivity": sensitivity}
        out["arrays"] = self._figure_arrays(out, decoded, train, nearest, shape, starts, Zd,
                                            centers, rng)
        return out

    def _figure_arrays(self, out, decoded, train, nearest, shape, starts, Zd, centers, rng):
        order = np.argsort(-sum(out["basin"].values()), kind="stable")[:8]
        side = shape[-2:] if shape is not None and len(shape) >= 2 else (1, decoded.shape[1])
        arrays = {
            "attractor_images": decoded[order].reshape(len(order), *side),
            "nearest_train_images": train[nearest[order]].reshape(len(order), *side),
            "attractor_mem": out["mem"][order],
            "basin_total": np.sort(sum(out["basin"].values()))[::-1][:100].astype(float),
            "spectral_radius": out["radius"],
            "sensitivity_counts": np.array(list(out["sensitivity"].values()), float),
        }
        ok = np.flatnonzero(out["conv"] & (out["kinds"] == "data"))
        pick = np.sort(rng.choice(ok, min(len(ok), 400), replace=False)) if len(ok) else ok
        arrays["steps_sample"] = out["steps"][pick].astype(float)
        arrays["dist_sample"] = out["dist"][pick]
        if out["k"] == 2 and "grid" in starts:
            g = self.grid_size
            arrays["grid_labels"] = out["labels"][out["kinds"] == "grid"].reshape(g, g)
            grid = to_numpy(starts["grid"])
            arrays["grid_extent"] = np.array([grid[:, 0].min(), grid[:, 0].max(),
                                              grid[:, 1].min(), grid[:, 1].max()])
            arrays["attractor_xy"] = centers
            sub = rng.choice(len(Zd), min(len(Zd), 300), replace=False)
            arrays["data_xy"] = to_numpy(Zd)[np.sort(sub)]
        return arrays

    def _metrics(self, out, rng, extra, headline_only=False) -> list[Metric]:
        lab = dict(extra)
        n_groups = len(out["radius"])
        stable = out["radius"] < 1
        metrics = [Metric("n_attractors", int(stable.sum()), n=n_groups, unit="fixed points",
                          labels=dict(lab)),
                   Metric("n_fixed_points", n_groups, n=n_groups, unit="fixed points",
                          labels=dict(lab))]
        if n_groups:
            for name, values in (("memorization", out["mem"]),
                                 ("memorization_gap", out["mem_tr"] - out["mem_te"])):
                if np.isfinite(values).all():
                    ci = bootstrap_mean(values, n_boot=self.n_boot, level=self.level, rng=rng,
                                        unit="attractors")
                    metrics.append(Metric.from_interval(name, ci, **lab))
        if headline_only:
            return metrics
        conv, kinds = out["conv"], out["kinds"]
        for kind, counts in out["basin"].items():
            metrics.append(Metric("n_attractors_reached", int((counts > 0).sum()),
                                  n=int((kinds == kind).sum()), unit="starts",
                                  labels={**lab, "start": kind}))
            ci = bootstrap_mean(conv[kinds == kind].astype(float), n_boot=self.n_boot,
                                level=self.level, rng=rng, unit="starts")
            metrics.append(Metric.from_interval("converged_share", ci, start=kind, **lab))
        if n_groups:
            for name, values in (("spectral_radius", out["radius"]),
                                 ("jacobian_norm", out["norm"]),
                                 ("fixed_point_residual", out["residual"])):
                ci = bootstrap_mean(values, n_boot=self.n_boot, level=self.level, rng=rng,
                                    unit="attractors")
                metrics.append(Metric.from_interval(name, ci, **lab))
            data_att = out["basin"]["data"] > 0
            noise_to_data = (out["basin"]["noise"][data_att].sum()
                             / max(out["basin"]["noise"].sum(), 1))
            metrics.append(Metric("noise_to_data_share", float(noise_to_data),
                                  n=int(out["basin"]["noise"].sum()), unit="noise starts",
                                  labels=dict(lab)))
        ok = conv & (kinds == "data")
        if ok.sum() > 2:
            steps, dist = out["steps"][ok].astype(float), out["dist"][ok]
            ci = bootstrap_mean(steps, n_boot=self.n_boot, level=self.level, rng=rng,
                                unit="data starts")
            metrics.append(Metric.from_interval("steps_to_converge", ci, **lab))
            if steps.std() > 0 and dist.std() > 0:
                idx = rng.integers(0, len(steps), (min(self.n_boot, 200), len(steps)))
                boot = [np.corrcoef(steps[i], dist[i])[0, 1] for i in idx]
                lo, hi = percentile_interval(np.array(boot), self.level)
                metrics.append(Metric("steps_distance_pearson",
                                      float(np.corrcoef(steps, dist)[0, 1]), lo, hi,
                                      int(ok.sum()), "data starts", dict(lab)))
        for rule, count in out["sensitivity"].items():
            metrics.append(Metric("n_attractors_sensitivity", count, n=int(conv.sum()),
                                  unit="converged starts", labels={**lab, "rule": rule}))
        return metrics

    @classmethod
    def plot(cls, result: ProbeResult):
        a = result.arrays
        fig, axes = new_figure(3, 2, width="double", aspect=0.8)
        (ax_basin, ax_img, ax_sens), (ax_steps, ax_rad, ax_mem) = axes
        if "grid_labels" in a:
            labels = a["grid_labels"].astype(float)
            labels[labels < 0] = np.nan
            ext = a["grid_extent"]
            ax_basin.imshow(labels % 10, origin="lower", extent=ext, cmap="tab10", vmin=0,
                            vmax=10, alpha=0.55, interpolation="nearest", aspect="auto")
            ax_basin.scatter(*a["data_xy"].T, s=2, color="k", alpha=0.4, label="encoded data")
            ax_basin.scatter(*a["attractor_xy"].T, s=18, marker="*", color=PALETTE[3],
                             label="attractors")
            ax_basin.set_xlim(ext[0], ext[1])
            ax_basin.set_ylim(ext[2], ext[3])
            ax_basin.set_title("basins on the latent grid")
            # under the panel: inside, it covered encoded points and attractors
            ax_basin.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12),
                            ncol=2, markerscale=2)
        else:
            sizes = a["basin_total"]
            ax_basin.bar(np.arange(len(sizes)), sizes, color=PALETTE[0])
            ax_basin.set_yscale("log")
            ax_basin.set_xlabel("attractor (by basin size)")
            ax_basin.set_ylabel("starts in basin")
            ax_basin.set_title(f"basin sizes (latent dim {result.info.get('latent_dim')})")

        imgs, near = a["attractor_images"], a["nearest_train_images"]
        if imgs.ndim == 3 and len(imgs):
            h, w = imgs.shape[1:]
            row = lambda stack: np.concatenate(  # noqa: E731
                [np.pad(im, 1, constant_values=1) for im in stack], axis=1)
            ax_img.imshow(np.concatenate([row(imgs), row(near)], axis=0), cmap="gray_r",
                          vmin=0, vmax=1, interpolation="nearest")
            for j, m in enumerate(a["attractor_mem"]):
                ax_img.text(j * (w + 2) + (w + 2) / 2, -1.5, f"{m:.2f}", ha="center",
                            fontsize=6)
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        ax_img.set_title(r"$D(z^*)$ over nearest train", pad=8)

        rules = [m.labels["rule"] for m in result.metrics
                 if m.name == "n_attractors_sensitivity" and not m.is_baseline]
        counts = a["sensitivity_counts"]
        colors = [PALETTE[0] if r.startswith("euclid") else PALETTE[1] for r in rules]
        ax_sens.bar(np.arange(len(rules)), counts, color=colors)
        ax_sens.set_xticks(np.arange(len(rules)), [r.replace("euclidean ", "") for r in rules],
                           rotation=30)
        # a linear count axis: on a log axis the smallest bar all but vanished
        ax_sens.set_ylabel("number of groups")
        ax_sens.set_title("merge-rule sensitivity")

        ax_steps.scatter(a["dist_sample"], a["steps_sample"], s=3, color=PALETTE[0])
        r = result.find("steps_distance_pearson")
        ax_steps.set_title("steps vs start distance" if r is None
                           else f"steps vs start distance (r = {r.value:.2f})")
        ax_steps.set_xlabel(r"$\|z_0 - z^*\|$ / RMS latent norm")
        ax_steps.set_ylabel("steps")

        ax_rad.hist(a["spectral_radius"], bins=30, color=PALETTE[2])
        ax_rad.axvline(1, color="k", lw=0.8, ls="--")
        ax_rad.set_xlabel(r"Jacobian spectral radius at $z^*$")
        ax_rad.set_ylabel("fixed points")
        ax_rad.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.5 ticks
        # short: the longer title ran into the next panel's y label
        ax_rad.set_title("contraction at $z^*$")

        names = [("model", {}), ("random\ninit", {"baseline": "random-init"}),
                 ("held-out\nimages", {"baseline": "test-to-train"})]
        vals, errs, labels = [], [], []
        for label, extra in names:
            m = result.find("memorization", **extra)
            if m is None:
                continue
            vals.append(m.value)
            errs.append([m.value - m.ci_low, m.ci_high - m.value])
            labels.append(label)
        colors = [PALETTE[0], PALETTE[3], BASELINE_COLOR][:len(vals)]
        ax_mem.bar(np.arange(len(vals)), vals, yerr=np.nan_to_num(np.array(errs).T),
                   color=colors, capsize=2)
        ax_mem.set_xticks(np.arange(len(vals)), labels)
        ax_mem.set_ylim(0, 1.05)
        ax_mem.set_ylabel("max cosine to training set")
        ax_mem.set_title(r"memorization of $D(z^*)$")
        return fig


def plot_family(runs: list[tuple[int, float, ProbeResult]]):
    """Memorization vs generalization across a family of autoencoders.

    runs : ``(latent_dim, weight_decay, result)`` for each trained model.
    """
    fig, axes = new_figure(3, 1, width="double", aspect=0.95)
    ax_mem, ax_gap, ax_n = axes[0]
    decays = sorted({wd for _, wd, _ in runs})
    for i, wd in enumerate(decays):
        sub = sorted((k, r) for k, w, r in runs if w == wd)
        # each decay's points a little apart, so that intervals at the same k do not hide
        # each other
        k = np.array([k for k, _ in sub]) * 2.0 ** (0.08 * (i - (len(decays) - 1) / 2))
        for ax, key in ((ax_mem, "memorization"), (ax_gap, "memorization_gap")):
            ms = [r.metric(key) for _, r in sub]
            v = np.array([m.value for m in ms])
            err = np.abs(np.array([[m.ci_low, m.ci_high] for m in ms]).T - v)
            ax.errorbar(k, v, yerr=np.nan_to_num(err), marker="o", ms=3, capsize=2,
                        color=PALETTE[i], label=f"weight decay {wd:g}")
        ax_n.plot(k, [r.metric("n_attractors").value for _, r in sub], marker="o", ms=3,
                  color=PALETTE[i], label=f"weight decay {wd:g}")
    base = runs[0][2].metric("memorization", baseline="test-to-train")
    ax_mem.axhspan(base.ci_low, base.ci_high, color=BASELINE_COLOR, alpha=0.3, lw=0,
                   label="held-out image to train")
    ax_gap.axhline(0, color="k", lw=0.6)
    sizes = sorted({k for k, _, _ in runs})
    for ax, title, ylabel in ((ax_mem, "memorization", r"max cos($D(z^*)$, train)"),
                              (ax_gap, "train minus held-out", "memorization gap"),
                              (ax_n, "attractors", "number of attractors")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(k) for k in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("bottleneck size k")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
    ax_n.set_yscale("log")
    plain_log_ticks(ax_n.yaxis)
    # one legend under the panels: inside, it covered the intervals at large k
    fig.legend(*ax_mem.get_legend_handles_labels(), loc="outside lower center", ncol=3,
               frameon=False)
    return fig
