"""geoprobe's pytest plug-in, run as a user's pytest run meets it (pytester): a RankMe check
on a collapsed checkpoint fails with a readable table; on a healthy one it passes."""

import numpy as np
import pytest

pytest_plugins = ["pytester"]

INNER = """
def test_no_collapse(geoprobe_check):
    geoprobe_check("covariance-spectrum", params={"n_boot": 20},
                   checks=[{"metric": "rankme", "layer": "0", "op": ">=", "value": 8}])
"""


@pytest.fixture
def checkpoints(tmp_path):
    rng = np.random.default_rng(0)
    healthy = rng.standard_normal((200, 16))
    collapsed = rng.standard_normal((200, 2)) @ rng.standard_normal((2, 16))  # rank 2
    paths = {}
    for name, X in (("healthy", healthy), ("collapsed", collapsed)):
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], X)
    return paths


def test_collapsed_checkpoint_fails_with_a_readable_table(pytester, checkpoints):
    pytester.makepyfile(test_geometry=INNER)
    result = pytester.runpytest_subprocess("--geoprobe-embeddings",
                                           str(checkpoints["collapsed"]), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*geoprobe: 1 of 1 check(s) failed in suite 'covariance-spectrum'*",
        "*check*metric*labels*value*95% CI*threshold*previous*",
        "*covariance-spectrum-rankme-0*rankme*layer=0*>= 8*",
        "*is false*",
    ])
    assert "Traceback" not in result.stdout.str()  # the table, not a stack


def test_healthy_checkpoint_passes(pytester, checkpoints):
    pytester.makepyfile(test_geometry=INNER)
    result = pytester.runpytest_subprocess("--geoprobe-embeddings",
                                           str(checkpoints["healthy"]), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_relative_check_shows_the_previous_value(pytester, checkpoints, tmp_path):
    """A suite's check against previous results: the table has the previous value."""
    from geoprobe.cli import main

    suite = tmp_path / "suite.toml"
    suite.write_text(f"""
[suite]
name = "ckpt"
[sources.main]
path = "{checkpoints['healthy']}"
[[probes]]
id = "spectrum"
probe = "covariance-spectrum"
params = {{ n_boot = 20 }}
[[checks]]
probe = "spectrum"
metric = "rankme"
layer = "0"
against = "previous"
max_drop = 0.1
""")
    assert main(["run", str(suite), "-o", str(tmp_path / "prev"), "-q"]) == 0
    pytester.makepyfile(test_geometry=f"""
def test_no_regression(geoprobe_check):
    geoprobe_check({str(suite)!r})
""")
    result = pytester.runpytest_subprocess(
        "--geoprobe-embeddings", str(checkpoints["collapsed"]),
        "--geoprobe-against", str(tmp_path / "prev"), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*spectrum-rankme-0-previous*drop <= 10%*", "*dropped*"])


def test_missing_embeddings_is_one_clear_line(pytester):
    pytester.makepyfile(test_geometry=INNER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*needs embeddings*--geoprobe-embeddings PATH*"])


def test_plugin_options_are_listed_in_help(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*geoprobe*", "*--geoprobe-embeddings=PATH*"])
