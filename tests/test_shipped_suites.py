"""Every shipped suite parses and names only registered probes, generators and parameters."""

import inspect

import pytest

from geoprobe.registry import get_generator, make_probe
from geoprobe.suite import load_suite, shipped_suites


@pytest.mark.parametrize("name", sorted(shipped_suites()))
def test_shipped_suite_is_runnable_by_name(name):
    suite = load_suite(name)
    assert suite.probes and suite.description
    for spec in suite.probes:
        make_probe(spec.probe, **spec.params)  # unknown probe or parameter raises
    for source in suite.sources.values():
        if source.generate:
            accepted = inspect.signature(get_generator(source.generate)).parameters
            assert set(source.params) <= set(accepted), (name, source.name)


@pytest.mark.parametrize("name", ["planted", "collapse", "decodability", "regularization"])
def test_quick_shipped_suites_pass_their_own_checks(name, tmp_path):
    """The suites that take seconds run in full; their checks encode the planted answers."""
    from geoprobe.runner import run_suite

    doc = run_suite(load_suite(name), tmp_path / name, checks=True, show_progress=False)
    failed = [c["name"] + ": " + c["message"] for c in doc["checks"] if not c["passed"]]
    assert doc["checks"] and not failed
    assert (tmp_path / name / "junit.xml").exists()
