"""The planted fracture generator: same seed, same data; the two kinds differ only in layout."""

import numpy as np
import pytest

from geoprobe.datasets.fracture import planted_fracture


def test_planted_fracture_is_seeded_and_kinds_share_factors():
    a = planted_fracture("fractured", n_items=300, dim=8, seed=4)
    b = planted_fracture("fractured", n_items=300, dim=8, seed=4)
    u = planted_fracture("unified", n_items=300, dim=8, seed=4)
    np.testing.assert_array_equal(a.layer(0), b.layer(0))
    for col in ("factor", "other", "context", "group"):
        np.testing.assert_array_equal(a.items[col], u.items[col])
    # one context per group, so group folds never split a context's group
    ctx, grp = a.items["context"], a.items["group"]
    assert all(len(np.unique(ctx[grp == g])) == 1 for g in np.unique(grp))
    with pytest.raises(ValueError, match="n_contexts"):
        planted_fracture(dim=4, n_contexts=4)
