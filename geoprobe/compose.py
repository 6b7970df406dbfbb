"""Paper figures composed from several results files (``geoprobe figure SPEC.toml -o fig.pdf``).

A small TOML spec names the panels, each drawn from a results.json alone, and the layout; one
command regenerates the figure at a journal's column or page width, in the shared style
(:mod:`geoprobe.plotting`), with panel letters, as PDF, SVG or PNG by the output's extension::

    [figure]
    width = "page"        # "column" (3.5 in), "page" (7.2 in) or a width in inches
    cols = 2              # panels per row (default: all in one row)
    aspect = 0.7          # height / width of one panel (default 0.75)
    letters = true        # a, b, c, ... (default true)

    [[panels]]            # a probe's own figure, or one of its axes
    results = "runs/planted/results.json"   # or the folder holding it
    probe = "spectrum"    # the probe id in that file
    axes = 1              # optional: only this axes of the figure (0-based, row by row)

    [[panels]]            # one metric across runs: a sweep, seeds, checkpoints
    kind = "trend"
    results = ["runs/noise-0.001", "runs/noise-0.05", "runs/noise-0.2"]
    x = "suite.config.sources.planted.params.noise"   # a dotted key in each file, or a list
    probe = "spectrum"
    metric = "rankme"
    labels = { layer = "rank4" }
    baseline = "gaussian" # optional: the same metric's baseline, drawn as a dashed band
    xscale = "log"        # optional: "linear" (default) or "log"
    xlabel = "noise"      # optional; title = "..." also

Paths are relative to the spec file and must stay inside its folder (:func:`~geoprobe.safepath
.inside`), as a spec may come from someone else. Every key is checked before anything is
drawn, and an error names the spec file, the panel and the key.

A probe's figure is drawn into its panel with :func:`geoprobe.plotting.drawing_into`, so it is
the figure ``geoprobe report`` draws, only smaller; a probe whose ``plot`` builds its own
figure instead of calling ``new_figure`` (``cosine-nonuniqueness``) cannot be a panel.
"""

from __future__ import annotations

import math
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .errors import GeoprobeError, SuiteError, first_line
from .plotting import BASELINE_COLOR, PALETTE, baseline_band, drawing_into, save_figure, style
from .probe import ProbeResult
from .registry import get_probe
from .safepath import inside
from .suite import _check_keys

#: journal widths in inches: one column of a two-column page, and the full text width
JOURNAL_WIDTH = {"column": 3.5, "page": 7.2}
KINDS = ("figure", "trend")

_FIGURE_KEYS = {"width": (str, int, float), "cols": int, "aspect": (int, float),
                "letters": bool}
_PANEL_KEYS = {"kind": str, "results": (str, list), "probe": str, "axes": int, "x": (str, list),
               "metric": str, "labels": dict, "baseline": str, "xscale": str, "xlabel": str,
               "title": str}


@dataclass
class Panel:
    """One panel: ``kind`` "figure" (``results`` has one path) or "trend" (one per run)."""

    kind: str
    results: list[Path]
    probe: str
    where: str
    axes: int | None = None
    x: str | list | None = None
    metric: str = ""
    labels: dict = field(default_factory=dict)
    baseline: str | None = None
    xscale: str = "linear"
    xlabel: str | None = None
    title: str | None = None


@dataclass
class FigureSpec:
    path: Path
    width: float
    cols: int
    aspect: float
    letters: bool
    panels: list[Panel]


