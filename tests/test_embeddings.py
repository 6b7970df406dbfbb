import numpy as np
import pytest

from geoprobe import EmbeddingError, EmbeddingSet, EmbeddingWriter, ItemTable


def make(n=50, d=8, layers=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((layers, n, d)).astype(np.float32)
    items = {"item_id": [f"s{i // 5}:{i % 5}" for i in range(n)], "label": np.arange(n) % 3}
    return EmbeddingSet(X, items, layer_names=[f"L{i}" for i in range(layers)],
                        provenance={"model": "test"})


def test_shapes_and_access():
    emb = make()
    assert emb.shape == (3, 50, 8)
    assert emb.layer("L1").shape == (50, 8)
    assert np.array_equal(emb.layer(-1), emb.layer("L2"))
    with pytest.raises(EmbeddingError, match="no layer 'L9'"):
        emb.layer("L9")


def test_nan_error_names_layer_row_item_and_column():
    X = np.zeros((2, 10, 4), np.float32)
    X[1, 7, 2] = np.nan
    with pytest.raises(EmbeddingError) as err:
        EmbeddingSet(X, {"item_id": [f"w{i}" for i in range(10)]}, source="emb.npy")
    msg = str(err.value)
    assert "emb.npy" in msg and "layer '1'" in msg and "row 7" in msg
    assert "'w7'" in msg and "NaN" in msg and "column 2" in msg


def test_inf_is_reported_as_inf():
    X = np.zeros((10, 4))
    X[3, 0] = np.inf
    with pytest.raises(EmbeddingError, match="row 3 .*Inf in column 0"):
        EmbeddingSet(X)


def test_duplicate_ids_rejected_with_rows():
    with pytest.raises(EmbeddingError, match="duplicate item_id 'a' at rows 0 and 2"):
        EmbeddingSet(np.zeros((3, 2)), {"item_id": ["a", "b", "a"]})


def test_mismatched_item_table_length():
    with pytest.raises(EmbeddingError, match="has 4 rows but the embeddings have 3"):
        EmbeddingSet(np.zeros((3, 2)), {"label": [1, 2, 3, 4]})


def test_save_open_roundtrip_is_memory_mapped(tmp_path):
    emb = make()
    emb.save(tmp_path / "e.gpemb")
    back = EmbeddingSet.open(tmp_path / "e.gpemb")
    assert back.layer_names == emb.layer_names
    assert isinstance(back.layer(0), np.memmap)
    for i in range(3):
        np.testing.assert_array_equal(back.layer(i), emb.layer(i))
    np.testing.assert_array_equal(back.ids, emb.ids)
    np.testing.assert_array_equal(back.items["label"], emb.items["label"])
    assert back.provenance["model"] == "test"
    assert back.provenance["geoprobe_version"]


def test_writer_streams_blocks_and_float16(tmp_path):
    rng = np.random.default_rng(1)
    blocks = [rng.standard_normal((2, k, 5)) for k in (3, 0, 7, 1)]
    with EmbeddingWriter(tmp_path / "w", dim=5, layer_names=["a", "b"], dtype="float16") as w:
        start = 0
        for b in blocks:
            w.append(b, {"item_id": [f"x{start + i}" for i in range(b.shape[1])],
                         "pos": np.arange(b.shape[1])})
            start += b.shape[1]
    emb = EmbeddingSet.open(tmp_path / "w")
    assert emb.shape == (2, 11, 5) and emb.layer(0).dtype == np.float16
    full = np.concatenate(blocks, axis=1)
    np.testing.assert_allclose(emb.layer("b"), full[1], atol=2e-3)
    assert emb.ids[-1] == "x10"


def test_writer_failure_leaves_nothing_and_keeps_old(tmp_path):
    make().save(tmp_path / "w")
    bad = np.zeros((1, 2, 8))
    bad[0, 1, 3] = np.nan
    with pytest.raises(EmbeddingError, match="item 'b'"):
        with EmbeddingWriter(tmp_path / "w", dim=8, layer_names=["x"]) as w:
            w.append(np.ones((1, 2, 8)), {"item_id": ["c", "d"]})
            w.append(bad, {"item_id": ["a", "b"]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]
    assert EmbeddingSet.open(tmp_path / "w").n_layers == 3  # the old set is intact


def test_align_reorders_and_fails_loudly():
    emb = make()
    perm = np.random.default_rng(3).permutation(emb.n_items)
    shuffled = emb.subset(perm)
    aligned = shuffled.align_to(emb)
    np.testing.assert_array_equal(aligned.layer(1), emb.layer(1))
    short = emb.subset(np.arange(40))
    with pytest.raises(EmbeddingError, match="10 item.s. of .* missing .*first 's8:0'"):
        short.align_to(emb)


def test_item_table_csv_roundtrip_and_types(tmp_path):
    t = ItemTable({"item_id": ["a", "b"], "x": [1.5, np.nan], "k": [1, 2], "w": ["u", "v"]})
    t.to_csv(tmp_path / "t.csv")
    back = ItemTable.from_csv(tmp_path / "t.csv")
    assert back["k"].dtype.kind == "i" and back["x"].dtype.kind == "f"
    assert np.isnan(back["x"][1]) and back["w"].tolist() == ["u", "v"]


def test_csv_ragged_row_names_line(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3\n")
    with pytest.raises(Exception, match="t.csv line 3: 1 fields, header has 2"):
        ItemTable.from_csv(tmp_path / "t.csv")


def test_collapsed_layers_are_found_and_named():
    from geoprobe.embeddings import is_collapsed

    rng = np.random.default_rng(0)
    flat = np.tile(rng.standard_normal(5), (40, 1))
    rank1 = rng.standard_normal((40, 1)) * rng.standard_normal((1, 5))
    assert is_collapsed(flat) and is_collapsed(np.zeros((3, 2)))
    assert is_collapsed(flat + 1e-9 * rng.standard_normal(flat.shape))  # round-off only
    assert not is_collapsed(rank1) and not is_collapsed(flat[:1])
    emb = EmbeddingSet([flat, rank1, flat], layer_names=["a", "b", "c"], source="x.npy")
    assert emb.collapsed_layers() == ["a", "c"]
    assert emb.collapse_warning() == ("x.npy: layers 'a', 'c' collapsed: all 40 rows are "
                                      "(nearly) identical, zero variance")
    assert EmbeddingSet(rank1).collapse_warning() is None
