"""Extraction: sub-word means against a manual computation, long sentences, round trip."""

import sys

import numpy as np
import pytest
import torch

from geoprobe import EmbeddingSet
from geoprobe.cli import main as cli_main
from geoprobe.datasets import extraction
from geoprobe.datasets.extraction import WordEncoder, extract_treebank, treebank_lm
from geoprobe.datasets.treebank import default_treebank_path, read_conllu
from geoprobe.errors import GeoprobeError
from geoprobe.source import resolve_source, twin_path

SENTENCES = [
    ["Unbelievably", ",", "the", "antidisestablishmentarian", "cat", "snored", "."],
    ["Tokenization", "isn't", "trivial"],
]


@pytest.fixture(scope="module")
def encoder():
    return WordEncoder()


def _manual_word_means(encoder, words):
    """Each word's tokens found by tokenizing the words one at a time (no word_ids), then a
    plain loop over the hidden states of the sentence run alone."""
    tok = encoder.tokenizer
    pieces = [tok.tokenize(w) for w in words]
    ids = [tok.cls_token_id] + [i for p in pieces for i in tok.convert_tokens_to_ids(p)] + [
        tok.sep_token_id]
    with torch.inference_mode():
        out = encoder.model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    hidden = torch.stack(out.hidden_states)[:, 0]            # (layers, tokens, dim)
    means, start = [], 1
    for p in pieces:
        means.append(hidden[:, start:start + len(p)].mean(dim=1))
        start += len(p)
    return torch.stack(means, dim=1).numpy(), [len(p) for p in pieces]


def test_subword_means_match_manual_computation(encoder):
    vectors, rows, notes = encoder.encode(SENTENCES, names=["a", "b"])
    assert vectors.shape == (7, sum(map(len, SENTENCES)), 384)
    assert encoder.layer_names == ["embeddings"] + [f"layer_{i}" for i in range(1, 7)]
    assert [r.tolist() for r in rows] == [list(range(len(s))) for s in SENTENCES]
    assert notes == {"skipped": [], "truncated": [], "unknown_words": []}
    start = 0
    for words in SENTENCES:
        manual, n_pieces = _manual_word_means(encoder, words)
        assert max(n_pieces) > 1  # the test needs words split into several sub-words
        got = vectors[:, start:start + len(words)]
        # batched with padding vs alone: equal up to float32 attention round-off
        np.testing.assert_allclose(got, manual, atol=2e-4, rtol=1e-4)
        start += len(words)


def test_long_sentences_skip_truncate_or_error():
    enc = WordEncoder(max_length=12)
    long = ["antidisestablishmentarianism"] * 3 + ["cat"] * 2
    batch, names = [["a", "cat"], long], ["short", "long"]
    with pytest.warns(UserWarning, match="'long'.*skipped"):
        v, rows, notes = enc.encode(batch, names=names, long_sentences="skip")
    assert notes["skipped"] == ["long"] and v.shape[1] == 2 and rows[1].size == 0
    with pytest.warns(UserWarning, match="'long'.*truncated"):
        v, rows, notes = enc.encode(batch, names=names, long_sentences="truncate")
    n_pieces = len(enc.tokenizer.tokenize(long[0]))
    whole = (12 - 2) // n_pieces   # words whose every sub-word fits between [CLS] and [SEP]
    assert rows[1].tolist() == list(range(whole)) and v.shape[1] == 2 + whole
    # the embedding layer is context-free: the kept words are exactly those of the prefix
    # (deeper layers also saw the cut word's first sub-words, so they differ)
    alone, _, _ = enc.encode([long[:whole]])
    np.testing.assert_allclose(v[0, 2:], alone[0], atol=1e-5)
    with pytest.raises(GeoprobeError, match="'long'"):
        enc.encode(batch, names=names, long_sentences="error")


def test_word_without_tokens_becomes_unknown(encoder):
    with pytest.warns(UserWarning, match="no sub-word token"):
        v, rows, notes = encoder.encode([["a", "\u200b", "b"]], names=["z"])
    assert notes["unknown_words"] == ["z"] and rows[0].tolist() == [0, 1, 2]
    assert np.isfinite(v).all()


