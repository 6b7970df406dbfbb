"""Figures and a Markdown report from a results dict alone (``geoprobe report DIR``)."""

from __future__ import annotations

import math
from pathlib import Path

from .errors import FormatError, GeoprobeError, first_line
from .frames import frames_table
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
    if doc.get("warnings"):
        lines += ["## Warnings", ""] + [f"- {w}" for w in doc["warnings"]] + [""]
    if doc.get("checks"):
        lines += ["## Checks", ""] + checks_table(doc["checks"]) + [""]
    for pid, entry in doc["probes"].items():
        lines += [f"## {pid} ({entry['probe']})", "",
                  f"source: {entry.get('source')}, seconds: {entry.get('seconds')}", ""]
        for fig in entry.get("figures", []):
            if fig.endswith(".png"):
                lines += [f"![{pid}]({fig})", ""]
        lines += metrics_table(entry) + [""]
        frame_rows = doc.get("frames", {}).get("probes", {}).get(pid)
        if frame_rows:
            lines += [f"### Frame sensitivity ({doc['frames']['n_frames']} frames per group)",
                      "", "Spread (max - min over frames) and its ratio to the metric's CI "
                      "width; dependent when the ratio exceeds 1 (geoprobe.frames).", ""]
            lines += frames_table(frame_rows) + [""]
    return write_text_atomic(path, "\n".join(lines))


def checks_table(checks: list[dict]) -> list[str]:
    lines = ["| check | result | value | detail |", "|---|---|---|---|"]
    for c in checks:
        mark = "PASS" if c["passed"] else "FAIL"
        lines.append(f"| {c['name']} | {mark} | {_fmt(c.get('value'))} | {c['message']} |")
    return lines


def check_results(doc, source) -> None:
    """Raise GeoprobeError naming ``source`` and the first thing the report, the figures or the
    checks need that ``doc`` lacks or holds in the wrong type, so that a hand-edited, cut-off or
    foreign results file is refused in one line instead of failing half-way through a report.
    """
    def need(ok, what: str) -> None:
        if not ok:
            raise GeoprobeError(f"{source}: not a valid geoprobe results file: {what}")

    need(isinstance(doc, dict) and "geoprobe_results" in doc, "no 'geoprobe_results' marker")
    need(isinstance(doc.get("probes"), dict), "no 'probes' table")
    for key, kind in (("suite", dict), ("environment", dict), ("checks", list),
                      ("warnings", list)):
        need(isinstance(doc.get(key, kind()), kind), f"'{key}' is not a {kind.__name__}")
    need(isinstance(doc.get("environment", {}).get("versions", {}), dict),
         "'environment.versions' is not a dict")
    need(isinstance(doc.get("suite", {}).get("description") or "", str),
         "'suite.description' is not text")
    need(all(isinstance(w, str) for w in doc.get("warnings", [])), "a warning is not text")
    for c in doc.get("checks", []):
        need(isinstance(c, dict) and {"name", "passed", "message"} <= c.keys()
             and _is_number(c.get("value")), f"malformed check {c!r:.60}")
    for pid, entry in doc["probes"].items():
        where = f"probe {pid!r}"
        need(isinstance(entry, dict) and isinstance(entry.get("probe"), str),
             f"{where} has no 'probe' name")
        need(isinstance(entry.get("metrics"), list), f"{where} has no 'metrics' list")
        figures = entry.get("figures", [])
        need(isinstance(figures, list) and all(isinstance(f, str) for f in figures),
             f"{where}: 'figures' is not a list of file names")
        for m in entry["metrics"]:
            need(isinstance(m, dict) and isinstance(m.get("name"), str)
                 and isinstance(m.get("labels"), dict) and "unit" in m
                 and all(k in m and _is_number(m[k]) for k in ("value", "ci_low", "ci_high")),
                 f"{where} has a malformed metric {m!r:.60}")
        try:
            ProbeResult.from_dict(entry)  # decodes the arrays the figures are drawn from
        except (KeyError, TypeError, ValueError, AttributeError, MemoryError) as exc:
            need(False, f"{where}: {type(exc).__name__}: {first_line(exc)}")


def _is_number(x) -> bool:
    """None, a number, or a string ``float`` reads ("nan", "inf"): what :func:`_fmt` shows."""
    if isinstance(x, str):
        try:
            float(x)
        except ValueError:
            return False
        return True
    return x is None or isinstance(x, (int, float))
