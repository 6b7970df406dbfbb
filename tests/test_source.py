"""One Source per probed set: the set, its random-init twin and its layers, resolved once."""

import numpy as np
import pytest

import geoprobe.source
from geoprobe import EmbeddingSet, Metric, Probe, Source, resolve_source
from geoprobe.errors import EmbeddingError, ProbeInputError
from geoprobe.registry import get_probe
from geoprobe.runner import run_suite
from geoprobe.suite import build_suite

N = 40
IDS = np.array([f"w{i:02d}" for i in range(N)])


def make_set(seed, *, ids=IDS, names=("l0", "l1", "l2"), **provenance):
    X = np.random.default_rng(seed).standard_normal((len(names), len(ids), 6)).astype(np.float32)
    return EmbeddingSet(X, {"item_id": ids, "label": (np.arange(len(ids)) % 2).astype(str)},
                        layer_names=list(names), provenance=provenance, source=f"set{seed}")


class Recorder(Probe):
    """Records what each evaluation saw; one metric per layer (the first row's first entry)."""

    name = "recorder"

    def __init__(self):
        self.seen = []

    def evaluate(self, ctx):
        self.seen.append({"is_twin": ctx.is_twin, "layers": list(ctx.layers),
                          "ids": ctx.embeddings.ids.copy(), "source": ctx.embeddings.source})
        metrics = [Metric("first", float(X[0, 0]), labels={"layer": layer})
                   for layer, X in ctx.iter_layers()]
        return self.result(ctx, metrics)


@pytest.fixture
def on_disk(tmp_path):
    """A set that records its twin (relative path), and the twin, written in shuffled order."""
    twin = make_set(1)
    order = np.random.default_rng(2).permutation(N)
    twin.subset(order).save(tmp_path / "emb.random-init.gpemb")
    make_set(0, twin="emb.random-init.gpemb").save(tmp_path / "emb.gpemb")
    return tmp_path / "emb.gpemb", twin


@pytest.fixture
def opens(monkeypatch):
    """Counts EmbeddingSet.open and load_embeddings calls (every file a source reads)."""
    counts = {"open": 0, "load_embeddings": 0}
    real_open, real_load = EmbeddingSet.open.__func__, geoprobe.source.load_embeddings

    def counted_open(cls, *args, **kwargs):
        counts["open"] += 1
        return real_open(cls, *args, **kwargs)

    def counted_load(*args, **kwargs):
        counts["load_embeddings"] += 1
        return real_load(*args, **kwargs)

    monkeypatch.setattr(EmbeddingSet, "open", classmethod(counted_open))
    monkeypatch.setattr(geoprobe.source, "load_embeddings", counted_load)
    return counts


def suite_on(path, n_probes, **source):
    probes = [{"id": f"p{i}", "probe": "covariance-spectrum", "params": {"n_boot": 5}}
              for i in range(n_probes)]
    return build_suite({"suite": {"name": "s", "seed": 0},
                        "sources": {"emb": {"path": str(path), **source}}, "probes": probes})


@pytest.mark.parametrize("n_probes", [1, 3])
def test_a_suite_opens_the_set_and_its_twin_once(on_disk, opens, tmp_path, n_probes):
    path, twin = on_disk
    doc = run_suite(suite_on(path, n_probes), tmp_path / "out", show_progress=False,
                    formats=())
    # the set and its twin, once each, however many probes use them
    assert opens == {"open": 2, "load_embeddings": 2}
    assert doc["sources"]["emb"]["twin"].endswith("emb.random-init.gpemb")
    assert "_dir" not in doc["sources"]["emb"]["provenance"]
    metrics = doc["probes"]["p0"]["metrics"]
    assert any(m["labels"].get("baseline") == "random-init" for m in metrics)
    # the same numbers as giving the (unshuffled) twin by hand
    by_hand = get_probe("covariance-spectrum")(n_boot=5).run(
        make_set(0), twin=twin, seed=0, progress=False)
    assert [Metric.from_dict(m).key() for m in metrics] == [m.key() for m in by_hand.metrics]
    assert [m["value"] for m in metrics] == [m.value for m in by_hand.metrics]


def test_probe_run_on_a_source_opens_nothing(on_disk, opens):
    path, _ = on_disk
    source = resolve_source(path, twin="auto")
    assert opens == {"open": 2, "load_embeddings": 2}
    probe = Recorder()
    for _ in range(3):
        probe.run(source, progress=False)
    assert opens == {"open": 2, "load_embeddings": 2}
    assert [s["is_twin"] for s in probe.seen] == [False, True] * 3


