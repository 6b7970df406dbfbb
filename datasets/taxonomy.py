"""Taxonomies as rooted forests: WordNet's noun hierarchy or any parent-child file.

A :class:`Taxonomy` is a forest over ``n_nodes`` named nodes, stored as a parent array. Every
query is vectorised over arrays of node indices: depths, ancestor tests (Euler-tour intervals),
lowest common ancestors (binary lifting) and tree distances, so a few hundred thousand pairs
cost milliseconds.

From a DAG to a tree (the rule, for WordNet and for files alike)
----------------------------------------------------------------
WordNet's noun hierarchy is a DAG: about 2 % of noun synsets have two or more hypernyms. Each
node keeps exactly one parent, **the deepest one**: the parent with the longest path from a
root (``max_depth`` in NLTK's terms), so the node stays as deep as WordNet allows; ties go to the
parent whose name sorts first. Nava & Wyart (2026) turn WordNet into a tree the same way
("max-depth parent"). Instance hypernyms (``paris.n.01`` is an instance of ``city.n.01``) are
parents like the others unless ``instances=False``.

Files
-----
``Taxonomy.from_csv``: a header naming ``child`` and ``parent`` columns (any order, other
columns ignored); one row per edge; a row with an empty parent declares a root. A child listed
with several parents is a DAG and goes through the same deepest-parent rule.
``Taxonomy.from_json``: ``{"child": "parent", ...}`` (a value may be a list of parents or null),
or a nested ``{"name": ..., "children": [...]}`` tree (or a list of them).
"""

from __future__ import annotations

import csv
import math
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from geoprobe.errors import FormatError

