"""Hostile names: nothing from a suite, manifest or results file reads or writes outside its
folder. Each traversal goes through the real entry point and must fail with one line naming
the key, with nothing written outside the work folder."""

import json
import os

import numpy as np
import pytest

from geoprobe.cli import main
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import FormatError, GeoprobeError
from geoprobe.io import load_embeddings
from geoprobe.safepath import check_name, inside

TINY_SOURCE = """
[sources.main]
generate = "planted-spectrum"
params = { n_items = 200, dim = 8, ranks = [4], layer_names = ["rank4"] }
"""
TINY_PROBE = """
[[probes]]
id = "spectrum"
probe = "covariance-spectrum"
params = { n_boot = 10 }
"""


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A work folder five levels below tmp_path, the current directory for the test: every
    traversal in these tests lands inside tmp_path, where :func:`outside` sees it."""
    work = tmp_path.joinpath("d1", "d2", "d3", "d4", "d5", "work")
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return work


def outside(work):
    """Everything under tmp_path that is not in ``work`` (only the folders above it)."""
    root = work.parents[5]
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p != work and work not in p.parents)


def cli(args, capsys):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def no_model(*args, **kwargs):
    raise AssertionError("a model was loaded before the names were checked")


# -- the rule --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["0", "6", "embeddings", "rank1", "layer_3", "jepa-tworoom",
                                  "ewt.random-init", "a" * 128])
def test_legitimate_names_pass(name):
    assert check_name(name, what="name") == name


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "a\\b", "/abs", ".hidden",
                                  "-flag", "a b", "a" * 129, 3, None])
def test_unsafe_names_are_refused_naming_the_key(name):
    with pytest.raises(GeoprobeError, match=r"^the\.key .* is not allowed: use 1-128 letters"):
        check_name(name, what="the.key")


def test_inside_refuses_traversal_absolute_and_escaping_symlinks(tmp_path):
    base = tmp_path / "base"
    (base / "sub").mkdir(parents=True)
    assert inside(base, "sub", "x.npy", what="k") == base / "sub" / "x.npy"
    (base / "link").symlink_to(tmp_path)
    for parts in (("..", "x"), ("sub", "..", "..", "x"), (str(tmp_path / "x"),), ("link", "x")):
        with pytest.raises(GeoprobeError, match="^k .* leads outside"):
            inside(base, *parts, what="k")


# -- writing: suites, generators, results -----------------------------------------------------
@pytest.mark.parametrize("pid", ["../../escaped_fig", "ABSOLUTE"])
def test_probe_id_cannot_place_figures_outside(work, capsys, pid):
    pid = str(work.parents[5] / "escaped_fig") if pid == "ABSOLUTE" else pid
    (work / "s.toml").write_text(TINY_SOURCE + TINY_PROBE.replace('"spectrum"', json.dumps(pid)))
    before = outside(work)
    code, err = cli(["run", "s.toml", "-o", "out", "--no-progress"], capsys)
    assert code == 2 and "[[probes]] #1: id" in err and "is not allowed" in err
    assert err.count("\n") == 1 and outside(work) == before and not (work / "out").exists()


def test_suite_name_cannot_place_results_outside(work, capsys):
    (work / "s.toml").write_text('[suite]\nname = "../../escaped_suite"\n' + TINY_SOURCE
                                 + TINY_PROBE)
    before = outside(work)
    code, err = cli(["run", "s.toml", "--no-progress"], capsys)  # no -o: geoprobe-results/<name>
    assert code == 2 and "[suite]: name '../../escaped_suite' is not allowed" in err
    assert outside(work) == before and list(work.iterdir()) == [work / "s.toml"]


def test_source_name_cannot_place_generated_data_outside(work, capsys, monkeypatch):
    monkeypatch.setattr("geoprobe.datasets.extraction.WordEncoder", no_model)
    (work / "s.toml").write_text("""
[sources."../../../somewhere"]
generate = "treebank-lm"
params = { max_sentences = 2, twin = false }
[[probes]]
probe = "covariance-spectrum"
""")
    before = outside(work)
    code, err = cli(["run", "s.toml", "-o", "out", "--workdir", "scratch", "--no-progress"],
                    capsys)
    assert code == 2 and "[sources]: source name '../../../somewhere' is not allowed" in err
    assert outside(work) == before and list(work.iterdir()) == [work / "s.toml"]


def test_treebank_split_cannot_place_embeddings_outside(work, capsys, monkeypatch):
    monkeypatch.setattr("geoprobe.datasets.extraction.WordEncoder", no_model)
    (work / "tiny.conllu").write_text("# sent_id = s1\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\n")
    (work / "s.toml").write_text("""
