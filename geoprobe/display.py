"""How results look outside a terminal: HTML from jinja2 templates (notebook display and
``report.html``), figures as data URIs, and pandas DataFrames.

jinja2 and pandas are optional (the ``report`` and ``frame`` extras) and imported here only
when used, so ``import geoprobe`` stays light. The templates in ``geoprobe/templates`` escape
every value (autoescape): probe ids, labels and suite names come from user files.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import io
import math
from collections.abc import Iterable
from pathlib import Path

from .errors import GeoprobeError
from .metric import Metric

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: resolution of figures shown in a notebook (the report reuses the saved 200-dpi PNGs)
NOTEBOOK_DPI = 100


def format_number(x) -> str:
    """A number in 4 significant digits; "" for None, NaN and infinities (shown as blank)."""
    if x is None:
        return ""
    x = float(x)
    if not math.isfinite(x):
        return ""
    return f"{x:.4g}"


def has_jinja() -> bool:
    """Whether HTML can be rendered (the ``report`` extra is installed)."""
    return importlib.util.find_spec("jinja2") is not None


@functools.lru_cache(maxsize=1)
def _environment():
    try:
        import jinja2
    except ImportError:
        raise GeoprobeError("HTML output needs jinja2: pip install 'geoprobe[report]'") from None
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["num"] = format_number
    return env


def render(template: str, **context) -> str:
    """Render ``templates/<template>`` with ``context``, every value HTML-escaped."""
    return _environment().get_template(template).render(**context)


def metric_rows(metrics: Iterable[Metric]) -> tuple[list[dict], list[dict]]:
    """``(findings, baselines)``: one display row per metric, baselines and controls apart.

    Each row has the metric's name, its labels other than ``baseline`` as text, the baseline's
    name (None for a finding), value and interval formatted, the number and unit of resampling
    units, and the direction as an arrow ("" when neither is better).
    """
    findings, baselines = [], []
    for m in metrics:
        lo, hi = format_number(m.ci_low), format_number(m.ci_high)
        row = {"name": m.name,
               "labels": ", ".join(f"{k}={v}" for k, v in m.labels.items() if k != "baseline"),
               "baseline": m.labels.get("baseline"),
               "value": format_number(m.value),
               "ci": f"[{lo}, {hi}]" if lo and hi else "",
               "n": f"{m.n} {m.unit}" if m.n is not None else "",
               "direction": {True: "\u2191", False: "\u2193"}.get(m.higher_is_better, "")}
        (baselines if m.is_baseline else findings).append(row)
    return findings, baselines


def resampling_units(metrics: Iterable[Metric]) -> str:
    """The distinct ``n unit`` pairs behind the intervals, e.g. "200 episode", or ""."""
    seen = dict.fromkeys(f"{m.n} {m.unit}" for m in metrics if m.n is not None)
    return ", ".join(seen)


def png_uri(data: bytes) -> str:
    """PNG bytes as a ``data:`` URI, for an ``<img>`` that needs no file beside the page."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_uri(fig, dpi: int = NOTEBOOK_DPI) -> str:
    """A matplotlib Figure as a PNG ``data:`` URI, in geoprobe's style."""
    from .plotting import style

    buf = io.BytesIO()
    with style():  # the style's tight bounding box applies when saving
        fig.savefig(buf, format="png", dpi=dpi)
    return png_uri(buf.getvalue())


def dataframe(rows: list[dict]):
    """``pandas.DataFrame(rows)``; a clear error when pandas (the ``frame`` extra) is missing."""
    try:
        import pandas
    except ImportError:
        raise GeoprobeError("to_frame() needs pandas: pip install 'geoprobe[frame]'") from None
    return pandas.DataFrame(rows)
