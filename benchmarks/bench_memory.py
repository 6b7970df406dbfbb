"""Peak memory of covariance-spectrum, gaussianity, linear-decodability (ridge) and fracture on
a memory-mapped set larger than the target (1 GB), and in-memory vs streamed results on a
subsample.

Writes an (n, dim) float16 set with :class:`~geoprobe.EmbeddingWriter` (default 2,000,000 x
384, 1.5 GB) with an episode column (20 rows each) and a continuous target, then runs each
probe in a fresh subprocess and reports its wall time and two peaks:

* **peak RssAnon** (the honest figure): anonymous resident memory, sampled every 10 ms by a
  background thread from ``/proc/self/status``, largest value kept. It counts what the probe
  allocated (arrays, copies, BLAS buffers, the interpreter and its libraries' heaps) and not
  the pages of the memory-mapped input: those are file-backed page cache, which the kernel
  drops under pressure and re-reads on demand, so they are not memory the probe needs.
  A 10 ms sample can miss a spike shorter than that; allocations that matter here (a chunk,
  a copy of the layer) live far longer.
* **VmHWM** (the kernel's high-water mark of the whole resident set): it also counts every
  page of the memory-map that was resident at once, up to the whole 1.5 GB file when it fits
  in the page cache, so on its own it cannot tell a copy of the layer from the page cache.
  It is reported so the two can be compared, not as the target.

The run also records the load average before and after each probe (the machine is shared, so
times are noisy). Then every probe runs on the first rows held in memory and on the same rows
opened from disk and read in several chunks; the results must agree to 1e-6 relative.
Writes benchmarks/results/memory.md.

    python benchmarks/bench_memory.py [--n 2000000] [--dim 384] [--n-boot 20] [--dir /tmp]
    python benchmarks/bench_memory.py --smoke --out /tmp/m.md   # seconds: does it run?

``--smoke`` measures two of the probes in child processes (covariance-spectrum and fracture)
and checks all four in memory vs streamed.
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
from _common import Run, load  # this script's folder is on sys.path

from geoprobe import EmbeddingSet, EmbeddingWriter, make_probe

#: Run in a fresh interpreter per probe, so each peak is that probe's alone.
_CHILD = """
import json, sys, threading, time
from geoprobe import EmbeddingSet, make_probe

def status(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(field))

peak, done = [status("RssAnon:")], threading.Event()

def sample():
    while not done.wait(0.01):
        peak[0] = max(peak[0], status("RssAnon:"))

path, name, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
emb = EmbeddingSet.open(path)
before = status("RssAnon:")
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
t0 = time.perf_counter()
result = make_probe(name, **params).run(emb, seed=0, progress=False)
seconds = time.perf_counter() - t0
done.set()
sampler.join()
peak[0] = max(peak[0], status("RssAnon:"))
print(json.dumps({"seconds": seconds, "rss_anon": peak[0], "rss_anon_start": before,
                  "vm_hwm": status("VmHWM:"), "warnings": result.info.get("warnings", [])}))
"""


def write_set(path: Path, n: int, dim: int, seed: int = 0) -> None:
    """A low-rank-plus-noise float16 set (n, dim) written in blocks, with an episode column and
    a continuous target ``x`` (a noisy linear read-out of the low-rank part)."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((32, dim))
    readout = rng.standard_normal(32)
    with EmbeddingWriter(path, dim=dim, layer_names=["0"], dtype="float16",
                         validate=False) as w:
        for start in range(0, n, 50_000):
            b = min(50_000, n - start)
            Z = rng.standard_normal((b, 32))
            X = Z @ basis + 0.3 * rng.standard_normal((b, dim))
            w.append(X[None], {"episode": np.arange(start, start + b) // 20,
                               "x": Z @ readout + rng.standard_normal(b)})


def probe_params(args) -> dict:
    """The probes measured, with the parameters each runs with."""
    return {"covariance-spectrum": {"group": "episode", "n_boot": args.n_boot},
            "gaussianity": {"group": "episode", "n_boot": args.n_boot,
                            "n_null": 5 if args.smoke else 20,
                            "max_null": 5 if args.smoke else 20, "cache_dir": False},
            "linear-decodability": {"targets": ["x"], "group": "episode", "mlp": False,
                                    "n_boot": args.n_boot},
            "fracture": {"target": "x", "group": "episode", "n_boot": args.n_boot,
                         "n_resamples": 5, "n_refits": 5 if args.smoke else 20,
                         **({"max_rows": 2_000} if args.smoke else {})}}


