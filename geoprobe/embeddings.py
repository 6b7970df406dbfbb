"""Embedding sets: vectors plus what each row is, and geoprobe's on-disk format.

An :class:`EmbeddingSet` holds ``n_layers`` float matrices of shape (n_items, dim), an
:class:`~geoprobe.items.ItemTable` naming each row, and a provenance dict.

On-disk format (a directory, conventionally named ``*.gpemb``)::

    manifest.json          format name and version, n_items, dim, dtype, layer names,
                           the file of each layer and item column, provenance
    layers/000.npy ...     one standard .npy file per layer, shape (n_items, dim)
    items/000.npy ...      one .npy per item column, shape (n_items,), never pickled

Each layer file memory-maps on its own (``np.load(mmap_mode="r")``), so a probe that looks
at one layer never reads the others, and sets larger than RAM work. :class:`EmbeddingWriter`
streams rows in without knowing the final count, and the directory appears under its final
name only when it is complete.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import shutil
import tempfile
import tokenize
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from .display import has_jinja, render
from .errors import EmbeddingError, FormatError, first_line
from .items import ID_COLUMN, ItemTable, _as_column
from .locks import hold, remove_leftovers
from .provenance import apply_umask, read_json
from .safepath import inside
from .version import __version__

FORMAT_NAME = "geoprobe-embeddings"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_CHUNK_ROWS = 65536
#: A layer whose rows all lie within this fraction of its largest entry of the first row is
#: collapsed (float32 round-off is ~1e-7 of the magnitude).
COLLAPSE_RTOL = 1e-6

#: What np.load raises on a corrupt or hostile .npy besides OSError and ValueError: a header
#: cut short (EOFError) or not a Python literal (SyntaxError, tokenize.TokenError), and a
#: declared shape larger than memory (MemoryError).
NPY_ERRORS = (OSError, ValueError, EOFError, SyntaxError, tokenize.TokenError, MemoryError)


def load_npy(path, *, mmap: bool = False) -> np.ndarray:
    """``np.load`` that never unpickles; a file it cannot read is a FormatError naming it."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except NPY_ERRORS as exc:
        raise FormatError(f"{path}: cannot read as .npy "
                          f"({type(exc).__name__}: {first_line(exc)})") from None


def is_collapsed(X: np.ndarray, *, rtol: float = COLLAPSE_RTOL) -> bool:
    """Whether every row of ``X`` (n_items, dim) equals the first up to ``rtol``: a collapsed
    space (zero variance, RankMe 1) on which every geometric probe measures nothing.

    Cheap on any real layer: the chunked scan stops at the first chunk holding a differing
    row, so usually after the first one.
    """
    if X.shape[0] < 2:
        return False
    first = np.asarray(X[0], dtype=np.float64)
    tol = rtol * float(np.abs(first).max(initial=0.0))
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        chunk = np.asarray(X[start:start + _CHUNK_ROWS], dtype=np.float64)
        if np.abs(chunk - first).max() > tol:
            return False
    return True


def check_finite(X: np.ndarray, *, source: str, layer: str, ids: np.ndarray | None = None) -> None:
    """Raise :class:`EmbeddingError` naming the first row/item and column that is NaN or Inf.

    Works in chunks, so memory-mapped arrays are scanned without loading them whole.
    """
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        chunk = np.asarray(X[start:start + _CHUNK_ROWS])
        bad = ~np.isfinite(chunk)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            row = start + int(r)
            kind = "NaN" if np.isnan(chunk[r, c]) else "Inf"
            item = f" (item {str(ids[row])!r})" if ids is not None else ""
            raise EmbeddingError(
                f"{source}: layer {layer!r} row {row}{item} has {kind} in column {int(c)}"
            )


