"""Importers and exporters: bring embeddings from common files into an :class:`EmbeddingSet`.

=====================  ==================================================================
file                   what is read
=====================  ==================================================================
``dir/manifest.json``  geoprobe's own format (:meth:`EmbeddingSet.open`), memory-mapped
``.npy``               one array (n_items, dim) or (n_layers, n_items, dim), memory-mapped
``.npz``               arrays of >= 2 dims are layers (natural key order; a 3-D array is
                       split), 1-D arrays are item columns (``item_id`` among them)
``.safetensors``       as .npz; the string metadata header goes into the provenance
``.pt`` / ``.pth``     ``torch.load(weights_only=True)``: a tensor, a list/tuple of tensors
                       (e.g. Hugging Face ``hidden_states``) or a dict of tensors
``.hdf5`` / ``.h5``    the structural-probes layout: one dataset per sentence (keys
                       ``"0"``, ``"1"``, ...), each (n_layers, n_tokens, dim) or
                       (n_tokens, dim); rows get ``sentence_id``, ``position`` and IDs
                       ``"<sentence>:<position>"``. Needs the ``hdf5`` extra (h5py).
=====================  ==================================================================

Nothing is ever unpickled: NumPy files load with ``allow_pickle=False`` and torch files with
``weights_only=True``. A file that its parser cannot read (truncated, corrupt, lying about its
sizes) is a :class:`~geoprobe.errors.FormatError` naming it, never the parser's own exception.
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .embeddings import MANIFEST, NPY_ERRORS, EmbeddingSet, load_npy
from .errors import EmbeddingError, FormatError, first_line
from .items import ItemTable
from .provenance import atomic_path

SUFFIXES = (".npy", ".npz", ".safetensors", ".pt", ".pth", ".hdf5", ".h5")

#: What the zip and HDF5 parsers raise on corrupt or hostile bytes beyond what np.load does
#: (NPY_ERRORS, MemoryError for a declared size larger than memory among them): a broken
#: archive (BadZipFile, zlib.error), an unsupported or encrypted member (NotImplementedError,
#: RuntimeError), an HDF5 object that cannot be opened (KeyError, RuntimeError).
_PARSE_ERRORS = (*NPY_ERRORS, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError,
                 KeyError)


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _split_named(arrays: Mapping[str, np.ndarray], source: str):
    """Separate named arrays into layers (ndim >= 2) and item columns (ndim == 1)."""
    layers, names, columns = [], [], {}
    for key in sorted(arrays, key=_natural_key):
        arr = arrays[key]
        if arr.ndim == 1:
            columns[key] = arr
        elif arr.ndim == 2:
            layers.append(arr)
            names.append(key)
        elif arr.ndim == 3:
            layers.extend(arr[i] for i in range(arr.shape[0]))
            names.extend(f"{key}.{i}" for i in range(arr.shape[0]))
        else:
            raise FormatError(f"{source}: array {key!r} has shape {arr.shape}; "
                              "expected (n_items, dim) or (n_layers, n_items, dim)")
    if not layers:
        raise FormatError(f"{source}: no 2-D or 3-D array found to use as embeddings")
    if len(names) == 1:
        names = None
    return layers, names, columns


def load_embeddings(path, *, items=None, layer_names=None, validate: bool = True) -> EmbeddingSet:
    """Load an embedding set from any supported file (see the module docstring).

    Parameters
    ----------
    path : str or Path
    items : ItemTable, mapping, or path to a CSV, optional
        Row descriptions that the file itself lacks. A CSV is matched by order and must have
        exactly one data row per item; an ``item_id`` column in it gives the IDs.
    layer_names : list of str, optional
        Overrides the names found in the file.
    validate : bool
        Check for NaN/Inf (chunked, one pass per layer); errors name the first bad item.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise FormatError(f"{path}: file not found")
    provenance: dict = {"source": source}
    columns: dict = {}
    names = None
    if path.is_dir():
        if not (path / MANIFEST).exists():
            raise FormatError(f"{path}: directory without {MANIFEST}; not a geoprobe embedding set")
        emb = EmbeddingSet.open(path, validate=validate)
        if items is None and layer_names is None:
            return emb
        if layer_names is not None:
            emb.layer_names = [str(n) for n in layer_names]
        return emb.with_items(items) if items is not None else emb
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            layers = load_npy(path, mmap=True)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                layers, names, columns = _split_named({k: z[k] for k in z.files}, source)
        elif suffix == ".safetensors":
            layers, names, columns, meta = _read_safetensors(path)
            provenance.update(meta)
        elif suffix in (".pt", ".pth"):
            layers, names, columns = _read_torch(path)
        elif suffix in (".hdf5", ".h5"):
            layers, columns = _read_structural_hdf5(path)
        else:
            raise FormatError(f"{path}: unknown file type {suffix!r}; supported: "
                              f"{', '.join(SUFFIXES)} or a geoprobe embedding directory")
    except _PARSE_ERRORS as exc:
        if isinstance(exc, (FormatError, EmbeddingError)):
            raise
        raise FormatError(f"{path}: cannot read as {suffix} "
                          f"({type(exc).__name__}: {first_line(exc)})") from None
    table = None
    if items is not None:
        n = (layers.shape[-2] if isinstance(layers, np.ndarray) else layers[0].shape[0])
        table = items if isinstance(items, ItemTable) else (
            ItemTable.from_csv(items, n_items=n) if isinstance(items, (str, Path))
            else ItemTable(items, n_items=n, source="items"))
        if columns:
            table = table.with_columns(**{k: v for k, v in columns.items() if k not in table})
    elif columns:
        table = ItemTable(columns, source=source)
    return EmbeddingSet(layers, table, provenance=provenance,
                        layer_names=layer_names or names, source=source, validate=validate)


