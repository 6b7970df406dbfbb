"""geoprobe sweep: planning, the content-addressed store and resume, Dask execution (two
worker processes, one killed mid-task), deterministic seeds, trend checks and figures."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from geoprobe.errors import SuiteError
from geoprobe.plotting import save_figure
from geoprobe.suite import load_suite
from geoprobe.sweep import TaskStore, plan_sweep, run_sweep
from geoprobe.sweep import execute
from geoprobe.sweep.figures import draw_figures
from geoprobe.sweep.plan import expand_grid, step_of
from geoprobe.sweep.report import caption_of, figure_captions
from geoprobe.sweep.table import COLUMNS, read_table
from geoprobe.sweep.trends import evaluate_trends

SUITE = """
[suite]
name = "ckpts"
seed = 7

[sources.main]
path = "unused.npy"
items = "items.csv"

[[probes]]
id = "spectrum"
probe = "covariance-spectrum"
params = { group = "group", n_boot = 20 }

[[checks]]
probe = "spectrum"
metric = "rankme"
layer = "1"
op = ">="
value = 1.0

[[trends]]
probe = "spectrum"
metric = "rankme"
layer = "1"
max_drop = 0.5
"""


def _checkpoint(path, rank, seed=0):
    """A 2-layer set of 60 items whose layer 1 has effective rank about ``rank``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2, 60, 8))
    X[1, :, rank:] *= 0.01
    np.save(path, X)


@pytest.fixture
def ckpts(tmp_path):
    (tmp_path / "items.csv").write_text("group\n" + "".join(f"{i // 3}\n" for i in range(60)))
    (tmp_path / "s.toml").write_text(SUITE)
    for step, rank in [(100, 2), (200, 4), (300, 6)]:
        _checkpoint(tmp_path / f"step_{step}.npy", rank, seed=step)
    return tmp_path


def _plan(d, per_layer=True, **kw):
    return plan_sweep(str(d / "s.toml"), embeddings=[str(d / "step_*.npy")],
                      items=str(d / "items.csv"), per_layer=per_layer, **kw)


def test_step_and_grid_parsing():
    assert step_of("ckpts/step_000400.gpemb") == 400
    assert step_of("run-lam0.1-12.npy") == 12 and step_of("final.npy") is None
    assert expand_grid(["a.b=0,0.1", "c=x,y"]) == [
        {"a.b": 0, "c": "x"}, {"a.b": 0, "c": "y"}, {"a.b": 0.1, "c": "x"},
        {"a.b": 0.1, "c": "y"}]
    with pytest.raises(SuiteError, match="dotted.key=v1,v2"):
        expand_grid(["nokey"])


def test_plan_crosses_checkpoints_probes_and_layers(ckpts):
    plan = _plan(ckpts)
    assert [v.step for v in plan.variants] == [100, 200, 300]
    assert len(plan.tasks) == 6 and len({t.key for t in plan.tasks}) == 6
    # one seed per (probe, layer) shared by every checkpoint, different between layers
    seeds = {(t.variant.step, t.layers): t.seed for t in plan.tasks}
    assert seeds[100, "0"] == seeds[300, "0"] != seeds[100, "1"]
    assert len(_plan(ckpts, per_layer=False).tasks) == 3


def test_keys_follow_content_params_and_seed(ckpts):
    before = {(t.variant.step, t.layers): t.key for t in _plan(ckpts).tasks}
    _checkpoint(ckpts / "step_200.npy", 5, seed=1)  # new bytes for one checkpoint
    after = {(t.variant.step, t.layers): t.key for t in _plan(ckpts).tasks}
    assert [k for k in before if before[k] != after[k]] == [(200, "0"), (200, "1")]
    other_seed = {(t.variant.step, t.layers): (t.key, t.seed)
                  for t in plan_sweep(str(ckpts / "s.toml"), ["suite.seed=8"],
                                      embeddings=[str(ckpts / "step_*.npy")],
                                      items=str(ckpts / "items.csv"), per_layer=True).tasks}
    assert all(other_seed[k][0] != after[k] for k in after)
    n_boot = _plan(ckpts, per_layer=True).tasks[0].key
    changed = plan_sweep(str(ckpts / "s.toml"), ["probes.spectrum.params.n_boot=21"],
                         embeddings=[str(ckpts / "step_*.npy")], items=str(ckpts / "items.csv"),
                         per_layer=True).tasks[0].key
    assert n_boot != changed


