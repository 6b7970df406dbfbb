"""Linear (and one-hidden-layer MLP) decodability of item attributes, with honest controls.

"Is X linearly decodable from this layer?" answered with held-out metrics, confidence
intervals and the baselines that give the number its meaning.

:class:`LinearDecodability` (registered as ``linear-decodability``) runs the decoding engine
of :mod:`geoprobe.decoding` (folds, out-of-fold ridge / logistic / MLP predictions, scores,
control tasks, MDL; its choices are documented there) over every layer of an embedding set.

Definitions (LeWorldModel Table 1; Hewitt & Liang 2019 control tasks)
-----------------------------------------------------------------------
Every metric is computed on **out-of-fold** predictions: rows are split into ``n_splits``
folds with every row of one group (sentence, episode, word type: the ``group`` column) in the
same fold; each fold is predicted by a model fitted on the others, with its regularization
strength chosen inside those training folds only. Metrics are then computed once on the pooled
held-out predictions, and their confidence intervals come from a cluster bootstrap over groups
of those predictions (the model is not refitted per replicate: the interval covers the
evaluation sample, not the fitting noise; say so when comparing with papers that repeat seeds).

Continuous targets (ridge; LeWM Table 1 reports Pearson r and MSE)
    ``r2 = 1 - SS_res / SS_tot`` with ``SS_tot`` about the mean of the held-out targets;
    ``pearson_r`` between prediction and target; ``mse``. Per target column.
    Angles (``angles=[...]``) are predicted as ``sin`` and ``cos`` (targets ``<name>:sin`` and
    ``<name>:cos``) and also scored by ``angle_mae``, the mean absolute circular difference
    between ``atan2(sin_hat, cos_hat)`` and the truth, in the angle's unit.
Categorical targets (multinomial logistic regression)
    ``accuracy``; ``balanced_accuracy`` = mean recall over the classes present in the
    held-out labels; ``macro_f1`` = mean F1 over the classes present in labels or predictions
    (scikit-learn's definitions).
MLP
    One hidden layer (ReLU), Adam, early stopping on held-out groups of the training folds.
    Its metrics are ``mlp_<metric>``; ``mlp_gain_<metric>`` = MLP - linear (paired bootstrap
    CI), the one-line answer to "is it there but not linearly?".
Baselines (metrics with a ``baseline`` label)
    ``shuffled``: the same probe on rows whose targets were permuted (the X-y link broken).
    ``mean`` / ``majority``: predict the training folds' mean or majority class.
    ``control`` (categorical, when ``control`` names a column such as the word form): Hewitt &
    Liang (2019)'s control task; each value of that column gets one fixed label drawn from the
    empirical label distribution, and the same probe is fitted to it. We draw ``n_control``
    (default 5) independent assignments and report the **mean** over them (Hewitt & Liang draw
    one): a single draw moves the control accuracy by more than its bootstrap interval when
    the column has few values. The interval is a two-stage bootstrap: replicate b resamples
    the groups (the replicate every other metric uses) and, with replacement, the
    assignments, and averages replicate b of the drawn assignments; it covers both the
    evaluation sample and the random draw of the labels. The per-assignment values (min, max,
    sd) are in ``info["control_spread"]["<layer>:<target>"]``.
    ``selectivity = accuracy - control accuracy`` (paired bootstrap CI), also for the MLP.
    ``random-init``: added by the core when the embedding set names a random-init twin.
MDL (``mdl=True``, categorical; Voita & Titov 2020)
    Online code length in bits: the first block of a random ordering of *groups* is sent with
    the uniform code, each later block with the linear probe trained on all earlier blocks
    (block boundaries at 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25, 12.5, 25, 50, 100 % of rows,
    as in the paper). ``mdl_compression = n log2(K) / codelength``. We use the linear probe
    (Voita & Titov used an MLP) with the layer's cross-validated regularization; ordering
    by groups keeps a sentence's words together, as the paper's sentence-level blocks do.

Where we differ
---------------
Ridge strength by GCV (or exact leave-one-out) inside the training folds, logistic strength on
held-out training groups, a scale-free relative alpha grid: see :mod:`geoprobe.decoding`.

Bad input (never a silently wrong number)
-----------------------------------------
NaN in a continuous target or an empty categorical label: error naming the item and column,
or ``missing="drop"`` drops those rows (the count is recorded in ``info``). A class with fewer
than ``min_class_size`` rows: error naming it, or ``rare_classes="drop"``. More folds than
groups: error naming the group column and both counts.
"""

