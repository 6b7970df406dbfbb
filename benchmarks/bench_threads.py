"""How many threads should geoprobe use? Representative workloads with 1 and 2 threads, on the
machine as it is ("idle") and with two CPU-bound neighbours this script starts ("loaded").

Workloads (data made once, outside the clock):

* ``polar epoch``: one polar-probe training epoch (distance + angular + root loss, Adam) over
  planted trees, as ``geoprobe.syntax.training`` runs it;
* ``ridge decode``: 5-fold ridge decoding (GCV alphas) of 5 targets from 20,000 x 384;
* ``JEPA steps``: 20 training steps of a small JEPA (32x32 frames, batch 16, SIGReg on);
* ``spectrum bootstrap``: the covariance-spectrum probe with its cluster bootstrap.

Each (load, workload, threads) cell is timed ``--repeats`` times, 1 and 2 threads alternating,
and reported as the median with min and max. Threads are set through
:func:`geoprobe.threads.policy` (BLAS and torch intra-op alike). The neighbours are
``while True: pass`` subprocesses, killed when the loaded half ends. Writes
``benchmarks/results/threads.md``; ``geoprobe/threads.py`` takes its default from it.

    python benchmarks/bench_threads.py [--repeats 3] [--smoke --out /tmp/threads.md]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from _common import Run, load
from bench_syntax import polar_epoch as one_polar_epoch  # the epoch bench_syntax times

from geoprobe import threads

THREADS = (1, 2)


def polar_epoch(n_sentences: int, dim: int, rank: int, device="cpu"):
    """A callable running one polar-probe epoch (a rank-``rank`` map) over planted trees, on
    ``device`` (a torch.device or name; the data moves there once)."""
    from geoprobe.datasets.planted_trees import planted_trees
    from geoprobe.probes.syntax import PolarProbe
    from geoprobe.syntax.corpus import build_corpus, make_batches, relation_type
    from geoprobe.syntax.gradients import step_batch
    from geoprobe.syntax.training import LinearProbe, adam, batch_on

    # the planted rank holds one direction per relation type (8) and per edge of a sentence
    emb = planted_trees(n_sentences=n_sentences, dim=dim, rank=rank, max_len=min(30, rank - 8),
                        n_layers=1, dev_fraction=0.01)
    items = emb.items
    split = np.asarray(items["split"]).astype(str)
    types = np.unique(relation_type(np.asarray(items["deprel"])))
    codes = {t: i for i, t in enumerate(types[types != "root"])}
    probe = PolarProbe(rank=rank)
    batches = make_batches(build_corpus(items, np.flatnonzero(split == "train"), codes),
                           probe.max_tokens)
    device = torch.device(device)
    steps = [step_batch(batch_on(b, device)) for b in batches]
    X = torch.from_numpy(np.asarray(emb.layer("0"), dtype=np.float32)).to(device)

    def run():
        model = LinearProbe(X.shape[1], rank, torch.Generator().manual_seed(0)).to(device)
        opt = adam(model.parameters(), 1e-3, device)
        one_polar_epoch(X, model, opt, steps, probe)
    return run


def ridge_decode(n: int, dim: int):
    from geoprobe.decoding import group_folds, ridge_cv_predict

    rng = np.random.default_rng(0)
    X = (rng.standard_normal((n, dim)) * np.geomspace(3.0, 0.05, dim)).astype(np.float32)
    Y = X.astype(np.float64) @ rng.standard_normal((dim, 5)) / np.sqrt(dim)
    Y += rng.standard_normal(Y.shape)
    folds = group_folds(n, 5, rng=0)
    return lambda: ridge_cv_predict(X, Y, folds)


def jepa_steps(steps: int, batch: int, size: int):
    from geoprobe.jepa.model import JEPA, JEPAConfig

    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (batch, 4, size, size, 3), dtype=torch.uint8, generator=g)
    actions = torch.rand(batch, 4, 2, generator=g) * 2 - 1

    def run():
        torch.manual_seed(0)
        net = JEPA(JEPAConfig(image_size=size, batch=batch, n_directions=64))
        opt = torch.optim.AdamW(net.parameters(), 1e-3)
        gen = torch.Generator().manual_seed(1)
        for _ in range(steps):
            loss = net.losses(frames, actions, gen)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
    return run


def spectrum_bootstrap(n: int, dim: int, n_boot: int):
    from geoprobe import EmbeddingSet, make_probe

    rng = np.random.default_rng(0)
    X = (rng.standard_normal((n, 32)) @ rng.standard_normal((32, dim))
         + 0.1 * rng.standard_normal((n, dim))).astype(np.float32)
    emb = EmbeddingSet(X, {"episode": np.arange(n) // 20})
    probe = make_probe("covariance-spectrum", group="episode", n_boot=n_boot)
    return lambda: probe.run(emb, seed=0, progress=False)


class Neighbours:
    """``count`` CPU-bound subprocesses for the duration of the ``with`` block."""

    def __init__(self, count: int):
        self.count = count
        self.procs = []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                      for _ in range(self.count)]
        time.sleep(1.0)  # let the scheduler spread them before the first timing
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()


def time_cells(workloads: dict, repeats: int) -> dict:
    """{(workload, threads): [seconds per repeat]}, 1 and 2 threads alternating."""
    out = {}
    for name, fn in workloads.items():
        for n in THREADS:  # warm-up: first-call allocations, kernel selection
            with threads.policy(n):
                fn()
        for _ in range(repeats):
            for n in THREADS:
                with threads.policy(n):
                    t0 = time.perf_counter()
                    fn()
                    out.setdefault((name, n), []).append(time.perf_counter() - t0)
        print(f"  {name}: " + ", ".join(f"{n} thread(s) {statistics.median(out[name, n]):.2f} s"
                                        for n in THREADS), flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    run = Run(ap, "threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--neighbours", type=int, default=2, help="CPU-bound subprocesses when loaded")
    args = ap.parse_args(argv)
    if args.smoke:
        args.repeats = 1
        sizes = dict(polar=(40, 48, 24), ridge=(500, 16), jepa=(2, 2, 16), spectrum=(400, 16, 5))
    else:
        sizes = dict(polar=(1500, 384, 64), ridge=(20_000, 384), jepa=(20, 16, 32),
                     spectrum=(20_000, 256, 100))
    with threads.policy(1):  # data generation is not measured
        workloads = {
            f"polar epoch ({sizes['polar'][0]} planted sentences, d={sizes['polar'][1]}, "
            f"rank {sizes['polar'][2]})": polar_epoch(*sizes["polar"]),
            f"ridge decode ({sizes['ridge'][0]:,} x {sizes['ridge'][1]}, 5 targets, 5 folds)":
                ridge_decode(*sizes["ridge"]),
            f"JEPA steps ({sizes['jepa'][0]} steps, batch {sizes['jepa'][1]}, "
            f"{sizes['jepa'][2]}x{sizes['jepa'][2]} frames)": jepa_steps(*sizes["jepa"]),
            f"spectrum bootstrap ({sizes['spectrum'][0]:,} x {sizes['spectrum'][1]}, "
            f"{sizes['spectrum'][2]} replicates)": spectrum_bootstrap(*sizes["spectrum"]),
        }
    results = {}
    for state in ("idle", "loaded"):
        print(f"{state}:", flush=True)
        before = load()
        if state == "idle":
            cells = time_cells(workloads, args.repeats)
        else:
            with Neighbours(args.neighbours):
                cells = time_cells(workloads, args.repeats)
        results[state] = (cells, before, load())

    def fmt(xs):
        return (f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})" if len(xs) > 1
                else f"{xs[0]:.2f}")

    lines = ["# Threads: 1 vs 2 BLAS/torch threads, idle and loaded", "",
             f"Seconds per run, median (min-max) of {args.repeats} repeat(s), 1 and 2 threads "
             "alternating; threads set by `geoprobe.threads.policy` (BLAS and torch intra-op). "
             f"\"loaded\": {args.neighbours} CPU-bound `while True: pass` subprocesses started "
             "by the script for that half; \"idle\": none added (other jobs on a shared machine "
             "are not controlled: see the load averages).", "",
             "| load (1-min avg before -> after) | workload | 1 thread (s) | 2 threads (s) | "
             "2 threads / 1 thread |", "| --- | --- | --- | --- | --- |"]
    for state, (cells, before, after) in results.items():
        for name in workloads:
            one, two = cells[name, 1], cells[name, 2]
            ratio = statistics.median(two) / statistics.median(one)
            lines.append(f"| {state} ({before:.2f} -> {after:.2f}) | {name} | {fmt(one)} | "
                         f"{fmt(two)} | {ratio:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with run.threads(args):
        run.write(args, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
