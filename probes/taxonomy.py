"""Taxonomy probes: Gram eigenvectors against a tree kernel, and hierarchical orthogonality.

Both probes read a taxonomy (WordNet's noun tree by default, or a parent-child CSV / JSON file:
``geoprobe.datasets.taxonomy``) and an item column naming each item's node (``synset`` for the
``wordnet-embeddings`` generator). The ``taxonomy`` annotation, when given (a
:class:`~geoprobe.datasets.taxonomy.Taxonomy`, a file path or ``"wordnet"``), overrides the
``taxonomy`` parameter.

Gram-eigenvector probe (Nava & Wyart 2026)
--------------------------------------------------------------------------
Theory: on a tree, the Gram matrix of ideal word vectors is ``M*_ij = f(d_tree(i, j))`` with
``f(d) = exp(-beta d)`` (``kernel="exponential"``, the anchor's default) or ``(1 + d)^-beta``
(``kernel="power"``). The metric compares eigenvectors of the empirical Gram ``X X^T`` with
those of ``M*`` on sampled perfect binary subtrees of depth ``L`` (``K = 2^(L+1) - 1`` nodes,
15 for the anchor's ``L = 3``), as the anchor does:

* ``g(k) = ||U_k^T V_k||_F^2 / k`` for k = 1..K, U_k the top-k empirical eigenvectors of the
  subtree's vectors and V_k the top-k eigenvectors of M*;
* Alignment Area ``AA = (1/K) sum_k (g(k) - k/K)``: the area between the g(k) curve and the
  diagonal k/K that random subspaces follow, on the x-axis k/K (a Riemann sum with step 1/K).

Where we differ, and why:

* **Degenerate theory eigenvalues.** On a perfect binary tree M* has repeated eigenvalues
  (the 2 depth-1 splits share one, the 4 depth-2 splits another), so V_k is not defined when k
  cuts such a block. We use the *average* over all valid choices: the block's projector scaled
  by the fraction of the block taken, ``P_k = P_a + (k-a)/(b-a) P_(a,b]``. This is basis-free
  and equals the anchor's definition wherever eigenvalues are distinct. It makes g(k) < 1
  inside blocks even for perfect vectors, so we also report ``alignment_area_normalised`` =
  AA / AA(M* against itself), which is 1 for vectors whose Gram is M* (0.95 and above for
  small noise) and 0 on the diagonal.
* **Which Gram.** The sampled subtrees' M* is the same K x K matrix for every subtree (all
  have the same shape), so it is eigendecomposed once; each subtree's empirical eigenvectors
  come from its K x K Gram (K < d). The vocabulary-wide n x n Gram is never formed: the
  heatmap's eigenvectors come from ``eigh`` of the d x d matrix ``X^T X`` (``u = X w / s``),
  O(n d^2). The theoretical n x n M* over a whole vocabulary has no closed form for an
  irregular tree and would cost O(n^3); the anchor avoids it by sampling subtrees, and so do we.
* **Node vectors.** Subtrees are sampled in the taxonomy induced on the nodes that have at
  least one item (each node's parent is its nearest ancestor with an item), so a subtree edge
  may skip nodes without words; a node with several items (synonyms) gets their mean vector.
  Subtree roots are drawn uniformly among eligible nodes, two children uniformly at each
  branch (``Taxonomy.sample_binary_subtrees``); the anchor caps subtrees per root instead.
* **Confidence intervals** are a cluster bootstrap over subtrees, with the subtree's root as
  the unit: subtrees sharing a root overlap, so resampling them as independent would be too
  narrow.

Baselines (labels ``baseline=...``): ``random-assignment`` (vectors reassigned to nodes by one
random permutation over all nodes, the same subtrees sampled) and ``within-tree`` (each
subtree's vectors permuted among its own K nodes, which keeps the subtree's spectrum and
breaks only the assignment). Note that with uncentred vectors the top eigenvector of any set
of similar vectors is near-constant, like M*'s Perron vector, so ``within-tree`` sits above
the diagonal by g(1); the distance *above that baseline* is the finding.

Coarse-to-fine: each of the leading ``m`` eigenvectors of a subtree (``m`` = the last
position among M*'s eigenvectors that matches a split, 9 for L = 3) is classified as a
*split* when its best |cosine| with a split vector (a Haar-like wavelet: +1 on one child's
subtree, -1 on the other's, normalised; one per internal node) exceeds its norm in the
"scaling" subspace (vectors constant on each depth level), and a split eigenvector's level is
the depth of its best-matching split. ``coarse_to_fine`` is the Spearman correlation between
eigenvector index and split level over the split eigenvectors of each subtree, averaged over
subtrees (subtrees with fewer than 3 split eigenvectors or constant levels are left out, their
number recorded); the same statistic on M* itself is reported as ``coarse_to_fine_theory``.

Options: ``center`` subtracts the items' mean; ``whiten`` maps x to ``Cov^(-1/2) (x - mu)``
over all items (Park et al.'s causal inner product, which the anchor applies to Gemma).

Hierarchical orthogonality (Park, Choe, Jiang & Veitch, ICLR 2025)
-------------------------------------------------------------------
Vectors are whitened, ``g(x) = Cov^(-1/2) (x - mu)`` over all items (``whiten=False`` skips
it). A concept is a taxonomy node with at least ``min_words`` items in its subtree; chains of
nodes with identical item sets keep only the top node. Concept vectors, per ``estimators``:

* ``lda`` (Park): ``w = pinv(LW(G)) mean(G)`` normalised, ``l = (mean(G) . w) w``, with LW the
  Ledoit-Wolf shrunk covariance of the concept's whitened vectors G (a GEMM and one linear
  solve when m > d, the SVD of the centred G otherwise; no eigendecomposition of d x d);
* ``mean``: ``l = mean(G)``.

Each concept's parent is its nearest ancestor concept. Per (child, parent) pair the metric is
``cos(l_child - l_parent, l_parent)`` (0 = hierarchically orthogonal): reported as the mean
``abs_cosine`` (lower is better) and the mean signed ``cosine``, with a cluster bootstrap over
parents. Baselines: ``random-parent`` (each child paired with a random concept that is neither
its ancestor nor its descendant) and ``shuffled`` (item vectors permuted before concepts are
built, Park's shuffled-unembedding null).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from geoprobe.contract import Interval, NON_NEGATIVE, OPEN_UNIT, Options, POSITIVE_INT, SequenceOf
from geoprobe.errors import ProbeInputError
from geoprobe.plotting import BASELINE_COLOR, PALETTE, new_figure
from geoprobe.probe import Example, Metric, Probe, ProbeResult, Requirements
from geoprobe.stats import ClusterBootstrap

KERNELS = ("exponential", "power")
NODE_SETS = ("auto", "all", "leaves")
ESTIMATORS = ("lda", "mean")
HIST_EDGES = np.linspace(-1.0, 1.0, 101)


# -- shared helpers -------------------------------------------------------------------------
def resolve_taxonomy(spec, ctx):
    """A Taxonomy from the ``taxonomy`` annotation, else the parameter, else the embedding
    set's provenance (generators record theirs), else WordNet."""
    from geoprobe.datasets.taxonomy import Taxonomy

    spec = ctx.annotations.get("taxonomy", spec)
    if spec is None:
        spec = ctx.embeddings.provenance.get("taxonomy", "wordnet")
    if isinstance(spec, Taxonomy):
        return spec
    if isinstance(spec, dict):  # {child: parent or None}
        return Taxonomy.from_edges(spec.items(), source=f"{ctx.embeddings.source} provenance")
    if str(spec).lower() == "wordnet":
        return _wordnet_taxonomy()
    path = Path(str(spec))
    if not path.exists():
        raise ProbeInputError(f"taxonomy {spec!r}: no such file (give 'wordnet', a CSV with "
                              "child,parent columns, or a JSON file)")
    return Taxonomy.from_file(path)


