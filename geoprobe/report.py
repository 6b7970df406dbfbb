"""Figures and a Markdown report from a results dict alone (``geoprobe report DIR``)."""

from __future__ import annotations

import math
from pathlib import Path

from .errors import FormatError, GeoprobeError
from .plotting import save_figure, style
from .probe import ProbeResult
from .provenance import write_text_atomic
from .registry import get_probe
from .safepath import check_name, inside


def render_figures(doc: dict, out_dir, formats=("pdf", "png")) -> dict[str, list[str]]:
    """Draw every probe's figure into ``out_dir/figures``; records the files in ``doc``.

    Probe ids name the figure files, and ``doc`` may be a results.json from anywhere
    (``geoprobe report``), so each id is checked and its files kept inside ``figures/``.
    """
    out_dir = Path(out_dir)
    stems = {}  # every id is checked before any figure is drawn
    for pid in doc["probes"]:
        check_name(pid, what="probes: probe id", error=FormatError)
        stems[pid] = inside(out_dir, "figures", pid, what="figure", error=FormatError)
    made = {}
    for pid, entry in doc["probes"].items():
        result = ProbeResult.from_dict(entry)
        try:
            cls = get_probe(result.probe)
        except GeoprobeError as exc:
            raise GeoprobeError(f"cannot draw {pid!r}: {exc} (is the plug-in installed?)") from None
        with style():
            try:
                fig = cls.plot(result)
            except NotImplementedError:
                continue
        paths = save_figure(fig, stems[pid], formats)
        entry["figures"] = [str(p.relative_to(out_dir)) for p in paths]
        made[pid] = entry["figures"]
    return made


def _fmt(x) -> str:
    if x is None:
        return ""
    x = float(x)
    if not math.isfinite(x):
        return ""
    return f"{x:.4g}"


def metrics_table(entry: dict) -> list[str]:
    lines = ["| metric | labels | value | 95% CI | n |", "|---|---|---|---|---|"]
    for m in entry["metrics"]:
        labels = ", ".join(f"{k}={v}" for k, v in m["labels"].items())
        lo, hi = _fmt(m["ci_low"]), _fmt(m["ci_high"])
        ci = f"[{lo}, {hi}]" if lo and hi else ""
        n = f"{m['n']} {m['unit']}" if m.get("n") is not None else ""
        lines.append(f"| {m['name']} | {labels} | {_fmt(m['value'])} | {ci} | {n} |")
    return lines


def write_report(doc: dict, path) -> Path:
    """A Markdown report: provenance summary, each probe's metrics and figure, the checks."""
    env = doc.get("environment", {})
    suite = doc.get("suite", {})
    lines = [f"# geoprobe results: {suite.get('name', '')}", ""]
    if suite.get("description"):
        lines += [suite["description"], ""]
    versions = env.get("versions", {})
    lines += [f"- seed: {doc.get('seed')}",
              f"- geoprobe {versions.get('geoprobe', '?')}, git {env.get('git_hash') or 'n/a'}, "
              f"python {versions.get('python', '?')}, run at {env.get('time', '?')}", ""]
    if doc.get("checks"):
        lines += ["## Checks", ""] + checks_table(doc["checks"]) + [""]
    for pid, entry in doc["probes"].items():
        lines += [f"## {pid} ({entry['probe']})", "",
                  f"source: {entry.get('source')}, seconds: {entry.get('seconds')}", ""]
        for fig in entry.get("figures", []):
            if fig.endswith(".png"):
                lines += [f"![{pid}]({fig})", ""]
        lines += metrics_table(entry) + [""]
    return write_text_atomic(path, "\n".join(lines))


def checks_table(checks: list[dict]) -> list[str]:
    lines = ["| check | result | value | detail |", "|---|---|---|---|"]
    for c in checks:
        mark = "PASS" if c["passed"] else "FAIL"
        lines.append(f"| {c['name']} | {mark} | {_fmt(c.get('value'))} | {c['message']} |")
    return lines
