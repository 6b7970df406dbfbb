import numpy as np

from geoprobe.datasets.recsys import implicit_feedback, item_clusters


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