from __future__ import annotations

import math

import numpy as np

from geoprobe.decoding import (assignment_draws, classification_from_sums,
                               classification_rows, control_task_labels, group_folds,
                               logistic_cv_predict, mlp_cv_predict, online_codelength,
                               pool_assignments, regression_from_sums, regression_rows,
                               ridge_cv_predict, wrap_angle)
from geoprobe.contract import Interval, OPEN_UNIT, Options, POSITIVE, POSITIVE_INT, SequenceOf
from geoprobe.device import DEVICE_CONSTRAINT
from geoprobe.errors import ProbeInputError
from geoprobe.plotting import (BASELINE_COLOR, PALETTE, baseline_band, interval, layer_axis,
                               new_figure, reference)
from geoprobe.probe import Example, Probe, ProbeResult
from geoprobe.stats import ClusterBootstrap, as_generator, child_seed
from geoprobe.streaming import CHUNK_ROWS


# ---------------------------------------------------------------------------------------------
# input checking
# ---------------------------------------------------------------------------------------------
def _resolve_kind(values: np.ndarray, kind: str, name: str) -> str:
    if kind in ("continuous", "categorical"):
        if kind == "continuous" and values.dtype.kind not in "biuf":
            raise ProbeInputError(f"target {name!r} has dtype {values.dtype}; a continuous "
                                  "target must be numeric (use kind='categorical')")
        return kind
    if kind != "auto":
        raise ProbeInputError(f"kind must be 'auto', 'continuous' or 'categorical', got {kind!r}")
    if values.dtype.kind in "Ub":
        return "categorical"
    if values.dtype.kind in "iu":
        return "categorical" if len(np.unique(values)) <= 32 else "continuous"
    return "continuous"


