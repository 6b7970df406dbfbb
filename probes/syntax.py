"""Syntactic probes: the structural probe (Hewitt & Manning 2019) and the polar probe
(Diego-Simón et al. 2024), trained on padded batches of whole sentences.

Anchors: Hewitt & Manning 2019 (structural probe); Diego-Simón et al. 2024 (polar probe). Both probes learn a linear map
``B : R^d -> R^k`` so that squared distances ``||B(h_i - h_j)||^2`` between the words of a
sentence match their distances in the gold dependency tree.

Input
-----
An embedding set with one row per word and the item columns ``sentence_id``, ``position``
(word index, 0-based as ``geoprobe extract`` writes it or 1-based as CoNLL-U's ID: the
smallest position decides), ``head`` (CoNLL-U: 1-based, 0 = root), ``deprel``, ``upos`` and ``split``
(``"train"`` / ``"dev"``; the values are the ``train_split`` / ``dev_split`` parameters).
The probe trains on the train rows, selects its checkpoint on dev, and reports on dev (the
EWT test split is withheld in this project). Optional column ``xpos``: when present,
punctuation is the anchor's PTB tag set; otherwise ``upos == "PUNCT"``.

Losses (vectorised over a padded batch, every word pair of every sentence at once)
-------------------------------------------------------------------------------
* distance: ``mean_s (1/|s|^2) sum_ij | d_T(i,j) - ||B(h_i - h_j)||^2 |`` (both papers).
* depth (structural): ``mean_s (1/|s|) sum_i | depth_T(i) - ||B h_i||^2 |``.
* angular (polar), over the batch's gold edges ``e = B h_head - B h_dep``:
  ``C_ab = clamp(1 - cos(e_a, e_b), 0, 2)``, target ``T_ab = 0`` for the same relation type
  (subtype stripped) else 1, loss ``mean_ab (C_ab - T_ab)^2``.
* root (polar): ``mean_s mean_k (B h_root - r)_k^2`` with a learned root point ``r``.
* polar total: ``distance + lam * angular + beta * root``.

Metrics on dev (two conventions, see ``docs/syntax.md``)
-------------------------------------------------------
Ours (Hewitt & Manning's): trees over the non-punctuation words, corpus-level ratios.

* ``uuas``: minimum spanning tree (MST) of the predicted distances over non-punctuation words;
  share of gold edges between two non-punctuation words that it contains.
* ``uas`` / ``las``: each MST edge ``(u, v)`` is labelled by the relation prototype (mean train
  edge vector per type) of largest ``|cos|`` and oriented ``u -> v`` (u the head) iff
  ``cos(B h_u - B h_v, prototype) > 0``; share of gold edges recovered with the right head
  (and label).
* ``relation_accuracy`` / ``relation_balanced_accuracy``: nearest prototype by cosine for each
  gold edge (dependents that are punctuation left out), pooled accuracy and mean recall per type.
* ``root_accuracy``: the structural probe's least-deep non-punctuation word, the polar probe's
  non-punctuation word nearest ``r``, is the gold root.
* ``dspr``: Spearman correlation of each word's row of predicted vs gold distances (all words),
  averaged within each sentence length, then over lengths 5-50. ``nspr``: the same for depth.

The reference's (``ref_`` prefix, polar code): MST over all words, punctuation included,
each sentence's share averaged over sentences; relation accuracy over all gold edges; root over
all words.

Baselines per layer (``baseline`` label): ``identity`` (B = I, no training), ``random-probe``
(an untrained Gaussian B of the same rank); both get prototypes and, for the polar probe, a
root point fitted on train, so they are scored exactly like the trained probe. The core adds
the random-init model (``random-init``) when the source has a twin; on the twin
(``ctx.is_twin``), itself a control, only the layer sweep runs (no baselines, no rank sweep).

Confidence intervals: percentile bootstrap over dev sentences (``n_boot`` replicates, one
multinomial draw of sentence counts per replicate shared by every metric of a layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata

from geoprobe.datasets.treebank import batch_tree_distances
from geoprobe.contract import (Interval, NON_NEGATIVE, OPEN_UNIT, Options, POSITIVE, POSITIVE_INT,
                              SequenceOf)
from geoprobe.errors import ProbeInputError
from geoprobe.plotting import BASELINE_COLOR, PALETTE, new_figure
from geoprobe.probe import Example, Metric, Probe, ProbeResult, Requirements
from geoprobe.stats import ClusterBootstrap, child_seed

#: the structural-probes reference's punctuation (PTB XPOS)
PTB_PUNCT = frozenset({"''", ",", ".", ":", "``", "-LRB-", "-RRB-"})
SYNTAX_COLUMNS = ("sentence_id", "position", "head", "deprel", "upos", "split")


# --------------------------------------------------------------------------------------
# Sentences and padded batches
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# Losses (vectorised; ``benchmarks/bench_syntax.py`` has the per-pair reference form)
# --------------------------------------------------------------------------------------
def pairwise_sq_dists(Z: torch.Tensor) -> torch.Tensor:
    """``||z_i - z_j||^2`` for Z of shape (B, L, k) -> (B, L, L)."""
    sq = (Z * Z).sum(-1)
    return (sq[:, :, None] + sq[:, None, :] - 2.0 * Z @ Z.transpose(1, 2)).clamp_min(0.0)


def distance_loss(Z: torch.Tensor, batch: Batch) -> torch.Tensor:
    pair_mask = batch.mask[:, :, None] & batch.mask[:, None, :]
    err = (pairwise_sq_dists(Z) - batch.dist).abs() * pair_mask
    return (err.sum((1, 2)) / batch.lengths ** 2).mean()


def depth_loss(Z: torch.Tensor, batch: Batch) -> torch.Tensor:
    err = ((Z * Z).sum(-1) - batch.depth).abs() * batch.mask
    return (err.sum(1) / batch.lengths).mean()


def edge_vectors(Z: torch.Tensor, heads: torch.Tensor, rels: torch.Tensor):
    """Gold edge vectors ``z_head - z_dep`` (n_edges, k) and their relation codes (n_edges,)."""
    b, dep = torch.nonzero(heads >= 0, as_tuple=True)
    return Z[b, heads[b, dep]] - Z[b, dep], rels[b, dep]


def angular_loss(Z: torch.Tensor, batch: Batch) -> torch.Tensor:
    E, rel = edge_vectors(Z, batch.heads, batch.rels)
    if len(rel) < 2:
        return Z.new_zeros(())
    U = torch.nn.functional.normalize(E, dim=1, eps=1e-12)
    C = (1.0 - U @ U.T).clamp(0.0, 2.0)
    T = (rel[:, None] != rel[None, :]).to(Z.dtype)
    return ((C - T) ** 2).mean()


def root_loss(Z: torch.Tensor, batch: Batch, root: torch.Tensor) -> torch.Tensor:
    is_root = (batch.heads == -1) & batch.mask
    return ((Z[is_root] - root) ** 2).mean()


# --------------------------------------------------------------------------------------
# Decoding: minimum spanning trees of many sentences at once
# --------------------------------------------------------------------------------------
def batched_prim(D: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Minimum spanning trees of many small graphs at once (Prim's algorithm, batched).

    D : float array (B, L, L), symmetric distances; valid : bool array (B, L), the nodes to span.
    Returns parent (B, L) int: the tree edges are ``(i, parent[i])`` for parent >= 0; the first
    valid node of each graph, invalid nodes and graphs with one node have -1.
    """
    B, L = valid.shape
    parent = np.full((B, L), -1, dtype=np.int64)
    if L == 0:
        return parent
    rows = np.arange(B)
    start = np.argmax(valid, axis=1)
    in_tree = ~valid.copy()
    in_tree[rows, start] = True
    best = np.where(in_tree, np.inf, D[rows, start])
    best_from = np.repeat(start[:, None], L, axis=1)
    for _ in range(L - 1):
        nxt = np.argmin(best, axis=1)
        grow = np.isfinite(best[rows, nxt])
        if not grow.any():
            break
        g = rows[grow]
        n = nxt[grow]
        parent[g, n] = best_from[g, n]
        in_tree[g, n] = True
        closer = D[g, n] < best[g]
        best[g] = np.where(closer, D[g, n], best[g])
        best_from[g] = np.where(closer, n[:, None], best_from[g])
        best[in_tree] = np.inf
    return parent