def test_a_shuffled_twin_is_aligned_to_the_set(on_disk):
    path, twin = on_disk
    source = resolve_source(path, twin="auto")
    assert np.array_equal(source.twin.ids, IDS)
    for i in range(3):
        np.testing.assert_array_equal(source.twin.layer(i), twin.layer(i))
    np.testing.assert_array_equal(source.twin.items["label"], twin.items["label"])
    # an explicit twin given to Probe.run is aligned the same way
    shuffled = twin.subset(np.random.default_rng(3).permutation(N))
    probe = Recorder()
    result = probe.run(make_set(0), twin=shuffled, progress=False)
    assert np.array_equal(probe.seen[1]["ids"], IDS)
    assert result.metric("first", layer="l0", baseline="random-init").value == twin.layer(0)[0, 0]


def test_a_twin_missing_items_fails_before_any_probe_runs(tmp_path, monkeypatch):
    make_set(0, twin="short.gpemb").save(tmp_path / "emb.gpemb")
    keep = np.setdiff1d(np.arange(N), [7, 12])
    make_set(1).subset(keep).save(tmp_path / "short.gpemb")
    calls = []
    monkeypatch.setattr(get_probe("covariance-spectrum"), "evaluate",
                        lambda self, ctx: calls.append(ctx))
    with pytest.raises(EmbeddingError, match=r"source 'emb': twin does not match: .*"
                                             r"2 item\(s\) .* \(first 'w07'\)"):
        run_suite(suite_on(tmp_path / "emb.gpemb", 2), tmp_path / "out", show_progress=False)
    assert calls == [] and not (tmp_path / "out").exists()


def test_a_twin_with_other_layers_is_refused():
    with pytest.raises(EmbeddingError, match="twin set1 has 2 layers, set0 has 3"):
        resolve_source(make_set(0), twin=make_set(1, names=("a", "b")))


@pytest.mark.parametrize("layers, want", [
    (None, ["l0", "l1", "l2"]), ("all", ["l0", "l1", "l2"]), ("last", ["l2"]),
    ("l1", ["l1"]), (0, ["l0"]), (-1, ["l2"]), (["l2", "l0"], ["l2", "l0"]),
    ([1, "l2"], ["l1", "l2"]),
])
def test_layer_selection(layers, want):
    main = make_set(0)
    twin = make_set(1, names=("a", "b", "c"))  # other names: layers correspond by position
    source = resolve_source(main, twin=twin, layers=layers)
    assert source.layers == want and source.embeddings.layer_names == want
    positions = [main.layer_index(n) for n in want]
    assert source.twin.layer_names == [["a", "b", "c"][i] for i in positions]
    for j, i in enumerate(positions):
        np.testing.assert_array_equal(source.twin.layer(j), twin.layer(i))
    result = Recorder().run(source, progress=False)
    assert [m.labels["layer"] for m in result.metrics if m.is_baseline] == want


def test_an_unknown_layer_is_refused():
    with pytest.raises(EmbeddingError, match="no layer 'l9'"):
        resolve_source(make_set(0), layers=["l0", "l9"])


def test_provenance_does_not_steer_what_a_set_is(tmp_path):
    # recorded as a random-init set, but given as the set to probe: it is probed as such
    main = make_set(0, random_init=True)
    probe = Recorder()
    probe.run(main, twin=make_set(1, random_init=False), progress=False)
    assert [s["is_twin"] for s in probe.seen] == [False, True]
    # a Source decides: twin=False drops its twin, a recorded twin path is not looked at again
    main.save(tmp_path / "emb.gpemb")
    opened = EmbeddingSet.open(tmp_path / "emb.gpemb")
    assert "_dir" not in opened.provenance and opened.path == (tmp_path / "emb.gpemb").resolve()
    source = Source(opened)
    probe = Recorder()
    probe.run(source, progress=False)
    assert [s["is_twin"] for s in probe.seen] == [False]


def test_a_recorded_twin_is_found_for_a_plain_set_and_its_subsets(on_disk):
    path, _ = on_disk
    emb = EmbeddingSet.open(path)
    twin_path = path.parent / "emb.random-init.gpemb"
    assert geoprobe.source.twin_path(emb) == twin_path
    probe = Recorder()
    probe.run(emb, progress=False)  # README's quickstart: the twin comes along
    assert [s["is_twin"] for s in probe.seen] == [False, True]
    # a subset still finds the twin its provenance records beside the set it came from
    assert geoprobe.source.twin_path(emb.subset(np.arange(0, N, 3))) == twin_path
    assert resolve_source(emb).twin is None  # no twin unless asked for
    probe = Recorder()
    probe.run(emb, twin=False, progress=False)
    assert [s["is_twin"] for s in probe.seen] == [False]


def test_a_source_brings_its_own_twin():
    source = resolve_source(make_set(0), twin=make_set(1))
    with pytest.raises(ProbeInputError, match="resolve_source"):
        Recorder().run(source, twin=make_set(2), progress=False)
    probe = Recorder()
    probe.run(source, twin=False, progress=False)
    assert [s["is_twin"] for s in probe.seen] == [False]
