"""Plain text and JSONL through a Hugging Face model's hooked modules: token or text vectors.

Texts are read from a ``.txt`` file (one text per non-empty line) or a JSONL file (one JSON
object per line, the text in a named string field), tokenized with the model directory's own
tokenizer (:func:`geoprobe.hf.load_tokenizer`) and run through
:func:`geoprobe.extract_activations`, which records the modules that name patterns choose.

Rows and columns:

- ``pool="none"``: one row per token, special tokens included (``special`` marks them);
  ``item_id`` ``"<text_id>:<position>"``, ``text_id``, ``position`` (0-based token index),
  ``token`` (the tokenizer's token string), ``special``, ``input_index``;
- ``pool="mean" | "first" | "last"``: one row per text over its tokens (``first`` is
  ``[CLS]`` for BERT-style models, ``last`` the final token, as causal LMs summarise);
  ``item_id`` = ``text_id``, ``text``, ``n_tokens``, ``input_index``.

``text_id`` is the text's 1-based line number in its file, so rows can be traced back. A text
longer than the model's maximum length is truncated, with a warning, and listed in the
provenance (``truncated_texts``).

The random-init twin (the same architecture from its config, seeded) is extracted through the
same module names and written beside the set, as for treebanks.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from geoprobe import hf
from geoprobe.activations import extract_activations, model_device, token_batches
from geoprobe.device import to_numpy
from geoprobe.errors import FormatError, GeoprobeError
from geoprobe.source import twin_path_for


def read_text_lines(path) -> list[tuple[str, str]]:
    """``(text_id, text)`` for every non-empty line of a UTF-8 text file; ``text_id`` is the
    1-based line number."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: cannot read as UTF-8 text ({exc})") from None
    texts = [(str(i), line.strip()) for i, line in enumerate(lines, 1) if line.strip()]
    if not texts:
        raise FormatError(f"{path}: no text (every line is empty)")
    return texts


def read_jsonl(path, field: str) -> list[tuple[str, str]]:
    """``(text_id, obj[field])`` for every non-empty line of a JSONL file; ``text_id`` is the
    1-based line number. A line that is not a JSON object with a string ``field`` is a
    FormatError naming the file and line."""
    path = Path(path)
    texts = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: cannot read as UTF-8 text ({exc})") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path} line {i}: not JSON ({exc.msg})") from None
        value = obj.get(field) if isinstance(obj, dict) else None
        if not isinstance(value, str):
            raise FormatError(f"{path} line {i}: no string field {field!r}")
        texts.append((str(i), value))
    if not texts:
        raise FormatError(f"{path}: no JSON lines")
    return texts


