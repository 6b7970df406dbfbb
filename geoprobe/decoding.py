"""Cross-validated decoding engine: group-aware folds, ridge / logistic / MLP out-of-fold
predictions, their scores, control tasks and online code length. Plain functions on arrays,
shared by the probes that fit read-outs (``linear-decodability``, ``fracture``)::

    from geoprobe.decoding import (
        group_folds, ridge_cv_predict, logistic_cv_predict, mlp_cv_predict,
        regression_scores, classification_scores, control_task_labels, online_codelength,
        decode,
    )
    scores = decode(X, Y, kind="continuous", groups=episode_ids, rng=0).scores
    r2, r2_low, r2_high = scores["r2"].T          # one entry per target column

The definitions (held-out metrics, baselines, MDL) are in :mod:`geoprobe.probes.decodability`.

Choices
-------
* Ridge regularization is chosen per target by generalized cross-validation (GCV, the default)
  or exact leave-one-out (``select="loo"``, what scikit-learn's ``RidgeCV`` does) from one
  eigendecomposition of each training fold's centred Gram matrix, reused for every target and
  every alpha. Training-fold Gram matrices are the total minus the held-out fold's, so a layer
  costs one pass over its rows (GCV) whatever the number of folds, targets and alphas, plus
  one to predict. Both passes read row chunks in float64: a memory-mapped layer larger than
  RAM streams (logistic regression and the MLP hold their rows in memory).
* Logistic regression strength is chosen on a held-out 20 % of the training folds' groups
  (by log-loss), then refitted on all training rows. Features are standardized with the
  training folds' mean and standard deviation.
* The default alpha grid is relative: ``alpha = r * trace(G) / d`` for
  ``r`` in ``10^-6 .. 10^2`` (G the training fold's centred Gram), so it does not depend on the
  scale of the embeddings; pass ``alphas`` to give absolute values.
* Metrics come from per-row sufficient sums (:func:`regression_rows`,
  :func:`classification_rows`), so a bootstrap replicate is one weighted sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax

from . import threads
from .errors import ProbeInputError
from .device import resolve_device, to_numpy
from .stats import ClusterBootstrap, as_generator, child_seed, group_codes, preserves_torch_rng
from .streaming import CHUNK_ROWS

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


def _fold_moments(X, Y, folds, n_splits, chunk_rows):
    """Per-fold count, sums, Gram, cross-products and target sums of squares, from one pass
    over row chunks of X (memory-mapped or not), accumulated in float64."""
    d, t = X.shape[1], Y.shape[1]
    counts = np.zeros(n_splits)
    xs, ys, yy = np.zeros((n_splits, d)), np.zeros((n_splits, t)), np.zeros((n_splits, t))
    gram, xy = np.zeros((n_splits, d, d)), np.zeros((n_splits, d, t))
    for rows, f, Xf in _fold_chunks(X, folds, chunk_rows):
        Yf = Y[rows]
        counts[f] += len(rows)
        xs[f] += Xf.sum(0)
        ys[f] += Yf.sum(0)
        yy[f] += (Yf ** 2).sum(0)
        gram[f] += Xf.T @ Xf
        xy[f] += Xf.T @ Yf
    return counts, xs, ys, yy, gram, xy


def _fold_chunks(X, folds, chunk_rows):
    """Yield ``(rows, f, Xf)``: for each row chunk of X and each fold f in it, the fold's rows
    there (int indices, in order) and their vectors in float64, shape (len(rows), dim)."""
    for start in range(0, X.shape[0], chunk_rows):
        chunk = np.asarray(X[start:start + chunk_rows], dtype=np.float64)
        fc = folds[start:start + chunk_rows]
        for f in np.unique(fc):
            mask = fc == f
            yield start + np.flatnonzero(mask), int(f), chunk[mask]


def ridge_cv_predict(X, Y, folds, *, alphas=None, select: str = "gcv",
                     chunk_rows: int = CHUNK_ROWS) -> RidgeCVResult:
    """Out-of-fold ridge predictions with a per-target alpha chosen inside each training fold.

    For training fold f the centred Gram ``G = V diag(s) V^T`` is decomposed once; with
    ``Q = V^T Xc^T Yc`` the coefficients for every alpha and target are
    ``W(alpha) = V diag(1 / (s + alpha)) Q``, and the GCV score
    ``RSS(alpha) / (1 - (df(alpha) + 1) / n)^2`` with ``df = sum s / (s + alpha)`` (the +1 is
    the unpenalized intercept) needs only ``s`` and ``Q``. ``select="loo"`` computes the exact
    leave-one-out error instead (``RidgeCV``'s criterion), which costs one more pass over the
    training rows per fold.

    X is read in row chunks and never copied whole: one pass accumulates every fold's
    ``X^T X``, ``X^T Y`` and sums in float64 (training folds are the total minus the held-out
    fold), a second pass predicts each chunk's rows with their fold's coefficients. Memory is
    ``O(n_splits * (dim + n_targets)^2 + chunk_rows * dim + n_rows * n_targets)`` whatever the
    number of rows, so X may be a memory-mapped layer larger than RAM.

    Parameters
    ----------
    X : array of shape (n_rows, dim), memory-mapped or not
    Y : array of shape (n_rows, n_targets)
    folds : int array of shape (n_rows,) (see :func:`group_folds`)
    alphas : array of shape (n_alphas,), optional
        Absolute penalties (> 0). Default: :data:`RELATIVE_ALPHAS` times the mean eigenvalue of
        each training fold's centred Gram.
    select : "gcv" or "loo"
    chunk_rows : int
        Rows of X read at a time.

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
    moments = _fold_moments(X, Y, folds, n_splits, chunk_rows)
    tot = [a.sum(0) for a in moments]
    chosen = np.empty((n_splits, Y.shape[1]))
    fits = []  # (training mean of x, of y, coefficients (d, t)) per fold
    for f in range(n_splits):
        n, sx, sy, syy, G, XY = (t - a[f] for t, a in zip(tot, moments))
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
            score = _loo_scores(X, Y, folds != f, mx, my, V, Q, F, chunk_rows)
        best = np.nanargmin(np.where(np.isfinite(score), score, np.nan), axis=1)
        chosen[f] = grid[best]
        fits.append((mx, my, V @ (F[:, best] * Q)))
    pred = np.empty_like(Y)
    for rows, f, Xf in _fold_chunks(X, folds, chunk_rows):
        mx, my, W = fits[f]
        pred[rows] = (Xf - mx) @ W + my
    return RidgeCVResult(pred, chosen)


def _loo_scores(X, Y, train_mask, mx, my, V, Q, F, chunk_rows):
    """Mean squared leave-one-out residual, shape (n_targets, n_alphas), from one pass over
    the training rows in chunks."""
    n = int(train_mask.sum())
    total = np.zeros((Y.shape[1], F.shape[1]))
    for rows, _, Xf in _fold_chunks(X, train_mask.astype(np.int64), chunk_rows):
        if not train_mask[rows[0]]:
            continue
        Z = (Xf - mx) @ V                                  # (rows, d)
        Yc = Y[rows] - my
        H = 1.0 / n + (Z ** 2) @ F                         # hat diagonal per alpha, (rows, A)
        for a in range(F.shape[1]):
            resid = (Yc - Z @ (F[:, a, None] * Q)) / (1.0 - H[:, a, None])
            total[:, a] += np.sum(resid ** 2, axis=0)
    return total / n


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
    with threads.single_blas_thread():
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
                   batch_size: int = 256, max_epochs: int = 100, patience: int = 5,
                   device="cpu"):
    """Out-of-fold predictions of a one-hidden-layer ReLU MLP.

    Inputs (and continuous targets) are standardized with training-fold statistics; training
    uses Adam with early stopping on a held-out 20 % of the training groups, keeping the best
    epoch. Randomness comes from ``rng`` through a private torch generator state. Threads
    follow :func:`geoprobe.threads.policy` (and are restored on return).

    Parameters
    ----------
    X : array of shape (n_rows, dim)
    T : continuous targets of shape (n_rows, n_targets), or int class codes of shape (n_rows,)
    folds : int array of shape (n_rows,)
    kind : "continuous" or "categorical"
    device : where the MLPs train: "cpu" (default), "cuda", "cuda:N", "mps" or "auto". The
        weights are initialised and the mini-batches shuffled by the CPU generator, so a seed
        gives the same start on every device; training is float32 everywhere (no float64 on
        MPS), predictions come back and are upcast on the CPU.

    Returns
    -------
    (n_rows, n_targets) predictions, or (n_rows, n_classes) log-probabilities
    """
    import torch

    device = resolve_device(device)
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
    with threads.policy(), torch.random.fork_rng(devices=[]):
        _mlp_folds(torch, X, T, folds, out, categorical, out_dim, codes, rng, hidden,
                   weight_decay, lr, batch_size, max_epochs, patience, device)
    return out


