"""Entry-point discovery: the plug-ins installed in each geoprobe group.

geoprobe's own probes, generators and commands are registered in ``pyproject.toml`` exactly as a
third-party package registers its own::

    [project.entry-points."geoprobe.probes"]
    my-probe = "my_package.my_module:MyProbe"

This module only finds and loads them; :mod:`geoprobe.registry` checks what it loads against
the probe API. It sits below :mod:`geoprobe.probe` so that a result can find the class that
plots it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

from .errors import GeoprobeError, UnknownProbeError, first_line

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


def load(group: str, name: str, kind: str, base: type | None = None):
    """The object registered as ``name`` in ``group`` (``kind`` names it in errors); with
    ``base``, it must be a subclass of ``base``."""
    eps = _group(group)
    if name not in eps:
        known = ", ".join(eps) or "none"
        raise UnknownProbeError(f"unknown {kind} {name!r}; registered: {known}")
    try:
        obj = eps[name].load()
    except Exception as exc:  # a broken plug-in must not look like our bug, nor be hidden
        raise GeoprobeError(f"{kind} {name!r} ({eps[name].value}) failed to load: "
                            f"{type(exc).__name__}: {exc}") from exc
    if base is not None and not (isinstance(obj, type) and issubclass(obj, base)):
        raise GeoprobeError(f"entry point {name!r} does not name a geoprobe "
                            f"{base.__name__} subclass")
    return obj


#: ``package.module:attribute``, each part a Python identifier (an entry point's value form)
_REFERENCE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def is_reference(text: str) -> bool:
    """Whether ``text`` has the form ``package.module:attribute``."""
    return bool(_REFERENCE.fullmatch(str(text)))


def load_reference(reference: str, what: str):
    """The object that ``"package.module:attribute"`` names, e.g. a model factory.

    This imports and so **runs user code**, by design (the same trust as installing a
    plug-in): name only modules you would import yourself. The reference is checked to be
    dotted identifiers before anything is imported, so a file path or an expression is
    refused; the module is found on ``sys.path`` only (install it, or put its folder on
    ``PYTHONPATH``). Any failure is one GeoprobeError naming ``what`` and the reference.
    """
    if not is_reference(reference):
        raise GeoprobeError(f"{what} {reference!r} is not of the form package.module:function")
    try:
        return EntryPoint(name=what, value=reference, group="geoprobe.references").load()
    except Exception as exc:  # the user's module failing must read as theirs, in one line
        raise GeoprobeError(f"{what} {reference!r} failed to load: {type(exc).__name__}: "
                            f"{first_line(exc)}") from exc
