"""Peak memory of covariance-spectrum and gaussianity on a memory-mapped set larger than the
target (1 GB), and in-memory vs streamed results on a subsample.

Writes an (n, dim) float16 set with :class:`~geoprobe.EmbeddingWriter` (default 2,000,000 x
384, 1.5 GB), then runs each probe in a fresh subprocess and reads its peak resident memory
(VmHWM from /proc/self/status, else ru_maxrss) and wall time. Then runs both probes on the
first rows held in memory and on the same rows opened from disk, which must agree to 1e-6
relative. Writes benchmarks/results/memory.md.

    python benchmarks/bench_memory.py [--n 2000000] [--dim 384] [--n-boot 20]
    python benchmarks/bench_memory.py --smoke --out /tmp/m.md   # seconds: does it run?
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Run  # this script's folder is on sys.path

from geoprobe import EmbeddingSet, EmbeddingWriter, make_probe

#: Run in a fresh interpreter per probe, so each peak is that probe's alone.
_CHILD = """
import json, resource, sys, time
from geoprobe import EmbeddingSet, make_probe
path, name, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
emb = EmbeddingSet.open(path)
t0 = time.perf_counter()
make_probe(name, **params).run(emb, seed=0, progress=False)
seconds = time.perf_counter() - t0
try:
    peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
                if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak": peak}))
"""


def write_set(path: Path, n: int, dim: int, seed: int = 0) -> None:
    """A low-rank-plus-noise float16 set (n, dim) written in blocks, with an episode column."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((32, dim))
    with EmbeddingWriter(path, dim=dim, layer_names=["0"], dtype="float16",
                         validate=False) as w:
        for start in range(0, n, 50_000):
            b = min(50_000, n - start)
            X = rng.standard_normal((b, 32)) @ basis + 0.3 * rng.standard_normal((b, dim))
            w.append(X[None], {"episode": np.arange(start, start + b) // 20})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--n-boot", type=int, default=20)
    ap.add_argument("--subsample", type=int, default=20_000)
    run = Run(ap, "memory")
    args = ap.parse_args()
    if args.smoke:
        args.n, args.dim, args.n_boot, args.subsample = 20_000, 64, 2, 2_000
    with run.threads(args):
        _main(args, run)


def _main(args, run) -> None:
    probes = {"covariance-spectrum": {"group": "episode", "n_boot": args.n_boot},
              "gaussianity": {"group": "episode", "n_boot": args.n_boot,
                              "n_null": 5 if args.smoke else 20,
                              "max_null": 5 if args.smoke else 20, "cache_dir": False}}
    lines = [f"data: {args.n} x {args.dim} float16 memory-mapped "
             f"({args.n * args.dim * 2 / 2**30:.2f} GiB), episodes of 20 rows, "
             f"{args.n_boot} bootstrap replicates", ""]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.gpemb"
        t0 = time.perf_counter()
        write_set(path, args.n, args.dim)
        lines.append(f"writing the set: {time.perf_counter() - t0:.1f} s")
        lines += ["", "| probe | wall s | peak RSS MiB |", "|---|---|---|"]
        for name, params in probes.items():
            done = subprocess.run([sys.executable, "-c", _CHILD, str(path), name,
                                   json.dumps(params)], capture_output=True, text=True,
                                  check=True)
            out = json.loads(done.stdout.strip().splitlines()[-1])
            lines.append(f"| {name} | {out['seconds']:.1f} | {out['peak'] / 2**20:.0f} |")
            print(lines[-1], flush=True)
        # in memory vs streamed from disk on the first rows
        disk = EmbeddingSet.open(path)
        m = min(args.subsample, args.n)
        memory = EmbeddingSet(np.asarray(disk.layer(0)[:m]),
                              {"episode": disk.column("episode")[:m]})
        memory.save(Path(tmp) / "sub")
        streamed = EmbeddingSet.open(Path(tmp) / "sub")
        lines += ["", f"in memory vs streamed on the first {m} rows:", ""]
        worst = 0.0
        for name, params in probes.items():
            probe = make_probe(name, **params)
            a = probe.run(memory, seed=0, progress=False)
            b = probe.run(streamed, seed=0, progress=False)
            rel = max(abs(b.metric(x.name, **x.labels).value - x.value) / max(abs(x.value), 1e-300)
                      for x in a.metrics if np.isfinite(x.value))
            worst = max(worst, rel)
            lines.append(f"- {name}: {len(a.metrics)} metrics, largest relative difference "
                         f"{rel:.1e}")
        if worst > 1e-6:
            raise SystemExit(f"in-memory and streamed results differ by {worst:.1e} > 1e-6")
    print("\n".join(lines))
    run.write(args, "# memory benchmark: probes on a memory-mapped set\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
