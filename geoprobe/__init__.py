"""geoprobe: what structure does an embedding space hold?

A notebook session::

    import geoprobe
    emb = geoprobe.load_embeddings("emb.npy", items="labels.csv")
    result = geoprobe.make_probe("covariance-spectrum").run(emb, seed=0)
    result.metric("rankme", layer="0")
    fig = result.plot()
"""

__version__ = "0.1.0"

from .embeddings import EmbeddingSet, EmbeddingWriter  # noqa: E402
from .errors import (  # noqa: E402
    EmbeddingError, FormatError, GeoprobeError, ProbeInputError, SuiteError, UnknownProbeError,
)
from .io import export_embeddings, load_embeddings  # noqa: E402
from .items import ItemTable  # noqa: E402
from .probe import Metric, Probe, ProbeContext, ProbeResult, Requirements  # noqa: E402
from .registry import available, get_probe, make_probe  # noqa: E402
from .source import Source, resolve_source  # noqa: E402

__all__ = [
    "EmbeddingSet", "EmbeddingWriter", "ItemTable", "load_embeddings", "export_embeddings",
    "Source", "resolve_source",
    "Probe", "ProbeContext", "ProbeResult", "Metric", "Requirements",
    "available", "get_probe", "make_probe",
    "GeoprobeError", "EmbeddingError", "FormatError", "ProbeInputError", "SuiteError",
    "UnknownProbeError", "__version__",
]
