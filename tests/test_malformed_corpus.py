"""A held-out corpus of malformed inputs, each run through the CLI as a user would.

Every case builds one broken file (or directory) in ``tmp_path`` and runs the subcommand that
reads it. The contract: exit status 2, exactly one stderr line, starting ``geoprobe: error:``
and naming the file, no traceback, and no output written. No binary fixture is committed: every
case is built here from a small valid file.
"""

import errno
import gzip
import json
import os
import shutil
import struct

import numpy as np
import pytest
import torch

from geoprobe import EmbeddingSet
from geoprobe.cli import main

X = np.random.default_rng(0).standard_normal((12, 4)).astype(np.float32)
ROW = "{i}\t{w}\t{w}\tNOUN\tNN\t_\t{h}\tdep\t_\t_"
CASES = {}


def case(name):
    """Register a builder ``build(tmp) -> (argv, path of the file the error must name)``."""
    def register(build):
        CASES[name] = build
        return build
    return register


def _npy(tmp, arr, name="e.npy", allow_pickle=False):
    np.save(tmp / name, arr, allow_pickle=allow_pickle)
    return tmp / name


def _info(path):
    return ["info", str(path)], path


def _bytes(tmp, name, data):
    (tmp / name).write_bytes(data)
    return tmp / name


def _safetensors(tmp) -> bytes:
    from safetensors.numpy import save_file

    save_file({"a": X}, str(tmp / "ok.safetensors"))
    return (tmp / "ok.safetensors").read_bytes()


