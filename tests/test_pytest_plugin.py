"""geoprobe's pytest plug-in, run as a user's pytest run meets it (pytester): the README's
RankMe check on a collapsed checkpoint fails with a readable table; on a healthy one it
passes."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parents[1]
#: the README's example: a user's test that RankMe stays at or above 20
INNER = (ROOT / "README.md").read_text(encoding="utf-8").split(
    "## In your tests", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def checkpoints(tmp_path):
    rng = np.random.default_rng(0)
    healthy = rng.standard_normal((200, 64))  # RankMe about 55
    collapsed = rng.standard_normal((200, 2)) @ rng.standard_normal((2, 64))  # rank 2
    paths = {}
    for name, X in (("healthy", healthy), ("collapsed", collapsed)):
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], X)
    return paths


def test_collapsed_checkpoint_fails_with_a_readable_table_healthy_passes(pytester,
                                                                         checkpoints):
    """One inner run (a pytest start costs seconds): the README's test on the collapsed
    checkpoint given by --geoprobe-embeddings, and the same check on the healthy one given to
    the fixture."""
    given = f'"covariance-spectrum", embeddings={str(checkpoints["healthy"])!r},'
    healthy = INNER.replace("def test_no_collapse", "def test_healthy").replace(
        '"covariance-spectrum",', given)
    pytester.makepyfile(test_geometry=INNER + "\n" + healthy)
    result = pytester.runpytest_subprocess("--geoprobe-embeddings",
                                           str(checkpoints["collapsed"]), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*test_no_collapse*",
        "*geoprobe: 1 of 1 check(s) failed in suite 'covariance-spectrum'*",
        "*check*metric*labels*value*95% CI*threshold*previous*",
        "*covariance-spectrum-rankme-0*rankme*layer=0*>= 20*",
        "*is false*",
    ])
    assert "Traceback" not in result.stdout.str()  # the table, not a stack
    assert "FAILED test_geometry.py::test_healthy" not in result.stdout.str()


def test_relative_check_shows_the_previous_value(pytester, checkpoints, tmp_path):
    """A suite's check against previous results: the table has the previous value."""
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
    # in a subprocess: pytester drops the modules a test imports when it ends, and numerical
    # extensions imported twice in one process can crash it
    done = subprocess.run([sys.executable, "-m", "geoprobe", "run", str(suite), "-o",
                           str(tmp_path / "prev"), "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
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


def test_ci_workflow_example_checks_and_uploads_report_and_junit():
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the mlflow extra")
    flow = yaml.safe_load((ROOT / "examples" / "ci" / "geoprobe.yml").read_text())
    steps = flow["jobs"]["geoprobe"]["steps"]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "geoprobe check" in runs and "--geoprobe-embeddings" in runs
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"  # the report matters most when a check failed
    paths = upload["with"]["path"].split()
    assert "geoprobe-out/report.html" in paths and "geoprobe-out/junit.xml" in paths


def test_loading_the_plugin_imports_nothing_numerical():
    """pytest loads the plug-in in every run of an environment with geoprobe: it must not
    import numpy, torch or matplotlib until the fixture is used."""
    code = ("import sys, geoprobe.pytest_plugin, geoprobe; "
            "print(sorted(m for m in ('numpy', 'torch', 'matplotlib') if m in sys.modules)); "
            "geoprobe.EmbeddingSet; print('numpy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "True"]  # and the public names still load
