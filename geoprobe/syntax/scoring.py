"""Decode every sentence of a split with a fitted map and count what it gets right, per sentence
(the units every confidence interval resamples)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata

from geoprobe.syntax.corpus import Split, gather
from geoprobe.syntax.losses import pairwise_sq_dists
from geoprobe.syntax.maps import FittedMap
from geoprobe.syntax.parsing import batched_prim, count_correct, example_tree, nearest_prototype


@dataclass
class ConventionCounts:
    """One scoring convention's per-sentence counts (n sentences, t relation types).

    uuas, uas, las : float arrays (n, 2)
        Ours: correct and gold edges of the sentence (pooled into a corpus ratio). The
        reference's: the sentence's share of correct edges and 1 if it has a tree (>= 2 words),
        averaged over sentences.
    root : float array (n, 2), root found (0/1) and 1 if the sentence has a candidate word
    rel_correct, rel_total : float arrays (n, t), gold edges of each type typed correctly, and
        gold edges of each type
    """

    uuas: np.ndarray
    uas: np.ndarray
    las: np.ndarray
    root: np.ndarray
    rel_correct: np.ndarray
    rel_total: np.ndarray

    @classmethod
    def zeros(cls, n: int, n_types: int) -> "ConventionCounts":
        return cls(*(np.zeros((n, 2)) for _ in range(4)),
                   np.zeros((n, n_types)), np.zeros((n, n_types)))

    @property
    def relations(self) -> np.ndarray:
        """Typed-correctly and total gold edges per sentence, (n, 2), all types pooled."""
        return np.stack([self.rel_correct.sum(1), self.rel_total.sum(1)], 1)


@dataclass
class SentenceScores:
    """Per-dev-sentence counts and scores, the units every confidence interval resamples.

    lengths : int array (n,), sentence lengths in words
    ours : trees over non-punctuation words (Hewitt & Manning's convention)
    ref : trees over all words (the polar reference's convention)
    dspr : float array (n,), mean row Spearman of distances (nan for 1-word sentences)
    nspr : float array (n,) or None, depth Spearman (None for the polar probe)
    example : dict of the example sentence's gold and predicted trees (empty if not asked)
    """

    lengths: np.ndarray
    ours: ConventionCounts
    ref: ConventionCounts
    dspr: np.ndarray
    nspr: np.ndarray | None
    example: dict


def _row_spearman(pred: np.ndarray, gold: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over valid rows of each matrix of Spearman(pred[i, valid], gold[i, valid]).

    pred, gold : (B, L, L); mask : (B, L). Returns (B,), nan for sentences with < 2 words.
    """
    pair = mask[:, :, None] & mask[:, None, :]
    rp = rankdata(np.where(pair, pred, np.inf), axis=-1)
    rg = rankdata(np.where(pair, gold, np.inf), axis=-1)
    return _masked_rank_corr(rp, rg, pair, mask)


def _masked_rank_corr(rp, rg, pair, row_mask):
    n = pair.sum(-1, keepdims=True).clip(1)
    rp = np.where(pair, rp - (rp * pair).sum(-1, keepdims=True) / n, 0.0)
    rg = np.where(pair, rg - (rg * pair).sum(-1, keepdims=True) / n, 0.0)
    denom = np.sqrt((rp ** 2).sum(-1) * (rg ** 2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rp * rg).sum(-1) / denom
    rho = np.where(row_mask & (denom > 0), rho, np.nan)
    if rho.ndim == 1:
        return rho
    defined = np.isfinite(rho)
    return np.where(defined.any(-1), np.where(defined, rho, 0.0).sum(-1)
                    / np.maximum(defined.sum(-1), 1), np.nan)


def _depth_spearman(pred: np.ndarray, gold: np.ndarray, mask: np.ndarray) -> np.ndarray:
    rp = rankdata(np.where(mask, pred, np.inf), axis=-1)
    rg = rankdata(np.where(mask, gold, np.inf), axis=-1)
    return _masked_rank_corr(rp, rg, mask, mask.sum(-1) >= 2)


def score(X: torch.Tensor, fitted: FittedMap, split: Split, *, n_types: int,
          example: int | None = None, spearman: bool = True) -> SentenceScores:
    """Decode every sentence of ``split`` with ``fitted`` and count what it gets right.

    X : float tensor (n_rows, d), one layer's word vectors
    n_types : number of relation types (prototypes)
    example : index of the sentence whose trees the figure draws, or None
    spearman : False skips DSpr/NSpr (left NaN), for per-epoch checkpoint selection

    Returns per-sentence arrays (see :class:`SentenceScores`), in the corpus's sentence order.
    """
    corpus = split.corpus
    n = corpus.n
    ours, ref = ConventionCounts.zeros(n, n_types), ConventionCounts.zeros(n, n_types)
    dspr = np.full(n, np.nan)
    nspr = np.full(n, np.nan) if fitted.depth_weight is not None or fitted.root is None else None
    W = torch.from_numpy(fitted.weight).float()
    Wd = torch.from_numpy(fitted.depth_weight).float() if fitted.depth_weight is not None else None
    ex = {}
    with torch.no_grad():
        for batch in split.batches:
            s = batch.sent
            H = gather(X, batch)
            Z = H @ W.T
            D = pairwise_sq_dists(Z).double().numpy()
            Zn = Z.double().numpy()
            mask = batch.mask.numpy()
            heads = batch.heads.numpy()
            rels = batch.rels.numpy()
            punct = corpus.punct[s, :mask.shape[1]]
            keep = mask & ~punct
            gold = batch.dist.double().numpy()
            if spearman:
                dspr[s] = _row_spearman(D, gold, mask)
            # Root: least deep (structural) or nearest the root point (polar) candidate.
            if fitted.root is not None:
                rscore = ((Zn - fitted.root) ** 2).sum(-1)
            else:
                Zd = (H @ Wd.T).double().numpy()
                rscore = (Zd ** 2).sum(-1)
                if spearman:
                    nspr[s] = _depth_spearman(rscore, batch.depth.double().numpy(), mask)
            is_root = (heads == -1) & mask
            for conv, cand in ((ours, keep), (ref, mask)):
                pick = np.argmin(np.where(cand, rscore, np.inf), axis=1)
                conv.root[s, 0] = is_root[np.arange(len(s)), pick] & cand.any(1)
                conv.root[s, 1] = cand.any(1)
            # Typing gold edges by nearest prototype.
            b, dep = np.nonzero(heads >= 0)
            E = Zn[b, heads[b, dep]] - Zn[b, dep]
            pred_rel, _ = nearest_prototype(E, fitted.prototypes)
            gold_rel = rels[b, dep]
            ok = (pred_rel == gold_rel) & (gold_rel >= 0)
            gr = np.where(gold_rel >= 0, gold_rel, 0)
            has = gold_rel >= 0
            for conv, sel in ((ours, has & ~punct[b, dep]), (ref, has)):
                np.add.at(conv.rel_correct, (s[b[sel]], gr[sel]), ok[sel])
                np.add.at(conv.rel_total, (s[b[sel]], gr[sel]), 1.0)
            # Trees: ours over non-punctuation words, the reference's over all words.
            for nodes, conv in ((keep, ours), (mask, ref)):
                parent = batched_prim(np.where(nodes[:, :, None] & nodes[:, None, :], D, np.inf),
                                      nodes)
                counts = count_correct(parent, Zn, heads=heads, rels=rels, nodes=nodes,
                                       prototypes=fitted.prototypes)
                correct = (counts.undirected, counts.directed, counts.labelled)
                if conv is ours:
                    for target, c in zip((ours.uuas, ours.uas, ours.las), correct):
                        target[s, 0], target[s, 1] = c, counts.gold
                else:
                    edges = nodes.sum(1) - 1
                    for target, c in zip((ref.uuas, ref.uas, ref.las), correct):
                        target[s, 0] = np.where(edges > 0, c / np.maximum(edges, 1), 0.0)
                        target[s, 1] = edges > 0
                if conv is ours and example is not None and example in s:
                    i = int(np.flatnonzero(s == example)[0])
                    ex = example_tree(i, parent, Zn, heads=heads, rels=rels, nodes=nodes,
                                      prototypes=fitted.prototypes)
    return SentenceScores(corpus.lengths, ours, ref, dspr, nspr, ex)
