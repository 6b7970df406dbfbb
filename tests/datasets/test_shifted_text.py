import numpy as np
import pytest
import torch

import geoprobe
from geoprobe.datasets.shifted_text import treebank_sentences, treebank_shift


def test_treebank_sentences_are_word_lists():
    sents = treebank_sentences(min_words=5, max_words=12)
    assert len(sents) > 100
    assert all(5 <= len(s) <= 12 for s in sents)


def test_minilm_states_paired_and_sparsity_probe_runs():
    torch.set_num_threads(1)
    emb = treebank_shift(n_sentences=8, seed=1)
    assert emb.shape[0] == 7 and emb.dim == 384
    cond, sent = emb.column("condition"), emb.column("sentence_id")
    # A sentence and its shuffle have the same word pieces, so the same token count.
    for c in ("in-distribution", "word-shuffled"):
        assert (np.bincount(sent[cond == c], minlength=8) > 0).all()
    np.testing.assert_array_equal(np.bincount(sent[cond == "in-distribution"]),
                                  np.bincount(sent[cond == "word-shuffled"]))
    # Layer 0 of a token does not depend on word order except through position embeddings:
    # the multiset of word pieces is the same, so the mean norm barely moves.
    X = emb.layer(0)
    ratio = (np.linalg.norm(X[cond == "word-shuffled"], axis=1).mean()
             / np.linalg.norm(X[cond == "in-distribution"], axis=1).mean())
    assert abs(ratio - 1) < 0.05
    r = geoprobe.make_probe("activation-sparsity", group="sentence_id", n_boot=50,
                            n_perm=20).run(emb, layers=["0", "6"], seed=0, progress=False)
    # The probe's number is the mean over those rows of Hoyer's definition, recomputed here
    # from the norms (a bound like 0 < hoyer < 1 would pass for any constant in between):
    H = emb.layer("6", dtype=np.float64)[cond == "in-distribution"]
    ratio = np.abs(H).sum(1) / np.linalg.norm(H, axis=1)
    hoyer = ((np.sqrt(384) - ratio) / (np.sqrt(384) - 1)).mean()
    m = r.metric("hoyer", layer="6", condition="in-distribution")
    assert m.value == pytest.approx(hoyer, rel=1e-9)
