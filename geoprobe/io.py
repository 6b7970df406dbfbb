"""Importers and exporters: bring embeddings from common files into an :class:`EmbeddingSet`.

=====================  ==================================================================
file                   what is read
=====================  ==================================================================
``dir/manifest.json``  geoprobe's own format (:meth:`EmbeddingSet.open`), memory-mapped
``.npy``               one array (n_items, dim) or (n_layers, n_items, dim), memory-mapped
``.npz``               arrays of >= 2 dims are layers (natural key order; a 3-D array is
                       split), 1-D arrays are item columns (``item_id`` among them)
``.safetensors``       as .npz; the string metadata header goes into the provenance. Lazy:
                       a layer is read (``safe_open(...).get_slice``) only when a probe
                       asks for it, one layer at a time
``.pt`` / ``.pth``     ``torch.load(weights_only=True)``: a tensor, a list/tuple of tensors
                       (e.g. Hugging Face ``hidden_states``) or a dict of tensors
``.hdf5`` / ``.h5``    the structural-probes layout: one dataset per sentence (keys
                       ``"0"``, ``"1"``, ...), each (n_layers, n_tokens, dim) or
                       (n_tokens, dim); rows get ``sentence_id``, ``position`` and IDs
                       ``"<sentence>:<position>"``. Needs the ``hdf5`` extra (h5py). Lazy:
                       only shapes are read on import; a layer is read from the datasets'
                       slices when a probe asks for it, one layer at a time
=====================  ==================================================================

Validation (NaN/Inf) of a lazy file scans one layer at a time in row chunks, naming the file,
layer, row and item. .npz and torch files are read whole (their formats compress or pickle).

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

from .embeddings import MANIFEST, NPY_ERRORS, EmbeddingSet, LazyLayers, load_npy
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
        n = (layers.shape[0] if isinstance(layers, LazyLayers) else
             layers.shape[-2] if isinstance(layers, np.ndarray) else layers[0].shape[0])
        table = items if isinstance(items, ItemTable) else (
            ItemTable.from_csv(items, n_items=n) if isinstance(items, (str, Path))
            else ItemTable(items, n_items=n, source="items"))
        if columns:
            table = table.with_columns(**{k: v for k, v in columns.items() if k not in table})
    elif columns:
        table = ItemTable(columns, source=source)
    return EmbeddingSet(layers, table, provenance=provenance,
                        layer_names=layer_names or names, source=source, validate=validate)


def _safetensors_error(path: Path, exc) -> FormatError:
    return FormatError(f"{path}: not a valid safetensors file ({first_line(exc)})")


class _SafetensorsLayer:
    """One layer of a safetensors file, read through ``safe_open(...).get_slice`` only when
    asked for: tensor ``key`` (n_items, dim), or its slice ``index`` when it is 3-D.

    The file is opened per read, so no handle outlives a call and a set holds no open files.
    """

    def __init__(self, path: Path, key: str, index: int | None, shape, dtype: str):
        self.path, self.key, self.index = path, key, index
        self.shape, self.dtype = tuple(shape), dtype

    def __getitem__(self, rows: slice) -> np.ndarray:
        """Rows ``start:stop`` (a slice of step 1), shape (stop - start, dim)."""
        from safetensors import SafetensorError, safe_open

        start, stop, _ = rows.indices(self.shape[0])  # get_slice does not clip as NumPy does
        rows = slice(start, max(start, stop))
        try:
            with safe_open(str(self.path), framework="np") as f:
                part = f.get_slice(self.key)
                arr = part[rows] if self.index is None else part[self.index, rows]
        except SafetensorError as exc:  # the file changed or broke after it was opened
            raise _safetensors_error(self.path, exc) from None
        # integer tensors become float32, as in-memory layers do (EmbeddingSet)
        return arr if arr.dtype.kind == "f" else arr.astype(np.float32)

    def load(self) -> np.ndarray:
        """The whole layer, shape (n_items, dim)."""
        return self[0:self.shape[0]]


#: safetensors dtypes that NumPy reads (BF16 and FP8 have no NumPy dtype).
_SAFETENSORS_NUMERIC = {"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64",
                        "F16", "F32", "F64"}


def _read_safetensors(path: Path):
    """Layers of a safetensors file as lazy readers (only the header and the 1-D item
    columns are read here), the item columns, and the metadata."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            meta = dict(f.metadata() or {})
            shapes, columns = {}, {}
            for key in f.keys():
                part = f.get_slice(key)
                shape, dtype = tuple(part.get_shape()), part.get_dtype()
                if dtype not in _SAFETENSORS_NUMERIC:
                    raise FormatError(f"{path}: tensor {key!r} has dtype {dtype}, which NumPy "
                                      "cannot read; convert it to float16 or float32")
                if len(shape) == 1:
                    columns[key] = part[:]  # item columns are small: read now
                else:
                    shapes[key] = (shape, dtype)
    except SafetensorError as exc:  # truncated, a header that lies about sizes or offsets
        raise _safetensors_error(path, exc) from None
    provenance = {}
    for key, value in meta.items():
        try:
            provenance[key] = json.loads(value)
        except (json.JSONDecodeError, TypeError):
            provenance[key] = value
    readers, names = [], []
    for key in sorted(shapes, key=_natural_key):
        shape, dtype = shapes[key]
        if len(shape) == 2:
            readers.append(_SafetensorsLayer(path, key, None, shape, dtype))
            names.append(key)
        elif len(shape) == 3:
            readers += [_SafetensorsLayer(path, key, i, shape[1:], dtype)
                        for i in range(shape[0])]
            names += [f"{key}.{i}" for i in range(shape[0])]
        else:
            raise FormatError(f"{path}: array {key!r} has shape {shape}; "
                              "expected (n_items, dim) or (n_layers, n_items, dim)")
    if not readers:
        raise FormatError(f"{path}: no 2-D or 3-D array found to use as embeddings")
    layers = LazyLayers(readers, readers[0].shape, source=str(path))
    ids = provenance.pop("item_ids", None)
    if ids is not None and "item_id" not in columns:
        columns["item_id"] = np.asarray(ids, dtype=str)
    return layers, (names if len(names) > 1 else None), columns, provenance


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


