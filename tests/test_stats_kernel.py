"""The resampling kernel (ClusterBootstrap): planted truth, paired replicates, seeding."""

import math

import numpy as np
import pytest

from geoprobe.stats import ClusterBootstrap, percentile_interval


def _clustered(rng, n_units=40, rows_per_unit=10, unit_sd=1.0, row_sd=0.5):
    """Rows with true mean 0 whose units share a random offset: (values (n,), groups (n,))."""
    groups = np.repeat(np.arange(n_units), rows_per_unit)
    values = unit_sd * rng.standard_normal(n_units)[groups] + row_sd * rng.standard_normal(
        groups.size)
    return values, groups


def test_cluster_interval_covers_the_true_mean_and_row_interval_does_not():
    rng = np.random.default_rng(0)
    hits = {"units": 0, "rows": 0}
    widths = {"units": [], "rows": []}
    n_sim = 200
    for _ in range(n_sim):
        values, groups = _clustered(rng)
        for name, g in (("units", groups), ("rows", None)):
            boot = ClusterBootstrap(g, values.size, n_boot=300, rng=rng)
            lo, hi = boot.interval(values.mean(), boot.ratio(values, np.ones_like(values)))
            hits[name] += lo <= 0.0 <= hi
            widths[name].append(hi - lo)
    # nominal 95%: 200 datasets put the hit count within about +-3 sd (sd ~ 3) of 190; the
    # percentile interval over 40 units runs a little narrow, hence the lower bound
    assert 0.88 * n_sim <= hits["units"] <= n_sim
    # rows within a unit are correlated: treating them as independent is far too narrow (the
    # design effect sqrt(1 + (10 - 1) * 0.8) makes the honest interval about 2.9 times wider)
    assert hits["rows"] < 0.6 * n_sim
    assert np.median(widths["units"]) > 2.0 * np.median(widths["rows"])
    # ... and the unit interval is as wide as theory, not merely wide (an infinite interval
    # covers every time): Var(mean) = unit_sd^2 / 40 + row_sd^2 / 400, width 2 * 1.96 * sd;
    # the percentile interval over 40 units is narrower by about sqrt(39 / 40), and the median
    # over 200 datasets of a width whose own sd is ~11 % (40 units) is good to ~1-2 %, so 10 %
    theory = 2 * 1.959964 * math.sqrt(1.0 / 40 + 0.25 / 400)
    assert np.median(widths["units"]) == pytest.approx(theory, rel=0.10)


