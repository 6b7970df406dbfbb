"""geoprobe: what structure does an embedding space hold?

A notebook session::

    import geoprobe
    emb = geoprobe.load_embeddings("emb.npy", items="labels.csv")
    result = geoprobe.make_probe("covariance-spectrum").run(emb, seed=0)
    result.metric("rankme", layer="0")
    fig = result.plot()
"""

import importlib

from .version import __version__

# The public names load on first use (PEP 562), so that importing geoprobe (as pytest does for
# its plug-in, geoprobe.pytest_plugin, in every test run of an environment that has geoprobe)
# costs nothing until something is used.
_EXPORTS = {
    "extract_activations": "activations",
    "EmbeddingSet": "embeddings", "EmbeddingWriter": "embeddings",
    "EmbeddingError": "errors", "FormatError": "errors", "GeoprobeError": "errors",
    "ProbeInputError": "errors", "SuiteError": "errors", "UnknownProbeError": "errors",
    "export_embeddings": "io", "load_embeddings": "io",
    "ItemTable": "items",
    "Metric": "probe", "Probe": "probe", "ProbeContext": "probe", "ProbeResult": "probe",
    "Requirements": "probe",
    "available": "registry", "get_probe": "registry", "make_probe": "registry",
    "Source": "source", "resolve_source": "source",
}

__all__ = [
    "EmbeddingSet", "EmbeddingWriter", "ItemTable", "load_embeddings", "export_embeddings",
    "extract_activations",
    "Source", "resolve_source",
    "Probe", "ProbeContext", "ProbeResult", "Metric", "Requirements",
    "available", "get_probe", "make_probe",
    "GeoprobeError", "EmbeddingError", "FormatError", "ProbeInputError", "SuiteError",
    "UnknownProbeError", "__version__",
]


def __getattr__(name: str):
    """A public name, or a submodule (``geoprobe.threads``), imported when first asked for."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":  # a submodule whose own import failed
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
