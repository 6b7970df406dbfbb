"""The regularization probes' vectorised kernels vs straightforward loops, in the same run.

* EASE^R: ``gram`` + ``ease_weights`` vs the closed form as Steck's reference code (and every
  implementation since) writes it: the dense Gram matrix ``X.T @ X``, ``lam`` added to its
  diagonal, one plain dense ``np.linalg.inv``, ``B = P / -diag(P)``, diagonal zeroed
  (``ease_dense``, the headline). Reported second, a weaker baseline: p ridge regressions of
  item j on the others (``ease_loop``), the definition the closed form replaces.
* Recall/NDCG: ``rank_metrics`` on a (users, items) score matrix vs a per-user loop.
* Density measures: ``density_measures`` on (n, d) vs a per-row loop.
* Fixed-point search: ``iterate_map`` on all starts at once vs one start at a time.

Prints wall time, the ratio, peak heap (tracemalloc) and the largest difference of results;
``--out FILE`` also writes them there.

    python benchmarks/bench_regularization.py [--items 400] [--users 2000] [--rows 5000]
    python benchmarks/bench_regularization.py --smoke --out /tmp/r.md   # seconds: does it run?
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch
from _common import Run  # this script's folder is on sys.path
from bench_spectrum import measure  # the same timer

from geoprobe.linear_models import ease_weights, gram
from geoprobe.probes.attractors import iterate_map
from geoprobe.probes.ease import rank_metrics
from geoprobe.probes.sparsity import density_measures


#: interleaved repeats of the two EASE^R closed forms (the first of each warms LAPACK up)
EASE_REPEATS = 7


def median_seconds(runs) -> float:
    """The median time of ``measure`` results ``(out, seconds, peak)``."""
    return float(np.median([seconds for _, seconds, _ in runs]))


def ease_dense(X, lam):
    """EASE^R's closed form as the reference writes it: one dense inverse, (p, p) weights."""
    G = X.T @ X
    G[np.diag_indices_from(G)] += lam
    P = np.linalg.inv(G)
    B = P / -np.diag(P)
    B[np.diag_indices_from(B)] = 0.0
    return B


def ease_loop(X, lam):
    p = X.shape[1]
    B = np.zeros((p, p))
    for j in range(p):
        others = np.delete(np.arange(p), j)
        Xo = X[:, others]
        B[others, j] = np.linalg.solve(Xo.T @ Xo + lam * np.eye(p - 1), Xo.T @ X[:, j])
    return B


def metrics_loop(scores, fold_in, target, k=100):
    recall, ndcg = [], []
    for s, f, t in zip(scores, fold_in, target):
        s = np.where(f, -np.inf, s)
        top = np.argsort(-s, kind="stable")[:k]
        hits = t[top]
        best = min(k, t.sum())
        recall.append(hits.sum() / max(best, 1))
        dcg = sum(h / np.log2(r + 2) for r, h in enumerate(hits))
        ndcg.append(dcg / sum(1 / np.log2(r + 2) for r in range(max(best, 1))))
    return {"recall@100": np.array(recall), "ndcg@100": np.array(ndcg)}


def density_loop(H):
    """The seven measures, one row at a time (the paper's code works per example)."""
    d = H.shape[1]
    k5, k10 = int(np.ceil(0.05 * d)), int(np.ceil(0.10 * d))
    out = []
    for h in H:
        a = np.abs(h)
        sq = np.sort(a ** 2)[::-1]
        l1, l2 = a.sum(), np.sqrt(sq.sum())
        p = a ** 2 / sq.sum()
        asc = np.sort(a)
        gini = sum((2 * (i + 1) - d - 1) * v for i, v in enumerate(asc)) / (d * l1)
        out.append([sq[:k5].sum() / sq.sum(), sq[:k10].sum() / sq.sum(),
                    (np.sqrt(d) - l1 / l2) / (np.sqrt(d) - 1), gini, l1 / l2, l1,
                    np.exp(-np.sum(p[p > 0] * np.log(p[p > 0]))) / d])
    return np.array(out)


