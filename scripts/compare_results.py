"""Compare every metric of two geoprobe results files; exit 1 when any differs.

Usage::

    python scripts/compare_results.py OLD/results.json NEW/results.json [--rtol 1e-12] [--atol 0]

A metric is identified by its probe entry and its key (``name[label=value,...]``); for each
one present in either file, ``value``, ``ci_low``, ``ci_high`` and ``n`` are compared. Numbers
must match exactly unless a tolerance is given (``|new - old| <= atol + rtol * |old|``); NaN
matches NaN and an infinity matches the same infinity. A metric found in one file only is a
difference too. Per probe entry the script prints how many metrics it compared and the largest
absolute difference, then lists every difference (or says that there are none).

Refactors that must not change numbers (same seed, same draws) are checked with it: run a
suite before and after, then compare the two ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter

FIELDS = ("value", "ci_low", "ci_high", "n")


def _number(x):
    """Stored numbers: floats, ints, None, or NaN/Inf written as strings."""
    if x is None:
        return math.nan
    return float(x)


def metric_table(path) -> dict[str, dict[str, dict]]:
    """``{probe entry: {metric key: metric dict}}`` of one results file.

    Repeated keys within an entry (which a probe should not produce) get ``#2``, ``#3``, ...
    so that they are compared in order instead of overwriting one another.
    """
    with open(path) as f:
        data = json.load(f)
    table = {}
    for entry, result in data["probes"].items():
        seen, metrics = Counter(), {}
        for m in result.get("metrics", []):
            labels = m.get("labels") or {}
            key = m["name"] + ("[" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
                               + "]" if labels else "")
            seen[key] += 1
            metrics[key if seen[key] == 1 else f"{key}#{seen[key]}"] = m
        table[entry] = metrics
    return table


def field_difference(old, new, rtol: float, atol: float) -> float | None:
    """Absolute difference of one field when beyond tolerance, else None (inf: not comparable)."""
    a, b = _number(old), _number(new)
    if math.isnan(a) and math.isnan(b):
        return None
    if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b):
        return None if a == b else math.inf
    diff = abs(b - a)
    return diff if diff > atol + rtol * abs(a) else None


def compare(old_path, new_path, rtol: float = 0.0, atol: float = 0.0):
    """Per-entry summaries ``(entry, n_compared, max_abs_diff)`` and a list of differences."""
    old, new = metric_table(old_path), metric_table(new_path)
    summaries, differences = [], []
    for entry in sorted(set(old) | set(new)):
        if entry not in old or entry not in new:
            differences.append(f"{entry}: probe entry only in "
                               f"{'NEW' if entry in new else 'OLD'}")
            continue
        a, b = old[entry], new[entry]
        n_compared, max_diff = 0, 0.0
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                differences.append(f"{entry}: {key} only in {'NEW' if key in b else 'OLD'}")
                continue
            n_compared += 1
            for field in FIELDS:
                x, y = a[key].get(field), b[key].get(field)
                fx, fy = _number(x), _number(y)
                if math.isfinite(fx) and math.isfinite(fy):
                    max_diff = max(max_diff, abs(fy - fx))
                if field_difference(x, y, rtol, atol) is not None:
                    differences.append(f"{entry}: {key} {field}: {x!r} -> {y!r}")
        summaries.append((entry, n_compared, max_diff))
    return summaries, differences


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="results.json of the reference run")
    parser.add_argument("new", help="results.json of the run to check")
    parser.add_argument("--rtol", type=float, default=0.0,
                        help="relative tolerance (default 0: exact match)")
    parser.add_argument("--atol", type=float, default=0.0,
                        help="absolute tolerance (default 0: exact match)")
    args = parser.parse_args(argv)
    summaries, differences = compare(args.old, args.new, args.rtol, args.atol)
    for entry, n_compared, max_diff in summaries:
        print(f"{entry}: {n_compared} metrics compared, max abs difference {max_diff:.3g}")
    total = sum(s[1] for s in summaries)
    if differences:
        print(f"{len(differences)} difference(s) beyond rtol={args.rtol:g}, atol={args.atol:g}:")
        for line in differences:
            print("  " + line)
        return 1
    print(f"all {total} metrics match (rtol={args.rtol:g}, atol={args.atol:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
