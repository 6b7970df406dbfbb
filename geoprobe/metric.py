"""An estimate with its interval: :class:`Interval` (what the bootstrap returns) and
:class:`Metric` (one labelled number a probe reports), with their JSON form.

A leaf module: the statistics build these records and the probe API reports them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval over ``n`` resampling units."""

    value: float
    low: float
    high: float
    n: int
    unit: str = "rows"



@dataclass
class Metric:
    """One number a probe reports, with its confidence interval.

    name : metric name, e.g. ``"rankme"``.
    value : point estimate on the full data.
    ci_low, ci_high : interval bounds (NaN when the probe gives none, which it should say why).
    n : number of resampling units behind the interval; ``unit`` names them.
    labels : qualifiers that make the record unique, e.g. ``{"layer": "3"}``,
        ``{"target": "x"}``, ``{"baseline": "shuffled"}``. A metric whose labels contain
        ``baseline`` is a baseline or control, not a finding.
    higher_is_better : direction, for checks and reports (None when neither). Left None,
        :meth:`~geoprobe.probe.Probe.run` fills it from the probe's ``metric_directions``.
    """

    name: str
    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    n: int | None = None
    unit: str = "rows"
    labels: dict[str, str] = field(default_factory=dict)
    higher_is_better: bool | None = None

    @classmethod
    def from_interval(cls, name: str, interval: Interval, *, higher_is_better=None,
                      **labels) -> "Metric":
        return cls(name, interval.value, interval.low, interval.high, interval.n, interval.unit,
                   {k: str(v) for k, v in labels.items()}, higher_is_better)

    @property
    def is_baseline(self) -> bool:
        return "baseline" in self.labels

    def key(self) -> str:
        """``name[label=value,...]``, unique within a result."""
        if not self.labels:
            return self.name
        return self.name + "[" + ",".join(f"{k}={v}" for k, v in sorted(self.labels.items())) + "]"

    def to_dict(self) -> dict:
        return {"name": self.name, "value": json_number(self.value),
                "ci_low": json_number(self.ci_low), "ci_high": json_number(self.ci_high), "n": self.n, "unit": self.unit,
                "labels": dict(self.labels), "higher_is_better": self.higher_is_better}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Metric":
        return cls(d["name"], number_from_json(d["value"]), number_from_json(d.get("ci_low")),
                   number_from_json(d.get("ci_high")), d.get("n"), d.get("unit", "rows"),
                   dict(d.get("labels", {})), d.get("higher_is_better"))


def json_number(x):
    """JSON has no NaN/Inf: store them as strings."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else str(x)


def number_from_json(x):
    """Inverse of :func:`json_number` (None -> NaN)."""
    return math.nan if x is None else float(x)
