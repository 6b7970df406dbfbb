import json

import numpy as np
import pytest

from geoprobe import EmbeddingSet, make_probe
from geoprobe.errors import ProbeInputError
from geoprobe.plotting import save_figure
from geoprobe.similarity import cka


def planted(n=80, d=6, seed=0):
    """Layers: a space, a rotated and scaled copy, an anisotropic linear map of it, an
    unrelated space; sentences of 4 items."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, d))
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    stretch = np.diag(np.geomspace(10, 0.1, d)) @ Q
    layers = np.stack([base, 3.0 * base @ Q, base @ stretch, rng.standard_normal((n, d))])
    items = {"item_id": np.char.add("w", np.arange(n).astype(str)),
             "sentence": np.arange(n) // 4}
    return EmbeddingSet(layers, items, layer_names=["base", "rotated", "stretched", "noise"])


def run(emb, annotations=None, **params):
    params = {"n_boot": 30, "n_perm": 10, "group": "sentence",
              "metrics": ["cka_linear", "cka_linear_debiased", "cka_rbf", "rsa", "procrustes",
                          "shape_angle"], "dissimilarity": "euclidean", **params}
    return make_probe("similarity", **params).run(emb, annotations=annotations, seed=0,
                                                  progress=False)


def test_planted_layers():
    res = run(planted())
    same = dict(layer="base", vs_layer="rotated", against="layers")
    assert res.metric("cka_linear", **same).value == pytest.approx(1.0)
    assert res.metric("cka_linear_debiased", **same).value == pytest.approx(1.0)
    assert res.metric("procrustes", **same).value == pytest.approx(0.0, abs=1e-6)
    assert res.metric("rsa", **same).value == pytest.approx(1.0)  # euclidean RDMs are equal
    stretched = res.metric("cka_linear", layer="base", vs_layer="stretched")
    assert stretched.value < 0.9  # CKA is not invariant to anisotropic linear maps
    assert stretched.unit == "sentence" and stretched.n == 20
    assert stretched.ci_low <= stretched.value <= stretched.ci_high < 1.0
    # the unrelated layer sits inside its permutation baseline, the copy far above it
    for name in ("cka_linear_debiased", "rsa"):
        noise = res.metric(name, layer="base", vs_layer="noise")
        null = res.metric(name, layer="base", vs_layer="noise", baseline="permuted")
        assert null.ci_low <= noise.value <= null.ci_high
        assert res.metric(name, **same).value > res.metric(
            name, baseline="permuted", **same).ci_high
    # the figure matrix is symmetric with the self-similarity on the diagonal
    mat = res.arrays["cka_linear"]
    np.testing.assert_allclose(mat, mat.T)
    np.testing.assert_allclose(np.diag(mat), 1.0)
    assert mat[0, 2] == pytest.approx(stretched.value)
    # six pairs of four layers, each metric once plus its baseline
    assert len(res.metrics) == 6 * 6 * 2


def test_other_set_is_aligned_by_item_id():
    emb = planted()
    rng = np.random.default_rng(1)
    order = rng.permutation(emb.n_items)
    other = EmbeddingSet(np.stack([emb.layer("rotated")[order], emb.layer("noise")[order]]),
                         {"item_id": emb.ids[order]}, layer_names=["r", "n"])
    res = run(emb, annotations={"other": other}, metrics=["cka_linear"], n_boot=5)
    assert res.metric("cka_linear", layer="base", vs_layer="r", against="other").value \
        == pytest.approx(1.0)
    assert res.arrays["cka_linear_other"].shape == (4, 2)
    assert res.info["other_layers"] == ["r", "n"]
    missing = EmbeddingSet(emb.layer("base")[:-1], {"item_id": emb.ids[:-1]})
    with pytest.raises(ProbeInputError, match="annotation 'other'.*missing"):
        run(emb, annotations={"other": missing}, metrics=["cka_linear"], n_boot=5)


def test_other_set_from_a_file(tmp_path):
    planted_set = planted()
    emb = EmbeddingSet(np.stack([planted_set.layer(i) for i in range(4)]))  # IDs "0", "1", ...
    np.save(tmp_path / "other.npy", emb.layer(1)[None])
    res = run(emb, annotations={"other": str(tmp_path / "other.npy")}, metrics=["procrustes"],
              n_boot=5, group=None)
    assert res.metric("procrustes", layer="0", vs_layer="0", against="other").value \
        == pytest.approx(0.0, abs=1e-6)


def test_subsample_above_max_items_streams_linear_cka(caplog):
    emb = planted(n=120)
    res = run(emb, max_items=50, metrics=["cka_linear", "cka_rbf"], n_boot=10)
    assert any(r.levelname == "WARNING" and r.getMessage().startswith("similarity")
               for r in caplog.records)
    assert res.info["n_compared"] == 50
    assert any("subsample of max_items=50" in w for w in res.info["warnings"])
    X, Y = emb.layer("base", dtype=np.float64), emb.layer("stretched", dtype=np.float64)
    full = cka(X @ X.T, Y @ Y.T)  # every item, not the subsample
    m = res.metric("cka_linear", layer="base", vs_layer="stretched")
    assert m.value == pytest.approx(full, rel=1e-9)
    assert m.ci_low <= m.value <= m.ci_high
    res = run(emb, max_items=120, metrics=["cka_linear"], n_boot=5)
    assert "warnings" not in res.info  # at or under max_items: no warning


def test_twin_gives_random_init_baseline():
    emb = planted()
    twin = EmbeddingSet(np.random.default_rng(9).standard_normal((4, 80, 6)),
                        {"item_id": emb.ids}, layer_names=["0", "1", "2", "3"])
    res = make_probe("similarity", metrics=["cka_linear"], n_boot=5, n_perm=3).run(
        emb, twin=twin, seed=0, progress=False)
    m = res.metric("cka_linear", layer="base", vs_layer="rotated", baseline="random-init")
    assert m.value < 0.9  # the twin's unrelated layers, under the main set's names


def test_bad_parameters_are_refused():
    with pytest.raises(ProbeInputError, match="metrics"):
        make_probe("similarity", metrics=["cka_quadratic"])
    with pytest.raises(ProbeInputError, match="dissimilarity"):
        make_probe("similarity", dissimilarity="manhattan")


def test_figure(tmp_path, check_saved_figure, smallest_font):
    emb = planted()
    other = EmbeddingSet(emb.layer("rotated")[None], {"item_id": emb.ids})
    res = run(emb, annotations={"other": other}, n_boot=5)
    fig = res.plot()
    check_saved_figure(fig, save_figure(fig, tmp_path / "similarity"))
    assert smallest_font(fig) >= 6  # cell numbers and layer names legible in print


def test_cli_probe_with_another_set(tmp_path, capsys):
    from geoprobe.cli import main

    rng = np.random.default_rng(2)
    X = rng.standard_normal((2, 40, 5))
    np.save(tmp_path / "a.npy", X)
    np.save(tmp_path / "b.npy", 2.0 * X[1:])  # a scaled copy of a's layer 1
    code = main(["probe", "similarity", str(tmp_path / "a.npy"), "--annotation",
                 f"other={tmp_path / 'b.npy'}", "--param", "metrics=['cka_linear']",
                 "--param", "n_boot=5", "-o", str(tmp_path / "o"), "--no-progress"])
    assert code == 0
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    found = {(m["labels"]["layer"], m["labels"]["vs_layer"], m["labels"]["against"]): m["value"]
             for m in doc["probes"]["similarity"]["metrics"] if "baseline" not in m["labels"]}
    assert found[("1", "0", "other")] == pytest.approx(1.0)
    assert found[("0", "0", "other")] < 0.9
    assert main(["probe", "similarity", str(tmp_path / "a.npy"), "--annotation", "other"]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_svcca_and_pwcca_in_the_probe_and_pwcca_both_ways():
    emb = planted(n=200)
    res = run(emb, metrics=["svcca", "pwcca"], n_boot=10, n_perm=5)
    assert res.metric("svcca", layer="base", vs_layer="stretched").value == pytest.approx(1.0)
    assert res.metric("pwcca", layer="base", vs_layer="stretched").value == pytest.approx(1.0)
    unrelated = res.metric("pwcca", layer="base", vs_layer="noise")
    permuted = res.metric("pwcca", layer="base", vs_layer="noise", baseline="permuted")
    assert unrelated.value < 0.5 and permuted.ci_low <= unrelated.value <= permuted.ci_high
    # asymmetric: each direction is its own metric and its own cell of the matrix
    forward = res.metric("pwcca", layer="base", vs_layer="noise").value
    backward = res.metric("pwcca", layer="noise", vs_layer="base").value
    assert forward != backward
    i, j = res.info["layers"].index("base"), res.info["layers"].index("noise")
    assert res.arrays["pwcca"][i, j] == forward and res.arrays["pwcca"][j, i] == backward
