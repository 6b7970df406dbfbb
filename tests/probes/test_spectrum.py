import numpy as np
import pytest

from geoprobe import EmbeddingSet, make_probe
from geoprobe.datasets.synthetic import planted_spectrum
from geoprobe.spectra import participation_ratio, rankme


def test_rankme_closed_forms():
    assert rankme(np.ones(10)) == pytest.approx(10, rel=1e-5)
    assert rankme(np.array([1.0, 0, 0, 0])) == pytest.approx(1, abs=1e-4)
    # two equal singular values and the rest zero: exactly 2 (up to eps)
    assert rankme(np.array([3.0, 3.0, 0, 0, 0])) == pytest.approx(2, rel=1e-5)
    assert participation_ratio(np.array([1.0, 1.0, 1.0, 0.0])) == pytest.approx(3)


def run(emb, **params):
    params.setdefault("n_boot", 50)
    return make_probe("covariance-spectrum", **params).run(emb, seed=0)


def test_planted_ranks_recovered():
    emb = planted_spectrum(n_items=3000, dim=48, ranks=(48, 12, 3, 1), noise=0.0, seed=1)
    res = run(emb, group="episode")
    got = {layer: res.metric("rankme", layer=layer).value for layer in emb.layer_names}
    assert got["rank48"] == pytest.approx(48, rel=0.03)      # isotropic: close to d
    assert got["rank12"] == pytest.approx(12, rel=0.05)      # rank k: about k
    assert got["rank3"] == pytest.approx(3, rel=0.05)
    assert got["rank1"] == pytest.approx(1, abs=0.01)        # collapsed: about 1
    pr = res.metric("participation_ratio", layer="rank12")
    assert pr.value == pytest.approx(12, rel=0.1)
    assert pr.n == 150 and pr.unit == "episode"
    # The plug-in PR is biased low at finite n: for a sample covariance of an isotropic
    # k-dimensional Gaussian (Wishart moments) E tr(S)^2 / E tr(S^2) = k / (1 + (k + 1) / n),
    # 11.95 here. The interval must cover that value and be narrow: the estimate's sampling sd
    # is below 0.01 (an isotropic PR moves only at second order), so an interval wider than
    # 1 % of the planted 12 (or an infinite one) is not measuring anything.
    expected = 12 / (1 + 13 / 3000)
    assert pr.ci_low <= expected <= pr.ci_high
    assert pr.ci_high - pr.ci_low < 0.01 * 12


def test_collapsed_to_a_point_gives_one():
    X = np.tile(np.random.default_rng(0).standard_normal(16), (500, 1))
    res = run(EmbeddingSet(X))
    assert res.metric("rankme", layer="0").value == pytest.approx(1, abs=1e-3)


def test_shuffled_features_baseline_exceeds_correlated_layer():
    emb = planted_spectrum(n_items=2000, dim=32, ranks=(4,), noise=0.01, seed=2)
    res = run(emb)
    main = res.metric("rankme", layer="rank4").value
    shuffled = res.metric("rankme", layer="rank4", baseline="shuffled-features").value
    gauss = res.metric("rankme", layer="rank4", baseline="gaussian").value
    # planted rank 4 (RankMe <= 4 up to noise); shuffling features decorrelates them, and an
    # isotropic Gaussian's RankMe is close to d = 32 (test_planted_ranks_recovered: within 3 %)
    assert main < 6 < shuffled and gauss > 30


def test_streaming_from_disk_equals_in_memory(tmp_path):
    emb = planted_spectrum(n_items=1500, dim=24, ranks=(24, 5), seed=3)
    emb.save(tmp_path / "e")
    disk = EmbeddingSet.open(tmp_path / "e")
    a, b = run(emb, group="episode"), run(disk, group="episode")
    for m_a, m_b in zip(a.metrics, b.metrics):
        assert m_a.key() == m_b.key()
        assert m_a.value == pytest.approx(m_b.value, rel=1e-9, nan_ok=True)


def test_same_seed_same_numbers_and_ci_width_shrinks_with_n():
    emb = planted_spectrum(n_items=1000, dim=16, ranks=(6,), seed=4)
    a, b = run(emb), run(emb)
    assert [m.to_dict() for m in a.metrics] == [m.to_dict() for m in b.metrics]
    big = planted_spectrum(n_items=8000, dim=16, ranks=(6,), seed=4)
    wa = a.metric("participation_ratio", layer="rank6")
    wb = run(big).metric("participation_ratio", layer="rank6")
    assert (wb.ci_high - wb.ci_low) < (wa.ci_high - wa.ci_low)


def test_random_init_twin_added_as_baseline(tmp_path):
    emb = planted_spectrum(n_items=600, dim=16, ranks=(2,), seed=5)
    twin = planted_spectrum(n_items=600, dim=16, ranks=(16,), seed=6)
    res = make_probe("covariance-spectrum", n_boot=20).run(emb, twin=twin, seed=0)
    t = res.metric("rankme", layer="rank2", baseline="random-init")
    assert t.value > 10 > res.metric("rankme", layer="rank2").value


