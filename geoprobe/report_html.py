"""``report.html``: one self-contained page from a results dict alone.

The suite and its provenance come first, then the checks (failed first, with a pass/fail
summary), warnings, the embedding sources, and one section per probe with its figure and
its metrics, findings and baselines in separate tables with confidence intervals and the
resampling units behind them. Figures are embedded as PNG ``data:`` URIs and the styles are
inline: the file opens anywhere, offline, with no script. Rendered with jinja2
(:mod:`geoprobe.display`), which escapes every name taken from the results.
"""

from __future__ import annotations

from pathlib import Path

from .display import figure_uri, metric_rows, png_uri, render, resampling_units
from .errors import FormatError, GeoprobeError
from .plotting import BASELINE_COLOR, PALETTE, style
from .probe import ProbeResult
from .provenance import write_text_atomic
from .registry import get_probe
from .results import checks_failed_first
from .safepath import inside

HTML_REPORT = "report.html"

#: the report's colours, from the figures' Okabe-Ito palette (blue, vermillion, orange)
COLORS = {"finding": PALETTE[0], "passed": PALETTE[0], "failed": PALETTE[3],
          "warning": PALETTE[1], "baseline": BASELINE_COLOR}


def _figure(pid: str, entry: dict, result: ProbeResult, out_dir: Path | None) -> str | None:
    """The probe's figure as a PNG data URI: the PNG ``render_figures`` saved, when the
    directory has it, else drawn now from the result; None when the probe draws none."""
    for name in entry.get("figures", []):
        if name.endswith(".png") and out_dir is not None:
            # the file list comes from results.json, which may come from anywhere
            path = inside(out_dir, name, what=f"probe {pid!r}: figure", error=FormatError)
            if path.is_file():
                return png_uri(path.read_bytes())
    try:
        cls = get_probe(result.probe)
    except GeoprobeError:
        return None  # the plug-in is not installed here: the tables still tell the result
    with style():
        try:
            fig = cls.plot(result)
        except NotImplementedError:
            return None
    return figure_uri(fig)


def _alt_text(pid: str, result: ProbeResult) -> str:
    names = list(dict.fromkeys(m.name for m in result.metrics if not m.is_baseline))
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return (f"Figure of probe {pid} ({result.probe}) over layers "
            f"{', '.join(map(str, result.info.get('layers', []))) or 'n/a'}: {shown}; "
            f"the numbers are in the tables below.")


def page_context(doc: dict) -> dict:
    """What the page skeleton (``_page.html.j2``) shows from a results or sweep dict ``doc``:
    the suite, its seed and the provenance, what the file lacks filled in, and the colours."""
    env, suite = doc.get("environment", {}), doc.get("suite", {})
    versions = env.get("versions", {})
    return {"name": suite.get("name", ""), "description": suite.get("description") or "",
            "suite_file": suite.get("file"), "seed": doc.get("seed"),
            "version": versions.get("geoprobe", "?"), "python": versions.get("python", "?"),
            "packages": {k: v for k, v in versions.items() if k not in ("python", "geoprobe")},
            "git_hash": env.get("git_hash"), "platform": env.get("platform", "?"),
            "cpu_count": env.get("cpu_count", "?"), "time": env.get("time", "?"),
            "total_seconds": doc.get("timings", {}).get("total_seconds"), "colors": COLORS}


def report_context(doc: dict, out_dir=None) -> dict:
    """What ``report.html.j2`` shows, from the results dict ``doc`` (figures read from
    ``out_dir/figures`` when there, drawn otherwise)."""
    out_dir = Path(out_dir) if out_dir is not None else None
    checks, n_passed, n_failed = checks_failed_first(doc)
    sections = []
    for pid, entry in doc["probes"].items():
        result = ProbeResult.from_dict(entry)
        findings, baselines = metric_rows(result.metrics)
        sections.append({
            "id": pid, "probe": result.probe, "source": entry.get("source"),
            "seed": entry.get("probe_seed", result.seed), "seconds": entry.get("seconds"),
            "units": resampling_units(result.metrics),
            "figure": _figure(pid, entry, result, out_dir), "alt": _alt_text(pid, result),
            "findings": findings, "baselines": baselines})
    # the template reads plain keys only: what a results file lacks is filled in here
    sources = [{"name": name, "source": s.get("source"), "n_items": s.get("n_items"),
                "dim": s.get("dim"), "layers": ", ".join(map(str, s.get("layers", []))),
                "twin": s.get("twin")}
               for name, s in doc.get("sources", {}).items()]
    return {**page_context(doc), "checks": checks, "n_failed": n_failed,
            "n_passed": n_passed, "warnings": doc.get("warnings", []), "sources": sources,
            "sections": sections}


def render_report(doc: dict, out_dir=None) -> str:
    """The HTML page for the results dict ``doc`` (see :func:`report_context`)."""
    return render("report.html.j2", **report_context(doc, out_dir))


def write_html_report(doc: dict, out_dir) -> Path:
    """Write ``out_dir/report.html`` atomically; returns its path."""
    out_dir = Path(out_dir)
    return write_text_atomic(out_dir / HTML_REPORT, render_report(doc, out_dir))
