"""Figures and a Markdown report from a results dict alone (``geoprobe report DIR``)."""

from __future__ import annotations

from pathlib import Path

from .display import format_number
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


def metrics_table(entry: dict) -> list[str]:
    lines = ["| metric | labels | value | 95% CI | n |", "|---|---|---|---|---|"]
    for m in entry["metrics"]:
        labels = ", ".join(f"{k}={v}" for k, v in m["labels"].items())
        lo, hi = format_number(m["ci_low"]), format_number(m["ci_high"])
        ci = f"[{lo}, {hi}]" if lo and hi else ""
        n = f"{m['n']} {m['unit']}" if m.get("n") is not None else ""
        lines.append(f"| {m['name']} | {labels} | {format_number(m['value'])} | {ci} | {n} |")
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
    lines += failed_checks(doc)
    if doc.get("warnings"):
        lines += ["## Warnings", ""] + [f"- {w}" for w in doc["warnings"]] + [""]
    if doc.get("checks"):
        lines += ["## Checks", ""] + checks_table(doc["checks"]) + [""]
    if doc.get("checks_not_evaluated"):
        lines += [f"Not evaluated (they compare with previous results: `geoprobe check "
                  f"--against`): {', '.join(doc['checks_not_evaluated'])}.", ""]
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


def failed_checks(doc: dict) -> list[str]:
    """The report's opening section when any of the suite's checks failed: each failed check's
    id, metric, value and criterion; no lines when all passed or there are none."""
    checks = doc.get("checks") or []
    failed = [c for c in checks if not c["passed"]]
    if not failed:
        return []
    lines = [f"## CHECKS FAILED: {len(failed)} of {len(checks)}", "",
             "| check id | metric | value | criterion | detail |", "|---|---|---|---|---|"]
    for c in failed:
        labels = ", ".join(f"{k}={v}" for k, v in (c.get("labels") or {}).items())
        metric = f"{c.get('probe', '')}.{c.get('metric', '')}" + (f" [{labels}]" if labels
                                                                  else "")
        lines.append(f"| {c.get('id') or c['name']} | {metric} | {format_number(c.get('value'))} | "
                     f"{c.get('criterion', '')} | {c['message']} |")
    return lines + [""]


def checks_table(checks: list[dict]) -> list[str]:
    lines = ["| check | result | value | detail |", "|---|---|---|---|"]
    for c in checks:
        mark = "PASS" if c["passed"] else "FAIL"
        lines.append(f"| {c['name']} | {mark} | {format_number(c.get('value'))} "
                     f"| {c['message']} |")
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
                      ("warnings", list), ("sources", dict), ("timings", dict),
                      ("checks_not_evaluated", list)):
        need(isinstance(doc.get(key, kind()), kind), f"'{key}' is not a {kind.__name__}")
    need(isinstance(doc.get("environment", {}).get("versions", {}), dict),
         "'environment.versions' is not a dict")
    need(isinstance(doc.get("suite", {}).get("description") or "", str),
         "'suite.description' is not text")
    need(all(isinstance(w, str) for w in doc.get("warnings", [])), "a warning is not text")
    need(all(isinstance(s, dict) for s in doc.get("sources", {}).values()),
         "a source is not a table")
    need(all(isinstance(c, str) for c in doc.get("checks_not_evaluated", [])),
         "a check id in 'checks_not_evaluated' is not text")
    for c in doc.get("checks", []):
        need(isinstance(c, dict) and {"name", "passed", "message"} <= c.keys()
             and _is_number(c.get("value")) and isinstance(c.get("labels", {}), dict),
             f"malformed check {c!r:.60}")
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
    """None, a number, or a string ``float`` reads ("nan", "inf"): what
    :func:`~geoprobe.display.format_number` shows."""
    if isinstance(x, str):
        try:
            float(x)
        except ValueError:
            return False
        return True
    return x is None or isinstance(x, (int, float))
