"""The declarative side of the probe contract: what values a probe's parameters may take.

A probe class declares, per ``__init__`` parameter, a list of constraints (the value is valid
when it satisfies any one of them), in the spirit of scikit-learn's ``_parameter_constraints``::

    parameter_constraints = {
        "n_boot": [Interval(int, 1, None)],
        "level": [Interval(float, 0, 1, closed="neither")],
        "group": [str, None],
        "kind": [Options({"auto", "continuous", "categorical"})],
        "lambdas": [SequenceOf(Interval(float, 0, None, closed="neither")), None],
    }

An entry of the list is

* a type, e.g. ``str`` or ``bool``: ``isinstance`` (``int`` and ``float`` never accept a bool,
  ``float`` accepts any real number, as TOML writes ``10`` for ``10.0``);
* ``None``: the value ``None``;
* a :class:`Constraint`: :class:`Interval`, :class:`Options`, :class:`SequenceOf`,
  :class:`Check` (any predicate, with the words that describe it).

:func:`validate_params` checks a probe's parameters against its declaration and raises a
one-line :class:`~geoprobe.errors.ProbeInputError` naming the probe, the parameter, the value
and what is allowed. The registry runs it in ``make_probe``, and ``Probe.check_input`` runs it
again for probes built directly in Python, so a bad value is refused before any work.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from .errors import ProbeInputError


class Constraint:
    """One acceptable form of a parameter's value."""

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _is_type(value, kind: type) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return kind is bool
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        return isinstance(value, numbers.Real)
    return isinstance(value, kind)


class Interval(Constraint):
    """A number of type ``kind`` (``int`` or ``float``) between ``low`` and ``high``.

    Parameters
    ----------
    kind : int or float
        ``int`` accepts integers only; ``float`` any real number (never a bool, nor NaN).
    low, high : number or None
        Bounds; None leaves that side open.
    closed : "both", "left", "right" or "neither"
        Which bounds belong to the interval.
    """

    def __init__(self, kind: type, low=None, high=None, *, closed: str = "both"):
        if kind not in (int, float):
            raise TypeError(f"Interval kind must be int or float, got {kind!r}")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither', "
                             f"got {closed!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value) -> bool:
        if not _is_type(value, self.kind) or (self.kind is float and math.isnan(value)):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def describe(self) -> str:
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        word = "an int" if self.kind is int else "a number"
        return f"{word} in {left}{low}, {high}{right}"


class Options(Constraint):
    """One of a fixed set of values (compared with ``==``)."""

    def __init__(self, options: Iterable):
        self.options = frozenset(options)

    def accepts(self, value) -> bool:
        try:
            return value in self.options
        except TypeError:  # unhashable values (lists) are never an option
            return False

    def describe(self) -> str:
        return "one of " + ", ".join(sorted(map(repr, self.options)))


class SequenceOf(Constraint):
    """A list or tuple (TOML gives lists, Python defaults are tuples) whose every element
    satisfies ``item`` (a type, None or a Constraint), with ``min_len <= len <= max_len``."""

    def __init__(self, item, *, min_len: int = 0, max_len: int | None = None):
        self.item, self.min_len, self.max_len = _as_constraint(item), min_len, max_len

    def accepts(self, value) -> bool:
        if not isinstance(value, (list, tuple, np.ndarray)):
            return False
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            return False
        return all(self.item.accepts(v) for v in value)

    def describe(self) -> str:
        if self.max_len is not None and self.max_len == self.min_len:
            size = f"{self.min_len} "
        elif self.min_len:
            size = f"at least {self.min_len} "
        else:
            size = ""
        return f"a list of {size}items, each {self.item.describe()}"


class Check(Constraint):
    """Any predicate, with the words that say what it accepts (e.g. ``"a callable"``)."""

    def __init__(self, predicate: Callable[[object], bool], description: str):
        self.predicate, self.description = predicate, description

    def accepts(self, value) -> bool:
        try:
            return bool(self.predicate(value))
        except Exception:  # a predicate that cannot judge the value does not accept it
            return False

    def describe(self) -> str:
        return self.description


class _TypeOf(Constraint):
    def __init__(self, kind: type):
        self.kind = kind

    def accepts(self, value) -> bool:
        return _is_type(value, self.kind)

    def describe(self) -> str:
        return {str: "a str", bool: "a bool", int: "an int", float: "a number"}.get(
            self.kind, f"a {self.kind.__name__}")


class _NoneOf(Constraint):
    def accepts(self, value) -> bool:
        return value is None

    def describe(self) -> str:
        return "None"


#: the forms most parameters take
POSITIVE_INT = Interval(int, 1, None)
POSITIVE = Interval(float, 0, None, closed="neither")
NON_NEGATIVE = Interval(float, 0, None)
#: a confidence level, a significance level, a fraction strictly between 0 and 1
OPEN_UNIT = Interval(float, 0, 1, closed="neither")


def _as_constraint(spec) -> Constraint:
    if spec is None:
        return _NoneOf()
    if isinstance(spec, Constraint):
        return spec
    if isinstance(spec, type):
        return _TypeOf(spec)
    raise TypeError(f"not a parameter constraint: {spec!r} (give a type, None or a Constraint)")


def describe(constraints: Iterable) -> str:
    """What a list of constraints allows, in words."""
    words = [_as_constraint(c).describe() for c in constraints]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def validate_params(probe: str, constraints: Mapping[str, list], params: Mapping) -> None:
    """Raise ProbeInputError for the first parameter in ``params`` that no constraint accepts.

    Parameters without a declaration are not checked (``geoprobe.testing.check_probe``
    insists that every parameter has one).
    """
    for name, value in params.items():
        allowed = constraints.get(name)
        if allowed is None:
            continue
        if not any(_as_constraint(c).accepts(value) for c in allowed):
            raise ProbeInputError(f"probe {probe!r}: parameter {name}={value!r} is not allowed; "
                                  f"expected {describe(allowed)}")


def column_names(value) -> list[str]:
    """The item column names a column-valued parameter holds: a str, a list of str, or none."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]
