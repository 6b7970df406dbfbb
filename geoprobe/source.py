"""One probed source: an embedding set, its random-init twin and the layers to probe.

:func:`resolve_source` is the one place that turns what a user or a suite names (a file, a
generated set, a twin path or "the twin the set records") into a :class:`Source`: the set is
loaded once, its twin is found, checked and aligned to the set's items once, and both are cut
to the chosen layers once. The runner and :meth:`geoprobe.Probe.run` then consume the Source
as is; nothing downstream looks at provenance to decide what a set is.

Provenance stays a record: a set written with a twin records the twin's path there (``twin``,
relative to the set's parent directory or absolute), and ``resolve_source(..., twin="auto")``
reads that record, and only there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .embeddings import EmbeddingSet
from .errors import EmbeddingError
from .io import load_embeddings

#: ``twin=`` value of :func:`resolve_source` that takes the twin the set's provenance records
AUTO = "auto"


@dataclass(frozen=True)
class Source:
    """An embedding set ready to probe, with its random-init twin.

    Build it with :func:`resolve_source`, which guarantees what the fields promise.

    Parameters
    ----------
    embeddings : EmbeddingSet
        The set, already cut to the layers to probe.
    twin : EmbeddingSet or None
        The same items embedded by a random-init model: the same layers (by position) and
        the same rows in the same order as ``embeddings``. None when there is no twin.
    """

    embeddings: EmbeddingSet
    twin: EmbeddingSet | None = None

    @property
    def layers(self) -> list[str]:
        """Names of the layers to probe (the twin's metrics take these names too)."""
        return list(self.embeddings.layer_names)

    def without_twin(self) -> "Source":
        """The same set with no twin (a probe run with ``twin=False``)."""
        return Source(self.embeddings)


#: what an extractor inserts before a set's suffix to name its random-init twin
TWIN_SUFFIX = ".random-init"


def twin_path_for(out) -> Path:
    """Where an extractor writes the random-init twin of the set at ``out``:
    ``x.gpemb`` -> ``x.random-init.gpemb`` (recorded in the set's provenance as ``twin``)."""
    out = Path(out)
    return out.with_name(out.stem + TWIN_SUFFIX + out.suffix)


def twin_path(emb: EmbeddingSet) -> Path | None:
    """Path of the random-init twin that ``emb``'s provenance records, or None.

    A relative path is resolved beside the set (in the directory holding the set ``emb`` was
    opened from), as the writers of twins record it.
    """
    recorded = emb.provenance.get("twin")
    if not recorded:
        return None
    path = Path(recorded)
    if not path.is_absolute() and emb.path is not None:
        path = emb.path.parent / path
    return path


def layer_positions(emb: EmbeddingSet, layers) -> list[int]:
    """Positions of the layers that ``layers`` names in ``emb``.

    ``layers`` is None or ``"all"`` (every layer), ``"last"``, one layer (a name, or a position
    with negative ones counting from the end), or a list of layers.
    """
    if layers is None or layers == "all":
        return list(range(emb.n_layers))
    if layers == "last":
        return [emb.n_layers - 1]
    if isinstance(layers, (str, int)):
        layers = [layers]
    return [emb.layer_index(layer) for layer in layers]


def resolve_source(main: EmbeddingSet | str | os.PathLike, *, items=None,
                   twin: EmbeddingSet | str | os.PathLike | None = None,
                   layers: Sequence[int | str] | str | int | None = None,
                   validate: bool = True, name: str | None = None) -> Source:
    """Load, align and select a source once; everything a probe run needs.

    Parameters
    ----------
    main : EmbeddingSet or path
        The set to probe, or a file :func:`~geoprobe.io.load_embeddings` reads.
    items : ItemTable, mapping or path to a CSV, optional
        Row descriptions the file lacks (only with a path).
    twin : None, ``"auto"``, EmbeddingSet or path
        The random-init control. None: no twin. ``"auto"``: the twin ``main``'s provenance
        records (:func:`twin_path`), if it records one. A set or a path: that set.
    layers : None, "all", "last", a layer or a list of layers
        The layers to probe, by name or position; the twin's layers are taken at the same
        positions.
    validate : bool
        Check the files read for NaN/Inf.
    name : str, optional
        The source's name in a suite, for error messages.

    Raises
    ------
    EmbeddingError
        The twin has another number of layers, or other items than ``main`` (naming the first
        missing item): raised here, before any probe runs.
    """
    if isinstance(main, EmbeddingSet):
        if items is not None:
            main = main.with_items(items)
    else:
        main = load_embeddings(main, items=items, validate=validate)
    if twin == AUTO:
        twin = twin_path(main)
    if twin is not None and not isinstance(twin, EmbeddingSet):
        twin = load_embeddings(twin, validate=validate)
    n_layers = main.n_layers
    positions = layer_positions(main, layers)
    # Keep the caller's own set when every layer is probed (the usual interactive case).
    if positions != list(range(n_layers)):
        main = main.select_layers(positions)
    if twin is None:
        return Source(main)
    what = f"source {name!r}: " if name else ""
    if twin.n_layers != n_layers:
        raise EmbeddingError(f"{what}random-init twin {twin.source} has {twin.n_layers} "
                             f"layers, {main.source} has {n_layers}")
    # Layers correspond by position. Cutting before aligning reads only the chosen layers
    # when the rows need reordering.
    if positions != list(range(n_layers)):
        twin = twin.select_layers(positions)
    try:
        twin = twin.align_to(main)
    except EmbeddingError as exc:
        raise EmbeddingError(f"{what}twin does not match: {exc}") from None
    return Source(main, twin)
