"""Taxonomy trees: the DAG rule, distances, files, induced trees, sampled binary subtrees."""

import json
from collections import deque

import numpy as np
import pytest

from geoprobe.datasets.taxonomy import (
    Taxonomy, perfect_binary_parents, planted_taxonomy, random_tree,
)
from geoprobe.errors import FormatError


def brute_distances(tax):
    """All-pairs path lengths by BFS over the undirected tree (forest: inf across trees)."""
    n = tax.n_nodes
    adj = [[] for _ in range(n)]
    for c, p in enumerate(tax.parent.tolist()):
        if p >= 0:
            adj[c].append(p)
            adj[p].append(c)
    D = np.full((n, n), np.inf)
    for s in range(n):
        D[s, s] = 0
        q = deque([s])
        while q:
            v = q.popleft()
            for w in adj[v]:
                if D[s, w] == np.inf:
                    D[s, w] = D[s, v] + 1
                    q.append(w)
    return D


def test_deepest_parent_rule_and_ties():
    # x has parents a (depth 1) and c (depth 2): c wins; y has two parents at equal depth:
    # the name that sorts first wins.
    edges = [("a", "r"), ("b", "r"), ("c", "b"), ("x", "a"), ("x", "c"),
             ("y", "b"), ("y", "a"), ("r", None)]
    t = Taxonomy.from_edges(edges)
    name = lambda i: t.names[i]  # noqa: E731
    assert name(t.parent[t.index(["x"])[0]]) == "c"
    assert name(t.parent[t.index(["y"])[0]]) == "a"
    assert t.depth[t.index(["x"])[0]] == 3


def test_distances_match_bfs_including_forests():
    rng = np.random.default_rng(1)
    tree = random_tree(4, (1, 3), rng)
    # make a forest: detach one depth-1 subtree
    parent = tree.parent.copy()
    parent[1] = -1
    forest = Taxonomy(tree.names, parent)
    for tax in (tree, forest):
        nodes = np.arange(tax.n_nodes)
        np.testing.assert_array_equal(tax.pairwise_distances(nodes), brute_distances(tax))
    assert forest.lca(1, 2) == -1
    assert tree.is_ancestor(0, np.arange(tree.n_nodes)).all()


def test_tree_order_and_subtree():
    t = Taxonomy.from_edges([("b", "r"), ("a", "r"), ("a2", "a"), ("a1", "a"), ("r", None)])
    assert t.names[t.order].tolist() == ["r", "a", "a1", "a2", "b"]
    sub = t.subtree("a")
    assert sorted(sub.names.tolist()) == ["a", "a1", "a2"]
    assert sub.depth[sub.index(["a1"])[0]] == 1


def test_induced_tree_contracts_chains():
    t = Taxonomy.from_edges([("m", "r"), ("x", "m"), ("y", "m"), ("z", "x"), ("r", None)])
    ind = t.induced(t.index(["r", "z", "y"]))
    par = {ind.names[i]: (ind.names[p] if p >= 0 else None) for i, p in enumerate(ind.parent)}
    assert par == {"r": None, "z": "r", "y": "r"}


def test_csv_and_json_through_the_same_interface(tmp_path):
    csv_path = tmp_path / "tax.csv"
    csv_path.write_text("parent,child,note\n,animal,root\nanimal,dog,\nanimal,cat,\n"
                        "dog,puppy,\n")
    js_path = tmp_path / "tax.json"
    js_path.write_text(json.dumps({"name": "animal", "children": [
        {"name": "dog", "children": [{"name": "puppy"}]}, {"name": "cat"}]}))
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"animal": None, "dog": "animal", "cat": ["animal"],
                                "puppy": "dog"}))
    trees = [Taxonomy.from_file(p) for p in (csv_path, js_path, flat)]
    for t in trees:
        i = t.index(["puppy", "cat"])
        assert t.distance(i[0], i[1]) == 3
        assert t.names[t.parent[i[0]]] == "dog"


def test_bad_files_name_the_problem(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("from,to\na,b\n")
    with pytest.raises(FormatError, match="bad.csv line 1.*child.*parent"):
        Taxonomy.from_csv(p)
    p.write_text("child,parent\na,b\nb,a\n")
    with pytest.raises(FormatError, match="cycle"):
        Taxonomy.from_csv(p)
    j = tmp_path / "bad.json"
    j.write_text('{"a": }')
    with pytest.raises(FormatError, match="bad.json line 1"):
        Taxonomy.from_json(j)


def test_sampled_binary_subtrees_are_valid_and_seeded():
    rng = np.random.default_rng(0)
    tax = random_tree(5, (1, 4), rng)
    depth = 3
    S = tax.sample_binary_subtrees(depth, 500, np.random.default_rng(7))
    par = perfect_binary_parents(depth)
    assert S.shape == (500, 15)
    # every slot's node is the taxonomy child of its parent slot's node; siblings distinct
    np.testing.assert_array_equal(tax.parent[S[:, 1:]], S[:, par[1:]])
    assert (S[:, 1::2] != S[:, 2::2]).all()
    assert (tax.binary_height()[S[:, 0]] >= depth).all()
    np.testing.assert_array_equal(S, tax.sample_binary_subtrees(depth, 500,
                                                                np.random.default_rng(7)))
    # restricting to roots keeps samples inside
    r = S[0, 1]
    inside = tax.sample_binary_subtrees(2, 50, rng, roots=[r])
    assert tax.is_ancestor(r, inside).all()


def test_planted_generator_records_its_tree():
    emb = planted_taxonomy(depth=3, dim=16, seed=3)
    mapping = emb.provenance["taxonomy"]
    assert len(mapping) == emb.n_items
    t = Taxonomy.from_edges(mapping.items())
    assert set(emb.column("node")) == set(t.names)


def test_wordnet_noun_tree():
    t = Taxonomy.from_wordnet()
    assert t.n_nodes == 82115
    assert (t.parent < 0).sum() == 1 and t.names[t.parent < 0][0] == "entity.n.01"
    dog, canine = t.index(["dog.n.01", "canine.n.02"])
    assert t.parent[dog] == canine
    # the rule: every multi-parent synset keeps a parent of maximal depth
    from geoprobe.datasets.wordnet import noun_data

    d = noun_data()
    child, par = d["edge_child"], d["edge_parent"]
    multi = np.flatnonzero(np.bincount(child) > 1)
    assert multi.size > 1000
    deepest = np.zeros(t.n_nodes, dtype=np.int64)
    np.maximum.at(deepest, child, t.depth[par])
    np.testing.assert_array_equal(t.depth[t.parent[multi]], deepest[multi])
