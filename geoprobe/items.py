"""The per-item table: what each row of an embedding set is.

An :class:`ItemTable` is a small column store: a dict of 1-D NumPy arrays of equal length,
one of which is ``item_id``, a unique string per row. Other columns are whatever the data needs:
``token``, ``sentence_id`` and ``position``, ``word``, ``label``, physical state at a frame
(``x``, ``y``, ``vx``, ...). Numeric columns are int, float or bool arrays; text columns are
NumPy unicode arrays (never object arrays, so every column saves without pickling).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from .errors import EmbeddingError, FormatError

ID_COLUMN = "item_id"


def _as_column(name: str, values, n: int | None, source: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise EmbeddingError(f"{source}: item column {name!r} must be 1-D, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise EmbeddingError(
            f"{source}: item column {name!r} has {len(arr)} rows but the embeddings have {n}"
        )
    if arr.dtype == object or arr.dtype.kind in "SO":
        arr = arr.astype(str)
    if arr.dtype.kind not in "biufU":
        raise EmbeddingError(
            f"{source}: item column {name!r} has unsupported dtype {arr.dtype}; "
            "use numbers, booleans or strings"
        )
    return arr


class ItemTable:
    """Columns describing each item (row) of an embedding set.

    Parameters
    ----------
    columns : mapping of str to array-like of shape (n_items,)
        Must contain ``item_id`` unless ``n_items`` is given, in which case row numbers
        ``"0" .. "n_items-1"`` become the IDs.
    n_items : int, optional
        Expected number of rows; every column is checked against it.
    source : str
        Where the table came from (a file name), used in error messages.
    """

    def __init__(self, columns: Mapping[str, Iterable] | None = None, *, n_items: int | None = None,
                 source: str = "items"):
        columns = dict(columns or {})
        if ID_COLUMN not in columns:
            if n_items is None:
                lengths = {len(np.asarray(v)) for v in columns.values()}
                if len(lengths) != 1:
                    raise EmbeddingError(f"{source}: cannot infer the number of items")
                n_items = lengths.pop()
            columns = {ID_COLUMN: np.arange(n_items).astype(str), **columns}
        self.source = source
        self._cols: dict[str, np.ndarray] = {}
        ids = _as_column(ID_COLUMN, columns[ID_COLUMN], n_items, source).astype(str)
        self._cols[ID_COLUMN] = ids
        n = len(ids)
        for name, values in columns.items():
            if name != ID_COLUMN:
                self._cols[name] = _as_column(name, values, n, source)
        self._check_unique_ids()

    def _check_unique_ids(self) -> None:
        ids = self._cols[ID_COLUMN]
        if len(ids) < 2:
            return
        order = np.argsort(ids, kind="stable")
        dup = np.flatnonzero(ids[order][1:] == ids[order][:-1])
        if dup.size:
            first, second = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
            raise EmbeddingError(
                f"{self.source}: duplicate item_id {str(ids[first])!r} at rows {first} and {second}; "
                "item IDs must be unique"
            )

    # -- mapping-like access -------------------------------------------------------------
    @property
    def ids(self) -> np.ndarray:
        """Item IDs, unicode array of shape (n_items,)."""
        return self._cols[ID_COLUMN]

    @property
    def names(self) -> list[str]:
        return list(self._cols)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, name: str) -> bool:
        return name in self._cols

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._cols[name]
        except KeyError:
            raise EmbeddingError(
                f"{self.source}: no item column {name!r}; columns are {self.names}"
            ) from None

    def items(self):
        return self._cols.items()

    def with_columns(self, **columns) -> "ItemTable":
        """A new table with columns added or replaced."""
        return ItemTable({**self._cols, **columns}, source=self.source)

    def subset(self, rows) -> "ItemTable":
        """Rows selected by an integer index or boolean mask, order kept as given."""
        return ItemTable({k: v[rows] for k, v in self._cols.items()}, source=self.source)

    def index_of(self, ids: Iterable[str]) -> np.ndarray:
        """Row numbers of the given IDs; raises naming the first ID that is absent."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids).astype(str)
        order = np.argsort(self.ids)
        sorted_ids = self.ids[order]
        pos = np.searchsorted(sorted_ids, ids)
        pos = np.clip(pos, 0, max(len(sorted_ids) - 1, 0))
        found = sorted_ids[pos] == ids if len(sorted_ids) else np.zeros(len(ids), bool)
        if not np.all(found):
            missing = ids[~found]
            raise EmbeddingError(
                f"{self.source}: {missing.size} item ID(s) not found, first {str(missing[0])!r}"
            )
        return order[pos]

    # -- files ---------------------------------------------------------------------------
    @classmethod
    def from_csv(cls, path, *, n_items: int | None = None) -> "ItemTable":
        """Read a CSV with a header row; numeric-looking columns become numbers.

        If the file has no ``item_id`` column, rows are matched to embeddings by order and get
        their row number as ID. Empty cells in numeric columns become NaN.
        """
        path = Path(path)
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if not header:
                    raise FormatError(f"{path}: empty CSV, expected a header row")
                rows = list(reader)
        except FileNotFoundError:
            raise FormatError(f"{path}: file not found") from None
        except UnicodeDecodeError as exc:
            raise FormatError(f"{path}: not UTF-8 text ({exc.reason})") from None
        except csv.Error as exc:  # a NUL byte, a field over the csv module's size limit
            raise FormatError(f"{path}: malformed CSV ({exc})") from None
        except OSError as exc:
            raise FormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
        for lineno, row in enumerate(rows, start=2):
            if len(row) != len(header):
                raise FormatError(
                    f"{path} line {lineno}: {len(row)} fields, header has {len(header)}"
                )
        columns = {name: _infer_column([r[j] for r in rows]) for j, name in enumerate(header)}
        if n_items is not None and len(rows) != n_items:
            raise EmbeddingError(
                f"{path}: {len(rows)} data rows but the embeddings have {n_items} items"
            )
        return cls(columns, n_items=len(rows), source=str(path))

    def to_csv(self, path) -> None:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(self.names)
            writer.writerows(zip(*(col.tolist() for col in self._cols.values())))

    def __repr__(self) -> str:
        return f"ItemTable(n_items={len(self)}, columns={self.names})"


def _infer_column(values: list[str]) -> np.ndarray:
    """Parse strings as int, else float (empty -> NaN), else keep them as text."""
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.array([float(v) if v.strip() else np.nan for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=str)