def load_spec(path) -> FigureSpec:
    """Read and check a figure spec; raises GeoprobeError naming the file, panel and key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GeoprobeError(f"{path}: figure spec not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise GeoprobeError(f"{path}: not a readable TOML figure spec: {first_line(exc)}"
                            ) from None
    _check_keys(raw, {"figure": dict, "panels": list}, str(path))
    head = raw.get("figure", {})
    _check_keys(head, _FIGURE_KEYS, f"{path} [figure]")
    width = head.get("width", "page")
    if isinstance(width, str):
        if width not in JOURNAL_WIDTH:
            raise SuiteError(f"{path} [figure]: width {width!r} is not one of "
                             f"{sorted(JOURNAL_WIDTH)} or a number of inches")
        width = JOURNAL_WIDTH[width]
    if not 0.5 <= width <= 20:
        raise SuiteError(f"{path} [figure]: width {width} in is not between 0.5 and 20")
    panels = [_panel(p, i, path) for i, p in enumerate(raw.get("panels", []))]
    if not panels:
        raise SuiteError(f"{path}: no [[panels]]")
    cols = head.get("cols", len(panels))
    aspect = head.get("aspect", 0.75)
    if cols < 1 or not 0.1 <= aspect <= 5:
        raise SuiteError(f"{path} [figure]: cols must be >= 1 and aspect in [0.1, 5], got "
                         f"{cols} and {aspect}")
    return FigureSpec(path, float(width), min(cols, len(panels)), float(aspect),
                      head.get("letters", True), panels)


def _panel(raw, i: int, spec_path: Path) -> Panel:
    where = f"{spec_path} [[panels]] #{i + 1}"
    _check_keys(raw, _PANEL_KEYS, where)
    kind = raw.get("kind", "figure")
    if kind not in KINDS:
        raise SuiteError(f"{where}: kind {kind!r} is not one of {list(KINDS)}")
    need = ("results", "probe") + (("x", "metric") if kind == "trend" else ())
    for key in need:
        if key not in raw:
            raise SuiteError(f"{where}: missing '{key}' (a {kind} panel needs {', '.join(need)})")
    files = raw["results"] if isinstance(raw["results"], list) else [raw["results"]]
    if not files or not all(isinstance(f, str) for f in files):
        raise SuiteError(f"{where}: 'results' must be a path or a list of paths")
    if kind == "figure" and len(files) != 1:
        raise SuiteError(f"{where}: a figure panel draws one results file, got {len(files)}")
    if kind == "trend" and isinstance(raw["x"], list) and len(raw["x"]) != len(files):
        raise SuiteError(f"{where}: 'x' has {len(raw['x'])} values for {len(files)} results")
    if raw.get("xscale", "linear") not in ("linear", "log"):
        raise SuiteError(f"{where}: xscale must be 'linear' or 'log', got {raw['xscale']!r}")
    base = spec_path.parent
    paths = [inside(base, f, what=f"{where}: results", error=SuiteError) for f in files]
    return Panel(kind=kind, results=paths, probe=raw["probe"], where=where,
                 axes=raw.get("axes"), x=raw.get("x"), metric=raw.get("metric", ""),
                 labels={k: str(v) for k, v in raw.get("labels", {}).items()},
                 baseline=raw.get("baseline"), xscale=raw.get("xscale", "linear"),
                 xlabel=raw.get("xlabel"), title=raw.get("title"))


def compose(spec: FigureSpec) -> Figure:
    """The composed figure: panels on a grid of ``spec.cols`` columns, lettered a, b, ..."""
    from .runner import load_results

    docs = {}
    for panel in spec.panels:  # read and check every file before drawing anything
        for p in panel.results:
            if p not in docs:
                docs[p] = load_results(p)
    rows = math.ceil(len(spec.panels) / spec.cols)
    panel_w = spec.width / spec.cols
    with style():
        fig = Figure(figsize=(spec.width, panel_w * spec.aspect * rows), layout="constrained")
        subfigs = fig.subfigures(rows, spec.cols, squeeze=False).ravel()
        for i, (panel, sub) in enumerate(zip(spec.panels, subfigs)):
            if panel.kind == "figure":
                _draw_figure(panel, docs[panel.results[0]], sub)
            else:
                _draw_trend(panel, [docs[p] for p in panel.results], sub)
            if spec.letters:
                sub.suptitle(string.ascii_lowercase[i % 26], x=0.0, ha="left",
                             fontweight="bold", fontsize=10)
    return fig


def _entry(panel: Panel, doc: dict, path: Path) -> ProbeResult:
    entry = doc["probes"].get(panel.probe)
    if entry is None:
        raise GeoprobeError(f"{panel.where}: no probe id {panel.probe!r} in {path}; its ids are "
                            f"{sorted(doc['probes'])}")
    return ProbeResult.from_dict(entry)


def _draw_figure(panel: Panel, doc: dict, sub) -> None:
    result = _entry(panel, doc, panel.results[0])
    cls = get_probe(result.probe)
    with drawing_into(sub):
        drawn = cls.plot(result)
    if drawn is not sub:
        raise GeoprobeError(f"{panel.where}: the {result.probe} probe draws its own figure "
                            "and cannot be drawn as a panel")
    if panel.axes is None:
        return
    axes = sub.axes
    if not 0 <= panel.axes < len(axes):
        raise GeoprobeError(f"{panel.where}: axes {panel.axes} is out of range; the "
                            f"{result.probe} figure has {len(axes)} (0 to {len(axes) - 1})")
    keep = axes[panel.axes]
    for ax in axes:
        if ax is not keep:
            ax.remove()
    sub.legends.clear()  # a legend for the whole figure names what is no longer there
    keep.set_subplotspec(sub.add_gridspec(1, 1)[0])


def _draw_trend(panel: Panel, docs: list[dict], sub) -> None:
    """The metric (and its baseline) in each run, with 95 % CIs, against ``x``."""
    xs = panel.x if isinstance(panel.x, list) else [_lookup(d, panel.x, panel) for d in docs]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
    pos = np.asarray(xs, float) if numeric else np.arange(len(xs), dtype=float)
    ax = sub.subplots()
    lines = [(None, PALETTE[0])] + ([(panel.baseline, BASELINE_COLOR)] if panel.baseline else [])
    for baseline, color in lines:
        labels = dict(panel.labels, **({"baseline": baseline} if baseline else {}))
        ms = [_entry(panel, d, p).find(panel.metric, **labels)
              for d, p in zip(docs, panel.results)]
        missing = [str(p) for p, m in zip(panel.results, ms) if m is None]
        if missing:
            raise GeoprobeError(f"{panel.where}: no metric {panel.metric!r} with labels "
                                f"{labels} in {', '.join(missing)}")
        values = np.array([m.value for m in ms])
        low = np.array([m.ci_low if math.isfinite(m.ci_low) else m.value for m in ms])
        high = np.array([m.ci_high if math.isfinite(m.ci_high) else m.value for m in ms])
        if baseline:
            baseline_band(ax, pos, low, high, label=None)
            ax.plot(pos, values, ls="--", color=color, label=f"{baseline} baseline")
        else:
            ax.errorbar(pos, values, yerr=np.clip([values - low, high - values], 0, None),
                        marker="o", capsize=2, color=color, label=f"{panel.metric} (95% CI)")
    ax.set_xscale(panel.xscale)  # before the ticks: a new scale resets them
    if not numeric:
        ax.set_xticks(pos, [str(v) for v in xs])
    ax.set_xlabel(panel.xlabel or (panel.x if isinstance(panel.x, str) else ""))
    ax.set_ylabel(panel.metric)
    ax.set_title(panel.title or f"{panel.metric} "
                 + ", ".join(f"{k}={v}" for k, v in panel.labels.items()))
    ax.legend(frameon=False)


def _lookup(doc: dict, dotted: str, panel: Panel):
    value = doc
    for key in dotted.split("."):
        if isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            raise GeoprobeError(f"{panel.where}: x {dotted!r}: a results file has no {key!r} "
                                "there")
    return value


def write_figure(spec_path, out) -> Path:
    """Compose the figure a spec describes and save it to ``out`` (format by extension)."""
    out = Path(out)
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in ("pdf", "svg", "png"):
        raise GeoprobeError(f"{out}: the output must end in .pdf, .svg or .png")
    fig = compose(load_spec(spec_path))
    return save_figure(fig, out.with_suffix(""), formats=(fmt,))[0]