def test_real_extraction_round_trips_with_twin(tmp_path, encoder):
    out = tmp_path / "dev.gpemb"
    extract_treebank(out, split="dev", max_sentences=20, batch_size=8, dtype="float16",
                     seed=3, show_progress=False)
    emb = EmbeddingSet.open(out)
    sents = read_conllu(default_treebank_path("dev"), max_sentences=20)
    n = sum(s.n for s in sents)
    assert emb.shape == (7, n, 384) and emb.layer(0).dtype == np.float16
    s = sents[4]
    rows = np.flatnonzero(emb.items["sentence_id"] == s.sent_id)
    assert emb.items["word"][rows].tolist() == s.words
    assert emb.items["head"][rows].tolist() == s.heads.tolist()
    assert emb.items["deprel"][rows].tolist() == s.deprels
    assert emb.items["position"][rows].tolist() == list(range(s.n))
    assert emb.items["item_id"][rows[2]] == f"{s.sent_id}:2"
    assert set(emb.items["split"]) == {"dev"} and (emb.items["n_words"][rows] == s.n).all()
    direct, _, _ = encoder.encode([s.words])
    stored = np.stack([emb.layer(i)[rows] for i in range(7)]).astype(np.float32)
    np.testing.assert_allclose(stored, direct, atol=2e-3, rtol=2e-3)  # float16 storage

    prov = emb.provenance
    assert prov["pooling"] == "mean-subword" and prov["dtype"] == "float16"
    assert len(prov["checkpoint_sha256"]) == 64 and prov["random_init"] is False
    assert prov["layer_names"][0] == "embeddings" and prov["twin"] == "dev.random-init.gpemb"
    assert prov["twin_seed"] == 3
    twin = resolve_source(emb, twin="auto").twin
    assert twin.provenance["random_init"] is True and twin.provenance["seed"] == 3
    assert np.array_equal(twin.ids, emb.ids)
    assert not np.allclose(twin.layer(6), emb.layer(6), atol=0.1)
    same = WordEncoder(random_init=True, seed=3).encode([s.words])[0]
    np.testing.assert_allclose(np.stack([twin.layer(i)[rows] for i in range(7)]).astype(
        np.float32), same, atol=2e-3, rtol=2e-3)


def test_generator_extracts_into_workdir_and_reuses(tmp_path, monkeypatch):
    emb = treebank_lm(split="dev", max_sentences=5, twin=False, seed=0, workdir=tmp_path)
    assert emb.n_items == sum(s.n for s in read_conllu(default_treebank_path("dev"),
                                                       max_sentences=5))
    assert (tmp_path / "dev.gpemb").is_dir()
    ref = np.array(emb.layer(-1))   # read now: a rebuild below replaces the set on disk

    def boom(*a, **k):
        raise AssertionError("re-extracted although the same run had the set")
    monkeypatch.setattr(extraction, "extract_treebank", boom)
    again = treebank_lm(split="dev", max_sentences=5, twin=False, seed=0, workdir=tmp_path)
    assert np.array_equal(again.ids, emb.ids)
    with pytest.raises(AssertionError, match="re-extracted"):
        treebank_lm(split="dev", max_sentences=6, twin=False, seed=0, workdir=tmp_path)
    with pytest.raises(AssertionError, match="re-extracted"):   # the precision is in the key
        treebank_lm(split="dev", max_sentences=5, twin=False, workdir=tmp_path,
                    precision="bfloat16")
    monkeypatch.undo()
    with pytest.raises(GeoprobeError, match="device 'cuda:99' is not available"):
        treebank_lm(split="dev", max_sentences=5, twin=False, workdir=tmp_path,
                    device="cuda:99")
    half = treebank_lm(split="dev", max_sentences=5, twin=False, workdir=tmp_path,
                       precision="bfloat16")
    assert half.provenance["precision"] == "bfloat16"
    # bfloat16 keeps ~3 significant digits: close to the float32 vectors, not equal
    diff = np.abs(half.layer(-1) - ref).max()
    assert 0 < diff < 0.1 * np.abs(ref).max()


