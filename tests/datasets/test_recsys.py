import numpy as np

from geoprobe.datasets.recsys import implicit_feedback, item_clusters, substitute_groups


def test_implicit_feedback_structure_and_seed():
    a = implicit_feedback(n_users=400, n_items=60, heldout_users=50, seed=1)
    b = implicit_feedback(n_users=400, n_items=60, heldout_users=50, seed=1)
    X = a.layer(0)
    np.testing.assert_array_equal(X, b.layer(0))
    assert set(np.unique(X)) == {0.0, 1.0}
    np.testing.assert_array_equal(X.sum(1), a.column("n_interactions"))
    split = a.column("split")
    assert (split == "test").sum() == 50 and (split == "validation").sum() == 50
    clusters = item_clusters(a)
    assert np.all(np.diff(clusters) >= 0)
    # Users consume their preferred cluster far more than its share of items.
    pref = a.column("preferred_cluster")
    in_pref = (X * (clusters[None, :] == pref[:, None])).sum() / X.sum()
    assert in_pref > 2 / len(np.unique(clusters))


def _within_group_pairs(emb, group):
    """Pairs of one substitute group taken by one user, summed over users and groups."""
    X = emb.layer(0)
    counts = np.zeros((X.shape[0], group.max() + 1))
    np.add.at(counts.T, group, X.T)
    return (counts * (counts - 1) / 2).sum()


def test_substitute_groups_stay_inside_clusters():
    clusters = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(substitute_groups(clusters, 2), [0, 0, 1, 1, 2, 3, 3, 4, 4, 5])
    np.testing.assert_array_equal(substitute_groups(clusters, 1), np.arange(10))


def test_substitutes_lower_within_group_co_occurrence_only():
    kw = dict(n_users=600, n_items=80, heldout_users=60, substitute_size=4, seed=2)
    free, half, full = (implicit_feedback(substitute_strength=s, **kw) for s in (0.0, 0.5, 1.0))
    group = np.asarray(full.provenance["item_substitute_group"])
    assert np.bincount(group).max() == 4
    assert all(len(set(item_clusters(full)[group == g])) == 1 for g in np.unique(group))
    pairs = [_within_group_pairs(e, group) for e in (free, half, full)]
    # strength 1 leaves no within-group pair; 0.5 fewer than none (less than half fewer: the
    # items a user gives up are replaced by others of the same cluster, some of them in
    # groups where that user is not exclusive)
    assert pairs[0] > 100 and pairs[2] == 0
    assert pairs[1] < 0.9 * pairs[0]
    # the same users, split and preferences at every strength; without substitutes the set
    # is the generator's old one
    for e in (half, full):
        np.testing.assert_array_equal(e.column("split"), free.column("split"))
        np.testing.assert_array_equal(e.column("preferred_cluster"),
                                      free.column("preferred_cluster"))
    old = implicit_feedback(n_users=600, n_items=80, heldout_users=60, seed=2)
    np.testing.assert_array_equal(free.layer(0), old.layer(0))
    # seeded
    np.testing.assert_array_equal(
        implicit_feedback(substitute_strength=0.5, **kw).layer(0), half.layer(0))
    # a user's activity is kept unless fewer items are open to them (recorded as drawn)
    for e in (half, full):
        kept = e.layer(0).sum(1)
        np.testing.assert_array_equal(kept, e.column("n_interactions"))
        assert (kept <= free.layer(0).sum(1)).all()
    assert np.mean(half.layer(0).sum(1) == free.layer(0).sum(1)) > 0.95
