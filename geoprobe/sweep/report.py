"""A sweep's ``report.html``, from ``sweep.json``, ``sweep.csv`` and ``figures/`` alone.

The page is the run page's skeleton (``templates/_page.html.j2``): the suite and its
provenance first, then the checks at every checkpoint and the trends across them (failed
first, with a pass/fail summary), the sweep's figures (embedded PNGs, each with alt text and a
caption), and the last checkpoint's metrics, findings and baselines in separate tables.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..display import metric_rows, png_uri, render
from ..errors import FormatError
from ..metric import Metric
from ..provenance import write_text_atomic
from ..report_html import HTML_REPORT, page_context
from ..results import checks_failed_first
from ..safepath import check_name, inside
from .figures import figure_stem
from .table import COLUMNS, read_table

#: the file that marks a folder as a sweep's (``geoprobe report`` tells the two apart by it)
SWEEP_FILE = "sweep.json"


def figure_captions(rows) -> dict[str, tuple[str, str]]:
    """``{file stem: (kind, caption)}`` for every figure the table's findings can give; a
    heatmap's stem goes on with its labels and grid values."""
    grid_keys = [k for k in (rows[0] if rows else {}) if k not in COLUMNS]
    found = {}
    for probe, metric in dict.fromkeys((r["probe"], r["metric"]) for r in rows
                                       if not r["baseline"]):
        found[figure_stem("dynamics", probe, metric)] = (
            "dynamics", f"{probe}: {metric} against training step, one line per layer; the "
                        f"bands are 95% confidence intervals")
        found[figure_stem("heatmap", probe, metric)] = (
            "heatmap", f"{probe}: {metric} by layer (rows) and training step (columns), "
                       f"the colour giving the value")
        for key in grid_keys:
            name = key.rsplit(".", 1)[-1]
            found[figure_stem("grid", name, probe, metric)] = (
                "grid", f"{probe}: {metric} against {name} at the last checkpoint, the values "
                        f"evenly spaced in the order given, one line per layer; the bands are "
                        f"95% confidence intervals")
    return found


def caption_of(stem: str, captions: dict) -> str:
    """The caption of the figure saved as ``stem``: the longest known stem it matches."""
    for known in sorted(captions, key=len, reverse=True):
        kind, text = captions[known]
        if stem == known:
            return text + "."
        if kind == "heatmap" and stem.startswith(known + "-"):
            return f"{text} ({stem[len(known) + 1:]})."
    return f"{stem} (drawn from sweep.csv)."


def _figures(doc: dict, out_dir: Path, rows) -> list[dict]:
    """The PNGs sweep.json lists, as data URIs with alt text and caption (None when the
    file is gone)."""
    captions, figures = figure_captions(rows), []
    for name in doc.get("files", {}).get("figures", []):
        if not name.endswith(".png"):
            continue
        # the names come from sweep.json, which may come from anywhere
        path = inside(out_dir / "figures", check_name(name, what="sweep.json figure",
                                                      error=FormatError),
                      what="sweep.json figure", error=FormatError)
        caption = caption_of(name[:-4], captions)
        figures.append({"name": name, "caption": caption,
                        "alt": f"Figure of the sweep: {caption} The numbers are in sweep.csv.",
                        "uri": png_uri(path.read_bytes()) if path.is_file() else None})
    return figures


def _metric(row: dict) -> Metric:
    """A table row back as a Metric (its labels: layer, the other labels, baseline)."""
    labels = {"layer": row["layer"]} if row["layer"] else {}
    labels.update(part.split("=", 1) for part in row["labels"].split(";") if "=" in part)
    if row["baseline"]:
        labels["baseline"] = row["baseline"]
    return Metric(row["metric"], row["value"], row["ci_low"], row["ci_high"],
                  n=int(float(row["n"])) if row["n"] else None, unit=row["unit"] or "rows",
                  labels=labels,
                  higher_is_better={"True": True, "False": False}.get(row["higher_is_better"]))


def _final_tables(rows) -> tuple[int | None, list[dict]]:
    """``(last step, tables)``: the metrics of the last checkpoint (every input when no
    file name has a step), one findings/baselines pair per (probe, input)."""
    steps = [r["step"] for r in rows if r["step"] is not None]
    last = max(steps) if steps else None
    groups = defaultdict(list)
    for r in rows:
        if r["step"] == last:
            groups[(r["probe"], r["source"])].append(_metric(r))
    tables = []
    for (probe, source), metrics in groups.items():
        findings, baselines = metric_rows(metrics)
        tables.append({"what": f"{probe} on {source}", "findings": findings,
                       "baselines": baselines})
    return last, tables


def sweep_context(doc: dict, out_dir) -> dict:
    """What ``sweep.html.j2`` shows, from the sweep dict ``doc`` and ``out_dir``'s
    sweep.csv and figures."""
    out_dir = Path(out_dir)
    rows = read_table(out_dir / "sweep.csv")
    checks, n_passed, n_failed = checks_failed_first(doc)
    last, tables = _final_tables(rows)
    suite = doc.get("suite", {})
    executor = doc.get("executor")
    return {**page_context(doc),
            "description": suite.get("config", {}).get("suite", {}).get("description") or "",
            "overrides": suite.get("overrides", []), "grid": suite.get("grid", []),
            "executor": executor if isinstance(executor, str)
            else ", ".join(f"{k} {v}" for k, v in (executor or {}).items() if v is not None),
            "counts": doc.get("counts", {}), "n_variants": len(doc.get("variants", [])),
            "checks": checks, "n_passed": n_passed, "n_failed": n_failed,
            "figures": _figures(doc, out_dir, rows), "last_step": last, "tables": tables}


def render_sweep_report(doc: dict, out_dir) -> str:
    """The HTML page of the sweep in ``out_dir`` (see :func:`sweep_context`)."""
    return render("sweep.html.j2", **sweep_context(doc, out_dir))


def write_sweep_report(doc: dict, out_dir) -> Path:
    """Write ``out_dir/report.html`` for the sweep dict ``doc`` atomically; its path."""
    out_dir = Path(out_dir)
    return write_text_atomic(out_dir / HTML_REPORT, render_sweep_report(doc, out_dir))
