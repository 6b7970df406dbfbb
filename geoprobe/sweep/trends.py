"""Checks over a sweep: the suite's ``[[checks]]`` at every checkpoint, and its ``[[trends]]``
across checkpoints in step order.

Both reuse :func:`geoprobe.checks.evaluate_checks` on one results dict per variant (its
probes' stored results, layer groups merged):

* a threshold check is evaluated at every variant; a check ``against = "previous"`` compares
  each checkpoint with the one before it (the first has none and is not checked);
* a ``max_drop`` trend is such a comparison between every pair of consecutive checkpoints
  (by the metric's direction, as ``max_drop`` checks are);
* a threshold trend (``op``, ``value``, ``from_step``) must hold at every checkpoint from
  ``from_step`` on.

Each trend gives one outcome, failed with the steps where it broke; trends need checkpoints
with steps and are not evaluated for a sweep without them.
"""

from __future__ import annotations

from ..checks import CheckOutcome, evaluate_checks
from ..suite import CheckSpec, TrendSpec


def variant_docs(plan, docs_by_key: dict) -> list[tuple]:
    """``(variant, results dict)`` per variant, in plan order; a results dict holds
    ``{"probes": {id: result}}`` with the metrics of all of a probe's layer groups."""
    out = []
    for variant in plan.variants:
        probes = {}
        for task in plan.tasks:
            if task.variant is not variant or task.key not in docs_by_key:
                continue
            result = docs_by_key[task.key]["result"]
            if task.probe_id in probes:
                probes[task.probe_id]["metrics"] += result["metrics"]
            else:
                probes[task.probe_id] = {**result, "metrics": list(result["metrics"])}
        out.append((variant, {"probes": probes}))
    return out


def _prefixed(outcome: CheckOutcome, label: str) -> CheckOutcome:
    outcome.name = f"{label}: {outcome.name}"
    return outcome


def per_checkpoint(checks: list[CheckSpec], docs: list[tuple]) -> list[CheckOutcome]:
    """The suite's checks at every variant (named ``LABEL: check``)."""
    outcomes = []
    absolute = [c for c in checks if c.against is None]
    relative = [c for c in checks if c.against is not None]
    previous = None
    for variant, doc in docs:
        found = evaluate_checks(absolute, doc)
        if previous is not None:
            found += evaluate_checks(relative, doc, previous)
        outcomes += [_prefixed(o, variant.label) for o in found]
        previous = doc
    return outcomes


def evaluate_trends(trends: list[TrendSpec], docs: list[tuple]) -> list[CheckOutcome]:
    """One outcome per trend over the variants that have a step, in step order."""
    stepped = sorted(((v, d) for v, d in docs if v.step is not None), key=lambda x: x[0].step)
    outcomes = []
    for trend in trends:
        check = CheckSpec(trend.probe, trend.metric, dict(trend.labels), op=trend.op,
                          value=trend.value, max_drop=trend.max_drop,
                          against="previous" if trend.max_drop is not None else None,
                          name=trend.name, id=trend.id)
        failures, last, checked = [], None, 0
        for i, (variant, doc) in enumerate(stepped):
            if trend.max_drop is not None:
                if i == 0:
                    continue
                (o,) = evaluate_checks([check], doc, stepped[i - 1][1])
                where = f"step {stepped[i - 1][0].step}->{variant.step}"
            else:
                if variant.step < trend.from_step:
                    continue
                (o,) = evaluate_checks([check], doc)
                where = f"step {variant.step}"
            checked += 1
            last = o.value
            if not o.passed:
                failures.append(f"{where}: {o.message}")
        if not checked:
            failures.append("no checkpoints to check (it needs steps in the file names"
                            + (" and two checkpoints)" if trend.max_drop is not None
                               else f" from step {trend.from_step} on)"))
        message = (f"{len(failures)} failure(s); " + "; ".join(failures[:3]) if failures
                   else f"held over {checked} checkpoint(s)")
        outcomes.append(CheckOutcome(trend.name, trend.probe, trend.metric, dict(trend.labels),
                                     not failures, last, message, id=trend.id))
    return outcomes