class TextTokenizer:
    """A model directory's tokenizer turning texts into model inputs with item columns.

    Parameters
    ----------
    tokenizer : a Hugging Face tokenizer (a pad token is set if it has none)
    max_length : int, tokens per text, special tokens included; longer texts are truncated
    pool : "none" for per-token columns, else per-text columns (see the module docstring)

    Attributes
    ----------
    truncated : list of str, the text IDs truncated so far
    """

    def __init__(self, tokenizer, *, max_length: int, pool: str = "none"):
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        self.tokenizer, self.max_length, self.pool = tokenizer, int(max_length), pool
        self.truncated: list[str] = []

    def batches(self, texts: Sequence[tuple[str, str]], batch_size: int = 32,
                max_tokens: int | None = None) -> Iterator:
        """Yield ``(inputs, items)`` per batch: ``inputs`` a dict of tensors of shape
        (batch, tokens) for ``model(**inputs)``, ``items`` columns of shape (batch,) or
        (batch, tokens).

        ``max_tokens``: batches of consecutive texts whose padded tokens (texts x longest,
        at most ``max_length`` each) stay within this budget (see
        :func:`geoprobe.activations.token_batches`), instead of ``batch_size`` texts each.
        """
        if batch_size < 1:
            raise GeoprobeError(f"batch_size must be at least 1, got {batch_size}")
        if max_tokens is None:
            spans = [slice(s, s + batch_size) for s in range(0, len(texts), batch_size)]
        else:
            lengths = [min(len(ids), self.max_length) for ids in
                       self.tokenizer([s for _, s in texts], add_special_tokens=True)["input_ids"]]
            spans = token_batches(lengths, max_tokens)
        for span in spans:
            yield self.encode(texts[span])

    def encode(self, texts: Sequence[tuple[str, str]]):
        """One batch of ``(text_id, text)``: ``(inputs, items)`` as :meth:`batches` yields."""
        ids = np.array([t for t, _ in texts])
        strings = [s for _, s in texts]
        full = self.tokenizer(strings, add_special_tokens=True)["input_ids"]
        for text_id, n in zip(ids, map(len, full)):
            if n > self.max_length:
                warnings.warn(f"text {text_id} has {n} tokens, more than the model's maximum "
                              f"{self.max_length}; truncated", stacklevel=2)
                self.truncated.append(str(text_id))
        enc = self.tokenizer(strings, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt", return_special_tokens_mask=True)
        special = to_numpy(enc.pop("special_tokens_mask")).astype(bool)
        inputs = dict(enc)
        items = {"item_id": ids, "text_id": ids}
        if self.pool == "none":
            items["token"] = np.array([self.tokenizer.convert_ids_to_tokens(row)
                                       for row in enc["input_ids"].tolist()])
            items["special"] = special
        else:
            items["text"] = np.array(strings)
            items["n_tokens"] = to_numpy(enc["attention_mask"].sum(1)).astype(np.int64)
        return inputs, items


def model_max_length(tokenizer, model) -> int:
    """The smaller of the tokenizer's ``model_max_length`` and the model's
    ``max_position_embeddings`` (512 when neither says)."""
    limits = [int(v) for v in (tokenizer.model_max_length,
                               getattr(model.config, "max_position_embeddings", None))
              if v and int(v) < 1_000_000]
    return min(limits, default=512)


def extract_texts(texts: Sequence[tuple[str, str]], out, *, modules: Sequence[str], model=None,
                  pool: str = "none", batch_size: int = 32, dtype="float32", twin: bool = True,
                  seed: int = 0, max_length: int | None = None, provenance: dict | None = None,
                  show_progress: bool = True, device="cpu", precision="float32",
                  batch_tokens: int | None = None) -> Path:
    """Extract the hooked modules' outputs for ``texts``, and (by default) the random-init twin.

    Parameters
    ----------
    texts : sequence of ``(text_id, text)``, e.g. from :func:`read_text_lines` or
        :func:`read_jsonl`
    out : path of the set to write; the twin goes beside it as ``NAME.random-init.gpemb``
    modules : module name patterns, e.g. ``["encoder.layer.*.output"]`` (see
        :mod:`geoprobe.hooks`)
    model : Hugging Face model directory; default the offline MiniLM
    pool : "none" (a row per token), "mean", "first" or "last" (a row per text)
    batch_size : texts per forward pass
    dtype : "float32" or "float16" storage
    twin, seed : also write the random-init twin, initialised under ``torch.manual_seed(seed)``
    max_length : tokens per text (default: the model's maximum)
    provenance : extra provenance entries for both sets
    device : where the model runs: "cpu" (default), "cuda", "cuda:N", "mps" or "auto"
    precision : the model's compute dtype, "float32" (default), "float16" or "bfloat16";
        independent of ``dtype``, the storage dtype
    batch_tokens : batch by a budget of padded tokens instead of ``batch_size`` texts

    Returns
    -------
    Path of the real set; its layers have shape (n_rows, dim), one per matched module.
    """
    if not texts:
        raise GeoprobeError("no texts to extract")
    path = hf.model_dir(model)
    tokenizer = hf.load_tokenizer(path)
    # the real model loads first: unloadable weights stop the run before anything is written
    real = hf.load_model(path, device=device, dtype=precision)
    max_length = int(max_length or model_max_length(tokenizer, real))
    base = {"n_texts": len(texts), "max_length": max_length, **(provenance or {})}
    if (device, precision, batch_tokens) != ("cpu", "float32", None):
        # recorded only when asked, so that default sets keep their provenance unchanged
        base.update(device=str(model_device(real)), precision=precision,
                    batch_tokens=batch_tokens)
    out = Path(out)

    def run(net, target, random_init, extra):
        tok = TextTokenizer(tokenizer, max_length=max_length, pool=pool)
        prov = {**hf.model_provenance(path, net.config, tokenizer, random_init=random_init,
                                   seed=seed), **base, **extra}
        prov["truncated_texts"] = tok.truncated   # filled while the batches are read
        extract_activations(net, tok.batches(texts, batch_size, batch_tokens), modules, out=target,
                            pool=pool, dtype=dtype, provenance=prov,
                            show_progress=show_progress)

    extra = {}
    if twin:
        tpath = twin_path_for(out)
        run(hf.load_model(path, random_init=True, seed=seed, device=device, dtype=precision),
            tpath, True, {})
        extra = {"twin": tpath.name, "twin_seed": seed}  # relative: resolved beside the set
    try:
        run(real, out, False, extra)
    except BaseException:
        if twin:  # never a twin without its real set
            shutil.rmtree(tpath, ignore_errors=True)
        raise
    return out