def nearest_prototype(E: np.ndarray, protos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of edge vectors E (n, k) with prototypes (t, k): (argmax cos, cos matrix)."""
    U = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    P = protos / np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)
    C = U @ P.T
    return C.argmax(1), C


# --------------------------------------------------------------------------------------
# The linear map, training and evaluation
# --------------------------------------------------------------------------------------
class LinearProbe(torch.nn.Module):
    """``z = W h`` with W of shape (k, d), plus a root point (k,) for the polar probe."""

    def __init__(self, dim: int, rank: int, generator: torch.Generator, init: float = 0.05):
        super().__init__()
        # Hewitt & Manning's uniform(-0.05, 0.05): the polar reference's 1e-5 stalls at the
        # start, since the gradient of ||Wh||^2 is proportional to W.
        self.weight = torch.nn.Parameter(
            (torch.rand(rank, dim, generator=generator) * 2 - 1) * init)
        self.root = torch.nn.Parameter(torch.zeros(rank))

    def forward(self, H: torch.Tensor) -> torch.Tensor:
        return H @ self.weight.T


@dataclass
class FittedMap:
    """A fixed linear map (k, d) with what evaluation needs: relation prototypes (t, k), the
    root point (k,) and an optional separate depth map (k2, d)."""

    weight: np.ndarray
    prototypes: np.ndarray
    root: np.ndarray | None = None
    depth_weight: np.ndarray | None = None


def gather(X: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Word vectors of a batch, (B, L, d), zero at padding."""
    return X[batch.rows] * batch.mask[..., None]


def fit_prototypes(X: torch.Tensor, W: torch.Tensor, batches: list[Batch], n_types: int,
                   max_sentences: int = 5000) -> np.ndarray:
    """Mean gold edge vector per relation type over at most ``max_sentences`` train sentences.

    Returns (n_types, k); types with no train edge get a zero prototype (never predicted).
    """
    k = W.shape[0]
    sums = torch.zeros(n_types, k, dtype=torch.float64)
    counts = torch.zeros(n_types, dtype=torch.float64)
    seen = 0
    with torch.no_grad():
        for batch in batches:
            if seen >= max_sentences:
                break
            seen += len(batch.sent)
            E, rel = edge_vectors(gather(X, batch) @ W.T, batch.heads, batch.rels)
            keep = rel >= 0
            sums.index_add_(0, rel[keep], E[keep].double())
            counts += torch.bincount(rel[keep], minlength=n_types).double()
    protos = sums / counts.clamp_min(1.0)[:, None]
    return protos.numpy()


def fit_root(X: torch.Tensor, W: torch.Tensor, batches: list[Batch]) -> np.ndarray:
    """Mean projected root word over train: the root point of an untrained map."""
    total, n = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            Z = gather(X, batch) @ W.T
            R = Z[(batch.heads == -1) & batch.mask]
            total = total + R.double().sum(0)
            n += len(R)
    return (total / max(n, 1)).numpy()


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


def _orient(parent, Zn, nodes, protos):
    """Label and orient MST edges: returns (b, u, v, head, dep, label) arrays."""
    b, u = np.nonzero((parent >= 0) & nodes)
    v = parent[b, u]
    vec = Zn[b, u] - Zn[b, v]
    _, C = nearest_prototype(vec, protos)
    label = np.abs(C).argmax(1)
    u_heads = C[np.arange(len(label)), label] > 0
    return b, u, v, np.where(u_heads, u, v), np.where(u_heads, v, u), label


def _tree_counts(parent, Zn, heads, rels, nodes, protos):
    """Per sentence: correct undirected, directed and labelled edges, and gold edge count."""
    B = parent.shape[0]
    b, u, v, head, dep, label = _orient(parent, Zn, nodes, protos)
    und = (heads[b, u] == v) | (heads[b, v] == u)
    directed = heads[b, dep] == head
    labelled = directed & (rels[b, dep] == label)
    gold = (heads >= 0) & nodes & np.take_along_axis(nodes, np.maximum(heads, 0), axis=1)
    return (np.bincount(b, und, B), np.bincount(b, directed, B), np.bincount(b, labelled, B),
            gold.sum(1))


def _example_tree(i, parent, Zn, heads, rels, nodes, protos):
    b, u, v, head, dep, label = _orient(parent[i:i + 1], Zn[i:i + 1], nodes[i:i + 1], protos)
    return {"pred_head": head, "pred_dep": dep, "pred_rel": label,
            "gold_head": heads[i], "gold_rel": rels[i], "nodes": nodes[i]}


def train_map(X: torch.Tensor, train: list[Batch], dev: list[Batch], *, rank: int,
              kind: str, lam: float, beta: float, lr: float, epochs: int, patience: int,
              seed: int, n_types: int, dev_corpus: Corpus | None = None) -> dict:
    """Train one probe map. ``kind``: "distance", "depth" or "polar".

    Selection: the epoch with the lowest dev loss ("distance", "depth", as Hewitt & Manning)
    or the highest dev LAS ("polar", as the polar reference), with ReduceLROnPlateau(0.1,
    patience 0) and early stopping after ``patience`` epochs without improvement.
    Returns dict(weight (k, d), root (k,), epochs run, best epoch, history of dev scores).
    """
    gen = torch.Generator().manual_seed(seed)
    model = LinearProbe(X.shape[1], rank, gen)
    params = list(model.parameters()) if kind == "polar" else [model.weight]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)

    def loss_of(batch):
        Z = model(gather(X, batch))
        if kind == "depth":
            return depth_loss(Z, batch)
        loss = distance_loss(Z, batch)
        if kind == "polar":
            loss = loss + lam * angular_loss(Z, batch) + beta * root_loss(Z, batch, model.root)
        return loss

    best, best_state, best_epoch, history, waited = -np.inf, None, -1, [], 0
    for epoch in range(epochs):
        for j in torch.randperm(len(train), generator=gen).tolist():
            opt.zero_grad()
            loss_of(train[j]).backward()
            opt.step()
        with torch.no_grad():
            dev_loss = float(np.mean([loss_of(b).item() for b in dev]))
        if kind == "polar":
            W = model.weight.detach()
            fitted = FittedMap(W.numpy().copy(), fit_prototypes(X, W, train, n_types),
                               model.root.detach().numpy().copy())
            sc = score(X, fitted, dev_corpus, dev, n_types, spearman=False)
            crit = sc.las[:, 0].sum() / max(sc.las[:, 1].sum(), 1)
        else:
            crit = -dev_loss
        history.append(float(crit))
        sched.step(dev_loss)
        if crit > best + 1e-6:
            best, best_epoch, waited = crit, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    model.load_state_dict(best_state)
    return {"weight": model.weight.detach().numpy().copy(),
            "root": model.root.detach().numpy().copy(), "epochs": epoch + 1,
            "best_epoch": best_epoch, "history": history}


