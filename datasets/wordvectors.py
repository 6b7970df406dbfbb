"""WordNet noun vocabularies for a tokenizer or a word list, and vectors for them.

Vocabulary (:func:`wordnet_vocabulary`)
    The WordNet noun lemmas a model can represent with one vector. For a tokenizer: lemmas that
    encode to exactly one token (multi-word lemmas never do); lemmas that map to the same token
    (``Paris`` and ``paris`` for an uncased tokenizer) are merged. For a word list (a
    word-vector file): lemmas equal to a listed word, case-folded unless ``lowercase=False``.
    A word's senses are the union of its lemmas' noun synsets; *monosemous* words have exactly
    one (Nava & Wyart 2026 keep only those). A polysemous word is placed at the first sense,
    in WordNet's frequency order, of the lemma spelled exactly like the word (else the first
    such lemma). ``alphabetic=True`` (default) keeps only purely alphabetic words, dropping
    numbers and punctuation lemmas such as ``.22``.

Vectors
    :func:`embedding_rows` (the model's input embedding matrix, or its output / unembedding
    matrix), :func:`contextual_vectors` (hidden states of every layer at the word's position,
    averaged over a few neutral templates), :func:`read_word_vectors` (GloVe / word2vec text).

:func:`wordnet_embeddings` puts these together into an :class:`~geoprobe.EmbeddingSet` with the
columns ``item_id``, ``word``, ``synset``, ``n_senses`` (and ``token_id``); it is the
``wordnet-embeddings`` generator suites use, and by default also writes the random-init twin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geoprobe import hf
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import FormatError, GeoprobeError
from geoprobe.stats import as_generator, child_seed

#: neutral contexts for :func:`contextual_vectors`; ``{}`` is the word
DEFAULT_TEMPLATES = ("{}", "the {} .", "a {} is here .", "this is about the {} .")


def _lemma_table(path=None):
    from geoprobe.datasets.wordnet import noun_data

    d = noun_data(path)
    return d["lemmas"], d["lemma_synsets"], d["lemma_offsets"], d["names"]


def wordnet_vocabulary(tokenizer=None, *, words=None, monosemous: bool = True,
                       alphabetic: bool = True, lowercase: bool = True, prefix: str = "",
                       path=None) -> dict[str, np.ndarray]:
    """WordNet noun words a tokenizer (or a word list) represents as single units.

    Parameters
    ----------
    tokenizer : a Hugging Face tokenizer, or None when ``words`` is given
    words : sequence of str (e.g. the rows of a word-vector file)
    monosemous : keep only words with exactly one noun sense
    alphabetic : keep only words made of letters
    lowercase : with ``words``, match case-insensitively
    prefix : text put before each lemma when tokenizing (``" "`` for byte-level BPE
        tokenizers, whose in-sentence words carry a leading space)
    path : WordNet location (see :func:`geoprobe.datasets.wordnet.load_wordnet`)

    Returns a dict of arrays of shape (n_words,), sorted by word: ``word`` (str, the token or
    the listed word), ``synset`` (str), ``n_senses`` (int) and, with a tokenizer, ``token_id``.
    """
    lemmas, lemma_synsets, offsets, names = _lemma_table(path)
    spelled = np.array([lem.replace("_", " ") for lem in lemmas.tolist()], dtype=object)
    if tokenizer is not None:
        # Multi-word lemmas are never one token; non-alphabetic ones are dropped anyway.
        cand = np.array([("_" not in s) and (not alphabetic or s.isalpha())
                         for s in lemmas.tolist()], dtype=bool)
        cand_idx = np.flatnonzero(cand)
        enc = tokenizer([prefix + s for s in spelled[cand_idx].tolist()],
                        add_special_tokens=False)["input_ids"]
        single = np.array([len(ids) == 1 for ids in enc], dtype=bool)
        lemma_idx = cand_idx[single]
        enc = [e for e, ok in zip(enc, single.tolist()) if ok]
        ids = np.array([e[0] for e in enc], dtype=np.int64)
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        ok = np.array([i not in special for i in ids.tolist()], dtype=bool)
        lemma_idx, ids = lemma_idx[ok], ids[ok]
        tokens = np.array(tokenizer.convert_ids_to_tokens(ids.tolist()), dtype=object)
        keys = np.array([t.lstrip("Ġ▁") for t in tokens.tolist()], dtype=object)
    elif words is not None:
        fold = (lambda s: s.lower()) if lowercase else (lambda s: s)
        wanted = {fold(str(w)): str(w) for w in words}
        lemma_idx = np.array([i for i, s in enumerate(spelled.tolist()) if fold(s) in wanted],
                             dtype=np.int64)
        keys = np.array([wanted[fold(spelled[i])] for i in lemma_idx.tolist()], dtype=object)
        ids = None
    else:
        raise GeoprobeError("wordnet_vocabulary needs a tokenizer or a list of words")
    if alphabetic:
        ok = np.array([k.isalpha() for k in keys.tolist()], dtype=bool)
        lemma_idx, keys = lemma_idx[ok], keys[ok]
        ids = ids[ok] if ids is not None else None
    uniq, key_code = np.unique(keys.astype(str), return_inverse=True)
    # Senses of each key: the union of its lemmas' synsets.
    n_sense_per_lemma = offsets[lemma_idx + 1] - offsets[lemma_idx]
    pair_key = np.repeat(key_code, n_sense_per_lemma)
    starts = offsets[lemma_idx]
    pair_syn = lemma_synsets[np.repeat(starts - np.cumsum(n_sense_per_lemma) + n_sense_per_lemma,
                                       n_sense_per_lemma) + np.arange(n_sense_per_lemma.sum())]
    pairs = np.unique(np.stack([pair_key, pair_syn], 1), axis=0)
    n_senses = np.bincount(pairs[:, 0], minlength=uniq.size)
    # The word's place: first sense of its exactly-spelled lemma (else its first lemma).
    exact = np.array([spelled[i] == k for i, k in zip(lemma_idx.tolist(), keys.tolist())])
    pick = np.lexsort((lemma_idx, ~exact, key_code))
    first = np.ones(pick.size, bool)
    first[1:] = key_code[pick][1:] != key_code[pick][:-1]
    chosen = pick[first]  # one lemma per key, in key order
    synset = names[lemma_synsets[offsets[lemma_idx[chosen]]]]
    out = {"word": uniq.astype(object), "synset": np.asarray(synset, dtype=object),
           "n_senses": n_senses.astype(np.int64)}
    if ids is not None:
        out["token_id"] = ids[chosen]
    if monosemous:
        keep = n_senses == 1
        out = {k: v[keep] for k, v in out.items()}
    return out


def embedding_rows(model, token_ids, which: str = "input") -> np.ndarray:
    """Rows of the input embedding matrix or the output (unembedding) matrix.

    token_ids : int array of shape (n,). Returns float32 (n, d).
    """
    import torch

    if which == "input":
        module = model.get_input_embeddings()
    elif which == "output":
        module = model.get_output_embeddings()
        if module is None:
            raise GeoprobeError(f"{type(model).__name__} has no output (unembedding) matrix; "
                                "load the model with its LM head (geoprobe.hf.load_model(path, head=True))")
    else:
        raise GeoprobeError(f"which={which!r}: expected 'input' or 'output'")
    with torch.no_grad():
        return module.weight[torch.as_tensor(np.asarray(token_ids))].float().numpy()


def contextual_vectors(model, tokenizer, token_ids, *, templates=DEFAULT_TEMPLATES,
                       batch_size: int = 512) -> np.ndarray:
    """Hidden states at the word's position, averaged over ``templates``, at every layer.

    token_ids : int array of shape (n,), single-token words. Each template (``"the {} ."``) is
    tokenized once around the word, so all words share one sequence layout and run in
    batches. Returns float32 (n_layers + 1, n, d): layer 0 is the embedding output.
    """
    import torch

    token_ids = np.asarray(token_ids, dtype=np.int64)
    total = None
    for template in templates:
        if template.count("{}") != 1:
            raise GeoprobeError(f"template {template!r} must contain '{{}}' exactly once")
        # Tokenize around a special placeholder token, then put each word in its slot.
        slot = tokenizer.mask_token or tokenizer.unk_token or tokenizer.eos_token
        layout = tokenizer(template.format(slot))["input_ids"]
        slot_id = tokenizer.convert_tokens_to_ids(slot)
        if layout.count(slot_id) != 1:
            raise GeoprobeError(f"template {template!r}: cannot locate the word's position")
        pos = layout.index(slot_id)
        acc = None
        for start in range(0, token_ids.size, batch_size):
            chunk = token_ids[start:start + batch_size]
            ids = np.tile(np.array(layout, dtype=np.int64), (chunk.size, 1))
            ids[:, pos] = chunk
            with torch.no_grad():
                out = model(input_ids=torch.as_tensor(ids),
                            attention_mask=torch.ones(ids.shape, dtype=torch.long),
                            output_hidden_states=True)
            states = torch.stack([h[:, pos] for h in out.hidden_states]).float().numpy()
            acc = states if acc is None else np.concatenate([acc, states], axis=1)
        total = acc if total is None else total + acc
    return (total / len(templates)).astype(np.float32)


def read_word_vectors(path, *, words=None) -> tuple[np.ndarray, np.ndarray]:
    """Read a GloVe / word2vec text file (``word v1 ... vd`` per line, optional ``n d`` header).

    words : optional set of words to keep (others are skipped while reading).
    Returns ``(words (n,) object array, vectors (n, d) float32)``.
    """
    path = Path(path)
    keep = set(words) if words is not None else None
    out_words, rows, dim = [], [], None
    try:
        fh = path.open(encoding="utf-8", errors="strict")
    except OSError as exc:
        raise FormatError(f"{path}: cannot read word vectors ({exc.strerror})") from None
    with fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            elif len(parts) - 1 != dim:
                raise FormatError(f"{path} line {lineno}: {len(parts) - 1} values, expected "
                                  f"{dim} (word {parts[0]!r})")
            if keep is not None and parts[0] not in keep:
                continue
            try:
                rows.append(np.array(parts[1:], dtype=np.float32))
            except ValueError:
                raise FormatError(f"{path} line {lineno}: non-numeric value for word "
                                  f"{parts[0]!r}") from None
            out_words.append(parts[0])
    if not rows:
        raise FormatError(f"{path}: no word vectors read")
    return np.array(out_words, dtype=object), np.stack(rows)


def wordnet_embeddings(model: str | None = None, vectors: str = "input",
                       monosemous: bool = True, max_words: int | None = None,
                       word_vectors: str | None = None, twin: bool = True,
                       templates=DEFAULT_TEMPLATES, seed: int = 0,
                       workdir=None) -> EmbeddingSet:
    """WordNet noun words with vectors from a model (the ``wordnet-embeddings`` generator).

    Parameters
    ----------
    model : local Hugging Face model directory (default: the offline MiniLM)
    vectors : "input" (input embedding matrix), "output" (unembedding matrix),
        "contextual" (mean hidden states over templates; one layer per model layer)
    monosemous : keep only monosemous words
    max_words : keep a seeded random sample of this many words (None: all)
    word_vectors : a GloVe / word2vec text file instead of a model (no twin then)
    twin : also build the random-init twin (same architecture, fresh weights) and record it
        in the provenance; needs ``workdir`` (suites pass one), skipped without it
    seed : seeds the word sample and the twin's weights
    workdir : scratch directory where the twin is saved

    Returns an EmbeddingSet of shape (n_layers, n_words, d) with columns ``item_id`` (the
    word), ``word``, ``synset``, ``n_senses`` and, for models, ``token_id``.
    """
    rng = as_generator(seed)
    if word_vectors is not None:
        file_words, _ = read_word_vectors(word_vectors)
        vocab = wordnet_vocabulary(words=file_words.tolist(), monosemous=monosemous)
    else:
        if vectors not in ("input", "output", "contextual"):
            raise GeoprobeError(f"vectors={vectors!r}: expected 'input', 'output' or "
                                "'contextual'")
        path = hf.model_dir(model)
        tokenizer = hf.load_tokenizer(path)
        net = hf.load_model(path, head=vectors == "output")
        vocab = wordnet_vocabulary(tokenizer, monosemous=monosemous)
    if max_words is not None and vocab["word"].size > max_words:
        rows = np.sort(rng.choice(vocab["word"].size, max_words, replace=False))
        vocab = {k: v[rows] for k, v in vocab.items()}
    items = {"item_id": vocab["word"].astype(str), **{k: (v.astype(str) if v.dtype == object
                                                          else v) for k, v in vocab.items()}}
    twin_seed = child_seed(rng)
    if word_vectors is not None:
        fw, X = read_word_vectors(word_vectors, words=set(vocab["word"].tolist()))
        order = {w: i for i, w in enumerate(fw.tolist())}
        layers = X[[order[w] for w in vocab["word"].tolist()]][None]
        names, prov = ["vectors"], {"model": str(word_vectors), "vectors": "word-vector file"}
        twin = False
    else:
        layers, names = _model_vectors(net, tokenizer, vocab["token_id"], vectors, templates)
        prov = {"model": str(path), "vectors": vectors}
    prov.update({"generator": {"name": "wordnet-embeddings", "vectors": vectors,
                               "monosemous": monosemous, "max_words": max_words, "seed": seed},
                 "taxonomy": "wordnet"})
    if twin and workdir is not None:
        rnd = hf.load_model(path, random_init=True, seed=twin_seed, head=vectors == "output")
        twin_layers, _ = _model_vectors(rnd, tokenizer, vocab["token_id"], vectors, templates)
        twin_prov = dict(prov, model=f"random-init:{path}", random_init_seed=twin_seed)
        twin_dir = Path(workdir) / "random-init"
        EmbeddingSet(twin_layers, items, provenance=twin_prov, layer_names=names,
                     source=f"random-init:{path}").save(twin_dir)
        prov["twin"] = str(twin_dir.resolve())
    return EmbeddingSet(layers, items, provenance=prov, layer_names=names,
                        source=f"wordnet-embeddings:{prov['model']}")


def _model_vectors(net, tokenizer, token_ids, vectors, templates):
    if vectors == "contextual":
        X = contextual_vectors(net, tokenizer, token_ids, templates=templates)
        return X, [str(i) for i in range(X.shape[0])]
    return embedding_rows(net, token_ids, vectors)[None], [vectors]
