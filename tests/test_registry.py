"""Unit tests of geoprobe.registry / geoprobe.plugins: finding, loading and checking plug-ins.

Fake plug-ins are entry points to small modules written into a temporary directory; the
entry-point table of geoprobe.plugins is replaced for the test, so nothing is installed.
"""

import inspect
from importlib.metadata import EntryPoint

import pytest

import geoprobe
from geoprobe import plugins, registry
from geoprobe.errors import GeoprobeError, ProbeInputError, UnknownProbeError

PLUGIN_SOURCE = '''
from geoprobe.probe import Probe


class Good(Probe):
    name = "good"

    def __init__(self, k=1):
        self.k = k


class Misnamed(Probe):
    name = "something-else"


class NotAProbe:
    name = "not-a-probe"


def a_function():
    return 1
'''


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    """Entry points in geoprobe.probes to a good, a misnamed, a non-Probe and a broken
    plug-in (its module raises on import); returns the table."""
    (tmp_path / "wk_fake_plugin.py").write_text(PLUGIN_SOURCE)
    (tmp_path / "wk_broken_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    specs = {"good": "wk_fake_plugin:Good", "mine": "wk_fake_plugin:Misnamed",
             "not-a-probe": "wk_fake_plugin:NotAProbe", "a-function": "wk_fake_plugin:a_function",
             "broken": "wk_broken_plugin:Thing"}
    table = {name: EntryPoint(name, value, plugins.PROBE_GROUP) for name, value in specs.items()}
    monkeypatch.setattr(plugins, "_group",
                        lambda group: dict(sorted(table.items())) if group == plugins.PROBE_GROUP
                        else {})
    return table


def test_unknown_probe_error_lists_every_registered_name():
    names = list(registry.available(registry.PROBE_GROUP))
    assert "covariance-spectrum" in names  # a shipped probe, registered like a plug-in
    with pytest.raises(UnknownProbeError) as info:
        registry.get_probe("no-such-probe")
    message = str(info.value)
    assert "unknown probe 'no-such-probe'" in message
    assert all(name in message for name in names)


def test_unknown_name_with_nothing_registered_says_none(monkeypatch):
    monkeypatch.setattr(plugins, "_group", lambda group: {})
    with pytest.raises(UnknownProbeError, match="registered: none"):
        registry.get_probe("anything")


def test_a_good_plugin_loads_and_makes_an_instance(fake_plugins):
    cls = registry.get_probe("good")
    assert cls.__name__ == "Good" and cls.name == "good"
    assert registry.make_probe("good", k=3).k == 3


def test_a_plugin_that_raises_on_import_names_its_entry_point(fake_plugins):
    # a GeoprobeError (a broken plug-in is not geoprobe's bug) naming the name, the entry
    # point's target and the original exception, which stays chained for a traceback
    with pytest.raises(GeoprobeError, match=r"probe 'broken' \(wk_broken_plugin:Thing\) "
                                            r"failed to load: RuntimeError: boom at import") as info:
        registry.get_probe("broken")
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.parametrize("name", ["not-a-probe", "a-function"])
def test_an_entry_point_to_something_not_a_probe_is_refused(fake_plugins, name):
    with pytest.raises(GeoprobeError,
                       match=f"entry point '{name}' does not name a geoprobe Probe subclass"):
        registry.get_probe(name)


def test_a_class_name_that_differs_from_its_registered_name_is_refused(fake_plugins):
    with pytest.raises(GeoprobeError, match=r"entry point 'mine' \(wk_fake_plugin:Misnamed\) "
                                            r"names a probe class whose name is "
                                            r"'something-else'; set name = 'mine'"):
        registry.get_probe("mine")
    # refused, not renamed: the class others may hold keeps its name
    import wk_fake_plugin
    assert wk_fake_plugin.Misnamed.name == "something-else"


def test_make_probe_refuses_unknown_parameters_and_lists_the_real_ones():
    cls = registry.get_probe("activation-sparsity")
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    with pytest.raises(GeoprobeError) as info:
        geoprobe.make_probe("activation-sparsity", bogus=1, n_boot=10, zzz=2)
    assert str(info.value) == (f"probe 'activation-sparsity' has no parameter(s) "
                               f"['bogus', 'zzz']; its parameters are {params}")


@pytest.mark.parametrize("params,message", [
    ({"weights": "nope"}, "parameter weights='nope' is not allowed; expected one of 'abs', "
                          "'energy'"),
    ({"n_boot": 0}, r"parameter n_boot=0 is not allowed; expected an int in \[1, inf\)"),
    ({"level": 1.0}, "parameter level=1.0 is not allowed"),
])
def test_make_probe_refuses_values_that_break_the_constraints(params, message):
    with pytest.raises(ProbeInputError, match=message):
        geoprobe.make_probe("activation-sparsity", **params)


def test_make_probe_accepts_values_on_the_allowed_side_of_each_constraint():
    probe = geoprobe.make_probe("activation-sparsity", weights="abs", n_boot=1, level=0.5)
    assert (probe.weights, probe.n_boot, probe.level) == ("abs", 1, 0.5)


def test_generators_are_found_by_name_and_unknown_ones_listed():
    gen = registry.get_generator("planted-spectrum")
    assert gen(n_items=40, dim=4, ranks=(2,), seed=0).shape == (1, 40, 4)
    with pytest.raises(UnknownProbeError, match="unknown generator 'nope'; registered: .*"
                                                "planted-spectrum"):
        registry.get_generator("nope")


def test_first_entry_point_of_a_name_wins(monkeypatch):
    """Two distributions registering one name: the first found on sys.path wins, as for
    imports (and not, say, the last)."""
    first = EntryPoint("dup", "geoprobe.probe:Probe", "wk.group")
    second = EntryPoint("dup", "geoprobe.errors:GeoprobeError", "wk.group")
    monkeypatch.setattr(plugins, "entry_points", lambda group: [first, second])
    plugins.refresh()
    try:
        assert plugins.available("wk.group") == {"dup": first}
    finally:
        monkeypatch.undo()
        plugins.refresh()
