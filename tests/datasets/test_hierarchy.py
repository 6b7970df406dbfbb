"""The random hierarchy model: unambiguous seeded rules, planted truth, the two learners."""

import numpy as np
import pytest

from geoprobe.datasets.hierarchy import RandomHierarchy, hierarchy_ssl, random_hierarchy
from geoprobe.errors import ProbeInputError
from geoprobe.hierarchy_ssl import LatentLearner, TokenLearner
from geoprobe.probes.decodability import LinearDecodability


def test_rules_are_unambiguous_seeded_and_of_the_declared_shape():
    rhm = RandomHierarchy(v=6, m=3, s=2, depth=3, n_classes=4, seed=5)
    assert [r.shape for r in rhm.rules_] == [(6, 3, 2), (6, 3, 2), (4, 3, 2)]
    for rules in rhm.rules_:
        tuples = {tuple(t) for t in rules.reshape(-1, 2).tolist()}
        assert len(tuples) == rules.shape[0] * rules.shape[1]  # no tuple produced twice
        assert rules.min() >= 0 and rules.max() < 6
    again = RandomHierarchy(v=6, m=3, s=2, depth=3, n_classes=4, seed=5)
    other = RandomHierarchy(v=6, m=3, s=2, depth=3, n_classes=4, seed=6)
    assert all(np.array_equal(a, b) for a, b in zip(rhm.rules_, again.rules_))
    assert not all(np.array_equal(a, b) for a, b in zip(rhm.rules_, other.rules_))
    first, second = rhm.sample(50, seed=1), rhm.sample(50, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_latents_are_consistent_with_the_tokens():
    rhm = RandomHierarchy(v=8, m=4, s=3, depth=3, seed=0)
    latents = rhm.sample(200, seed=2)
    assert [lat.shape for lat in latents] == [(200, 27), (200, 9), (200, 3), (200, 1)]
    # each level's tuples are rules of the level above ...
    for level in range(1, 4):
        child = latents[level - 1].reshape(200, -1, 3)
        parent = latents[level]
        for i in range(0, 200, 17):
            for j in range(parent.shape[1]):
                assert child[i, j].tolist() in rhm.rules_[level - 1][parent[i, j]].tolist()
    # ... so parsing the tokens bottom-up gives back every latent
    assert all(np.array_equal(a, b) for a, b in zip(rhm.parse(latents[0]), latents))
    # a changed token makes a tuple that either no rule produces (-1, and so is every node
    # above it) or that exactly one rule does
    broken = latents[0].copy()
    broken[:, 0] = (broken[:, 0] + 1) % 8
    reparsed = rhm.parse(broken)
    lost = reparsed[1][:, 0] < 0
    assert lost.any() and (reparsed[2][lost, 0] < 0).all() and (reparsed[3][lost, 0] < 0).all()
    for i in np.flatnonzero(~lost):
        assert broken[i, :3].tolist() in rhm.rules_[0][reparsed[1][i, 0]].tolist()


def test_too_many_rules_for_unambiguity_is_a_clear_error():
    with pytest.raises(ProbeInputError, match="unambiguous"):
        RandomHierarchy(v=3, m=4, s=2, depth=2)


def test_planted_exact_representation_decodes_its_level_and_nothing_else():
    emb = random_hierarchy(n_items=600, v=6, m=2, s=2, depth=3, seed=3)
    assert emb.layer_names == ["tokens", "level1", "level2", "level3", "noise"]
    probe = LinearDecodability(targets=["level1_0", "level2_1", "control"], kind="categorical",
                               mlp=False, n_boot=50, shuffled=False)
    res = probe.run(emb, seed=0, progress=False,
                    layers=["level1", "level2", "noise"])
    assert res.metric("accuracy", layer="level1", target="level1_0").value > 0.99
    assert res.metric("accuracy", layer="level2", target="level2_1").value > 0.99
    chance = 1 / 6 + 0.1
    assert res.metric("accuracy", layer="noise", target="level1_0").value < chance
    for layer in ("level1", "level2"):
        assert res.metric("accuracy", layer=layer, target="control").value < chance
    # level 2's one-hot determines only the pair of level 1 latents up to the m = 2 synonyms
    assert res.metric("accuracy", layer="level2", target="level1_0").value < 0.9


def test_rule_groups_separate_invariant_codes_from_token_lookups():
    """Decoding with the node's rule as the group scores it on synonyms the probe never saw:
    the exact latent code still decodes, the tokens (which hold the latent, but as a lookup
    table over rules) fall to chance."""
    emb = random_hierarchy(n_items=1000, v=8, m=4, s=2, depth=2, seed=0)
    probe = LinearDecodability(targets=["level1_0"], group="rule1_0", kind="categorical",
                               mlp=False, n_boot=50, shuffled=False, trivial=False)
    res = probe.run(emb, seed=0, progress=False, layers=["tokens", "level1"])
    assert res.metric("accuracy", layer="level1", target="level1_0").value > 0.99
    assert res.metric("accuracy", layer="tokens", target="level1_0").value < 1 / 8 + 0.1
    # ... while ordinary folds (rules shared between train and test) read the tokens well
    plain = LinearDecodability(targets=["level1_0"], kind="categorical", mlp=False, n_boot=50,
                               shuffled=False, trivial=False)
    res = plain.run(emb, seed=0, progress=False, layers=["tokens"])
    assert res.metric("accuracy", layer="tokens", target="level1_0").value > 0.9


@pytest.mark.parametrize("learner", [TokenLearner, LatentLearner])
def test_learners_train_a_few_steps_and_give_finite_node_vectors(learner):
    rhm = RandomHierarchy(v=5, m=2, s=2, depth=3, seed=0)
    tokens = rhm.sample(64, seed=1)[0]
    model = learner(5, 2, 3, width=8, hidden=16, steps=5, batch_size=16, seed=0).fit(tokens)
    assert model.losses_.shape == (5,) and np.isfinite(model.losses_).all()
    vectors = model.represent(tokens[:10])
    assert [v.shape for v in vectors] == [(10, 8, 8), (10, 4, 8), (10, 2, 8), (10, 1, 8)]
    assert all(np.isfinite(v).all() for v in vectors)
    again = learner(5, 2, 3, width=8, hidden=16, steps=5, batch_size=16, seed=0).fit(tokens)
    assert np.array_equal(again.represent(tokens[:10])[-1], vectors[-1])


def test_ssl_generator_exports_levels_with_latent_columns():
    emb = hierarchy_ssl(learner="latent", n_train=32, n_eval=20, v=5, m=2, s=2, depth=3,
                        width=4, hidden=8, steps=3, batch_size=8, seed=1)
    assert emb.layer_names == ["level1", "level2", "level3"]
    assert (emb.n_items, emb.dim) == (20, 4 * 4)
    # the level 3 node vector fills the first 4 columns; the padding stays zero
    assert np.all(emb.layer("level3")[:, 4:] == 0) and np.any(emb.layer("level3")[:, :4] != 0)
    rhm = RandomHierarchy(v=5, m=2, s=2, depth=3, seed=0)
    tokens = np.stack([emb.items[f"level0_{j}"] for j in range(8)], axis=1)
    parsed = rhm.parse(tokens)
    assert np.array_equal(parsed[2][:, 1], emb.items["level2_1"])
    with pytest.raises(ProbeInputError, match="learner"):
        hierarchy_ssl(learner="pixel", n_train=4, n_eval=4, v=5, m=2, depth=2, steps=1)
