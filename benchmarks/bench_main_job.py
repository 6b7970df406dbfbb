"""Time the main job (`geoprobe run`, the shipped jepa-tworoom suite) and record what it finds.

    python benchmarks/bench_main_job.py [--repeats 1] [--threads N]
    python benchmarks/bench_main_job.py --smoke --out /tmp/m.md   # a tiny world, seconds

Runs the installed ``geoprobe run`` end to end in a fresh output folder and a fresh cache, as a
user would after ``scripts/setup.sh``, and appends one row per repeat to
``benchmarks/results/main_job.md``: wall time, the load average before and after (so an idle
run and a run on a busy machine are told apart), and the headline numbers of the run
(decodability of the agent's position, planning success against random actions). The README
quotes this file. Nothing here is a baseline comparison: the main job is a pipeline, and its
parts are benchmarked against their baselines in the other scripts. Under the table, a
provenance section describes the newest row (command line, machine, thread settings).

``--smoke`` shrinks the suite's world and training (``--set``) so that the pipeline runs in
seconds: its numbers mean nothing, it checks that the script and the job still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Run  # this script's folder is on sys.path

from geoprobe.provenance import git_hash, package_versions

#: suite overrides of --smoke: a tiny TwoRoom and a few training steps
SMOKE = ["sources.tworoom.params.n_episodes=40", "sources.tworoom.params.steps=8",
         "sources.tworoom.params.size=16", "sources.tworoom.params.train_steps=4"]
PROVENANCE = "\n## Provenance"
HEADER = """# Main job: `geoprobe run` (jepa-tworoom)

Written by `python benchmarks/bench_main_job.py`; one row per run, newest last. "Load" is the
1-minute load average before and after the run on a machine with the stated core count: about
0 means idle, about the core count means the cores were already busy with other work.

| date (UTC) | git | machine | load before → after | wall s | r(x) | r(y) | planning success | random actions | success gain |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
"""


def _metric(doc: dict, probe: str, name: str, **labels) -> float:
    """The value of the metric with exactly these labels (so a baseline is never taken)."""
    for m in doc["probes"][probe]["metrics"]:
        if m["name"] == name and m["labels"] == labels:
            return m["value"]
    raise KeyError(f"{probe}.{name} {labels}")


def run_once(n_threads: int, smoke: bool) -> str:
    with tempfile.TemporaryDirectory(prefix="geoprobe-bench-main-") as tmp:
        env = dict(os.environ, GEOPROBE_CACHE=str(Path(tmp) / "cache"), GEOPROBE_NO_PROGRESS="1")
        out = Path(tmp) / "out"
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        overrides = [a for o in SMOKE for a in ("--set", o)] if smoke else []
        subprocess.run([sys.executable, "-m", "geoprobe", "run", "-o", str(out), "--threads",
                        str(n_threads), *overrides], env=env, check=True)
        wall = time.perf_counter() - t0
        load1 = os.getloadavg()[0]
        doc = json.loads((out / "results.json").read_text())
    r_x = _metric(doc, "decodability", "pearson_r", layer="z", target="x")
    r_y = _metric(doc, "decodability", "pearson_r", layer="z", target="y")
    success = _metric(doc, "planning", "success_rate")
    random_success = _metric(doc, "planning", "success_rate", baseline="random-actions")
    gain = _metric(doc, "planning", "success_gain")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {package_versions().get('torch')}"
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    commit = git_hash() or "?"
    commit = commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")
    return (f"| {when} | {commit} | {machine} | {load0:.1f} → {load1:.1f} | "
            f"{wall:.0f} | {r_x:.3f} | {r_y:.3f} | {success:.2f} | {random_success:.2f} | "
            f"{gain:+.2f} |\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    run = Run(ap, "main_job")
    args = ap.parse_args()
    if args.smoke:
        args.repeats = 1
    with run.threads(args) as n_threads:
        for _ in range(args.repeats):
            row = run_once(n_threads, args.smoke)
            print(row, end="")
            # rows accumulate; the provenance section after them is the newest row's
            text = args.out.read_text() if args.out.exists() else HEADER
            run.write(args, text.split(PROVENANCE)[0].rstrip("\n") + "\n" + row)


if __name__ == "__main__":
    main()
