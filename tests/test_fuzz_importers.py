"""Fuzz every importer: random and mutated bytes must give a GeoprobeError or a result.

Each importer starts from a small valid file of its kind; hypothesis truncates it, flips and
overwrites bytes, inserts junk, or replaces it with random bytes. Anything other than success
or a :class:`GeoprobeError` is a bug: the CLI would show a traceback where a one-line error
belongs. Sizes stay tiny and examples few, so the whole file runs in well under a minute.
"""

import io
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geoprobe.datasets.shifted_text import treebank_sentences
from geoprobe.datasets.treebank import read_conllu
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import GeoprobeError
from geoprobe.io import load_embeddings
from geoprobe.items import ItemTable
from geoprobe.report import write_report
from geoprobe.runner import load_results
from geoprobe.suite import build_suite, load_suite

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 6, 3)).astype(np.float32)


# -- one small valid file of each kind ------------------------------------------------------
def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, X[0])
    return buf.getvalue()


def _npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, layer_0=X[0], layer_1=X[1], label=np.arange(6))
    return buf.getvalue()


def _safetensors() -> bytes:
    from safetensors.numpy import save

    return save({"0": X[0], "1": X[1]}, metadata={"item_ids": json.dumps(list("abcdef"))})


def _pt() -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"a": torch.from_numpy(X[0]), "b": torch.from_numpy(X[1])}, buf)
    return buf.getvalue()


def _hdf5() -> bytes:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f["0"] = X[:, :4]
        f["1"] = X[:, 4:]
    return buf.getvalue()


CSV = b"item_id,label,score\na,1,0.5\nb,2,\nc,3,1.5\nd,1,2\ne,2,0\nf,3,1\n"

SUITE = b"""[suite]
name = "fuzz"
seed = 1

[sources.main]
path = "emb.npy"
layers = ["0"]

[[probes]]
id = "spectrum"
probe = "covariance-spectrum"
params = { n_boot = 10 }

[[checks]]
probe = "spectrum"
metric = "rankme"
op = ">="
value = 1
"""

CONLLU = (
    "# sent_id = s1\n"
    "1\tDogs\tdog\tNOUN\tNNS\t_\t2\tnsubj\t_\t_\n"
    "2-3\tbarkn't\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "2\tbark\tbark\tVERB\tVBP\t_\t0\troot\t_\t_\n"
    "3\tloudly\tloudly\tADV\tRB\t_\t2\tadvmod\t_\t_\n"
    "3.1\tx\tx\tX\tX\t_\t_\t_\t2:dep\t_\n"
    "4\ttoday\ttoday\tNOUN\tNN\t_\t2\tobl:tmod\t_\t_\n"
    "5\t.\t.\tPUNCT\t.\t_\t2\tpunct\t_\t_\n\n"
    "# sent_id = s2\n"
    "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\n"
).encode()

RESULTS = json.dumps({
    "geoprobe_results": 1,
    "suite": {"name": "fuzz", "description": "d", "file": None, "config": {}},
    "seed": 0,
    "environment": {"versions": {"geoprobe": "0"}, "git_hash": None, "time": "t"},
    "sources": {},
    "warnings": ["emb.npy: layer '0' is collapsed"],
    "probes": {"spectrum": {
        "probe": "covariance-spectrum", "source": "main", "seconds": 0.1, "params": {},
        "metrics": [{"name": "rankme", "value": 2.5, "ci_low": 2.0, "ci_high": "nan",
                     "n": 6, "unit": "rows", "labels": {"layer": "0"},
                     "higher_is_better": None}],
        "arrays": {"s": {"dtype": "<f8", "shape": [2], "data": [1.0, "nan"]}},
        "info": {}, "seed": 0}},
    "checks": [{"name": "c", "passed": True, "value": 2.5, "message": "ok"}],
}).encode()


def _manifest(tmp: Path) -> bytes:
    """A valid embedding directory at ``tmp/set.gpemb``; returns its manifest's bytes."""
    EmbeddingSet(X, {"label": np.arange(6)}).save(tmp / "set.gpemb")
    return (tmp / "set.gpemb" / "manifest.json").read_bytes()


# -- the importers, each reading one file ---------------------------------------------------
def _report(path: Path) -> None:
    write_report(load_results(path), path.with_name("report.md"))


