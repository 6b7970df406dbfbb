"""Unit tests of geoprobe.suite: --set overrides, ids, paths, shipped suites and names."""

from pathlib import Path

import pytest

from geoprobe.errors import SuiteError
from geoprobe.suite import (
    build_suite, check_id, find_suite, load_suite, parse_override, shipped_suites,
)


def _raw():
    """A minimal valid suite: one source, two probes, a threshold and a regression check."""
    return {
        "sources": {"main": {"generate": "planted-spectrum", "params": {"n_items": 100}}},
        "probes": [{"probe": "covariance-spectrum", "id": "spec", "params": {"n_boot": 10}},
                   {"probe": "activation-sparsity"}],
        "checks": [{"probe": "spec", "metric": "rankme", "layer": "rank1", "op": "<=",
                    "value": 2.0},
                   {"probe": "spec", "metric": "rankme", "layer": "rank1",
                    "against": "previous", "max_drop": 0.05}],
    }


# -- parse_override ------------------------------------------------------------------------
@pytest.mark.parametrize("text,keys,value", [
    ("a.b.c=1", ["a", "b", "c"], 1),
    ("x=2.5", ["x"], 2.5),
    ("x=true", ["x"], True),
    ("x=[1, 16, 4]", ["x"], [1, 16, 4]),
    ("x=['a','b']", ["x"], ["a", "b"]),
    ("x='quoted'", ["x"], "quoted"),
    ("x={ k = 1 }", ["x"], {"k": 1}),
    ("x=plain words", ["x"], "plain words"),  # not TOML: kept as the string given
    ("x=", ["x"], ""),
    ("x=a=b", ["x"], "a=b"),  # only the first '=' splits
    (" a . b =3", ["a ", " b"], 3),  # the key is stripped at its ends, not around dots
    ("a..b=1", ["a", "b"], 1),  # empty parts between dots are dropped
])
def test_parse_override_values(text, keys, value):
    assert parse_override(text) == (keys, value)


def test_parse_override_keeps_a_huge_integer_as_text_not_a_crash():
    # tomllib refuses integers of more digits than Python converts (ValueError): a string
    assert parse_override("x=" + "9" * 5000) == (["x"], "9" * 5000)


@pytest.mark.parametrize("text,message", [
    ("no-equals-sign", "is not of the form dotted.key=value"),
    ("=3", "has an empty key"),
    ("...=3", "has an empty key"),
])
def test_parse_override_errors(text, message):
    with pytest.raises(SuiteError, match=message):
        parse_override(text)


# -- --set into probes and checks by id ---------------------------------------------------
def test_set_reaches_probes_and_checks_by_id():
    suite = build_suite(_raw(), overrides=["probes.spec.params.n_boot=50",
                                           "probes.activation-sparsity.layers='last'",
                                           "checks.spec-rankme-rank1.value=1.5",
                                           "checks.spec-rankme-rank1-previous.max_drop=0.1"])
    spec, sparsity = suite.probes
    assert spec.params == {"n_boot": 50} and sparsity.layers == "last"
    threshold, regression = suite.checks
    assert threshold.value == 1.5 and threshold.op == "<="
    assert regression.max_drop == 0.1 and regression.value is None


def test_set_creates_nested_tables_and_leaves_the_input_alone():
    raw = _raw()
    suite = build_suite(raw, overrides=["suite.seed=7", "sources.main.params.dim=8"])
    assert suite.seed == 7 and suite.sources["main"].params == {"n_items": 100, "dim": 8}
    assert "suite" not in raw and raw["sources"]["main"]["params"] == {"n_items": 100}


@pytest.mark.parametrize("override,message", [
    ("probes.nope.params.n_boot=1", r"names probe 'nope'; the suite's probes are "
                                    r"\['spec', 'activation-sparsity'\]"),
    ("checks.nope.value=1", r"names check 'nope'; the suite's checks are "
                            r"\['spec-rankme-rank1', 'spec-rankme-rank1-previous'\]"),
    ("probes.spec=1", r"override of a probe needs an id and a key: probes.ID.key=value"),
    ("sources.main.generate.x=1", r"override: 'generate' is not a table"),
])
def test_set_errors_name_what_exists(override, message):
    with pytest.raises(SuiteError, match=message):
        build_suite(_raw(), overrides=[override])


