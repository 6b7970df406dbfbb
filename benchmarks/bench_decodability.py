"""Benchmark: a layer x target ridge sweep, geoprobe's closed-form path against sklearn RidgeCV.

The sweep: ``--layers`` layers of ``--n`` x ``--dim`` embeddings, ``--targets`` continuous
targets, 5-fold CV, the same 17 absolute alphas, alpha chosen per target inside each training
fold. Three ways:

* ``geoprobe (loo)``: :func:`ridge_cv_predict` with ``select="loo"``, RidgeCV's own criterion,
  so alphas and predictions must agree with the baselines to rounding;
* ``geoprobe (gcv)``: the default GCV criterion (one pass over a layer's rows), always on
  every layer;
* ``sklearn multi``: one multi-target ``RidgeCV(alphas, alpha_per_target=True)`` per layer x
  fold, the baseline a user would run (the headline ratio): scikit-learn's RidgeCV takes all
  targets at once, does one eigendecomposition of the fold's Gram matrix (n > d: of X^T X,
  via its ``gcv_mode='auto'``), evaluates the exact leave-one-out error of every alpha for
  every target from it, and refits at each target's best alpha;
* ``sklearn loop``: ``RidgeCV(alphas).fit`` per layer x target x fold, a weaker baseline
  reported second (it repeats the decomposition for every target).

Every method runs with geoprobe's thread policy (one BLAS thread by default: the machine is
shared, threads would only measure the neighbours; ``--threads`` to change it).
``--baseline-layers K`` times every method but ``geoprobe (gcv)`` on the first K layers only
and scales its time by ``layers / K``, and ``--loop-targets M`` times the sklearn loop on M
targets and scales by ``targets / M`` (every layer and every target costs the same: same shape,
same alphas); R^2 is compared where all methods ran. Prints wall and CPU seconds, the ratios,
the largest difference in held-out R^2 from the sklearn loop, and the peak resident memory;
``--write`` stores the table in ``benchmarks/results/decodability.md`` (``--out`` elsewhere).

    python benchmarks/bench_decodability.py            # the full 7 x 10 on 50,000 x 384
    python benchmarks/bench_decodability.py --quick    # a quick run
    python benchmarks/bench_decodability.py --smoke --out /tmp/d.md   # seconds: does it run?
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
from _common import Run
from sklearn.linear_model import RidgeCV

from geoprobe.decoding import group_folds, regression_scores, ridge_cv_predict

ALPHAS = np.logspace(-2, 6, 17)


def make_layer(i, n, dim, n_targets, seed):
    """Embeddings of one layer and targets linear in them with rising noise (float32 X)."""
    rng = np.random.default_rng([seed, i])
    scales = np.geomspace(3.0, 0.05, dim)
    X = (rng.standard_normal((n, dim)) * scales).astype(np.float32)
    W = rng.standard_normal((dim, n_targets)) / np.sqrt(dim)
    noise = np.geomspace(0.1, 3.0, n_targets)
    Y = X.astype(np.float64) @ W + noise * rng.standard_normal((n, n_targets))
    return X, Y


def run_ours(X, Y, folds, select):
    return ridge_cv_predict(X, Y, folds, alphas=ALPHAS, select=select).predictions


def run_loop(X, Y, folds, n_targets):
    P = np.full_like(Y, np.nan)
    for j in range(n_targets):
        for f in range(folds.max() + 1):
            tr, te = folds != f, folds == f
            P[te, j] = RidgeCV(alphas=ALPHAS).fit(X[tr], Y[tr, j]).predict(X[te])
    return P


def run_multi(X, Y, folds):
    P = np.empty_like(Y)
    for f in range(folds.max() + 1):
        tr, te = folds != f, folds == f
        P[te] = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(X[tr], Y[tr]).predict(X[te])
    return P


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    run = Run(ap, "decodability", default_out=False)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--layers", type=int, default=7)
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline-layers", type=int, default=None,
                    help="time all but geoprobe (gcv) on this many layers and scale (default all)")
    ap.add_argument("--loop-targets", type=int, default=None,
                    help="time the sklearn loop on this many targets and scale (default all)")
    ap.add_argument("--quick", action="store_true", help="5,000 x 64, 2 layers, 3 targets")
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/decodability.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.dim, args.layers, args.targets = 5000, 64, 2, 3
    if args.smoke:
        args.n, args.dim, args.layers, args.targets = 500, 16, 1, 2
    if args.write and args.out is None:
        args.out = Path(__file__).parent / "results" / "decodability.md"
    with run.threads(args) as n_threads:
        _main(args, run, n_threads)


def _main(args, run, n_threads):
    n_base = min(args.baseline_layers or args.layers, args.layers)
    n_loop = min(args.loop_targets or args.targets, args.targets)
    folds = group_folds(args.n, 5, rng=args.seed)
    methods = {"geoprobe (gcv)": lambda X, Y: run_ours(X, Y, folds, "gcv"),
               "geoprobe (loo)": lambda X, Y: run_ours(X, Y, folds, "loo"),
               "sklearn multi": lambda X, Y: run_multi(X, Y, folds),
               "sklearn loop": lambda X, Y: run_loop(X, Y, folds, n_loop)}
    wall = dict.fromkeys(methods, 0.0)
    cpu = dict.fromkeys(methods, 0.0)
    r2 = {m: [] for m in methods}
    for i in range(args.layers):
        X, Y = make_layer(i, args.n, args.dim, args.targets, args.seed)
        for name, fn in methods.items():
            if name != "geoprobe (gcv)" and i >= n_base:
                continue
            w0, c0 = time.perf_counter(), time.process_time()
            P = fn(X, Y)
            wall[name] += time.perf_counter() - w0
            cpu[name] += time.process_time() - c0
            r2[name].append(regression_scores(Y, P)["r2"][:n_loop])
        print(f"layer {i + 1}/{args.layers}: " + ", ".join(f"{k} {wall[k]:.1f}s" for k in wall),
              flush=True)
    scale = args.layers / n_base
    for name in methods:
        factor = 1.0 if name == "geoprobe (gcv)" else scale
        factor *= args.targets / n_loop if name == "sklearn loop" else 1.0
        wall[name] *= factor
        cpu[name] *= factor
    ref = np.array(r2["sklearn loop"])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = []
    for name in methods:
        diff = float(np.abs(np.array(r2[name])[:n_base] - ref).max())
        rows.append((name, wall[name], cpu[name], cpu["sklearn multi"] / cpu[name],
                     cpu["sklearn loop"] / cpu[name], diff))
    header = ("| method | wall s | CPU s | **speed-up vs multi-target RidgeCV (CPU)** | "
              "speed-up vs per-target loop (CPU, weaker) | max abs diff in held-out R^2 |"
              "\n|---|---|---|---|---|---|")
    table = header + "".join(f"\n| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.1f}x | {r[4]:.1f}x "
                             f"| {r[5]:.1e} |" for r in rows)
    setup = (f"{args.layers} layers x {args.targets} targets, {args.n:,} x {args.dim} float32 "
             f"embeddings, 5-fold CV, {len(ALPHAS)} alphas, alpha per target and fold, "
             f"{n_threads} BLAS thread(s); all but geoprobe (gcv) timed on {n_base} of "
             f"{args.layers} layers and scaled by {scale:g}, the sklearn loop on {n_loop} of "
             f"{args.targets} targets and "
             f"scaled by {args.targets / n_loop:g} (every layer and target costs the same); R^2 "
             f"compared on the targets and layers all methods ran")
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared "
               f"with other jobs), Python {platform.python_version()}, numpy {np.__version__}, "
               f"load average at end {os.getloadavg()[0]:.1f}")
    print(setup)
    print(table)
    print(f"peak resident memory {peak_mb:.0f} MB (whole process)")
    if args.out is not None:  # the command line is in the provenance section
        run.write(args, (
            "# Ridge decodability sweep: geoprobe vs scikit-learn RidgeCV\n\n"
            f"Setup: {setup}.\n\nMachine: {machine}.\n\n{table}\n\n"
            f"Peak resident memory of the whole run: {peak_mb:.0f} MB.\n\n"
            "The headline baseline is one multi-target `RidgeCV(alpha_per_target=True)` per "
            "layer and fold, what a user would run; the per-target loop is a weaker baseline. "
            "`geoprobe (loo)` uses RidgeCV's leave-one-out criterion and picks the same alphas, "
            "so its R^2 equals the loop's to rounding; `geoprobe (gcv)` is the probe's default. "
            "CPU seconds are less sensitive than wall seconds to the other jobs on the "
            "machine.\n"))


if __name__ == "__main__":
    main()
