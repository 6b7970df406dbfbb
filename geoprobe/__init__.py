"""geoprobe: what structure does an embedding space hold?

A notebook session::

    import geoprobe
    emb = geoprobe.load_embeddings("emb.npy", items="labels.csv")
    result = geoprobe.make_probe("covariance-spectrum").run(emb, seed=0)
    result.metric("rankme", layer="0")
    fig = result.plot()
"""

from .version import __version__

from .activations import extract_activations
from .embeddings import EmbeddingSet, EmbeddingWriter
from .errors import (
    EmbeddingError, FormatError, GeoprobeError, ProbeInputError, SuiteError, UnknownProbeError,
)
from .io import export_embeddings, load_embeddings
from .items import ItemTable
from .probe import Metric, Probe, ProbeContext, ProbeResult, Requirements
from .registry import available, get_probe, make_probe
from .source import Source, resolve_source

__all__ = [
    "EmbeddingSet", "EmbeddingWriter", "ItemTable", "load_embeddings", "export_embeddings",
    "extract_activations",
    "Source", "resolve_source",
    "Probe", "ProbeContext", "ProbeResult", "Metric", "Requirements",
    "available", "get_probe", "make_probe",
    "GeoprobeError", "EmbeddingError", "FormatError", "ProbeInputError", "SuiteError",
    "UnknownProbeError", "__version__",
]
