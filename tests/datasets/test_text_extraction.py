"""Text and JSONL through hooked modules of the offline MiniLM: equal to its hidden states,
pooled rows, the CLI with its twin, and the input errors."""

import json

import numpy as np
import pytest
import torch

from geoprobe import EmbeddingSet, extract_activations, hf
from geoprobe.cli import main as cli_main
from geoprobe.datasets.text import TextTokenizer, read_jsonl, read_text_lines
from geoprobe.errors import FormatError
from geoprobe.source import resolve_source

LINES = ["The cat sat on the mat.", "", "Antidisestablishmentarianism is long.",
         "Dogs bark.", "Tokenization isn't trivial at all, is it?", "Hi"]
LAYERS = "encoder.layer.*.output"


@pytest.fixture(scope="module")
def minilm():
    path = hf.default_model_dir()
    return hf.load_tokenizer(path), hf.load_model(path)


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


def _hidden_states(model, inputs):
    with torch.no_grad():
        return torch.stack(model(**inputs, output_hidden_states=True).hidden_states).numpy()


def test_hooked_layer_outputs_equal_the_hidden_states(minilm, text_file):
    tokenizer, model = minilm
    texts = read_text_lines(text_file)
    assert [t for t, _ in texts] == ["1", "3", "4", "5", "6"]   # line numbers, empty skipped
    tok = TextTokenizer(tokenizer, max_length=512)
    emb = extract_activations(model, tok.batches(texts, batch_size=3), [LAYERS])
    assert emb.layer_names == [f"encoder.layer.{i}.output" for i in range(6)]
    got = np.stack([emb.layer(i) for i in range(6)])
    expected, start = [], 0
    for inputs, items in tok.batches(texts, batch_size=3):
        hidden = _hidden_states(model, inputs)[1:]          # (6, batch, tokens, 384)
        real = inputs["attention_mask"].numpy().astype(bool)
        expected.append(hidden[:, real])                     # real tokens, row-major order
        n = int(real.sum())
        assert emb.items["token"][start:start + n].tolist() == items["token"][real].tolist()
        start += n
    expected = np.concatenate(expected, axis=1)
    assert got.shape == expected.shape == (6, start, 384)
    print("max abs difference hooks vs output_hidden_states:", np.abs(got - expected).max())
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    first = emb.items["text_id"] == "1"
    assert emb.items["token"][first].tolist() == ["[CLS]", "the", "cat", "sat", "on", "the",
                                                  "mat", ".", "[SEP]"]
    assert emb.items["special"][first].tolist() == [True] + [False] * 7 + [True]
    assert emb.ids[first][:2].tolist() == ["1:0", "1:1"]


def test_pooled_rows_are_masked_means_of_the_hidden_states(minilm, text_file):
    tokenizer, model = minilm
    texts = read_text_lines(text_file)
    tok = TextTokenizer(tokenizer, max_length=512, pool="mean")
    emb = extract_activations(model, tok.batches(texts, batch_size=8), [LAYERS], pool="mean")
    (inputs, _), = tok.batches(texts, batch_size=8)
    hidden = _hidden_states(model, inputs)[1:]
    m = inputs["attention_mask"].numpy().astype(np.float32)
    mean = (hidden * m[None, :, :, None]).sum(2) / m.sum(1)[None, :, None]
    np.testing.assert_allclose(np.stack([emb.layer(i) for i in range(6)]), mean, atol=1e-6)
    assert emb.ids.tolist() == ["1", "3", "4", "5", "6"]
    assert emb.items["text"][2] == "Dogs bark." and emb.items["n_tokens"][4] == 3


def test_long_texts_are_truncated_with_a_warning(minilm):
    tokenizer, model = minilm
    tok = TextTokenizer(tokenizer, max_length=6)
    with pytest.warns(UserWarning, match="text 7 has 12 tokens.*truncated"):
        emb = extract_activations(model, tok.batches([("7", "one two three four five six "
                                                            "seven eight nine ten")]), [LAYERS])
    assert emb.n_items == 6 and tok.truncated == ["7"]


def test_cli_text_with_twin(tmp_path, text_file, minilm, capsys):
    out = tmp_path / "tok.gpemb"
    assert cli_main(["extract", "--text", str(text_file), "--modules", LAYERS,
                     "--out", str(out), "--seed", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    source = resolve_source(EmbeddingSet.open(out), twin="auto")
    emb, twin = source.embeddings, source.twin
    assert emb.layer_names == twin.layer_names == [f"encoder.layer.{i}.output" for i in range(6)]
    assert np.array_equal(emb.ids, twin.ids) and emb.n_items == 2 * 5 + sum(
        len(minilm[0].tokenize(x)) for x in LINES if x)
    assert emb.provenance["modules"] == twin.provenance["modules"]
    assert emb.provenance["random_init"] is False and twin.provenance["random_init"] is True
    assert twin.provenance["seed"] == 2 and emb.provenance["twin_seed"] == 2
    assert emb.provenance["source"] == str(text_file.resolve())
    assert not np.allclose(twin.layer(5), emb.layer(5), atol=0.1)
    # the twin is the seeded random-init model through the same modules
    same = extract_activations(hf.load_model(hf.default_model_dir(), random_init=True, seed=2),
                               TextTokenizer(minilm[0], max_length=512).batches(
                                   read_text_lines(text_file)), [LAYERS])
    np.testing.assert_allclose(twin.layer(5), same.layer(5), atol=1e-5)


def test_cli_jsonl_pooled(tmp_path, capsys):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"id": i, "body": s}) for i, s in
                              enumerate(["A cat.", "Two dogs bark."])) + "\n")
    out = tmp_path / "docs.gpemb"
    assert cli_main(["extract", "--jsonl", str(path), "--field", "body", "--modules",
                     "encoder.layer.5.output", "--pool", "first", "--no-twin",
                     "--out", str(out)]) == 0
    emb = EmbeddingSet.open(out)
    assert emb.shape == (1, 2, 384) and emb.items["text"].tolist() == ["A cat.", "Two dogs bark."]
    assert emb.provenance["pooling"] == "first" and "twin" not in emb.provenance


def test_input_errors(tmp_path, text_file, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"body": "ok"}\n{"other": 1}\n')
    with pytest.raises(FormatError, match=r"bad.jsonl line 2: no string field 'body'"):
        read_jsonl(bad, "body")
    bad.write_text('{"body": "ok"}\nnot json\n')
    with pytest.raises(FormatError, match="line 2: not JSON"):
        read_jsonl(bad, "body")
    out = str(tmp_path / "x.gpemb")
    cases = [(["--text", str(text_file)], "needs --modules"),
             (["--text", str(text_file), "--modules", "encoder.blocks.*"],
              "'encoder.blocks.*' matches no submodule of BertModel; its modules include"),
             (["--jsonl", str(bad), "--modules", LAYERS], "--jsonl and --field"),
             (["--split", "dev", "--pool", "mean"], "go with --text or --jsonl")]
    for args, message in cases:
        assert cli_main(["extract", *args, "--no-twin", "--out", out]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.gpemb").exists()