[sources.ewt]
generate = "treebank-lm"
params = { split = "../../../../x", treebank = "tiny.conllu", twin = false }
[[probes]]
probe = "covariance-spectrum"
""")
    before = outside(work)
    code, err = cli(["run", "s.toml", "-o", "out", "--workdir", "scratch", "--no-progress"],
                    capsys)
    assert code == 2 and "treebank-lm: split '../../../../x' is not allowed" in err
    assert outside(work) == before and not list((work / "scratch").rglob("*.gpemb"))


def test_treebank_splits_generator_checks_every_split(work, monkeypatch):
    from geoprobe.datasets.treebank_splits import treebank_lm_splits

    monkeypatch.setattr("geoprobe.datasets.extraction.WordEncoder", no_model)
    with pytest.raises(GeoprobeError, match=r"splits entry '\.\./x' is not allowed"):
        treebank_lm_splits(["train", "../x"], workdir=work)
    assert list(work.iterdir()) == []


def test_jepa_world_cannot_place_its_dataset_outside(work):
    from geoprobe.jepa.pipeline import world_model_latents

    before = outside(work)
    with pytest.raises(GeoprobeError, match=r"jepa-world-model: world '\.\./\.\./x'"):
        world_model_latents(world="../../x", workdir=work / "jepa")
    with pytest.raises(GeoprobeError, match="cache folder .* leads outside"):
        world_model_latents(n_episodes="1/../../../x", workdir=work / "jepa")
    assert outside(work) == before and list(work.rglob("*")) == []


@pytest.fixture
def results_dir(work, capsys):
    """A real results directory of a tiny suite, as someone might send it."""
    (work / "s.toml").write_text(TINY_SOURCE + TINY_PROBE)
    assert cli(["run", "s.toml", "-o", "out", "--no-progress"], capsys)[0] == 0
    return work / "out"


@pytest.mark.parametrize("pid", ["../../escaped_fig", "ABSOLUTE"])
def test_report_refuses_a_results_file_whose_probe_id_escapes(work, results_dir, capsys, pid):
    pid = str(work.parents[5] / "escaped_fig") if pid == "ABSOLUTE" else pid
    doc = json.loads((results_dir / "results.json").read_text())
    doc["probes"] = {pid: doc["probes"]["spectrum"]}
    (results_dir / "results.json").write_text(json.dumps(doc))
    before = outside(work)
    code, err = cli(["report", results_dir], capsys)
    assert code == 2 and f"probes: probe id {pid!r} is not allowed" in err
    assert outside(work) == before


def test_report_refuses_a_format_that_is_not_a_name(work, results_dir, capsys):
    before = outside(work)
    code, err = cli(["report", results_dir, "--formats", "png,/../../../x"], capsys)
    assert code == 2 and "figure format '/../../../x' is not allowed" in err
    assert outside(work) == before


def test_report_refuses_a_figures_folder_linking_outside(work, results_dir, capsys):
    elsewhere = work.parents[5] / "elsewhere"
    elsewhere.mkdir()
    os.rename(results_dir / "figures", work / "old-figures")
    (results_dir / "figures").symlink_to(elsewhere)
    code, err = cli(["report", results_dir], capsys)
    assert code == 2 and "figure 'figures/spectrum' leads outside" in err
    assert list(elsewhere.iterdir()) == []


# -- reading: embedding-set manifests --------------------------------------------------------
@pytest.fixture
def emb_set(work):
    """A valid set at work/sets/emb.gpemb, and a file two levels up that it must not read."""
    path = EmbeddingSet(np.ones((5, 3), np.float32)).save(work / "sets" / "emb.gpemb")
    np.save(work / "outside.npy", np.zeros((5, 3), np.float32))
    return path


def edit_manifest(path, edit):
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("entry", ["../../outside.npy", "ABSOLUTE"])
def test_manifest_layer_files_cannot_point_outside_the_set(work, emb_set, capsys, entry):
    entry = str(work / "outside.npy") if entry == "ABSOLUTE" else entry
    edit_manifest(emb_set, lambda m: m.update(layer_files=[entry]))
    with pytest.raises(FormatError, match=r"manifest\.json: layer_files entry .* leads outside"):
        load_embeddings(emb_set)
    before = outside(work)
    code, err = cli(["info", emb_set], capsys)
    assert code == 2 and "layer_files entry" in err and outside(work) == before


def test_manifest_item_column_file_cannot_point_outside_the_set(emb_set, capsys):
    edit_manifest(emb_set, lambda m: m["columns"]["item_id"].update(file="../../outside.npy"))
    with pytest.raises(FormatError, match=r"columns\.item_id\.file '\.\./\.\./outside\.npy' "
                                          "leads outside"):
        EmbeddingSet.open(emb_set)
    assert cli(["info", emb_set], capsys)[0] == 2


def test_layer_file_symlinked_outside_the_set_is_refused(work, emb_set):
    layer = emb_set / "layers" / "000.npy"
    layer.unlink()
    layer.symlink_to(work / "outside.npy")
    with pytest.raises(FormatError, match="layer_files entry 'layers/000.npy' leads outside"):
        load_embeddings(emb_set)
