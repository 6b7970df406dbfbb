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
