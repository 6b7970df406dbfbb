"""WordNet vocabularies for a tokenizer or a word list, and vectors from a model or a file."""

import numpy as np
import pytest

from geoprobe import hf
from geoprobe.datasets.wordvectors import (
    contextual_vectors, embedding_rows, read_word_vectors, wordnet_embeddings, wordnet_vocabulary,
)
from geoprobe.errors import FormatError, GeoprobeError


@pytest.fixture(scope="module")
def minilm():
    path = hf.model_dir()
    return hf.load_model(path), hf.load_tokenizer(path), path


@pytest.fixture(scope="module")
def vocab(minilm):
    return wordnet_vocabulary(minilm[1], monosemous=False)


def test_tokenizer_vocabulary(minilm, vocab):
    _, tok, _ = minilm
    words = vocab["word"].tolist()
    assert len(words) > 5000 and words == sorted(words)
    # every word is exactly its own single token
    enc = tok(words, add_special_tokens=False)["input_ids"]
    assert all(len(e) == 1 for e in enc)
    np.testing.assert_array_equal([e[0] for e in enc], vocab["token_id"])
    i = words.index("dog")
    assert vocab["synset"][i] == "dog.n.01" and vocab["n_senses"][i] == 7
    assert all(w.isalpha() for w in words)


def test_monosemous_subset(minilm, vocab):
    mono = wordnet_vocabulary(minilm[1], monosemous=True)
    assert (mono["n_senses"] == 1).all()
    assert set(mono["word"]) == set(vocab["word"][vocab["n_senses"] == 1])
    assert "dog" not in set(mono["word"])


def test_word_list_vocabulary_and_vector_file(tmp_path):
    path = tmp_path / "vecs.txt"
    path.write_text("3 2\nAardvark 1 2\ndog 3 4\nqwzx 5 6\n")
    words, X = read_word_vectors(path)
    assert words.tolist() == ["Aardvark", "dog", "qwzx"] and X.shape == (3, 2)
    v = wordnet_vocabulary(words=words, monosemous=False)
    assert v["word"].tolist() == ["Aardvark", "dog"]
    assert v["synset"].tolist() == ["aardvark.n.01", "dog.n.01"]
    emb = wordnet_embeddings(word_vectors=str(path), monosemous=False)
    np.testing.assert_array_equal(emb.layer(0), [[1, 2], [3, 4]])
    assert emb.column("synset").tolist() == ["aardvark.n.01", "dog.n.01"]
    path.write_text("dog 3 4\ncat 1\n")
    with pytest.raises(FormatError, match="vecs.txt line 2: 1 values, expected 2"):
        read_word_vectors(path)


def test_vectors_from_the_model(minilm, vocab):
    net, tok, _ = minilm
    ids = vocab["token_id"][:5]
    X = embedding_rows(net, ids)
    np.testing.assert_allclose(X, net.get_input_embeddings().weight.detach().numpy()[ids])
    with pytest.raises(GeoprobeError, match="no output .unembedding. matrix"):
        embedding_rows(net, ids, "output")
    C = contextual_vectors(net, tok, ids, templates=("the {} .",))
    assert C.shape == (net.config.num_hidden_layers + 1, 5, X.shape[1])
    assert np.isfinite(C).all() and not np.allclose(C[1], C[-1])
    # the template puts each word in the same slot: other words, other states
    assert not np.allclose(C[-1, 0], C[-1, 1])
    with pytest.raises(GeoprobeError, match="exactly once"):
        contextual_vectors(net, tok, ids, templates=("no slot",))


def test_output_matrix_of_a_model_with_a_head(vocab):
    # BERT's MLM decoder is tied to the input embeddings: MiniLM's output matrix is its
    # trained input matrix even though the checkpoint lacks the head's transform layers
    ids = vocab["token_id"][:4]
    for kwargs in ({}, {"random_init": True, "seed": 0}):
        net = hf.load_model(hf.model_dir(), head=True, **kwargs)
        np.testing.assert_array_equal(embedding_rows(net, ids, "output"),
                                      embedding_rows(net, ids, "input"))
