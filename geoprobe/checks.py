"""Pass/fail checks on probe results, with JUnit XML and Markdown summaries for CI."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .errors import GeoprobeError
from .probe import ProbeResult
from .provenance import write_text_atomic
from .registry import get_probe
from .report import checks_table
from .suite import OPS, CheckSpec


@dataclass
class CheckOutcome:
    name: str
    probe: str
    metric: str
    labels: dict
    passed: bool
    value: float | None
    message: str
    id: str = ""
    criterion: str = ""  # what the check asks, e.g. "spectrum.rankme[layer=z] >= 8.0"


def _find(doc: dict, check: CheckSpec):
    entry = doc["probes"].get(check.probe)
    if entry is None:
        raise KeyError(f"no probe {check.probe!r} in the results")
    result = ProbeResult.from_dict(entry)
    try:
        return result.metric(check.metric, **check.labels)
    except KeyError:
        # a misspelt or renamed metric: name the ones there are, not every labelled variant
        names = sorted({m.name for m in result.metrics})
        if check.metric not in names:
            raise KeyError(f"probe {check.probe!r} ({result.probe}) produces no metric "
                           f"{check.metric!r}; its metrics are {', '.join(names)}") from None
        raise


def _direction(doc: dict, check: CheckSpec, metric) -> bool | None:
    """Whether higher is better for ``metric``: as recorded in the result, else as its probe
    class declares (results written before directions were declared), else None."""
    if metric.higher_is_better is not None:
        return metric.higher_is_better
    try:
        cls = get_probe(doc["probes"][check.probe]["probe"])
    except GeoprobeError:  # a plug-in no longer installed: the direction is unknown
        return None
    return cls.direction(metric.name)[1]


def evaluate_checks(checks: list[CheckSpec], doc: dict, against: dict | None = None):
    """Evaluate each check on a results dict; returns a list of :class:`CheckOutcome`."""
    outcomes = []
    for check in checks:
        def outcome(passed, value, message):
            return CheckOutcome(check.name, check.probe, check.metric, dict(check.labels),
                                bool(passed), value, message, id=check.id,
                                criterion=check.describe())
        try:
            metric = _find(doc, check)
        except KeyError as exc:
            outcomes.append(outcome(False, None, f"metric not found: {exc.args[0]}"))
            continue
        value = metric.value
        if not math.isfinite(value):
            outcomes.append(outcome(False, None, f"value is {value}"))
            continue
        if check.op is not None:
            passed = OPS[check.op](value, check.value)
            outcomes.append(outcome(passed, value, f"{value:.4g} {check.op} {check.value:g}"
                                    + ("" if passed else " is false")))
            continue
        try:
            old = _find(against, check)
        except KeyError as exc:
            outcomes.append(outcome(False, value, f"not in previous results: {exc.args[0]}"))
            continue
        problems, notes = [], []
        if check.max_drop is not None:
            higher = _direction(doc, check, metric)
            change = (value - old.value) / max(abs(old.value), 1e-12)
            notes.append(f"change {change:+.2%} vs {old.value:.4g}")
            if higher is None:  # no better side: a move either way beyond max_drop fails
                if abs(change) > check.max_drop:
                    problems.append(f"moved {abs(change):.2%} > {check.max_drop:.2%} (the "
                                    "metric has no direction, so either way counts)")
            else:
                worse = -change if higher else change
                if worse > check.max_drop:
                    problems.append(f"{'dropped' if higher else 'rose'} {worse:.2%} > "
                                    f"{check.max_drop:.2%}")
        if check.ci_overlap:
            if not all(map(math.isfinite, (metric.ci_low, metric.ci_high, old.ci_low,
                                           old.ci_high))):
                problems.append("no CI to compare")
            elif metric.ci_high < old.ci_low or metric.ci_low > old.ci_high:
                problems.append(f"CI [{metric.ci_low:.4g}, {metric.ci_high:.4g}] does not "
                                f"overlap previous [{old.ci_low:.4g}, {old.ci_high:.4g}]")
        outcomes.append(outcome(not problems, value, "; ".join(problems + notes)))
    return outcomes


def write_junit(outcomes: list[CheckOutcome], path, suite_name: str) -> Path:
    """One ``<testcase>`` per check; failed checks carry a ``<failure>`` with the reason."""
    failures = sum(not o.passed for o in outcomes)
    root = ET.Element("testsuites", name="geoprobe", tests=str(len(outcomes)),
                      failures=str(failures))
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(outcomes)),
                          failures=str(failures), errors="0", skipped="0")
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname=f"geoprobe.{suite_name}.{o.probe}",
                             name=o.name)
        if not o.passed:
            ET.SubElement(case, "failure", message=o.message).text = o.message
    ET.indent(root)
    return write_text_atomic(path, ET.tostring(root, encoding="unicode",
                                               xml_declaration=True) + "\n")


def write_summary(outcomes: list[CheckOutcome], path, suite_name: str) -> Path:
    failed = sum(not o.passed for o in outcomes)
    head = f"# geoprobe check: {suite_name}: {len(outcomes) - failed} passed, {failed} failed"
    rows = checks_table([o.__dict__ for o in outcomes])
    return write_text_atomic(path, "\n".join([head, ""] + rows) + "\n")
