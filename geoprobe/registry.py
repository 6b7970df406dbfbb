"""Discovery of probes, data generators and CLI commands through entry points.

geoprobe's own probes are registered in ``pyproject.toml`` under the ``geoprobe.probes``
entry-point group, exactly as a third-party package registers its own::

    [project.entry-points."geoprobe.probes"]
    my-probe = "my_package.my_module:MyProbe"

Nothing in the core names a particular probe.

A probe class's ``name`` must equal the name it is registered under: results record
``cls.name`` and ``geoprobe report`` looks the class up again by it. :func:`get_probe` refuses
a mismatch instead of renaming the class (which would change a class other code may hold, and
hide the plug-in author's mistake).
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

from .errors import GeoprobeError, UnknownProbeError

PROBE_GROUP = "geoprobe.probes"
GENERATOR_GROUP = "geoprobe.generators"
COMMAND_GROUP = "geoprobe.commands"


@lru_cache(maxsize=None)
def _group(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)  # first on sys.path wins, as for imports
    return dict(sorted(found.items()))


def refresh() -> None:
    """Forget cached entry points (after installing a plug-in in a running process)."""
    _group.cache_clear()


def available(group: str = PROBE_GROUP) -> dict[str, EntryPoint]:
    """Registered names in ``group`` mapped to their (not yet loaded) entry points."""
    return _group(group)


def _load(group: str, name: str, kind: str):
    eps = _group(group)
    if name not in eps:
        known = ", ".join(eps) or "none"
        raise UnknownProbeError(f"unknown {kind} {name!r}; registered: {known}")
    try:
        return eps[name].load()
    except Exception as exc:  # a broken plug-in must not look like our bug, nor be hidden
        raise GeoprobeError(f"{kind} {name!r} ({eps[name].value}) failed to load: "
                            f"{type(exc).__name__}: {exc}") from exc


def get_probe(name: str):
    """The probe class registered as ``name``."""
    from .probe import Probe

    cls = _load(PROBE_GROUP, name, "probe")
    if not (isinstance(cls, type) and issubclass(cls, Probe)):
        raise GeoprobeError(f"entry point {name!r} does not name a geoprobe Probe subclass")
    if cls.name != name:
        raise GeoprobeError(f"entry point {name!r} ({_group(PROBE_GROUP)[name].value}) names a "
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
    return _load(GENERATOR_GROUP, name, "generator")
