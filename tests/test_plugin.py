"""A probe from a separately installed package is discovered and run like a built-in one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PLUGIN = Path(__file__).parent / "plugin_pkg"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    # A real pip install, as a user would do it (build isolation fetches setuptools).
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--target", str(target), str(PLUGIN)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return target


def geoprobe(args, site, cwd):
    env = {**os.environ, "PYTHONPATH": str(site), "GEOPROBE_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "geoprobe.cli", *map(str, args)], env=env,
                          cwd=cwd, capture_output=True, text=True)


def test_listed_with_its_needs(plugin_site, tmp_path):
    out = geoprobe(["list"], plugin_site, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "mean-norm" in out.stdout and "Mean vector norm per layer" in out.stdout
    assert "needs: columns: group" in out.stdout


def test_runs_from_a_suite_and_redraws(plugin_site, tmp_path):
    X = np.random.default_rng(0).standard_normal((2, 200, 5)) * [[[1.0]], [[3.0]]]
    np.save(tmp_path / "emb.npy", X)
    (tmp_path / "items.csv").write_text("group\n" + "".join(f"{i // 4}\n" for i in range(200)))
    (tmp_path / "s.toml").write_text("""
[sources.main]
path = "emb.npy"
items = "items.csv"
[[probes]]
probe = "mean-norm"
params = { n_boot = 50 }
[[checks]]
probe = "mean-norm"
metric = "mean_norm"
layer = "1"
op = ">"
value = 5
""")
    out = geoprobe(["check", "s.toml", "-o", "out"], plugin_site, tmp_path)
    assert out.returncode == 0, out.stderr + out.stdout
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    m = {x["labels"]["layer"]: x for x in doc["probes"]["mean-norm"]["metrics"]}
    assert 1.5 < m["0"]["value"] < 2.5 < 5 < m["1"]["value"] < 7.5  # E|x| ~ sqrt(5) * scale
    assert m["0"]["n"] == 50 and m["0"]["unit"] == "group"
    assert (tmp_path / "out" / "figures" / "mean-norm.png").exists()
    out = geoprobe(["report", "out"], plugin_site, tmp_path)
    assert out.returncode == 0, out.stderr


def test_missing_column_refused_by_name_before_work(plugin_site, tmp_path):
    np.save(tmp_path / "emb.npy", np.ones((10, 3)))
    out = geoprobe(["probe", "mean-norm", "emb.npy", "-o", "o"], plugin_site, tmp_path)
    assert out.returncode == 2
    assert "needs item column(s) ['group']" in out.stderr and "Traceback" not in out.stderr
