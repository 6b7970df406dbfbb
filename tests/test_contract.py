"""The probe contract: every registered probe passes geoprobe.testing.check_probe, and bad
parameters or column names are refused before any probe of a suite runs."""

from pathlib import Path

import numpy as np
import pytest

from geoprobe import plugins, registry
from geoprobe.cli import main
from geoprobe.contract import Interval, Options, SequenceOf, validate_params
from geoprobe.errors import GeoprobeError, ProbeInputError
from geoprobe.probe import Probe
from geoprobe.probes.spectrum import CovarianceSpectrum
from geoprobe.testing import check_probe

PLUGIN = Path(__file__).parent / "plugin_pkg"


@pytest.mark.parametrize("name", sorted(registry.available()))
def test_registered_probe_follows_the_contract(name, tmp_path):
    check_probe(registry.get_probe(name), tmp_dir=tmp_path)


def test_plugin_probe_follows_the_contract(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))
    from geoprobe_testplugin import MeanNorm

    check_probe(MeanNorm, tmp_dir=tmp_path)


def test_constraint_vocabulary():
    c = {"n": [Interval(int, 1, None)], "g": [str, None], "k": [Options({"a", "b"})],
         "xs": [SequenceOf(Interval(float, 0, 1))], "p": [Interval(float, 0, 1, closed="neither")]}
    validate_params("x", c, {"n": 3, "g": None, "k": "a", "xs": [0, 0.5, 1], "p": 0.5})
    for bad in ({"n": 0}, {"n": True}, {"n": 1.5}, {"g": 3}, {"k": "c"}, {"k": ["a"]},
                {"xs": "ab"}, {"xs": [2]}, {"p": 1.0}, {"p": float("nan")}):
        with pytest.raises(ProbeInputError) as err:
            validate_params("x", c, bad)
        (param, value), = bad.items()
        assert str(err.value).startswith(f"probe 'x': parameter {param}={value!r}")


def test_make_probe_refuses_a_bad_value_in_one_line():
    with pytest.raises(GeoprobeError, match=r"^probe 'covariance-spectrum': parameter "
                       r"n_boot=0 is not allowed; expected an int in \[1, inf\)$"):
        registry.make_probe("covariance-spectrum", n_boot=0)


def test_get_probe_does_not_rename_a_class(monkeypatch):
    class Named(Probe):
        name = "other-name"

    class EP:
        value = "somewhere:Named"

        def load(self):
            return Named

    monkeypatch.setattr(plugins, "_group", lambda group: {"alias": EP()})
    with pytest.raises(GeoprobeError, match="set name = 'alias'"):
        registry.get_probe("alias")
    assert Named.name == "other-name"


SUITE = """
[sources.main]
path = "emb.npy"
items = "items.csv"
[[probes]]
id = "first"
probe = "covariance-spectrum"
params = {{ n_boot = 10 }}
[[probes]]
id = "second"
probe = "covariance-spectrum"
params = {{ {params} }}
"""


def _suite(tmp_path, params):
    np.save(tmp_path / "emb.npy", np.random.default_rng(0).standard_normal((2, 40, 4)))
    (tmp_path / "items.csv").write_text("episode\n" + "".join(f"{i // 4}\n" for i in range(40)))
    (tmp_path / "s.toml").write_text(SUITE.format(params=params))
    return tmp_path / "s.toml"


@pytest.mark.parametrize("params, words", [
    ('group = "episdoe"', ["'second'", "group='episdoe'", "'episode'"]),
    ("n_boot = -1", ["'second'", "n_boot=-1", "an int in [1, inf)"]),
])
def test_suite_refused_before_any_probe_runs(params, words, tmp_path, monkeypatch, capsys):
    suite = _suite(tmp_path, params)
    ran = []
    monkeypatch.setattr(CovarianceSpectrum, "evaluate", lambda self, ctx: ran.append(self))
    code = main(["run", str(suite), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not ran
    assert len(err) == 1 and err[0].startswith("geoprobe: error:"), err
    assert all(w in err[0] for w in words), err[0]
    assert not (tmp_path / "out").exists()
