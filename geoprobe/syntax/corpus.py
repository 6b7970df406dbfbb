"""Sentences of one split, read from an embedding set's item table, and padded batches.

A :class:`Corpus` holds the sentences of one split as padded arrays of rows (one row per word
of the embedding set); :func:`make_batches` buckets them by length into :class:`Batch` es of
torch tensors with their gold tree distances and depths, the unit every loss and score reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from geoprobe.errors import ProbeInputError
from geoprobe.syntax.trees import batch_tree_distances

#: the structural-probes reference's punctuation (PTB XPOS)
PTB_PUNCT = frozenset({"''", ",", ".", ":", "``", "-LRB-", "-RRB-"})
SYNTAX_COLUMNS = ("sentence_id", "position", "head", "deprel", "upos", "split")


@dataclass
class Corpus:
    """Sentences of one split, as rows of the embedding set.

    rows : int array (n_sent, max_len), row of each word (-1 = padding), words in order
    lengths : int array (n_sent,)
    heads : int array (n_sent, max_len), 0-based head position, -1 for the root and padding
    rels : int array (n_sent, max_len), relation-type code of the word's incoming edge (-1 root)
    punct : bool array (n_sent, max_len)
    sentence_ids : str array (n_sent,)
    """

    rows: np.ndarray
    lengths: np.ndarray
    heads: np.ndarray
    rels: np.ndarray
    punct: np.ndarray
    sentence_ids: np.ndarray

    @property
    def n(self) -> int:
        return len(self.lengths)

    def take(self, sel) -> "Corpus":
        sel = np.asarray(sel)
        width = max(int(self.lengths[sel].max()), 1) if len(sel) else 1
        return Corpus(self.rows[sel, :width], self.lengths[sel], self.heads[sel, :width],
                      self.rels[sel, :width], self.punct[sel, :width], self.sentence_ids[sel])


def relation_type(deprel) -> np.ndarray:
    """Relation types with the subtype stripped (``nmod:poss`` -> ``nmod``), as the anchor does."""
    return np.char.partition(np.asarray(deprel).astype(str), ":")[:, 0]


def _reaches_root(heads: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Whether each word's head chain ends at the root, (n_sent, L) bool (false on cycles).

    heads : int array (n_sent, L), 0-based heads, -1 for the root and padding.
    """
    L = heads.shape[1]
    cur = np.where(heads >= 0, heads, np.arange(L)[None, :])
    for _ in range(int(np.ceil(np.log2(max(L, 2)))) + 1):  # pointer jumping
        cur = np.take_along_axis(cur, cur, axis=1)
    valid = np.arange(L)[None, :] < lengths[:, None]
    return ~valid | (np.take_along_axis(heads, cur, axis=1) == -1)


