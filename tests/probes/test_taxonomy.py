"""Taxonomy probes: planted truth, definitions, baselines, files, bad input, a real model."""

import numpy as np
import pytest

from geoprobe import make_probe
from geoprobe.datasets.taxonomy import Taxonomy, perfect_binary_parents, planted_taxonomy
from geoprobe.errors import ProbeInputError
from geoprobe.source import resolve_source
from geoprobe.probes.taxonomy import (
    GramEigenTaxonomy, alignment_area, alignment_curves, averaged_projectors,
    child_parent_cosines, ledoit_wolf_direction, split_levels, split_vectors, theory_eigen,
    transform, tree_kernel,
)


@pytest.fixture(scope="module")
def planted():
    # dim large enough that the sampled 15 x 15 Grams sit close to the kernel; a tree large
    # enough (~550 nodes) that shuffled vectors rarely land near their true neighbours
    return planted_taxonomy(depth=6, branching=(2, 3), dim=1024, beta=1.0, seed=0)


@pytest.fixture(scope="module")
def planted_result(planted):
    probe = make_probe("gram-eigen-taxonomy", node_column="node", n_subtrees=600, n_boot=200,
                       heatmap_layer="tree")
    return probe.run(planted, seed=0, progress=False)


def test_planted_tree_kernel_reaches_the_maximum(planted_result):
    r = planted_result
    aa = r.metric("alignment_area_normalised", layer="tree")
    assert aa.value > 0.9 and aa.ci_low > 0.85
    assert r.metric("alignment_area", layer="tree").value > 0.9 * \
        r.metric("alignment_area", baseline="theory").value
    # the right coarse-to-fine order: split levels by eigenvector index as in M*
    theory = r.metric("coarse_to_fine", baseline="theory").value
    assert theory > 0.8
    assert abs(r.metric("coarse_to_fine", layer="tree").value - theory) < 0.1
    levels = r.arrays["split_level"][0]
    ref = r.arrays["split_level_theory"]
    ok = np.isfinite(ref)
    np.testing.assert_allclose(levels[ok], ref[ok], atol=0.1)


def test_shuffled_vectors_sit_on_the_diagonal(planted_result):
    r = planted_result
    for labels in ({"layer": "shuffled"}, {"layer": "tree", "baseline": "random-assignment"}):
        m = r.metric("alignment_area_normalised", **labels)
        assert abs(m.value) < 0.06, labels
    K = r.info["K"]
    g_shuffled = r.arrays["g_data"][1][0]
    np.testing.assert_allclose(g_shuffled, np.arange(1, K + 1) / K, atol=0.06)
    # within-tree shuffling keeps the spectrum, loses most of the alignment
    within = r.metric("alignment_area_normalised", layer="tree", baseline="within-tree").value
    assert within < 0.5 * r.metric("alignment_area_normalised", layer="tree").value


def test_same_seed_same_numbers(planted):
    probe = make_probe("gram-eigen-taxonomy", node_column="node", n_subtrees=50, n_boot=20)
    a, b = (probe.run(planted, seed=4, progress=False) for _ in range(2))
    assert [m.to_dict() for m in a.metrics] == [m.to_dict() for m in b.metrics]


def test_projectors_and_alignment_definitions():
    par = perfect_binary_parents(3)
    tree = Taxonomy(np.arange(15).astype(str), par)
    M = tree_kernel(tree.pairwise_distances(np.arange(15)), "exponential", 1.0)
    P = averaged_projectors(M)
    np.testing.assert_allclose(np.trace(P, axis1=1, axis2=2), np.arange(1, 16), atol=1e-9)
    np.testing.assert_allclose(P[-1], np.eye(15), atol=1e-9)
    # degenerate block (the two depth-1 splits): the averaged projector is basis-free
    V, weights = theory_eigen(M)
    g = alignment_curves(V[None], V, weights)[0]
    # g(k) is tr(U_k^T P_k U_k) / k with the averaged projectors
    np.testing.assert_allclose(g, [np.trace(V[:, :k].T @ P[k - 1] @ V[:, :k]) / k
                                   for k in range(1, 16)])
    assert g[1] == pytest.approx(1.0) and g[2] == pytest.approx(2.5 / 3)
    # random subspaces follow the diagonal on average
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.standard_normal((3000, 15, 15)))[0]
    g_rand = alignment_curves(U, V, weights).mean(0)
    np.testing.assert_allclose(g_rand, np.arange(1, 16) / 15, atol=0.01)
    assert abs(alignment_area(g_rand)) < 0.005
    # M*'s eigenvectors split coarse to fine: root, two depth-1, then four depth-2 splits
    lv = split_levels(V[None], 3)[0]
    assert lv[:9].tolist() == [-1, 0, 1, 1, -1, 2, 2, 2, 2]