def test_serial_sweep_resumes_without_recomputing(ckpts, monkeypatch):
    out = ckpts / "sweep"
    real, calls = execute.compute, []

    def interrupted(task, *args):  # Ctrl-C while the third task runs
        calls.append(task.key)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(task, *args)

    monkeypatch.setattr(execute, "compute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(str(ckpts / "s.toml"), out, embeddings=[str(ckpts / "step_*.npy")],
                  items=str(ckpts / "items.csv"), per_layer=True, serial=True,
                  show_progress=False)
    store = TaskStore(out)
    assert len(store.keys()) == 2
    monkeypatch.setattr(execute, "compute", real)
    kept = {k: store.path(k).stat().st_mtime_ns for k in store.keys()}
    doc = run_sweep(str(ckpts / "s.toml"), out, embeddings=[str(ckpts / "step_*.npy")],
                    items=str(ckpts / "items.csv"), per_layer=True, serial=True,
                    show_progress=False)
    assert doc["counts"] == {"tasks": 6, "computed": 4, "cached": 2, "rows": doc["counts"]["rows"]}
    assert {k: store.path(k).stat().st_mtime_ns for k in kept} == kept  # not rewritten
    # a new checkpoint: only its two tasks run
    _checkpoint(ckpts / "step_400.npy", 7, seed=400)
    doc = run_sweep(str(ckpts / "s.toml"), out, embeddings=[str(ckpts / "step_*.npy")],
                    items=str(ckpts / "items.csv"), per_layer=True, serial=True,
                    show_progress=False)
    assert (doc["counts"]["computed"], doc["counts"]["cached"]) == (2, 6)
    rows = read_table(out / "sweep.csv")
    assert list(rows[0])[:len(COLUMNS)] == COLUMNS
    findings = [r for r in rows if r["metric"] == "rankme" and r["layer"] == "1"
                and not r["baseline"]]
    ranks = {r["step"]: r["value"] for r in findings}
    assert ranks[100] < ranks[200] < ranks[300] < ranks[400]  # the planted ranks, in order
    assert all(r["ci_low"] <= r["value"] <= r["ci_high"] for r in findings)
    assert len(rows) == len({(r["task"], r["metric"], r["layer"], r["baseline"], r["labels"])
                             for r in rows})  # every metric once
    assert {c["passed"] for c in doc["checks"]} == {True}
    assert (out / "junit.xml").exists() and (out / "figures" / "dynamics-spectrum-rankme.png").exists()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One LocalCluster of 2 worker processes for the Dask tests, whose workers can import
    the crash-once test plug-in: a hand-made distribution on sys.path, which spawned worker
    processes inherit (a restarted worker too)."""
    pytest.importorskip("distributed", reason="the sweep extra (geoprobe[sweep]) is in CI")
    from geoprobe.sweep.execute import dask_client

    site = tmp_path_factory.mktemp("site")
    dist = site / "geoprobe_crashonce-0.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: geoprobe-crashonce\n"
                                   "Version: 0.0.1\n")
    (dist / "entry_points.txt").write_text("[geoprobe.probes]\ncrash-once = "
                                           "geoprobe_crashonce:CrashOnce\n")
    (site / "geoprobe_crashonce.py").write_text(
        (Path(__file__).parent / "sweep_plugin" / "geoprobe_crashonce.py").read_text())
    sys.path.insert(0, str(site))
    try:
        with dask_client(n_workers=2) as client:
            yield SimpleNamespace(address=client.scheduler.address, site=site)
    finally:
        sys.path.remove(str(site))


def test_two_dask_workers_give_the_serial_numbers(ckpts, cluster):
    kwargs = dict(embeddings=[str(ckpts / "step_*.npy")], items=str(ckpts / "items.csv"),
                  per_layer=True, show_progress=False)
    serial = run_sweep(str(ckpts / "s.toml"), ckpts / "serial", serial=True, **kwargs)
    lines = []
    parallel = run_sweep(str(ckpts / "s.toml"), ckpts / "dask", scheduler=cluster.address,
                         announce=lines.append, **kwargs)
    assert serial["counts"]["computed"] == parallel["counts"]["computed"] == 6
    assert lines and "dashboard" in lines[0]
    pids = {json.loads(p.read_text())["worker"]["pid"]
            for p in (ckpts / "dask" / "tasks").iterdir()}
    assert os.getpid() not in pids  # ran in the worker processes
    assert (ckpts / "serial" / "sweep.csv").read_text() == \
        (ckpts / "dask" / "sweep.csv").read_text()
    # nothing is submitted when everything is done
    again = run_sweep(str(ckpts / "s.toml"), ckpts / "dask", scheduler="tcp://192.0.2.1:1",
                      **kwargs)
    assert again["counts"]["computed"] == 0 and again["executor"]["dashboard"] is None


def test_a_worker_killed_mid_task_is_retried_and_nothing_is_lost(ckpts, cluster):
    marker = ckpts / "crashed"
    (ckpts / "k.toml").write_text(f"""