def _retitled_safetensors(data: bytes, edit) -> bytes:
    """``data`` with its JSON header changed by ``edit(header)``, the length word updated."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    edit(header)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data[8 + n:]


# -- NumPy ---------------------------------------------------------------------------------
def _with(value, at=(3, 1)):
    Y = X.copy()
    Y[at] = value
    return Y


case("npy NaN")(lambda t: _info(_npy(t, _with(np.nan))))
case("npy Inf")(lambda t: _info(_npy(t, _with(np.inf))))
case("npy object dtype")(lambda t: _info(_npy(t, np.array([{"a": 1}] * 3, dtype=object),
                                              allow_pickle=True)))
case("npy 1-D")(lambda t: _info(_npy(t, np.arange(5.0))))
case("npy 4-D")(lambda t: _info(_npy(t, np.zeros((2, 2, 2, 2)))))
case("npy no rows")(lambda t: _info(_npy(t, np.zeros((0, 4)))))
case("npy complex")(lambda t: _info(_npy(t, X.astype(np.complex64))))
case("npy truncated")(lambda t: _info(_bytes(t, "e.npy", _npy(t, X).read_bytes()[:100])))
case("npy header not a literal")(lambda t: _info(_bytes(
    t, "e.npy", _npy(t, X).read_bytes().replace(b"(12, 4)", b"(12, 4+"))))
case("npy random bytes")(lambda t: _info(_bytes(t, "e.npy", os.urandom(300))))


@case("npz without 2-D arrays")
def _(t):
    np.savez(t / "e.npz", label=np.arange(3), other=np.ones(3))
    return _info(t / "e.npz")


@case("npz object member")
def _(t):
    np.savez(t / "e.npz", a=np.array([{"x": 1}], dtype=object))
    return _info(t / "e.npz")


@case("npz truncated")
def _(t):
    np.savez(t / "e.npz", a=X)
    return _info(_bytes(t, "e.npz", (t / "e.npz").read_bytes()[:200]))


case("npz empty file")(lambda t: _info(_bytes(t, "e.npz", b"")))

# -- safetensors ---------------------------------------------------------------------------
case("safetensors truncated")(lambda t: _info(_bytes(t, "e.safetensors", _safetensors(t)[:-9])))
case("safetensors header lies about data size")(lambda t: _info(_bytes(
    t, "e.safetensors", _retitled_safetensors(
        _safetensors(t), lambda h: h["a"].update(data_offsets=[0, 10 ** 6])))))
case("safetensors header lies about shape")(lambda t: _info(_bytes(
    t, "e.safetensors", _retitled_safetensors(
        _safetensors(t), lambda h: h["a"].update(shape=[1000, 4])))))
case("safetensors huge header length")(lambda t: _info(_bytes(
    t, "e.safetensors", struct.pack("<Q", 2 ** 62) + _safetensors(t)[8:])))
case("safetensors header not JSON")(lambda t: _info(_bytes(
    t, "e.safetensors", struct.pack("<Q", 7) + b"{nope!}" + b"\0" * 16)))


# -- torch ---------------------------------------------------------------------------------
class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@case("pt pickled object")
def _(t):
    torch.save({"x": Evil()}, t / "e.pt")
    return _info(t / "e.pt")


@case("pt legacy pickle of numpy")
def _(t):
    import pickle

    (t / "e.pt").write_bytes(pickle.dumps({"a": X}, protocol=4))
    return _info(t / "e.pt")


@case("pt truncated")
def _(t):
    torch.save(torch.from_numpy(X), t / "e.pt")
    return _info(_bytes(t, "e.pt", (t / "e.pt").read_bytes()[:150]))


@case("pt holds a string")
def _(t):
    torch.save("hello", t / "e.pt")
    return _info(t / "e.pt")


# -- HDF5 ----------------------------------------------------------------------------------
case("hdf5 random bytes")(lambda t: _info(_bytes(t, "e.hdf5", b"\x89HDF\r\n\x1a\n" + bytes(200))))


@case("hdf5 no datasets")
def _(t):
    import h5py

    h5py.File(t / "e.hdf5", "w").close()
    return _info(t / "e.hdf5")


@case("hdf5 sentences of different widths")
def _(t):
    import h5py

    with h5py.File(t / "e.hdf5", "w") as f:
        f["0"], f["1"] = np.zeros((2, 3, 4)), np.zeros((2, 3, 5))
    return _info(t / "e.hdf5")


# -- item CSV ------------------------------------------------------------------------------
def _items(t, text, encoding="utf-8"):
    (t / "items.csv").write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return ["info", str(_npy(t, X)), "--items", str(t / "items.csv")], t / "items.csv"


case("csv duplicate item_id")(lambda t: _items(
    t, "item_id\n" + "".join(f"{min(i, 10)}\n" for i in range(12))))
case("csv wrong row count")(lambda t: _items(t, "label\n" + "1\n" * 11))
case("csv ragged row")(lambda t: _items(t, "a,b\n" + "1,2\n" * 5 + "1\n" + "1,2\n" * 6))
case("csv empty")(lambda t: _items(t, ""))
case("csv not UTF-8")(lambda t: _items(t, b"label\n" + b"\xff\xfe\n" * 12))
case("csv field over the size limit")(lambda t: _items(t, "label\n" + "x" * 200_000 + "\n"))


# -- suite TOML ----------------------------------------------------------------------------
GOOD_SUITE = """[sources.main]
path = "e.npy"
[[probes]]
probe = "covariance-spectrum"
"""


def _suite(t, text):
    _npy(t, X)
    (t / "s.toml").write_text(text)
    return ["run", str(t / "s.toml"), "-o", str(t / "out"), "--no-progress"], t / "s.toml"


case("toml syntax error")(lambda t: _suite(t, "[sources.main\npath = 1\n"))
case("toml unknown key")(lambda t: _suite(t, GOOD_SUITE + "colour = 'red'\n"))
case("toml wrong type")(lambda t: _suite(t, "[suite]\nseed = 'one'\n" + GOOD_SUITE))
case("toml probes not a list")(lambda t: _suite(t, "probes = 3\n[sources.main]\npath = 'e.npy'\n"))
case("toml huge integer")(lambda t: _suite(t, f"[suite]\nseed = {'9' * 5000}\n" + GOOD_SUITE))
case("toml deep nesting")(lambda t: _suite(t, "x = " + "[" * 5000 + "]" * 5000 + "\n"))
case("toml embeddings file missing")(lambda t: (
    _suite(t, GOOD_SUITE.replace("e.npy", "gone.npy"))[0], t / "gone.npy"))


# -- CoNLL-U -------------------------------------------------------------------------------
def _conllu(t, rows, name="t.conllu"):
    text = "# sent_id = s1\n" + "\n".join(rows) + "\n\n" if rows else ""
    path = t / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return ["extract", "--treebank", str(path), "--no-twin", "--out", str(t / "out.gpemb")], path


def _rows(*heads):
    return [ROW.format(i=i, w=f"w{i}", h=h) for i, h in enumerate(heads, start=1)]


case("conllu two roots")(lambda t: _conllu(t, _rows(0, 1, 0)))
case("conllu cycle")(lambda t: _conllu(t, _rows(0, 3, 2)))
case("conllu no root")(lambda t: _conllu(t, _rows(2, 1)))
case("conllu head out of range")(lambda t: _conllu(t, _rows(0, 9)))
case("conllu too few columns")(lambda t: _conllu(t, ["1\tDogs\tdog\tNOUN", "2\tbark\tbark"]))
case("conllu non-integer head")(lambda t: _conllu(t, [ROW.format(i=1, w="a", h="x")]))
case("conllu word IDs skip")(lambda t: _conllu(t, [ROW.format(i=1, w="a", h=0),
                                                 ROW.format(i=3, w="b", h=1)]))
case("conllu empty file")(lambda t: _conllu(t, []))
case("conllu comments only")(lambda t: (_conllu(t, [])[0], _bytes(t, "t.conllu", b"# x\n")))
case("conllu not gzip")(lambda t: (_conllu(t, [], "t.conllu.gz")[0],
                                   _bytes(t, "t.conllu.gz", b"plain text")))


# -- embedding-set directories -------------------------------------------------------------
def _set(t, edit=None):
    path = EmbeddingSet(np.stack([X, X + 1]), {"label": np.arange(12)}).save(t / "e.gpemb")
    manifest = json.loads((path / "manifest.json").read_text())
    if edit:
        edit(manifest, path)
    (path / "manifest.json").write_text(json.dumps(manifest))
    return _info(path)


case("manifest missing layer file")(lambda t: _set(
    t, lambda m, p: (p / m["layer_files"][1]).unlink()))
case("manifest n_items wrong")(lambda t: _set(t, lambda m, p: m.update(n_items=13)))
case("manifest layer of wrong shape")(lambda t: _set(
    t, lambda m, p: np.save(p / m["layer_files"][1], np.zeros((12, 5), np.float32))))
case("manifest wrong type")(lambda t: _set(t, lambda m, p: m.update(n_items="twelve")))
case("manifest layer file outside the set")(lambda t: _set(
    t, lambda m, p: m.update(layer_files=["../../etc/passwd", m["layer_files"][1]])))
case("manifest columns not a table")(lambda t: _set(t, lambda m, p: m.update(columns=[1, 2])))
case("manifest layer of integers")(lambda t: _set(
    t, lambda m, p: np.save(p / m["layer_files"][0], np.zeros((12, 4), np.int64))))
case("manifest layer NaN")(lambda t: _set(
    t, lambda m, p: np.save(p / m["layer_files"][0], _with(np.nan))))


@case("manifest bad JSON")
def _(t):
    argv, path = _set(t)
    (path / "manifest.json").write_text('{"format": "geoprobe-embeddings", ')
    return argv, path


@case("manifest a list")
def _(t):
    argv, path = _set(t)
    (path / "manifest.json").write_text("[1, 2]")
    return argv, path


# -- results.json --------------------------------------------------------------------------
def _results(t, doc):
    (t / "results.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return ["report", str(t / "results.json")], t / "results.json"


METRIC = {"name": "rankme", "value": 1.0, "ci_low": None, "ci_high": None, "unit": "rows",
          "labels": {}}


def _doc(**probe):
    return {"geoprobe_results": 1, "probes": {"p": {"probe": "covariance-spectrum",
                                                    "metrics": [METRIC], **probe}}}


case("results without probes")(lambda t: _results(t, {"geoprobe_results": 1}))
case("results bad JSON")(lambda t: _results(t, '{"probes": '))
case("results a list")(lambda t: _results(t, [1, 2, 3]))
case("results metric without value")(lambda t: _results(t, _doc(metrics=[
    {k: v for k, v in METRIC.items() if k != "value"}])))
case("results metric value not a number")(lambda t: _results(t, _doc(metrics=[
    {**METRIC, "value": "high"}])))
case("results array of bad shape")(lambda t: _results(t, _doc(arrays={
    "s": {"dtype": "<f8", "shape": [5], "data": [1.0]}})))
case("results huge integer")(lambda t: _results(t, '{"geoprobe_results": ' + "9" * 5000 + "}"))


# -- Hugging Face model directories --------------------------------------------------------
def _model_dir(t):
    from geoprobe.hf import default_model_dir

    src, dst = default_model_dir(), t / "model"
    dst.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        shutil.copy(src / name, dst / name)
    return dst


def _extract(t, model):
    treebank = _conllu(t, _rows(0, 1))[1]
    return ["extract", "--treebank", str(treebank), "--model", str(model),
            "--out", str(t / "out.gpemb")]


@case("model weights a pickle")
def _(t):
    model = _model_dir(t)
    torch.save({"weight": Evil()}, model / "pytorch_model.bin")
    return _extract(t, model), model / "pytorch_model.bin"


@case("model weights truncated safetensors")
def _(t):
    model = _model_dir(t)
    (model / "model.safetensors").write_bytes(_safetensors(t)[:40])
    return _extract(t, model), model / "model.safetensors"


# -- conversion and twins ------------------------------------------------------------------
case("convert a truncated file")(lambda t: (
    ["convert", str(_bytes(t, "e.safetensors", _safetensors(t)[:-9])), str(t / "out.gpemb")],
    t / "e.safetensors"))


@case("probe with a twin of other items")
def _(t):
    twin = EmbeddingSet(X[:6], {"item_id": [f"z{i}" for i in range(6)]}).save(t / "twin.gpemb")
    return ["probe", "covariance-spectrum", str(_npy(t, X)), "--twin", str(twin),
            "-o", str(t / "out"), "--no-progress"], twin


def test_corpus_is_large():
    assert len(CASES) >= 36


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_is_one_line_exit_2(name, tmp_path, capsys):
    argv, bad = CASES[name](tmp_path)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("geoprobe: error: "), err
    assert bad.name in lines[0], f"error does not name {bad.name}: {err}"
    assert "Traceback" not in err and "pwned" not in out
    assert not [p.name for p in tmp_path.iterdir() if p.name.lstrip(".").startswith("out")]


def test_disk_full_while_writing_results_keeps_previous(tmp_path, capsys, monkeypatch):
    import geoprobe.runner

    argv = ["probe", "covariance-spectrum", str(_npy(tmp_path, X)), "--param", "n_boot=5",
            "-o", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 0
    before = (tmp_path / "out" / "results.json").read_text()

    def full(path, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    monkeypatch.setattr(geoprobe.runner, "write_json_atomic", full)
    capsys.readouterr()
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geoprobe: error: ")
    assert str(tmp_path / "out") in lines[0] and os.strerror(errno.ENOSPC) in lines[0]
    assert (tmp_path / "out" / "results.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_collapsed_set_warns_once_and_reports(tmp_path, capsys):
    flat = _npy(tmp_path, np.tile(np.arange(4.0), (30, 1)), "flat.npy")
    assert main(["probe", "covariance-spectrum", str(flat), "--param", "n_boot=5",
                 "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "flat.npy" in warning[0] and "layer '0' collapsed" in warning[0]
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(doc["warnings"]) == 1 and "collapsed" in doc["warnings"][0]
    assert "## Warnings" in (tmp_path / "out" / "report.md").read_text()