def build_corpus(items, rows: np.ndarray, rel_codes: dict[str, int], *,
                 source: str = "items") -> Corpus:
    """Group the given rows of an item table into sentences and check each is a tree.

    items : ItemTable (or mapping of column -> array) with the columns in ``SYNTAX_COLUMNS``
    rows : int array of the rows to use (e.g. those of one split)
    rel_codes : relation type -> code; unknown types get -1 (never predicted correctly)
    """
    sid = np.asarray(items["sentence_id"])[rows].astype(str)
    pos = np.asarray(items["position"])[rows].astype(np.int64)
    head = np.asarray(items["head"])[rows].astype(np.int64)
    rel = relation_type(np.asarray(items["deprel"])[rows])
    if "xpos" in items:
        punct = np.isin(np.asarray(items["xpos"])[rows].astype(str), list(PTB_PUNCT))
    else:
        punct = np.asarray(items["upos"])[rows].astype(str) == "PUNCT"
    order = np.lexsort((pos, sid))
    sid, pos, head, rel, punct, rows = (a[order] for a in (sid, pos, head, rel, punct, rows))
    uniq, start, lengths = np.unique(sid, return_index=True, return_counts=True)
    n_sent = len(uniq)
    if n_sent == 0:
        raise ProbeInputError(f"{source}: no sentences in this split")
    L = int(lengths.max())
    sent_of_row = np.repeat(np.arange(n_sent), lengths)
    slot = np.arange(len(rows)) - start[sent_of_row]
    base = int(pos.min())  # 0-based (geoprobe extract) or 1-based (CoNLL-U ID) positions
    bad = np.flatnonzero(pos != slot + base)
    if len(bad) or base not in (0, 1):
        i = bad[0] if len(bad) else 0
        raise ProbeInputError(
            f"{source}: sentence {str(sid[i])!r} has word positions that are not 0..n-1 or 1..n "
            f"(found position {pos[i]} at word {slot[i] + 1}); positions must be complete")
    bad = np.flatnonzero((head < 0) | (head > lengths[sent_of_row]) | (head == slot + 1))
    if len(bad):
        raise ProbeInputError(
            f"{source}: sentence {str(sid[bad[0]])!r} word {slot[bad[0]] + 1} has head {head[bad[0]]} "
            f"outside 0..{lengths[sent_of_row[bad[0]]]} or pointing to itself")
    n_roots = np.bincount(sent_of_row, weights=head == 0, minlength=n_sent)
    bad = np.flatnonzero(n_roots != 1)
    if len(bad):
        raise ProbeInputError(f"{source}: sentence {str(uniq[bad[0]])!r} has {int(n_roots[bad[0]])} "
                              "roots (head 0); a dependency tree has exactly one")

    def pad(values, fill, dtype):
        out = np.full((n_sent, L), fill, dtype=dtype)
        out[sent_of_row, slot] = values
        return out

    codes = np.array([rel_codes.get(r, -1) for r in rel], dtype=np.int64)
    corpus = Corpus(pad(rows, -1, np.int64), lengths.astype(np.int64),
                    pad(head - 1, -1, np.int64), pad(np.where(head == 0, -1, codes), -1, np.int64),
                    pad(punct, False, bool), uniq)
    bad = np.flatnonzero(~_reaches_root(corpus.heads, corpus.lengths).all(1))
    if len(bad):
        raise ProbeInputError(f"{source}: sentence {str(uniq[bad[0]])!r} has a cycle in its heads")
    return corpus


@dataclass
class Batch:
    """Torch tensors of a padded batch of sentences (B sentences, L = longest)."""

    sent: np.ndarray          # (B,) sentence indices into the Corpus
    rows: torch.Tensor        # (B, L) long, padding -> 0
    mask: torch.Tensor        # (B, L) bool
    lengths: torch.Tensor     # (B,) float
    dist: torch.Tensor        # (B, L, L) gold tree distances
    depth: torch.Tensor       # (B, L) gold depths
    heads: torch.Tensor       # (B, L) long, -1 for root/padding
    rels: torch.Tensor        # (B, L) long


def make_batches(corpus: Corpus, max_tokens: int = 256) -> list[Batch]:
    """Bucket sentences by length into batches of at most ``max_tokens`` padded words."""
    order = np.argsort(corpus.lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        end = start + 1
        while end < len(order) and (end - start + 1) * corpus.lengths[order[end]] <= max_tokens:
            end += 1
        sel = order[start:end]
        sub = corpus.take(sel)
        dist, depth, _ = batch_tree_distances(
            [h[:n] + 1 for h, n in zip(sub.heads, sub.lengths)], pad=0)
        mask = sub.rows >= 0
        batches.append(Batch(sel, torch.from_numpy(np.where(mask, sub.rows, 0)),
                             torch.from_numpy(mask), torch.from_numpy(sub.lengths).float(),
                             torch.from_numpy(dist.astype(np.float32)),
                             torch.from_numpy(depth.astype(np.float32)),
                             torch.from_numpy(sub.heads), torch.from_numpy(sub.rels)))
        start = end
    return batches


@dataclass
class Split:
    """The sentences of one split with their padded batches (each sentence in exactly one)."""

    corpus: Corpus
    batches: list[Batch]

    @classmethod
    def of(cls, corpus: Corpus, max_tokens: int) -> "Split":
        return cls(corpus, make_batches(corpus, max_tokens))


def gather(X: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Word vectors of a batch, (B, L, d), zero at padding."""
    return X[batch.rows] * batch.mask[..., None]
