"""A public harness that checks a probe class honours the probe contract.

Plug-in authors run it on their own probe, as scikit-learn's ``check_estimator``::

    from geoprobe.testing import check_probe

    def test_my_probe_follows_the_contract(tmp_path):
        check_probe(MyProbe, tmp_dir=tmp_path)

The probe runs on its own :meth:`~geoprobe.probe.Probe.example_input`. The checks:

* the class declares a name, constraints for every ``__init__`` parameter, and only existing
  parameters as ``column_parameters``;
* parameters round-trip: ``get_params`` returns what ``__init__`` got, and
  ``cls(**probe.get_params())`` is the same probe;
* the same seed gives the same numbers (two fresh instances, compared through JSON);
* the class states its memory need in ``memory`` (one line beginning with "streams" or
  "in memory");
* every metric name has a declared direction that agrees with the one the metric carries;
* the result round-trips through JSON (``to_dict`` -> ``json`` -> ``from_dict``) unchanged;
* the figure draws from the round-tripped result alone (``plot`` returns a matplotlib Figure,
  saved as PNG under ``tmp_dir``);
* a set without a required column, a column parameter naming no column, and each parameter
  given a value its constraints refuse, are refused with :class:`ProbeInputError` before
  ``evaluate`` is called (a spy stands in for it);
* a one-layer and a multi-layer selection both run and draw.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np

from .contract import _as_constraint
from .errors import ProbeInputError
from .probe import Example, Probe, ProbeResult

__all__ = ["check_probe"]

#: a parameter value no built-in constraint accepts (a type, None, Interval, Options, ...)
_REFUSED = object()
#: how a probe's ``memory`` statement begins: it reads row chunks, or it holds the layer
MEMORY_KINDS = ("streams", "in memory")
#: a column name no example set has
_TYPO = "no_such_column__"


class _Evaluated(AssertionError):
    """Raised by the spy standing in for ``evaluate``: the probe got past its checks."""


def check_probe(cls: type[Probe], *, seed: int = 0, tmp_dir=None) -> None:
    """Check that probe class ``cls`` honours the contract; raise AssertionError if not.

    Parameters
    ----------
    cls : a :class:`~geoprobe.probe.Probe` subclass with an ``example_input`` classmethod
    seed : seeds the example input and the runs
    tmp_dir : where the figures are saved (a temporary directory, removed after, if None)
    """
    if tmp_dir is None:
        with tempfile.TemporaryDirectory(prefix="geoprobe-check-") as tmp:
            return check_probe(cls, seed=seed, tmp_dir=tmp)
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    _check_declarations(cls)
    ex = cls.example_input(np.random.default_rng(seed))
    _assert(isinstance(ex, Example), cls, f"example_input returned {type(ex).__name__}, "
            "expected geoprobe.probe.Example")
    _assert(ex.embeddings.n_layers >= 2, cls, "example_input's embedding set needs at least "
            "two layers (the multi-layer check)")
    cls.check_params(ex.params)
    _check_params_round_trip(cls, ex.params)

    multi = _run(cls(**ex.params), ex, seed, "all")
    again = _run(cls(**ex.params), ex, seed, "all")
    _assert(_same(multi.to_dict(), again.to_dict()), cls,
            "two runs with the same seed gave different results")
    _check_directions(cls, multi)
    _check_figure(cls, _json_round_trip(cls, multi), tmp_dir / f"{cls.name}-all.png")
    single = _run(cls(**ex.params), ex, seed, [ex.embeddings.layer_names[-1]])
    _check_figure(cls, _json_round_trip(cls, single), tmp_dir / f"{cls.name}-one.png")

    _check_refuses_missing_columns(cls, ex, seed)
    _check_refuses_bad_params(cls, ex, seed)


def _assert(ok: bool, cls, message: str) -> None:
    if not ok:
        raise AssertionError(f"probe {cls.name or cls.__name__!r}: {message}")


def _check_declarations(cls) -> None:
    _assert(isinstance(cls, type) and issubclass(cls, Probe), cls, "not a Probe subclass")
    _assert(bool(cls.name), cls, "declares no name")
    memory = cls.memory
    _assert(isinstance(memory, str) and memory.startswith(MEMORY_KINDS) and "\n" not in memory,
            cls, f"memory must be one line beginning with {' or '.join(map(repr, MEMORY_KINDS))}"
            f" saying what a run holds (see geoprobe.probe.Probe.memory), got {memory!r}")
    params = cls._param_names()
    undeclared = [p for p in params if p not in cls.parameter_constraints]
    _assert(not undeclared, cls, f"parameter(s) {undeclared} have no parameter_constraints")
    unknown = [p for p in list(cls.parameter_constraints) + list(cls.column_parameters)
               if p not in params]
    _assert(not unknown, cls, f"constraints or column_parameters name {unknown}, which are not "
            f"parameters of __init__ {params}")
    for name, allowed in cls.parameter_constraints.items():
        for c in allowed:
            _as_constraint(c)  # TypeError for a malformed declaration


def _check_params_round_trip(cls, params: dict) -> None:
    probe = cls(**params)
    got = probe.get_params()
    for name, value in params.items():
        _assert(_same(got[name], value), cls, f"get_params()[{name!r}] is {got[name]!r}, "
                f"__init__ got {value!r} (store parameters unchanged)")
    _assert(_same(cls(**got).get_params(), got), cls,
            "cls(**probe.get_params()) has other parameters")


def _run(probe, ex: Example, seed: int, layers) -> ProbeResult:
    return probe.run(ex.embeddings, layers=layers, annotations=ex.annotations, model=ex.model,
                     seed=seed, twin=False, progress=False)


def _check_directions(cls, result: ProbeResult) -> None:
    for m in result.metrics:
        declared, higher = cls.direction(m.name)
        _assert(declared, cls, f"metric {m.name!r} has no entry in metric_directions")
        _assert(m.higher_is_better == higher, cls,
                f"metric {m.key()} says higher_is_better={m.higher_is_better}, "
                f"metric_directions says {higher}")


def _json_round_trip(cls, result: ProbeResult) -> ProbeResult:
    doc = result.to_dict()
    back = ProbeResult.from_dict(json.loads(json.dumps(doc, allow_nan=False)))
    _assert(_same(back.to_dict(), doc), cls, "the result changes through to_dict/from_dict")
    return back


def _check_figure(cls, result: ProbeResult, path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from .plotting import style

    with style():
        fig = cls.plot(result)
    try:
        _assert(isinstance(fig, Figure), cls, f"plot returned {type(fig).__name__}, "
                "expected a matplotlib Figure")
        fig.savefig(path)
    finally:
        plt.close(fig)


def _spied(probe):
    def evaluate(ctx):
        raise _Evaluated("evaluate was called")

    probe.evaluate = evaluate  # the instance attribute shadows the method
    return probe


def _refused_before_work(cls, probe, embeddings, ex: Example, seed: int, what: str) -> None:
    try:
        _run(_spied(probe), Example(embeddings, ex.params, ex.annotations, ex.model), seed,
             "all")
    except ProbeInputError:
        return
    except _Evaluated:
        raise AssertionError(f"probe {cls.name!r}: {what} reached evaluate") from None
    raise AssertionError(f"probe {cls.name!r}: {what} was not refused")


def _check_refuses_missing_columns(cls, ex: Example, seed: int) -> None:
    emb = ex.embeddings
    probe = cls(**ex.params)
    for column, param in probe.required_columns().items():
        _assert(column in emb.items, cls, f"example_input lacks column {column!r}")
        kept = {k: v for k, v in emb.items.items() if k != column}
        _refused_before_work(cls, cls(**ex.params), emb.with_items(kept), ex, seed,
                             f"a set without column {column!r}")
    for param in cls.column_parameters:
        value = ex.params.get(param, getattr(probe, param))
        typo = _TYPO if isinstance(value, str) or value is None else [*value, _TYPO]
        params = {**ex.params, param: typo}
        try:
            cls.check_params(params)
        except ProbeInputError:
            continue  # the constraint refuses it already (e.g. a fixed set of names)
        _refused_before_work(cls, cls(**params), emb, ex, seed,
                             f"{param}={typo!r} (no such column)")


def _check_refuses_bad_params(cls, ex: Example, seed: int) -> None:
    for param, allowed in cls.parameter_constraints.items():
        if any(_as_constraint(c).accepts(_REFUSED) for c in allowed):
            continue  # a predicate that accepts anything: nothing to refuse
        params = {**ex.params, param: _REFUSED}
        try:
            cls.check_params(params)
        except ProbeInputError as exc:
            _assert(param in str(exc) and "\n" not in str(exc), cls,
                    f"the error for a bad {param} does not name it on one line: {exc}")
        else:
            raise AssertionError(f"probe {cls.name!r}: check_params accepted {param}=<object>")
        _refused_before_work(cls, cls(**params), ex.embeddings, ex, seed,
                             f"{param}=<object> (a value its constraints refuse)")


def _same(a, b) -> bool:
    """Equality of JSON-like values where NaN equals NaN and tuples equal lists."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return _same(np.asarray(a).tolist(), np.asarray(b).tolist())
    return bool(a == b)
