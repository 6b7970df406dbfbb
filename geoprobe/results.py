"""A suite's results as Python sees them: the results.json dict with a short repr, a
notebook display and a DataFrame of every metric.

:class:`SuiteResults` is a ``dict`` (what ``run_suite`` and ``load_results`` always returned,
and what results.json holds), so code that indexes it keeps working; it adds only display
and conversion methods.
"""

from __future__ import annotations

from .display import dataframe, has_jinja, metric_rows, render
from .probe import ProbeResult


def checks_failed_first(doc: dict) -> tuple[list[dict], int, int]:
    """``(checks, n_passed, n_failed)`` of a results dict, the failed checks listed first."""
    checks = sorted(doc.get("checks", []), key=lambda c: bool(c["passed"]))
    failed = sum(not c["passed"] for c in checks)
    return checks, len(checks) - failed, failed


class SuiteResults(dict):
    """The results dict of one suite run (the layout of results.json).

    ``results["probes"][id]`` holds each probe's entry; :meth:`probe_results` decodes them.
    """

    def probe_results(self) -> dict[str, ProbeResult]:
        """The :class:`ProbeResult` of every probe id, in the suite's order."""
        return {pid: ProbeResult.from_dict(d) for pid, d in self["probes"].items()}

    def table(self) -> list[dict]:
        """One flat dict per metric of every probe, with the probe's id first."""
        return [{"id": pid, **row} for pid, result in self.probe_results().items()
                for row in result.table()]

    def to_frame(self):
        """:meth:`table` as a pandas DataFrame (needs the ``frame`` extra)."""
        return dataframe(self.table())

    def __repr__(self) -> str:
        # the full dict is thousands of lines; dict(results) prints it when wanted
        suite = self.get("suite", {})
        n_metrics = sum(len(p["metrics"]) for p in self["probes"].values())
        text = (f"SuiteResults(suite={suite.get('name')!r}, probes={list(self['probes'])}, "
                f"metrics={n_metrics}, seed={self.get('seed')}")
        if self.get("checks"):
            _, passed, failed = checks_failed_first(self)
            text += f", checks: {passed} passed, {failed} failed"
        return text + ")"

    def _repr_html_(self) -> str | None:
        """The notebook display: the checks, failed first, then every probe's metrics
        (figures: ``report.html`` or ``probe_results()[id]``). None without jinja2."""
        if not has_jinja():
            return None
        checks, passed, failed = checks_failed_first(self)
        sections = []
        for pid, result in self.probe_results().items():
            findings, baselines = metric_rows(result.metrics)
            sections.append({"id": pid, "probe": result.probe, "findings": findings,
                             "baselines": baselines})
        return render("results.html.j2", name=self.get("suite", {}).get("name", ""),
                      seed=self.get("seed"),
                      checks=checks,
                      n_passed=passed, n_failed=failed, warnings=self.get("warnings", []),
                      sections=sections)
