"""Which shipped metrics depend on the coordinate frame? Every probe on its own example input.

For every registered probe that needs no live model, runs the probe on its
``example_input`` (small planted data, fast parameters), then reruns it on ``--n-frames``
reframed copies per group (orthogonal, diagonal, linear; :mod:`geoprobe.frames`), and reduces
each metric to its largest ratio of spread over CI width across its labels (layers, targets).
Writes ``frames.json`` (every row), ``frames.md`` (the table) and ``frames.png`` (the figure)
into ``--out``.

    python examples/frame_sensitivity.py --out docs/figures --n-frames 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def measure(n_frames: int, seed: int) -> dict:
    from geoprobe.frames import GROUPS, frame_sensitivity
    from geoprobe.registry import available, get_probe

    out = {}
    for name in sorted(available()):
        cls = get_probe(name)
        ex = cls.example_input(np.random.default_rng(seed))
        if cls.requires.model or ex.model is not None:
            print(f"{name}: skipped (needs a live model)")
            continue
        t0 = time.perf_counter()
        probe = cls(**ex.params)
        result = probe.run(ex.embeddings, annotations=ex.annotations, seed=seed, twin=False,
                           progress=False)
        rows = frame_sensitivity(probe, ex.embeddings, result, groups=GROUPS,
                                 n_frames=n_frames, seed=seed, annotations=ex.annotations)
        out[name] = rows
        print(f"{name}: {len(rows)} rows in {time.perf_counter() - t0:.0f} s")
    return out


def summarise(results: dict) -> list[dict]:
    """One row per (probe, metric): the largest ratio per group over the metric's labels."""
    from geoprobe.frames import GROUPS

    table = []
    for probe, rows in results.items():
        names = list(dict.fromkeys(r["metric"] for r in rows))
        for name in names:
            entry = {"probe": probe, "metric": name}
            for group in GROUPS:
                ratios = [r["ratio"] for r in rows if r["metric"] == name and r["group"] == group
                          and r["ratio"] is not None]
                entry[group] = max(ratios) if ratios else None  # None: the probe refused
            table.append(entry)
    return table


def markdown(table: list[dict]) -> str:
    from geoprobe.frames import GROUPS

    lines = ["| probe | metric | " + " | ".join(GROUPS) + " |",
             "|---|---|" + "---|" * len(GROUPS)]
    for e in table:
        cells = [("n/a" if e[g] is None else
                  f"{'**dependent**' if e[g] > 1 else 'invariant'} ({e[g]:.2g})") for g in GROUPS]
        lines.append(f"| {e['probe']} | {e['metric']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(table: list[dict]):
    """Per probe and group: the share of its metrics found frame-dependent (k/n annotated;
    the metric-by-metric verdicts are in the table)."""
    from geoprobe.frames import GROUPS
    from geoprobe.plotting import new_figure

    probes = list(dict.fromkeys(e["probe"] for e in table))
    share = np.full((len(probes), len(GROUPS)), np.nan)
    labels = np.full(share.shape, "n/a", dtype=object)
    for i, probe in enumerate(probes):
        for j, g in enumerate(GROUPS):
            ratios = [e[g] for e in table if e["probe"] == probe and e[g] is not None]
            if ratios:
                k = sum(r > 1 for r in ratios)
                share[i, j] = k / len(ratios)
                labels[i, j] = f"{k}/{len(ratios)}"
    fig, axes = new_figure(1, width="single", aspect=0.12 * len(probes) + 0.2)
    ax = axes[0][0]
    image = ax.imshow(share, cmap="cividis", vmin=0, vmax=1, aspect="auto")
    for (i, j), text in np.ndenumerate(labels):
        ax.text(j, i, text, ha="center", va="center", fontsize=6,
                color="white" if np.isfinite(share[i, j]) and share[i, j] < 0.6 else "black")
    ax.set_xticks(range(len(GROUPS)), GROUPS, fontsize=6)
    ax.set_yticks(range(len(probes)), probes)
    ax.set_title("metrics found frame-dependent")
    fig.colorbar(image, ax=ax, shrink=0.5, label="share of the probe's metrics")
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("frames-out"))
    ap.add_argument("--n-frames", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from geoprobe.plotting import save_figure, style
    from geoprobe.provenance import environment, write_json_atomic, write_text_atomic

    results = measure(args.n_frames, args.seed)
    table = summarise(results)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "frames.json",
                      {"n_frames": args.n_frames, "seed": args.seed,
                       "environment": environment(), "summary": table, "rows": results})
    write_text_atomic(args.out / "frames.md", markdown(table))
    with style():
        save_figure(figure(table), args.out / "frames", formats=("png",))
    print(markdown(table))


if __name__ == "__main__":
    main()
