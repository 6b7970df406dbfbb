"""Coverage of the fracture probe's ``transfer_ratio`` interval on planted data.

For each setting (fractured with context-direction overlap 0, 0.25, 0.5, 0.75, and unified),
generates ``--datasets`` planted sets (``planted_fracture``, seeds 0..N-1), runs the fracture
probe (its interval refits every probe on ``--refits`` cluster-bootstrap replicates over the
sets' groups) and counts the sets whose interval covers the population value
(``planted_transfer_ratio``, checked against 30000-item sets in ``docs/fracture.md``).
Writes ``benchmarks/results/coverage_fracture.md`` (``--out`` elsewhere).

    python benchmarks/coverage_fracture.py [--datasets 10] [--refits 100] [--smoke]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import Run  # this script's folder is on sys.path
from calibration_gaussianity import clopper_pearson

from geoprobe.datasets.fracture import planted_fracture, planted_transfer_ratio
from geoprobe.registry import make_probe

SETTINGS = (("fractured", 0.0), ("fractured", 0.25), ("fractured", 0.5), ("fractured", 0.75),
            ("unified", 1.0))


def main():
    ap = argparse.ArgumentParser()
    run = Run(ap, "coverage_fracture")
    ap.add_argument("--datasets", type=int, default=10, help="planted sets per setting")
    ap.add_argument("--refits", type=int, default=100, help="refitting replicates")
    ap.add_argument("--n-items", type=int, default=2000)
    args = ap.parse_args()
    splits = 5
    if args.smoke:
        args.datasets, args.refits, args.n_items, splits = 1, 4, 300, 3
    with run.threads(args):
        _main(args, run, splits)


def _main(args, run, splits):
    t0 = time.perf_counter()
    lines = [f"# Coverage: fracture transfer_ratio interval on planted data ({args.datasets} "
             f"sets per setting, {args.n_items} items, 4 contexts, groups of 10)", "",
             f"Probe: `fracture` with `n_refits={args.refits}` (every within- and "
             "cross-context probe refitted per cluster-bootstrap replicate over groups), 95% "
             "basic interval; truth: `planted_transfer_ratio` (population value).", "",
             "| set | overlap | truth | mean estimate | covered | rate | 95% binomial interval "
             "| mean width |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    total = hits = 0
    for kind, overlap in SETTINGS:
        truth = planted_transfer_ratio(kind, overlap=overlap)
        est, covered, width = [], [], []
        for seed in range(args.datasets):
            emb = planted_fracture(kind, n_items=args.n_items, overlap=overlap, seed=seed)
            probe = make_probe("fracture", target="factor", context="context", group="group",
                               n_splits=splits, n_resamples=2, noise_levels=(1.0,), n_boot=20,
                               n_refits=args.refits)
            m = probe.run(emb, seed=seed).metric("transfer_ratio", target="factor")
            est.append(m.value)
            covered.append(bool(m.ci_low <= truth <= m.ci_high))
            width.append(m.ci_high - m.ci_low)
        k = int(np.sum(covered))
        total, hits = total + len(covered), hits + k
        lo, hi = clopper_pearson(k, len(covered))
        lines.append(f"| {kind} | {overlap:g} | {truth:.3f} | {np.mean(est):.3f} | "
                     f"{k}/{len(covered)} | {k / len(covered):.2f} | [{lo:.2f}, {hi:.2f}] | "
                     f"{np.mean(width):.3f} |")
    lo, hi = clopper_pearson(hits, total)
    lines += ["", f"All settings: {hits}/{total} covered ({hits / total:.2f}, 95% binomial "
              f"interval [{lo:.2f}, {hi:.2f}]); nominal 0.95. "
              f"{time.perf_counter() - t0:.0f} s.", ""]
    text = "\n".join(lines)
    print(text)
    run.write(args, text)


if __name__ == "__main__":
    main()