[sources.main]
path = "unused.npy"
[[probes]]
probe = "crash-once"
params = {{ marker = "{marker}" }}
""")
    env = {**os.environ, "PYTHONPATH": str(cluster.site), "GEOPROBE_NO_PROGRESS": "1"}
    done = subprocess.run([sys.executable, "-m", "geoprobe.cli", "sweep", "k.toml", "-o", "out",
                           "--embeddings", "step_*.npy", "--per-layer",
                           "--scheduler", cluster.address],
                          cwd=ckpts, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert marker.exists()  # a worker did die
    doc = json.loads((ckpts / "out" / "sweep.json").read_text())
    assert doc["counts"]["computed"] == 6 and doc["executor"]["scheduler"] == cluster.address
    rows = read_table(ckpts / "out" / "sweep.csv")
    assert sorted((r["step"], r["layer"]) for r in rows) == [
        (s, layer) for s in (100, 200, 300) for layer in ("0", "1")]
    assert len({json.loads(p.read_text())["worker"]["pid"]
                for p in (ckpts / "out" / "tasks").iterdir()}) >= 1


def _trend_docs(values):
    docs = []
    for step, value in values:
        metric = {"name": "rankme", "value": value, "ci_low": value - 1, "ci_high": value + 1,
                  "labels": {"layer": "1"}, "higher_is_better": True}
        docs.append((SimpleNamespace(step=step, label=f"step_{step}"),
                     {"probes": {"spectrum": {"probe": "covariance-spectrum",
                                              "metrics": [metric]}}}))
    return docs


def test_trends_pass_and_fail(ckpts):
    suite = load_suite(str(ckpts / "s.toml"), ["trends.spectrum-rankme-1-max_drop.max_drop=0.2"])
    (drop,) = suite.trends
    rising = _trend_docs([(100, 2.0), (200, 4.0), (300, 6.0)])
    assert evaluate_trends([drop], rising)[0].passed
    fell = _trend_docs([(100, 2.0), (200, 6.0), (300, 4.0)])  # -33 % from 200 to 300
    (o,) = evaluate_trends([drop], fell)
    assert not o.passed and "step 200->300" in o.message
    threshold = load_suite(str(ckpts / "s.toml")).trends[0]
    threshold.max_drop, threshold.op, threshold.value, threshold.from_step = None, ">=", 3.0, 200
    assert evaluate_trends([threshold], rising)[0].passed  # 2.0 at step 100 is before 200
    threshold.from_step = 0
    (o,) = evaluate_trends([threshold], rising)
    assert not o.passed and "step 100" in o.message
    threshold.from_step = 1000
    assert not evaluate_trends([threshold], rising)[0].passed  # nothing checked is no pass


def test_trend_specs_are_validated(ckpts):
    text = SUITE.replace("max_drop = 0.5", "max_drop = 0.5\nop = '>='\nvalue = 1")
    (ckpts / "bad.toml").write_text(text)
    with pytest.raises(SuiteError, match=r"\[\[trends\]\] #1: give either"):
        load_suite(str(ckpts / "bad.toml"))
    (ckpts / "bad.toml").write_text(SUITE.replace('probe = "spectrum"\nmetric = "rankme"\n'
                                                  'layer = "1"\nmax_drop',
                                                  'probe = "nope"\nmetric = "rankme"\nmax_drop'))
    with pytest.raises(SuiteError, match="unknown probe id 'nope'"):
        load_suite(str(ckpts / "bad.toml"))


def test_figures_are_drawn_from_the_table_alone(tmp_path, check_saved_figure):
    rows = []
    for step in (100, 200, 300):
        for layer in ("0", "1", "2"):
            for lam in ("0", "0.1"):
                v = step / 100 + int(layer) + float(lam)
                rows.append({"source": f"s{step}", "step": step, "probe": "spectrum",
                             "probe_name": "covariance-spectrum", "metric": "rankme",
                             "layer": layer, "baseline": "", "labels": "", "value": v,
                             "ci_low": v - 0.2, "ci_high": v + 0.2,
                             "sources.main.params.lam": lam})
    figs = dict(draw_figures(rows))
    assert set(figs) == {"dynamics-spectrum-rankme", "heatmap-spectrum-rankme-lam_0",
                         "heatmap-spectrum-rankme-lam_0.1", "grid-lam-spectrum-rankme"}
    for stem, fig in figs.items():
        check_saved_figure(fig, save_figure(fig, tmp_path / stem))
    # report.html's captions say what each figure plots, grid values included
    captions = {stem: caption_of(stem, figure_captions(rows)) for stem in figs}
    assert captions["dynamics-spectrum-rankme"].startswith("spectrum: rankme against training")
    assert captions["heatmap-spectrum-rankme-lam_0.1"].endswith("value (lam_0.1).")
    assert captions["grid-lam-spectrum-rankme"].startswith("spectrum: rankme against lam")


def test_cli_help_teaches():
    done = subprocess.run([sys.executable, "-m", "geoprobe.cli", "sweep", "--help"],
                          capture_output=True, text=True)
    assert done.returncode == 0
    for text in ("--embeddings", "--grid", "--scheduler", "resume", "sweep.csv"):
        assert text in done.stdout


SIMILARITY_SUITE = """
[suite]
name = "to-last"
seed = 3