@preserves_torch_rng
def _mlp_folds(torch, X, T, folds, out, categorical, out_dim, codes, rng, hidden, weight_decay,
               lr, batch_size, max_epochs, patience, device):
    """Fill ``out`` fold by fold (see :func:`mlp_cv_predict`)."""
    n_splits = int(folds.max()) + 1
    for f in range(n_splits):
        torch.manual_seed(child_seed(rng))
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        mu, sd = _standardizer(X[train])
        Z = torch.as_tensor((X - mu) / sd, dtype=torch.float32).to(device)
        if categorical:
            target = torch.as_tensor(np.asarray(T), dtype=torch.long).to(device)
            loss_fn = torch.nn.functional.cross_entropy
        else:
            tmu, tsd = _standardizer(T[train])
            target = torch.as_tensor((T - tmu) / tsd, dtype=torch.float32).to(device)
            loss_fn = torch.nn.functional.mse_loss
        fit, val = _holdout_split(train, codes, rng)
        # built on the CPU (the seeded initialisation is the same on every device), then moved
        net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(hidden, out_dim)).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        best_loss, best_state, bad = np.inf, None, 0
        fit_t = torch.as_tensor(fit)
        for _ in range(max_epochs):
            net.train()
            for idx in fit_t[torch.randperm(len(fit_t))].to(device).split(batch_size):
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
            o = to_numpy(net(Z[test])).astype(np.float64)
        out[test] = log_softmax(o, axis=1) if categorical else o * tsd + tmu