# --------------------------------------------------------------------------------------
# Bootstrap over sentences
# --------------------------------------------------------------------------------------
class SentenceBootstrap:
    """Corpus-level parsing metrics with percentile intervals over dev sentences.

    One :class:`~geoprobe.stats.ClusterBootstrap` over sentences (``kernel``) is shared by
    every metric of a layer; the statistics below are computed from per-sentence sums.
    counts : int array (n_boot, n_sent), sentence counts of each replicate.
    """

    def __init__(self, n_sent: int, n_boot: int, level: float, rng: np.random.Generator):
        self.kernel = ClusterBootstrap(None, n_sent, n_boot=n_boot, rng=rng, unit="sentences",
                                       level=level)
        self.counts = self.kernel.counts

    def _metric(self, name, value, boot, labels, higher=True):
        return self.kernel.metric(name, value, boot, higher_is_better=higher, **labels)

    def ratio(self, name, num_den: np.ndarray, **labels) -> Metric:
        """Corpus-level ``sum(num) / sum(den)`` over sentences; num_den of shape (n_sent, 2)."""
        num, den = num_den[:, 0], num_den[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = (self.counts @ num) / (self.counts @ den)
        return self._metric(name, num.sum() / max(den.sum(), 1e-300), boot, labels)

    def mean(self, name, value_valid: np.ndarray, **labels) -> Metric:
        """Mean of per-sentence values over sentences where they are defined."""
        return self.ratio(name, np.stack([value_valid[:, 0] * value_valid[:, 1],
                                          value_valid[:, 1]], 1), **labels)

    def length_average(self, name, values: np.ndarray, lengths: np.ndarray, lo=5, hi=50,
                       **labels) -> Metric:
        """Mean within each sentence length in [lo, hi], then mean over lengths (DSpr/NSpr)."""
        ok = np.isfinite(values) & (lengths >= lo) & (lengths <= hi)
        lens = np.unique(lengths[ok])
        M = (lengths[:, None] == lens[None, :]) & ok[:, None]
        v = np.where(ok, values, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.nanmean((v @ M) / M.sum(0)) if len(lens) else np.nan
            boot = np.nanmean(((self.counts * v) @ M) / (self.counts @ M), axis=1) \
                if len(lens) else np.full(len(self.counts), np.nan)
        return self._metric(name, value, boot, labels)

    def balanced(self, name, correct: np.ndarray, total: np.ndarray, **labels) -> Metric:
        """Mean over relation types of per-type recall; correct, total of shape (n_sent, t)."""
        def bal(c, t):
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.nanmean(np.where(t > 0, c / t, np.nan), axis=-1)
        return self._metric(name, bal(correct.sum(0), total.sum(0)),
                            bal(self.counts @ correct, self.counts @ total), labels)


def scores_to_metrics(boot: SentenceBootstrap, sc: SentenceScores, **labels) -> list[Metric]:
    """Every dev metric of one fitted map, both conventions, with sentence-bootstrap CIs."""
    rel = np.stack([sc.rel_correct.sum(1), sc.rel_total.sum(1)], 1)
    ref_rel = np.stack([sc.ref_rel_correct.sum(1), sc.ref_rel_total.sum(1)], 1)
    out = [boot.ratio("uuas", sc.uuas, **labels), boot.ratio("uas", sc.uas, **labels),
           boot.ratio("las", sc.las, **labels), boot.ratio("root_accuracy", sc.root, **labels),
           boot.length_average("dspr", sc.dspr, sc.lengths, **labels),
           boot.ratio("relation_accuracy", rel, **labels),
           boot.balanced("relation_balanced_accuracy", sc.rel_correct, sc.rel_total, **labels),
           boot.mean("ref_uuas", sc.ref_uuas, **labels), boot.mean("ref_uas", sc.ref_uas, **labels),
           boot.mean("ref_las", sc.ref_las, **labels),
           boot.ratio("ref_root_accuracy", sc.ref_root, **labels),
           boot.ratio("ref_relation_accuracy", ref_rel, **labels),
           boot.balanced("ref_relation_balanced_accuracy", sc.ref_rel_correct, sc.ref_rel_total,
                         **labels)]
    if sc.nspr is not None:
        out.append(boot.length_average("nspr", sc.nspr, sc.lengths, **labels))
    return out


# --------------------------------------------------------------------------------------
# The probes
# --------------------------------------------------------------------------------------
class _SyntaxProbe(Probe):
    """Shared machinery: splits, batches, layer and rank sweeps, baselines, figure arrays."""

    requires = Requirements(columns=SYNTAX_COLUMNS, min_items=4)
    #: the parameters both probes share
    common_constraints = {
        "rank": [POSITIVE_INT], "lr": [POSITIVE], "epochs": [POSITIVE_INT],
        "patience": [POSITIVE_INT],
        "ranks": [Options({"auto"}), SequenceOf(POSITIVE_INT, min_len=1), None],
        "baselines": [bool],
        "train_split": [str], "dev_split": [str],
        "max_train_sentences": [Interval(int, 0, None), None],
        "max_tokens": [POSITIVE_INT], "n_boot": [POSITIVE_INT], "level": [OPEN_UNIT],
        "plot_types": [POSITIVE_INT], "plot_edges": [POSITIVE_INT],
    }
    metric_directions = {"uuas": True, "uas": True, "las": True, "root_accuracy": True,
                         "dspr": True, "nspr": True, "relation_accuracy": True,
                         "relation_balanced_accuracy": True, "ref_*": True}
    kind = ""

    @classmethod
    def example_input(cls, rng) -> Example:
        from geoprobe.datasets.planted_trees import planted_trees

        # planted trees stand in for a treebank run through a language model
        emb = planted_trees(n_sentences=40, dim=24, rank=18, n_layers=2, max_len=10,
                            seed=int(rng.integers(2**31)))
        return Example(emb, {"rank": 8, "epochs": 2, "ranks": None, "n_boot": 20,
                             "plot_types": 3, "plot_edges": 20})
    #: the metric that picks the best layer for the rank sweep and the figure
    select_metric = "uuas"

    def _store(self, params: dict) -> None:
        """Keep the ``__init__`` arguments unchanged (scikit-learn's convention)."""
        for name in self._param_names():
            setattr(self, name, params[name])

    def _setup(self, ctx):
        items = ctx.items
        split = np.asarray(items["split"]).astype(str)
        rows = {}
        for role, value in (("train", self.train_split), ("dev", self.dev_split)):
            rows[role] = np.flatnonzero(split == value)
            if len(rows[role]) == 0:
                raise ProbeInputError(
                    f"probe {self.name!r}: {ctx.embeddings.source} has no rows with "
                    f"split == {value!r} (found {sorted(set(split.tolist()))[:5]}); "
                    f"set {role}_split to the value that marks the {role} rows")
        types = np.unique(relation_type(np.asarray(items["deprel"])[rows["train"]]))
        types = types[types != "root"]
        codes = {t: i for i, t in enumerate(types)}
        src = ctx.embeddings.source
        train = build_corpus(items, rows["train"], codes, source=f"{src} (train)")
        dev = build_corpus(items, rows["dev"], codes, source=f"{src} (dev)")
        if self.max_train_sentences and train.n > self.max_train_sentences:
            train = train.take(np.sort(ctx.rng.choice(train.n, self.max_train_sentences,
                                                      replace=False)))
        return types, train, dev

    def _ranks(self, dim):
        if self.ranks is None:
            return []
        if self.ranks == "auto":
            ranks = [r for r in (8, 16, 32, 64, 128, 256, 512, 1024, 2048) if r < dim] + [dim]
            return ranks
        return [int(r) for r in self.ranks]

    def _fit(self, X, train_b, dev_b, dev, rank, seed, n_types) -> FittedMap:
        raise NotImplementedError

    def evaluate(self, ctx) -> ProbeResult:
        types, train, dev = self._setup(ctx)
        n_types = len(types)
        train_b = make_batches(train, self.max_tokens)
        dev_b = make_batches(dev, self.max_tokens)
        boot = SentenceBootstrap(dev.n, self.n_boot, self.level, ctx.rng)
        example = int(np.argmin(np.abs(dev.lengths - 12)))
        # The random-init twin is itself a control: layer sweep only.
        control = ctx.is_twin
        metrics, per_layer, info_layers = [], {}, {}
        best = None  # (layer, X, fitted, scores) of the best layer so far; one layer in memory
        for layer, Xn in ctx.iter_layers(dtype=np.float32):
            X = torch.from_numpy(np.array(Xn, dtype=np.float32))
            rank = min(self.rank, X.shape[1])
            fitted, meta = self._fit(X, train_b, dev_b, dev, rank, child_seed(ctx.rng), n_types)
            sc = score(X, fitted, dev, dev_b, n_types, example=example)
            ms = scores_to_metrics(boot, sc, layer=layer)
            metrics += ms
            per_layer[layer] = {m.name: m for m in ms}
            info_layers[layer] = meta
            value = per_layer[layer][self.select_metric].value
            if best is None or value > per_layer[best[0]][self.select_metric].value:
                best = (layer, X, fitted, sc)
            if self.baselines and not control:
                for name, base in self._baselines(X, train_b, rank, n_types, ctx.rng).items():
                    metrics += scores_to_metrics(boot, score(X, base, dev, dev_b, n_types),
                                                 layer=layer, baseline=name)
        best, X, fitted, sc = best
        ranks = [] if control else self._ranks(X.shape[1])
        for r in ranks:
            fr, _ = self._fit(X, train_b, dev_b, dev, r, child_seed(ctx.rng), n_types)
            for m in scores_to_metrics(boot, score(X, fr, dev, dev_b, n_types),
                                       layer=best, rank=r):
                if m.name in ("uuas", "las", "dspr", "relation_accuracy", "root_accuracy"):
                    m.name = f"rank_sweep_{m.name}"
                    metrics.append(m)
        arrays = self._figure_arrays(X, fitted, sc, dev, dev_b, types, example, ctx)
        words = (np.asarray(ctx.items["word"])[dev.rows[example, :dev.lengths[example]]]
                 .astype(str).tolist() if "word" in ctx.items else
                 [str(i + 1) for i in range(int(dev.lengths[example]))])
        return self.result(ctx, metrics, arrays, best_layer=best, ranks=ranks,
                           relation_types=types.tolist(), n_train_sentences=train.n,
                           n_dev_sentences=dev.n, training=info_layers,
                           example_sentence=str(dev.sentence_ids[example]),
                           example_words=words)

    def _baselines(self, X, train_b, rank, n_types, rng) -> dict[str, FittedMap]:
        d = X.shape[1]
        W_id = torch.eye(d)
        gen = torch.Generator().manual_seed(child_seed(rng))
        W_rand = torch.randn(rank, d, generator=gen) / np.sqrt(d)
        out = {}
        for name, W in (("identity", W_id), ("random-probe", W_rand)):
            protos = fit_prototypes(X, W, train_b, n_types)
            root = fit_root(X, W, train_b) if self.kind == "polar" else None
            out[name] = FittedMap(W.numpy(), protos, root,
                                  None if self.kind == "polar" else W.numpy())
        return out

    def _figure_arrays(self, X, fitted, sc, dev, dev_b, types, example, ctx) -> dict:
        """Polar-plot coordinates of dev edges (best layer) and the example sentence's trees."""
        W = torch.from_numpy(fitted.weight).float()
        E_all, R_all = [], []
        with torch.no_grad():
            for batch in dev_b:
                E, rel = edge_vectors(gather(X, batch) @ W.T, batch.heads, batch.rels)
                E_all.append(E.double().numpy())
                R_all.append(rel.numpy())
        E, R = np.concatenate(E_all), np.concatenate(R_all)
        counts = np.bincount(R[R >= 0], minlength=len(types))
        top = np.argsort(-counts)[: self.plot_types]
        top = top[counts[top] > 0]
        plane = separating_plane(E, R, top)
        pts, labs = [], []
        for t in top:
            idx = np.flatnonzero(R == t)
            idx = ctx.rng.choice(idx, min(len(idx), self.plot_edges), replace=False)
            pts.append(E[idx] @ plane.T)
            labs.append(np.full(len(idx), t))
        ex = sc.example
        arrays = {"edge_xy": np.concatenate(pts).astype(np.float32),
                  "edge_type": np.concatenate(labs).astype(np.int32)}
        if ex:
            arrays.update({k: np.asarray(v).astype(np.int32) for k, v in ex.items()})
        return arrays

    @classmethod
    def plot(cls, result: ProbeResult):
        fig, axes = new_figure(2, 2, width="double", aspect=0.75)
        for ax in (axes[0][0], axes[1][0], axes[1][1]):
            fig.delaxes(ax)
        _plot_polar(fig.add_subplot(2, 2, 1, projection="polar"), result)
        _plot_layers(axes[0][1], result, cls.curve_metrics)
        _plot_tree(fig.add_subplot(2, 1, 2), result)
        return fig


def separating_plane(E: np.ndarray, R: np.ndarray, types: np.ndarray) -> np.ndarray:
    """The 2-D plane (2, k) that best separates the directions of the given relation types.

    Linear discriminant analysis on unit edge vectors (directions are what the angular loss
    shapes): the top two generalised eigenvectors of between- vs within-type scatter,
    orthonormalised so the plot keeps angles within the plane.
    """
    sel = np.isin(R, types)
    U = E[sel] / np.maximum(np.linalg.norm(E[sel], axis=1, keepdims=True), 1e-12)
    y = R[sel]
    mu = U.mean(0)
    k = U.shape[1]
    Sw, Sb = np.zeros((k, k)), np.zeros((k, k))
    for t in types:
        Ut = U[y == t]
        m = Ut.mean(0)
        Sw += (Ut - m).T @ (Ut - m)
        Sb += len(Ut) * np.outer(m - mu, m - mu)
    Sw += 1e-3 * np.trace(Sw) / k * np.eye(k)
    evals, evecs = np.linalg.eig(np.linalg.solve(Sw, Sb))
    top = evecs[:, np.argsort(-evals.real)[:2]].real
    q, _ = np.linalg.qr(top)
    return q.T


def _plot_polar(ax, result):
    xy, t = result.arrays["edge_xy"], result.arrays["edge_type"]
    types = result.info["relation_types"]
    ang = np.arctan2(xy[:, 1], xy[:, 0])
    rad = np.linalg.norm(xy, axis=1)
    for j, code in enumerate(np.unique(t)):
        sel = t == code
        ax.scatter(ang[sel], rad[sel], s=3, alpha=0.5, color=PALETTE[j % len(PALETTE)],
                   label=types[code], lw=0)
    ax.set_yticklabels([])
    ax.set_title(f"edge vectors at {_layer_label(result.info['best_layer'])}", pad=12)
    ax.legend(frameon=False, fontsize=6, loc="center right", bbox_to_anchor=(-0.12, 0.5),
              markerscale=3)


def _plot_layers(ax, result, names):
    layers = result.info["layers"]
    x = np.arange(len(layers))
    for j, name in enumerate(names):
        ms = result.series(name, at=layers)
        ax.errorbar(x, ms.values, yerr=ms.yerr(), marker="o", ms=3, capsize=2,
                    color=PALETTE[j], label=name.replace("_", " "))
        for baseline, ls in (("identity", ":"), ("random-probe", "-."), ("random-init", "--")):
            b = result.series(name, at=layers, baseline=baseline).values
            if np.isfinite(b).any():
                ok = np.isfinite(b)
                ax.plot(x[ok], b[ok], ls=ls, marker=".", ms=2, color=PALETTE[j], alpha=0.5,
                        lw=1, label=f"{baseline}" if j == 0 else None)
    ax.set_xticks(x, [str(layer).replace("layer_", "") for layer in layers])
    ax.set_xlabel("layer")
    ax.set_ylabel("dev score")
    ax.set_ylim(0, 1)
    ax.set_title("across layers (95% CI)")
    ax.legend(frameon=False, fontsize=6)


def _layer_label(layer) -> str:
    return str(layer) if str(layer).startswith("layer") else f"layer {layer}"


def _plot_tree(ax, result):
    a = result.arrays
    if "gold_head" not in a:
        ax.set_axis_off()
        return
    words = result.info["example_words"]
    types = result.info["relation_types"]
    n = len(words)
    gold_head, gold_rel = a["gold_head"][:n], a["gold_rel"][:n]

    def arc(h, d, up, color, label):
        lo, hi = sorted((h, d))
        mid, w = (lo + hi) / 2, hi - lo
        t = np.linspace(0, np.pi, 30)
        hgt = 0.3 * w ** 0.7 * (1 if up else -1)
        ax.plot(mid - w / 2 * np.cos(t), hgt * np.sin(t), color=color, lw=0.8)
        ax.annotate("", (d, 0.12 if up else -0.12), (d + 0.001, 0.35 if up else -0.35),
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=0.5))
        ax.text(mid, hgt * 1.02, label, ha="center", va="bottom" if up else "top", fontsize=5,
                color=color)

    for d in range(n):
        if gold_head[d] >= 0:
            arc(gold_head[d], d, True, BASELINE_COLOR, types[gold_rel[d]] if gold_rel[d] >= 0
                else "?")
    gold = {(int(gold_head[d]), d, int(gold_rel[d])) for d in range(n) if gold_head[d] >= 0}
    for h, d, r in zip(a["pred_head"], a["pred_dep"], a["pred_rel"]):
        ok_head = (int(h), int(d)) in {(g[0], g[1]) for g in gold}
        color = PALETTE[2] if (int(h), int(d), int(r)) in gold else (
            PALETTE[1] if ok_head else PALETTE[3])
        arc(int(h), int(d), False, color, types[int(r)])
    for i, w in enumerate(words):
        ax.text(i, 0, w, ha="center", va="center", fontsize=6, rotation=90 if n > 18 else 0,
                color="black" if a["nodes"][i] else BASELINE_COLOR)
    ax.set_xlim(-0.7, n - 0.3)
    span = 0.3 * max(n - 1, 1) ** 0.7
    ax.set_ylim(-span * 1.45, span * 1.15)  # room for the caption at the bottom
    ax.set_axis_off()
    caption = ax.text(0.5, 0.0, f"dev sentence {result.info['example_sentence']}\n"
                      f"{_layer_label(result.info['best_layer'])}: gold tree above (grey), "
                      "predicted below (green = right head and label, orange = right head, "
                      "red = wrong)", fontsize=7, ha="center", va="bottom", transform=ax.transAxes)
    caption.set_in_layout(False)  # a long caption must not squeeze the tree


class StructuralProbe(_SyntaxProbe):
    """Hewitt & Manning's structural probe: a distance probe and a depth probe per layer.

    Parameters
    ----------
    rank : int, default 128 (the anchor: performance saturates around 64-128)
    lr : float, default 1e-3 (Adam)
    epochs : int, default 40; patience : int, default 5 (early stopping on dev loss)
    ranks : "auto", list of int or None
        Rank sweep at the best layer (by dev UUAS): "auto" = 8, 16, ... up to the width.
    baselines : bool, default True (identity and random-probe, per layer)
    train_split, dev_split : values of the ``split`` column, default "train" / "dev"
    max_train_sentences : int or None, a random subset of train sentences (for quick runs)
    max_tokens : int, padded words per batch (256, about the 20 sentences of Hewitt & Manning's
        batches; larger batches gave fewer steps per epoch and a worse probe in 6 epochs)
    n_boot, level : bootstrap replicates over dev sentences and interval level
    plot_types, plot_edges : relation types and edges per type in the polar plot

    The distance probe's tree is also labelled and oriented by relation prototypes fitted in
    its space, exactly like the polar probe's ("rooted structural probe" in the polar
    reference), so its ``las``/``relation_accuracy`` compare with the polar probe's.
    """

    name = "structural-probe"
    summary = "Hewitt & Manning structural probe: tree distances and depths (UUAS, DSpr, root, NSpr)."
    kind = "structural"
    select_metric = "uuas"
    curve_metrics = ("uuas", "dspr", "root_accuracy")
    parameter_constraints = _SyntaxProbe.common_constraints

    def __init__(self, rank=128, lr=1e-3, epochs=40, patience=5, ranks="auto", baselines=True,
                 train_split="train", dev_split="dev", max_train_sentences=None,
                 max_tokens=256, n_boot=1000, level=0.95, plot_types=8, plot_edges=150):
        self._store(locals())

    def _fit(self, X, train_b, dev_b, dev, rank, seed, n_types):
        common = dict(rank=rank, lam=0.0, beta=0.0, lr=self.lr, epochs=self.epochs,
                      patience=self.patience, n_types=n_types)
        dist = train_map(X, train_b, dev_b, kind="distance", seed=seed, **common)
        depth = train_map(X, train_b, dev_b, kind="depth", seed=seed + 1, **common)
        W = torch.from_numpy(dist["weight"])
        fitted = FittedMap(dist["weight"], fit_prototypes(X, W, train_b, n_types), None,
                           depth["weight"])
        meta = {"distance_epochs": dist["epochs"], "distance_best_epoch": dist["best_epoch"],
                "depth_epochs": depth["epochs"], "depth_best_epoch": depth["best_epoch"]}
        return fitted, meta


class PolarProbe(_SyntaxProbe):
    """Diego-Simón et al.'s polar probe: distances, edge directions by relation type, a root.

    Parameters
    ----------
    rank : int, default 128
    lam : float, default 10.0
        Weight of the angular loss (the reference's reported runs use about 10; its CLI
        default is 0.01).
    beta : float, default 0.01 (root loss weight)
    lr, epochs, patience : Adam learning rate, maximum epochs, early stopping on dev LAS
    select_sentences : int, default 500
        Dev LAS for checkpoint selection is measured on a fixed random subset of this many dev
        sentences (decoding all of dev every epoch doubled the training time); the reported
        scores use all of dev.
    ranks, baselines, train_split, dev_split, max_train_sentences, max_tokens, n_boot,
    level, plot_types, plot_edges : as :class:`StructuralProbe` (rank sweep at the best layer
    by dev LAS)
    """

    name = "polar-probe"
    summary = "Polar probe: distances plus relation-typed edge directions (LAS, type accuracy)."
    kind = "polar"
    select_metric = "las"
    curve_metrics = ("uuas", "las", "relation_accuracy")
    parameter_constraints = {**_SyntaxProbe.common_constraints,
                             "lam": [NON_NEGATIVE], "beta": [NON_NEGATIVE],
                             "select_sentences": [POSITIVE_INT]}

    def __init__(self, rank=128, lam=10.0, beta=0.01, lr=1e-3, epochs=40, patience=5,
                 ranks="auto", baselines=True, train_split="train", dev_split="dev",
                 max_train_sentences=None, max_tokens=256, n_boot=1000, level=0.95,
                 plot_types=8, plot_edges=150, select_sentences=500):
        self._store(locals())

    def _fit(self, X, train_b, dev_b, dev, rank, seed, n_types):
        # Selecting by dev LAS decodes dev every epoch: a fixed random subset keeps that cheap.
        if dev.n > self.select_sentences:
            pick = np.random.default_rng(seed).choice(dev.n, self.select_sentences, replace=False)
            dev = dev.take(np.sort(pick))
            dev_b = make_batches(dev, self.max_tokens)
        out = train_map(X, train_b, dev_b, kind="polar", rank=rank, lam=self.lam,
                        beta=self.beta, lr=self.lr, epochs=self.epochs, patience=self.patience,
                        seed=seed, n_types=n_types, dev_corpus=dev)
        W = torch.from_numpy(out["weight"])
        fitted = FittedMap(out["weight"], fit_prototypes(X, W, train_b, n_types), out["root"])
        return fitted, {"epochs": out["epochs"], "best_epoch": out["best_epoch"],
                        "dev_las_by_epoch": out["history"]}
