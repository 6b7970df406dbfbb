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
import math
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
                entry[group] = max(ratios) if ratios else math.nan
            table.append(entry)
    return table


def markdown(table: list[dict]) -> str:
    from geoprobe.frames import GROUPS

    lines = ["| probe | metric | " + " | ".join(GROUPS) + " |",
             "|---|---|" + "---|" * len(GROUPS)]
    for e in table:
        cells = [("n/a" if not math.isfinite(e[g]) else
                  f"{'**dependent**' if e[g] > 1 else 'invariant'} ({e[g]:.2g})") for g in GROUPS]
        lines.append(f"| {e['probe']} | {e['metric']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(table: list[dict]):
    from geoprobe.frames import GROUPS
    from geoprobe.plotting import new_figure

    ratio = np.array([[e[g] for g in GROUPS] for e in table], dtype=float)
    value = np.log10(np.clip(ratio, 1e-3, 1e3))
    fig, axes = new_figure(1, width=4.2, aspect=max(1.0, 0.2 * len(table)))
    ax = axes[0][0]
    image = ax.imshow(value, cmap="cividis", vmin=-3, vmax=3, aspect="auto")
    for (i, j), v in np.ndenumerate(ratio):
        text = "n/a" if not math.isfinite(v) else ("dep." if v > 1 else "inv.")
        ax.text(j, i, text, ha="center", va="center", fontsize=5,
                color="black" if math.isfinite(v) and value[i, j] > 1 else "white")
    ax.set_xticks(range(len(GROUPS)), GROUPS)
    ax.set_yticks(range(len(table)), [f"{e['probe']}: {e['metric']}" for e in table],
                  fontsize=4.5)
    ax.set_title("spread across frames / CI width (log10)")
    fig.colorbar(image, ax=ax, shrink=0.4, label="log10 ratio (> 0: frame-dependent)")
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