# ---------------------------------------------------------------------------------------------
# metrics from (weighted) sufficient sums, so bootstrap replicates are one matrix product
# ---------------------------------------------------------------------------------------------
def regression_rows(Y, P):
    """Per-row sums for regression metrics: (n, 6, t) = [1, y, y^2, p, p^2, y p]."""
    return np.stack([np.ones_like(Y), Y, Y ** 2, P, P ** 2, Y * P], axis=1)


def regression_from_sums(S):
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


def classification_rows(y, pred, n_classes):
    """Per-row sums for classification metrics: (n, 3, C) = [true one-hot, pred one-hot, hit]."""
    n = len(y)
    R = np.zeros((n, 3, n_classes))
    R[np.arange(n), 0, y] = 1.0
    R[np.arange(n), 1, pred] = 1.0
    R[:, 2, :] = R[:, 0, :] * R[:, 1, :]
    return R


def classification_from_sums(S):
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
    return regression_from_sums(regression_rows(Y, P).sum(0))


def classification_scores(y, pred, n_classes=None) -> dict:
    """Accuracy, balanced accuracy and macro-F1 of int labels y, pred of shape (n_rows,)."""
    y, pred = np.asarray(y), np.asarray(pred)
    n_classes = int(max(y.max(), pred.max())) + 1 if n_classes is None else n_classes
    return {k: float(v) for k, v in
            classification_from_sums(classification_rows(y, pred, n_classes).sum(0)).items()}


def wrap_angle(a):
    """Angles (any shape) wrapped into [-pi, pi)."""
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


def assignment_draws(n_assignments: int, n_boot: int, *, rng) -> np.ndarray:
    """How often each of ``n_assignments`` control assignments is drawn in each of ``n_boot``
    bootstrap replicates (with replacement, ``n_assignments`` draws per replicate): int array
    (n_boot, n_assignments) for :func:`pool_assignments`."""
    rng = as_generator(rng)
    return rng.multinomial(n_assignments, np.full(n_assignments, 1.0 / n_assignments),
                           size=n_boot)


def pool_assignments(values, samples, draws) -> tuple[float, np.ndarray]:
    """Mean of a statistic over random control assignments, with two-stage bootstrap samples.

    Parameters
    ----------
    values : (n_assignments,), the statistic on the full sample for each assignment
    samples : (n_boot, n_assignments), its cluster-bootstrap replicates for each assignment
        (the same unit replicates for every assignment)
    draws : (n_boot, n_assignments), from :func:`assignment_draws`

    Returns
    -------
    mean over assignments, and (n_boot,) replicates of it in which replicate b resamples the
    units (replicate b of each assignment) *and* the assignments (``draws[b]``): their interval
    covers both the evaluation sample and the random draw of the control labels. With one
    assignment they are that assignment's replicates.
    """
    values, samples = np.asarray(values, float), np.asarray(samples, float)
    return float(values.mean()), (draws * samples).sum(1) / draws.sum(1)


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
# one call: folds, fit, scores and intervals
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
        full, bs = boot.sums(regression_rows(Y, P))
        f, b = regression_from_sums(full), regression_from_sums(bs)
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
    full, bs = boot.sums(classification_rows(y, pred, K))
    f, b = classification_from_sums(full), classification_from_sums(bs)
    return Decoded({k: np.array([(float(f[k]), *boot.interval(f[k], b[k]))]) for k in f}, pred,
                   folds)
