"""The sweep's tidy table: one row per metric of every task, as CSV (and Parquet).

Columns (:data:`COLUMNS`, then one column per ``--grid`` key, named by the key):

=================  ============================================================================
source             the variant: the embedding file's stem, or ``source[key=value,...]``
step               training step from the file name (empty when there is none)
probe              the suite's probe id; ``probe_name`` is the registered probe
metric             metric name
layer              the metric's ``layer`` label (empty when it has none)
baseline           the ``baseline`` label (``random-init``, ``shuffled``, ...; empty: a finding)
labels             the other labels, ``key=value`` joined by ``;`` in key order
value              point estimate; ``ci_low``, ``ci_high`` its interval (NaN when none)
n, unit            resampling units behind the interval
higher_is_better   ``True``, ``False`` or empty
seed, task         the task's seed and key (its file is ``tasks/<task>.json``)
=================  ============================================================================

CSV is always written; Parquet too when pyarrow is installed (it is optional).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..provenance import atomic_path, write_text_atomic

COLUMNS = ["source", "step", "probe", "probe_name", "metric", "layer", "baseline", "labels",
           "value", "ci_low", "ci_high", "n", "unit", "higher_is_better", "seed", "task"]
#: columns holding numbers (read back as float; empty is NaN or None)
NUMERIC = ("value", "ci_low", "ci_high")


def _number(x):
    try:
        return float(x)
    except (TypeError, ValueError):  # JSON keeps NaN and infinities as strings
        return math.nan


def task_rows(doc: dict, grid_keys=()) -> list[dict]:
    """The rows of one stored task (a ``tasks/<key>.json`` dict)."""
    task, rows = doc["task"], []
    for m in doc["result"]["metrics"]:
        labels = dict(m.get("labels", {}))
        layer, baseline = labels.pop("layer", ""), labels.pop("baseline", "")
        row = {"source": task["source"], "step": task["step"], "probe": task["probe"],
               "probe_name": task["probe_name"], "metric": m["name"], "layer": layer,
               "baseline": baseline,
               "labels": ";".join(f"{k}={v}" for k, v in sorted(labels.items())),
               "value": _number(m["value"]), "ci_low": _number(m.get("ci_low")),
               "ci_high": _number(m.get("ci_high")), "n": m.get("n"), "unit": m.get("unit"),
               "higher_is_better": m.get("higher_is_better"), "seed": task["seed"],
               "task": task["key"]}
        row.update({k: task["grid"].get(k) for k in grid_keys})
        rows.append(row)
    return rows


def write_table(rows: list[dict], out_dir, grid_keys=()) -> list[Path]:
    """Write ``sweep.csv`` (and ``sweep.parquet`` with pyarrow) atomically; their paths."""
    out_dir = Path(out_dir)
    columns = COLUMNS + list(grid_keys)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    paths = [write_text_atomic(out_dir / "sweep.csv", buf.getvalue())]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return paths
    table = pa.Table.from_pylist([{k: _parquet_cell(row.get(k)) for k in columns}
                                  for row in rows])
    with atomic_path(out_dir / "sweep.parquet", suffix=".parquet") as tmp:
        pq.write_table(table, tmp)
    paths.append(out_dir / "sweep.parquet")
    return paths


def _parquet_cell(x):
    # grid values may be numbers in one variant and strings in another: one type per column
    return x if x is None or isinstance(x, (int, float, str, bool)) else str(x)


def read_table(path) -> list[dict]:
    """Rows of a ``sweep.csv``: numbers as floats, ``step`` as int or None."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for k in NUMERIC:
            row[k] = _number(row[k])
        row["step"] = int(row["step"]) if row.get("step") not in (None, "") else None
    return rows