def _conllu(path: Path) -> None:
    read_conllu(path)
    treebank_sentences(path, min_words=1, max_words=10)


def _suite(path: Path) -> None:
    np.save(path.with_name("emb.npy"), X[0])
    load_suite(str(path))


IMPORTERS = {  # kind: (file name, valid bytes or a builder taking the folder, reader)
    "npy": ("e.npy", _npy, load_embeddings),
    "npz": ("e.npz", _npz, load_embeddings),
    "safetensors": ("e.safetensors", _safetensors, load_embeddings),
    "pt": ("e.pt", _pt, load_embeddings),
    "hdf5": ("e.hdf5", _hdf5, load_embeddings),
    "csv": ("items.csv", lambda: CSV, lambda p: ItemTable.from_csv(p, n_items=6)),
    "suite": ("suite.toml", lambda: SUITE, _suite),
    "conllu": ("t.conllu", lambda: CONLLU, _conllu),
    "results": ("results.json", lambda: RESULTS, _report),
}


@st.composite
def mutated(draw, valid: bytes) -> bytes:
    """``valid`` truncated, with bytes flipped or overwritten, junk inserted, or pure junk."""
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "random"]))
    data = bytearray(valid)
    if kind == "random":
        return draw(st.binary(max_size=2 * len(valid)))
    if kind == "truncate":
        return bytes(data[:draw(st.integers(0, max(len(data) - 1, 0)))])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif at < len(data):
            data[at] = (data[at] ^ (1 << draw(st.integers(0, 7))) if kind == "flip"
                        else draw(st.integers(0, 255)))
    return bytes(data)


def _reads_or_refuses(reader, source) -> None:
    try:
        reader(source)
    except GeoprobeError as exc:
        assert "\n" not in str(exc), f"multi-line error: {exc}"


FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("kind", sorted(IMPORTERS))
def test_importer_gives_geoprobe_error_or_result(kind, tmp_path):
    name, build, reader = IMPORTERS[kind]
    valid = build()
    path = tmp_path / name
    path.write_bytes(valid)
    reader(path)  # the starting point is valid

    @FUZZ
    @given(data=mutated(valid))
    def fuzz(data):
        path.write_bytes(data)
        _reads_or_refuses(reader, path)

    fuzz()


def test_manifest_gives_geoprobe_error_or_result(tmp_path):
    valid = _manifest(tmp_path)
    manifest = tmp_path / "set.gpemb" / "manifest.json"
    load_embeddings(manifest.parent)

    @FUZZ
    @given(data=mutated(valid))
    def fuzz(data):
        manifest.write_bytes(data)
        _reads_or_refuses(load_embeddings, manifest.parent)

    fuzz()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False)
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                               max_size=3),
    max_leaves=6)


def _paths(obj, prefix=()):
    """Every key path into nested dicts and lists."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def tampered(draw, valid: dict) -> dict:
    """``valid`` with one field deleted or replaced by any JSON value: what byte flips rarely
    reach, since they mostly break the syntax."""
    doc = json.loads(json.dumps(valid))
    path = draw(st.sampled_from([p for p in _paths(doc) if p]))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if draw(st.booleans()):
        del node[path[-1]]
    else:
        node[path[-1]] = draw(JSON_VALUES)
    return doc


@pytest.mark.parametrize("kind", ["results", "manifest", "suite"])
def test_files_with_tampered_fields(kind, tmp_path):
    """Well-formed JSON or TOML whose fields are missing or of the wrong type."""
    if kind == "results":
        valid, path = json.loads(RESULTS), tmp_path / "results.json"
        reader = _report
    elif kind == "manifest":
        valid = json.loads(_manifest(tmp_path))
        path = tmp_path / "set.gpemb" / "manifest.json"
        reader = lambda p: load_embeddings(p.parent)  # noqa: E731
    else:  # the table a suite file or --set overrides produce
        valid, path = tomllib.loads(SUITE.decode()), None
        reader = build_suite

    @FUZZ
    @given(doc=tampered(valid))
    def fuzz(doc):
        if path is None:
            _reads_or_refuses(reader, doc)
        else:
            path.write_text(json.dumps(doc))
            _reads_or_refuses(reader, path)

    fuzz()
