"""The planted fracture generator: same seed, same data; the two kinds differ only in layout."""

import numpy as np
import pytest

from geoprobe.datasets.fracture import planted_fracture, planted_transfer_ratio


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


def test_overlap_sets_the_cosine_between_context_directions():
    for overlap in (0.0, 0.3, 1.0):
        emb = planted_fracture("fractured", n_items=4000, dim=8, noise=0.0, overlap=overlap,
                               seed=1)
        X, f, ctx = emb.layer(0).astype(float), emb.items["factor"], emb.items["context"]
        # without noise, x = f a_c + g b + m_c: the regression slope on f recovers a_c
        dirs = []
        for c in range(4):
            r = ctx == c
            A = np.c_[f[r], emb.items["other"][r], np.ones(r.sum())]
            dirs.append(np.linalg.lstsq(A, X[r], rcond=None)[0][0])
        cos = [dirs[i] @ dirs[j] for i in range(4) for j in range(i + 1, 4)]
        np.testing.assert_allclose(cos, overlap, atol=1e-4)
    with pytest.raises(ValueError, match="overlap"):
        planted_fracture("fractured", overlap=1.5)


def test_planted_transfer_ratio_runs_from_fractured_to_unified():
    ratios = [planted_transfer_ratio("fractured", overlap=o) for o in (0, 0.25, 0.5, 1)]
    assert ratios[0] == 0 and ratios[-1] == pytest.approx(1.0)
    assert np.all(np.diff(ratios) > 0)
    assert planted_transfer_ratio("unified") == 1.0
