"""Extraction and polar-probe training on an accelerator against the CPU: agreement and speed.

    python benchmarks/bench_device.py --device cuda      # the GPU check, one go, a few minutes
    python benchmarks/bench_device.py --smoke --out /tmp/d.md   # the CPU path, seconds

The check a machine with a GPU (or MPS) runs once:

1. Extraction: the offline MiniLM's hooked ``encoder.layer.*.output`` word vectors (sub-word
   means, :class:`geoprobe.datasets.extraction.WordEncoder`) of the first ``--sentences`` UD
   English-EWT dev sentences, on the CPU in float32 (the reference) and on ``--device`` in
   float32 and bfloat16. Reported: the largest absolute difference relative to the largest
   reference value, the smallest cosine between matching rows, and whether they meet the
   tolerances (float32: relative difference below 1e-3, TF32 matmuls included; bfloat16: every
   cosine above 0.98), plus words per second (median of ``--repeats``).
2. A polar-probe training epoch (the one ``bench_syntax`` times, over planted trees) on the
   CPU and on ``--device``: median seconds of ``--repeats``.

Without an accelerator, ``--device cpu`` (the ``--smoke`` default) runs the same code on the
CPU against itself (the float32 extraction and the epoch are then not run twice), so the
script is exercised by the test suite. Results go to
benchmarks/results/device.md (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import Run  # this script's folder is on sys.path
from bench_threads import polar_epoch

TOLERANCE = {"float32": ("max relative difference", 1e-3), "bfloat16": ("min cosine", 0.98)}


def _sync(device) -> None:
    """Wait for queued device work, so that wall-clock times are the work's."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _extract(sentences, batch_size, device, precision, repeats):
    """(vectors (n_modules, n_words, dim) float32, median seconds) of one full extraction."""
    from geoprobe.datasets.extraction import WordEncoder

    enc = WordEncoder(modules=["encoder.layer.*.output"], device=device, precision=precision)
    batches = [[s.words for s in sentences[i:i + batch_size]]
               for i in range(0, len(sentences), batch_size)]
    enc.encode(batches[0])  # warm-up: kernel selection, allocator
    times, vectors = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        vectors = np.concatenate([enc.encode(b)[0] for b in batches], axis=1)
        _sync(enc.device)
        times.append(time.perf_counter() - t)
    return vectors, statistics.median(times)


def _agreement(ref: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    """(max |got - ref| / max |ref|, min cosine between matching rows) over all modules."""
    rel = float(np.abs(got - ref).max() / np.abs(ref).max())
    cos = (ref * got).sum(-1) / (np.linalg.norm(ref, axis=-1) * np.linalg.norm(got, axis=-1))
    return rel, float(cos.min())


def _epoch_seconds(device, repeats: int, n_sentences: int) -> float:
    run = polar_epoch(n_sentences, dim=64, rank=48, device=device)
    run()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto",
                    help="the accelerator to compare with the CPU (default: auto)")
    ap.add_argument("--sentences", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epoch-sentences", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    run = Run(ap, "device")
    args = ap.parse_args(argv)
    if args.smoke:
        args.device, args.sentences, args.batch_size = "cpu", 4, 2
        args.epoch_sentences, args.repeats = 40, 1
    with run.threads(args):
        return _main(args, run)


def _main(args, run) -> int:
    import torch

    from geoprobe.datasets.treebank import default_treebank_path, read_conllu
    from geoprobe.device import resolve_device

    device = resolve_device(args.device)
    cpu = torch.device("cpu")
    sents = read_conllu(default_treebank_path("dev"), max_sentences=args.sentences)
    n_words = sum(s.n for s in sents)
    ref, ref_s = _extract(sents, args.batch_size, cpu, "float32", args.repeats)
    rows, failed = [], []
    for precision in ("float32", "bfloat16"):
        same = device == cpu and precision == "float32"  # the reference itself: not rerun
        got, secs = ((ref, ref_s) if same else
                     _extract(sents, args.batch_size, device, precision, args.repeats))
        rel, cos = _agreement(ref, got)
        what, limit = TOLERANCE[precision]
        ok = rel < limit if precision == "float32" else cos > limit
        if not ok:
            failed.append(precision)
        rows.append(f"| {device} {precision} | {n_words / secs:.0f} | {rel:.2e} | {cos:.5f} | "
                    f"{what} {'<' if precision == 'float32' else '>'} {limit:g}: "
                    f"{'pass' if ok else 'FAIL'} |")
        print(rows[-1])
    cpu_epoch = _epoch_seconds(cpu, args.repeats, args.epoch_sentences)
    dev_epoch = (cpu_epoch if device == cpu
                 else _epoch_seconds(device, args.repeats, args.epoch_sentences))
    print(f"polar epoch: cpu {cpu_epoch:.3f} s, {device} {dev_epoch:.3f} s")
    lines = [
        "# Extraction and polar-probe training on a device against the CPU",
        "",
        f"Device: {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "") + ".",
        f"Extraction: offline MiniLM, hooked `encoder.layer.*.output` (6 modules), sub-word "
        f"means of the first {len(sents)} UD English-EWT dev sentences ({n_words} words), "
        f"batches of {args.batch_size}; median of {args.repeats} runs after a warm-up. "
        "Agreement against the CPU float32 vectors.",
        "",
        "| where | words/s | max abs diff / max abs value | min row cosine | tolerance |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| cpu float32 (reference) | {n_words / ref_s:.0f} | 0 | 1 | |",
        *rows,
        "",
        f"Polar-probe epoch (planted trees, {args.epoch_sentences} sentences, dim 64, rank 48), "
        f"median of {args.repeats}: cpu {cpu_epoch:.3f} s, {device} {dev_epoch:.3f} s "
        f"(speed-up {cpu_epoch / dev_epoch:.2f}x).",
        "",
        "Agreement: " + ("every tolerance met." if not failed else
                         f"FAILED for {', '.join(failed)}."),
    ]
    run.write(args, "\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