def perfect_binary_parents(depth: int) -> np.ndarray:
    """Parent array of the perfect binary tree of ``depth`` in BFS order, shape (2^(depth+1)-1,)."""
    k = 2 ** (depth + 1) - 1
    return np.concatenate([[-1], (np.arange(1, k) - 1) // 2]).astype(np.int64)


class Taxonomy:
    """A rooted forest of named nodes.

    Parameters
    ----------
    names : array-like of shape (n_nodes,) of str, unique
    parent : array-like of shape (n_nodes,) of int, the parent's index or -1 for a root
    source : str, used in error messages

    Attributes
    ----------
    depth : ndarray (n_nodes,) int, edges from the node's root
    order : ndarray (n_nodes,) int, nodes in depth-first preorder (children by name), the
        "tree order" of figures
    tin, tout : ndarray (n_nodes,) int, ``tin[v]`` is v's position in ``order`` and v's
        descendants (itself included) occupy positions ``tin[v] .. tout[v]-1``
    """

    def __init__(self, names, parent, *, source: str = "taxonomy"):
        self.names = np.asarray(names, dtype=object)
        self.parent = np.asarray(parent, dtype=np.int64)
        self.source = source
        n = self.names.shape[0]
        if self.parent.shape != (n,):
            raise FormatError(f"{source}: {self.parent.shape[0]} parents for {n} names")
        if n and (self.parent.min() < -1 or self.parent.max() >= n):
            raise FormatError(f"{source}: parent index out of range")
        self._index = {name: i for i, name in enumerate(self.names.tolist())}
        if len(self._index) != n:
            seen, dup = set(), None
            for name in self.names.tolist():
                if name in seen:
                    dup = name
                    break
                seen.add(name)
            raise FormatError(f"{source}: node name {dup!r} appears twice")
        self.depth = self._depths()
        self._build_order()
        self._up = None

    # -- construction ----------------------------------------------------------------------
    def _depths(self) -> np.ndarray:
        """Depth by pointer jumping, O(n log depth); a cycle never reaches a root."""
        n = self.parent.shape[0]
        anc = self.parent.copy()
        dist = (anc >= 0).astype(np.int64)
        for _ in range(64):
            live = anc >= 0
            if not live.any():
                return dist
            idx = np.flatnonzero(live)
            dist[idx] += dist[anc[idx]]
            anc[idx] = anc[anc[idx]]
        bad = int(np.flatnonzero(anc >= 0)[0]) if n else 0
        raise FormatError(f"{self.source}: the parent links contain a cycle through node "
                          f"{self.names[bad]!r}")

    def _build_order(self) -> None:
        n = self.parent.shape[0]
        # children grouped by parent, sorted by name within a parent
        by_name = np.argsort(self.names.astype(str), kind="stable")
        kids = by_name[self.parent[by_name] >= 0]
        kids = kids[np.argsort(self.parent[kids], kind="stable")]
        self.child_ptr = np.searchsorted(self.parent[kids], np.arange(n + 1))
        self.child_idx = kids
        roots = by_name[self.parent[by_name] < 0]
        order = np.empty(n, dtype=np.int64)
        stack, pos = list(roots[::-1]), 0
        ptr, idx = self.child_ptr, self.child_idx
        while stack:  # one Python step per node: 82k nodes in ~0.1 s, done once
            v = stack.pop()
            order[pos] = v
            pos += 1
            stack.extend(idx[ptr[v]:ptr[v + 1]][::-1].tolist())
        self.order = order
        self.tin = np.empty(n, dtype=np.int64)
        self.tin[order] = np.arange(n)
        size = np.ones(n, dtype=np.int64)
        for d in range(int(self.depth.max(initial=0)), 0, -1):
            at = np.flatnonzero(self.depth == d)
            np.add.at(size, self.parent[at], size[at])
        self.size = size
        self.tout = self.tin + size

    @classmethod
    def from_dag(cls, names, child, parent, *, source: str = "taxonomy") -> "Taxonomy":
        """A tree from DAG edges by the deepest-parent rule (module docstring).

        names : (n_nodes,) str; child, parent : (n_edges,) int indices into ``names``.
        """
        names = np.asarray(names, dtype=object)
        child, parent = np.asarray(child, np.int64), np.asarray(parent, np.int64)
        n = names.shape[0]
        longest = _longest_depths(n, child, parent, names, source)
        # Best parent per child: deepest first, then smallest name.
        name_rank = np.empty(n, dtype=np.int64)
        name_rank[np.argsort(names.astype(str), kind="stable")] = np.arange(n)
        order = np.lexsort((name_rank[parent], -longest[parent], child))
        first = np.ones(order.shape[0], bool)
        first[1:] = child[order][1:] != child[order][:-1]
        chosen = order[first]
        tree_parent = np.full(n, -1, dtype=np.int64)
        tree_parent[child[chosen]] = parent[chosen]
        return cls(names, tree_parent, source=source)

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[str, str | None]], *,
                   source: str = "taxonomy") -> "Taxonomy":
        """From ``(child, parent)`` name pairs; ``parent=None`` declares a root."""
        index: dict[str, int] = {}
        child, parent = [], []
        for c, p in edges:
            ci = index.setdefault(str(c), len(index))
            if p is not None and p != "":
                pi = index.setdefault(str(p), len(index))
                if pi == ci:
                    raise FormatError(f"{source}: node {c!r} is its own parent")
                child.append(ci)
                parent.append(pi)
        names = np.array(list(index), dtype=object)
        return cls.from_dag(names, child, parent, source=source)

    @classmethod
    def from_csv(cls, path) -> "Taxonomy":
        """From a CSV with ``child`` and ``parent`` columns (see the module docstring)."""
        path = Path(path)
        try:
            fh = path.open(newline="", encoding="utf-8")
        except OSError as exc:
            raise FormatError(f"{path}: cannot read taxonomy ({exc.strerror})") from None
        with fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise FormatError(f"{path}: empty taxonomy file")
            cols = [h.strip().lower() for h in header]
            if "child" not in cols or "parent" not in cols:
                raise FormatError(f"{path} line 1: the header must name 'child' and 'parent' "
                                  f"columns, found {header}")
            ci, pi = cols.index("child"), cols.index("parent")
            edges = []
            for lineno, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) <= max(ci, pi) and len(row) <= ci:
                    raise FormatError(f"{path} line {lineno}: no child field in {row}")
                c = row[ci].strip()
                p = row[pi].strip() if len(row) > pi else ""
                if not c:
                    raise FormatError(f"{path} line {lineno}: empty child field")
                edges.append((c, p or None))
        return cls.from_edges(edges, source=str(path))

    @classmethod
    def from_json(cls, path) -> "Taxonomy":
        """From ``{"child": "parent" | [parents] | null}`` or nested name/children trees."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise FormatError(f"{path}: cannot read taxonomy ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg})") from None
        edges: list[tuple[str, str | None]] = []
        if isinstance(doc, Mapping) and "name" not in doc:
            for c, p in doc.items():
                parents = p if isinstance(p, list) else [p]
                for q in parents:
                    if q is not None and not isinstance(q, str):
                        raise FormatError(f"{path}: parent of {c!r} must be a string, a list "
                                          f"of strings or null, found {q!r}")
                    edges.append((c, q))
        elif isinstance(doc, (Mapping, list)):
            stack = [(t, None) for t in (doc if isinstance(doc, list) else [doc])]
            while stack:
                node, par = stack.pop()
                if not isinstance(node, Mapping) or "name" not in node:
                    raise FormatError(f"{path}: every node of a nested tree needs a 'name' "
                                      f"(under {par!r}: {str(node)[:60]})")
                edges.append((str(node["name"]), par))
                stack.extend((ch, str(node["name"])) for ch in node.get("children", []))
        else:
            raise FormatError(f"{path}: expected a JSON object or list, found "
                              f"{type(doc).__name__}")
        return cls.from_edges(edges, source=str(path))

    @classmethod
    def from_file(cls, path) -> "Taxonomy":
        """``.json`` through :meth:`from_json`, anything else through :meth:`from_csv`."""
        path = Path(path)
        return cls.from_json(path) if path.suffix.lower() == ".json" else cls.from_csv(path)

    @classmethod
    def from_wordnet(cls, *, instances: bool = True, path=None) -> "Taxonomy":
        """WordNet's noun hierarchy as a tree (deepest-parent rule); node names are synsets."""
        from geoprobe.datasets.wordnet import noun_data

        data = noun_data(path)
        keep = np.ones(data["edge_child"].shape[0], bool) if instances else ~data["edge_instance"]
        return cls.from_dag(data["names"], data["edge_child"][keep], data["edge_parent"][keep],
                            source="WordNet nouns")

    # -- lookups -----------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return self.names.shape[0]

    def __len__(self) -> int:
        return self.n_nodes

    def __contains__(self, name) -> bool:
        return name in self._index

    def __repr__(self) -> str:
        return (f"Taxonomy(source={self.source!r}, n_nodes={self.n_nodes}, "
                f"roots={int((self.parent < 0).sum())}, max_depth={int(self.depth.max())})")

    def index(self, names, *, missing: str = "raise") -> np.ndarray:
        """Node indices of ``names`` (array-like of str); -1 for unknown ones when
        ``missing="ignore"``."""
        names = np.atleast_1d(np.asarray(names, dtype=object))
        out = np.array([self._index.get(n, -1) for n in names.tolist()], dtype=np.int64)
        if missing == "raise" and (out < 0).any():
            bad = names[out < 0]
            raise FormatError(f"{self.source}: {len(bad)} name(s) not in the taxonomy, e.g. "
                              f"{bad[:3].tolist()}")
        return out

    def children(self, node: int) -> np.ndarray:
        return self.child_idx[self.child_ptr[node]:self.child_ptr[node + 1]]

    @property
    def n_children(self) -> np.ndarray:
        return np.diff(self.child_ptr)

    def is_ancestor(self, a, b) -> np.ndarray:
        """Whether ``a`` is ``b`` or an ancestor of ``b`` (broadcast over index arrays)."""
        a, b = np.asarray(a), np.asarray(b)
        return (self.tin[a] <= self.tin[b]) & (self.tin[b] < self.tout[a])

    def descendants(self, node: int) -> np.ndarray:
        """``node`` and all nodes below it, in tree order."""
        return self.order[self.tin[node]:self.tout[node]]

    def subtree(self, node) -> "Taxonomy":
        """The taxonomy under ``node`` (a name or index), ``node`` becoming its root."""
        node = self.index([node])[0] if isinstance(node, str) else int(node)
        keep = self.descendants(node)
        return self.induced(keep)

    def induced(self, nodes) -> "Taxonomy":
        """The forest on ``nodes`` (indices) in which each node's parent is its nearest
        proper ancestor among ``nodes`` (chains through dropped nodes are contracted)."""
        nodes = np.unique(np.asarray(nodes, dtype=np.int64))
        keep = np.zeros(self.n_nodes, bool)
        keep[nodes] = True
        anc = self.parent.copy()
        todo = np.flatnonzero((anc >= 0) & ~keep[np.maximum(anc, 0)])
        while todo.size:
            anc[todo] = self.parent[anc[todo]]
            todo = todo[(anc[todo] >= 0) & ~keep[np.maximum(anc[todo], 0)]]
        new_index = np.full(self.n_nodes, -1, dtype=np.int64)
        new_index[nodes] = np.arange(nodes.size)
        par = anc[nodes]
        par = np.where(par >= 0, new_index[np.maximum(par, 0)], -1)
        return Taxonomy(self.names[nodes], par, source=self.source)

    # -- distances ---------------------------------------------------------------------------
    def _lifting(self) -> np.ndarray:
        if self._up is None:
            n = self.n_nodes
            levels = max(1, int(self.depth.max(initial=0)).bit_length())
            up = np.empty((levels, n), dtype=np.int64)
            up[0] = np.where(self.parent >= 0, self.parent, np.arange(n))
            for k in range(1, levels):
                up[k] = up[k - 1][up[k - 1]]
            self._up = up
        return self._up

    def lca(self, a, b) -> np.ndarray:
        """Lowest common ancestor of each pair (broadcast); -1 where a and b share no root."""
        a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
        shape = a.shape
        a, b = a.ravel().copy(), b.ravel().copy()
        up = self._lifting()
        swap = self.depth[a] < self.depth[b]
        a[swap], b[swap] = b[swap], a[swap]
        diff = self.depth[a] - self.depth[b]
        for k in range(up.shape[0]):
            bit = (diff >> k) & 1 == 1
            a[bit] = up[k][a[bit]]
        for k in range(up.shape[0] - 1, -1, -1):
            move = up[k][a] != up[k][b]
            a[move], b[move] = up[k][a[move]], up[k][b[move]]
        # Same tree: the parents now meet. Different trees: a and b are distinct roots.
        out = np.where(a == b, a, np.where(up[0][a] == up[0][b], up[0][a], -1))
        return out.reshape(shape)

    def distance(self, a, b) -> np.ndarray:
        """Tree distance (edges on the path) of each pair (broadcast); inf across components."""
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        c = self.lca(a, b)
        d = (self.depth[a] + self.depth[b] - 2 * self.depth[np.maximum(c, 0)]).astype(float)
        return np.where(c >= 0, d, np.inf)

    def pairwise_distances(self, nodes) -> np.ndarray:
        """(k, k) tree distances among ``nodes`` of shape (k,)."""
        nodes = np.asarray(nodes, np.int64)
        return self.distance(nodes[:, None], nodes[None, :])

    # -- sampled perfect binary subtrees ---------------------------------------------------------
    def binary_height(self) -> np.ndarray:
        """(n_nodes,) int: the depth of the deepest perfect binary tree rooted at each node
        whose internal nodes branch into two of their taxonomy children."""
        bh = np.zeros(self.n_nodes, dtype=np.int64)
        ptr = self.child_ptr
        for d in range(int(self.depth.max(initial=0)) - 1, -1, -1):
            at = np.flatnonzero((self.depth == d) & (np.diff(ptr) >= 2))
            for v in at.tolist():  # only branching nodes; second-best child height
                h = np.sort(bh[self.child_idx[ptr[v]:ptr[v + 1]]])
                bh[v] = h[-2] + 1
        return bh

    def sample_binary_subtrees(self, depth: int, n: int, rng: np.random.Generator,
                               roots=None) -> np.ndarray:
        """Sample ``n`` perfect binary subtrees of ``depth`` (with replacement).

        A subtree's root is drawn uniformly among the eligible nodes (those whose
        :meth:`binary_height` is at least ``depth``, optionally restricted to ``roots`` and
        their descendants); each internal node then picks two distinct children uniformly
        among its children that can still carry the remaining depth. Edges of a sample are
        parent-child edges of this taxonomy.

        Returns an int array of shape (n, 2^(depth+1)-1) in the BFS layout of
        :func:`perfect_binary_parents` (slot 0 the root, slot i's children in 2i+1, 2i+2);
        an empty (0, k) array when no node is eligible.
        """
        k = 2 ** (depth + 1) - 1
        bh = self.binary_height()
        eligible = bh >= depth
        if roots is not None:
            within = np.zeros(self.n_nodes, bool)
            for r in np.atleast_1d(roots):
                within[self.descendants(int(r))] = True
            eligible &= within
        cand = np.flatnonzero(eligible)
        out = np.empty((n, k), dtype=np.int64)
        if cand.size == 0:
            return out[:0]
        out[:, 0] = cand[rng.integers(0, cand.size, n)]
        # Children sorted by binary height (descending) per parent, so the children able to
        # carry height h form a prefix whose length is counted per node.
        kids = self.child_idx
        parent_of_kid = np.repeat(np.arange(self.n_nodes), np.diff(self.child_ptr))
        kids_sorted = kids[np.lexsort((-bh[kids], parent_of_kid))]
        for level in range(depth):
            need = depth - level - 1
            count = np.bincount(self.parent[kids[bh[kids] >= need]], minlength=self.n_nodes)
            lo, hi = 2 ** level - 1, 2 ** (level + 1) - 1
            front = out[:, lo:hi]
            c = count[front]
            i1 = np.floor(rng.random(front.shape) * c).astype(np.int64)
            i2 = np.floor(rng.random(front.shape) * (c - 1)).astype(np.int64)
            i2 += i2 >= i1
            base = self.child_ptr[front]
            out[:, 2 * lo + 1:2 * hi + 1:2] = kids_sorted[base + i1]
            out[:, 2 * lo + 2:2 * hi + 2:2] = kids_sorted[base + i2]
        return out


    def sample_leaf_subtrees(self, depth: int, n: int, rng: np.random.Generator, items,
                             roots=None) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``n`` perfect binary subtrees of ``depth`` whose ``2^depth`` leaves are items.

        For vector sets that live on leaves only. The subtrees are sampled
        (:meth:`sample_binary_subtrees`) in the tree that keeps the ``items`` and those of
        their ancestors where at least two children lead to items (chains of single-child
        nodes contracted); each of a subtree's bottom nodes is then replaced by a uniformly
        drawn item in its subtree (itself if it is an item). Bottom nodes are disjoint
        subtrees, so the leaves are distinct.

        items : node indices that carry vectors; roots : optional node indices, as in
        :meth:`sample_binary_subtrees`. Returns ``(leaves, tops)``: leaves (n_sampled,
        2^depth) node indices in left-to-right order, tops (n_sampled,) each subtree's root;
        empty when no subtree exists.
        """
        items = np.unique(np.asarray(items, dtype=np.int64))
        pos = np.sort(self.tin[items])
        item_at = self.order[pos]  # items in tree order
        below = (np.searchsorted(pos, self.tout) - np.searchsorted(pos, self.tin)) > 0
        leading = np.bincount(self.parent[below & (self.parent >= 0)], minlength=self.n_nodes)
        keep = np.flatnonzero(below & (leading >= 2))
        keep = np.union1d(keep, items)
        tree = self.induced(keep)  # tree's node i is keep[i]
        if roots is not None:
            wanted = np.atleast_1d(np.asarray(roots, dtype=np.int64))
            roots = np.flatnonzero(self.is_ancestor(wanted[:, None], keep[None, :]).any(0))
        S = tree.sample_binary_subtrees(depth, n, rng, roots=roots)
        bottom = keep[S[:, 2 ** depth - 1:]]
        lo = np.searchsorted(pos, self.tin[bottom])
        hi = np.searchsorted(pos, self.tout[bottom])
        pick = lo + np.floor(rng.random(bottom.shape) * (hi - lo)).astype(np.int64)
        return item_at[pick], keep[S[:, 0]]


def _longest_depths(n: int, child: np.ndarray, parent: np.ndarray, names, source) -> np.ndarray:
    """Longest path from a root to each node of a DAG (Kahn's order, vectorised by wave)."""
    depth = np.zeros(n, dtype=np.int64)
    indeg = np.bincount(child, minlength=n)
    order = np.argsort(parent, kind="stable")
    p_sorted, c_sorted = parent[order], child[order]
    ptr = np.searchsorted(p_sorted, np.arange(n + 1))
    wave = np.flatnonzero(indeg == 0)
    done = 0
    while wave.size:
        done += wave.size
        starts, stops = ptr[wave], ptr[wave + 1]
        lens = stops - starts
        if not lens.sum():
            break
        edge = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        kids = c_sorted[edge]
        np.maximum.at(depth, kids, np.repeat(depth[wave] + 1, lens))
        np.subtract.at(indeg, kids, 1)
        wave = np.unique(kids[indeg[kids] == 0])
    if done < n:
        bad = np.flatnonzero(indeg > 0)[0]
        raise FormatError(f"{source}: the parent links contain a cycle through node "
                          f"{names[bad]!r}")
    return depth


def random_tree(depth: int = 6, branching=(2, 3), rng=None) -> Taxonomy:
    """A random rooted tree: every node above ``depth`` gets a uniform number of children in
    ``branching`` (inclusive range). Node names are ``"t0"``, ``"t1"``, ... in BFS order."""
    parents, frontier, n = [-1], [0], 1
    lo, hi = branching
    for _ in range(depth):
        counts = rng.integers(lo, hi + 1, len(frontier))
        new = np.repeat(np.array(frontier), counts)
        parents.extend(new.tolist())
        frontier = list(range(n, n + new.size))
        n += new.size
    return Taxonomy(np.char.add("t", np.arange(n).astype(str)).astype(object), np.array(parents),
                    source="random tree")


def tree_markov_vectors(tax: Taxonomy, dim: int, beta: float, rng) -> np.ndarray:
    """Gaussian vectors whose Gram is ``dim * exp(-beta d_tree)`` in expectation.

    Each coordinate is a stationary Gaussian Markov process down the tree: a child is
    ``rho * parent + sqrt(1 - rho^2) * noise`` with ``rho = exp(-beta)``, so two nodes at tree
    distance d correlate ``rho^d``. Returns float64 (n_nodes, dim).
    """
    rho = math.exp(-beta)
    X = rng.standard_normal((tax.n_nodes, dim))
    for d in range(1, int(tax.depth.max(initial=0)) + 1):
        at = np.flatnonzero(tax.depth == d)
        X[at] = rho * X[tax.parent[at]] + math.sqrt(1 - rho ** 2) * X[at]
    return X


def planted_taxonomy(depth: int = 6, branching=(2, 3), dim: int = 256, beta: float = 1.0,
                     seed: int = 0):
    """Generator ``planted-taxonomy``: vectors drawn from a known tree kernel on a random tree.

    The tree (:func:`random_tree`) travels in the provenance (``taxonomy``: a child-to-parent
    mapping) so the taxonomy probes find it without a file; each item's node is its ``node``
    column. Layers: ``tree`` (the planted vectors, Gram ~ dim * exp(-beta d)) and
    ``shuffled`` (the same vectors permuted across nodes: no tree structure).

    Returns an EmbeddingSet of shape (2, n_nodes, dim).
    """
    from geoprobe.embeddings import EmbeddingSet

    rng = np.random.default_rng(seed)
    tax = random_tree(depth, tuple(branching), rng)
    X = tree_markov_vectors(tax, dim, beta, rng)
    names = tax.names.astype(str)
    mapping = {n: (names[p] if p >= 0 else None) for n, p in zip(names, tax.parent.tolist())}
    prov = {"model": "generated:planted-taxonomy", "taxonomy": mapping,
            "generator": {"name": "planted-taxonomy", "depth": depth,
                          "branching": list(branching), "dim": dim, "beta": beta, "seed": seed}}
    return EmbeddingSet(np.stack([X, X[rng.permutation(tax.n_nodes)]]).astype(np.float32),
                        {"item_id": names, "node": names}, provenance=prov,
                        layer_names=["tree", "shuffled"], source="generated:planted-taxonomy")