def _missing_mask(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return ~np.isfinite(values)
    if values.dtype.kind == "U":
        return np.char.str_len(values) == 0
    return np.zeros(len(values), dtype=bool)


# ---------------------------------------------------------------------------------------------
# the probe
# ---------------------------------------------------------------------------------------------
class LinearDecodability(Probe):
    """Held-out linear (and MLP) decodability of item columns, per layer, with controls.

    Parameters
    ----------
    targets : str or list of str
        Item columns to decode. Continuous ones are fitted jointly (one eigendecomposition per
        training fold serves them all); each categorical one separately.
    kind : "auto", "continuous" or "categorical"
        "auto": strings and booleans are categorical, floats continuous, integers categorical
        when they take at most 32 distinct values.
    angles : list of str
        Columns holding angles, decoded as sin and cos and scored by circular error too.
    angle_unit : "rad" or "deg"
    group : str or None
        Column naming the unit kept together in folds and resampled by the bootstrap
        (sentence, episode, word type). Rows if None (say why in your report).
    control : str or None
        Column whose values get Hewitt & Liang control labels (e.g. the word form); for
        categorical targets. None: no control task.
    n_control : int, default 5
        Independent random control assignments; control metrics and selectivity are their
        mean (see "Baselines" above). 1 is Hewitt & Liang's single draw and gives the same
        numbers as the first of several (the task metrics do not depend on it). Each costs
        one more control fit (linear, MLP and MDL).
    n_splits : int, default 5
    alphas : list of float or None
        Absolute ridge penalties; None uses a grid relative to each fold's spectrum.
    select : "gcv" or "loo"
        Ridge alpha selection criterion inside training folds.
    lambdas : list of float or None
        Logistic L2 strengths (standardized features); None: 1e-1 .. 1e-5.
    mlp : bool, default True
        Fit the one-hidden-layer MLP probe alongside (task and control).
    mlp_hidden, mlp_max_epochs : int
    device : str, default "cpu"
        Where the MLPs train: "cpu", "cuda", "cuda:N", "mps" or "auto" (see
        :mod:`geoprobe.device`); the linear probes always run on the CPU in numpy.
    shuffled, trivial : bool, default True
        Report the shuffled-target baseline and the mean/majority predictor.
    mdl : bool, default False
        Online code length (categorical targets), task and control.
    missing : "error" or "drop"
        What to do with NaN/empty targets.
    rare_classes : "error" or "drop"; min_class_size : int
        Classes with fewer rows than ``min_class_size``.
    n_boot : int, default 500; level : float, default 0.95
    chunk_rows : int
        Rows read at a time by the ridge path.

    Memory: with continuous targets only and ``mlp=False`` the layer streams from its
    memory-map in ``chunk_rows`` row chunks (ridge from per-fold ``X^T X`` and ``X^T Y``), so
    it needs ``O(n_splits * dim^2 + chunk_rows * dim)`` plus per-row targets, predictions and
    bootstrap sums (``O(n_rows * n_targets)``) and ``O(n_boot * n_groups)`` for the bootstrap
    counts. Categorical targets (logistic regression, MDL) and the MLP hold the layer's used
    rows in float64 (``8 * n_rows * dim`` bytes) and more for their copies.
    """

    name = "linear-decodability"
    summary = ("Held-out linear/MLP decodability of item columns (ridge, logistic) with "
               "group-aware CV, shuffled/control/trivial baselines and selectivity.")
    memory = ("streams row chunks for ridge (continuous targets, mlp=False): 8 n_splits (d + t)^2 "
              "bytes plus O(n t); in memory (8 n d bytes, float64) for logistic, MLP and MDL")
    parameter_constraints = {
        "targets": [str, SequenceOf(str)],
        "kind": [Options({"auto", "continuous", "categorical"})],
        "angles": [str, SequenceOf(str)], "angle_unit": [Options({"rad", "deg"})],
        "group": [str, None], "control": [str, None], "n_control": [POSITIVE_INT],
        "n_splits": [Interval(int, 2, None)],
        "alphas": [SequenceOf(POSITIVE, min_len=1), None], "select": [Options({"gcv", "loo"})],
        "lambdas": [SequenceOf(POSITIVE, min_len=1), None], "mlp": [bool],
        "mlp_hidden": [POSITIVE_INT], "mlp_max_epochs": [POSITIVE_INT], "shuffled": [bool],
        "trivial": [bool], "mdl": [bool], "missing": [Options({"error", "drop"})],
        "rare_classes": [Options({"error", "drop"})], "min_class_size": [POSITIVE_INT],
        "n_boot": [POSITIVE_INT], "level": [OPEN_UNIT], "device": [DEVICE_CONSTRAINT],
        "chunk_rows": [POSITIVE_INT],
    }
    column_parameters = ("targets", "angles", "group", "control")
    metric_directions = {
        "r2": True, "pearson_r": True, "mse": False, "accuracy": True, "balanced_accuracy": True,
        "macro_f1": True, "angle_mae": False, "selectivity": True, "mdl_codelength": False,
        "mdl_compression": True, "mlp_gain_*": None, "mlp_mse": False, "mlp_angle_mae": False,
        "mlp_*": True,
    }

    @classmethod
    def example_input(cls, rng) -> Example:
        from geoprobe.datasets.planted_decoding import planted_decodability

        emb = planted_decodability(n_items=200, dim=8, noise=(None, 0.5), episode_length=10,
                                   seed=int(rng.integers(2**31)))
        return Example(emb, {"targets": ["x", "region"], "angles": ["theta"], "group": "episode",
                             "control": "episode", "n_control": 2, "n_splits": 3,
                             "mlp_hidden": 8, "mlp_max_epochs": 3, "mdl": True, "n_boot": 20})

    def __init__(self, targets=(), kind="auto", angles=(), angle_unit="rad", group=None,
                 control=None, n_control=5, n_splits=5, alphas=None, select="gcv",
                 lambdas=None, mlp=True, mlp_hidden=256, mlp_max_epochs=100, shuffled=True,
                 trivial=True, mdl=False, missing="error", rare_classes="error",
                 min_class_size=2, n_boot=500, level=0.95, device="cpu", chunk_rows=CHUNK_ROWS):
        self.targets = targets
        self.kind = kind
        self.angles = angles
        self.angle_unit = angle_unit
        self.group = group
        self.control = control
        self.n_control = n_control
        self.n_splits = n_splits
        self.alphas = alphas
        self.select = select
        self.lambdas = lambdas
        self.mlp = mlp
        self.mlp_hidden = mlp_hidden
        self.mlp_max_epochs = mlp_max_epochs
        self.device = device
        self.shuffled = shuffled
        self.trivial = trivial
        self.mdl = mdl
        self.missing = missing
        self.rare_classes = rare_classes
        self.min_class_size = min_class_size
        self.n_boot = n_boot
        self.level = level
        self.chunk_rows = chunk_rows

    # -- input -----------------------------------------------------------------------------
    def _columns(self):
        targets = [self.targets] if isinstance(self.targets, str) else list(self.targets)
        angles = [self.angles] if isinstance(self.angles, str) else list(self.angles)
        return targets, angles

    def check_input(self, embeddings, annotations, model) -> None:
        super().check_input(embeddings, annotations, model)
        targets, angles = self._columns()
        if not targets and not angles:
            raise ProbeInputError(f"probe {self.name!r} needs targets=[...] and/or angles=[...]")

    def _prepare(self, ctx):
        """Resolve kinds, rows kept, and target arrays; errors name the item and column."""
        targets, angles = self._columns()
        ids = ctx.embeddings.ids
        n = ctx.embeddings.n_items
        keep = np.ones(n, dtype=bool)
        kinds = {}
        for name in targets + angles:
            values = ctx.column(name)
            kinds[name] = "angle" if name in angles else _resolve_kind(values, self.kind, name)
            if kinds[name] == "angle" and values.dtype.kind not in "biuf":
                raise ProbeInputError(f"angle column {name!r} must be numeric, "
                                      f"has dtype {values.dtype}")
            bad = _missing_mask(values)
            if bad.any():
                if self.missing == "error":
                    row = int(np.flatnonzero(bad)[0])
                    item = str(ids[row])
                    raise ProbeInputError(
                        f"{ctx.embeddings.source}: target column {name!r} is missing (NaN or "
                        f"empty) at row {row} (item {item!r}) and {int(bad.sum()) - 1} "
                        "other row(s); clean the column or pass missing='drop'")
                keep &= ~bad
        dropped = {"missing": int((~keep).sum())}
        classes = {}
        for name in targets:
            if kinds[name] != "categorical":
                continue
            labels, counts = np.unique(ctx.column(name)[keep], return_counts=True)
            rare = labels[counts < self.min_class_size]
            if len(rare):
                if self.rare_classes == "error":
                    raise ProbeInputError(
                        f"{ctx.embeddings.source}: target {name!r} has class(es) "
                        f"{rare.tolist()[:10]} with fewer than {self.min_class_size} rows; "
                        "held-out scores for them are meaningless. Merge or remove them, or "
                        "pass rare_classes='drop'")
                is_rare = np.isin(ctx.column(name), rare)
                dropped[f"rare:{name}"] = int((keep & is_rare).sum())
                keep &= ~is_rare
        for name in targets:
            if kinds[name] == "categorical":
                classes[name], _ = np.unique(ctx.column(name)[keep], return_inverse=True)
                if len(classes[name]) < 2:
                    raise ProbeInputError(f"target {name!r} has fewer than 2 classes")
        if keep.sum() < 2 * self.n_splits:
            raise ProbeInputError(f"only {int(keep.sum())} usable rows for {self.n_splits} folds")
        return kinds, keep, classes, dropped

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, ctx) -> ProbeResult:
        kinds, keep, classes, dropped = self._prepare(ctx)
        rows = np.flatnonzero(keep)
        n = len(rows)
        groups = ctx.column(self.group)[rows] if self.group else None
        folds = group_folds(n, self.n_splits, groups=groups, rng=ctx.rng,
                            group_name=self.group or "group")
        # One set of replicates for every layer, target, model and baseline: differences
        # (MLP - linear, task - control) get paired intervals.
        boot = ClusterBootstrap(groups, n, n_boot=self.n_boot, rng=ctx.rng,
                                unit=self.group or "rows", level=self.level)
        perm = ctx.rng.permutation(n)
        cont = [c for c, k in kinds.items() if k == "continuous"]
        angles = [c for c, k in kinds.items() if k == "angle"]
        cats = [c for c, k in kinds.items() if k == "categorical"]
        scale = 1.0 if self.angle_unit == "rad" else math.pi / 180.0
        names, cols = [], []
        for c in cont:
            names.append(c)
            cols.append(ctx.column(c)[rows].astype(np.float64))
        for c in angles:
            theta = ctx.column(c)[rows].astype(np.float64) * scale
            names += [f"{c}:sin", f"{c}:cos"]
            cols += [np.sin(theta), np.cos(theta)]
        Y = np.stack(cols, axis=1) if cols else None
        cat_codes = {c: np.unique(ctx.column(c)[rows], return_inverse=True)[1] for c in cats}
        ctrl, controls = {}, None
        if self.control and cats:
            types = ctx.column(self.control)[rows]
            ctrl = {c: [control_task_labels(types, cat_codes[c], rng=ctx.rng)] for c in cats}
        mlp_seed = child_seed(ctx.rng)
        if ctrl:
            # Assignments after the first are drawn after mlp_seed, with fits seeded apart, so
            # the task metrics and the first assignment do not depend on n_control (and
            # n_control=1 is the single draw of Hewitt & Liang).
            for c in cats:
                ctrl[c] += [control_task_labels(types, cat_codes[c], rng=ctx.rng)
                            for _ in range(self.n_control - 1)]
            controls = ([child_seed(ctx.rng) for _ in range(self.n_control - 1)],
                        assignment_draws(self.n_control, self.n_boot, rng=ctx.rng))
        metrics, info = [], {"kinds": kinds, "n_used": n, "dropped": dropped,
                             "n_units": boot.n_units, "unit": boot.unit, "alphas": {},
                             "lambdas": {}, "classes": {c: classes[c].tolist() for c in cats}}
        if ctrl:
            info["control_spread"] = {}
        streams = not cats and not self.mlp
        for layer, X_all in ctx.iter_layers(dtype=None):
            X = X_all if n == len(X_all) else X_all[rows]
            if not streams:  # logistic regression, the MLP and MDL hold the rows in memory
                X = np.asarray(X, dtype=np.float64)
            rng_layer = as_generator(mlp_seed)  # same MLP/inner-split draws for every layer
            if Y is not None:
                metrics += self._continuous(layer, X, Y, names, angles, folds, groups, perm,
                                            boot, rng_layer, info)
            for c in cats:
                metrics += self._categorical(layer, X, c, cat_codes[c], len(classes[c]),
                                             ctrl.get(c, []), controls, folds, groups, perm,
                                             boot, rng_layer, info)
        return self.result(ctx, metrics, {}, **info)

    def _continuous(self, layer, X, Y, names, angles, folds, groups, perm, boot, rng, info):
        t = Y.shape[1]
        # Shuffled targets ride along as extra columns: the same decomposition serves them.
        Yall = np.hstack([Y, Y[perm]]) if self.shuffled else Y
        ridge = ridge_cv_predict(X, Yall, folds, alphas=self.alphas, select=self.select,
                                 chunk_rows=self.chunk_rows)
        info["alphas"][layer] = np.exp(np.log(ridge.alphas[:, :t]).mean(0)).tolist()
        preds = {"linear": (Y, ridge.predictions[:, :t])}
        if self.mlp:
            preds["mlp"] = (Y, mlp_cv_predict(X, Y, folds, kind="continuous", groups=groups,
                                              rng=rng, hidden=self.mlp_hidden,
                                              max_epochs=self.mlp_max_epochs,
                                              device=self.device))
        if self.shuffled:
            preds["shuffled"] = (Yall[:, t:], ridge.predictions[:, t:])
        if self.trivial:
            means = np.stack([Y[folds != f].mean(0) for f in range(self.n_splits)])
            preds["mean"] = (Y, means[folds])
        stats = {}
        for key, (T, P) in preds.items():
            full, bs = boot.sums(regression_rows(T, P))
            stats[key] = (regression_from_sums(full), regression_from_sums(bs))
            for a in angles:
                i, j = names.index(f"{a}:sin"), names.index(f"{a}:cos")
                err = np.abs(wrap_angle(np.arctan2(P[:, i], P[:, j]) - np.arctan2(T[:, i], T[:, j])))
                err = err / (1.0 if self.angle_unit == "rad" else math.pi / 180.0)
                f2, b2 = boot.sums(np.stack([np.ones_like(err), err], axis=1))
                stats[key][0][f"angle_mae:{a}"] = f2[1:] / f2[0]
                stats[key][1][f"angle_mae:{a}"] = b2[:, 1:] / b2[:, :1]
        out = []
        hib = {"r2": True, "pearson_r": True, "mse": False}
        for key, (full, bs) in stats.items():
            prefix = "mlp_" if key == "mlp" else ""
            base = {} if key in ("linear", "mlp") else {"baseline": key}
            for metric in ("r2", "pearson_r", "mse"):
                if key == "mean" and metric == "pearson_r":
                    continue  # a per-fold constant has no meaningful correlation
                for j, t in enumerate(names):
                    out.append(boot.metric(prefix + metric, full[metric][j], bs[metric][:, j],
                                           higher_is_better=hib[metric], layer=layer,
                                           target=t, **base))
            for a in angles:
                out.append(boot.metric(prefix + "angle_mae", full[f"angle_mae:{a}"][0],
                                       bs[f"angle_mae:{a}"][:, 0], higher_is_better=False,
                                       layer=layer, target=a, **base))
        if "mlp" in stats:
            for j, t in enumerate(names):
                gain_full = stats["mlp"][0]["r2"][j] - stats["linear"][0]["r2"][j]
                gain_boot = stats["mlp"][1]["r2"][:, j] - stats["linear"][1]["r2"][:, j]
                out.append(boot.metric("mlp_gain_r2", gain_full, gain_boot, layer=layer,
                                       target=t))
        return out

    def _categorical(self, layer, X, target, y, K, ycs, controls, folds, groups, perm, boot,
                     rng, info):
        """Metrics of one categorical target on one layer.

        ``ycs`` lists the control label arrays (n_rows,), one per assignment (empty: no control
        task); ``controls`` is (fit seeds of assignments 2.., assignment draws of shape
        (n_boot, n_control)) or None.
        """
        lam = self.lambdas
        logp, chosen = logistic_cv_predict(X, y, folds, n_classes=K, lambdas=lam, groups=groups,
                                           rng=rng)
        info["lambdas"][f"{layer}:{target}"] = chosen.tolist()
        preds = {("linear", "task"): (y, logp.argmax(1))}
        kw = dict(kind="categorical", n_classes=K, groups=groups, hidden=self.mlp_hidden,
                  max_epochs=self.mlp_max_epochs, device=self.device)
        # The first assignment shares the task's generator, in the order one assignment always
        # used it; later ones have their own (see evaluate).
        fit_rngs = [rng] + [as_generator(seed) for seed in controls[0]] if ycs else []
        fitted = {"linear": [], "mlp": []}  # per model: (labels, predictions) per assignment

        def fit_control(k, model):
            if model == "linear":
                lc, _ = logistic_cv_predict(X, ycs[k], folds, n_classes=K, lambdas=lam,
                                            groups=groups, rng=fit_rngs[k])
                fitted[model].append((ycs[k], lc.argmax(1)))
            else:
                fitted[model].append(
                    (ycs[k], mlp_cv_predict(X, ycs[k], folds, rng=fit_rngs[k], **kw).argmax(1)))

        if ycs:
            fit_control(0, "linear")
        if self.mlp:
            preds[("mlp", "task")] = (y, mlp_cv_predict(X, y, folds, rng=rng, **kw).argmax(1))
            if ycs:
                fit_control(0, "mlp")
        if self.shuffled:
            ys = y[perm]
            ls, _ = logistic_cv_predict(X, ys, folds, n_classes=K, lambdas=lam, groups=groups,
                                        rng=rng)
            preds[("linear", "shuffled")] = (ys, ls.argmax(1))
        if self.trivial:
            majority = np.array([np.bincount(y[folds != f], minlength=K).argmax()
                                 for f in range(self.n_splits)])
            preds[("linear", "majority")] = (y, majority[folds])
        for k in range(1, len(ycs)):
            for model in ("linear", "mlp") if self.mlp else ("linear",):
                fit_control(k, model)

        def scored(T, P):
            full, bs = boot.sums(classification_rows(T, P, K))
            return classification_from_sums(full), classification_from_sums(bs)

        stats = {key: scored(T, P) for key, (T, P) in preds.items()}
        spread = {}
        for model, runs in fitted.items():
            if not runs:
                continue
            per = [scored(T, P) for T, P in runs]
            pooled = {m: pool_assignments([f[m] for f, _ in per],
                                          np.stack([b[m] for _, b in per], axis=1), controls[1])
                      for m in per[0][0]}
            stats[(model, "control")] = ({m: v[0] for m, v in pooled.items()},
                                         {m: v[1] for m, v in pooled.items()})
            prefix = "mlp_" if model == "mlp" else ""
            acc = np.array([f["accuracy"] for f, _ in per])
            spread[prefix + "accuracy"] = acc
            spread[prefix + "selectivity"] = stats[(model, "task")][0]["accuracy"] - acc
        out = []
        for (model, task), (full, bs) in stats.items():
            prefix = "mlp_" if model == "mlp" else ""
            base = {} if task == "task" else {"baseline": task}
            for metric in ("accuracy", "balanced_accuracy", "macro_f1"):
                out.append(boot.metric(prefix + metric, full[metric], bs[metric],
                                       higher_is_better=True, layer=layer, target=target,
                                       **base))
        for model in ("linear", "mlp"):
            prefix = "mlp_" if model == "mlp" else ""
            if (model, "control") in stats:
                t, c = stats[(model, "task")], stats[(model, "control")]
                out.append(boot.metric(prefix + "selectivity",
                                       t[0]["accuracy"] - c[0]["accuracy"],
                                       t[1]["accuracy"] - c[1]["accuracy"],
                                       higher_is_better=True, layer=layer, target=target))
        if ("mlp", "task") in stats:
            t, li = stats[("mlp", "task")], stats[("linear", "task")]
            out.append(boot.metric("mlp_gain_accuracy", t[0]["accuracy"] - li[0]["accuracy"],
                                   t[1]["accuracy"] - li[1]["accuracy"], layer=layer,
                                   target=target))
        if self.mdl:
            lam_mdl = float(np.exp(np.mean(np.log(chosen))))
            codes = [online_codelength(X, labels, n_classes=K, groups=groups, lam=lam_mdl,
                                       rng=as_generator(child_seed(r)))
                     for labels, r in [(y, rng)] + list(zip(ycs, fit_rngs))]
            tasks = [("task", codes[0])]
            if ycs:
                tasks.append(("control", np.mean(codes[1:], axis=0)))
            for task, (bits, comp) in tasks:
                base = {} if task == "task" else {"baseline": "control"}
                # MDL has no interval: one code length per task (control: mean over
                # assignments), over all rows
                out.append(boot.metric("mdl_codelength", bits, higher_is_better=False,
                                       layer=layer, target=target, **base))
                out.append(boot.metric("mdl_compression", comp, higher_is_better=True,
                                       layer=layer, target=target, **base))
            if ycs:
                spread["mdl_compression"] = np.array([comp for _, comp in codes[1:]])
        if spread:
            info["control_spread"][f"{layer}:{target}"] = {
                name: {"values": v.tolist(), "mean": float(v.mean()), "min": float(v.min()),
                       "max": float(v.max()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
                for name, v in spread.items()}
        return out

    # -- figure ----------------------------------------------------------------------------
    @classmethod
    def plot(cls, result: ProbeResult):
        layers = [str(x) for x in result.info["layers"]]
        kinds = result.info["kinds"]
        panels = []
        for name, kind in kinds.items():
            if kind == "categorical":
                panels.append((name, "accuracy", "majority"))
            elif kind == "angle":
                panels += [(f"{name}:sin", "r2", "mean"), (f"{name}:cos", "r2", "mean")]
            else:
                panels.append((name, "r2", "mean"))
        has_sel = any(m.name == "selectivity" for m in result.metrics)
        ncols = min(len(panels), 3)
        nrows = math.ceil(len(panels) / ncols) + (1 if has_sel else 0)
        fig, axes = new_figure(ncols, nrows, width="double" if ncols > 1 else "single",
                               aspect=0.8)
        x = np.arange(len(layers))

        def to_axis(v, error):
            """R2 near 1 (0.997 vs 0.9995) cannot be told apart on a 0-1 axis, so R2 panels
            show 1 - R2 on a log axis, floored at 1e-6 so a perfect fit stays on the axis;
            ``v`` is (n,) or a (2, n) interval, whose bounds swap."""
            if not error:
                return v
            y = np.maximum(1 - np.asarray(v, dtype=float), 1e-6)
            return y[::-1] if y.ndim == 2 else y

        def series(name, target, **lab):
            s = result.series(name, at=layers, target=target, **lab)
            return s if s.found.any() else None

        spread = result.info.get("control_spread", {})

        def control_range(ax, target, key, color, what):
            """Min to max over the control assignments, as caps at each layer."""
            ranges = [spread.get(f"{layer}:{target}", {}).get(key) for layer in layers]
            if not any(ranges):
                return
            lo, hi = (np.array([r[end] if r else np.nan for r in ranges]) for end in ("min",
                                                                                  "max"))
            mid = (lo + hi) / 2
            n = max(len(r["values"]) for r in ranges if r)
            ax.errorbar(x, mid, yerr=[mid - lo, hi - mid], fmt="none", ecolor=color, capsize=3,
                        lw=0.8, label=f"{what}: min-max, {n} draws")

        def curve(ax, s, label, color, ls="-", marker="o", error=False):
            if s is None:
                return
            y, (lo, hi) = to_axis(s.values, error), to_axis(np.array(s.band()), error)
            ax.plot(x, y, ls=ls, marker=marker, ms=3, color=color, label=label)
            interval(ax, x, lo, hi, color=color)

        for i, (target, metric, trivial) in enumerate(panels):
            ax = axes[i // ncols][i % ncols]
            error = metric == "r2"  # R2 panels show 1 - R2 on a log axis, see to_axis
            sh = series(metric, target, baseline="shuffled")
            if sh is not None:
                lo, hi = to_axis(np.nan_to_num(np.array([sh.ci_low, sh.ci_high])), error)
                baseline_band(ax, x, lo, hi, label="shuffled targets (95% CI)")
            tr = series(metric, target, baseline=trivial)
            if tr is not None:
                reference(ax, x, to_axis(tr.values, error), label=f"{trivial} predictor")
            for name, labels, label, color, ls, marker in (
                    (metric, {"baseline": "control"}, "control task", PALETTE[1], "--", "s"),
                    (metric, {"baseline": "random-init"}, "random-init twin", PALETTE[3], "-.",
                     "^"),
                    ("mlp_" + metric, {}, "MLP probe", PALETTE[2], "--", "D"),
                    (metric, {}, "linear probe", PALETTE[0], "-", "o")):
                curve(ax, series(name, target, **labels), label, color, ls, marker, error)
            if not error:
                control_range(ax, target, "accuracy", PALETTE[1], "control")
            ax.set_title(target)
            layer_axis(ax, layers)
            if error:
                ax.set_yscale("log")
                ax.set_ylabel("held-out $1 - R^2$ (log)")
            else:
                ax.set_ylabel("held-out accuracy")
        last = math.ceil(len(panels) / ncols) * ncols
        for j in range(len(panels), last):
            axes[j // ncols][j % ncols].set_axis_off()
        if has_sel:
            cats = [n for n, k in kinds.items() if k == "categorical"]
            for j in range(ncols):
                ax = axes[-1][j]
                if j >= len(cats):
                    ax.set_axis_off()
                    continue
                ax.axhline(0, color=BASELINE_COLOR, lw=0.8)
                curve(ax, series("selectivity", cats[j]), "linear", PALETTE[0])
                curve(ax, series("mlp_selectivity", cats[j]), "MLP", PALETTE[2], "--", "D")
                control_range(ax, cats[j], "selectivity", PALETTE[0], "selectivity")
                ax.set_title(f"{cats[j]}: selectivity (task - control)")
                layer_axis(ax, layers)
                ax.set_ylabel("accuracy difference")
        handles = {}
        for ax in fig.axes:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        if has_sel:
            handles = {("selectivity: " + k if k in ("linear", "MLP") else k): v
                       for k, v in handles.items()}
        # a single-column figure fits two legend columns across its width, a double one four
        fig.legend(list(handles.values()), list(handles.keys()), loc="outside lower center",
                   ncol=min(len(handles), 4 if ncols > 1 else 2), frameon=False, fontsize=6)
        return fig
