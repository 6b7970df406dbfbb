"""Treebank reader: planted malformed trees, MWT/empty nodes, gzip, and tree distances."""

import gzip
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from geoprobe.datasets.treebank import Sentence, default_treebank_path, punctuation, read_conllu
from geoprobe.errors import FormatError, GeoprobeError
from geoprobe.syntax.trees import batch_tree_distances, tree_depths, tree_distances


def _row(i, form, head, rel, upos="NOUN", xpos="NN"):
    return f"{i}\t{form}\t{form.lower()}\t{upos}\t{xpos}\t_\t{head}\t{rel}\t_\t_"


GOOD = "\n".join([
    "# newdoc id = d1",
    "# sent_id = s-one",
    "# text = I don't go.",
    _row(1, "I", 3, "nsubj", "PRON", "PRP"),
    "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_",
    _row(2, "do", 4, "aux", "AUX", "VBP"),
    _row(3, "n't", 4, "advmod", "PART", "RB"),
    "3.1\tgone\tgo\tVERB\tVBN\t_\t_\t_\t4:conj\t_",
    _row(4, "go", 0, "root", "VERB", "VB"),
    _row(5, ".", 4, "punct", "PUNCT", "."),
    "",
    "# sent_id = s-two",
    _row(1, "Dogs", 2, "nsubj"),
    _row(2, "bark", 0, "root", "VERB", "VBP"),
    _row(3, "loudly", 2, "advmod:emph", "ADV", "RB"),
    "",
]) + "\n"


def _write(tmp_path, text, name="t.conllu"):
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["t.conllu", "t.conllu.gz"])
def test_reads_words_skipping_multiword_tokens_and_empty_nodes(tmp_path, name):
    sents = read_conllu(_write(tmp_path, GOOD, name))
    assert [s.sent_id for s in sents] == ["s-one", "s-two"]
    a, b = sents
    # the MWT line "don't" and the empty node "gone" are not words; "do" and "n't" are
    assert a.words == ["I", "do", "n't", "go", "."]
    assert a.heads.tolist() == [3, 4, 4, 0, 4]
    assert a.root == 3 and b.root == 1
    assert a.line == 1 and b.line == 12
    assert b.deprels == ["nsubj", "root", "advmod:emph"]
    assert b.deprels_base == ["nsubj", "root", "advmod"]
    assert a.xpos[-1] == "." and a.upos[0] == "PRON"
    assert punctuation(a).tolist() == [False, False, False, False, True]
    assert a.n == len(a) == 5


def test_max_sentences(tmp_path):
    assert len(read_conllu(_write(tmp_path, GOOD), max_sentences=1)) == 1


def _one(rows, sent_id="bad-1"):
    return "\n".join([f"# sent_id = {sent_id}", *rows, ""]) + "\n"


@pytest.mark.parametrize("rows, message, line", [
    ([_row(1, "a", 2, "x"), _row(2, "b", 3, "x"), _row(3, "c", 2, "x")], "no root", 2),
    ([_row(1, "a", 0, "root"), _row(2, "b", 3, "x"), _row(3, "c", 2, "x")], "cycle", 3),
    ([_row(1, "a", 0, "root"), _row(2, "b", 0, "root")], "two roots", 3),
    ([_row(1, "a", 0, "root"), _row(2, "b", 7, "x")], "out of range", 3),
    ([_row(1, "a", 0, "root"), _row(2, "b", 2, "x")], "its own head", 3),
    ([_row(1, "a", 0, "root"), _row(3, "b", 1, "x")], "IDs must run", 3),
    ([_row(1, "a", 0, "root"), "2\tb\tb\tX\tX\t_\t_\tx\t_\t_"], "expected an integer", 3),
])
def test_broken_trees_name_file_sentence_and_line(tmp_path, rows, message, line):
    # a good sentence first, so line numbers are counted across sentences
    path = _write(tmp_path, GOOD + "\n" + _one(rows))
    with pytest.raises(FormatError) as err:
        read_conllu(path)
    text = str(err.value)
    assert message in text and "bad-1" in text and str(path) in text
    assert f"line {line + 17}" in text  # GOOD + a blank line: 17 lines before


def test_missing_file_and_bad_gzip(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        read_conllu(tmp_path / "nope.conllu")
    bad = tmp_path / "bad.conllu.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(FormatError, match="bad.conllu.gz"):
        read_conllu(bad)


def _random_tree(rng, n):
    """Random valid heads: a random permutation order, each word attached to an earlier one."""
    order = rng.permutation(n)
    heads = np.zeros(n, dtype=int)
    for k in range(1, n):
        heads[order[k]] = order[rng.integers(k)] + 1
    return heads


def _bfs_distances(heads):
    n = len(heads)
    adj = [[] for _ in range(n)]
    for i, h in enumerate(heads):
        if h:
            adj[i].append(h - 1)
            adj[h - 1].append(i)
    out = np.zeros((n, n), dtype=int)
    for s in range(n):
        seen, q = {s: 0}, deque([s])
        while q:
            u = q.popleft()
            for v in adj[u]:
                if v not in seen:
                    seen[v] = seen[u] + 1
                    q.append(v)
        out[s] = [seen[t] for t in range(n)]
    return out


def test_tree_distances_match_brute_force():
    rng = np.random.default_rng(0)
    trees = [_random_tree(rng, n) for n in [1, 2, 3, 5, 8, 13, 21, 30] for _ in range(3)]
    for heads in trees:
        truth = _bfs_distances(heads)
        assert np.array_equal(tree_distances(heads), truth)
        root = int(np.flatnonzero(heads == 0)[0])
        assert np.array_equal(tree_depths(heads), truth[root])
    dist, depth, lengths = batch_tree_distances(trees, pad=-1)
    assert dist.shape == (len(trees), 30, 30)
    for b, heads in enumerate(trees):
        n = len(heads)
        assert np.array_equal(dist[b, :n, :n], _bfs_distances(heads))
        assert np.array_equal(depth[b, :n], tree_depths(heads))
        assert (dist[b, n:] == -1).all() and (dist[b, :, n:] == -1).all()
        assert (depth[b, n:] == -1).all()
    assert lengths.tolist() == [len(h) for h in trees]


def test_tree_distances_reject_non_trees():
    with pytest.raises(ValueError, match="cycle"):
        tree_distances(np.array([0, 3, 2]))
    with pytest.raises(ValueError, match="not a tree"):
        tree_depths(np.array([0, 0]))


def test_finds_ewt_and_reads_real_dev(monkeypatch, tmp_path):
    monkeypatch.delenv("GEOPROBE_UD_EWT", raising=False)
    path = default_treebank_path("dev")
    assert path.name.startswith("en_ewt-ud-dev.conllu")
    # the copy shipped inside the package, with its license beside it
    import geoprobe.datasets

    assert path.parent.parent.parent == Path(geoprobe.datasets.__file__).resolve().parent
    assert (path.parent / "LICENSE.txt").is_file()
    with pytest.raises(GeoprobeError, match="not shipped"):
        default_treebank_path("test")
    sents = read_conllu(path, max_sentences=200)
    assert len(sents) == 200 and all(isinstance(s, Sentence) for s in sents)
    assert all((s.heads == 0).sum() == 1 for s in sents)
    monkeypatch.setenv("GEOPROBE_UD_EWT", str(tmp_path))
    with pytest.raises(GeoprobeError, match="GEOPROBE_UD_EWT"):
        default_treebank_path("dev")
    with pytest.raises(GeoprobeError, match="unknown treebank split"):
        default_treebank_path("validation")
