import numpy as np
import pytest
import torch

from geoprobe import FormatError, export_embeddings, load_embeddings


@pytest.fixture
def X():
    return np.random.default_rng(0).standard_normal((2, 12, 4)).astype(np.float32)


def test_npy_2d_and_3d(tmp_path, X):
    np.save(tmp_path / "a.npy", X[0])
    np.save(tmp_path / "b.npy", X)
    a, b = load_embeddings(tmp_path / "a.npy"), load_embeddings(tmp_path / "b.npy")
    assert a.shape == (1, 12, 4) and b.shape == (2, 12, 4)
    assert a.ids[0] == "0"


def test_npy_with_items_csv(tmp_path, X):
    np.save(tmp_path / "a.npy", X[0])
    (tmp_path / "items.csv").write_text("word,label\n" + "".join(f"w{i},{i % 2}\n" for i in range(12)))
    emb = load_embeddings(tmp_path / "a.npy", items=tmp_path / "items.csv")
    assert emb.items["label"].tolist()[:3] == [0, 1, 0]
    (tmp_path / "short.csv").write_text("label\n1\n2\n")
    with pytest.raises(Exception, match="short.csv: 2 data rows but the embeddings have 12"):
        load_embeddings(tmp_path / "a.npy", items=tmp_path / "short.csv")


def test_npz_layers_and_columns(tmp_path, X):
    ids = np.array([f"i{k}" for k in range(12)])
    np.savez(tmp_path / "e.npz", layer_10=X[1], layer_2=X[0], item_id=ids, y=np.arange(12))
    emb = load_embeddings(tmp_path / "e.npz")
    assert emb.layer_names == ["layer_2", "layer_10"]  # natural order, not lexicographic
    np.testing.assert_array_equal(emb.layer("layer_10"), X[1])
    assert emb.ids[3] == "i3" and emb.items["y"][5] == 5


def test_safetensors_with_metadata_and_roundtrip(tmp_path, X):
    from geoprobe import EmbeddingSet

    emb = EmbeddingSet(X, {"item_id": [f"q{i}" for i in range(12)], "t": np.arange(12)},
                       provenance={"model": "m"})
    export_embeddings(emb, tmp_path / "e.safetensors")
    back = load_embeddings(tmp_path / "e.safetensors")
    np.testing.assert_array_equal(back.layer(1), X[1])
    assert back.ids.tolist() == emb.ids.tolist() and back.provenance["model"] == "m"


def test_torch_tensor_list_and_dict(tmp_path, X):
    torch.save(torch.from_numpy(X), tmp_path / "t.pt")
    torch.save([torch.from_numpy(X[0]), torch.from_numpy(X[1])], tmp_path / "l.pt")
    torch.save({"h0": torch.from_numpy(X[0])}, tmp_path / "d.pt")
    assert load_embeddings(tmp_path / "t.pt").n_layers == 2
    assert load_embeddings(tmp_path / "l.pt").n_layers == 2
    assert load_embeddings(tmp_path / "d.pt").layer_names == ["0"]


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_torch_refuses_pickled_objects(tmp_path, capsys):
    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(FormatError, match="weights_only"):
        load_embeddings(tmp_path / "evil.pt")
    assert "pwned" not in capsys.readouterr().out


def test_structural_probes_hdf5(tmp_path):
    import h5py

    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "e.hdf5", "w") as f:
        f["0"] = rng.standard_normal((3, 4, 6))
        f["1"] = rng.standard_normal((3, 2, 6))
        f["10"] = rng.standard_normal((3, 5, 6))
    emb = load_embeddings(tmp_path / "e.hdf5")
    assert emb.shape == (3, 11, 6)
    assert emb.ids.tolist()[:7] == ["0:0", "0:1", "0:2", "0:3", "1:0", "1:1", "10:0"]
    assert emb.items["position"].tolist()[-1] == 4


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(FormatError, match="file not found"):
        load_embeddings(tmp_path / "nope.npy")
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(FormatError, match="unknown file type '.txt'"):
        load_embeddings(tmp_path / "x.txt")


def test_nan_in_npy_names_file(tmp_path, X):
    X = X[0].copy()
    X[5, 1] = np.nan
    np.save(tmp_path / "bad.npy", X)
    with pytest.raises(Exception, match=r"bad.npy: layer '0' row 5 \(item '5'\) has NaN"):
        load_embeddings(tmp_path / "bad.npy")


def test_npz_pickle_refused(tmp_path):
    np.savez(tmp_path / "o.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(FormatError):
        load_embeddings(tmp_path / "o.npz")


def test_directory_with_items_csv_is_still_validated(tmp_path):
    from geoprobe import EmbeddingError, EmbeddingSet

    X = np.zeros((4, 2), np.float32)
    X[2, 1] = np.inf
    EmbeddingSet(X, validate=False).save(tmp_path / "e")
    (tmp_path / "items.csv").write_text("label\n1\n2\n3\n4\n")
    with pytest.raises(EmbeddingError, match="row 2 .*Inf in column 1"):
        load_embeddings(tmp_path / "e", items=tmp_path / "items.csv")


def test_torch_refusal_is_quiet_and_says_why(tmp_path):
    """A plain pickle (protocol 4) made torch warn in two lines before refusing it."""
    import pickle
    import warnings

    (tmp_path / "raw.pt").write_bytes(pickle.dumps({"a": np.zeros((3, 2))}, protocol=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(FormatError, match=r"raw.pt: .*never unpickles.*Unsupported operand"):
            load_embeddings(tmp_path / "raw.pt")
    assert not caught