def load_twin(emb: EmbeddingSet) -> EmbeddingSet | None:
    """The random-init twin that ``emb``'s provenance names (:attr:`EmbeddingSet.twin_path`),
    read like any file here and aligned to ``emb``'s items; None if it names none."""
    path = emb.twin_path
    if path is None:
        return None
    return load_embeddings(path).align_to(emb)


def _read_safetensors(path: Path):
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            meta = dict(f.metadata() or {})
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as exc:  # truncated, a header that lies about sizes or offsets
        raise FormatError(f"{path}: not a valid safetensors file ({first_line(exc)})") from None
    provenance = {}
    for key, value in meta.items():
        try:
            provenance[key] = json.loads(value)
        except (json.JSONDecodeError, TypeError):
            provenance[key] = value
    layers, names, columns = _split_named(arrays, str(path))
    ids = provenance.pop("item_ids", None)
    if ids is not None and "item_id" not in columns:
        columns["item_id"] = np.asarray(ids, dtype=str)
    return layers, names, columns, provenance


def torch_load(path: Path):
    """``torch.load(weights_only=True)`` on CPU: tensors and plain containers only. An unsafe
    pickle or a truncated or corrupt archive is a one-line FormatError naming the file."""
    import torch

    try:
        # torch warns about unusual pickle protocols before refusing them; the error says it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an unsafe pickle, or anything from a truncated or corrupt archive
        # torch's refusal is paragraphs of advice (some of it to load unsafely); its one
        # informative sentence follows "WeightsUnpickler error:"
        refusal = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(exc))
        detail = refusal.group(1).split(". ")[0] if refusal else first_line(exc)
        raise FormatError(f"{path}: not a plain tensor file loadable with weights_only=True; "
                          f"geoprobe never unpickles ({type(exc).__name__}: {detail})") from None


def _read_torch(path: Path):
    import torch

    obj = torch_load(path)

    def to_np(t, key):
        if not isinstance(t, torch.Tensor):
            raise FormatError(f"{path}: entry {key!r} is {type(t).__name__}, expected a tensor")
        return t.detach().float().numpy() if t.is_floating_point() else t.numpy()

    if isinstance(obj, torch.Tensor):
        return to_np(obj, "tensor"), None, {}
    if isinstance(obj, (list, tuple)):
        return _split_named({f"{i}": to_np(t, i) for i, t in enumerate(obj)}, str(path))
    if isinstance(obj, dict):
        return _split_named({str(k): to_np(v, k) for k, v in obj.items()}, str(path))
    raise FormatError(f"{path}: holds a {type(obj).__name__}, expected tensor, list or dict")


def _read_structural_hdf5(path: Path):
    try:
        import h5py
    except ImportError:
        raise FormatError(f"{path}: reading HDF5 needs h5py; pip install 'geoprobe[hdf5]'") from None
    with h5py.File(path, "r") as f:
        keys = sorted(f.keys(), key=_natural_key)
        if not keys:
            raise FormatError(f"{path}: no datasets")
        blocks, sent, pos = [], [], []
        n_layers = None
        for key in keys:
            arr = np.asarray(f[key])
            if arr.ndim == 2:
                arr = arr[None]
            if arr.ndim != 3:
                raise FormatError(f"{path}: dataset {key!r} has shape {arr.shape}, expected "
                                  "(n_layers, n_tokens, dim)")
            if n_layers is None:
                n_layers = arr.shape[0]
            elif arr.shape[0] != n_layers or arr.shape[2] != blocks[0].shape[2]:
                raise FormatError(f"{path}: dataset {key!r} has shape {arr.shape}, "
                                  f"but dataset {keys[0]!r} has {blocks[0].shape}")
            blocks.append(arr)
            sent.append(np.full(arr.shape[1], key))
            pos.append(np.arange(arr.shape[1]))
    layers = np.concatenate(blocks, axis=1)
    sentence, position = np.concatenate(sent), np.concatenate(pos)
    ids = np.char.add(np.char.add(sentence.astype(str), ":"), position.astype(str))
    columns = {"item_id": ids, "sentence_id": sentence, "position": position}
    return layers, columns


def export_embeddings(emb: EmbeddingSet, path) -> Path:
    """Write ``emb`` to ``path``: geoprobe's directory format unless the suffix is
    ``.npz`` or ``.safetensors`` (layers by name, numeric item columns; IDs in the metadata)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".safetensors"):
        return emb.save(path)
    arrays = {name: np.ascontiguousarray(X) for name, X in emb.iter_layers()}
    with atomic_path(path, suffix=suffix) as tmp:
        if suffix == ".npz":
            arrays.update({k: v for k, v in emb.items.items() if k not in arrays})
            np.savez(tmp, **arrays)
        else:
            from safetensors.numpy import save_file

            numeric = {k: np.ascontiguousarray(v) for k, v in emb.items.items()
                       if v.dtype.kind in "biuf" and k not in arrays}
            meta = {k: json.dumps(v, default=str) for k, v in emb.provenance.items()
                    if not k.startswith("_")}
            meta["item_ids"] = json.dumps(emb.ids.tolist())
            save_file({**arrays, **numeric}, str(tmp), metadata=meta)
    return path