class EmbeddingSet:
    """Float vectors for ``n_items`` items at one or more layers, with item table and provenance.

    Parameters
    ----------
    layers : ndarray of shape (n_items, dim) or (n_layers, n_items, dim), or a sequence of
        (n_items, dim) arrays (memory-maps welcome).
    items : ItemTable, mapping of column name to array of shape (n_items,), or None
        Row descriptions. Without ``item_id``, row numbers become the IDs.
    provenance : dict, optional
        Free-form, JSON-serialisable. Conventional keys: ``model``, ``checkpoint_sha256``,
        ``pooling``, ``created``, ``geoprobe_version``, ``source``, ``twin`` (path of the same
        extraction from a random-init model, the standard control; a record that
        :func:`geoprobe.source.resolve_source` reads with ``twin="auto"``).
    layer_names : list of str, optional
        Defaults to ``"0", "1", ...``.
    source : str
        Name used in error messages (usually the file).
    validate : bool
        Check shapes and finiteness now (one chunked pass per layer).

    Attributes
    ----------
    path : Path or None
        The on-disk set this one was opened from (:meth:`open`), None for a set built in
        memory. Derived sets keep it: paths their provenance records resolve beside it.
    """

    def __init__(self, layers, items=None, *, provenance: Mapping | None = None,
                 layer_names: Sequence[str] | None = None, source: str = "embeddings",
                 validate: bool = True):
        self.source = source
        if isinstance(layers, LazyLayers):  # layers stay in their file until asked for
            self._loaders, self._scanners = layers.loaders(), layers.scanners()
            n_items, dim = layers.shape
        else:
            arrays = self._normalise_layers(layers, source)
            self._loaders = [(lambda a=a: a) for a in arrays]
            self._scanners = self._loaders
            n_items, dim = arrays[0].shape
        self.n_items, self.dim = int(n_items), int(dim)
        self.layer_names = [str(n) for n in (layer_names or range(len(self._loaders)))]
        if len(self.layer_names) != len(self._loaders):
            raise EmbeddingError(
                f"{source}: {len(self.layer_names)} layer names for {len(self._loaders)} layers"
            )
        if len(set(self.layer_names)) != len(self.layer_names):
            raise EmbeddingError(f"{source}: duplicate layer names {self.layer_names}")
        if isinstance(items, ItemTable):
            if len(items) != self.n_items:
                raise EmbeddingError(
                    f"{source}: item table ({items.source}) has {len(items)} rows "
                    f"but the embeddings have {self.n_items}"
                )
            self.items = items
        else:
            self.items = ItemTable(items or {}, n_items=self.n_items, source=source)
        self.provenance = dict(provenance or {})
        self.path: Path | None = None
        if validate:
            self.validate()

    @staticmethod
    def _normalise_layers(layers, source: str) -> list[np.ndarray]:
        if not isinstance(layers, (list, tuple)):  # one array-like (ndarray, memmap, tensor)
            arr = layers if isinstance(layers, np.ndarray) else np.asarray(layers)
            if arr.ndim == 2:
                arrays = [arr]
            elif arr.ndim == 3:
                arrays = [arr[i] for i in range(arr.shape[0])]
            else:
                raise EmbeddingError(
                    f"{source}: expected shape (n_items, dim) or (n_layers, n_items, dim), "
                    f"got {arr.shape}"
                )
        else:
            arrays = [a if isinstance(a, np.ndarray) else np.asarray(a) for a in layers]
        if not arrays:
            raise EmbeddingError(f"{source}: no layers")
        shape0 = arrays[0].shape
        for i, a in enumerate(arrays):
            if a.ndim != 2:
                raise EmbeddingError(f"{source}: layer {i} has shape {a.shape}, expected 2-D")
            if a.shape != shape0:
                raise EmbeddingError(
                    f"{source}: layer {i} has shape {a.shape} but layer 0 has {shape0}"
                )
            if a.dtype.kind not in "fiub":
                raise EmbeddingError(f"{source}: layer {i} has non-numeric dtype {a.dtype}")
        if shape0[0] == 0 or shape0[1] == 0:
            raise EmbeddingError(f"{source}: empty embeddings of shape {shape0}")
        return [a if a.dtype.kind == "f" else a.astype(np.float32) for a in arrays]

    # -- access --------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self._loaders)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(n_layers, n_items, dim)."""
        return (self.n_layers, self.n_items, self.dim)

    @property
    def ids(self) -> np.ndarray:
        return self.items.ids

    def layer_index(self, layer: int | str) -> int:
        """Position of a layer given by position (negative counts from the end) or by name."""
        if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
            i = int(layer)
            if -self.n_layers <= i < self.n_layers:
                return i % self.n_layers
            raise EmbeddingError(f"{self.source}: layer {i} out of range ({self.n_layers} layers)")
        if str(layer) in self.layer_names:
            return self.layer_names.index(str(layer))
        raise EmbeddingError(
            f"{self.source}: no layer {layer!r}; layers are {self.layer_names}"
        )

    def layer(self, layer: int | str = -1, *, dtype=None) -> np.ndarray:
        """One layer's vectors, shape (n_items, dim).

        Without ``dtype`` the stored array is returned as is (a read-only memory-map for sets
        opened from disk); with ``dtype`` it is loaded into memory and converted.
        """
        arr = self._loaders[self.layer_index(layer)]()
        return arr if dtype is None else np.asarray(arr, dtype=dtype)

    def iter_layers(self, *, dtype=None) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(layer_name, array)`` one layer at a time."""
        for i, name in enumerate(self.layer_names):
            yield name, self.layer(i, dtype=dtype)

    def column(self, name: str) -> np.ndarray:
        return self.items[name]

    def collapsed_layers(self) -> list[str]:
        """Names of the layers whose rows are all (nearly) identical (see :func:`is_collapsed`)."""
        return [name for name, X in self.iter_layers() if is_collapsed(X)]

    def collapse_warning(self) -> str | None:
        """One line naming the file and its collapsed layers, or None when none is: a valid but
        degenerate set runs every probe without error, and this says why the numbers are empty."""
        names = self.collapsed_layers()
        if not names:
            return None
        which = ", ".join(repr(n) for n in names)
        return (f"{self.source}: layer{'s' if len(names) > 1 else ''} {which} collapsed: all "
                f"{self.n_items} rows are (nearly) identical, zero variance")

    def validate(self) -> None:
        """Check every layer for NaN/Inf, naming the file, layer, row, item and column.

        One layer at a time, in row chunks: a layer held in a file (safetensors, HDF5) is read
        chunk by chunk, never whole.
        """
        for name, scan in zip(self.layer_names, self._scanners):
            X = scan()
            if X.shape != (self.n_items, self.dim):
                raise EmbeddingError(f"{self.source}: layer {name!r} has shape {X.shape}")
            check_finite(X, source=self.source, layer=name, ids=self.ids)

    # -- derived sets --------------------------------------------------------------------
    def select_layers(self, layers: Sequence[int | str]) -> "EmbeddingSet":
        idx = [self.layer_index(layer) for layer in layers]
        new = object.__new__(EmbeddingSet)
        new.__dict__.update(self.__dict__)
        new._loaders = [self._loaders[i] for i in idx]
        new._scanners = [self._scanners[i] for i in idx]
        new.layer_names = [self.layer_names[i] for i in idx]
        return new

    def subset(self, rows) -> "EmbeddingSet":
        """Rows selected by index or mask (loads the selected rows of every layer)."""
        rows = np.asarray(rows)
        new = EmbeddingSet([np.asarray(self.layer(i)[rows]) for i in range(self.n_layers)],
                           self.items.subset(rows), provenance=self.provenance,
                           layer_names=self.layer_names, source=self.source, validate=False)
        new.path = self.path
        return new

    def with_items(self, items) -> "EmbeddingSet":
        """The same vectors with another item table (an :class:`ItemTable`, dict or CSV path)."""
        if isinstance(items, (str, os.PathLike)):
            items = ItemTable.from_csv(items, n_items=self.n_items)
        new = object.__new__(EmbeddingSet)
        new.__dict__.update(self.__dict__)
        new.items = items if isinstance(items, ItemTable) else ItemTable(
            items, n_items=self.n_items, source=self.source)
        if len(new.items) != self.n_items:
            raise EmbeddingError(
                f"{new.items.source}: {len(new.items)} rows but {self.source} has {self.n_items}"
            )
        return new

    def align_to(self, other: "EmbeddingSet") -> "EmbeddingSet":
        """This set's rows reordered to match ``other``'s item IDs exactly.

        Raises :class:`EmbeddingError` unless both sets hold exactly the same IDs, and says how
        many are missing on each side with an example.
        """
        if np.array_equal(self.ids, other.ids):  # the usual case (a twin from the same run)
            return self
        a, b = set(self.ids.tolist()), set(other.ids.tolist())
        if a != b:
            only_self, only_other = sorted(a - b), sorted(b - a)
            parts = []
            if only_other:
                parts.append(f"{len(only_other)} item(s) of {other.source} missing from "
                             f"{self.source} (first {only_other[0]!r})")
            if only_self:
                parts.append(f"{len(only_self)} item(s) of {self.source} missing from "
                             f"{other.source} (first {only_self[0]!r})")
            raise EmbeddingError("cannot align embedding sets: " + "; ".join(parts))
        return self.subset(self.items.index_of(other.ids))

    # -- saving --------------------------------------------------------------------------
    def save(self, path, *, dtype=None) -> Path:
        """Write this set in geoprobe's on-disk format, atomically; returns the path."""
        dtype = np.dtype(dtype or self.layer(0).dtype)
        with EmbeddingWriter(path, dim=self.dim, layer_names=self.layer_names, dtype=dtype,
                             provenance=self.provenance, validate=False) as writer:
            for start in range(0, self.n_items, _CHUNK_ROWS):
                stop = min(start + _CHUNK_ROWS, self.n_items)
                block = np.stack([np.asarray(self.layer(i)[start:stop])
                                  for i in range(self.n_layers)])
                writer.append(block, {k: v[start:stop] for k, v in self.items.items()})
        return Path(path)

    @classmethod
    def open(cls, path, *, validate: bool = True) -> "EmbeddingSet":
        """Open a set in geoprobe's on-disk format; layers stay on disk until asked for."""
        path = Path(path)
        manifest_path = path / MANIFEST
        manifest = read_json(manifest_path, error=FormatError,
                             missing="not a geoprobe embedding set (no manifest)")
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            found = manifest.get("format") if isinstance(manifest, dict) else manifest
            raise FormatError(f"{manifest_path}: format is {found!r:.60}, "
                              f"expected {FORMAT_NAME!r}")
        version = _field(manifest, "version", int, manifest_path, default=0)
        if version > FORMAT_VERSION:
            raise FormatError(f"{manifest_path}: format version {version} is newer "
                              f"than this geoprobe reads ({FORMAT_VERSION}); upgrade geoprobe")
        n_items = _field(manifest, "n_items", int, manifest_path)
        dim = _field(manifest, "dim", int, manifest_path)
        if n_items < 1 or dim < 1:
            raise FormatError(f"{manifest_path}: empty set (n_items {n_items}, dim {dim})")
        names = _field(manifest, "layer_files", list, manifest_path)
        if not names:
            raise FormatError(f"{manifest_path}: no layer files")
        layer_files = [_member(path, f, "layer_files entry") for f in names]
        columns = {}
        for name, spec in _field(manifest, "columns", dict, manifest_path).items():
            if not isinstance(spec, dict):
                raise FormatError(f"{manifest_path}: column {name!r} has no file entry")
            columns[name] = load_npy(_member(path, spec.get("file"), f"columns.{name}.file"))
        layer_names = _field(manifest, "layer_names", (list, type(None)), manifest_path,
                             default=None)
        provenance = dict(_field(manifest, "provenance", dict, manifest_path, default={}))
        emb = cls(_LayerFiles(layer_files, (n_items, dim)),
                  ItemTable(columns, n_items=n_items, source=str(path)),
                  provenance=provenance, layer_names=layer_names,
                  source=str(path), validate=validate)
        emb.path = path.resolve()
        return emb

    def __repr__(self) -> str:
        names = self.items.names
        # a set can have hundreds of item columns; the repr stays one short line
        columns = repr(names) if len(names) <= 8 else f"[{len(names)} columns]"
        return (f"EmbeddingSet(source={self.source!r}, n_layers={self.n_layers}, "
                f"n_items={self.n_items}, dim={self.dim}, columns={columns})")

    def _repr_html_(self) -> str | None:
        """The notebook display: shape, layers, item columns and provenance as a table.
        None without jinja2, so the notebook shows the repr."""
        if not has_jinja():
            return None
        # long provenance values (a generator's parameters, say) are cut to keep the cell small
        provenance = {k: f"{v!s:.200}" for k, v in self.provenance.items()
                      if not k.startswith("_")}
        return render("embeddings.html.j2", source=self.source, n_layers=self.n_layers,
                      n_items=self.n_items, dim=self.dim, layers=self.layer_names,
                      columns=self.items.names, provenance=provenance)


