"""Dependency treebanks in CoNLL-U: sentences with gold trees, and tree distances.

:func:`read_conllu` reads a ``.conllu`` or ``.conllu.gz`` file with the ``conllu`` package into
:class:`Sentence` objects (words, 1-based heads, relations with subtypes kept, UPOS, XPOS) and
checks that every sentence is a tree: exactly one root, every head inside the sentence, no
cycle. A broken tree is a :class:`~geoprobe.errors.FormatError` naming the file, the
sentence ID and the line, because a probe trained on a non-tree would fail much later and
much more obscurely.

Multiword-token lines (``3-4  don't``) and empty nodes (``8.1``, enhanced dependencies only)
are skipped: the basic tree is over syntactic words, whose IDs run 1..n.

Tree distances and depths (:meth:`Sentence.distances`, :meth:`Sentence.depths`) come from
:mod:`geoprobe.syntax.trees`, the core's vectorised tree geometry.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geoprobe.errors import FormatError, GeoprobeError, first_line
from geoprobe.syntax.trees import ancestor_matrix, tree_depths, tree_distances

ENV_VAR = "GEOPROBE_UD_EWT"
#: UD English-EWT train and dev, shipped inside the package (see its README and LICENSE.txt)
SHIPPED_EWT = Path(__file__).resolve().parent / "data" / "ud_english_ewt"
SPLITS = ("train", "dev", "test")
PUNCT_UPOS = "PUNCT"
N_COLUMNS = 10  # ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC


@dataclass
class Sentence:
    """One sentence of a dependency treebank.

    Attributes
    ----------
    sent_id : str
        The ``# sent_id`` comment, or ``s<k>`` (k-th sentence of the file, 1-based) without one.
    words : list of str, length n
        Word forms (syntactic words: the parts of a multiword token, not the token).
    heads : ndarray of int, shape (n,)
        1-based index of each word's head; 0 for the root.
    deprels : list of str, length n
        Relation to the head with subtype, e.g. ``"nmod:poss"``.
    upos, xpos : list of str, length n
        Universal and language-specific part-of-speech tags.
    line : int
        1-based line number of the sentence's first line (its first comment) in the file.
    """

    sent_id: str
    words: list[str]
    heads: np.ndarray
    deprels: list[str]
    upos: list[str]
    xpos: list[str]
    line: int

    @property
    def n(self) -> int:
        return len(self.words)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def deprels_base(self) -> list[str]:
        """Relations with subtypes stripped (``"nmod:poss"`` -> ``"nmod"``)."""
        return [r.split(":", 1)[0] for r in self.deprels]

    @property
    def root(self) -> int:
        """0-based index of the root word."""
        return int(np.flatnonzero(self.heads == 0)[0])

    @property
    def punct(self) -> np.ndarray:
        """Boolean mask of shape (n,), true for punctuation (UPOS ``PUNCT``)."""
        return punctuation(self)

    def distances(self) -> np.ndarray:
        """Tree path lengths between all word pairs, shape (n, n)."""
        return tree_distances(self.heads)

    def depths(self) -> np.ndarray:
        """Distance of each word from the root, shape (n,)."""
        return tree_depths(self.heads)


def punctuation(sentence_or_upos) -> np.ndarray:
    """Boolean mask, true where UPOS is ``PUNCT``.

    Parameters
    ----------
    sentence_or_upos : Sentence or sequence of str of length n

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    upos = sentence_or_upos.upos if isinstance(sentence_or_upos, Sentence) else sentence_or_upos
    return np.asarray(upos, dtype=str) == PUNCT_UPOS


# -- reading --------------------------------------------------------------------------------
def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _blocks(fh):
    """Yield ``(first_line_number, lines)`` for each blank-line separated block."""
    lines: list[str] = []
    start = 0
    for lineno, raw in enumerate(fh, start=1):
        text = raw.rstrip("\r\n")
        if text.strip():
            if not lines:
                start = lineno
            lines.append(text)
        elif lines:
            yield start, lines
            lines = []
    if lines:
        yield start, lines


def read_conllu(path, *, max_sentences: int | None = None) -> list[Sentence]:
    """Read a CoNLL-U file (gzip-compressed if its name ends in ``.gz``) into sentences.

    Parameters
    ----------
    path : str or Path
    max_sentences : int, optional
        Stop after this many sentences (the first ones of the file).

    Returns
    -------
    list of Sentence

    Raises
    ------
    FormatError
        Unreadable file, no sentence in it, malformed line or one with fewer than the ten
        CoNLL-U columns, word IDs not running 1..n, a missing or non-integer head, a head out of
        range, no root, several roots, a cycle, or a duplicate sentence ID; the message names
        the file, the sentence ID and the line.
    """
    import conllu
    from conllu.exceptions import ParseException

    path = Path(path)
    sentences: list[Sentence] = []
    seen: dict[str, int] = {}
    try:
        with _open_text(path) as fh:
            for start, lines in _blocks(fh):
                if max_sentences is not None and len(sentences) >= max_sentences:
                    break
                token_lines = [start + k for k, text in enumerate(lines)
                               if not text.startswith("#")]
                if not token_lines:
                    continue  # a comment-only block (e.g. a trailing "# newdoc")
                try:
                    tokens = conllu.parse_token_and_metadata("\n".join(lines) + "\n")
                except ParseException as exc:
                    raise FormatError(f"{path} sentence starting at line {start}: "
                                      f"malformed CoNLL-U ({first_line(exc)})") from None
                sent = _to_sentence(tokens, token_lines, start, len(sentences) + 1, path)
                if sent.sent_id in seen:
                    raise FormatError(f"{path} line {start}: sentence ID {sent.sent_id!r} "
                                      f"repeats the one at line {seen[sent.sent_id]}")
                seen[sent.sent_id] = start
                sentences.append(sent)
    except FileNotFoundError:
        raise FormatError(f"{path}: file not found") from None
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise FormatError(f"{path}: cannot read as CoNLL-U text ({first_line(exc)})") from None
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc.strerror or first_line(exc)})") from None
    if not sentences and max_sentences != 0:
        raise FormatError(f"{path}: no sentences (the file is empty or holds only comments)")
    return sentences


