"""Probes and data generators by name: the entry points of :mod:`geoprobe.plugins`, checked.

Nothing in the core names a particular probe.

A probe class's ``name`` must equal the name it is registered under: results record
``cls.name`` and ``geoprobe report`` looks the class up again by it. :func:`get_probe` refuses
a mismatch instead of renaming the class (which would change a class other code may hold, and
hide the plug-in author's mistake).
"""

from __future__ import annotations

from .errors import GeoprobeError
# COMMAND_GROUP, available and refresh stay importable from here: shipped names (cli.py, tests,
# geoprobe.available) from before discovery moved to geoprobe.plugins.
from .plugins import (  # noqa: F401
    COMMAND_GROUP, GENERATOR_GROUP, PROBE_GROUP, available, load, refresh,
)
from .probe import Probe


def get_probe(name: str):
    """The probe class registered as ``name``."""
    cls = load(PROBE_GROUP, name, "probe", base=Probe)
    if cls.name != name:
        raise GeoprobeError(f"entry point {name!r} ({available(PROBE_GROUP)[name].value}) names a "
                            f"probe class whose name is {cls.name!r}; set name = {name!r} on "
                            "the class or register it under its name")
    return cls


def make_probe(name: str, **params):
    """An instance of the probe ``name`` with hyperparameters ``params``, refused (one-line
    :class:`GeoprobeError`) when a parameter is unknown or breaks the class's
    ``parameter_constraints``."""
    cls = get_probe(name)
    allowed = cls._param_names()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise GeoprobeError(f"probe {name!r} has no parameter(s) {unknown}; "
                            f"its parameters are {allowed}")
    cls.check_params(params)
    return cls(**params)


def get_generator(name: str):
    """The data generator registered as ``name`` (a callable returning an EmbeddingSet)."""
    return load(GENERATOR_GROUP, name, "generator")