def test_draws_are_the_legacy_multinomial_and_repeat_with_the_seed():
    groups = np.array(["b", "a", "b", "c", "c", "c", "d"])
    boot = ClusterBootstrap(groups, 7, n_boot=50, rng=np.random.default_rng(3))
    want = np.random.default_rng(3).multinomial(4, np.full(4, 0.25), size=50)
    np.testing.assert_array_equal(boot.counts, want)
    again = ClusterBootstrap(groups, 7, n_boot=50, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(again.row_weights(), boot.row_weights())
    assert boot.n_units == boot.n_blocks == 4 and boot.n_boot == 50 and boot.unit == "groups"
    w = boot.row_weights()
    assert w.shape == (50, 7)
    np.testing.assert_array_equal(w[:, 0], w[:, 2])  # rows of one unit move together
    np.testing.assert_array_equal(w[:, 1], boot.counts[:, 0])  # units in sorted order


def test_block_mode_deals_units_into_blocks_with_the_legacy_draw_order():
    groups = np.repeat(np.arange(30), 3)
    boot = ClusterBootstrap(groups, 90, n_boot=20, rng=np.random.default_rng(5), max_blocks=8)
    rng = np.random.default_rng(5)
    block_of_unit = rng.permutation(np.arange(30) % 8)
    np.testing.assert_array_equal(boot.block_of_row, block_of_unit[groups])
    np.testing.assert_array_equal(boot.counts, rng.multinomial(8, np.full(8, 1 / 8), size=20))
    assert boot.n_blocks == 8 and boot.n_units == 30
    # no more units than blocks: blocks are units and nothing is dealt
    exact = ClusterBootstrap(groups, 90, n_boot=20, rng=np.random.default_rng(5), max_blocks=64)
    plain = ClusterBootstrap(groups, 90, n_boot=20, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(exact.counts, plain.counts)
    np.testing.assert_array_equal(exact.block_of_row, groups)


def test_paired_statistics_share_draws():
    rng = np.random.default_rng(1)
    values, groups = _clustered(rng)
    better = values + 0.1 + 0.05 * rng.standard_normal(values.size)  # e.g. MLP vs linear
    boot = ClusterBootstrap(groups, values.size, n_boot=400, rng=rng, unit="sentences")
    ones = np.ones_like(values)
    a, b = boot.ratio(better, ones), boot.ratio(values, ones)
    full, reps = boot.sums(np.stack([better, values], axis=1))
    np.testing.assert_allclose(reps / boot.sums(ones)[1][:, None], np.stack([a, b], 1))
    np.testing.assert_allclose(full, [better.sum(), values.sum()])
    gain = boot.metric("gain", better.mean() - values.mean(), a - b)
    # the shared unit offsets cancel in the difference: a paired interval is narrow and
    # excludes 0, while intervals from independent draws would overlap
    assert 0.0 < gain.ci_low < 0.1 < gain.ci_high
    assert gain.ci_high - gain.ci_low < 0.2 * (np.ptp(percentile_interval(b)))
    assert gain.n == 40 and gain.unit == "sentences"


def test_interval_kinds_bounds_and_metric_assembly():
    boot = ClusterBootstrap(None, 5, n_boot=4, rng=np.random.default_rng(0), level=0.5)
    samples = np.array([1.0, 2.0, 3.0, 10.0])
    q_lo, q_hi = np.quantile(samples, [0.25, 0.75])
    assert boot.interval(2.0, samples) == (q_lo, q_hi)
    assert boot.interval(2.0, samples, "basic") == (4.0 - q_hi, 4.0 - q_lo)
    med = np.median(samples)
    assert boot.interval(2.0, samples, "centred") == (2.0 - (med - q_lo), 2.0 + (q_hi - med))
    shift = 2.0 - samples.mean()
    assert boot.interval(2.0, samples, "shifted") == pytest.approx((q_lo + shift, q_hi + shift))
    assert boot.interval(2.0, samples, bounds=(2.0, 3.0)) == (2.0, 3.0)
    with pytest.raises(ValueError, match="interval kind"):
        boot.interval(2.0, samples, "bca")
    m = boot.metric("r2", np.float64(2.0), samples, kind="basic", higher_is_better=True,
                    layer=3, **{"lambda": "0.1"})
    assert (m.value, m.ci_low, m.ci_high) == (2.0, 4.0 - q_hi, 4.0 - q_lo)
    assert m.n == 5 and m.unit == "rows" and m.higher_is_better is True
    assert m.labels == {"layer": "3", "lambda": "0.1"} and type(m.value) is float
    once = boot.metric("rankme", 7.0, baseline="gaussian")
    assert math.isnan(once.ci_low) and math.isnan(once.ci_high) and once.is_baseline


def test_probe_result_series_gathers_a_metric_across_layers():
    from geoprobe.probe import Metric, ProbeResult

    metrics = [Metric("r2", 0.5, 0.4, 0.6, 10, labels={"layer": "0", "target": "x"}),
               Metric("r2", 0.7, 0.6, 0.9, 10, labels={"layer": "2", "target": "x"}),
               Metric("r2", 0.1, labels={"layer": "0", "target": "x", "baseline": "mean"}),
               Metric("r2", 0.9, 0.8, 1.0, 10, labels={"layer": "0", "target": "y"})]
    result = ProbeResult("p", {}, metrics)
    s = result.series("r2", at=[0, 1, 2], target="x")
    np.testing.assert_array_equal(s.labels, ["0", "1", "2"])
    np.testing.assert_array_equal(s.values, [0.5, np.nan, 0.7])
    np.testing.assert_array_equal(s.ci_low, [0.4, np.nan, 0.6])
    np.testing.assert_array_equal(s.ci_high, [0.6, np.nan, 0.9])
    np.testing.assert_array_equal(s.found, [True, False, True])
    np.testing.assert_allclose(s.yerr(), [[0.1, 0.0, 0.1], [0.1, 0.0, 0.2]])
    # without ``at``: the layers found, in recorded order; baselines only when asked for
    assert result.series("r2", target="x").labels.tolist() == ["0", "2"]
    base = result.series("r2", at=["0", "2"], target="x", baseline="mean")
    np.testing.assert_array_equal(base.values, [0.1, np.nan])
    np.testing.assert_array_equal(base.band()[0], [0.1, np.nan])  # no interval: the value
    assert not result.series("mse", at=["0"]).found.any()
    with pytest.raises(KeyError, match="ambiguous at layer='0'"):
        result.series("r2")
    over_target = result.series("r2", over="target", layer=0)
    assert over_target.labels.tolist() == ["x", "y"] and over_target.values.tolist() == [0.5, 0.9]
    assert result.find("r2", layer=2) is metrics[1] and result.find("mse") is None
    with pytest.raises(KeyError, match="ambiguous"):
        result.find("r2", layer=0)