def test_whitening_and_ledoit_wolf_match_their_definitions():
    from sklearn.covariance import LedoitWolf

    rng = np.random.default_rng(1)
    X = rng.standard_normal((500, 6)) @ rng.standard_normal((6, 6)) + 3
    Z = transform(X, whiten=True)
    np.testing.assert_allclose(np.cov(Z.T, bias=True), np.eye(6), atol=1e-8)
    for m in (40, 4):  # more rows than dims, and fewer (the pseudo-inverse path)
        G = rng.standard_normal((m, 6)) + rng.standard_normal(6)
        cov = LedoitWolf().fit(G).covariance_
        want = np.linalg.solve(cov, G.mean(0))
        np.testing.assert_allclose(ledoit_wolf_direction(G), want / np.linalg.norm(want),
                                   atol=1e-8)


def test_orthogonality_planted_and_baselines(planted):
    r = make_probe("hierarchical-orthogonality", node_column="node", min_words=8,
                   n_boot=100).run(planted, layers="tree", seed=0, progress=False)
    for est in ("lda", "mean"):
        data = r.metric("abs_cosine", layer="tree", estimator=est)
        rand = r.metric("abs_cosine", layer="tree", estimator=est, baseline="random-parent")
        assert data.value < 0.1 and rand.value > 0.5 and data.ci_high < rand.ci_low
    assert r.info["n_pairs"] == r.info["n_concepts"] - 1
    hist = r.arrays["histograms"]
    assert hist.shape[:3] == (1, 2, 3) and hist[0, 0, 0].sum() == r.info["n_pairs"]
    assert child_parent_cosines(np.array([[1.0, 0], [1.0, 1.0]]), np.array([1]),
                                np.array([0]))[0] == pytest.approx(0.0)


def test_taxonomy_file_gives_the_same_result(planted, tmp_path):
    path = tmp_path / "tree.csv"
    rows = ["child,parent"] + [f"{c},{p or ''}" for c, p in
                               planted.provenance["taxonomy"].items()]
    path.write_text("\n".join(rows) + "\n")
    kw = dict(node_column="node", n_subtrees=40, n_boot=20)
    a = make_probe("gram-eigen-taxonomy", **kw).run(planted, seed=1, progress=False)
    b = make_probe("gram-eigen-taxonomy", taxonomy=str(path), **kw).run(planted, seed=1,
                                                                        progress=False)
    assert a.metric("alignment_area", layer="tree").value == \
        b.metric("alignment_area", layer="tree").value


def test_bad_input_is_named(planted):
    with pytest.raises(ProbeInputError, match="no item column 'synset'"):
        make_probe("gram-eigen-taxonomy").run(planted, progress=False)
    with pytest.raises(ProbeInputError, match="kernel='gauss'"):
        make_probe("gram-eigen-taxonomy", node_column="node", kernel="gauss").run(
            planted, progress=False)
    chain = planted_taxonomy(depth=20, branching=(1, 1), dim=8, seed=0)
    with pytest.raises(ProbeInputError, match="no perfect binary subtree of depth 3"):
        make_probe("gram-eigen-taxonomy", node_column="node").run(chain, progress=False)
    with pytest.raises(ProbeInputError, match="no such file"):
        make_probe("hierarchical-orthogonality", node_column="node",
                   taxonomy="missing.csv").run(planted, progress=False)