def _to_sentence(tokens, token_lines: list[int], start: int, ordinal: int, path: Path) -> Sentence:
    sent_id = str(tokens.metadata.get("sent_id") or f"s{ordinal}")
    where = f"{path} sentence {sent_id!r}"
    words, heads, deprels, upos, xpos, lines = [], [], [], [], [], []
    for tok, lineno in zip(tokens, token_lines):
        if len(tok) < N_COLUMNS:  # the conllu package accepts short lines; a tree needs them all
            raise FormatError(f"{where} line {lineno}: {len(tok)} columns where CoNLL-U has "
                              f"{N_COLUMNS} (tab-separated)")
        if not isinstance(tok["id"], int):  # multiword token (1, '-', 2) or empty node (8, '.', 1)
            continue
        if tok["id"] != len(words) + 1:
            raise FormatError(f"{where} line {lineno}: word ID {tok['id']} where "
                              f"{len(words) + 1} was expected (IDs must run 1..n)")
        if not isinstance(tok["head"], int):
            raise FormatError(f"{where} line {lineno}: word {tok['id']} has head "
                              f"{tok['head']!r}, expected an integer")
        words.append(str(tok["form"]))
        heads.append(tok["head"])
        deprels.append(str(tok["deprel"]))
        upos.append(str(tok["upos"]))
        xpos.append(str(tok["xpos"]) if tok["xpos"] is not None else "_")
        lines.append(lineno)
    if not words:
        raise FormatError(f"{where} line {start}: no words")
    heads_arr = np.asarray(heads, dtype=np.int64)
    _check_tree(heads_arr, where, lines)
    return Sentence(sent_id, words, heads_arr, deprels, upos, xpos, start)


def _check_tree(heads: np.ndarray, where: str, lines: list[int]) -> None:
    n = len(heads)
    bad = np.flatnonzero((heads < 0) | (heads > n))
    if bad.size:
        i = int(bad[0])
        raise FormatError(f"{where} line {lines[i]}: head {heads[i]} of word {i + 1} is out of "
                          f"range (sentence has {n} words)")
    roots = np.flatnonzero(heads == 0)
    if roots.size == 0:
        raise FormatError(f"{where} line {lines[0]}: no root (no word has head 0)")
    if roots.size > 1:
        raise FormatError(f"{where} line {lines[roots[1]]}: two roots (words {roots[0] + 1} "
                          f"and {roots[1] + 1} both have head 0)")
    self_loop = np.flatnonzero(heads == np.arange(1, n + 1))
    if self_loop.size:
        i = int(self_loop[0])
        raise FormatError(f"{where} line {lines[i]}: word {i + 1} is its own head")
    _, reached = ancestor_matrix(heads)
    if not reached.all():
        i = int(np.flatnonzero(~reached)[0])
        raise FormatError(f"{where} line {lines[i]}: cycle through word {i + 1} "
                          "(following its heads never reaches the root)")


# -- locating UD English-EWT ----------------------------------------------------------------
def default_treebank_path(split: str = "train") -> Path:
    """Path of UD English-EWT's ``split`` file (``train``, ``dev``; ``test`` if present).

    geoprobe ships EWT train and dev (CC BY-SA 4.0, see ``data/ud_english_ewt/LICENSE.txt``
    beside this module) as package data, so an installed geoprobe finds them with no set-up.
    The environment variable ``GEOPROBE_UD_EWT`` names another directory instead (a newer EWT
    release, or one holding the test split); other treebanks are passed as explicit paths.
    Accepts ``en_ewt-ud-<split>.conllu`` and ``.conllu.gz``.

    Raises
    ------
    GeoprobeError
        Unknown split, or no such file in the directory searched (the message names it).
    """
    if split not in SPLITS:
        raise GeoprobeError(f"unknown treebank split {split!r}; choose one of {SPLITS}")
    names = [f"en_ewt-ud-{split}.conllu", f"en_ewt-ud-{split}.conllu.gz"]
    env = os.environ.get(ENV_VAR)
    directory = Path(env) if env else SHIPPED_EWT
    for name in names:
        if (directory / name).is_file():
            return directory / name
    if env:
        raise GeoprobeError(f"{ENV_VAR}={env}: no {names[0]}[.gz] in that directory")
    raise GeoprobeError(
        f"UD English-EWT {split} split is not shipped with geoprobe ({SHIPPED_EWT} holds "
        f"train and dev); set {ENV_VAR} to a directory holding {names[0]}[.gz], or pass the "
        f"file path explicitly"
    )
