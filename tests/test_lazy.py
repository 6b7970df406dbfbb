"""Layers larger than memory: lazy importers, a writer that streams item columns, and
spectrum baselines in bounded memory that give the numbers the in-memory path gives."""

import numpy as np
import pytest

from geoprobe import EmbeddingSet, EmbeddingWriter, make_probe
from geoprobe.errors import EmbeddingError
from geoprobe.io import load_embeddings


class _SpyFile:
    """Wraps a safe_open handle, recording each get_slice and whether its data was read."""

    def __init__(self, f, log):
        self.f, self.log = f, log

    def __enter__(self):
        self.f.__enter__()
        return self

    def __exit__(self, *exc):
        return self.f.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def get_slice(self, key):
        part, log = self.f.get_slice(key), self.log

        class Slice:
            def get_shape(self):
                return part.get_shape()

            def get_dtype(self):
                return part.get_dtype()

            def __getitem__(self, index):
                log.append((key, index))
                return part[index]
        return Slice()


def test_safetensors_layers_are_read_one_at_a_time_when_asked(tmp_path, monkeypatch):
    import safetensors
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    save_file({"a": rng.standard_normal((50, 4)).astype(np.float32),
               "b": rng.standard_normal((2, 50, 4)).astype(np.float32),
               "label": np.arange(50)}, str(tmp_path / "e.safetensors"))
    log = []
    real = safetensors.safe_open
    monkeypatch.setattr(safetensors, "safe_open", lambda *a, **k: _SpyFile(real(*a, **k), log))
    emb = load_embeddings(tmp_path / "e.safetensors", validate=False)
    assert [k for k, _ in log] == ["label"]  # only the 1-D item column is read on import
    log.clear()
    X = emb.layer("b.1")
    assert [k for k, _ in log] == ["b"] and log[0][1][0] == 1
    np.testing.assert_array_equal(X, safetensors.numpy.load_file(
        str(tmp_path / "e.safetensors"))["b"][1])
    log.clear()
    load_embeddings(tmp_path / "e.safetensors")  # validation: each layer once, in row chunks
    assert sorted(k for k, _ in log if k != "label") == ["a", "b", "b"]


def test_safetensors_nan_is_named_by_layer_and_row(tmp_path):
    from safetensors.numpy import save_file

    X = np.zeros((3, 20, 4), dtype=np.float32)
    X[2, 17, 1] = np.nan
    save_file({"h": X}, str(tmp_path / "e.safetensors"))
    with pytest.raises(EmbeddingError, match=r"e.safetensors: layer 'h.2' row 17 .*NaN"):
        load_embeddings(tmp_path / "e.safetensors")


def test_hdf5_layers_are_read_per_layer_when_asked(tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(1)
    data = {str(i): rng.standard_normal((3, 5 + i, 4)).astype(np.float32) for i in range(4)}
    with h5py.File(tmp_path / "e.hdf5", "w") as f:
        for k, v in data.items():
            f[k] = v
    reads = []
    real = h5py.Dataset.__getitem__
    monkeypatch.setattr(h5py.Dataset, "__getitem__",
                        lambda self, idx: reads.append(idx) or real(self, idx))
    emb = load_embeddings(tmp_path / "e.hdf5", validate=False)
    assert reads == []  # shapes only
    X = emb.layer(1)
    assert len(reads) == 4 and all(idx[0] == 1 for idx in reads)
    np.testing.assert_array_equal(X, np.concatenate([data[k][1] for k in sorted(data)]))
    assert emb.ids[5] == "1:0" and emb.n_items == 5 + 6 + 7 + 8


def test_writer_streams_many_rows_and_string_columns(tmp_path):
    n, batch = 20_000, 500
    sizes = []
    with EmbeddingWriter(tmp_path / "w", dim=3, layer_names=["x"], dtype="float16") as w:
        for start in range(0, n, batch):
            rows = np.arange(start, start + batch)
            # strings that grow wider as rows arrive: the column's width is fixed at close
            w.append(np.ones((1, batch, 3)), {"item_id": np.char.add("id", rows.astype(str)),
                                               "word": np.array(["x" * (1 + r // 5000)
                                                                 for r in rows]),
                                               "n": rows})
            # nothing grows in memory: no container of the writer's gets longer, and each
            # column is an open spool file rather than a list of blocks
            sizes.append({k: len(v) for k, v in vars(w).items() if isinstance(v, (list, dict))})
            assert sizes[-1] == sizes[0]
            assert all(spool.fh.tell() > 0 for spool in w._columns.values())
    emb = EmbeddingSet.open(tmp_path / "w")
    assert emb.n_items == n and emb.items["word"].dtype == np.dtype("<U4")
    assert emb.items["word"][0] == "x" and emb.items["word"][-1] == "xxxx"
    np.testing.assert_array_equal(emb.items["n"], np.arange(n))
    assert emb.ids[123] == "id123"


def test_writer_still_refuses_duplicate_ids(tmp_path):
    with pytest.raises(EmbeddingError, match="duplicate item_id"):
        with EmbeddingWriter(tmp_path / "w", dim=2, layer_names=["x"]) as w:
            w.append(np.ones((1, 2, 2)), {"item_id": ["a", "b"]})
            w.append(np.ones((1, 2, 2)), {"item_id": ["c", "a"]})
    assert not (tmp_path / "w").exists()


def test_streamed_spectrum_equals_in_memory_on_planted_set(tmp_path):
    from geoprobe.datasets.synthetic import planted_spectrum

    emb = planted_spectrum(n_items=600, dim=24, ranks=(24, 3), episode_length=10, seed=3)
    emb.save(tmp_path / "p")
    disk = EmbeddingSet.open(tmp_path / "p")
    probe = make_probe("covariance-spectrum", group="episode", n_boot=20)
    a, b = probe.run(emb, seed=0, progress=False), probe.run(disk, seed=0, progress=False)
    for m in a.metrics:
        assert b.metric(m.name, **m.labels).value == pytest.approx(m.value, rel=1e-12)


def test_shuffled_baseline_in_column_blocks_matches_one_big_draw(monkeypatch):
    """The bounded-memory shuffle draws the keys of one rng.random((m, d)) call."""
    import probes.spectrum as spectrum

    X = np.random.default_rng(2).standard_normal((3000, 40)).astype(np.float32)
    probe = spectrum.CovarianceSpectrum()
    rng = np.random.default_rng(9)
    Xs = X.astype(np.float64)
    Xs = np.take_along_axis(Xs, rng.random(Xs.shape).argsort(axis=0), axis=0)
    after = rng.random()
    monkeypatch.setattr(spectrum, "_BASELINE_KEY_BYTES", 3000 * 16 * 7)  # blocks of 7 columns
    rng2 = np.random.default_rng(9)
    sing, eig = probe._shuffled(X, rng2)
    ref_sing, ref_eig = spectrum.spectra_from_moments(3000, Xs.sum(0), Xs.T @ Xs, False)
    np.testing.assert_allclose(eig, ref_eig, rtol=1e-12, atol=1e-12 * ref_eig[0])
    np.testing.assert_allclose(sing, ref_sing, rtol=1e-12, atol=1e-12 * ref_sing[0])
    assert rng2.random() == after