def test_figure_renders_from_result_alone(tmp_path, check_saved_figure):
    from geoprobe.plotting import save_figure
    from geoprobe.probe import ProbeResult

    res = run(planted_spectrum(n_items=500, dim=16, ranks=(16, 4), seed=7))
    again = ProbeResult.from_dict(res.to_dict())
    fig = again.plot()
    ax_spec, ax_rank, ax_curve = fig.axes
    # one spectrum curve per layer plus the shuffled-features one, each over all 16 eigenvalues
    labels = [line.get_label() for line in ax_spec.get_lines()]
    assert labels == ["layer rank16", "layer rank4", "shuffled features (last)"]
    assert all(len(line.get_xdata()) == 16 for line in ax_spec.get_lines())
    # the RankMe panel draws the result's own numbers, one point per layer
    rank_line = [line for line in ax_rank.get_lines() if line.get_marker() == "o"][0]
    np.testing.assert_allclose(rank_line.get_ydata(),
                               [res.metric("rankme", layer=k).value for k in ("rank16", "rank4")])
    # the n-sensitivity panel: the isotropic ceiling, then data and matched Gaussian per layer,
    # each over the result's grid of n
    grid = res.arrays["rankme_curve_n"]
    curves = ax_curve.get_lines()
    assert len(curves) == 1 + 2 * 2 and all(np.array_equal(c.get_xdata(), grid) for c in curves)
    np.testing.assert_allclose(curves[1].get_ydata(), res.arrays["rankme_curve"][0][:, 0])
    assert ax_curve.get_xscale() == "log"
    check_saved_figure(fig, save_figure(fig, tmp_path / "fig"))


def _curve(res, key, layer=0):
    """Mean, min and max over draws at each n of the grid, each of shape (P,)."""
    a = res.arrays[key] if key == "rankme_curve_isotropic" else res.arrays[key][layer]
    return a[:, 0], a[:, 1], a[:, 2]


def test_rankme_curve_of_an_isotropic_gaussian_follows_the_gaussian_ceiling():
    n, d = 2000, 32
    X = np.random.default_rng(0).standard_normal((1, n, d))
    res = run(EmbeddingSet(X.astype(np.float32), {"item_id": np.arange(n).astype(str)}),
              n_boot=10)
    grid = res.arrays["rankme_curve_n"]
    assert grid[0] == d // 4 and grid[-1] == n and len(grid) == 7
    data, low, high = _curve(res, "rankme_curve")
    iso = _curve(res, "rankme_curve_isotropic")[0]
    matched = _curve(res, "rankme_curve_matched")[0]
    # RankMe of an n x 32 Gaussian sample rises from ~8 at n=8 to ~32: the subsampled data
    # do the same, within 2 % of the ceiling at every n (sampling spread at n=8 is ~1 %)
    assert iso[0] < 9 and iso[-1] > 31.5
    np.testing.assert_allclose(data, iso, rtol=0.02)
    np.testing.assert_allclose(matched, iso, rtol=0.02)
    assert (low <= data).all() and (data <= high).all() and (high[:-1] > low[:-1]).all()
    # the full set is one point: its RankMe
    assert data[-1] == pytest.approx(res.metric("rankme", layer="0").value)


def test_rankme_curve_of_a_rank_4_space_plateaus_while_the_ceiling_keeps_rising():
    emb = planted_spectrum(n_items=2000, dim=32, ranks=(4,), seed=0)
    res = run(emb, n_boot=10)
    data = _curve(res, "rankme_curve")[0]
    iso = _curve(res, "rankme_curve_isotropic")[0]
    # near 4 from n=20 on (RankMe of a rank-4 Gaussian sample: just above 4 with the 1e-3 noise)
    assert np.all(np.abs(data[1:] - 4) < 0.4)
    assert data[-1] - data[3] < 0.1                    # flat over the last 4 points
    assert iso[-1] - iso[3] > 1.0                      # the ceiling still rises there
    assert np.all(np.diff(data) > -0.05)               # monotone up to draw noise
    # the Gaussian with the layer's own spectrum has the same plateau
    np.testing.assert_allclose(_curve(res, "rankme_curve_matched")[0], data, rtol=0.05)


def test_rankme_curve_can_be_turned_off_without_changing_other_numbers():
    emb = planted_spectrum(n_items=400, dim=16, ranks=(16, 3), seed=2)
    on, off = run(emb, n_boot=20), run(emb, n_boot=20, curve_points=0)
    assert "rankme_curve" in on.arrays and "rankme_curve" not in off.arrays
    assert [m.to_dict() for m in on.metrics] == [m.to_dict() for m in off.metrics]
    fewer = run(emb, n_boot=20, curve_points=3, curve_draws=2)
    assert len(fewer.arrays["rankme_curve_n"]) == 3
    assert fewer.to_dict() == run(emb, n_boot=20, curve_points=3, curve_draws=2).to_dict()


def test_interval_width_does_not_depend_on_block_count():
    """Resampling blocks of units must keep the bootstrap's variance (a regression test:
    resampling units and summing them into blocks shrank it by the units per block)."""
    emb = planted_spectrum(n_items=2000, dim=16, ranks=(6,), seed=8)

    def width(max_blocks):
        m = run(emb, n_boot=300, max_blocks=max_blocks).metric("participation_ratio",
                                                               layer="rank6")
        return m.ci_high - m.ci_low

    exact, blocked = width(2000), width(50)
    # the bug shrank the width by sqrt(2000 / 50) ~ 6.3; two 300-replicate percentile widths
    # each vary by ~10 %, so a ratio outside [0.6, 1.6] is a real change, not noise
    assert 0.6 < blocked / exact < 1.6
