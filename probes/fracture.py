"""Fracture tests: is a decodable factor organised as one piece or as fractured fragments?

The FER hypothesis (Kumar, Clune, Lehman & Stanley 2025, "Questioning representational
optimism in deep learning: the fractured entangled representation hypothesis") says a factor can be decodable yet encoded in fractured,
redundant, context-dependent pieces that are fragile under perturbation. The paper shows it
with pictures; these are the numbers we define for it (rationale in ``docs/fracture.md``).
Every linear readout is a ridge fit of ``geoprobe.decoding.ridge_cv_predict`` (the
shared engine: alpha chosen by GCV inside the training rows), scored out of fold.

Scores: continuous targets use Pearson r of held-out predictions; categorical targets are
one-hot regressed (a ridge classifier, argmax of the outputs) and scored by chance-corrected
accuracy ``(acc - p_major) / (1 - p_major)``, ``p_major`` the evaluation rows' majority share.
Both are 0 at chance and 1 when perfect, so ratios of them are comparable.

F4 probe consistency (per layer)
    ``bootstrap_cosine``: mean pairwise cosine of the global probe direction over
    ``n_resamples`` cluster-bootstrap refits (stability of "the" direction). Cosines use the
    data-covariance inner product ``u^T Cov v`` (the correlation of two readouts' outputs),
    because ridge weights along directions of (near) zero variance are arbitrary and would
    make plain cosines of near-collapsed spaces meaningless.
    ``context_cosine``: mean cosine between directions fitted separately in each context
    (values of the ``context`` column: sentence type, region of state space), with the
    refitting bootstrap's spread centred on the estimate (refits are noisier, which biases
    their cosines down). ``bootstrap_cosine`` has no interval (it is itself a
    resampling summary). Categorical targets average over their class columns.
    ``within_score``: out-of-fold score inside each context (group folds), averaged.
    ``transfer_score``: a probe fitted on all of context c scored on context c', averaged over
    ordered pairs c != c'; ``transfer_ratio = transfer / within`` (1: one shared code, 0: none).
    Its interval refits every probe per replicate (``n_refits`` cluster-bootstrap replicates
    over ``group`` units, basic interval ``2 est - q``), so it includes the fitting noise that
    an interval over held-out predictions of fixed probes leaves out.
F4 perturbation robustness
    ``noise_auc``: held-out score of the global probe (fitted on clean training folds) on
    embeddings plus ``N(0, (a * rms)^2)`` noise, ``rms = sqrt(trace(Cov)/d)``, divided by the
    clean score and averaged over ``noise_levels`` ``a``: 1 = unaffected. A factor spread over
    many weak context-specific pieces needs a longer readout vector and degrades sooner.
    With a torch ``model`` (see :func:`weight_sweep`): ``on_target_share`` (FER sweeps) and
    ``weight_noise_auc``.
F2 redundancy (all probed layers together)
    ``distinct_features``: features (neurons of every layer, in layer order) kept after merging
    any feature whose |correlation| with an earlier kept one exceeds ``merge_threshold``
    (0.99; FER's "novel maps"), as a fraction of the non-constant features;
    ``stacked_rankme``: RankMe of the centred stacked activations, and its share of the width.
Amnesic effect (per layer)
    The target is erased with LEACE (Belrose et al. 2023):
    ``x' = x - (x - mu) E^T``, ``E = S^{1/2} P S^{-1/2}``, ``S`` the covariance and ``P``
    the projector onto the span of ``S^{-1/2} Cov(x, z)``, fitted on all rows (afterwards no
    linear readout covaries with the target, so a global probe's score is 0 by construction
    and not reported). ``residual_within``: the within-context score after
    erasure over the one before (global linear erasure removes a unified code; fragments
    encoded differently per context survive it), and ``collateral``: the mean relative drop
    of the ``others`` targets' global scores (what erasing the target destroys besides it).

Baselines: ``shuffled`` (target permuted within contexts, keeping each context's marginal)
for scores and cosines, and the random-init twin (added by the core). Confidence intervals:
cluster bootstrap over ``group`` units of held-out predictions (the probes are not refitted
per replicate, as in ``linear-decodability``: conditional on the fitted probes), percentile
intervals; cosines use the refitting bootstrap of ``n_resamples``, and ``transfer_ratio`` one
of ``n_refits`` replicates that refit every within- and cross-context probe.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from geoprobe.contract import (Interval, NON_NEGATIVE, OPEN_UNIT, Options, POSITIVE, POSITIVE_INT,
                              SequenceOf)
from geoprobe.decoding import group_folds, ridge_cv_predict
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import ProbeInputError
from geoprobe.plotting import (BASELINE_COLOR, PALETTE, interval, layer_axis, legend_outside,
                               new_figure)
from geoprobe.probe import Example, Metric, Probe, ProbeResult
from geoprobe.spectra import rankme
from geoprobe.stats import (
    ClusterBootstrap, bootstrap_indices, group_codes, percentile_interval, shuffle_labels,
    subsample_units,
)
from geoprobe.streaming import MomentAccumulator

NOISE_LEVELS = (0.25, 0.5, 1.0, 2.0)


# -- linear readouts through the shared ridge engine -------------------------------------------
def ridge_map(X, Y, rows=None, *, alphas=None):
    """Ridge readout fitted on ``rows`` of X (n, d) -> Y (n, t): returns ``W`` (d, t), ``b`` (t,).

    Uses :func:`ridge_cv_predict` (GCV alpha inside ``rows``): the fitted rows form one fold
    and the points ``0, e_1, ..., e_d`` another, whose out-of-fold predictions are exactly the
    intercept and ``intercept + W[i]``. ``rows`` may repeat (bootstrap).
    """
    Y = np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)
    Xr = np.asarray(X if rows is None else X[rows], dtype=np.float64)
    Yr = Y if rows is None else Y[rows]
    d = Xr.shape[1]
    basis = np.vstack([np.zeros((1, d)), np.eye(d)])
    folds = np.r_[np.zeros(len(Xr), dtype=np.int64), np.ones(d + 1, dtype=np.int64)]
    pred = ridge_cv_predict(np.vstack([Xr, basis]), np.vstack([Yr, np.zeros((d + 1,
                                                                           Y.shape[1]))]),
                            folds, alphas=alphas).predictions[len(Xr):]
    return pred[1:] - pred[0], pred[0]


def unit_columns(W: np.ndarray) -> np.ndarray:
    """Columns of W (d, t) scaled to unit norm."""
    return W / np.maximum(np.linalg.norm(W, axis=0, keepdims=True), 1e-300)


def covariance_root(X: np.ndarray) -> np.ndarray:
    """Symmetric square root of the covariance of X (n, d), shape (d, d)."""
    Xc = X - X.mean(0)
    lam, V = np.linalg.eigh(Xc.T @ Xc / len(X))
    return (V * np.sqrt(np.clip(lam, 0.0, None))) @ V.T


def mean_pairwise_cosine(directions: np.ndarray, root: np.ndarray | None = None) -> float:
    """Mean cosine over pairs i < j of directions (m, d, t), averaged over the t columns.

    With ``root = covariance_root(X)`` the inner product is ``u^T Cov v``: the cosine is the
    correlation of the two readouts' outputs over the data, blind to weight placed in
    directions the data never visit (where ridge weights are arbitrary).
    """
    if root is not None:
        directions = np.einsum("ed,mdt->met", root, directions)
    U = unit_columns(np.moveaxis(directions, 0, -1).reshape(directions.shape[1], -1)).reshape(
        directions.shape[1], directions.shape[2], directions.shape[0])
    cos = np.einsum("dti,dtj->tij", U, U)
    iu = np.triu_indices(directions.shape[0], 1)
    return float(cos[:, iu[0], iu[1]].mean())


def _targets(y: np.ndarray, kind: str):
    """Regression targets (n, t) and the kind: one-hot for categorical, centred column else."""
    if kind == "categorical":
        classes, codes = np.unique(y, return_inverse=True)
        return np.eye(len(classes))[codes], codes
    return np.asarray(y, dtype=np.float64)[:, None], None


def score(y_true, pred, kind: str) -> float:
    """Pearson r (continuous) or chance-corrected accuracy (categorical codes vs (n, K))."""
    if kind == "categorical":
        hit = np.mean(np.argmax(pred, 1) == y_true)
        major = np.bincount(y_true).max() / len(y_true)
        return float((hit - major) / (1 - major)) if major < 1 else 0.0
    a, b = np.asarray(y_true, float).ravel(), np.asarray(pred, float).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / den) if den > 0 else 0.0


# -- amnesic: LEACE -------------------------------------------------------------------------
def leace(X: np.ndarray, Z: np.ndarray, rows=None):
    """LEACE eraser of targets Z (n, t) from X (n, d), fitted on ``rows``.

    Returns ``(mean (d,), E (d, d))`` with erased rows ``x - (x - mean) @ E.T``: afterwards no
    linear function of x has any covariance with Z (on the fitted rows).
    """
    Xr = np.asarray(X if rows is None else X[rows], dtype=np.float64)
    Zr = np.asarray(Z if rows is None else Z[rows], dtype=np.float64).reshape(len(Xr), -1)
    mu = Xr.mean(0)
    Xc, Zc = Xr - mu, Zr - Zr.mean(0)
    cov = Xc.T @ Xc / len(Xr)
    cross = Xc.T @ Zc / len(Xr)
    lam, V = np.linalg.eigh(cov)
    keep = lam > max(lam.max(), 1e-300) * 1e-10
    root = (V[:, keep] * np.sqrt(lam[keep])) @ V[:, keep].T
    root_inv = (V[:, keep] / np.sqrt(lam[keep])) @ V[:, keep].T
    Q, s, _ = np.linalg.svd(root_inv @ cross, full_matrices=False)
    Q = Q[:, s > max(s.max(initial=0.0), 1e-300) * 1e-10]
    return mu, root @ (Q @ Q.T) @ root_inv


# -- redundancy ---------------------------------------------------------------------------
def distinct_features(layers, threshold: float = 0.99, chunk_rows: int = 32768):
    """Count features left after merging near-duplicates across layers (FER's novel maps).

    ``layers`` is a list of arrays (n, d_l) (memory-mapped welcome). Features are visited in
    layer order; one is *novel* when its |correlation| with every earlier novel feature is at
    most ``threshold``. Constant features are dropped. Returns ``(n_distinct, n_features,
    stacked_rankme)``, RankMe of the centred stacked activations (n, sum d_l).
    """
    n = layers[0].shape[0]
    acc = MomentAccumulator(sum(L.shape[1] for L in layers))
    for start in range(0, n, chunk_rows):
        acc.update(np.hstack([L[start:start + chunk_rows] for L in layers]))
    cov = acc.covariance()
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    live = sd > 1e-8 * max(sd.max(), 1e-300)
    corr = np.abs(cov[np.ix_(live, live)] / np.outer(sd[live], sd[live]))
    novel = np.zeros(corr.shape[0], dtype=bool)
    for i in range(corr.shape[0]):  # greedy in layer order: one vector op per feature
        novel[i] = not np.any(corr[i, novel] > threshold)
    sing = np.sqrt(np.clip(np.linalg.eigvalsh(cov) * n, 0.0, None))
    return int(novel.sum()), int(live.sum()), rankme(sing)


# -- torch: weight sweeps and weight noise ------------------------------------------------------
def _representation(model, inputs):
    import torch

    with torch.no_grad():
        out = model(inputs)
    return out.detach().double().cpu().numpy().reshape(len(inputs), -1)


def weight_sweep(model, inputs, readouts, *, rng, n_directions: int = 200,
                 deltas=(-1.0, -0.5, 0.5, 1.0), mode: str = "single"):
    """FER weight sweeps scored by where the change lands.

    For each of ``n_directions`` directions ``u`` in parameter space (``mode="single"``: one
    random weight; ``"column"``: a random column of a random weight matrix along a random unit
    vector, FER App. F) and each ``delta``, the parameters become ``theta + delta * u``; the
    change of every readout's prediction, RMS over items and deltas in units of that target's
    clean prediction spread, gives a vector ``c`` (one entry per target) and
    ``on_target_share = max(c) / sum(c)`` (1: the change stays on one factor; ``1/n_targets``:
    spread evenly). Directions that move no readout (``sum(c) ~ 0``) are dropped.

    Parameters
    ----------
    model : torch.nn.Module mapping ``inputs`` to a representation (n, d)
    inputs : torch.Tensor (n, ...)
    readouts : list of (W (d, t_j), b (t_j,))
    Returns
    -------
    shares : (n_kept,), change : (n_kept, n_targets)
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    theta = torch.nn.utils.parameters_to_vector(params).detach().clone()
    base = _representation(model, inputs)
    base_pred = [base @ W + b for W, b in readouts]
    spread = [max(float(P.std()), 1e-12) for P in base_pred]
    matrices = [(i, p) for i, p in enumerate(params) if p.ndim == 2]
    offsets = np.cumsum([0] + [p.numel() for p in params])
    changes = []
    try:
        for _ in range(n_directions):
            u = torch.zeros_like(theta)
            if mode == "single":
                u[int(rng.integers(theta.numel()))] = 1.0
            elif mode == "column":
                i, p = matrices[int(rng.integers(len(matrices)))]
                col = int(rng.integers(p.shape[1]))
                v = rng.standard_normal(p.shape[0])
                block = torch.zeros(p.shape, dtype=theta.dtype)
                block[:, col] = torch.as_tensor(v / np.linalg.norm(v), dtype=theta.dtype)
                u[offsets[i]:offsets[i + 1]] = block.reshape(-1)
            else:
                raise ProbeInputError(f"sweep mode must be 'single' or 'column', got {mode!r}")
            c = np.zeros(len(readouts))
            for delta in deltas:
                torch.nn.utils.vector_to_parameters(theta + float(delta) * u, params)
                rep = _representation(model, inputs)
                c += [np.mean((rep @ W + b - P) ** 2) / s ** 2
                      for (W, b), P, s in zip(readouts, base_pred, spread)]
            changes.append(np.sqrt(c / len(deltas)))
    finally:
        torch.nn.utils.vector_to_parameters(theta, params)
    changes = np.array(changes)
    total = changes.sum(1)
    kept = total > 1e-9 * max(total.max(initial=0.0), 1e-300)
    return changes[kept].max(1) / total[kept], changes[kept]


def weight_noise_scores(model, inputs, W, b, y, kind, rows, *, rng,
                        levels=NOISE_LEVELS, n_repeats: int = 3):
    """Score of a fixed readout on ``rows`` when every weight tensor gets Gaussian noise of
    ``level * rms(tensor)``; mean over ``n_repeats`` draws per level -> (len(levels),)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.detach().clone() for p in params]
    out = np.zeros(len(levels))
    try:
        for k, level in enumerate(levels):
            for _ in range(n_repeats):
                with torch.no_grad():
                    for p, p0 in zip(params, saved):
                        rms = float(p0.pow(2).mean().sqrt())
                        noise = rng.standard_normal(tuple(p0.shape))
                        p.copy_(p0 + level * rms * torch.as_tensor(noise, dtype=p0.dtype))
                rep = _representation(model, inputs)[rows]
                out[k] += score(y[rows], rep @ W + b, kind) / n_repeats
    finally:
        with torch.no_grad():
            for p, p0 in zip(params, saved):
                p.copy_(p0)
    return out


# -- the probe ---------------------------------------------------------------------------------
class Fracture(Probe):
    """Decodable but fractured? Consistency, transfer, robustness, redundancy, amnesic effect.

    Parameters
    ----------
    target : str
        Item column of the factor.
    context : str or None
        Item column whose values define contexts (needs >= 2 with >= ``n_splits`` groups each).
    others : list of str
        Other factors, for the amnesic collateral and the sweeps' spill.
    kind : "auto", "continuous" or "categorical" (auto: floats continuous, else categorical)
    group : str or None
        Resampling / fold unit (sentence, episode); rows if None.
    n_splits : int, default 5
    n_resamples : int, default 20
        Refitting bootstrap replicates for the direction cosines.
    n_refits : int, default 100
        Refitting bootstrap replicates for the ``transfer_ratio`` interval (each refits
        ``n_contexts * (n_splits + 1)`` ridge probes).
    noise_levels : list of float
        Embedding noise in units of the data's RMS.
    merge_threshold : float, default 0.99
    sweep_directions : int, default 200
        Per sweep mode, when ``annotations["inputs"]`` and a torch ``model`` are given (the
        model in eval mode, mapping the inputs to the representation, one row per item).
    min_score : float, default 0.1
        Ratios (transfer, noise, residual) are NaN when their reference score is below this:
        fracture is undefined for a factor that is not decodable.
    n_boot, level : int, float
    max_rows : int, default 20000
        Memory bound. The probe refits many readouts on bootstrap, context and noisy copies of
        every probed layer, held in float64 (about ``8 * n * d`` bytes per copy, a few copies
        plus one per probed layer), so it does not stream. A set with more rows is subsampled
        to whole groups (random order, seeded) totalling at most ``max_rows`` rows, with a
        ``geoprobe: warning`` that results.json records; ``info["rows_used"]`` gives the count.
    """

    name = "fracture"
    summary = ("Decodable but fractured? Probe consistency across resamples and contexts, "
               "transfer, noise/weight robustness, redundancy, LEACE amnesic effect.")
    memory = ("in memory: every probed layer in float64 (8 n d bytes each) and a few working copies; "
              "more rows than max_rows are subsampled by whole groups, with a warning")
    parameter_constraints = {
        "target": [str], "context": [str, None], "others": [str, SequenceOf(str)],
        "kind": [Options({"auto", "continuous", "categorical"})], "group": [str, None],
        "n_splits": [Interval(int, 2, None)], "n_resamples": [Interval(int, 2, None)],
        "n_refits": [Interval(int, 2, None)],
        "noise_levels": [SequenceOf(POSITIVE, min_len=1)],
        "merge_threshold": [Interval(float, 0, 1)], "sweep_directions": [POSITIVE_INT],
        "min_score": [NON_NEGATIVE], "n_boot": [POSITIVE_INT], "level": [OPEN_UNIT],
        "max_rows": [Interval(int, 2, None)],
    }
    column_parameters = ("target", "context", "others", "group")
    # higher is more unified (less fractured); erasing the target should spare the other
    # factors (low collateral), while what stays decodable after erasure is neither
    metric_directions = {
        "bootstrap_cosine": True, "context_cosine": True, "within_score": True,
        "transfer_score": True, "transfer_ratio": True, "global_score": True, "noise_auc": True,
        "distinct_features": True, "stacked_rankme_share": True, "on_target_share": True,
        "weight_noise_auc": True, "residual_within": None, "collateral": False,
    }

    @classmethod
    def example_input(cls, rng) -> Example:
        from geoprobe.datasets.fracture import planted_fracture

        one = planted_fracture(n_items=240, dim=8, n_contexts=2, group_size=6,
                               seed=int(rng.integers(2**31)))
        X = one.layer(0)
        # a second layer: the same factor under more noise
        layers = np.stack([X, X + rng.standard_normal(X.shape).astype(X.dtype)])
        items = {k: v for k, v in one.items.items()}
        return Example(EmbeddingSet(layers, items, source="example"),
                       {"target": "factor", "context": "context", "others": ["other"],
                        "group": "group", "n_splits": 3, "n_resamples": 4, "n_refits": 4,
                        "noise_levels": (0.5, 1.0), "n_boot": 20})

    def __init__(self, target=None, context=None, others=(), kind="auto", group=None,
                 n_splits=5, n_resamples=20, n_refits=100, noise_levels=NOISE_LEVELS,
                 merge_threshold=0.99, sweep_directions=200, min_score=0.1, n_boot=200,
                 level=0.95, max_rows=20_000):
        self.target = target
        self.context = context
        self.others = others
        self.kind = kind
        self.group = group
        self.n_splits = n_splits
        self.n_resamples = n_resamples
        self.n_refits = n_refits
        self.noise_levels = noise_levels
        self.merge_threshold = merge_threshold
        self.sweep_directions = sweep_directions
        self.min_score = min_score
        self.n_boot = n_boot
        self.level = level
        self.max_rows = max_rows

    def check_input(self, embeddings, annotations, model) -> None:
        super().check_input(embeddings, annotations, model)
        if model is not None and "inputs" not in annotations:
            raise ProbeInputError("probe 'fracture' got a model but no annotations['inputs'] "
                                  "(the tensor the model maps to the representation)")

    def _others(self):
        return [self.others] if isinstance(self.others, str) else list(self.others)

    def _kind(self, values, kind=None):
        kind = kind or self.kind
        if kind == "auto":
            return "continuous" if np.asarray(values).dtype.kind == "f" else "categorical"
        if kind not in ("continuous", "categorical"):
            raise ProbeInputError(f"kind must be 'auto', 'continuous' or 'categorical', "
                                  f"got {kind!r}")
        return kind

    # -- evaluation ------------------------------------------------------------------------
    def _within_memory(self, ctx):
        """``ctx`` itself, or with at most ``max_rows`` rows (whole groups) and a warning."""
        n = ctx.embeddings.n_items
        if n <= self.max_rows:
            return ctx
        groups = ctx.column(self.group) if self.group else None
        rows = subsample_units(groups, n, self.max_rows, ctx.rng)
        ctx.warn(f"fracture: {ctx.embeddings.source}: {n} rows is more than max_rows="
                 f"{self.max_rows} (it holds ~{8 * n * ctx.embeddings.dim / 2**20:.0f} MiB "
                 f"per float64 copy of a layer); using a random {len(rows)} rows of whole "
                 f"{self.group or 'row'} units")
        annotations = dict(ctx.annotations)
        if "inputs" in annotations:  # the model's inputs are aligned with the rows
            annotations["inputs"] = annotations["inputs"][rows]
        return replace(ctx, embeddings=ctx.embeddings.subset(rows), annotations=annotations)

    def evaluate(self, ctx) -> ProbeResult:
        ctx = self._within_memory(ctx)
        n = ctx.embeddings.n_items
        raw = np.asarray(ctx.column(self.target))
        kind = self._kind(raw)
        Y, codes = _targets(raw, kind)
        y = codes if kind == "categorical" else Y[:, 0]
        groups = ctx.column(self.group) if self.group else None
        unit = self.group or "rows"
        contexts = None
        if self.context:
            _, contexts = np.unique(ctx.column(self.context), return_inverse=True)
            self._check_contexts(contexts, groups)
        shuffled_raw = shuffle_labels(raw, groups=contexts, within_groups=contexts is not None,
                                      rng=ctx.rng)
        Ys, codes_s = _targets(shuffled_raw, kind)
        ys = codes_s if kind == "categorical" else Ys[:, 0]
        folds = group_folds(n, self.n_splits, groups=groups, rng=ctx.rng,
                            group_name=self.group or "group")
        boot_rows = [bootstrap_indices(groups, n, ctx.rng) for _ in range(self.n_boot)]
        others = [(name, *self._other_target(ctx, name)) for name in self._others()]
        metrics, arrays = [], {"noise_curve": [], "noise_levels": np.asarray(self.noise_levels)}
        layers_seen = []
        for layer, X in ctx.iter_layers(dtype=np.float64):
            layers_seen.append(X)
            lab = {"layer": layer, "target": self.target}
            add = _adder(metrics, lab, len(np.unique(groups)) if groups is not None else n,
                         unit, self.level)
            # probe consistency over resamples and contexts
            res = self._consistency(X, Y, contexts, groups, ctx.rng)
            res_s = self._consistency(X, Ys, contexts, groups, ctx.rng)
            add("bootstrap_cosine", res["bootstrap_cosine"], None, True)
            add("bootstrap_cosine", res_s["bootstrap_cosine"], None, None, "shuffled")
            if contexts is not None:
                # Refitting on resamples adds estimation noise, which lowers cosines, so the
                # percentile interval can exclude the estimate: keep its width, centred.
                add("context_cosine", res["context_cosine"], res["context_cosine_boot"], True,
                    centred=True)
                add("context_cosine", res_s["context_cosine"], res_s["context_cosine_boot"],
                    None, "shuffled", centred=True)
                within, transfer = self._transfer(X, Y, contexts, groups, ctx.rng)
                w_s, _ = self._transfer(X, Ys, contexts, groups, ctx.rng,
                                        transfer=False)
                w_val, w_boot = self._boot_scores(within, y, kind, contexts, boot_rows)
                t_val, t_boot = self._boot_scores(transfer, y, kind, contexts, boot_rows)
                add("within_score", w_val, w_boot, True)
                add("within_score", self._boot_scores(w_s, ys, kind, contexts, [])[0], None,
                    None, "shuffled")
                add("transfer_score", t_val, t_boot, True)
                # Basic interval: refitting on resamples (duplicated rows) inflates the ratio
                # beyond the estimator's own finite-sample excess (within-context probes see
                # (k-1)/k of a context, transfer probes all of it); 2 est - q corrects for it.
                add("transfer_ratio", _ratio(t_val, w_val, [], [], self.min_score)[0],
                    self._refit_ratios(X, Y, y, kind, contexts, groups, ctx.rng), True,
                    basic=True)
            # perturbation: embedding noise, with the probe fitted on clean training folds
            curve, curve_boot = self._noise(X, Y, y, kind, folds, boot_rows, ctx.rng)
            arrays["noise_curve"].append(curve)
            add("global_score", curve[0], curve_boot[:, 0], True)
            add("noise_auc", *_ratio(curve[1:].mean(), curve[0], curve_boot[:, 1:].mean(1),
                                     curve_boot[:, 0], self.min_score), True)
            # amnesic effect of LEACE-erasing the target
            for name, value, boot, hib in self._amnesic(
                    X, Y, y, kind, contexts, groups, folds, others, boot_rows, ctx.rng,
                    within if contexts is not None else None):
                add(name, value, boot, hib)
        # redundancy across all probed layers together
        n_distinct, n_live, stacked = distinct_features(layers_seen, self.merge_threshold)
        width = sum(L.shape[1] for L in layers_seen)
        lab = {"layer": "all", "target": self.target}
        metrics += [
            Metric("distinct_features", n_distinct / max(n_live, 1), n=n_live, unit="features",
                   labels=lab, higher_is_better=True),
            Metric("stacked_rankme_share", stacked / width, n=width, unit="features",
                   labels=lab, higher_is_better=True),
        ]
        del layers_seen
        info = {"kind": kind, "n_contexts": int(contexts.max()) + 1 if contexts is not None
                else 0, "distinct_count": n_distinct, "live_features": n_live,
                "stacked_rankme": stacked, "rows_used": n}
        if ctx.model is not None:
            self._sweeps(ctx, Y, y, kind, others, folds, metrics, arrays)
        arrays["noise_curve"] = np.array(arrays["noise_curve"])
        return self.result(ctx, metrics, arrays, **info)

    def _check_contexts(self, contexts, groups):
        counts = np.bincount(contexts)
        if counts.size < 2:
            raise ProbeInputError(f"probe 'fracture': context column {self.context!r} has one "
                                  "value; it needs at least two contexts")
        for c in range(counts.size):
            g = group_codes(None if groups is None else groups[contexts == c], counts[c])[1]
            if g < self.n_splits:
                raise ProbeInputError(
                    f"probe 'fracture': context {c} of column {self.context!r} has {g} "
                    f"{'groups' if groups is not None else 'rows'}, fewer than n_splits="
                    f"{self.n_splits}; merge rare contexts or lower n_splits")

    def _other_target(self, ctx, name):
        raw = np.asarray(ctx.column(name))
        kind = self._kind(raw, "auto")
        Y, codes = _targets(raw, kind)
        return kind, Y, codes if kind == "categorical" else Y[:, 0]

    def _consistency(self, X, Y, contexts, groups, rng) -> dict:
        n = X.shape[0]
        root = covariance_root(X)
        global_dirs, ctx_cos = [], []
        context_rows = ([np.flatnonzero(contexts == c) for c in range(contexts.max() + 1)]
                        if contexts is not None else [])
        for _ in range(self.n_resamples):
            rows = bootstrap_indices(groups, n, rng)
            global_dirs.append(ridge_map(X, Y, rows)[0])
            if context_rows:
                dirs = [ridge_map(X[r], Y[r], bootstrap_indices(
                    None if groups is None else groups[r], len(r), rng))[0]
                    for r in context_rows]
                ctx_cos.append(mean_pairwise_cosine(np.array(dirs), root))
        out = {"bootstrap_cosine": mean_pairwise_cosine(np.array(global_dirs), root)}
        if context_rows:
            dirs = np.array([ridge_map(X[r], Y[r])[0] for r in context_rows])
            out["context_cosine"] = mean_pairwise_cosine(dirs, root)
            out["context_cosine_boot"] = np.array(ctx_cos)
        return out

    def _transfer(self, X, Y, contexts, groups, rng, transfer=True):
        """Out-of-fold within-context predictions (n, t) and, per row, the mean prediction of
        the probes fitted on each *other* whole context (n, t)."""
        n_ctx = contexts.max() + 1
        within = np.zeros_like(Y)
        across = np.zeros_like(Y)
        maps = []
        for c in range(n_ctx):
            r = np.flatnonzero(contexts == c)
            g = None if groups is None else groups[r]
            f = group_folds(len(r), self.n_splits, groups=g, rng=rng)
            within[r] = ridge_cv_predict(X[r], Y[r], f).predictions
            if transfer:
                maps.append(ridge_map(X[r], Y[r]))
        if transfer:
            for c in range(n_ctx):
                r = np.flatnonzero(contexts == c)
                across[r] = np.mean([X[r] @ W + b for k, (W, b) in enumerate(maps) if k != c],
                                    axis=0)
        return within, across

    def _refit_ratios(self, X, Y, y, kind, contexts, groups, rng) -> np.ndarray:
        """``transfer_ratio`` on ``n_refits`` cluster-bootstrap replicates, every probe refitted
        on the replicate's rows: shape (n_refits,), NaN where a replicate leaves a context with
        fewer than ``n_splits`` units or the within score below ``min_score``."""
        boot = ClusterBootstrap(groups, len(y), n_boot=self.n_refits, rng=rng)
        # copies of a drawn unit keep its label, so group folds never split them between
        # training and held-out rows (rows are their own units without a group column)
        labels = np.arange(len(y)) if groups is None else group_codes(groups, len(y))[0]
        out = np.full(self.n_refits, np.nan)
        for b in range(self.n_refits):
            rows = boot.replicate_rows(b)
            c, g = contexts[rows], labels[rows]
            if np.unique(c).size < 2 or any(np.unique(g[c == k]).size < self.n_splits
                                             for k in np.unique(c)):
                continue
            _, c = np.unique(c, return_inverse=True)
            within, transfer = self._transfer(X[rows], Y[rows], c, g, rng)
            w = self._boot_scores(within, y[rows], kind, c, [])[0]
            t = self._boot_scores(transfer, y[rows], kind, c, [])[0]
            out[b] = _ratio(t, w, [], [], self.min_score)[0]
        return out

    def _boot_scores(self, pred, y, kind, contexts, boot_rows):
        """Mean over contexts of per-context scores; value and bootstrap replicates."""
        def stat(rows):
            cs = contexts[rows]
            return np.mean([score(y[rows][cs == c], pred[rows][cs == c], kind)
                            for c in np.unique(cs)])
        return stat(np.arange(len(y))), np.array([stat(r) for r in boot_rows])

    def _noise(self, X, Y, y, kind, folds, boot_rows, rng):
        levels = np.r_[0.0, np.asarray(self.noise_levels, dtype=float)]
        mean = X.mean(0)
        rms = np.sqrt(np.mean((X - mean) ** 2))
        preds = np.zeros((len(levels),) + Y.shape)
        for f in range(folds.max() + 1):
            train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
            W, b = ridge_map(X, Y, train)
            for k, a in enumerate(levels):
                noisy = X[test] + a * rms * rng.standard_normal((len(test), X.shape[1]))
                preds[k, test] = noisy @ W + b
        curve = np.array([score(y, P, kind) for P in preds])
        boot = np.array([[score(y[r], P[r], kind) for P in preds] for r in boot_rows])
        return curve, boot.reshape(len(boot_rows), len(levels))

    def _amnesic(self, X, Y, y, kind, contexts, groups, folds, others, boot_rows, rng,
                 before):
        mu, E = leace(X, Y)
        Xe = X - (X - mu) @ E.T
        if contexts is not None:
            after, _ = self._transfer(Xe, Y, contexts, groups, rng, transfer=False)
            b_val, b_boot = self._boot_scores(before, y, kind, contexts, boot_rows)
            a_val, a_boot = self._boot_scores(after, y, kind, contexts, boot_rows)
            yield ("residual_within", *_ratio(a_val, b_val, a_boot, b_boot, self.min_score),
                   None)
        for name, okind, OY, oy in others:
            p0 = ridge_cv_predict(X, OY, folds).predictions
            p1 = ridge_cv_predict(Xe, OY, folds).predictions
            s0, s1 = score(oy, p0, okind), score(oy, p1, okind)
            boot = np.array([1 - score(oy[r], p1[r], okind) / max(score(oy[r], p0[r], okind),
                                                                  1e-12) for r in boot_rows])
            yield (f"collateral:{name}", 1 - s1 / s0 if s0 > 0 else np.nan, boot, False)

    def _sweeps(self, ctx, Y, y, kind, others, folds, metrics, arrays):
        model, inputs = ctx.model, ctx.annotations["inputs"]
        rep = _representation(model, inputs)
        train, test = np.flatnonzero(folds != 0), np.flatnonzero(folds == 0)
        readouts = [ridge_map(rep, Y, train)] + [ridge_map(rep, OY, train)
                                                  for _, _, OY, _ in others]
        lab = {"layer": "model", "target": self.target}
        for mode in ("single", "column"):
            shares, _ = weight_sweep(model, inputs, readouts, rng=ctx.rng, mode=mode,
                                     n_directions=self.sweep_directions)
            arrays[f"sweep_shares_{mode}"] = np.sort(shares)
            lo, hi = percentile_interval(shares, 0.5)  # the interquartile range
            metrics.append(Metric("on_target_share", float(np.median(shares)), lo, hi,
                                  len(shares), "directions", dict(lab, sweep=mode), True))
            metrics.append(Metric("on_target_share", 1.0 / len(readouts), n=len(shares),
                                  unit="directions",
                                  labels=dict(lab, sweep=mode, baseline="even-spread")))
        W, b = readouts[0]
        clean = score(y[test], rep[test] @ W + b, kind)
        curve = weight_noise_scores(model, inputs, W, b, y, kind, test, rng=ctx.rng,
                                    levels=self.noise_levels)
        arrays["weight_noise_curve"] = np.r_[clean, curve]
        metrics.append(Metric("weight_noise_auc", float(curve.mean() / clean) if clean > 0
                              else np.nan, n=len(test), unit="rows", labels=lab,
                              higher_is_better=True))

    # -- figure ------------------------------------------------------------------------------
    @classmethod
    def plot(cls, result: ProbeResult):
        layers = list(result.info["layers"])
        sweeps = [m for m in ("single", "column") if f"sweep_shares_{m}" in result.arrays]
        fig, grid = new_figure(2, 2, width="double", aspect=0.6)
        axes = [grid[0][0], grid[0][1], grid[1][0], grid[1][1]]
        x = np.arange(len(layers))

        def series(ax, name, color, label, baseline=None, ls="-"):
            s = result.series(name, at=layers, **({"baseline": baseline} if baseline else {}))
            # all NaN (e.g. ratios undefined by min_score): nothing to draw, so no legend entry
            if not s.found.any() or not np.isfinite(s.values).any():
                return
            ax.plot(x, s.values, marker="o" if not baseline else "x", ls=ls, color=color,
                    label=label)
            interval(ax, x, *s.band(), color=color)

        for ax, (title, ylabel, lines) in zip(axes, _PANELS):
            for name, color, label, baseline, ls in lines:
                series(ax, name, color, label, baseline, ls)
            ax.set_title(title)
            ax.set_ylabel(ylabel)
        for ax in axes[:3]:
            layer_axis(ax, layers, rotate_over=6)
            legend_outside(ax, fontsize=6)  # inside, it covers the bands
        if sweeps:
            ax = axes[3]
            for i, mode in enumerate(sweeps):
                shares = result.arrays[f"sweep_shares_{mode}"]
                ax.plot(shares, np.linspace(0, 1, shares.size), color=PALETTE[i],
                        label=f"{mode} weights")
            ax.axvline(result.metric("on_target_share", layer="model", sweep=sweeps[0],
                                     baseline="even-spread").value, color=BASELINE_COLOR,
                       ls="--", label="even spread")
            ax.set_xlabel("on-target share of the change")
            ax.set_ylabel("fraction of directions")
            ax.set_title("weight sweeps (FER)")
            ax.legend(frameon=False, fontsize=6)
        else:
            axes[3].set_axis_off()
            axes[3].text(0.5, 0.5, "no model given: no weight sweeps", ha="center",
                            va="center", color=BASELINE_COLOR)
        return fig


# (title, y label, [(metric, colour, legend, baseline, line style)]) of the first three panels
_PANELS = [
    ("decodable?", "held-out score", [
        ("within_score", PALETTE[0], "within context", None, "-"),
        ("transfer_score", PALETTE[1], "across contexts", None, "-"),
        ("global_score", PALETTE[2], "global probe", None, "-"),
        ("within_score", BASELINE_COLOR, "shuffled", "shuffled", "--"),
        ("within_score", PALETTE[3], "within (random-init)", "random-init", ":")]),
    ("one direction?", "mean pairwise cosine of probes", [
        ("context_cosine", PALETTE[0], "across contexts", None, "-"),
        ("bootstrap_cosine", PALETTE[2], "across resamples", None, "-"),
        ("context_cosine", BASELINE_COLOR, "shuffled", "shuffled", "--"),
        ("context_cosine", PALETTE[3], "contexts (random-init)", "random-init", ":")]),
    ("fractured?", "ratio", [
        ("transfer_ratio", PALETTE[1], "transfer / within (1: unified)", None, "-"),
        ("residual_within", PALETTE[4], "within after LEACE (1: fractured)", None, "-"),
        ("noise_auc", PALETTE[5], "noise robustness (1: robust)", None, "-"),
        ("transfer_ratio", PALETTE[3], "transfer (random-init)", "random-init", ":")]),
]


def _ratio(num, den, num_boot, den_boot, min_score):
    """``num / den`` and its replicates, NaN where ``den < min_score``: a ratio of scores is
    undefined when the factor is not decodable in the first place."""
    den_boot = np.asarray(den_boot, dtype=float)
    ok = den_boot >= min_score
    boot = np.where(ok, np.asarray(num_boot) / np.where(ok, den_boot, 1.0), np.nan)
    return (num / den if den >= min_score else np.nan), boot


def _adder(metrics, labels, n_units, unit, level):
    """``add(name, value, boot, higher_is_better, baseline=None, centred=False, basic=False)``
    appending a Metric with a percentile (or estimate-centred, or basic) interval from
    replicates ``boot``."""
    def add(name, value, boot, hib, baseline=None, centred=False, basic=False):
        lo, hi = np.nan, np.nan
        if boot is not None and len(boot):
            lo, hi = percentile_interval(boot, level)
            if centred:  # the replicates' spread around the estimate, within [-1, 1]
                shift = value - float(np.nanmean(boot))
                lo, hi = max(lo + shift, -1.0), min(hi + shift, 1.0)
            elif basic and np.isfinite(value):  # 2 est - q: removes the refits' own bias
                lo, hi = 2 * value - hi, 2 * value - lo
        lab = dict(labels, **({"baseline": baseline} if baseline else {}))
        if ":" in name:
            name, other = name.split(":", 1)
            lab["other"] = other
        metrics.append(Metric(name, float(value), lo, hi, n_units, unit, lab, hib))
    return add


def fracture_table(result: ProbeResult) -> str:
    """The "decodable but fractured" table as Markdown: one row per layer, every number beside
    its baselines (shuffled, random-init) where they exist."""
    names = ["within_score", "global_score", "transfer_ratio", "context_cosine",
             "bootstrap_cosine", "noise_auc", "residual_within"]
    layers = result.info["layers"]
    head = "| layer | " + " | ".join(names) + " |"
    rows = [head, "|" + " --- |" * (len(names) + 1)]

    def cell(name, layer):
        parts = []
        for baseline in (None, "shuffled", "random-init"):
            m = result.find(name, layer=layer, **({"baseline": baseline} if baseline else {}))
            if m is None:
                continue
            ci = (f" [{m.ci_low:.2f}, {m.ci_high:.2f}]" if baseline is None
                  and np.isfinite(m.ci_low) else "")
            parts.append(f"{m.value:.2f}{ci}" if baseline is None
                         else f"{baseline[:4]} {m.value:.2f}")
        return "; ".join(parts) or "-"

    for layer in layers:
        rows.append(f"| {layer} | " + " | ".join(cell(n, layer) for n in names) + " |")
    extra = [m for m in result.metrics if m.labels.get("layer") in ("all", "model")]
    for m in extra:
        base = f" ({m.labels['baseline']})" if m.is_baseline else ""
        sweep = f" {m.labels['sweep']}" if "sweep" in m.labels else ""
        rows.append(f"| {m.labels['layer']} | {m.name}{sweep}{base} = {m.value:.3f} |"
                    + " |" * (len(names) - 1))
    return "\n".join(rows)