_REQUIRED = object()


def _field(manifest: dict, key: str, kind, where: Path, default=_REQUIRED):
    """``manifest[key]``, checked to be of type ``kind`` (a bool is not an int)."""
    if key not in manifest and default is _REQUIRED:
        raise FormatError(f"{where}: missing field {key!r}")
    value = manifest.get(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise FormatError(f"{where}: field {key!r} is {value!r:.60}, expected {expected}")
    return value


def _member(root: Path, name, key: str) -> Path:
    """The file ``name`` that the manifest's ``key`` lists, inside the set at ``root``.

    A name that leaves the set (absolute, through ``..``, or through a symbolic link) or a
    missing file is a FormatError naming the key: a copied set must not make geoprobe read
    whatever its manifest points at.
    """
    where = f"{root / MANIFEST}: {key}"
    if not isinstance(name, str) or not name:
        raise FormatError(f"{where} must be a relative file name, got {name!r:.60}")
    path = inside(root, name, what=where, error=FormatError)  # also refuses absolute names
    if not path.is_file():
        raise FormatError(f"{root}: {key} {name!r} is missing")
    return path


class LazyLayers:
    """Layers kept in a file and read only when a probe asks for one, one layer at a time.

    Parameters
    ----------
    readers : list of layer readers
        Each has ``shape`` (n_items, dim), ``load()`` returning the whole layer as an array
        (n_items, dim) of a floating dtype, and row slicing ``reader[start:stop]`` returning
        an array (stop - start, dim), which validation uses to scan a layer in chunks.
    shape : tuple (n_items, dim)
    source : str
        Named in errors.
    """

    def __init__(self, readers: Sequence, shape: tuple[int, int], source: str = "embeddings"):
        self.readers, self.shape = list(readers), tuple(shape)
        if not self.readers:
            raise EmbeddingError(f"{source}: no layers")
        for i, r in enumerate(self.readers):
            if tuple(r.shape) != self.shape:
                raise EmbeddingError(f"{source}: layer {i} has shape {tuple(r.shape)} "
                                     f"but layer 0 has {self.shape}")
        if 0 in self.shape:
            raise EmbeddingError(f"{source}: empty embeddings of shape {self.shape}")

    def loaders(self):
        """One function per layer returning its array (n_items, dim)."""
        return [r.load for r in self.readers]

    def scanners(self):
        """One function per layer returning something sliceable by rows (for validation)."""
        return [lambda r=r: r for r in self.readers]


class _LayerFiles(LazyLayers):
    """Layer files of an on-disk set, each memory-mapped only when asked for (a memory-map
    is its own chunked scanner)."""

    def __init__(self, files: list[Path], shape: tuple[int, int]):
        self.files, self.shape = files, shape

    def loaders(self):
        return [lambda f=f: self._load(f) for f in self.files]

    def scanners(self):
        return self.loaders()

    def _load(self, path: Path) -> np.ndarray:
        arr = load_npy(path, mmap=True)
        if arr.shape != self.shape:
            raise FormatError(f"{path}: shape {arr.shape}, manifest says {self.shape}")
        if arr.dtype.kind != "f":
            raise FormatError(f"{path}: dtype {arr.dtype}, expected floating point")
        return arr


# -- streaming writer ----------------------------------------------------------------------
_NPY_HEADER_BYTES = 128  # reserved so the final shape can be written after streaming


class _NpyAppender:
    """Append rows to a .npy file whose row count is only known at the end: shape
    (rows, dim), or (rows,) when ``dim`` is None (an item column)."""

    def __init__(self, path: Path, dim: int | None, dtype: np.dtype):
        self.path, self.dim, self.dtype, self.rows = path, dim, np.dtype(dtype), 0
        self.fh = open(path, "wb")
        self.fh.write(b"\0" * _NPY_HEADER_BYTES)

    def append(self, block: np.ndarray) -> None:
        self.fh.write(np.ascontiguousarray(block, dtype=self.dtype).tobytes())
        self.rows += block.shape[0]

    def close(self) -> None:
        header = repr({"descr": np.lib.format.dtype_to_descr(self.dtype),
                       "fortran_order": False,
                       "shape": (self.rows,) if self.dim is None else (self.rows, self.dim)})
        body_len = _NPY_HEADER_BYTES - 10
        text = header.ljust(body_len - 1) + "\n"
        if len(text) != body_len:
            raise RuntimeError("npy header does not fit its reserved space")
        self.fh.seek(0)
        self.fh.write(b"\x93NUMPY\x01\x00" + body_len.to_bytes(2, "little") + text.encode())
        self.fh.close()


class _ColumnSpool:
    """One item column streamed to disk as blocks arrive, so no column has to fit in memory.

    Blocks go to a spool file as consecutive .npy records, each at its own dtype, and the
    column's dtype is the promotion of all of them: a string column is fixed-width unicode as
    wide as its longest string, which is only known at the end. :meth:`finish` then copies
    the records, one block at a time, into the final (n_items,) .npy at that dtype. Costs a
    second write of the column (and its size again on disk until then), never its size in
    memory.
    """

    def __init__(self, path: Path, name: str, source: str):
        self.path, self.name, self.source = path, name, source
        self.dtype: np.dtype | None = None
        self.blocks = 0
        self.fh = open(path, "wb")

    def append(self, values: np.ndarray) -> None:
        """Add a block of values, shape (batch,), numbers, booleans or strings."""
        try:
            self.dtype = values.dtype if self.dtype is None else np.result_type(self.dtype,
                                                                                values.dtype)
        except TypeError:  # numpy's DTypePromotionError (a TypeError): numbers then strings
            raise EmbeddingError(f"{self.source}: item column {self.name!r} changed type "
                                 f"between blocks ({self.dtype} then {values.dtype})") from None
        np.save(self.fh, values, allow_pickle=False)
        self.blocks += 1

    def finish(self, target: Path) -> None:
        """Write the whole column to ``target`` as one (n_items,) .npy and drop the spool."""
        self.fh.close()
        out = _NpyAppender(target, None, self.dtype)
        try:
            with open(self.path, "rb") as fh:
                for _ in range(self.blocks):
                    out.append(np.load(fh, allow_pickle=False))
        finally:
            out.close()
        self.path.unlink()


class EmbeddingWriter:
    """Stream rows into a new on-disk embedding set; memory stays flat in the rows.

    Layers and item columns both go to disk as blocks arrive (item columns through a spool
    file each, see :class:`_ColumnSpool`); only closing holds a whole column, the item IDs,
    to check that they are unique.

    Use as a context manager. Rows go to a temporary directory beside ``path`` that is renamed
    into place on a clean exit and deleted on an exception, so no half-written set is left.
    The writer holds ``path``'s lock (:func:`geoprobe.locks.hold`) throughout: a second writer
    of the same set fails at once with :class:`~geoprobe.locks.LockedError`, and temporary
    directories a killed writer left beside ``path`` are removed on entry.

    Parameters
    ----------
    path : str or Path
        Target directory (replaced if it exists).
    dim : int
        Vector width.
    layer_names : list of str
        One name per layer; every appended block has ``len(layer_names)`` layers.
    dtype : numpy dtype
        Storage dtype (float16 halves the size).
    provenance : dict, optional
        Stored in the manifest; ``created``, ``dtype`` and ``geoprobe_version`` are filled in.
    validate : bool
        Reject NaN/Inf in appended blocks, naming the item.
    """

    def __init__(self, path, *, dim: int, layer_names: Sequence[str], dtype="float32",
                 provenance: Mapping | None = None, validate: bool = True):
        self.path = Path(path)
        self.dim, self.layer_names = int(dim), [str(n) for n in layer_names]
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise EmbeddingError(f"storage dtype must be floating, got {self.dtype}")
        self.provenance = dict(provenance or {})
        self.validate = validate
        self._columns: dict[str, _ColumnSpool] = {}
        self._tmp: Path | None = None
        self._lock = contextlib.ExitStack()
        self._files: list[_NpyAppender] = []
        self.n_items = 0

    def __enter__(self) -> "EmbeddingWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock.enter_context(hold(self.path))
        try:
            remove_leftovers(self.path)
            self._tmp = apply_umask(Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-",
                                                          dir=self.path.parent)))
        except BaseException:
            self._lock.close()
            raise
        (self._tmp / "layers").mkdir()
        (self._tmp / "items").mkdir()
        self._files = [_NpyAppender(self._tmp / "layers" / f"{i:03d}.npy", self.dim, self.dtype)
                       for i in range(len(self.layer_names))]
        return self

    def append(self, layers: np.ndarray, items: Mapping[str, np.ndarray] | None = None) -> None:
        """Add a block of rows.

        Parameters
        ----------
        layers : array of shape (n_layers, batch, dim)
        items : mapping of column name to array of shape (batch,)
            The same columns in every call; ``item_id`` defaults to running row numbers.
        """
        if self._tmp is None:
            raise RuntimeError("EmbeddingWriter must be used as a context manager")
        layers = np.asarray(layers)
        if layers.ndim == 2 and len(self.layer_names) == 1:
            layers = layers[None]
        if layers.ndim != 3 or layers.shape[0] != len(self.layer_names) or layers.shape[2] != self.dim:
            raise EmbeddingError(
                f"{self.path}: appended block has shape {layers.shape}, expected "
                f"({len(self.layer_names)}, batch, {self.dim})"
            )
        batch = layers.shape[1]
        items = dict(items or {})
        items.setdefault(ID_COLUMN, np.arange(self.n_items, self.n_items + batch).astype(str))
        if self._columns and set(items) != set(self._columns):
            raise EmbeddingError(f"{self.path}: item columns changed between blocks: "
                                 f"{sorted(items)} vs {sorted(self._columns)}")
        checked = {}
        for name, values in items.items():
            values = np.asarray(values)
            if values.shape != (batch,):
                raise EmbeddingError(f"{self.path}: item column {name!r} has shape "
                                     f"{values.shape} for a block of {batch} rows")
            checked[name] = _as_column(name, values, batch, str(self.path))
        checked[ID_COLUMN] = checked[ID_COLUMN].astype(str)
        if not self._columns:  # IDs first, then the caller's order, as an ItemTable keeps them
            for j, name in enumerate([ID_COLUMN] + [k for k in checked if k != ID_COLUMN]):
                self._columns[name] = _ColumnSpool(self._tmp / "items" / f"{j:03d}.spool",
                                                   name, str(self.path))
        for name, values in checked.items():
            self._columns[name].append(values)
        if self.validate:
            for name, X in zip(self.layer_names, layers):
                check_finite(X, source=str(self.path), layer=name,
                             ids=np.asarray(items[ID_COLUMN]).astype(str))
        for f, X in zip(self._files, layers):
            f.append(X)
        self.n_items += batch

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            for f in self._files:
                if not f.fh.closed:
                    f.close()
            for spool in self._columns.values():
                spool.fh.close()
            if exc_type is None:
                self._finish()
        finally:
            if self._tmp is not None and self._tmp.exists():
                shutil.rmtree(self._tmp, ignore_errors=True)
            self._lock.close()

    def _finish(self) -> None:
        assert self._tmp is not None
        col_specs = {}
        for j, (name, spool) in enumerate(self._columns.items()):
            fname = f"items/{j:03d}.npy"
            spool.finish(self._tmp / fname)
            col_specs[name] = {"file": fname, "dtype": spool.dtype.str}
        # Read back memory-mapped: checks the IDs are unique (the one whole column in memory)
        ItemTable({name: load_npy(self._tmp / spec["file"], mmap=True)
                   for name, spec in col_specs.items()},
                  n_items=self.n_items, source=str(self.path))
        provenance = {
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "geoprobe_version": __version__,
            **self.provenance,
            "dtype": self.dtype.name,
            "layer_names": self.layer_names,
        }
        manifest = {
            "format": FORMAT_NAME, "version": FORMAT_VERSION,
            "n_items": self.n_items, "dim": self.dim, "dtype": self.dtype.name,
            "layer_names": self.layer_names,
            "layer_files": [f"layers/{i:03d}.npy" for i in range(len(self.layer_names))],
            "columns": col_specs, "provenance": provenance,
        }
        (self._tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        replace_dir(self._tmp, self.path)


@contextlib.contextmanager
def staged_dir(target):
    """Yield a hidden folder ``.NAME.tmp-XXXXXXXX`` beside ``target``; on a clean exit it
    replaces ``target`` (:func:`replace_dir`), on an exception it is removed.

    ``target``'s writer lock is held throughout (waiting for another writer), and what killed
    writers left beside ``target`` is removed first, so a crash or kill -9 leaves no trace
    that outlives the next write. The folder gets the permissions the umask gives.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with hold(target, wait=math.inf):
        remove_leftovers(target)
        tmp = apply_umask(Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-",
                                                dir=target.parent)))
        try:
            yield tmp
            replace_dir(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(src: Path, dst: Path) -> None:
    """Move directory ``src`` to ``dst``, replacing ``dst`` if it exists.

    The old ``dst`` is moved aside before ``src`` takes its name and deleted only after, so
    ``dst`` is only ever absent, the complete old or the complete new directory, never a mix.
    The swap holds ``dst``'s lock (waiting for it; a caller that already holds it, as a run
    does, keeps it), so two processes replacing the same directory take turns instead of
    moving it from under each other.
    """
    dst = Path(dst)
    with hold(dst, wait=math.inf):
        old = None
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(dst, old)
        os.replace(src, dst)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
