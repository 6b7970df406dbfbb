import numpy as np
import pytest

from geoprobe import stats


def test_bootstrap_indices_keep_units_whole():
    groups = np.repeat(np.arange(10), [1, 2, 3, 4, 5, 1, 2, 3, 4, 5])
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = stats.bootstrap_indices(groups, len(groups), rng)
        drawn = groups[idx]
        counts = np.bincount(groups)
        # every drawn unit appears a whole number of times its size
        for g in np.unique(drawn):
            assert np.sum(drawn == g) % counts[g] == 0
        assert len(np.unique(drawn)) <= 10


def test_row_weights_match_unit_draws():
    groups = np.array([0, 0, 1, 2, 2, 2])
    c = stats.ClusterBootstrap(groups, 6, n_boot=50, rng=np.random.default_rng(1)).row_weights()
    assert c.shape == (50, 6)
    assert np.all(c[:, 0] == c[:, 1]) and np.all(c[:, 3] == c[:, 5])
    assert np.all(c[:, [0, 2, 3]].sum(1) == 3)


def test_cluster_bootstrap_is_wider_than_row_bootstrap_for_clustered_data():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 25)
    values = rng.standard_normal(40)[groups] + 0.1 * rng.standard_normal(1000)
    by_group = stats.bootstrap_mean(values, groups=groups, rng=rng)
    by_row = stats.bootstrap_mean(values, rng=rng)
    assert (by_group.high - by_group.low) > 3 * (by_row.high - by_row.low)
    assert by_group.n == 40 and by_group.unit == "groups"


def test_bootstrap_mean_coverage_near_nominal_and_width_near_theory():
    """Over 100 planted N(0, 1) samples of 200 rows the 95% interval covers the true mean 0
    about 95 times, and is about as wide as theory says: an interval that is always
    infinite (or twice too wide) covers every time, so coverage alone cannot catch it."""
    rng = np.random.default_rng(2)
    hits, widths = 0, []
    for _ in range(100):
        ci = stats.bootstrap_mean(rng.standard_normal(200), n_boot=300, rng=rng)
        hits += ci.low <= 0.0 <= ci.high
        widths.append(ci.high - ci.low)
    # binomial sd of the hit count at p = 0.95 is sqrt(100 * 0.95 * 0.05) ~ 2.2: 85 is ~4.5 sd
    # below the nominal 95 (the percentile interval runs slightly narrow at n = 200)
    assert 85 <= hits <= 100
    # theory: 2 * 1.96 * sd / sqrt(n) = 3.92 / sqrt(200) ~ 0.277; the bootstrap's own sd of
    # the width (300 replicates, sample sd of 200 rows) is a few percent, so 10 % is >3 sd
    theory = 2 * 1.959964 / np.sqrt(200)
    assert np.median(widths) == pytest.approx(theory, rel=0.10)
    assert np.all(np.isfinite(widths))


def test_generic_bootstrap_agrees_with_vectorised_mean():
    rng = np.random.default_rng(3)
    v = rng.standard_normal(300)
    g = np.repeat(np.arange(30), 10)
    a = stats.bootstrap(lambda idx: v[idx].mean(), 300, groups=g, n_boot=2000,
                        rng=np.random.default_rng(4))
    b = stats.bootstrap_mean(v, groups=g, n_boot=2000, rng=np.random.default_rng(5))
    assert abs(a.value - b.value) < 1e-12
    assert abs(a.low - b.low) < 0.05 and abs(a.high - b.high) < 0.05


def test_shuffle_within_groups_keeps_each_groups_labels():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(5), 6)
    y = np.arange(30)
    s = stats.shuffle_labels(y, groups=groups, within_groups=True, rng=rng)
    assert not np.array_equal(s, y)
    for g in range(5):
        assert sorted(s[groups == g]) == sorted(y[groups == g])


def test_shuffle_across_groups_moves_whole_units():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(8), 3)
    y = np.repeat(np.arange(8) * 10, 3) + np.tile([0, 1, 2], 8)
    s = stats.shuffle_labels(y, groups=groups, rng=rng)
    for g in range(8):
        block = s[groups == g]
        assert block.tolist() == [block[0], block[0] + 1, block[0] + 2]
    assert sorted(s.tolist()) == sorted(y.tolist()) and not np.array_equal(s, y)


def test_seeded_generators_reproduce():
    a = stats.shuffle_labels(np.arange(100), rng=stats.as_generator(7))
    b = stats.shuffle_labels(np.arange(100), rng=stats.as_generator(7))
    assert np.array_equal(a, b)


def test_permutation_p_value_never_zero():
    assert stats.permutation_p_value(10.0, np.zeros(99)) == 0.01


def test_library_seeding_leaves_the_callers_torch_state_alone():
    import torch

    @stats.preserves_torch_rng
    def build():
        torch.manual_seed(123)
        return torch.rand(3)

    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    first = build()
    assert torch.equal(torch.rand(2), expected)      # the caller's stream is untouched
    assert torch.equal(build(), first)               # and the function is still seeded


def test_seed_interval_is_the_student_t_interval_of_the_seeds():
    iv = stats.seed_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # sd 1.5811, t_{0.975, 4} = 2.7764 (tables): half width 2.7764 * 1.5811 / sqrt(5)
    assert iv.value == pytest.approx(3.0)
    assert (iv.low, iv.high) == pytest.approx((3.0 - 1.9632, 3.0 + 1.9632), abs=1e-3)
    assert (iv.n, iv.unit) == (5, "seeds")
    # a seed whose metric is undefined is left out, not counted as a value
    assert stats.seed_interval([1.0, np.nan, 3.0]).n == 2


def test_seed_interval_covers_the_mean_at_its_level_with_five_seeds():
    rng = np.random.default_rng(0)
    draws = rng.normal(2.0, 0.5, size=(2000, 5))
    ivs = [stats.seed_interval(d) for d in draws]
    cover = np.mean([iv.low <= 2.0 <= iv.high for iv in ivs])
    assert 0.935 <= cover <= 0.965  # a z-interval (1.96) would cover only about 0.88


def test_seed_interval_refuses_a_single_seed():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        stats.seed_interval([0.7])
    with pytest.raises(ValueError, match="got 1"):
        stats.seed_interval([0.7, np.nan])
