"""Tests of the decodability engine and the linear-decodability probe (planted truths)."""

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.metrics import balanced_accuracy_score, f1_score, r2_score

import geoprobe
from geoprobe.decoding import (
    assignment_draws, classification_scores, control_task_labels, decode, group_folds,
    online_codelength, pool_assignments, regression_scores, ridge_cv_predict,
)
from geoprobe.errors import ProbeInputError
from geoprobe.probes.decodability import LinearDecodability

FAST = dict(mlp_max_epochs=30, n_boot=200)


def _emb(X, **items):
    layers = X if X.ndim == 3 else X[None]
    return geoprobe.EmbeddingSet(layers.astype(np.float32), items, source="test-set")


# -- engine -----------------------------------------------------------------------------------
def test_group_folds_keep_groups_together_balanced_and_seeded():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 60, 700)
    folds = group_folds(700, 5, groups=groups, rng=1)
    for g in np.unique(groups):
        assert len(np.unique(folds[groups == g])) == 1
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= np.bincount(groups).max()
    assert np.array_equal(folds, group_folds(700, 5, groups=groups, rng=1))
    with pytest.raises(ProbeInputError, match="6 folds need at least 6 groups in column 'sent'"):
        group_folds(10, 6, groups=np.arange(10) // 2, rng=0, group_name="sent")


@pytest.mark.parametrize("select", ["loo", "gcv"])
def test_ridge_path_matches_sklearn_ridgecv(select):
    rng = np.random.default_rng(0)
    n, d = 400, 12
    X = rng.standard_normal((n, d)) * np.linspace(0.2, 3, d) + 2.0
    Y = X @ rng.standard_normal((d, 3)) + rng.standard_normal((n, 3)) * [0.3, 3.0, 30.0]
    folds = group_folds(n, 4, rng=rng)
    alphas = np.logspace(-3, 5, 17)
    ours = ridge_cv_predict(X, Y, folds, alphas=alphas, select=select)
    for f in range(4):
        tr, te = folds != f, folds == f
        ref = RidgeCV(alphas=alphas, alpha_per_target=True).fit(X[tr], Y[tr])
        if select == "loo":  # RidgeCV's criterion: identical choice and predictions
            assert np.array_equal(ours.alphas[f], ref.alpha_)
            np.testing.assert_allclose(ours.predictions[te], ref.predict(X[te]), atol=1e-8)
    # GCV picks different but sensible alphas: heavier penalty for the noisier target
    assert np.all(ours.alphas[:, 2] >= ours.alphas[:, 0])


@pytest.mark.filterwarnings("ignore:y_pred contains classes")
def test_metric_functions_match_sklearn():
    rng = np.random.default_rng(2)
    Y = rng.standard_normal((200, 2))
    P = Y + rng.standard_normal((200, 2))
    s = regression_scores(Y, P)
    np.testing.assert_allclose(s["r2"], r2_score(Y, P, multioutput="raw_values"))
    np.testing.assert_allclose(s["pearson_r"], [np.corrcoef(Y[:, j], P[:, j])[0, 1]
                                                for j in range(2)])
    y = rng.integers(0, 4, 300)
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, 5, 300))
    c = classification_scores(y, p)
    assert c["accuracy"] == pytest.approx(np.mean(y == p))
    assert c["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p))
    assert c["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))


# -- planted truths -----------------------------------------------------------------------------
def test_linear_target_gets_theoretical_r2_within_ci():
    rng = np.random.default_rng(3)
    n, d, sigma = 3000, 10, 1.5
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d)
    y = X @ w + sigma * rng.standard_normal(n)
    truth = w @ w / (w @ w + sigma ** 2)  # population R^2 of the best linear predictor
    res = LinearDecodability(targets=["y"], group="g", mlp=False, n_boot=300).run(
        _emb(X, y=y, g=np.arange(n) // 10), seed=0, progress=False)
    m = res.metric("r2", layer="0", target="y")
    assert m.ci_low <= truth <= m.ci_high
    # delta method: sd(R^2) ~ 2 sqrt(R^2) (1 - R^2) / sqrt(n) < 0.01 at n = 3000 (R^2 ~ 0.8),
    # so a 95 % interval is ~0.04 wide at most; an infinite one fails here
    assert m.ci_high - m.ci_low < 0.05
    assert m.unit == "g" and m.n == 300
    mse = res.metric("mse", layer="0", target="y")
    assert mse.ci_low <= sigma ** 2 * 1.01 and mse.ci_high >= sigma ** 2 * 0.99 or \
        abs(mse.value - sigma ** 2) < 0.1 * sigma ** 2
    assert res.metric("r2", layer="0", target="y", baseline="shuffled").value < 0.02
    assert res.metric("r2", layer="0", target="y", baseline="mean").value < 0.01


def test_nonlinear_targets_show_mlp_linear_gap():
    rng = np.random.default_rng(4)
    n = 1200
    X = rng.standard_normal((n, 4))
    xor = np.where((X[:, 0] > 0) ^ (X[:, 1] > 0), "odd", "even")
    norm = np.linalg.norm(X[:, :2], axis=1)
    res = LinearDecodability(targets=["xor", "norm"], shuffled=False, **FAST).run(
        _emb(X, xor=xor, norm=norm), seed=0, progress=False)
    assert res.metric("accuracy", layer="0", target="xor").value < 0.6
    gain = res.metric("mlp_gain_accuracy", layer="0", target="xor")
    assert gain.value > 0.3 and gain.ci_low > 0.2
    assert res.metric("r2", layer="0", target="norm").value < 0.05
    gain = res.metric("mlp_gain_r2", layer="0", target="norm")
    assert gain.value > 0.5 and gain.ci_low > 0.4


def test_control_task_on_random_embeddings_has_no_selectivity():
    # Embeddings carry no information: task and control both fall to the majority rate, so
    # selectivity must be ~0 (and a real signal would have shown up as a positive one).
    rng = np.random.default_rng(5)
    n_types, n = 300, 1500
    word = rng.integers(0, n_types, n)
    X = rng.standard_normal((n, 24))
    pos = rng.choice(np.array(["N", "V", "D"]), n_types, p=[0.5, 0.3, 0.2])[word]
    res = LinearDecodability(targets=["pos"], group="sent", control="word", mlp=False,
                             n_boot=300).run(
        _emb(X, pos=pos, word=np.char.add("w", word.astype(str)), sent=np.arange(n) // 15),
        seed=0, progress=False)
    sel = res.metric("selectivity", layer="0", target="pos")
    # both accuracies are majority rates over 1500 rows (sd sqrt(0.25 / 1500) ~ 0.013 each):
    # their difference stays within ~3 sd = 0.05 of 0, and its interval reaches 0
    assert abs(sel.value) < 0.05 and sel.ci_low <= 0.01 and sel.ci_high >= -0.01
    majority = res.metric("accuracy", layer="0", target="pos", baseline="majority").value
    # no information: at most ~2 sd (0.013 each) above the majority rate
    assert res.metric("accuracy", layer="0", target="pos").value < majority + 0.03


def test_selectivity_is_task_minus_control_accuracy_on_a_planted_case():
    """X encodes the POS class exactly and nothing about the word: the task is decoded
    perfectly, while the control label (one random label per word type, independent of its
    POS) can only be guessed at its majority rate. Selectivity = task - control is then
    1 - (majority control share), about 1 - 0.5. A probe returning constants cannot give
    both this and ~0 on the uninformative set above."""
    rng = np.random.default_rng(12)
    n_types, n = 300, 1500
    word = rng.integers(0, n_types, n)
    pos_of_type = rng.choice(3, n_types, p=[0.5, 0.3, 0.2])
    pos = pos_of_type[word]
    X = np.eye(3)[pos] * 3 + 0.1 * rng.standard_normal((n, 3))  # classes 30 sd apart
    names = np.array(["N", "V", "D"])
    res = LinearDecodability(targets=["pos"], group="sent", control="word", mlp=False,
                             n_boot=200).run(
        _emb(X, pos=names[pos], word=np.char.add("w", word.astype(str)),
             sent=np.arange(n) // 15), seed=0, progress=False)
    task = res.metric("accuracy", layer="0", target="pos")
    control = res.metric("accuracy", layer="0", target="pos", baseline="control")
    sel = res.metric("selectivity", layer="0", target="pos")
    assert task.value == 1.0  # separable by a 30-sd margin: every held-out row is right
    # control labels are drawn from the POS shares (0.5, 0.3, 0.2) per type; the best guess
    # from X is the majority control label: 0.5 plus the sd of a share over 300 types
    # (sqrt(0.25 / 300) ~ 0.03) and a little held-out overfitting, so within 0.1 of 0.5
    assert control.value == pytest.approx(0.5, abs=0.1)
    assert sel.value == pytest.approx(task.value - control.value, abs=1e-12)
    assert sel.ci_low > 0.3  # the planted gap ~0.5, minus >5 bootstrap sd (~0.03 each)


def _few_types_set():
    """Layer 0 encodes the word type (12 types) exactly, so any control labelling of the types
    is learnable; layer 1 is noise, so the control accuracy is the majority share of the
    drawn labels, which with 12 types changes a lot from one assignment to the next."""
    rng = np.random.default_rng(3)
    n_types, n = 12, 1200
    word = rng.integers(0, n_types, n)
    pos = rng.choice(np.array(["N", "V", "D"]), n_types, p=[0.5, 0.3, 0.2])[word]
    X = np.stack([np.eye(n_types)[word] * 3 + 0.1 * rng.standard_normal((n, n_types)),
                  rng.standard_normal((n, n_types))])
    return _emb(X, pos=pos, word=np.char.add("w", word.astype(str)), sent=np.arange(n) // 10)


def test_control_is_the_mean_over_assignments_with_their_spread():
    emb = _few_types_set()
    probe = LinearDecodability(targets=["pos"], group="sent", control="word", mlp=False,
                               n_control=5, n_boot=200)
    res = probe.run(emb, seed=0, progress=False)
    for layer in ("0", "1"):
        control = res.metric("accuracy", layer=layer, target="pos", baseline="control")
        spread = res.info["control_spread"][f"{layer}:pos"]
        values = np.array(spread["accuracy"]["values"])
        assert len(values) == 5
        assert control.value == pytest.approx(values.mean(), abs=1e-12)
        assert spread["accuracy"]["min"] <= control.value <= spread["accuracy"]["max"]
        assert control.ci_low <= control.value <= control.ci_high
        task = res.metric("accuracy", layer=layer, target="pos").value
        sel = res.metric("selectivity", layer=layer, target="pos")
        assert sel.value == pytest.approx(task - control.value, abs=1e-12)
        assert np.allclose(spread["selectivity"]["values"], task - values)
    # learnable control: every assignment is decoded perfectly, no spread
    assert res.info["control_spread"]["0:pos"]["accuracy"]["min"] == 1.0
    # unlearnable control: majority shares of different draws differ
    noisy = res.info["control_spread"]["1:pos"]["accuracy"]
    assert noisy["sd"] > 0.01 and noisy["max"] < 0.9
    # the interval covers the draw of the labels: it reaches past the single draws' bootstrap
    # (n_control=1) where the other draws lie
    single = LinearDecodability(targets=["pos"], group="sent", control="word", mlp=False,
                                n_control=1, n_boot=200).run(emb, seed=0, progress=False)
    one = single.metric("accuracy", layer="1", target="pos", baseline="control")
    many = res.metric("accuracy", layer="1", target="pos", baseline="control")
    assert many.ci_high - many.ci_low > one.ci_high - one.ci_low
    # same seed, same numbers
    again = probe.run(emb, seed=0, progress=False)
    assert [m.to_dict() for m in again.metrics] == [m.to_dict() for m in res.metrics]


def test_one_control_assignment_is_the_first_of_several_and_tasks_do_not_move():
    emb = _few_types_set()
    kw = dict(targets=["pos"], group="sent", control="word", mlp=True, mlp_hidden=8,
              mlp_max_epochs=3, mdl=True, n_boot=50)
    one = LinearDecodability(n_control=1, **kw).run(emb, seed=0, progress=False)
    four = LinearDecodability(n_control=4, **kw).run(emb, seed=0, progress=False)
    for layer in ("0", "1"):
        for name in ("accuracy", "mlp_accuracy", "mdl_compression"):
            first = four.info["control_spread"][f"{layer}:pos"][name]["values"][0]
            assert one.metric(name, layer=layer, target="pos", baseline="control").value == \
                pytest.approx(first, abs=1e-12)
    # every task metric (and every non-control baseline) is independent of n_control
    keep = [m.to_dict() for m in one.metrics
            if m.labels.get("baseline") != "control" and "selectivity" not in m.name]
    assert keep == [m.to_dict() for m in four.metrics
                    if m.labels.get("baseline") != "control" and "selectivity" not in m.name]


def test_pool_assignments_resamples_units_and_assignments():
    samples = np.array([[0.1, 0.3], [0.2, 0.6]])      # (n_boot=2, n_assignments=2)
    mean, pooled = pool_assignments([0.2, 0.4], samples, np.array([[2, 0], [1, 1]]))
    assert mean == pytest.approx(0.3)
    assert np.allclose(pooled, [0.1, 0.4])          # replicate 0 drew assignment 0 twice
    one, same = pool_assignments([0.2], samples[:, :1], assignment_draws(1, 2, rng=0))
    assert one == 0.2 and np.allclose(same, samples[:, 0])
    draws = assignment_draws(5, 300, rng=0)
    assert draws.shape == (300, 5) and (draws.sum(1) == 5).all() and draws.std() > 0


def test_group_folds_expose_a_leak_that_row_folds_hide():
    # Rows of a group share a group-specific offset in X and a group-specific target: the only
    # way to "decode" the target is to recognise the group, which held-out groups forbid.
    rng = np.random.default_rng(6)
    n_groups, size, d = 40, 12, 64  # d > n_groups: a linear map can memorise groups
    g = np.repeat(np.arange(n_groups), size)
    X = 3 * rng.standard_normal((n_groups, d))[g] + rng.standard_normal((len(g), d))
    y = rng.standard_normal(n_groups)[g]
    emb = _emb(X, y=y, g=g)
    rowwise = LinearDecodability(targets=["y"], mlp=False, n_boot=200).run(
        emb, seed=0, progress=False)
    grouped = LinearDecodability(targets=["y"], group="g", mlp=False, n_boot=200).run(
        emb, seed=0, progress=False)
    assert rowwise.metric("r2", layer="0", target="y").value > 0.7
    m = grouped.metric("r2", layer="0", target="y")
    assert m.value < 0.1 and m.ci_low < 0


def test_angles_are_decoded_circularly():
    rng = np.random.default_rng(7)
    n = 900
    theta = rng.uniform(-180, 180, n)
    rad = np.deg2rad(theta)
    X = np.c_[np.cos(rad), np.sin(rad), rng.standard_normal((n, 6))]
    X[:, :2] += 0.05 * rng.standard_normal((n, 2))
    res = LinearDecodability(angles=["theta"], angle_unit="deg", mlp=False, n_boot=200).run(
        _emb(X, theta=theta), seed=0, progress=False)
    assert res.metric("r2", layer="0", target="theta:sin").value > 0.95
    mae = res.metric("angle_mae", layer="0", target="theta")
    assert mae.value < 5.0  # degrees; wrapping at +-180 would give ~90
    assert res.metric("angle_mae", layer="0", target="theta", baseline="shuffled").value > 60


def test_mdl_compresses_informative_labels_more_than_control():
    rng = np.random.default_rng(8)
    n = 1000
    X = rng.standard_normal((n, 8))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)
    bits, comp = online_codelength(X, y, rng=0)
    shuffled_bits, shuffled_comp = online_codelength(X, rng.permutation(y), rng=0)
    assert comp > 1.5 and shuffled_comp < 1.1
    assert bits < shuffled_bits
    assert online_codelength(X, y, rng=0) == (bits, comp)


def test_control_task_labels_are_fixed_per_type():
    types = np.array(["a", "b", "a", "c", "b", "a"])
    y = np.array([0, 1, 2, 0, 1, 2])
    c = control_task_labels(types, y, rng=0)
    assert c[0] == c[2] == c[5] and c[1] == c[4]
    assert set(c) <= set(y)


def test_decode_function_for_other_probes():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((600, 5))
    Y = X[:, :2] @ np.array([[1.0, 0.0], [0.0, 2.0]]) + rng.standard_normal((600, 2))
    out = decode(X, Y, groups=np.arange(600) // 6, rng=1)
    r2 = out.scores["r2"]
    assert r2.shape == (2, 3)
    assert r2[0, 1] <= 0.5 <= r2[0, 2] and r2[1, 1] <= 0.8 <= r2[1, 2]
    out = decode(X, np.where(X[:, 0] > 0, "p", "n"), kind="categorical", rng=1)
    assert out.scores["accuracy"][0, 0] > 0.95


# -- bad input, determinism, figure ------------------------------------------------------------
def test_bad_input_is_refused_or_handled_explicitly():
    rng = np.random.default_rng(10)
    X = rng.standard_normal((60, 4))
    y = X[:, 0].copy()
    y[7] = np.nan
    emb = _emb(X, item_id=np.char.add("it", np.arange(60).astype(str)), y=y,
               lab=np.array(["a", "b"] * 29 + ["a", "solo"]), g=np.arange(60) // 20)
    with pytest.raises(ProbeInputError, match=r"'y' is missing .* row 7 \(item 'it7'\)"):
        LinearDecodability(targets=["y"], mlp=False).run(emb, progress=False)
    res = LinearDecodability(targets=["y"], mlp=False, missing="drop", n_boot=50).run(
        emb, progress=False)
    assert res.info["n_used"] == 59 and res.info["dropped"]["missing"] == 1
    with pytest.raises(ProbeInputError, match=r"class\(es\) \['solo'\] with fewer than 2"):
        LinearDecodability(targets=["lab"], mlp=False).run(emb, progress=False)
    res = LinearDecodability(targets=["lab"], mlp=False, rare_classes="drop", n_boot=50).run(
        emb, progress=False)
    assert res.info["classes"]["lab"] == ["a", "b"] and res.info["n_used"] == 59
    with pytest.raises(ProbeInputError, match="5 folds need at least 5 groups in column 'g'"):
        LinearDecodability(targets=["lab"], group="g", rare_classes="drop").run(
            emb, progress=False)
    with pytest.raises(ProbeInputError, match="no item column"):
        LinearDecodability(targets=["nope"]).run(emb, progress=False)


def test_same_seed_same_numbers_and_figure(tmp_path, check_saved_figure):
    rng = np.random.default_rng(11)
    X = rng.standard_normal((2, 300, 6))
    lab = np.where(X[1, :, 0] > 0, "p", "n")
    items = dict(lab=lab, z=X[0, :, 1] + 0.3 * rng.standard_normal(300),
                 word=np.char.add("w", (np.arange(300) % 40).astype(str)),
                 s=np.arange(300) // 10)
    probe = LinearDecodability(targets=["lab", "z"], group="s", control="word", mdl=True,
                               mlp_max_epochs=10, n_boot=100)
    a = probe.run(_emb(X, **items), seed=3, progress=False)
    b = probe.run(_emb(X, **items), seed=3, progress=False)
    assert [m.to_dict() for m in a.metrics] == [m.to_dict() for m in b.metrics]
    # lab is the sign of a layer-1 coordinate (linearly separable: accuracy ~1 up to 300 rows
    # of held-out noise); z has R^2 = 1 / (1 + 0.3^2) = 0.92 on layer 0 by construction
    assert a.metric("accuracy", layer="1", target="lab").value > 0.9
    assert a.metric("r2", layer="0", target="z").value > 0.8
    back = geoprobe.ProbeResult.from_dict(a.to_dict())
    fig = back.plot()
    assert len([ax for ax in fig.axes if ax.axison]) == 3
    from geoprobe.plotting import save_figure
    check_saved_figure(fig, save_figure(fig, tmp_path / "fig"))
