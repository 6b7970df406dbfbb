"""linear-decodability on a real model: MiniLM word vectors of EWT dev, with its random twin."""

import runpy
from pathlib import Path

import numpy as np
import pytest

from geoprobe.probes.decodability import LinearDecodability

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "decodability_minilm.py"


@pytest.fixture(scope="module")
def minilm_sets():
    ex = runpy.run_path(str(EXAMPLE), run_name="decodability_minilm")
    return ex["build_sets"](ex["default_dev"](), 30, 0)


def test_upos_decodable_selective_and_above_random_init(minilm_sets):
    emb, twin = minilm_sets
    assert emb.shape == twin.shape and emb.shape[0] == 7 and emb.dim == 384
    assert np.array_equal(emb.items["upos"], twin.items["upos"])
    res = LinearDecodability(targets=["upos"], group="sentence_id", control="word", mlp=False,
                             rare_classes="drop", n_boot=200).run(
        emb, layers=["3"], twin=twin, seed=0, progress=False)
    g = dict(layer="3", target="upos")
    acc = res.metric("accuracy", **g)
    majority = res.metric("accuracy", baseline="majority", **g).value
    assert acc.ci_low > majority + 0.3
    assert res.metric("selectivity", **g).ci_low > 0
    assert acc.value > res.metric("accuracy", baseline="random-init", **g).value
    assert res.metric("accuracy", baseline="shuffled", **g).ci_high < majority + 0.1