def test_cli_extract_and_errors(tmp_path, capsys):
    out = tmp_path / "cli.gpemb"
    assert cli_main(["extract", "--split", "dev", "--max-sentences", "3", "--no-twin",
                     "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and twin_path(EmbeddingSet.open(out)) is None
    assert cli_main(["extract", "--treebank", str(tmp_path / "none.conllu"),
                     "--out", str(tmp_path / "x")]) == 2
    assert "none.conllu" in capsys.readouterr().err
    assert cli_main(["extract", "--model", str(tmp_path), "--split", "dev",
                     "--out", str(tmp_path / "y")]) == 2
    assert "config.json" in capsys.readouterr().err


def test_missing_transformers_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(GeoprobeError, match="pip install 'geoprobe\\[lm\\]'"):
        WordEncoder()


def test_any_model_directory_byte_level_bpe(tmp_path):
    """A tiny GPT-2-style directory (byte-level BPE, no [CLS]/[SEP], no pad token): the
    words' sub-word means still match a manual computation."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2Model, GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["the cat sat on the mat", "dogs bark loudly at night"] * 5,
                            vocab_size=280, min_frequency=1, special_tokens=["<|endoftext|>"])
    special = "<|endoftext|>"
    GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=special, bos_token=special,
                      unk_token=special).save_pretrained(tmp_path)
    torch.manual_seed(0)
    GPT2Model(GPT2Config(vocab_size=bpe.get_vocab_size(), n_layer=2, n_embd=16, n_head=2,
                         n_positions=32, bos_token_id=0, eos_token_id=0)).save_pretrained(tmp_path)

    enc = WordEncoder(tmp_path)
    assert enc.layer_names == ["embeddings", "layer_1", "layer_2"] and enc.max_length == 32
    batch = [["dogs", "sat"], ["the", "mattress", "barked", "loudly"]]
    vectors, rows, _ = enc.encode(batch)
    words = batch[1]
    pieces = [bpe.encode(" " + w).ids for w in words]   # the raw BPE, not the HF wrapper
    assert max(map(len, pieces)) > 1
    with torch.inference_mode():
        out = enc.model(input_ids=torch.tensor([sum(pieces, [])]), output_hidden_states=True)
    hidden = torch.stack(out.hidden_states)[:, 0]
    bounds = np.cumsum([0] + [len(p) for p in pieces])
    manual = torch.stack([hidden[:, a:b].mean(1) for a, b in zip(bounds[:-1], bounds[1:])], 1)
    np.testing.assert_allclose(vectors[:, 2:], manual.numpy(), atol=1e-5)


def test_hooked_modules_give_the_same_word_vectors_as_hidden_states(tmp_path, encoder, capsys):
    # BertLayer's `output` submodule returns the layer's hidden state: hooked word means must
    # equal the hidden-state word means of layers 1..6, and the set opens only once it has rows
    hooked = WordEncoder(modules=["encoder.layer.*.output"])
    assert hooked.dim is None and hooked.layer_names == [f"encoder.layer.{i}.output"
                                                         for i in range(6)]
    want, rows, _ = encoder.encode(SENTENCES)
    got, got_rows, _ = hooked.encode(SENTENCES)
    np.testing.assert_allclose(got, want[1:], atol=1e-5)
    assert [r.tolist() for r in got_rows] == [r.tolist() for r in rows]
    out = tmp_path / "hooked.gpemb"
    assert cli_main(["extract", "--split", "dev", "--max-sentences", "3", "--out", str(out),
                     "--modules", "encoder.layer.*.output"]) == 0
    emb = EmbeddingSet.open(out)
    assert emb.layer_names == hooked.layer_names and emb.dim == 384
    assert emb.provenance["modules"] == hooked.layer_names
    twin = EmbeddingSet.open(twin_path(emb))
    assert twin.layer_names == emb.layer_names and twin.provenance["random_init"]
    assert not np.allclose(twin.layer(0), emb.layer(0))
    capsys.readouterr()
    with pytest.raises(GeoprobeError, match=r"'pooler' outputs shape \(2, 384\); word vectors"):
        WordEncoder(modules=["pooler"]).encode(SENTENCES)