# -- ids ---------------------------------------------------------------------------------------
def test_check_id_defaults():
    assert check_id({"id": "mine", "probe": "p", "metric": "m"}) == "mine"
    # label values in key order, the layer shorthand among them, dots made underscores
    assert check_id({"probe": "p", "metric": "m", "labels": {"z": "1", "a": "x.y"},
                     "layer": 3}) == "p-m-x_y-3-1"
    assert check_id({"probe": "p", "metric": "m", "against": "previous"}) == "p-m-previous"


def test_duplicate_probe_ids_are_refused():
    raw = _raw()
    raw["probes"].append({"probe": "other", "id": "spec"})
    with pytest.raises(SuiteError, match=r"\[\[probes\]\] #3: duplicate probe id 'spec'"):
        build_suite(raw)


def test_duplicate_check_ids_are_refused_naming_both():
    raw = _raw()
    raw["checks"].append({"probe": "spec", "metric": "rankme", "layer": "rank1", "op": ">",
                          "value": 0.5})
    with pytest.raises(SuiteError, match=r"\[\[checks\]\] #3: duplicate check id "
                                         r"'spec-rankme-rank1' \(also check #1\)"):
        build_suite(raw)


def test_a_threshold_and_a_regression_check_on_one_metric_do_not_collide():
    ids = [c.id for c in build_suite(_raw()).checks]
    assert ids == ["spec-rankme-rank1", "spec-rankme-rank1-previous"]


def test_an_explicit_check_id_with_a_dot_is_refused():
    raw = _raw()
    raw["checks"][0]["id"] = "a.b"
    with pytest.raises(SuiteError, match="'id' must be a non-empty string without '.'"):
        build_suite(raw)


# -- paths, shipped suites, names ------------------------------------------------------------
def test_relative_paths_resolve_against_the_suite_file(tmp_path):
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "s.toml").write_text('[sources.main]\npath = "data/emb.npy"\n'
                                   '[[probes]]\nprobe = "covariance-spectrum"\n')
    suite = load_suite(str(folder / "s.toml"))
    assert suite.resolve(suite.sources["main"].path) == folder / "data" / "emb.npy"
    assert suite.resolve(str(tmp_path / "abs.npy")) == tmp_path / "abs.npy"
    assert suite.resolve("~/x.npy") == Path.home() / "x.npy"
    assert suite.resolve(None) is None


def test_a_suite_built_without_a_file_resolves_against_the_working_directory(monkeypatch,
                                                                             tmp_path):
    monkeypatch.chdir(tmp_path)
    assert build_suite(_raw()).resolve("e.npy") == tmp_path / "e.npy"


def test_shipped_suites_are_found_by_name():
    shipped = shipped_suites()
    assert "planted" in shipped and shipped["planted"].name == "planted.toml"
    assert find_suite("planted") == shipped["planted"]
    suite = load_suite("planted")
    assert suite.name == "planted" and suite.path == shipped["planted"]


def test_unknown_suite_names_the_shipped_ones():
    with pytest.raises(SuiteError) as info:
        find_suite("no-such-suite")
    assert all(name in str(info.value) for name in shipped_suites())
    with pytest.raises(SuiteError, match="missing.toml: suite file not found"):
        find_suite("missing.toml")


def test_a_local_file_wins_over_a_shipped_suite_of_the_same_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "planted").write_text('[suite]\nname = "local"\n[sources.m]\ngenerate = "g"\n'
                                      '[[probes]]\nprobe = "p"\n')
    assert find_suite("planted") == Path("planted")
    assert load_suite("planted").name == "local"


def test_default_name_is_the_file_name(tmp_path):
    path = tmp_path / "my-suite_2.toml"
    path.write_text('[sources.m]\ngenerate = "g"\n[[probes]]\nprobe = "p"\n')
    assert load_suite(str(path)).name == "my-suite_2"
    assert build_suite(_raw()).name == "suite"  # no file: the generic name
    named = _raw()
    named["suite"] = {"name": "given"}
    assert build_suite(named, path=path).name == "given"


def test_a_file_name_that_is_no_safe_folder_name_is_refused(tmp_path):
    path = tmp_path / "bad name!.toml"
    path.write_text('[sources.m]\ngenerate = "g"\n[[probes]]\nprobe = "p"\n')
    with pytest.raises(SuiteError, match="suite name"):
        load_suite(str(path))
