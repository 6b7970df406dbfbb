"""World-model probes on planted truth: an oracle model that reads the object's position from
the pixels and predicts with the true (wall-free) dynamics: the library's own
OracleWorldModel, which the probes' example inputs use too."""

import numpy as np
import pytest

from geoprobe import EmbeddingSet
from geoprobe.errors import ProbeInputError
from geoprobe.probes.worldmodel import (LatentPlanning, OracleWorldModel as OracleModel,
                                        TemporalStraightness, VoESurprise)


def _dummy_set():
    return EmbeddingSet(np.zeros((4, 2), np.float32), {"episode": np.zeros(4, int),
                                                       "t": np.arange(4)})


def test_voe_flags_teleport_not_colour():
    r = VoESurprise(n_episodes=24, steps=8, event_t=4, n_boot=200).run(
        _dummy_set(), model=OracleModel(), seed=0, progress=False)
    assert r.metric("p_value", condition="teleport").value < 0.01
    assert r.metric("surprise_ratio", condition="teleport").value > 5
    assert r.metric("surprise_increase", condition="teleport").ci_low > 0
    # colour does not move the centroid: no extra surprise
    inc = r.metric("surprise_increase", condition="colour")
    assert abs(inc.value) < 0.05 * r.metric("surprise_increase", condition="teleport").value
    assert r.info["significant_teleport"] and not r.info["significant_colour"]
    r.plot()


def test_planning_beats_random_with_oracle():
    r = LatentPlanning(n_pairs=16, goal_steps=5, budget=8, n_samples=32, n_elites=4,
                       n_iters=2, n_boot=200).run(_dummy_set(), model=OracleModel(), seed=0,
                                                  progress=False)
    plan = r.metric("success_rate")
    rand = r.metric("success_rate", baseline="random-actions")
    assert plan.value >= 0.6 and plan.value > rand.value
    assert r.metric("final_distance").value < r.metric(
        "final_distance", baseline="random-actions").value
    r.plot()


def test_model_probes_need_a_model():
    with pytest.raises(ProbeInputError, match=r"'voe-surprise' needs a world model: pass "
                       r"model=\.\.\. or use an export .*names none"):
        VoESurprise().run(_dummy_set(), seed=0)


def _episodes(kind, n_eps=30, steps=12, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = []
    for _ in range(n_eps):
        if kind == "straight":
            v = rng.standard_normal(d)
            X.append(np.arange(steps)[:, None] * v + 0.01 * rng.standard_normal((steps, d)))
        else:
            X.append(np.cumsum(rng.standard_normal((steps, d)), 0))
    ep = np.repeat(np.arange(n_eps), steps)
    t = np.tile(np.arange(steps), n_eps)
    perm = rng.permutation(len(ep))  # row order must not matter
    X = np.concatenate(X)[perm]
    return EmbeddingSet(X.astype(np.float32), {"episode": ep[perm], "t": t[perm],
                                               "sx": X[:, 0].astype(float),
                                               "sy": X[:, 1].astype(float)})


def test_straightness_recovers_planted_values():
    probe = TemporalStraightness(n_boot=200, reference=("sx", "sy"))
    straight = probe.run(_episodes("straight"), seed=0, progress=False)
    walk = probe.run(_episodes("walk"), seed=0, progress=False)
    s = straight.metric("straightness", layer="0")
    assert s.value > 0.99
    w = walk.metric("straightness", layer="0")
    assert w.ci_low < 0 < w.ci_high + 0.1 and abs(w.value) < 0.15
    sh = straight.metric("straightness", layer="0", baseline="shuffled-time")
    assert sh.value < 0
    assert straight.metric("straightness", layer="0", baseline="true-state").value > 0.99
    straight.plot()


def test_bad_input_is_named():
    emb = EmbeddingSet(np.zeros((4, 2), np.float32), {"ep": np.zeros(4, int)})
    with pytest.raises(ProbeInputError, match="episode"):
        TemporalStraightness().run(emb, seed=0)
    with pytest.raises(ProbeInputError, match="event_t"):
        VoESurprise(steps=6, event_t=1).run(_dummy_set(), model=OracleModel(), seed=0)

