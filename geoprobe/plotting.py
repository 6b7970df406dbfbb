"""One publication style for every probe's figure, and saving to vector and raster files.

Probes draw with plain matplotlib inside :func:`style`; colours come from :data:`PALETTE`
(Okabe–Ito, safe for colour-blind readers) and baselines are drawn with :func:`baseline_band`
so they look the same in every figure. Intervals and reference lines drawn over the layers go
through :func:`interval`, :func:`baseline_band` and :func:`reference`, which fall back to error
bars and markers when there is one layer (a band or line over one x position has no width and
would vanish). Figures are saved, never shown.

Figures are :class:`matplotlib.figure.Figure` objects made without pyplot: they need no
backend, open no window, are not kept alive by pyplot's registry, and importing geoprobe
leaves the user's backend (a notebook's inline one, say) as it was. A notebook still shows a
returned figure, through the figure's own rich display.

A probe's figure can also be drawn as one panel of a larger figure (``geoprobe figure``,
:mod:`geoprobe.compose`): inside :func:`drawing_into`, :func:`new_figure` lays its axes out in
the given sub-figure instead of making a new figure, so every probe's ``plot`` draws into a
panel unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .provenance import atomic_path
from .safepath import check_name

#: Okabe & Ito (2008) colour-blind-safe palette
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000"]
BASELINE_COLOR = "#999999"

#: resolution of saved raster figures (PNG), dots per inch
SAVE_DPI = 200

#: single-column and double-column widths in inches (typical two-column paper)
WIDTH = {"single": 3.4, "double": 7.0}

#: the sub-figure new_figure draws into, inside drawing_into(); None: a new figure
_TARGET = contextvars.ContextVar("geoprobe_figure_target", default=None)

_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "lines.linewidth": 1.4,
    "savefig.dpi": SAVE_DPI,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # embed TrueType so text stays editable in vector editors
    "svg.fonttype": "none",
}


@contextlib.contextmanager
def style():
    """Context in which figures get geoprobe's style."""
    with matplotlib.rc_context(_RC):
        yield


@contextlib.contextmanager
def drawing_into(subfigure):
    """Within the block, :func:`new_figure` returns ``subfigure`` (a
    :class:`matplotlib.figure.SubFigure` of a larger figure) and axes laid out in it, so a
    probe's ``plot`` draws one panel of a composed figure; its size then comes from the
    larger figure, not from ``width`` and ``aspect``."""
    token = _TARGET.set(subfigure)
    try:
        yield subfigure
    finally:
        _TARGET.reset(token)


def new_figure(ncols: int = 1, nrows: int = 1, *, width: str | float = "single",
               aspect: float = 0.75, **kwargs):
    """A figure and axes sized for a paper column; ``aspect`` is height/width per panel.

    Returns ``(figure, axes)`` with ``axes`` of shape (nrows, ncols); inside
    :func:`drawing_into`, the figure is the target sub-figure.
    """
    target = _TARGET.get()
    if target is not None:
        return target, target.subplots(nrows, ncols, squeeze=False, **kwargs)
    w = WIDTH.get(width, width) if isinstance(width, str) else width
    h = w / ncols * aspect * nrows
    fig = Figure(figsize=(w, h), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kwargs)


def interval(ax, x, low, high, *, color, label=None, alpha=0.2, zorder=None):
    """Shade the interval ``[low, high]`` (each shape (n,)) over positions ``x`` (n,).

    With one position a band has zero width and would not show, so the interval is drawn as a
    thick translucent error bar instead (an :class:`~matplotlib.container.ErrorbarContainer`).
    """
    x = np.asarray(x, dtype=float)
    low, high = np.broadcast_to(low, x.shape), np.broadcast_to(high, x.shape)
    if len(x) > 1:
        return ax.fill_between(x, low, high, color=color, alpha=alpha, lw=0, label=label,
                               zorder=zorder)
    # translucent like the band, but darker: a 5-point bar covers far less area than a band
    return ax.errorbar(x, (low + high) / 2, yerr=(high - low) / 2, fmt="none", ecolor=color,
                       elinewidth=5, alpha=min(1.0, alpha + 0.3), capsize=0, label=label,
                       zorder=zorder)


def baseline_band(ax, x, low, high, *, label="baseline", color=BASELINE_COLOR):
    """Shade a baseline's interval under the main curves (an error bar at one position)."""
    return interval(ax, x, low, high, color=color, label=label, alpha=0.3, zorder=0)


def reference(ax, x, y, *, color=BASELINE_COLOR, ls=":", label=None):
    """Draw reference values ``y`` (n,) over positions ``x`` (n,), e.g. a trivial predictor.

    A line through one point has no length, so with one position the value is drawn as a
    wide horizontal tick marker instead.
    """
    if len(x) > 1:
        return ax.plot(x, y, color=color, ls=ls, label=label)
    return ax.plot(x, y, ls="none", marker="_", ms=14, mew=1.5, color=color, label=label)


def plain_log_ticks(axis):
    """Label a log-scaled ``axis`` (``ax.yaxis``, ``ax.xaxis``) with plain numbers (4, 10,
    20) instead of matplotlib's ``4 x 10^0``, which a count axis does not need."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def layer_axis(ax, layers, *, rotate_over=8):
    """Label the x axis of ``ax`` with the layer names ``layers`` at positions 0..n-1; with
    one layer, centre it in a fixed-width axis rather than matplotlib's degenerate one."""
    x = np.arange(len(layers))
    # rotated names end under their tick (centred, long names ran into the next one)
    rotate = len(layers) > rotate_over
    ax.set_xticks(x, [str(layer) for layer in layers], rotation=30 if rotate else 0,
                  ha="right" if rotate else "center", rotation_mode="anchor")
    ax.set_xlabel("layer")
    if len(layers) == 1:
        ax.set_xlim(-0.6, 0.6)


def legend_outside(ax, **kwargs):
    """Place ``ax``'s legend right of the axes, where it cannot cover the data; the
    constrained layout narrows the axes to make room for it."""
    return ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                     borderaxespad=0, **kwargs)


def save_figure(fig, stem, formats=("pdf", "png")) -> list[Path]:
    """Save ``fig`` as ``stem.<fmt>`` for each format, each written atomically.

    Formats come from the command line (``--formats``) and end the file name, so each must be
    a plain name: ``pdf``, ``png``, ``svg``.
    """
    stem = Path(stem)
    paths = []
    for fmt in formats:
        check_name(fmt, what="figure format")
    stem.parent.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        # the style's savefig settings (200 dpi, tight bounding box) apply when saving, not
        # when drawing, so the style must be active here too
        with atomic_path(path) as tmp, style():
            fig.savefig(tmp, format=fmt)
        paths.append(path)
    return paths
