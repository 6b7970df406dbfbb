"""One embedding set holding several treebank splits, for probes that train and select.

The syntax probes (``structural-probe``, ``polar-probe``) read train and dev rows from one
embedding set and tell them apart by the ``split`` item column. Extraction writes one set per
split (``geoprobe extract --split train`` / ``--split dev``); :func:`concat_sets` joins such
sets row-wise on disk, streaming (memory does not grow with the corpus), and the suite
generator ``treebank-lm-splits`` extracts the splits and joins them, real and random-init twin
alike, so the twin stays the probes' random-init baseline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from geoprobe.embeddings import EmbeddingSet, EmbeddingWriter
from geoprobe.errors import EmbeddingError, GeoprobeError
from geoprobe.locks import work_dir
from geoprobe.safepath import check_name, inside
from geoprobe.source import AUTO, TWIN_SUFFIX, resolve_source

from .extraction import reuse_built, treebank_lm

_CHUNK_ROWS = 8192


def concat_sets(sets: Sequence[EmbeddingSet], out, *, provenance: Mapping | None = None,
                dtype=None) -> Path:
    """Write the rows of ``sets`` one after another into a new on-disk set at ``out``.

    Every set must have the same layer names, width and item columns; item IDs must stay
    unique across sets (the writer refuses duplicates, naming one). ``provenance`` is stored
    with ``parts`` (the sources joined) added. Returns the path written.
    """
    if not sets:
        raise GeoprobeError("concat_sets: no embedding sets to join")
    first = sets[0]
    for s in sets[1:]:
        if s.layer_names != first.layer_names or s.dim != first.dim:
            raise EmbeddingError(f"{s.source}: layers {s.layer_names} x {s.dim} differ from "
                                 f"{first.source}'s {first.layer_names} x {first.dim}")
        if sorted(s.items.names) != sorted(first.items.names):
            raise EmbeddingError(f"{s.source}: item columns {sorted(s.items.names)} differ from "
                                 f"{first.source}'s {sorted(first.items.names)}")
    dtype = np.dtype(dtype or first.layer(0).dtype)
    prov = {**dict(provenance or {}), "parts": [s.source for s in sets]}
    with EmbeddingWriter(out, dim=first.dim, layer_names=first.layer_names, dtype=dtype,
                         provenance=prov, validate=False) as writer:
        for s in sets:
            layers = [s.layer(i) for i in range(s.n_layers)]
            for start in range(0, s.n_items, _CHUNK_ROWS):
                stop = min(start + _CHUNK_ROWS, s.n_items)
                block = np.stack([np.asarray(X[start:stop], dtype=dtype) for X in layers])
                writer.append(block, {k: v[start:stop] for k, v in s.items.items()})
    return Path(out)


def treebank_lm_splits(splits: Sequence[str] = ("train", "dev"), model: str | None = None,
                       max_sentences: int | Mapping[str, int] | None = None,
                       batch_size: int = 32, dtype: str = "float32", twin: bool = True,
                       long_sentences: str = "skip", seed: int = 0,
                       workdir=None, device: str = "cpu",
                       precision: str = "float32") -> EmbeddingSet:
    """Suite generator ``treebank-lm-splits``: UD English-EWT's splits through a model, joined.

    Parameters
    ----------
    splits : EWT splits to extract (the ``split`` column keeps each row's split)
    model : Hugging Face model directory; default the offline MiniLM
    max_sentences : int for every split, or a mapping split -> int (e.g. quick runs)
    batch_size, dtype, twin, long_sentences, seed, device, precision : as the
        ``treebank-lm`` generator
    workdir : scratch directory; each split is extracted once into ``workdir/<split>.gpemb``
        and the joined set (and its twin) reused by later calls with the same arguments;
        default a :func:`~geoprobe.locks.work_dir` of this process

    Returns
    -------
    EmbeddingSet opened from ``workdir/<splits joined by +>.gpemb``, its twin named in its
    provenance.
    """
    for split in splits:  # each split names an output, checked before any model is loaded
        check_name(split, what="treebank-lm-splits: splits entry")
    workdir = Path(workdir) if workdir else work_dir("extract")
    limits = {s: (max_sentences.get(s) if isinstance(max_sentences, Mapping) else max_sentences)
              for s in splits}
    key = json.dumps({"splits": list(splits), "model": str(model), "max_sentences": limits,
                      "dtype": dtype, "twin": twin, "long_sentences": long_sentences,
                      "seed": seed, "device": device, "precision": precision}, sort_keys=True)
    out = inside(workdir, "+".join(splits) + ".gpemb", what="treebank-lm-splits: splits")
    built = reuse_built(out, "splits_key", key)
    if built is not None:
        return built
    parts = [treebank_lm(split=s, model=model, max_sentences=limits[s], batch_size=batch_size,
                         dtype=dtype, twin=twin, long_sentences=long_sentences, seed=seed,
                         workdir=workdir, device=device, precision=precision)
             for s in splits]
    prov = _joined_provenance(parts[0], key)
    if twin:
        twins = [resolve_source(p, twin=AUTO).twin for p in parts]
        twin_out = out.with_name(out.stem + TWIN_SUFFIX + out.suffix)
        concat_sets(twins, twin_out, provenance=_joined_provenance(twins[0], key))
        prov["twin"] = twin_out.name
    concat_sets(parts, out, provenance=prov)
    return EmbeddingSet.open(out, validate=False)


def _joined_provenance(first: EmbeddingSet, key: str) -> dict:
    """The first part's provenance without what belongs to one split."""
    prov = {k: v for k, v in first.provenance.items()
            if k not in ("twin", "split", "n_sentences", "extraction_key")}
    prov["splits_key"] = key
    return prov