_WORDNET = {}


def _wordnet_taxonomy():
    from geoprobe.datasets.taxonomy import Taxonomy

    if "tree" not in _WORDNET:  # one build per process: the suite runs two probes on it
        _WORDNET["tree"] = Taxonomy.from_wordnet()
    return _WORDNET["tree"]


def item_nodes(ctx, tax, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``ctx`` placed in ``tax`` and their node indices: ``(rows, nodes)``."""
    if column not in ctx.items:
        raise ProbeInputError(f"{ctx.embeddings.source}: no item column {column!r} naming each "
                              f"item's taxonomy node; columns are {ctx.items.names}")
    nodes = tax.index(ctx.column(column).astype(str), missing="ignore")
    rows = np.flatnonzero(nodes >= 0)
    if rows.size < 2:
        sample = ctx.column(column)[:3].tolist()
        raise ProbeInputError(f"{ctx.embeddings.source}: column {column!r} names no node of "
                              f"{tax.source} (first values {sample})")
    return rows, nodes[rows]


def transform(X: np.ndarray, *, center: bool = False, whiten: bool = False,
              eps: float = 1e-6) -> np.ndarray:
    """Centre and/or whiten ``X`` of shape (n, d): ``Cov^(-1/2) (x - mu)`` from a d x d eigh.

    Directions with variance below ``eps`` times the largest are dropped (pseudo-inverse).
    """
    X = np.asarray(X, dtype=np.float64)
    if not (center or whiten):
        return X
    Xc = X - X.mean(0)
    if not whiten:
        return Xc
    lam, W = np.linalg.eigh(Xc.T @ Xc / X.shape[0])
    keep = lam > eps * lam.max()
    return Xc @ (W[:, keep] / np.sqrt(lam[keep]))


def _column_means(values: np.ndarray, groups, unit: str, rng, probe):
    """Cluster bootstrap of the column means of ``values`` (n, m), NaN entries left out.

    Each call draws its own replicates. Returns the :class:`ClusterBootstrap` (for intervals
    and metrics) and the replicate means, shape (n_boot, m).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    boot = ClusterBootstrap(groups, values.shape[0], n_boot=probe.n_boot, rng=rng, unit=unit,
                            level=probe.level)
    ok = np.isfinite(values)
    return boot, boot.ratio(np.where(ok, values, 0.0), ok.astype(float))


def _metric(name, values, groups, unit, rng, probe, labels, higher_is_better=None):
    """Mean of ``values`` (NaNs left out) with a cluster-bootstrap CI."""
    values = np.asarray(values, dtype=float)
    boot, samples = _column_means(values, groups, unit, rng, probe)
    value = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    return boot.metric(name, value, samples[:, 0], higher_is_better=higher_is_better, **labels)


# -- tree-kernel theory ---------------------------------------------------------------------
def tree_kernel(D: np.ndarray, kernel: str = "exponential", beta: float = 1.0) -> np.ndarray:
    """``f(D)`` elementwise: ``exp(-beta D)`` or ``(1 + D)^-beta``."""
    if kernel == "exponential":
        return np.exp(-beta * D)
    if kernel == "power":
        return (1.0 + D) ** (-beta)
    raise ProbeInputError(f"kernel={kernel!r}: expected one of {KERNELS}")


def theory_eigen(M: np.ndarray, rtol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors of M and the weight of each in the averaged top-k projectors.

    M : (K, K) symmetric. Returns ``(V, weights)``: V (K, K) eigenvectors as columns in
    descending eigenvalue order; weights (K, K) with ``P_k = sum_i weights[k-1, i] v_i v_i^T``:
    1 for eigenvectors above k's degenerate block, ``(k - a) / (b - a)`` inside the block
    (positions a+1..b, eigenvalues equal within ``rtol`` of the largest), 0 below.
    """
    lam, V = np.linalg.eigh(M)
    lam, V = lam[::-1], V[:, ::-1]
    K = lam.size
    scale = max(abs(lam[0]), 1e-300)
    breaks = np.flatnonzero(np.abs(np.diff(lam)) > rtol * scale) + 1
    weights = np.zeros((K, K))
    for a, b in zip(np.concatenate([[0], breaks]).tolist(), np.concatenate([breaks, [K]]).tolist()):
        for k in range(a + 1, b + 1):
            weights[k - 1, :a] = 1.0
            weights[k - 1, a:b] = (k - a) / (b - a)
    return V, weights


def averaged_projectors(M: np.ndarray, rtol: float = 1e-8) -> np.ndarray:
    """Projectors ``P_k`` (k = 1..K) onto M's top-k eigenspace, degenerate blocks averaged.

    M : (K, K) symmetric. Returns (K, K, K): ``P[k-1]`` is the projector for k.
    """
    V, weights = theory_eigen(M, rtol)
    return np.einsum("ki,ai,bi->kab", weights, V, V)


def alignment_curves(U: np.ndarray, V: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``g(k) = tr(U_k^T P_k U_k) / k`` for stacks of eigenvector matrices.

    U : (T, K, K) columns = eigenvectors in descending eigenvalue order.
    V, weights : from :func:`theory_eigen`. Returns (T, K). Cost O(T K^3).
    """
    K = V.shape[0]
    C = np.einsum("ai,taj->tij", V, U) ** 2  # (v_i . u_j)^2
    Q = np.einsum("ki,tij->tkj", weights, C)  # u_j^T P_k u_j
    return (Q * np.tril(np.ones((K, K)))).sum(-1) / np.arange(1, K + 1)


def alignment_area(g: np.ndarray) -> np.ndarray:
    """``(1/K) sum_k (g(k) - k/K)`` over the last axis of ``g`` (..., K)."""
    K = g.shape[-1]
    return (g - np.arange(1, K + 1) / K).mean(-1)


def top_eigenvectors(X: np.ndarray) -> np.ndarray:
    """Eigenvectors of the Gram ``X X^T`` of each stacked set, descending.

    X : (T, K, d). Returns (T, K, K) with columns as eigenvectors.
    """
    G = np.einsum("tid,tjd->tij", X, X)
    _, U = np.linalg.eigh(G)
    return U[..., ::-1]


def split_vectors(depth: int, leaves: bool = False) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """Haar-like split vectors and the scaling basis of the perfect binary tree of ``depth``.

    Returns ``(H, split_level, S)``: H (2^depth - 1, K) unit vectors (+ on the left child's
    subtree, - on the right's), split_level (2^depth - 1,) the depth of each split's node,
    S (depth + 1, K) orthonormal indicators of the depth levels. With ``leaves`` the vectors
    live on the ``K = 2^depth`` leaves only (the bottom slots of the BFS layout) and S is the
    one constant vector.
    """
    K = 2 ** (depth + 1) - 1
    level = np.floor(np.log2(np.arange(K) + 1)).astype(int)
    # node j lies in the subtree of i iff shifting j up to i's level gives i (BFS layout)
    lift = np.arange(K)[None, :] + 1
    shift = level[None, :] - level[:, None]
    below = (shift >= 0) & ((lift >> np.maximum(shift, 0)) == (np.arange(K)[:, None] + 1))
    n_int = 2 ** depth - 1
    H = below[2 * np.arange(n_int) + 1].astype(float) - below[2 * np.arange(n_int) + 2]
    H /= np.linalg.norm(H, axis=1, keepdims=True)
    S = (level[None, :] == np.arange(depth + 1)[:, None]).astype(float)
    if leaves:
        H, S = H[:, n_int:], S[depth:, n_int:]
        H /= np.linalg.norm(H, axis=1, keepdims=True)
    S /= np.linalg.norm(S, axis=1, keepdims=True)
    return H, level[:n_int], S


def split_levels(U: np.ndarray, depth: int, min_cosine: float = 0.5,
                 leaves: bool = False) -> np.ndarray:
    """Level of the best-matching split of each eigenvector, -1 for the others.

    An eigenvector is a split when its largest |cosine| with a split vector is at least
    ``min_cosine`` and exceeds its norm in the scaling subspace.

    U : (T, K, m) eigenvectors as columns (K leaves with ``leaves``). Returns int (T, m).
    """
    H, lvl, S = split_vectors(depth, leaves)
    split_score = np.abs(np.einsum("sk,tkm->tsm", H, U))
    scaling = np.linalg.norm(np.einsum("lk,tkm->tlm", S, U), axis=1)
    best = split_score.argmax(1)
    top = split_score.max(1)
    return np.where((top > scaling) & (top >= min_cosine), lvl[best], -1)


def coarse_to_fine(levels: np.ndarray) -> np.ndarray:
    """Per-row Spearman correlation of eigenvector index with split level.

    levels : (T, m) ints, -1 marking non-split eigenvectors (left out). Rows with fewer than 3
    splits or constant levels give NaN. Returns (T,).
    """
    T, m = levels.shape
    mask = levels >= 0
    n = mask.sum(1).astype(float)
    idx_rank = np.cumsum(mask, 1).astype(float)  # index order has no ties
    n_levels = int(levels.max(initial=0)) + 1
    cnt = np.stack([(levels == v).sum(1) for v in range(n_levels)], 1).astype(float)
    below = np.cumsum(cnt, 1) - cnt
    mid = below + (cnt + 1) / 2  # mid-rank of each level value
    lvl_rank = np.take_along_axis(mid, np.maximum(levels, 0), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(mask, idx_rank - (idx_rank * mask).sum(1, keepdims=True) / n[:, None], 0)
        b = np.where(mask, lvl_rank - (lvl_rank * mask).sum(1, keepdims=True) / n[:, None], 0)
        r = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    r[(n < 3) | ~np.isfinite(r)] = np.nan
    return r


class GramEigenTaxonomy(Probe):
    """Top-k eigenspace alignment of word vectors with a tree kernel (Nava & Wyart 2026).

    Parameters
    ----------
    taxonomy : "wordnet", a path to a parent-child CSV / JSON file, or None: the embedding
        set's provenance ``taxonomy`` entry when it has one, else WordNet
    node_column : item column naming each item's taxonomy node
    depth : depth L of the sampled perfect binary subtrees (K = 2^(L+1) - 1 nodes)
    nodes : "all" (every node of a subtree carries a vector), "leaves" (only its K = 2^L
        leaves do: the leaf tree kernel) or "auto" (default: "leaves" when no item's node lies
        below another item's node, as for word lists placed on a tree's leaves, else "all")
    n_subtrees : number of subtrees sampled (with replacement)
    kernel, beta : the theory's f(d): "exponential" exp(-beta d) or "power" (1+d)^-beta
    center, whiten : transform the vectors first (see the module docstring)
    roots : optional list of node names; sample only subtrees under them
    heatmap_root : node whose items the eigenvector heatmap shows (default: the whole tree)
    heatmap_layer : layer drawn in the heatmap (default: the last probed layer)
    n_heatmap : leading eigenvectors in the heatmap
    n_boot, level : bootstrap replicates and interval level
    """

    name = "gram-eigen-taxonomy"
    summary = ("Gram eigenvectors vs a tree kernel on sampled WordNet subtrees: g(k), "
               "Alignment Area, coarse-to-fine splits.")
    memory = ("in memory: one layer in float64 (8 n d bytes) and the sampled subtrees' Gram matrices")
    requires = Requirements(min_items=15)
    parameter_constraints = {
        "taxonomy": [str, Path, dict, None], "node_column": [str], "depth": [Interval(int, 1, 6)],
        "nodes": [Options(NODE_SETS)], "n_subtrees": [POSITIVE_INT], "kernel": [Options(KERNELS)], "beta": [NON_NEGATIVE],
        "center": [bool], "whiten": [bool], "roots": [SequenceOf(str), None],
        "heatmap_root": [str, None], "heatmap_layer": [str, int, None],
        "n_heatmap": [POSITIVE_INT],
        "n_boot": [POSITIVE_INT], "level": [OPEN_UNIT],
    }
    column_parameters = ("node_column",)
    metric_directions = {"alignment_area": True, "alignment_area_normalised": True,
                         "coarse_to_fine": True}

    @classmethod
    def example_input(cls, rng) -> Example:
        from geoprobe.datasets.taxonomy import planted_taxonomy

        # the tree travels in the set's provenance: no WordNet needed
        emb = planted_taxonomy(depth=4, dim=32, seed=int(rng.integers(2**31)))
        return Example(emb, {"node_column": "node", "depth": 2, "n_subtrees": 50,
                             "n_boot": 20})

    def __init__(self, taxonomy=None, node_column="synset", depth=3, nodes="auto",
                 n_subtrees=2000, kernel="exponential", beta=1.0, center=False, whiten=False,
                 roots=None, heatmap_root=None, heatmap_layer=None, n_heatmap=8, n_boot=1000,
                 level=0.95):
        self.taxonomy = taxonomy
        self.node_column = node_column
        self.depth = depth
        self.nodes = nodes
        self.n_subtrees = n_subtrees
        self.kernel = kernel
        self.beta = beta
        self.center = center
        self.whiten = whiten
        self.roots = roots
        self.heatmap_root = heatmap_root
        self.heatmap_layer = heatmap_layer
        self.n_heatmap = n_heatmap
        self.n_boot = n_boot
        self.level = level

    def _check(self):
        if self.kernel not in KERNELS:
            raise ProbeInputError(f"kernel={self.kernel!r}: expected one of {KERNELS}")
        if not (isinstance(self.depth, int) and 1 <= self.depth <= 6):
            raise ProbeInputError(f"depth={self.depth!r}: expected an integer in 1..6")
        if self.n_subtrees < 1:
            raise ProbeInputError(f"n_subtrees={self.n_subtrees!r}: expected >= 1")
        if self.nodes not in NODE_SETS:
            raise ProbeInputError(f"nodes={self.nodes!r}: expected one of {NODE_SETS}")

    def theory(self, leaves: bool = False):
        """M*, its averaged projectors, self-alignment and coarse-to-fine reference; with
        ``leaves`` on the 2^L leaves of the perfect binary tree only (the leaf tree kernel,
        ``d`` the distance between leaves)."""
        from geoprobe.datasets.taxonomy import Taxonomy, perfect_binary_parents

        par = perfect_binary_parents(self.depth)
        tree = Taxonomy(np.arange(par.size).astype(str), par, source="perfect binary tree")
        slots = np.arange(2 ** self.depth - 1 if leaves else 0, par.size)
        D = tree.pairwise_distances(slots)
        M = tree_kernel(D, self.kernel, self.beta)
        V, weights = theory_eigen(M)
        g_self = alignment_curves(V[None], V, weights)[0]
        lv = split_levels(V[None], self.depth, leaves=leaves)[0]
        n_modes = int(np.flatnonzero(lv >= 0).max()) + 1
        c2f = coarse_to_fine(lv[None, :n_modes])[0]
        return {"M": M, "V": V, "weights": weights, "g_self": g_self, "levels": lv,
                "n_modes": n_modes, "coarse_to_fine": c2f}

    def evaluate(self, ctx) -> ProbeResult:
        self._check()
        tax = resolve_taxonomy(self.taxonomy, ctx)
        rows, nodes = item_nodes(ctx, tax, self.node_column)
        uniq, node_of_row = np.unique(nodes, return_inverse=True)
        sub = tax.induced(uniq)  # sub's node i is tax node uniq[i] (induced keeps sorted order)
        wanted = tax.index(list(self.roots)) if self.roots else None
        # word lists often place items on leaves only: then no item's node is below another's
        leaves = self.nodes == "leaves" or (self.nodes == "auto" and bool(np.all(
            sub.parent < 0)))
        if leaves:
            picked, groups = tax.sample_leaf_subtrees(self.depth, self.n_subtrees, ctx.rng,
                                                      uniq, roots=wanted)
            S = np.searchsorted(uniq, picked)  # leaves are item nodes: index them in uniq
        else:
            roots = None if wanted is None else np.flatnonzero(
                tax.is_ancestor(wanted[:, None], uniq[None, :]).any(0))
            S = sub.sample_binary_subtrees(self.depth, self.n_subtrees, ctx.rng, roots=roots)
            groups = S[:, 0]
        if S.shape[0] == 0:
            where = (f"whose {2 ** self.depth} leaves are among the {uniq.size} taxonomy "
                     "nodes that have items (each branching node needs two children with "
                     "items below)" if leaves else
                     f"among the {uniq.size} taxonomy nodes that have items (every node of "
                     "it needs items; nodes='leaves' needs them on leaves only)")
            raise ProbeInputError(f"{ctx.embeddings.source}: no perfect binary subtree of depth "
                                  f"{self.depth} {where}; lower depth or add words")
        th = self.theory(leaves)
        K, m = S.shape[1], th["n_modes"]
        aa_self = float(alignment_area(th["g_self"]))
        perm = ctx.rng.permutation(uniq.size)
        slot_perm = ctx.rng.permuted(np.tile(np.arange(K), (S.shape[0], 1)), axis=1)
        S_within = np.take_along_axis(S, slot_perm, axis=1)
        counts = np.bincount(node_of_row, minlength=uniq.size)[:, None]
        metrics, curves, heat, n_c2f = [], {}, None, {}
        heat_layer = ctx.layers[-1] if self.heatmap_layer is None else str(self.heatmap_layer)
        if heat_layer not in ctx.layers:
            raise ProbeInputError(f"heatmap_layer={self.heatmap_layer!r} is not among the "
                                  f"probed layers {ctx.layers}")
        unit = "subtree roots"
        for layer, X in ctx.iter_layers():
            Z = transform(X[rows], center=self.center, whiten=self.whiten)
            V = np.zeros((uniq.size, Z.shape[1]))
            np.add.at(V, node_of_row, Z)
            V /= counts
            for label, vecs in (("data", V[S]), ("random-assignment", V[perm][S]),
                                ("within-tree", V[S_within])):
                U = top_eigenvectors(vecs)
                g = alignment_curves(U, th["V"], th["weights"])
                aa = alignment_area(g)
                levels = split_levels(U[..., :m], self.depth, leaves=leaves)
                c2f = coarse_to_fine(levels)
                lab = {"layer": layer} if label == "data" else {"layer": layer,
                                                                "baseline": label}
                metrics.append(_metric("alignment_area", aa, groups, unit, ctx.rng, self, lab,
                                       True))
                metrics.append(_metric("alignment_area_normalised", aa / aa_self, groups, unit,
                                       ctx.rng, self, lab, True))
                metrics.append(_metric("coarse_to_fine", c2f, groups, unit, ctx.rng, self, lab,
                                       True))
                boot, samples = _column_means(g, groups, unit, ctx.rng, self)
                mean = g.mean(0)
                lo, hi = np.array([boot.interval(mean[k], samples[:, k])
                                   for k in range(g.shape[1])]).T
                curves.setdefault(label, []).append(np.stack([mean, lo, hi]))
                if label == "data":
                    lv = np.where(levels >= 0, levels, np.nan)
                    with warnings.catch_warnings():  # an index with no split anywhere: NaN
                        warnings.simplefilter("ignore", RuntimeWarning)
                        curves.setdefault("levels", []).append(np.nanmean(lv, 0))
                    n_c2f[layer] = int(np.isfinite(c2f).sum())
            if layer == heat_layer:
                heat = self._heatmap(tax, Z, nodes)
        for name, value in (("alignment_area", aa_self), ("alignment_area_normalised", 1.0),
                            ("coarse_to_fine", th["coarse_to_fine"])):
            metrics.append(Metric(name, value, n=1, unit="theory",
                                  labels={"baseline": "theory"}, higher_is_better=True))
        arrays = {"g_data": np.array(curves["data"]),
                  "g_random": np.array(curves["random-assignment"]),
                  "g_within": np.array(curves["within-tree"]),
                  "g_theory": th["g_self"], "split_level": np.array(curves["levels"]),
                  "split_level_theory": np.where(th["levels"][:m] >= 0, th["levels"][:m],
                                                 np.nan),
                  "heatmap": heat[0]}
        return self.result(ctx, metrics, arrays, n_subtrees=int(S.shape[0]), K=int(K),
                           nodes="leaves" if leaves else "all",
                           n_nodes_with_items=int(uniq.size), n_items_placed=int(rows.size),
                           n_subtree_roots=int(np.unique(groups).size),
                           n_subtrees_with_coarse_to_fine=n_c2f, n_modes=m,
                           heatmap_branches=heat[1], heatmap_items=heat[2],
                           heatmap_layer=heat_layer, taxonomy=tax.source,
                           example_subtree=tax.names[uniq[S[0]]].tolist())

    def _heatmap(self, tax, Z, nodes, max_bins: int = 240):
        """Leading eigenvectors of the items' Gram, in tree order, averaged into bins.

        Eigenvectors come from the d x d matrix Z^T Z (u = Z w / s), never the n x n Gram.
        Returns (array (n_heatmap, n_bins), branches [(name, start_bin, stop_bin)], n_items).
        """
        if self.heatmap_root is not None:
            r = tax.index([self.heatmap_root])[0]
        else:  # the root whose tree holds most items (roots' intervals tile the order)
            roots = np.flatnonzero(tax.parent < 0)
            roots = roots[np.argsort(tax.tin[roots])]
            root_of = np.searchsorted(tax.tin[roots], tax.tin[nodes], side="right") - 1
            r = roots[np.bincount(root_of).argmax()]
        inside = np.flatnonzero(tax.is_ancestor(r, nodes))
        if inside.size < 2:
            return np.zeros((self.n_heatmap, 1)), [], int(inside.size)
        order = inside[np.argsort(tax.tin[nodes[inside]], kind="stable")]
        Y = Z[order]
        lam, W = np.linalg.eigh(Y.T @ Y)
        k = min(self.n_heatmap, Y.shape[1], Y.shape[0])
        lam, W = lam[::-1][:k], W[:, ::-1][:, :k]
        U = Y @ W / np.sqrt(np.maximum(lam, 1e-300))
        U *= np.sign(U[np.abs(U).argmax(0), np.arange(k)])
        n_bins = min(max_bins, Y.shape[0])
        edges = np.linspace(0, Y.shape[0], n_bins + 1).astype(int)
        sums = np.add.reduceat(U, edges[:-1], axis=0)
        binned = (sums / np.diff(edges)[:, None]).T
        binned /= np.abs(binned).max(1, keepdims=True)
        branches = []
        tin_sorted = tax.tin[nodes[order]]
        for c in tax.children(r).tolist():
            a, b = np.searchsorted(tin_sorted, [tax.tin[c], tax.tout[c]])
            if b - a >= 0.04 * Y.shape[0]:
                branches.append((str(tax.names[c]), int(np.searchsorted(edges, a, "right") - 1),
                                 int(np.searchsorted(edges, b, "left"))))
        return binned, branches, int(Y.shape[0])

    @classmethod
    def plot(cls, result: ProbeResult):
        arrays, info = result.arrays, result.info
        layers = info["layers"]
        # aspect 1: at 0.8 the panels left under the shared legend were too flat for the
        # heatmap's eigenvector labels
        fig, axes = new_figure(3, width="double", aspect=1.0)
        ax_h, ax_g, ax_c = axes[0]
        heat = arrays["heatmap"]
        ax_h.imshow(heat, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        branches = info.get("heatmap_branches", [])
        for _, a, _ in branches[1:]:
            ax_h.axvline(a - 0.5, color="k", lw=0.5)
        ax_h.set_yticks(range(heat.shape[0]), [str(i + 1) for i in range(heat.shape[0])])
        # branch names slanted at the style's tick size: level, 5-point names collided and
        # were unreadable in print
        ax_h.set_xticks([(a + b) / 2 - 0.5 for _, a, b in branches],
                        [name.split(".")[0][:12] for name, _, _ in branches], rotation=40,
                        ha="right", rotation_mode="anchor")
        ax_h.set_xlabel(f"{info.get('heatmap_items', '')} items in tree order (binned)")
        ax_h.set_ylabel("eigenvector")
        ax_h.set_title(f"leading eigenvectors, layer {info.get('heatmap_layer', '')}")

        K = arrays["g_theory"].shape[0]
        x = np.arange(1, K + 1)
        ax_g.plot(x, x / K, color=BASELINE_COLOR, ls=":", label="diagonal k/K")
        ax_g.plot(x, arrays["g_theory"], color="k", lw=0.8, ls="--", label="M* itself")
        for key, color, label in (("g_random", BASELINE_COLOR, "random assignment"),
                                  ("g_within", PALETTE[1], "shuffled within tree")):
            mean, lo, hi = arrays[key][-1]
            ax_g.plot(x, mean, color=color, label=label)
            ax_g.fill_between(x, lo, hi, color=color, alpha=0.25, lw=0)
        for i, layer in enumerate(layers):
            mean, lo, hi = arrays["g_data"][i]
            color = PALETTE[(0 if i == len(layers) - 1 else 2 + i) % len(PALETTE)]
            ax_g.plot(x, mean, color=color, marker=".", label=f"layer {layer}")
            ax_g.fill_between(x, lo, hi, color=color, alpha=0.25, lw=0)
        title = f"eigenspace alignment, K = {K}"
        aa = result.metric("alignment_area", layer=layers[-1])
        title += f"\nAA {aa.value:.3f} [{aa.ci_low:.3f}, {aa.ci_high:.3f}]"
        twin = result.find("alignment_area", layer=layers[-1], baseline="random-init")
        if twin is not None:  # a line of its own: on one line it ran into the next panel
            title += f"\nrandom-init {twin.value:.3f}"
        ax_g.set_xlabel("k (top-k eigenspace)")
        ax_g.set_ylabel("g(k)")
        ax_g.set_ylim(0, 1.02)
        ax_g.set_title(title, fontsize=8)

        m = arrays["split_level_theory"].shape[0]
        xm = np.arange(1, m + 1)
        ax_c.plot(xm, arrays["split_level_theory"], "s", color="k", mfc="none",
                  label="M* (theory)")
        hl = info.get("heatmap_layer", layers[-1])
        ax_c.plot(xm, arrays["split_level"][layers.index(hl) if hl in layers else -1], "o-",
                  color=PALETTE[0], label=f"data, layer {hl}")
        ax_c.set_xlabel("eigenvector index")
        ax_c.set_ylabel("mean split level")
        ax_c.invert_yaxis()
        ax_c.set_title("coarse-to-fine splits")
        # one legend under the panels: inside, it covered g(k) curves and M*'s markers
        (h_g, l_g), (h_c, l_c) = (ax.get_legend_handles_labels() for ax in (ax_g, ax_c))
        fig.legend(h_g + h_c, l_g + l_c, loc="outside lower center", ncol=4, frameon=False)
        return fig


# -- hierarchical orthogonality ---------------------------------------------------------------
def ledoit_wolf_direction(G: np.ndarray) -> np.ndarray:
    """Park et al.'s unit direction ``pinv(LW(G)) mean(G)`` normalised, G of shape (m, d).

    LW is the Ledoit-Wolf shrunk covariance ``(1 - s) S + s mu I`` (the estimator
    scikit-learn's ``LedoitWolf`` computes). With more rows than dimensions, S comes from one
    GEMM and the shrunk matrix is solved by Cholesky-based ``solve`` (O(m d^2 + d^3), no
    eigendecomposition); with fewer, from the SVD of the centred G (O(m^2 d)), whose
    complement the shrinkage fills with ``s mu``.
    """
    m, d = G.shape
    mean = G.mean(0)
    Xc = G - mean
    fourth = np.sum(np.sum(Xc ** 2, 1) ** 2) / m
    if m > d:
        S = Xc.T @ Xc / m
        trace, fro2 = np.trace(S), np.sum(S ** 2)
    else:
        _, sing, Wt = np.linalg.svd(Xc, full_matrices=False)
        lam = sing ** 2 / m
        trace, fro2 = lam.sum(), np.sum(lam ** 2)
    mu = trace / d
    delta = (fro2 - 2 * mu * trace + d * mu ** 2) / d
    beta = (fourth - fro2) / (d * m)
    shrink = 0.0 if delta <= 0 else min(beta, delta) / delta
    a, b = 1.0 - shrink, shrink * mu
    if m > d:
        shrunk = a * S + b * np.eye(d)
        try:
            w = np.linalg.solve(shrunk, mean)
        except np.linalg.LinAlgError:  # no shrinkage and a singular S: the pseudo-inverse
            w = np.linalg.lstsq(shrunk, mean, rcond=None)[0]
    else:
        coef = Wt @ mean
        denom = a * lam + b
        tol = 1e-12 * max(denom.max(initial=0.0), 1e-300)
        w = Wt.T @ np.where(denom > tol, coef / np.where(denom > tol, denom, 1.0), 0.0)
        if b > tol:  # the shrunk covariance is b on the complement of G's span
            w += (mean - Wt.T @ coef) / b
    norm = np.linalg.norm(w)
    return w / norm if norm > 0 else w


def concept_vectors(Z: np.ndarray, slices: np.ndarray, estimator: str) -> np.ndarray:
    """One vector per concept from the rows ``Z[order][start:stop]`` of each concept.

    Z : (n, d) rows already in tree order; slices : (n_concepts, 2). Returns (n_concepts, d).
    """
    out = np.empty((slices.shape[0], Z.shape[1]))
    cums = np.vstack([np.zeros(Z.shape[1]), np.cumsum(Z, 0)])
    means = (cums[slices[:, 1]] - cums[slices[:, 0]]) / (slices[:, 1] - slices[:, 0])[:, None]
    if estimator == "mean":
        return means
    for i, (a, b) in enumerate(slices.tolist()):
        w = ledoit_wolf_direction(Z[a:b])
        out[i] = (means[i] @ w) * w
    return out


def child_parent_cosines(L: np.ndarray, child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """``cos(L[child] - L[parent], L[parent])`` per pair, shape (n_pairs,)."""
    diff = L[child] - L[parent]
    num = np.einsum("ij,ij->i", diff, L[parent])
    den = np.linalg.norm(diff, axis=1) * np.linalg.norm(L[parent], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


class HierarchicalOrthogonality(Probe):
    """Park et al.'s hierarchical orthogonality: cos(l_child - l_parent, l_parent) ~ 0.

    Parameters
    ----------
    taxonomy : "wordnet", a path to a parent-child CSV / JSON file, or None: the embedding
        set's provenance ``taxonomy`` entry when it has one, else WordNet
    node_column : item column naming each item's taxonomy node
    min_words : a node is a concept when its subtree holds at least this many items
    estimators : any of "lda" (Park's Ledoit-Wolf estimator) and "mean"
    whiten : Park's causal inner product Cov^(-1/2)(x - mu) first
    n_boot, level : bootstrap replicates and interval level
    """

    name = "hierarchical-orthogonality"
    summary = ("Park et al.'s parent-child orthogonality of concept vectors, vs random-parent "
               "and shuffled baselines.")
    memory = "in memory: one layer in float64 (8 n d bytes) and the concept vectors"
    requires = Requirements(min_items=10)
    parameter_constraints = {
        "taxonomy": [str, Path, dict, None], "node_column": [str], "min_words": [POSITIVE_INT],
        "estimators": [SequenceOf(Options(ESTIMATORS), min_len=1)], "whiten": [bool],
        "n_boot": [POSITIVE_INT], "level": [OPEN_UNIT],
    }
    column_parameters = ("node_column",)
    # orthogonality is |cos| near 0; the signed cosine has no better side
    metric_directions = {"abs_cosine": False, "cosine": None}

    @classmethod
    def example_input(cls, rng) -> Example:
        from geoprobe.datasets.taxonomy import planted_taxonomy

        emb = planted_taxonomy(depth=5, dim=32, seed=int(rng.integers(2**31)))
        return Example(emb, {"node_column": "node", "min_words": 4, "n_boot": 20})

    def __init__(self, taxonomy=None, node_column="synset", min_words=10,
                 estimators=("lda", "mean"), whiten=True, n_boot=1000, level=0.95):
        self.taxonomy = taxonomy
        self.node_column = node_column
        self.min_words = min_words
        self.estimators = estimators
        self.whiten = whiten
        self.n_boot = n_boot
        self.level = level

    def concepts(self, tax, nodes):
        """Concepts, item order and hierarchy for items at ``nodes`` (n,).

        Returns ``(order, concept_nodes, slices, child, parent)``: items sorted in tree order;
        concepts' taxonomy nodes; each concept's [start, stop) in that order; and the
        (child, parent) concept index pairs.
        """
        order = np.argsort(tax.tin[nodes], kind="stable")
        tin_sorted = tax.tin[nodes[order]]
        count = (np.searchsorted(tin_sorted, tax.tout, "left")
                 - np.searchsorted(tin_sorted, tax.tin, "left"))
        par = tax.parent
        same_as_parent = (par >= 0) & (count[np.maximum(par, 0)] == count)
        concept_nodes = np.flatnonzero((count >= self.min_words) & ~same_as_parent)
        slices = np.stack([np.searchsorted(tin_sorted, tax.tin[concept_nodes], "left"),
                           np.searchsorted(tin_sorted, tax.tout[concept_nodes], "left")], 1)
        hier = tax.induced(concept_nodes)
        child = np.flatnonzero(hier.parent >= 0)
        return order, concept_nodes, slices, child, hier.parent[child]

    def evaluate(self, ctx) -> ProbeResult:
        bad = [e for e in self.estimators if e not in ESTIMATORS]
        if bad or not self.estimators:
            raise ProbeInputError(f"estimators={self.estimators!r}: choose from {ESTIMATORS}")
        tax = resolve_taxonomy(self.taxonomy, ctx)
        rows, nodes = item_nodes(ctx, tax, self.node_column)
        order, cnodes, slices, child, parent = self.concepts(tax, nodes)
        if child.size < 2:
            raise ProbeInputError(
                f"{ctx.embeddings.source}: only {cnodes.size} concepts with >= {self.min_words} "
                f"items and {child.size} parent-child pairs; lower min_words or add words")
        # random parents: neither an ancestor nor a descendant of the child
        rand = ctx.rng.integers(0, cnodes.size, child.size)
        for _ in range(100):
            related = (tax.is_ancestor(cnodes[rand], cnodes[child])
                       | tax.is_ancestor(cnodes[child], cnodes[rand]))
            if not related.any():
                break
            rand[related] = ctx.rng.integers(0, cnodes.size, int(related.sum()))
        shuffle = ctx.rng.permutation(rows.size)
        metrics, hists = [], []
        unit = "parent concepts"
        for layer, X in ctx.iter_layers():
            Z = transform(X[rows], center=self.whiten, whiten=self.whiten)
            layer_hist = []
            for est in self.estimators:
                L = concept_vectors(Z[order], slices, est)
                L_shuf = concept_vectors(Z[shuffle][order], slices, est)
                cases = (("data", child_parent_cosines(L, child, parent), parent),
                         ("random-parent", child_parent_cosines(L, child, rand), rand),
                         ("shuffled", child_parent_cosines(L_shuf, child, parent), parent))
                for label, cos, grp in cases:
                    lab = {"layer": layer, "estimator": est}
                    if label != "data":
                        lab["baseline"] = label
                    metrics.append(_metric("abs_cosine", np.abs(cos), grp, unit, ctx.rng, self,
                                           lab, False))
                    metrics.append(_metric("cosine", cos, grp, unit, ctx.rng, self, lab))
                    layer_hist.append(np.histogram(cos[np.isfinite(cos)], HIST_EDGES)[0])
            hists.append(layer_hist)
        arrays = {"histograms": np.array(hists).reshape(len(hists), len(self.estimators), 3, -1),
                  "hist_edges": HIST_EDGES}
        return self.result(ctx, metrics, arrays, n_concepts=int(cnodes.size),
                           n_pairs=int(child.size), n_items_placed=int(rows.size),
                           estimators=list(self.estimators), taxonomy=tax.source,
                           example_pairs=[[str(tax.names[cnodes[c]]), str(tax.names[cnodes[p]])]
                                          for c, p in zip(child[:5], parent[:5])])

    @classmethod
    def plot(cls, result: ProbeResult):
        hist, edges = result.arrays["histograms"], result.arrays["hist_edges"]
        ests, layers = result.info["estimators"], result.info["layers"]
        fig, axes = new_figure(len(ests), width="double" if len(ests) > 1 else "single",
                               aspect=0.75)
        centers = (edges[:-1] + edges[1:]) / 2
        width = edges[1] - edges[0]
        styles = (("child - parent vs parent", PALETTE[0]), ("random parent", PALETTE[3]),
                  ("shuffled vectors", BASELINE_COLOR))
        for e, est in enumerate(ests):
            ax = axes[0][e]
            for j, (label, color) in enumerate(styles):
                h = hist[-1, e, j].astype(float)
                h /= max(h.sum(), 1.0) * width
                ax.step(centers, h, where="mid", color=color, label=label)
                ax.fill_between(centers, h, step="mid", color=color, alpha=0.15, lw=0)
            m = result.metric("abs_cosine", layer=layers[-1], estimator=est)
            ax.set_title(f"{est} estimator, layer {layers[-1]}\nmean |cos| = {m.value:.3f} "
                         f"[{m.ci_low:.3f}, {m.ci_high:.3f}]")
            ax.set_xlabel(r"$\cos(\ell_{\rm child} - \ell_{\rm parent},\ \ell_{\rm parent})$")
            ax.set_ylabel("density")
            ax.axvline(0, color="k", lw=0.5)
        # one legend under the panels: inside, it covered the spike of cosines near 0
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside lower center",
                   ncol=3, frameon=False)
        return fig
