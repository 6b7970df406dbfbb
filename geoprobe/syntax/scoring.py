"""Decode every sentence of a split with a fitted map and count what it gets right, per sentence
(the units every confidence interval resamples)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata

from geoprobe.syntax.corpus import Batch, Corpus, gather
from geoprobe.syntax.losses import pairwise_sq_dists
from geoprobe.syntax.maps import FittedMap
from geoprobe.syntax.parsing import _example_tree, _tree_counts, batched_prim, nearest_prototype


@dataclass
class SentenceScores:
    """Per-dev-sentence counts and scores, the units every confidence interval resamples."""

    lengths: np.ndarray
    uuas: np.ndarray          # (n, 2): correct, total (ours)
    uas: np.ndarray
    las: np.ndarray
    root: np.ndarray          # (n, 2): correct, 1 if the sentence has a non-punct word
    ref_uuas: np.ndarray      # (n, 2): per-sentence share and 1 if defined (n >= 2)
    ref_uas: np.ndarray
    ref_las: np.ndarray
    ref_root: np.ndarray
    dspr: np.ndarray          # (n,) mean row Spearman (nan for 1-word sentences)
    nspr: np.ndarray | None
    rel_correct: np.ndarray   # (n, t) ours: gold edges of each type typed correctly
    rel_total: np.ndarray     # (n, t)
    ref_rel_correct: np.ndarray
    ref_rel_total: np.ndarray
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


def score(X: torch.Tensor, fitted: FittedMap, corpus: Corpus, batches: list[Batch],
          n_types: int, example: int | None = None, spearman: bool = True) -> SentenceScores:
    """Decode every dev sentence with ``fitted`` and count what it gets right.

    ``spearman=False`` skips DSpr/NSpr (left NaN), for per-epoch checkpoint selection.

    Returns per-sentence arrays (see :class:`SentenceScores`), in the corpus's sentence order.
    """
    n = corpus.n
    uuas, uas, las, root = (np.zeros((n, 2)) for _ in range(4))
    ref = {k: np.zeros((n, 2)) for k in ("uuas", "uas", "las", "root")}
    dspr = np.full(n, np.nan)
    nspr = np.full(n, np.nan) if fitted.depth_weight is not None or fitted.root is None else None
    rel_c, rel_t = np.zeros((n, n_types)), np.zeros((n, n_types))
    ref_c, ref_t = np.zeros((n, n_types)), np.zeros((n, n_types))
    W = torch.from_numpy(fitted.weight).float()
    Wd = torch.from_numpy(fitted.depth_weight).float() if fitted.depth_weight is not None else None
    ex = {}
    with torch.no_grad():
        for batch in batches:
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
            for target, cand in ((root, keep), (ref["root"], mask)):
                pick = np.argmin(np.where(cand, rscore, np.inf), axis=1)
                target[s, 0] = is_root[np.arange(len(s)), pick] & cand.any(1)
                target[s, 1] = cand.any(1)
            # Typing gold edges by nearest prototype.
            b, dep = np.nonzero(heads >= 0)
            E = Zn[b, heads[b, dep]] - Zn[b, dep]
            pred_rel, _ = nearest_prototype(E, fitted.prototypes)
            gold_rel = rels[b, dep]
            ok = (pred_rel == gold_rel) & (gold_rel >= 0)
            gr = np.where(gold_rel >= 0, gold_rel, 0)
            has = gold_rel >= 0
            for C, T, sel in ((rel_c, rel_t, has & ~punct[b, dep]), (ref_c, ref_t, has)):
                np.add.at(C, (s[b[sel]], gr[sel]), ok[sel])
                np.add.at(T, (s[b[sel]], gr[sel]), 1.0)
            # Trees: ours over non-punctuation words, the reference's over all words.
            for nodes, conv in ((keep, "ours"), (mask, "ref")):
                parent = batched_prim(np.where(nodes[:, :, None] & nodes[:, None, :], D, np.inf),
                                      nodes)
                counts = _tree_counts(parent, Zn, heads, rels, nodes, fitted.prototypes)
                if conv == "ours":
                    for target, c in zip((uuas, uas, las), counts[:3]):
                        target[s, 0], target[s, 1] = c, counts[3]
                else:
                    edges = nodes.sum(1) - 1
                    for key, c in zip(("uuas", "uas", "las"), counts[:3]):
                        ref[key][s, 0] = np.where(edges > 0, c / np.maximum(edges, 1), 0.0)
                        ref[key][s, 1] = edges > 0
                if conv == "ours" and example is not None and example in s:
                    i = int(np.flatnonzero(s == example)[0])
                    ex = _example_tree(i, parent, Zn, heads, rels, nodes, fitted.prototypes)
    return SentenceScores(corpus.lengths, uuas, uas, las, root, ref["uuas"], ref["uas"],
                          ref["las"], ref["root"], dspr, nspr, rel_c, rel_t, ref_c, ref_t, ex)
