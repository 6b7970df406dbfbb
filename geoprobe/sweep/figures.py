"""A sweep's figures, drawn from its table (``sweep.csv``) alone.

* ``dynamics-PROBE-METRIC``: the metric against training step, one line per layer (and other
  labels), with its confidence band: the training dynamics.
* ``heatmap-PROBE-METRIC``: layer x checkpoint, when there are several of each.
* ``grid-KEY-PROBE-METRIC``: the metric against a ``--grid`` value (the lambda study), one
  line per layer, the values evenly spaced in the order given (so 0 and decades share an
  axis).

Baselines are left out: the figures follow what the model learned.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..plotting import PALETTE, interval, legend_outside, new_figure, save_figure, style
from ..safepath import check_name
from .table import COLUMNS

#: most lines a panel draws (a probe with many targets gets the first ones)
MAX_LINES = 8


def figure_stem(*parts) -> str:
    """A file name from table values: unsafe characters become ``_``, then it is checked."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(str(p) for p in parts))[:128]
    return check_name(name, what="figure name")


def _line_label(row, extra=()) -> str:
    parts = [f"layer {row['layer']}" if row["layer"] else "", row["labels"],
             *(f"{k.rsplit('.', 1)[-1]}={row[k]}" for k in extra)]
    return ", ".join(p for p in parts if p) or row["metric"]


def _findings(rows):
    """Non-baseline rows grouped by (probe, metric)."""
    groups = defaultdict(list)
    for row in rows:
        if not row["baseline"]:
            groups[(row["probe"], row["metric"])].append(row)
    return groups


def _lines(rows, x_of, extra=()) -> dict[str, tuple[list, list, list, list]]:
    """Rows split into lines, each (x, value, ci_low, ci_high) sorted by x."""
    lines = defaultdict(list)
    for row in rows:
        x = x_of(row)
        if x is not None:
            lines[_line_label(row, extra)].append((x, row["value"], row["ci_low"],
                                                   row["ci_high"]))
    return {k: tuple(map(list, zip(*sorted(v)))) for k, v in list(lines.items())[:MAX_LINES]}


def _line_figure(lines):
    """A figure one paper column wide, or both columns (and as tall) when a long legend
    sits beside the axes."""
    return new_figure(width="double", aspect=0.4) if len(lines) > 4 else new_figure()


def _draw_lines(ax, lines, *, ticks=None):
    for color, (label, (x, y, lo, hi)) in zip(PALETTE, lines.items()):
        ax.plot(x, y, marker="o", ms=3, color=color, label=label)
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        if np.isfinite(lo).any():
            interval(ax, x, lo, hi, color=color)
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), ticks)
    if len(lines) > 1:  # beside the axes: with many lines a legend inside hides them
        legend_outside(ax)


def dynamics_figures(rows) -> Iterator[tuple[str, Figure]]:
    """Metric vs training step with CI bands, one figure per (probe, metric)."""
    grid_keys = [k for k in (rows[0] if rows else {}) if k not in COLUMNS]
    for (probe, metric), group in _findings(rows).items():
        if len({r["step"] for r in group if r["step"] is not None}) < 2:
            continue
        lines = _lines(group, lambda r: r["step"], grid_keys)
        with style():
            fig, axes = _line_figure(lines)
            ax = axes[0, 0]
            _draw_lines(ax, lines)
            ax.set_xlabel("training step")
            ax.set_ylabel(metric)
            ax.set_title(f"{probe}: {metric} over training")
        yield figure_stem("dynamics", probe, metric), fig


def heatmap_figures(rows) -> Iterator[tuple[str, Figure]]:
    """Layer x checkpoint heatmaps, one per (probe, metric, other labels, grid values)."""
    grid_keys = [k for k in (rows[0] if rows else {}) if k not in COLUMNS]
    for (probe, metric), group in _findings(rows).items():
        panels = defaultdict(list)
        for r in group:
            if r["step"] is not None and r["layer"]:
                extra = [f"{k.rsplit('.', 1)[-1]}={r[k]}" for k in grid_keys]
                panels[tuple(x for x in [r["labels"], *extra] if x)].append(r)
        for extra, cells in panels.items():
            steps = sorted({r["step"] for r in cells})
            layers = list(dict.fromkeys(r["layer"] for r in cells))
            if len(steps) < 2 or len(layers) < 2:
                continue
            grid = np.full((len(layers), len(steps)), np.nan)
            for r in cells:
                grid[layers.index(r["layer"]), steps.index(r["step"])] = r["value"]
            with style():
                fig, axes = new_figure(aspect=0.8)
                ax = axes[0, 0]
                im = ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis")
                ax.set_xticks(range(len(steps)), [str(s) for s in steps], rotation=90)
                ax.set_yticks(range(len(layers)), layers)
                ax.set_xlabel("training step")
                ax.set_ylabel("layer")
                ax.set_title(f"{probe}: {metric}" + (f" ({', '.join(extra)})" if extra else ""))
                fig.colorbar(im, ax=ax, label=metric)
            yield figure_stem("heatmap", probe, metric, *extra), fig


def grid_figures(rows) -> Iterator[tuple[str, Figure]]:
    """Metric vs each grid value, one figure per (grid key, probe, metric)."""
    grid_keys = [k for k in (rows[0] if rows else {}) if k not in COLUMNS]
    for key in grid_keys:
        values = list(dict.fromkeys(r[key] for r in rows))
        if len(values) < 2:
            continue
        others = [k for k in grid_keys if k != key]
        for (probe, metric), group in _findings(rows).items():
            if any(r["step"] is not None for r in group):
                group = [r for r in group if r["step"] == max(x["step"] for x in group)]
            lines = _lines(group, lambda r: values.index(r[key]), others)
            with style():
                fig, axes = _line_figure(lines)
                ax = axes[0, 0]
                _draw_lines(ax, lines, ticks=values)
                name = key.rsplit(".", 1)[-1]
                ax.set_xlabel(name)
                ax.set_ylabel(metric)
                ax.set_title(f"{probe}: {metric} vs {name}")
            yield figure_stem("grid", name, probe, metric), fig


def draw_figures(rows) -> Iterator[tuple[str, Figure]]:
    """Every figure the table's rows (:func:`~geoprobe.sweep.table.read_table`) support, as
    (file stem, Figure)."""
    yield from dynamics_figures(rows)
    yield from heatmap_figures(rows)
    yield from grid_figures(rows)


def sweep_figures(rows, out_dir, formats=("pdf", "png")) -> list[Path]:
    """Draw every figure and save it in ``out_dir``; the paths written."""
    return [p for stem, fig in draw_figures(rows)
            for p in save_figure(fig, Path(out_dir) / stem, formats)]