def test_figures_render(planted_result, planted, smallest_font):
    fig = planted_result.plot()
    assert len(fig.axes) >= 3
    # readable in print at a double-column width: no text below 6 points
    assert smallest_font(fig) >= 6
    r = make_probe("hierarchical-orthogonality", node_column="node", n_boot=20,
                   estimators=["mean"]).run(planted, layers="tree", seed=0, progress=False)
    fig = r.plot()
    assert len(fig.axes) == 1 and smallest_font(fig) >= 6


def test_real_minilm_beats_its_baselines_and_twin(tmp_path):
    from geoprobe.datasets.wordvectors import wordnet_embeddings

    emb = wordnet_embeddings(monosemous=False, max_words=4000, seed=0, workdir=tmp_path)
    assert resolve_source(emb, twin="auto").twin is not None
    r = GramEigenTaxonomy(depth=2, n_subtrees=300, n_boot=200).run(emb, seed=0,
                                                                    progress=False)
    data = r.metric("alignment_area", layer="input")
    for baseline in ("random-assignment", "within-tree", "random-init"):
        base = r.metric("alignment_area", layer="input", baseline=baseline)
        assert data.ci_low > base.ci_high, baseline


def test_shipped_suite_names_registered_parts():
    import inspect

    from geoprobe.registry import get_generator
    from geoprobe.suite import load_suite

    suite = load_suite("taxonomy-minilm")
    gen = get_generator(suite.sources["minilm"].generate)
    assert set(suite.sources["minilm"].params) <= set(inspect.signature(gen).parameters)
    assert {"workdir", "seed"} <= set(inspect.signature(gen).parameters)
    for spec in suite.probes:
        make_probe(spec.probe, **spec.params)  # raises on unknown parameters
    assert {p.probe for p in suite.probes} == {"gram-eigen-taxonomy",
                                              "hierarchical-orthogonality"}


def _leaves_only(emb):
    """The items of ``emb`` whose node is a leaf of its provenance tree: a leaf-only set."""
    from geoprobe import EmbeddingSet

    parents = {p for p in emb.provenance["taxonomy"].values() if p is not None}
    names = np.asarray(emb.items["node"]).astype(str)
    rows = np.flatnonzero([n not in parents for n in names])
    return EmbeddingSet(np.stack([emb.layer(i)[rows] for i in range(emb.n_layers)]),
                        {"item_id": names[rows], "node": names[rows]},
                        provenance=emb.provenance, layer_names=emb.layer_names,
                        source="leaves")


def test_leaf_kernel_eigenvectors_are_the_leaf_splits():
    probe = GramEigenTaxonomy(depth=3)
    th = probe.theory(leaves=True)
    assert th["M"].shape == (8, 8)
    # every split restricted to the leaves is an eigenvector of the leaf kernel
    H, _, S = split_vectors(3, leaves=True)
    for h in np.vstack([H, S]):
        Mh = th["M"] @ h
        np.testing.assert_allclose(Mh, (h @ Mh) * h, atol=1e-12)


def test_leaf_only_vectors_recover_their_tree():
    # vectors on the leaves of a planted tree only (a word list on a tree's leaves): the
    # internal nodes carry none, so only the leaf kernel can see the tree
    emb = _leaves_only(planted_taxonomy(depth=6, branching=(2, 3), dim=1024, beta=0.5, seed=0))
    r = make_probe("gram-eigen-taxonomy", node_column="node", depth=3, n_subtrees=300,
                   n_boot=100).run(emb, seed=0, progress=False)
    assert r.info["nodes"] == "leaves" and r.info["K"] == 8
    assert all(name in emb.items["node"] for name in r.info["example_subtree"])
    tree = r.metric("alignment_area_normalised", layer="tree").value
    assert tree > 0.75
    assert tree - r.metric("alignment_area_normalised", layer="shuffled").value > 0.4
    assert tree - r.metric("alignment_area_normalised", layer="tree",
                           baseline="random-assignment").value > 0.5
    theory = r.metric("coarse_to_fine", baseline="theory").value
    assert abs(r.metric("coarse_to_fine", layer="tree").value - theory) < 0.15
    with pytest.raises(ProbeInputError, match="nodes='leaves'"):
        make_probe("gram-eigen-taxonomy", node_column="node", depth=3, nodes="all").run(
            emb, progress=False)