class _Hdf5Layer:
    """Layer ``layer`` of a structural-probes HDF5 file: the rows of every sentence dataset,
    concatenated, read from the datasets' slices only when asked for (the file is reopened
    per read, so a set holds no open handle).

    ``keys`` are the sentence datasets in row order, ``offsets`` (len(keys) + 1,) the row
    where each starts, and ``three_d`` (one bool per key) says whether a dataset is
    (n_layers, n_tokens, dim) rather than (n_tokens, dim).
    """

    def __init__(self, path: Path, keys, offsets: np.ndarray, layer: int, dim: int,
                 three_d: bool, dtype: np.dtype):
        self.path, self.keys, self.offsets, self.layer = path, keys, offsets, layer
        self.three_d = three_d
        self.shape = (int(offsets[-1]), dim)
        # integer datasets become float32, as in-memory layers do (EmbeddingSet)
        self.dtype = dtype if dtype.kind == "f" else np.dtype(np.float32)

    def __getitem__(self, rows: slice) -> np.ndarray:
        """Rows ``start:stop`` (a slice of step 1), shape (stop - start, dim)."""
        import h5py

        start, stop, _ = rows.indices(self.shape[0])
        stop = max(start, stop)
        out = np.empty((stop - start, self.shape[1]), dtype=self.dtype)
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        try:
            with h5py.File(self.path, "r") as f:
                for k in range(max(first, 0), len(self.keys)):
                    lo, hi = self.offsets[k], self.offsets[k + 1]
                    if lo >= stop:
                        break
                    a, b = max(start, lo) - lo, min(stop, hi) - lo
                    ds = f[self.keys[k]]
                    out[lo + a - start:lo + b - start] = (ds[self.layer, a:b]
                                                          if self.three_d[k] else ds[a:b])
        except _PARSE_ERRORS as exc:  # the file changed or broke after it was opened
            raise FormatError(f"{self.path}: cannot read as HDF5 "
                              f"({type(exc).__name__}: {first_line(exc)})") from None
        return out

    def load(self) -> np.ndarray:
        """The whole layer, shape (n_items, dim)."""
        return self[0:self.shape[0]]


def _read_structural_hdf5(path: Path):
    """Lazy layer readers and the item columns of a structural-probes HDF5 file; only the
    datasets' shapes are read here."""
    try:
        import h5py
    except ImportError:
        raise FormatError(f"{path}: reading HDF5 needs h5py; pip install 'geoprobe[hdf5]'") from None
    with h5py.File(path, "r") as f:
        keys = sorted(f.keys(), key=_natural_key)
        if not keys:
            raise FormatError(f"{path}: no datasets")
        shapes, dtypes, three_d = [], [], []
        for key in keys:
            ds = f[key]
            if not isinstance(ds, h5py.Dataset):
                raise FormatError(f"{path}: {key!r} is a {type(ds).__name__}, expected a "
                                  "dataset (n_layers, n_tokens, dim)")
            shape = ds.shape if len(ds.shape) != 2 else (1, *ds.shape)
            if len(shape) != 3:
                raise FormatError(f"{path}: dataset {key!r} has shape {shape}, expected "
                                  "(n_layers, n_tokens, dim)")
            if shapes and (shape[0] != shapes[0][0] or shape[2] != shapes[0][2]):
                raise FormatError(f"{path}: dataset {key!r} has shape {shape}, "
                                  f"but dataset {keys[0]!r} has {shapes[0]}")
            if ds.dtype.kind not in "fiub":
                raise FormatError(f"{path}: dataset {key!r} has non-numeric dtype {ds.dtype}")
            shapes.append(shape)
            dtypes.append(ds.dtype)
            three_d.append(len(ds.shape) == 3)
    n_tokens = np.array([s[1] for s in shapes])
    offsets = np.r_[0, np.cumsum(n_tokens)]
    dtype = np.result_type(*dtypes)
    readers = [_Hdf5Layer(path, keys, offsets, i, shapes[0][2], three_d, dtype)
               for i in range(shapes[0][0])]
    sentence = np.repeat(np.asarray(keys), n_tokens)
    position = np.concatenate([np.arange(t) for t in n_tokens])
    ids = np.char.add(np.char.add(sentence.astype(str), ":"), position.astype(str))
    columns = {"item_id": ids, "sentence_id": sentence, "position": position}
    return LazyLayers(readers, readers[0].shape, source=str(path)), columns


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


def read_tensor_checkpoint(path, *, fmt: str, what: str) -> tuple[dict, dict]:
    """(metadata, tensors) of the safetensors checkpoint ``path``, whose metadata must name
    ``format = fmt``; a file that is not one is a FormatError naming it (``what`` names the
    kind of checkpoint in the message). Tensors only: a checkpoint can never run code."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise FormatError(f"{path}: not a readable safetensors checkpoint ({exc})") from exc
    if meta.get("format") != fmt:
        raise FormatError(f"{path}: not a geoprobe {what} checkpoint (metadata format "
                          f"{meta.get('format')!r})")
    return meta, tensors