#: measured in a child process in --smoke mode (each child costs an interpreter start): the
#: fast one, and the one that subsamples with a warning
SMOKE_MEASURED = ("covariance-spectrum", "fracture")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--n-boot", type=int, default=20)
    ap.add_argument("--subsample", type=int, default=20_000)
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the temporary set is written (default: the system temp dir)")
    run = Run(ap, "memory")
    args = ap.parse_args()
    if args.smoke:
        args.n, args.dim, args.n_boot, args.subsample = 10_000, 32, 2, 1_000
    with run.threads(args):
        _main(args, run)


def _relative_difference(a, b) -> float:
    """Largest relative difference between the finite metrics of two results of one probe."""
    return max((abs(b.metric(x.name, **x.labels).value - x.value) / max(abs(x.value), 1e-300)
                for x in a.metrics if np.isfinite(x.value)), default=0.0)


def _main(args, run) -> None:
    probes = probe_params(args)
    lines = [f"data: {args.n} x {args.dim} float16 memory-mapped "
             f"({args.n * args.dim * 2 / 2**30:.2f} GiB), episodes of 20 rows, "
             f"{args.n_boot} bootstrap replicates; parameters: {json.dumps(probes)}", ""]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "big.gpemb"
        t0 = time.perf_counter()
        write_set(path, args.n, args.dim)
        lines.append(f"writing the set: {time.perf_counter() - t0:.1f} s")
        lines += ["", "| probe | wall s | peak RssAnon MiB | RssAnon at start MiB | "
                  "VmHWM MiB | load before / after |", "|---|---|---|---|---|---|"]
        notes = []
        measured = {k: v for k, v in probes.items() if not args.smoke or k in SMOKE_MEASURED}
        for name, params in measured.items():
            before = load()
            done = subprocess.run([sys.executable, "-c", _CHILD, str(path), name,
                                   json.dumps(params)], capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
            out = json.loads(done.stdout.strip().splitlines()[-1])
            lines.append(f"| {name} | {out['seconds']:.1f} | {out['rss_anon'] / 2**20:.0f} | "
                         f"{out['rss_anon_start'] / 2**20:.0f} | {out['vm_hwm'] / 2**20:.0f} | "
                         f"{before:.1f} / {load():.1f} |")
            notes += [f"- {w.replace(tmp, '<tmp>')}" for w in out["warnings"]]
            print(lines[-1], flush=True)
        if notes:
            lines += ["", "warnings the probes recorded:", ""] + notes
        # in memory vs streamed from disk on the first rows, the streamed run in several chunks
        disk = EmbeddingSet.open(path)
        m = min(args.subsample, args.n)
        memory = EmbeddingSet(np.asarray(disk.layer(0)[:m]),
                              {k: disk.column(k)[:m] for k in ("episode", "x")})
        memory.save(Path(tmp) / "sub")
        streamed = EmbeddingSet.open(Path(tmp) / "sub")
        lines += ["", f"in memory (one chunk) vs streamed from disk (chunks of {m // 7} rows "
                  f"where the probe takes chunk_rows) on the first {m} rows:", ""]
        worst = 0.0
        for name, params in probes.items():
            a = make_probe(name, **params).run(memory, seed=0, progress=False)
            chunked = {"chunk_rows": m // 7} if "chunk_rows" in make_probe(name).get_params() \
                else {}
            b = make_probe(name, **params, **chunked).run(streamed, seed=0, progress=False)
            rel = _relative_difference(a, b)
            worst = max(worst, rel)
            lines.append(f"- {name}: {len(a.metrics)} metrics, largest relative difference "
                         f"{rel:.1e}")
        if worst > 1e-6:
            raise SystemExit(f"in-memory and streamed results differ by {worst:.1e} > 1e-6")
    print("\n".join(lines))
    run.write(args, "# memory benchmark: probes on a memory-mapped set\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
