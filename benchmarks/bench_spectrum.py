"""Covariance-spectrum probe vs a reference-style implementation, in the same run.

Reference style (as RankMe is usually copied around, e.g. Garrido et al.'s RankMe: singular
values of the whole matrix by ``svd``, ``p = s / sum(s)``, ``exp(entropy(p))``), extended the way
a user adds intervals to it: load the whole matrix, take its SVD (and the centred one's, for the
participation ratio), then for a cluster bootstrap resample episodes with replacement, gather
their rows, take both SVDs again for every replicate and read the same centred percentile
interval as ours (:func:`geoprobe.stats.centred_interval`) off the replicates. So both sides
compute point estimates **and** intervals. Ours: one chunked pass accumulates per-block Gram
matrices from the memory-mapped file; each replicate is a weighted sum of blocks and a d x d
eigenproblem. The intervals are not expected to agree exactly: ours resamples random blocks of
episodes (the same variance to first order), the reference single episodes, and the random
draws differ; the table prints both.

Prints wall time, the ratio, peak Python-heap memory (tracemalloc, which sees NumPy buffers)
and the largest difference in the point estimates; ``--out FILE`` also writes them there.

    python benchmarks/bench_spectrum.py [--n 20000] [--dim 256] [--n-boot 20]
    python benchmarks/bench_spectrum.py --smoke --out /tmp/s.md   # seconds: does it run?
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _common import Run  # this script's folder is on sys.path

from geoprobe import EmbeddingSet, make_probe
from geoprobe.spectra import participation_ratio, rankme
from geoprobe.stats import centred_interval


def _estimates(X: np.ndarray) -> tuple[float, float]:
    """RankMe of X (n, d) and the participation ratio of its centred covariance, by SVD."""
    Xc = X - X.mean(0)
    return (rankme(np.linalg.svd(X, compute_uv=False)),
            participation_ratio(np.linalg.svd(Xc, compute_uv=False) ** 2))


def reference(X: np.ndarray, groups: np.ndarray, n_boot: int, rng) -> dict:
    """Point estimates and centred 95% cluster-bootstrap intervals, an SVD per replicate."""
    rm, pr = _estimates(X)
    units = np.unique(groups)
    samples = np.empty((n_boot, 2))
    for b in range(n_boot):  # cluster bootstrap, recomputing the SVDs of every replicate
        drawn = rng.choice(units, len(units))
        rows = np.concatenate([np.flatnonzero(groups == u) for u in drawn])
        samples[b] = _estimates(X[rows])
    return {"rankme": (rm, centred_interval(rm, samples[:, 0])),
            "participation_ratio": (pr, centred_interval(pr, samples[:, 1]))}


def measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--n-boot", type=int, default=20)
    ap.add_argument("--episode", type=int, default=20)
    run = Run(ap, "spectrum", default_out=False)
    args = ap.parse_args()
    if args.smoke:
        args.n, args.dim, args.n_boot = 400, 16, 2
    with run.threads(args):
        _main(args, run)


def _main(args, run) -> None:
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((args.n, 32)) @ rng.standard_normal((32, args.dim))
         + 0.1 * rng.standard_normal((args.n, args.dim))).astype(np.float32)
    groups = np.arange(args.n) // args.episode
    with tempfile.TemporaryDirectory() as tmp:
        EmbeddingSet(X, {"episode": groups}).save(Path(tmp) / "e")
        del X
        disk = EmbeddingSet.open(Path(tmp) / "e")
        probe = make_probe("covariance-spectrum", group="episode", n_boot=args.n_boot)
        ours, t_ours, m_ours = measure(lambda: probe.run(disk, seed=0, progress=False))
        ref, t_ref, m_ref = measure(
            lambda: reference(np.load(Path(tmp) / "e" / "layers" / "000.npy").astype(np.float64),
                              groups, args.n_boot, np.random.default_rng(0)))
    ci = {name: (ours.metric(name, layer="0").value, ours.metric(name, layer="0").ci_low,
                 ours.metric(name, layer="0").ci_high) for name in ref}
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"data: {args.n} x {args.dim} float32 on disk, {args.n // args.episode} episodes, "
        f"{args.n_boot} bootstrap replicates",
        "both sides: point estimates and 95% centred cluster-bootstrap intervals",
        f"reference (SVD per replicate): {t_ref:8.2f} s   peak {m_ref / 2**20:8.1f} MiB",
        f"geoprobe (blocked moments):    {t_ours:8.2f} s   peak {m_ours / 2**20:8.1f} MiB "
        "(includes both baselines)",
        f"speed-up: {t_ref / t_ours:.1f}x   memory ratio: {m_ref / max(m_ours, 1):.1f}x",
        *(f"{name}: estimate diff {abs(v - ref[name][0]):.2e}; 95% interval ours "
          f"[{lo:.3f}, {hi:.3f}], reference [{ref[name][1][0]:.3f}, {ref[name][1][1]:.3f}]"
          for name, (v, lo, hi) in ci.items())]
    print("\n".join(lines))
    run.write(args, "# covariance-spectrum benchmark\n\n```\n" + "\n".join(lines) + "\n```")


if __name__ == "__main__":
    main()