def iterate_loop(f, Z0, tol, max_steps):
    out = []
    with torch.no_grad():
        for z in Z0:
            z = z[None]
            for _ in range(max_steps):
                new = f(z)
                done = float(((new - z) ** 2).sum()) < tol
                z = new
                if done:
                    break
            out.append(z[0])
    return torch.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--starts", type=int, default=2000)
    run = Run(ap, "regularization", default_out=False)
    args = ap.parse_args()
    if args.smoke:
        args.items, args.users, args.rows, args.starts = 20, 60, 50, 20
    with run.threads(args):
        _main(args, run)


def _main(args, run) -> None:
    rng = np.random.default_rng(0)
    rows = []

    X = (rng.random((args.users, args.items)) < 0.05).astype(float)
    # both closed forms take ~20 ms, so one timing is mostly LAPACK's first-call warm-up and
    # noise: the median of EASE_REPEATS interleaved runs each
    ours, ref = [], []
    for _ in range(EASE_REPEATS):
        ours.append(measure(lambda: ease_weights(gram(X), 50.0)))
        ref.append(measure(lambda: ease_dense(X, 50.0)))
    B, t_ours, m_ours = ours[0][0], median_seconds(ours), max(m for *_, m in ours)
    B_ref, t_ref, m_ref = ref[0][0], median_seconds(ref), max(m for *_, m in ref)
    rows.append(("EASE^R weights vs the dense closed form", f"{args.users}x{args.items}", t_ref,
                 t_ours, m_ref, m_ours, np.abs(B - B_ref).max()))
    (B_ref, t_ref, m_ref) = measure(lambda: ease_loop(X, 50.0))
    rows.append(("EASE^R weights vs p ridge regressions (weaker)", f"{args.users}x{args.items}",
                 t_ref, t_ours, m_ref, m_ours, np.abs(B - B_ref).max()))

    scores = rng.standard_normal((args.users, args.items))
    f = rng.random(scores.shape) < 0.05
    t = ~f & (rng.random(scores.shape) < 0.02)
    (a, t_ours, m_ours) = measure(lambda: rank_metrics(scores, f, t, ks=(100,)))
    (b, t_ref, m_ref) = measure(lambda: metrics_loop(scores, f, t))
    rows.append(("Recall/NDCG@100", f"{args.users}x{args.items}", t_ref, t_ours, m_ref, m_ours,
                 max(np.abs(a[k] - b[k]).max() for k in b)))

    H = rng.standard_normal((args.rows, 384))
    (a, t_ours, m_ours) = measure(lambda: np.stack(list(density_measures(H).values()), 1))
    (b, t_ref, m_ref) = measure(lambda: density_loop(H))
    rows.append(("density measures (7)", f"{args.rows}x384", t_ref, t_ours, m_ref, m_ours,
                 np.abs(a - b).max()))

    net = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 8))
    with torch.no_grad():
        net[2].weight.mul_(0.3)
    Z0 = torch.randn(args.starts, 8)
    (a, t_ours, m_ours) = measure(lambda: iterate_map(net, Z0, tol=1e-10, max_steps=200)[0])
    (b, t_ref, m_ref) = measure(lambda: iterate_loop(net, Z0, 1e-10, 200))
    rows.append(("fixed-point iteration", f"{args.starts} starts, k=8", t_ref, t_ours, m_ref,
                 m_ours, float((a - b).abs().max())))

    lines = [f"# regularization kernels ({platform.machine()}, {torch.get_num_threads()} torch "
             "thread(s))", "",
             "| kernel | size | baseline | ours | speed-up | peak heap baseline / ours | max diff |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, size, tr, to, mr, mo, diff in rows:
        lines.append(f"| {name} | {size} | {tr:.3f} s | {to:.3f} s | {tr / to:.1f}x | "
                     f"{mr / 2**20:.1f} / {mo / 2**20:.1f} MiB | {diff:.1e} |")
    print("\n".join(lines))
    run.write(args, "\n".join(lines))


if __name__ == "__main__":
    main()
