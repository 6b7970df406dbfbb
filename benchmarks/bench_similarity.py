"""Streaming linear CKA vs one pass of the matrix products it needs, in the same run.

Two float32 sets of shape (n, dim) are written as memory-mapped .npy files in a temporary
folder. The reference is the three products linear CKA needs, taken by NumPy on the whole
memory-mapped arrays in their own dtype (``X^T X``, ``Y^T Y``, ``X^T Y``: one BLAS call each);
ours is :func:`geoprobe.similarity.linear_cka_streaming`, which reads both files once in row
chunks, takes the same products per chunk (float32, after a shift by the first chunk's mean),
sums them and the column sums in float64 and returns the CKA. Each
is timed ``--repeats`` times and the fastest kept; the script also reports the difference
between our CKA and one computed from the reference products in float64.

    python benchmarks/bench_similarity.py [--n 200000] [--dim 768] [--repeats 2]
    python benchmarks/bench_similarity.py --smoke --out /tmp/s.md   # seconds: does it run?
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Run  # this script's folder is on sys.path

from geoprobe.similarity import linear_cka_streaming


def reference_products(X, Y):
    return X.T @ X, Y.T @ Y, X.T @ Y


def cka_from_products(n, sx, sy, gxx, gyy, gxy) -> float:
    mx, my = sx / n, sy / n
    cxy = gxy - n * np.outer(mx, my)
    cxx, cyy = gxx - n * np.outer(mx, mx), gyy - n * np.outer(my, my)
    return float(np.sum(cxy ** 2) / (np.linalg.norm(cxx) * np.linalg.norm(cyy)))


def fastest(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def write_set(path: Path, n: int, dim: int, rng):
    """A float32 (n, dim) Gaussian .npy file, written in chunks; returned memory-mapped."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, 50_000):
        rows = min(50_000, n - start)
        out[start:start + rows] = rng.standard_normal((rows, dim))
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--repeats", type=int, default=2)
    run = Run(ap, "similarity")
    args = ap.parse_args()
    if args.smoke:
        args.n, args.dim, args.repeats = 2000, 16, 1
    with run.threads(args):
        _main(args, run)


def _main(args, run) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        X = write_set(Path(tmp) / "x.npy", args.n, args.dim, rng)
        Y = write_set(Path(tmp) / "y.npy", args.n, args.dim, rng)
        (gxx, gyy, gxy), t_ref = fastest(lambda: reference_products(X, Y), args.repeats)
        ours, t_ours = fastest(lambda: linear_cka_streaming(X, Y), args.repeats)
        sx = np.asarray(X, dtype=np.float64).sum(0)
        sy = np.asarray(Y, dtype=np.float64).sum(0)
        ref = cka_from_products(args.n, sx, sy, *(np.asarray(g, np.float64)
                                                  for g in (gxx, gyy, gxy)))
    ratio = t_ours / t_ref
    text = "\n".join([
        "# Linear CKA: streaming vs one pass of matrix products", "",
        f"Two float32 memory-mapped sets of {args.n:,} x {args.dim} (independent Gaussians), "
        f"fastest of {args.repeats}.", "",
        "| | seconds |", "| --- | --- |",
        f"| one pass of products (NumPy, X^T X, Y^T Y, X^T Y on the memory-maps, float32) "
        f"| {t_ref:.2f} |",
        f"| `linear_cka_streaming` (chunked, float32 products, float64 sums, CKA included) | {t_ours:.2f} |",
        f"| ratio (target: within 2x) | {ratio:.2f} |", "",
        f"CKA {ours:.6g}; from the reference products {ref:.6g} "
        f"(|difference| {abs(ours - ref):.2g}).", ""])
    print(text)
    run.write(args, text)


if __name__ == "__main__":
    main()
