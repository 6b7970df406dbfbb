"""geoprobe sweep on Dask: the speed-up of 2 workers over a serial loop, the scheduler's
overhead per task, and the time of a resumed sweep that finds every task done.

1. The same tasks (checkpoints x layers, covariance spectrum with a cluster bootstrap) run
   (a) serially in this process (``run_serial``, no Dask) and (b) on a LocalCluster of 2
   worker processes with one thread each, each into a fresh store. The cluster's start-up and
   the workers' first imports are timed apart and reported both ways. Aim: >= 1.7x on 2
   cores.
2. Overhead per task: a batch of no-op tasks through the same 2-worker cluster, wall time /
   tasks.
3. Resume: a sweep of 100 tasks whose store is full, run again with ``run_sweep``
   (planning with cached content hashes, the store lookup, the table and figures). Aim < 5 s.

The load average before and after is recorded: the machine is shared, and the speed-up
falls as soon as another process wants the cores.

    python benchmarks/bench_sweep.py            # writes benchmarks/results/sweep.md
    python benchmarks/bench_sweep.py --smoke --out /tmp/s.md
"""

from __future__ import annotations

import argparse
import importlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Run, load  # this script's folder is on sys.path

from geoprobe.sweep import plan_sweep, run_sweep
from geoprobe.sweep.execute import dask_client, run_dask, run_serial
from geoprobe.sweep.plan import HashCache

SUITE = """
[suite]
name = "bench-sweep"
seed = 0
[sources.main]
path = "unused.npy"
items = "items.csv"
[[probes]]
id = "spectrum"
probe = "covariance-spectrum"
params = {{ group = "group", n_boot = {n_boot} }}
"""


def make_inputs(root: Path, n_ckpts: int, n_items: int, dim: int, n_boot: int) -> None:
    """``n_ckpts`` two-layer checkpoints ``step_K.npy`` with an item table and the suite."""
    rng = np.random.default_rng(0)
    (root / "items.csv").write_text("group\n" + "".join(f"{i // 10}\n" for i in range(n_items)))
    (root / "s.toml").write_text(SUITE.format(n_boot=n_boot))
    for k in range(n_ckpts):
        np.save(root / f"step_{100 * (k + 1)}.npy",
                rng.standard_normal((2, n_items, dim)).astype(np.float32))


def _noop(i):
    return i


def _warm():
    # torch: the thread policy sets its threads in every task
    for name in ("torch", "geoprobe.probes.spectrum", "geoprobe.sweep.execute"):
        importlib.import_module(name)


def plan(root: Path):
    return plan_sweep(str(root / "s.toml"), embeddings=[str(root / "step_*.npy")],
                      items=str(root / "items.csv"), per_layer=True,
                      hashes=HashCache(root / "hashes.json"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", type=int, default=8, help="checkpoints (x 2 layers = tasks)")
    ap.add_argument("--n", type=int, default=4000, help="items per checkpoint")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--noop-tasks", type=int, default=400)
    ap.add_argument("--resume-tasks", type=int, default=100)
    run = Run(ap, "sweep")
    args = ap.parse_args()
    if args.smoke:
        args.checkpoints, args.n, args.dim, args.n_boot = 2, 200, 16, 10
        args.noop_tasks, args.resume_tasks = 20, 10

    with run.threads(args), tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        work = tmp / "work"
        work.mkdir()
        make_inputs(work, args.checkpoints, args.n, args.dim, args.n_boot)
        tasks = plan(work).tasks

        load_serial = load()
        t0 = time.perf_counter()
        run_serial(tasks, tmp / "serial", show_progress=False)
        serial = time.perf_counter() - t0

        load_dask = load()
        t0 = time.perf_counter()
        with dask_client(n_workers=2) as client:
            startup = time.perf_counter() - t0
            # workers import what a task needs, as the serial loop's process already has
            client.run(_warm)
            warm = time.perf_counter() - t0
            t1 = time.perf_counter()
            client.gather(client.map(_noop, range(args.noop_tasks), pure=False))
            overhead = (time.perf_counter() - t1) / args.noop_tasks
            t1 = time.perf_counter()
            out = run_dask(tasks, tmp / "dask", scheduler=client.scheduler.address,
                           show_progress=False, announce=lambda line: None)
            parallel = time.perf_counter() - t1
        assert out.computed == len(tasks) and not out.errors
        same = ({p.name for p in (tmp / "serial" / "tasks").iterdir()}
                == {p.name for p in (tmp / "dask" / "tasks").iterdir()})
        # time inside the tasks: tells contention for the cores from scheduling overhead
        inside = {name: np.mean([json.loads(p.read_text())["seconds"]
                                 for p in (tmp / name / "tasks").iterdir()])
                  for name in ("serial", "dask")}

        resume = tmp / "resume"
        resume.mkdir()
        make_inputs(resume, args.resume_tasks // 2, 100, 8, 10)
        kwargs = dict(embeddings=[str(resume / "step_*.npy")], items=str(resume / "items.csv"),
                      per_layer=True, show_progress=False)
        first = run_sweep(str(resume / "s.toml"), resume / "out", serial=True, **kwargs)
        t0 = time.perf_counter()
        again = run_sweep(str(resume / "s.toml"), resume / "out", n_workers=2, **kwargs)
        resumed = time.perf_counter() - t0
        assert again["counts"]["computed"] == 0 and again["counts"]["cached"] == \
            first["counts"]["tasks"]
        t0 = time.perf_counter()
        plan(resume)
        replan = time.perf_counter() - t0

        text = "\n".join([
            "# geoprobe sweep on Dask", "",
            f"{len(tasks)} tasks: {args.checkpoints} checkpoints x 2 layers, covariance "
            f"spectrum of {args.n} x {args.dim} with a {args.n_boot}-replicate cluster "
            "bootstrap; each run into a fresh store.", "",
            "| measurement | result |", "| --- | --- |",
            f"| serial loop, one process (load before {load_serial:.2f}) | {serial:.2f} s |",
            f"| LocalCluster, 2 workers x 1 thread, warm (load before {load_dask:.2f}) | "
            f"{parallel:.2f} s |",
            f"| speed-up, 2 warm workers vs serial | **{serial / parallel:.2f}x** |",
            f"| mean time inside one task: serial, on a worker | {inside['serial']:.2f} s, "
            f"{inside['dask']:.2f} s |",
            f"| cluster start-up (2 worker processes), then imports on the workers | "
            f"{startup:.2f} s, {warm - startup:.2f} s |",
            f"| speed-up counting start-up and imports | {serial / (parallel + warm):.2f}x |",
            f"| scheduler overhead per task ({args.noop_tasks} no-op tasks) | "
            f"{overhead * 1000:.2f} ms |",
            f"| resumed sweep, {again['counts']['tasks']} tasks all done (plan, lookup, "
            f"table, figures) | **{resumed:.2f} s** |",
            f"| of which planning with cached content hashes | {replan:.2f} s |",
            f"| same task keys stored by both runs | {same} |", ""])
        print(text)
        run.write(args, text)


if __name__ == "__main__":
    main()