[sources.main]
path = "unused.npy"
items = "items.csv"

[[probes]]
id = "sim"
probe = "similarity"
layers = [1]
params = { metrics = ["cka_linear"], n_boot = 5, n_perm = 3 }
annotations = { other = "sweep:last" }
"""


def test_similarity_to_the_last_checkpoint(ckpts):
    (ckpts / "sim.toml").write_text(SIMILARITY_SUITE)
    args = dict(embeddings=[str(ckpts / "step_*.npy")], items=str(ckpts / "items.csv"))
    plan = plan_sweep(str(ckpts / "sim.toml"), **args)
    last = str((ckpts / "step_300.npy").resolve())
    assert {t.annotations["other"] for t in plan.tasks} == {last}
    doc = run_sweep(str(ckpts / "sim.toml"), ckpts / "out", serial=True, show_progress=False,
                    **args)
    assert doc["counts"]["computed"] == 3
    rows = [r for r in read_table(ckpts / "out" / "sweep.csv") if r["metric"] == "cka_linear"
            and not r["baseline"] and "vs_layer=1" in r["labels"].split(";")]
    cka = {r["step"]: r["value"] for r in rows}
    assert cka[300] == pytest.approx(1.0) and cka[100] < 0.99 and cka[200] < 0.99
    # a new last checkpoint: every task reads a new file, so every key changes
    _checkpoint(ckpts / "step_400.npy", 7, seed=400)
    again = plan_sweep(str(ckpts / "sim.toml"), **args)
    assert not {t.key for t in plan.tasks} & {t.key for t in again.tasks}
    # without checkpoints there is no last one; a single run refuses the value
    _checkpoint(ckpts / "unused.npy", 2)
    with pytest.raises(SuiteError, match="needs checkpoints given with --embeddings"):
        plan_sweep(str(ckpts / "sim.toml"))
    from geoprobe.runner import resolve_annotation

    with pytest.raises(SuiteError, match="not in a single run"):
        resolve_annotation(load_suite(str(ckpts / "sim.toml")), "sweep:last")


def test_a_changed_annotation_file_changes_the_key(ckpts):
    suite = SIMILARITY_SUITE.replace('"sweep:last"', '"other.npy"')
    (ckpts / "fixed.toml").write_text(suite)
    _checkpoint(ckpts / "other.npy", 3, seed=9)
    args = dict(embeddings=[str(ckpts / "step_*.npy")], items=str(ckpts / "items.csv"))
    before = [t.key for t in plan_sweep(str(ckpts / "fixed.toml"), **args).tasks]
    assert before == [t.key for t in plan_sweep(str(ckpts / "fixed.toml"), **args).tasks]
    _checkpoint(ckpts / "other.npy", 3, seed=10)  # same name, new bytes
    after = [t.key for t in plan_sweep(str(ckpts / "fixed.toml"), **args).tasks]
    assert not set(before) & set(after)
