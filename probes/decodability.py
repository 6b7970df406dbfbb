"""Linear (and one-hidden-layer MLP) decodability of item attributes, with honest controls.

"Is X linearly decodable from this layer?" answered with held-out metrics, confidence
intervals and the baselines that give the number its meaning.

The numerical engine is a set of plain functions on arrays, reusable by other probes::

    from geoprobe.probes.decodability import (
        group_folds, ridge_cv_predict, logistic_cv_predict, mlp_cv_predict,
        regression_scores, classification_scores, control_task_labels, online_codelength,
        decode,
    )
    scores = decode(X, Y, kind="continuous", groups=episode_ids, rng=0).scores
    r2, r2_low, r2_high = scores["r2"].T          # one entry per target column

and :class:`LinearDecodability` (registered as ``linear-decodability``) runs it over every
layer of an embedding set.

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
    empirical label distribution, and the same probe is fitted to it.
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
* Ridge regularization is chosen per target by generalized cross-validation (GCV, the default)
  or exact leave-one-out (``select="loo"``, what scikit-learn's ``RidgeCV`` does) from one
  eigendecomposition of each training fold's centred Gram matrix, reused for every target and
  every alpha. Training-fold Gram matrices are the total minus the held-out fold's, so a layer
  costs one pass over its rows (GCV) whatever the number of folds, targets and alphas.
* Logistic regression strength is chosen on a held-out 20 % of the training folds' groups
  (by log-loss), then refitted on all training rows. Features are standardized with the
  training folds' mean and standard deviation.
* The default alpha grid is relative: ``alpha = r * trace(G) / d`` for
  ``r`` in ``10^-6 .. 10^2`` (G the training fold's centred Gram), so it does not depend on the
  scale of the embeddings; pass ``alphas`` to give absolute values.

Bad input (never a silently wrong number)
-----------------------------------------
NaN in a continuous target or an empty categorical label: error naming the item and column,
or ``missing="drop"`` drops those rows (the count is recorded in ``info``). A class with fewer
than ``min_class_size`` rows: error naming it, or ``rare_classes="drop"``. More folds than
groups: error naming the group column and both counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax
from threadpoolctl import threadpool_limits

from geoprobe.contract import Interval, OPEN_UNIT, Options, POSITIVE, POSITIVE_INT, SequenceOf
from geoprobe.errors import ProbeInputError
from geoprobe.plotting import BASELINE_COLOR, PALETTE, baseline_band, new_figure
from geoprobe.probe import Example, Probe, ProbeResult
from geoprobe.stats import (ClusterBootstrap, as_generator, child_seed, group_codes,
                            preserves_torch_rng)

#: relative ridge grid (multiples of the mean eigenvalue of the training fold's centred Gram)
RELATIVE_ALPHAS = np.logspace(-6, 2, 17)
#: L2 strengths for logistic regression on standardized features (mean log-loss + lam/2 |W|^2)
DEFAULT_LAMBDAS = np.logspace(-1, -5, 5)
#: Voita & Titov (2020) online-code block boundaries, as fractions of the rows
MDL_FRACTIONS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)


# ---------------------------------------------------------------------------------------------
# folds
# ---------------------------------------------------------------------------------------------
def group_folds(n_rows: int, n_splits: int = 5, *, groups=None, rng, group_name="group"
                ) -> np.ndarray:
    """Assign rows to ``n_splits`` folds keeping each group's rows together.

    Groups are visited from largest to smallest (ties in random order) and each goes to the
    fold with the fewest rows so far, which balances fold sizes like scikit-learn's
    ``GroupKFold`` but with a seeded random tie order. Without ``groups`` rows are shuffled
    into folds of near-equal size.

    Parameters
    ----------
    n_rows : int
    n_splits : int, at least 2
    groups : array of shape (n_rows,), optional
    rng : numpy Generator or int seed
    group_name : str, used in the error message

    Returns
    -------
    folds : int array of shape (n_rows,), values in [0, n_splits)
    """
    rng = as_generator(rng)
    if int(n_splits) != n_splits or n_splits < 2:
        raise ProbeInputError(f"n_splits must be an integer >= 2, got {n_splits!r}")
    codes, n_units = group_codes(groups, n_rows)
    if n_splits > n_units:
        what = f"groups in column {group_name!r}" if groups is not None else "rows"
        raise ProbeInputError(
            f"{n_splits} folds need at least {n_splits} {what}, found {n_units}; "
            "use fewer folds (n_splits) or a finer group column")
    if groups is None:
        return rng.permutation(n_rows) % n_splits
    sizes = np.bincount(codes, minlength=n_units)
    order = rng.permutation(n_units)
    order = order[np.argsort(-sizes[order], kind="stable")]
    load = np.zeros(n_splits, dtype=np.int64)
    unit_fold = np.empty(n_units, dtype=np.int64)
    for u in order:  # greedy bin packing; one step per group, not per row
        f = int(np.argmin(load))
        unit_fold[u] = f
        load[f] += sizes[u]
    return unit_fold[codes]


def _holdout_split(train_rows: np.ndarray, codes, rng, fraction: float = 0.2):
    """Split training rows into (fit, validation) by whole groups; ``codes`` per row or None."""
    if codes is None:
        units = train_rows
        unit_of_row = np.arange(len(train_rows))
    else:
        units, unit_of_row = np.unique(codes[train_rows], return_inverse=True)
    n_val = max(1, int(round(fraction * len(units))))
    if len(units) < 2:
        return train_rows, train_rows[:0]
    val_units = np.zeros(len(units), dtype=bool)
    val_units[rng.choice(len(units), n_val, replace=False)] = True
    is_val = val_units[unit_of_row]
    return train_rows[~is_val], train_rows[is_val]


# ---------------------------------------------------------------------------------------------
# ridge: one eigendecomposition per training fold, every target and alpha
# ---------------------------------------------------------------------------------------------
@dataclass
class RidgeCVResult:
    """Out-of-fold ridge predictions.

    predictions : (n_rows, n_targets)
    alphas : (n_splits, n_targets), the alpha chosen in each training fold for each target
    """

    predictions: np.ndarray
    alphas: np.ndarray


def _fold_moments(X, Y, folds, n_splits):
    """Per-fold count, sums, Gram, cross-products and target sums of squares."""
    d, t = X.shape[1], Y.shape[1]
    counts = np.zeros(n_splits)
    xs, ys, yy = np.zeros((n_splits, d)), np.zeros((n_splits, t)), np.zeros((n_splits, t))
    gram, xy = np.zeros((n_splits, d, d)), np.zeros((n_splits, d, t))
    for f in range(n_splits):
        rows = np.flatnonzero(folds == f)
        Xf = np.asarray(X[rows], dtype=np.float64)
        Yf = Y[rows]
        counts[f] = len(rows)
        xs[f], ys[f], yy[f] = Xf.sum(0), Yf.sum(0), (Yf ** 2).sum(0)
        gram[f] = Xf.T @ Xf
        xy[f] = Xf.T @ Yf
    return counts, xs, ys, yy, gram, xy


def ridge_cv_predict(X, Y, folds, *, alphas=None, select: str = "gcv") -> RidgeCVResult:
    """Out-of-fold ridge predictions with a per-target alpha chosen inside each training fold.

    For training fold f the centred Gram ``G = V diag(s) V^T`` is decomposed once; with
    ``Q = V^T Xc^T Yc`` the coefficients for every alpha and target are
    ``W(alpha) = V diag(1 / (s + alpha)) Q``, and the GCV score
    ``RSS(alpha) / (1 - (df(alpha) + 1) / n)^2`` with ``df = sum s / (s + alpha)`` (the +1 is
    the unpenalized intercept) needs only ``s`` and ``Q``. ``select="loo"`` computes the exact
    leave-one-out error instead (``RidgeCV``'s criterion), which costs one more product of the
    training rows with ``V``.

    Parameters
    ----------
    X : array of shape (n_rows, dim)
    Y : array of shape (n_rows, n_targets)
    folds : int array of shape (n_rows,) (see :func:`group_folds`)
    alphas : array of shape (n_alphas,), optional
        Absolute penalties (> 0). Default: :data:`RELATIVE_ALPHAS` times the mean eigenvalue of
        each training fold's centred Gram.
    select : "gcv" or "loo"

    Returns
    -------
    RidgeCVResult
    """
    if select not in ("gcv", "loo"):
        raise ProbeInputError(f"select must be 'gcv' or 'loo', got {select!r}")
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    folds = np.asarray(folds)
    n_splits = int(folds.max()) + 1
    if alphas is not None:
        alphas = np.asarray(alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or np.any(alphas <= 0):
            raise ProbeInputError(f"alphas must be positive, got {alphas}")
    counts, xs, ys, yy, gram, xy = _fold_moments(X, Y, folds, n_splits)
    tot = [a.sum(0) for a in (counts, xs, ys, yy, gram, xy)]
    pred = np.empty_like(Y)
    chosen = np.empty((n_splits, Y.shape[1]))
    for f in range(n_splits):
        n, sx, sy, syy, G, XY = (t - a[f] for t, a in zip(tot, (counts, xs, ys, yy, gram, xy)))
        mx, my = sx / n, sy / n
        Gc = G - n * np.outer(mx, mx)
        XYc = XY - n * np.outer(mx, my)
        yyc = syy - n * my ** 2
        s, V = np.linalg.eigh(Gc)
        s = np.clip(s, 0.0, None)
        grid = alphas if alphas is not None else RELATIVE_ALPHAS * max(s.mean(), 1e-300)
        Q = V.T @ XYc                                       # (d, t)
        F = 1.0 / (s[:, None] + grid[None, :])              # (d, A)
        if select == "gcv":
            rss = yyc[:, None] - (Q ** 2).T @ (2 * F - s[:, None] * F ** 2)   # (t, A)
            df = (s[:, None] * F).sum(0) + 1.0
            denom = np.where(df < n, (1.0 - df / n) ** 2, np.nan)
            score = rss / denom
        else:
            score = _loo_scores(X, Y, folds != f, mx, my, V, Q, F)
        best = np.nanargmin(np.where(np.isfinite(score), score, np.nan), axis=1)
        chosen[f] = grid[best]
        W = V @ (F[:, best] * Q)                            # (d, t)
        test = np.flatnonzero(folds == f)
        pred[test] = (np.asarray(X[test], dtype=np.float64) - mx) @ W + my
    return RidgeCVResult(pred, chosen)


def _loo_scores(X, Y, train_mask, mx, my, V, Q, F):
    """Mean squared leave-one-out residual, shape (n_targets, n_alphas)."""
    rows = np.flatnonzero(train_mask)
    Z = (np.asarray(X[rows], dtype=np.float64) - mx) @ V   # (n, d)
    Yc = Y[rows] - my
    n = len(rows)
    H = 1.0 / n + (Z ** 2) @ F                             # hat diagonal per alpha, (n, A)
    out = np.empty((Y.shape[1], F.shape[1]))
    for a in range(F.shape[1]):
        resid = (Yc - Z @ (F[:, a, None] * Q)) / (1.0 - H[:, a, None])
        out[:, a] = np.mean(resid ** 2, axis=0)
    return out


# ---------------------------------------------------------------------------------------------
# multinomial logistic regression
# ---------------------------------------------------------------------------------------------
def _standardizer(X):
    mu = X.mean(0)
    sd = X.std(0)
    return mu, np.where(sd > 1e-12, sd, 1.0)


def _softmax_fit(X, y, n_classes, lam, w0=None, max_iter=100):
    """Minimise mean cross-entropy + lam/2 |W|^2 (bias unpenalized); returns flat (d+1)*C."""
    n, d = X.shape
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0

    def loss_grad(w):
        W = w[: d * n_classes].reshape(d, n_classes)
        b = w[d * n_classes:]
        logp = log_softmax(X @ W + b, axis=1)
        loss = -np.sum(onehot * logp) / n + 0.5 * lam * np.sum(W ** 2)
        R = (np.exp(logp) - onehot) / n
        gW = X.T @ R + lam * W
        return loss, np.concatenate([gW.ravel(), R.sum(0)])

    w0 = np.zeros((d + 1) * n_classes) if w0 is None else w0
    # L-BFGS-B's own vector updates are tiny BLAS calls; threaded BLAS on a shared machine
    # makes them ~20x slower than one thread, so the whole fit runs single-threaded.
    with threadpool_limits(limits=1):
        res = minimize(loss_grad, w0, jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter, "gtol": 1e-5})
    return res.x


def _softmax_logp(w, X, n_classes):
    d = X.shape[1]
    W = w[: d * n_classes].reshape(d, n_classes)
    return log_softmax(X @ W + w[d * n_classes:], axis=1)


def logistic_cv_predict(X, y, folds, *, n_classes=None, lambdas=None, groups=None, rng,
                        max_iter: int = 100):
    """Out-of-fold class log-probabilities of L2 multinomial logistic regression.

    In each training fold the features are standardized, the strength is chosen among
    ``lambdas`` (strongest first, warm-started; the path stops once the held-out log-loss
    rises 1 % above its best) by log-loss on a held-out 20 % of the training groups, and the
    model is refitted on all training rows.

    Parameters
    ----------
    X : array of shape (n_rows, dim)
    y : int array of shape (n_rows,), class codes in [0, n_classes)
    folds : int array of shape (n_rows,)
    n_classes : int, optional (default ``y.max() + 1``)
    lambdas : array of shape (n_lambdas,), optional (default :data:`DEFAULT_LAMBDAS`)
    groups : array of shape (n_rows,), optional; the inner split keeps groups together
    rng : numpy Generator or seed

    Returns
    -------
    logp : (n_rows, n_classes) held-out log-probabilities
    chosen : (n_splits,) the lambda chosen in each training fold
    """
    rng = as_generator(rng)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    lambdas = np.sort(np.asarray(DEFAULT_LAMBDAS if lambdas is None else lambdas, float))[::-1]
    codes = None if groups is None else group_codes(groups, len(y))[0]
    n_splits = int(folds.max()) + 1
    logp = np.empty((len(y), n_classes))
    chosen = np.empty(n_splits)
    for f in range(n_splits):
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        mu, sd = _standardizer(X[train])
        Z = (X - mu) / sd  # standardizing the held-out fold with training statistics only
        fit, val = _holdout_split(train, codes, rng)
        w, best, best_loss = None, lambdas[0], np.inf
        warm = {}
        for lam in lambdas:
            w = _softmax_fit(Z[fit], y[fit], n_classes, lam, w, max_iter)
            warm[lam] = w
            loss = -np.mean(_softmax_logp(w, Z[val], n_classes)[np.arange(len(val)), y[val]])
            if loss < best_loss:
                best, best_loss = lam, loss
            elif loss > best_loss * 1.01:
                break  # validation loss is unimodal in lambda in practice: weaker fits only cost
        w = _softmax_fit(Z[train], y[train], n_classes, best, warm[best], max_iter)
        chosen[f] = best
        logp[test] = _softmax_logp(w, Z[test], n_classes)
    return logp, chosen


# ---------------------------------------------------------------------------------------------
# one-hidden-layer MLP
# ---------------------------------------------------------------------------------------------
def mlp_cv_predict(X, T, folds, *, kind: str, n_classes=None, groups=None, rng,
                   hidden: int = 256, weight_decay: float = 1e-4, lr: float = 1e-3,
                   batch_size: int = 256, max_epochs: int = 100, patience: int = 5):
    """Out-of-fold predictions of a one-hidden-layer ReLU MLP.

    Inputs (and continuous targets) are standardized with training-fold statistics; training
    uses Adam with early stopping on a held-out 20 % of the training groups, keeping the best
    epoch. Randomness comes from ``rng`` through a private torch generator state.

    Parameters
    ----------
    X : array of shape (n_rows, dim)
    T : continuous targets of shape (n_rows, n_targets), or int class codes of shape (n_rows,)
    folds : int array of shape (n_rows,)
    kind : "continuous" or "categorical"

    Returns
    -------
    (n_rows, n_targets) predictions, or (n_rows, n_classes) log-probabilities
    """
    import torch

    rng = as_generator(rng)
    X = np.asarray(X, dtype=np.float64)
    categorical = kind == "categorical"
    if categorical:
        n_classes = int(np.max(T)) + 1 if n_classes is None else n_classes
        out_dim = n_classes
    else:
        T = np.asarray(T, dtype=np.float64)
        T = T[:, None] if T.ndim == 1 else T
        out_dim = T.shape[1]
    codes = None if groups is None else group_codes(groups, len(X))[0]
    out = np.empty((len(X), out_dim))
    threads = torch.get_num_threads()
    # A probe-sized MLP gains nothing from intra-op threads and loses much to contention.
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            _mlp_folds(torch, X, T, folds, out, categorical, out_dim, codes, rng, hidden,
                       weight_decay, lr, batch_size, max_epochs, patience)
    finally:
        torch.set_num_threads(threads)
    return out


@preserves_torch_rng
def _mlp_folds(torch, X, T, folds, out, categorical, out_dim, codes, rng, hidden, weight_decay,
               lr, batch_size, max_epochs, patience):
    """Fill ``out`` fold by fold (see :func:`mlp_cv_predict`)."""
    n_splits = int(folds.max()) + 1
    for f in range(n_splits):
        torch.manual_seed(child_seed(rng))
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        mu, sd = _standardizer(X[train])
        Z = torch.as_tensor((X - mu) / sd, dtype=torch.float32)
        if categorical:
            target = torch.as_tensor(np.asarray(T), dtype=torch.long)
            loss_fn = torch.nn.functional.cross_entropy
        else:
            tmu, tsd = _standardizer(T[train])
            target = torch.as_tensor((T - tmu) / tsd, dtype=torch.float32)
            loss_fn = torch.nn.functional.mse_loss
        fit, val = _holdout_split(train, codes, rng)
        net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(hidden, out_dim))
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        best_loss, best_state, bad = np.inf, None, 0
        fit_t = torch.as_tensor(fit)
        for _ in range(max_epochs):
            net.train()
            for idx in fit_t[torch.randperm(len(fit_t))].split(batch_size):
                opt.zero_grad()
                loss_fn(net(Z[idx]), target[idx]).backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                val_loss = float(loss_fn(net(Z[val]), target[val])) if len(val) else 0.0
            if val_loss < best_loss - 1e-6:
                best_loss, bad = val_loss, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    break
        net.load_state_dict(best_state)
        with torch.no_grad():
            o = net(Z[test]).double().numpy()
        out[test] = log_softmax(o, axis=1) if categorical else o * tsd + tmu


# ---------------------------------------------------------------------------------------------
# metrics from (weighted) sufficient sums, so bootstrap replicates are one matrix product
# ---------------------------------------------------------------------------------------------
def _regression_rows(Y, P):
    """Per-row sums for regression metrics: (n, 6, t) = [1, y, y^2, p, p^2, y p]."""
    return np.stack([np.ones_like(Y), Y, Y ** 2, P, P ** 2, Y * P], axis=1)


def _regression_from_sums(S):
    """r2, pearson_r, mse from sums of shape (..., 6, t)."""
    n, sy, syy, sp, spp, syp = (S[..., i, :] for i in range(6))
    with np.errstate(invalid="ignore", divide="ignore"):
        ss_tot = syy - sy ** 2 / n
        ss_res = syy - 2 * syp + spp
        cov = syp - sy * sp / n
        var_p = spp - sp ** 2 / n
        r = cov / np.sqrt(ss_tot * var_p)
        return {"r2": 1.0 - ss_res / ss_tot, "pearson_r": np.where(var_p > 1e-12 * np.abs(spp),
                                                                  r, np.nan),
                "mse": ss_res / n}


def _classification_rows(y, pred, n_classes):
    """Per-row sums for classification metrics: (n, 3, C) = [true one-hot, pred one-hot, hit]."""
    n = len(y)
    R = np.zeros((n, 3, n_classes))
    R[np.arange(n), 0, y] = 1.0
    R[np.arange(n), 1, pred] = 1.0
    R[:, 2, :] = R[:, 0, :] * R[:, 1, :]
    return R


def _classification_from_sums(S):
    """accuracy, balanced_accuracy, macro_f1 from sums of shape (..., 3, C)."""
    true, pred, hit = S[..., 0, :], S[..., 1, :], S[..., 2, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = hit.sum(-1) / true.sum(-1)
        present = true > 0
        recall = np.where(present, hit / np.where(present, true, 1), 0.0)
        bal = recall.sum(-1) / present.sum(-1)
        seen = (true + pred) > 0
        f1 = np.where(seen, 2 * hit / np.where(seen, true + pred, 1), 0.0)
        macro = f1.sum(-1) / seen.sum(-1)
    return {"accuracy": acc, "balanced_accuracy": bal, "macro_f1": macro}


def regression_scores(Y, P) -> dict:
    """R^2, Pearson r and MSE per target; Y and P of shape (n_rows, n_targets) -> dict of (t,)."""
    Y, P = np.atleast_2d(np.asarray(Y, float).T).T, np.atleast_2d(np.asarray(P, float).T).T
    return _regression_from_sums(_regression_rows(Y, P).sum(0))


def classification_scores(y, pred, n_classes=None) -> dict:
    """Accuracy, balanced accuracy and macro-F1 of int labels y, pred of shape (n_rows,)."""
    y, pred = np.asarray(y), np.asarray(pred)
    n_classes = int(max(y.max(), pred.max())) + 1 if n_classes is None else n_classes
    return {k: float(v) for k, v in
            _classification_from_sums(_classification_rows(y, pred, n_classes).sum(0)).items()}


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


# ---------------------------------------------------------------------------------------------
# control tasks and MDL
# ---------------------------------------------------------------------------------------------
def control_task_labels(types, y, *, rng) -> np.ndarray:
    """Hewitt & Liang (2019) control task: one fixed random label per type.

    Each distinct value of ``types`` (shape (n_rows,), e.g. the word form) gets a label drawn
    from the empirical distribution of ``y`` (int codes, shape (n_rows,)); every row of that
    type gets it. Returns int codes of shape (n_rows,).
    """
    rng = as_generator(rng)
    codes, n_types = group_codes(types, len(y))
    return rng.choice(np.asarray(y), size=n_types, replace=True)[codes]


def online_codelength(X, y, *, n_classes=None, groups=None, lam=1e-3, rng,
                      fractions=MDL_FRACTIONS, max_iter: int = 100) -> tuple[float, float]:
    """Online (prequential) code length of labels given X, in bits (Voita & Titov 2020).

    Rows are ordered by a random permutation of ``groups`` (rows if None); the first block
    is coded uniformly (log2 K bits per label), each later block by a multinomial logistic
    model (strength ``lam``) fitted on all earlier rows.

    Parameters
    ----------
    X : array of shape (n_rows, dim)
    y : int array of shape (n_rows,)

    Returns
    -------
    codelength_bits, compression (uniform code length / online code length)
    """
    rng = as_generator(rng)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    n = len(y)
    K = int(y.max()) + 1 if n_classes is None else n_classes
    codes, n_units = group_codes(groups, n)
    unit_rank = np.empty(n_units, dtype=np.int64)
    unit_rank[rng.permutation(n_units)] = np.arange(n_units)
    order = np.argsort(unit_rank[codes], kind="stable")
    X, y = X[order], y[order]
    stops = np.unique(np.clip(np.ceil(np.asarray(fractions) * n).astype(int), 2, n))
    bits = stops[0] * math.log2(K)
    w = None
    for start, stop in zip(stops[:-1], stops[1:]):
        mu, sd = _standardizer(X[:start])
        w = _softmax_fit((X[:start] - mu) / sd, y[:start], K, lam, w, max_iter)
        logp = _softmax_logp(w, (X[start:stop] - mu) / sd, K)
        bits += -np.sum(logp[np.arange(stop - start), y[start:stop]]) / math.log(2)
    return float(bits), float(n * math.log2(K) / bits)


# ---------------------------------------------------------------------------------------------
# one call for other probes
# ---------------------------------------------------------------------------------------------
@dataclass
class Decoded:
    """What :func:`decode` returns.

    scores : dict metric name -> array of shape (n_targets, 3) holding value, CI low, CI high
        (one row for a categorical target).
    predictions : (n_rows, n_targets) out-of-fold predictions, or (n_rows,) class codes
    folds : (n_rows,) fold of each row
    """

    scores: dict
    predictions: np.ndarray
    folds: np.ndarray


def decode(X, Y, *, kind: str = "continuous", groups=None, n_splits: int = 5, folds=None,
           model: str = "linear", alphas=None, select: str = "gcv", lambdas=None,
           n_boot: int = 500, level: float = 0.95, rng=0) -> Decoded:
    """Held-out decodability of ``Y`` from ``X`` with group-aware CV and cluster-bootstrap CIs.

    Parameters
    ----------
    X : array of shape (n_rows, dim)
    Y : continuous targets of shape (n_rows, n_targets) or (n_rows,); or labels of shape
        (n_rows,) (any dtype) when ``kind="categorical"``. Must be finite / non-empty.
    kind : "continuous" (ridge, r2 / pearson_r / mse) or "categorical" (multinomial logistic,
        accuracy / balanced_accuracy / macro_f1)
    groups : array of shape (n_rows,), optional; rows of a group share a fold and are
        resampled together
    n_splits : int; folds : int array of shape (n_rows,), optional (overrides n_splits)
    model : "linear" or "mlp"
    rng : numpy Generator or int seed

    Returns
    -------
    Decoded
    """
    rng = as_generator(rng)
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if model not in ("linear", "mlp"):
        raise ProbeInputError(f"model must be 'linear' or 'mlp', got {model!r}")
    if folds is None:
        folds = group_folds(n, n_splits, groups=groups, rng=rng)
    boot = ClusterBootstrap(groups, n, n_boot=n_boot, rng=rng, level=level)
    if kind == "continuous":
        Y = np.asarray(Y, dtype=np.float64)
        Y = Y[:, None] if Y.ndim == 1 else Y
        if not np.isfinite(Y).all():
            row, col = np.argwhere(~np.isfinite(Y))[0]
            raise ProbeInputError(f"Y row {row} column {col} is not finite; drop such rows first")
        if model == "linear":
            P = ridge_cv_predict(X, Y, folds, alphas=alphas, select=select).predictions
        else:
            P = mlp_cv_predict(X, Y, folds, kind="continuous", groups=groups, rng=rng)
        full, bs = boot.sums(_regression_rows(Y, P))
        f, b = _regression_from_sums(full), _regression_from_sums(bs)
        scores = {k: np.array([(float(f[k][j]), *boot.interval(f[k][j], b[k][:, j]))
                               for j in range(Y.shape[1])]) for k in f}
        return Decoded(scores, P, folds)
    if kind != "categorical":
        raise ProbeInputError(f"kind must be 'continuous' or 'categorical', got {kind!r}")
    _, y = np.unique(np.asarray(Y), return_inverse=True)
    K = int(y.max()) + 1
    if model == "linear":
        logp, _ = logistic_cv_predict(X, y, folds, n_classes=K, lambdas=lambdas, groups=groups,
                                      rng=rng)
    else:
        logp = mlp_cv_predict(X, y, folds, kind="categorical", n_classes=K, groups=groups,
                              rng=rng)
    pred = logp.argmax(1)
    full, bs = boot.sums(_classification_rows(y, pred, K))
    f, b = _classification_from_sums(full), _classification_from_sums(bs)
    return Decoded({k: np.array([(float(f[k]), *boot.interval(f[k], b[k]))]) for k in f}, pred,
                   folds)


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
    shuffled, trivial : bool, default True
        Report the shuffled-target baseline and the mean/majority predictor.
    mdl : bool, default False
        Online code length (categorical targets), task and control.
    missing : "error" or "drop"
        What to do with NaN/empty targets.
    rare_classes : "error" or "drop"; min_class_size : int
        Classes with fewer rows than ``min_class_size``.
    n_boot : int, default 500; level : float, default 0.95
    """

    name = "linear-decodability"
    summary = ("Held-out linear/MLP decodability of item columns (ridge, logistic) with "
               "group-aware CV, shuffled/control/trivial baselines and selectivity.")
    parameter_constraints = {
        "targets": [str, SequenceOf(str)],
        "kind": [Options({"auto", "continuous", "categorical"})],
        "angles": [str, SequenceOf(str)], "angle_unit": [Options({"rad", "deg"})],
        "group": [str, None], "control": [str, None], "n_splits": [Interval(int, 2, None)],
        "alphas": [SequenceOf(POSITIVE, min_len=1), None], "select": [Options({"gcv", "loo"})],
        "lambdas": [SequenceOf(POSITIVE, min_len=1), None], "mlp": [bool],
        "mlp_hidden": [POSITIVE_INT], "mlp_max_epochs": [POSITIVE_INT], "shuffled": [bool],
        "trivial": [bool], "mdl": [bool], "missing": [Options({"error", "drop"})],
        "rare_classes": [Options({"error", "drop"})], "min_class_size": [POSITIVE_INT],
        "n_boot": [POSITIVE_INT], "level": [OPEN_UNIT],
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
                             "control": "episode", "n_splits": 3, "mlp_hidden": 8,
                             "mlp_max_epochs": 3, "mdl": True, "n_boot": 20})

    def __init__(self, targets=(), kind="auto", angles=(), angle_unit="rad", group=None,
                 control=None, n_splits=5, alphas=None, select="gcv", lambdas=None, mlp=True,
                 mlp_hidden=256, mlp_max_epochs=100, shuffled=True, trivial=True, mdl=False,
                 missing="error", rare_classes="error", min_class_size=2, n_boot=500,
                 level=0.95):
        self.targets = targets
        self.kind = kind
        self.angles = angles
        self.angle_unit = angle_unit
        self.group = group
        self.control = control
        self.n_splits = n_splits
        self.alphas = alphas
        self.select = select
        self.lambdas = lambdas
        self.mlp = mlp
        self.mlp_hidden = mlp_hidden
        self.mlp_max_epochs = mlp_max_epochs
        self.shuffled = shuffled
        self.trivial = trivial
        self.mdl = mdl
        self.missing = missing
        self.rare_classes = rare_classes
        self.min_class_size = min_class_size
        self.n_boot = n_boot
        self.level = level

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
        ctrl = {}
        if self.control and cats:
            types = ctx.column(self.control)[rows]
            ctrl = {c: control_task_labels(types, cat_codes[c], rng=ctx.rng) for c in cats}
        mlp_seed = child_seed(ctx.rng)
        metrics, info = [], {"kinds": kinds, "n_used": n, "dropped": dropped,
                             "n_units": boot.n_units, "unit": boot.unit, "alphas": {},
                             "lambdas": {}, "classes": {c: classes[c].tolist() for c in cats}}
        for layer, X_all in ctx.iter_layers():
            X = X_all[rows]
            rng_layer = as_generator(mlp_seed)  # same MLP/inner-split draws for every layer
            if Y is not None:
                metrics += self._continuous(layer, X, Y, names, angles, folds, groups, perm,
                                            boot, rng_layer, info)
            for c in cats:
                metrics += self._categorical(layer, X, c, cat_codes[c], len(classes[c]),
                                             ctrl.get(c), folds, groups, perm, boot,
                                             rng_layer, info)
        return self.result(ctx, metrics, {}, **info)

    def _continuous(self, layer, X, Y, names, angles, folds, groups, perm, boot, rng, info):
        t = Y.shape[1]
        # Shuffled targets ride along as extra columns: the same decomposition serves them.
        Yall = np.hstack([Y, Y[perm]]) if self.shuffled else Y
        ridge = ridge_cv_predict(X, Yall, folds, alphas=self.alphas, select=self.select)
        info["alphas"][layer] = np.exp(np.log(ridge.alphas[:, :t]).mean(0)).tolist()
        preds = {"linear": (Y, ridge.predictions[:, :t])}
        if self.mlp:
            preds["mlp"] = (Y, mlp_cv_predict(X, Y, folds, kind="continuous", groups=groups,
                                              rng=rng, hidden=self.mlp_hidden,
                                              max_epochs=self.mlp_max_epochs))
        if self.shuffled:
            preds["shuffled"] = (Yall[:, t:], ridge.predictions[:, t:])
        if self.trivial:
            means = np.stack([Y[folds != f].mean(0) for f in range(self.n_splits)])
            preds["mean"] = (Y, means[folds])
        stats = {}
        for key, (T, P) in preds.items():
            full, bs = boot.sums(_regression_rows(T, P))
            stats[key] = (_regression_from_sums(full), _regression_from_sums(bs))
            for a in angles:
                i, j = names.index(f"{a}:sin"), names.index(f"{a}:cos")
                err = np.abs(_wrap(np.arctan2(P[:, i], P[:, j]) - np.arctan2(T[:, i], T[:, j])))
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

    def _categorical(self, layer, X, target, y, K, yc, folds, groups, perm, boot, rng, info):
        lam = self.lambdas
        logp, chosen = logistic_cv_predict(X, y, folds, n_classes=K, lambdas=lam, groups=groups,
                                           rng=rng)
        info["lambdas"][f"{layer}:{target}"] = chosen.tolist()
        preds = {("linear", "task"): (y, logp.argmax(1))}
        if yc is not None:
            lc, _ = logistic_cv_predict(X, yc, folds, n_classes=K, lambdas=lam, groups=groups,
                                        rng=rng)
            preds[("linear", "control")] = (yc, lc.argmax(1))
        if self.mlp:
            kw = dict(kind="categorical", n_classes=K, groups=groups, rng=rng,
                      hidden=self.mlp_hidden, max_epochs=self.mlp_max_epochs)
            preds[("mlp", "task")] = (y, mlp_cv_predict(X, y, folds, **kw).argmax(1))
            if yc is not None:
                preds[("mlp", "control")] = (yc, mlp_cv_predict(X, yc, folds, **kw).argmax(1))
        if self.shuffled:
            ys = y[perm]
            ls, _ = logistic_cv_predict(X, ys, folds, n_classes=K, lambdas=lam, groups=groups,
                                        rng=rng)
            preds[("linear", "shuffled")] = (ys, ls.argmax(1))
        if self.trivial:
            majority = np.array([np.bincount(y[folds != f], minlength=K).argmax()
                                 for f in range(self.n_splits)])
            preds[("linear", "majority")] = (y, majority[folds])
        stats = {}
        for key, (T, P) in preds.items():
            full, bs = boot.sums(_classification_rows(T, P, K))
            stats[key] = (_classification_from_sums(full), _classification_from_sums(bs))
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
            for task, labels in (("task", y), ("control", yc)):
                if labels is None:
                    continue
                bits, comp = online_codelength(X, labels, n_classes=K, groups=groups,
                                               lam=lam_mdl, rng=as_generator(child_seed(rng)))
                base = {} if task == "task" else {"baseline": "control"}
                # MDL has no interval: one code length per task, over all rows
                out.append(boot.metric("mdl_codelength", bits, higher_is_better=False,
                                       layer=layer, target=target, **base))
                out.append(boot.metric("mdl_compression", comp, higher_is_better=True,
                                       layer=layer, target=target, **base))
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

        def series(name, target, **lab):
            s = result.series(name, at=layers, target=target, **lab)
            return s if s.found.any() else None

        def curve(ax, s, label, color, ls="-", marker="o"):
            if s is None:
                return
            ax.plot(x, s.values, ls=ls, marker=marker, ms=3, color=color, label=label)
            ax.fill_between(x, *s.band(), color=color, alpha=0.2, lw=0)

        for i, (target, metric, trivial) in enumerate(panels):
            ax = axes[i // ncols][i % ncols]
            sh = series(metric, target, baseline="shuffled")
            if sh is not None:
                baseline_band(ax, x, np.nan_to_num(sh.ci_low), np.nan_to_num(sh.ci_high),
                              label="shuffled targets (95% CI)")
            tr = series(metric, target, baseline=trivial)
            if tr is not None:
                ax.plot(x, tr.values, color=BASELINE_COLOR, ls=":", label=f"{trivial} predictor")
            curve(ax, series(metric, target, baseline="control"), "control task",
                  PALETTE[1], "--", "s")
            curve(ax, series(metric, target, baseline="random-init"), "random-init twin",
                  PALETTE[3], "-.", "^")
            curve(ax, series("mlp_" + metric, target), "MLP probe", PALETTE[2], "--", "D")
            curve(ax, series(metric, target), "linear probe", PALETTE[0])
            ax.set_title(target)
            ax.set_xticks(x, layers, rotation=30 if len(layers) > 8 else 0)
            ax.set_xlabel("layer")
            ax.set_ylabel({"r2": "held-out $R^2$", "accuracy": "held-out accuracy"}[metric])
            if metric == "r2":
                ax.set_ylim(max(-0.1, ax.get_ylim()[0]), 1.02)
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
                ax.set_title(f"{cats[j]}: selectivity (task - control)")
                ax.set_xticks(x, layers)
                ax.set_xlabel("layer")
                ax.set_ylabel("accuracy difference")
        handles = {}
        for ax in fig.axes:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        if has_sel:
            handles = {("selectivity: " + k if k in ("linear", "MLP") else k): v
                       for k, v in handles.items()}
        fig.legend(list(handles.values()), list(handles.keys()), loc="outside lower center",
                   ncol=min(len(handles), 4), frameon=False, fontsize=6)
        return fig
