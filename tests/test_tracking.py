"""Experiment-tracker logging: a run logged to a local mlruns folder reads back with MLflow's
own client, with every metric, its CI bounds, the parameters and the results as artefacts."""

import json

import pytest

from geoprobe.cli import main
from geoprobe.errors import GeoprobeError
from geoprobe.tracking import Tracker, clean_name, flat_metrics, log_results, make_tracker

SMALL = ["--set", "sources.planted.params.n_items=600", "--set",
         "probes.spectrum.params.n_boot=30", "--no-progress", "-q"]


def test_mlflow_run_in_a_local_folder_reads_back(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow is an optional extra (geoprobe[mlflow])")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # the default store is ./mlruns
    assert main(["check", "planted", "-o", "r", "--log", "mlflow", *SMALL]) == 0
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    runs = client.search_runs([client.get_experiment_by_name("planted").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    rankme = next(m for m in doc["probes"]["spectrum"]["metrics"]
                  if m["name"] == "rankme" and m["labels"] == {"layer": "rank16"})
    logged = run.data.metrics
    assert logged["spectrum/rankme.layer_rank16"] == pytest.approx(rankme["value"])
    assert logged["spectrum/rankme.layer_rank16_ci_low"] == pytest.approx(rankme["ci_low"])
    assert logged["spectrum/rankme.layer_rank16_ci_high"] == pytest.approx(rankme["ci_high"])
    assert logged["checks/spectrum-rankme-rank16"] == 1.0
    assert run.data.params["seed"] == "0"
    assert run.data.params["suite.probes.spectrum.params.n_boot"] == "30"
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"results.json", "report.md", "junit.xml", "figures"} <= files


class Recorder(Tracker):
    """A tracker that keeps what it is given: the interface is five methods."""

    def __init__(self, fail_on=None):
        self.calls, self.fail_on = [], fail_on

    def _record(self, name, *args):
        if name == self.fail_on:
            raise OSError("disk full")
        self.calls.append((name, *args))

    def start(self, experiment, run_name, tags):
        self._record("start", experiment)

    def log_params(self, params):
        self._record("params", dict(params))

    def log_metrics(self, metrics):
        self._record("metrics", dict(metrics))

    def log_artifacts(self, directory):
        self._record("artifacts", directory)

    def end(self, failed=False):
        self._record("end", failed)


DOC = {"suite": {"name": "s", "config": {"probes": [{"id": "p", "params": {"k": 1}}]}},
       "seed": 3, "environment": {"versions": {"geoprobe": "0"}, "git_hash": "abc"},
       "probes": {"p": {"metrics": [
           {"name": "r", "labels": {"layer": "a/b"}, "value": 1.5, "ci_low": 1.0,
            "ci_high": "nan"}]}},
       "checks": [{"id": "p-r", "passed": False}]}


def test_log_results_names_metrics_safely_and_ends_failed_runs(tmp_path):
    rec = Recorder()
    log_results(rec, DOC, tmp_path)
    calls = dict((c[0], c[1:]) for c in rec.calls)
    assert calls["params"][0]["suite.probes.p.params.k"] == "1"
    # the '/' of a label value would make a folder in MLflow's store; NaN bounds are left out
    assert calls["metrics"][0] == {"p/r.layer_a_b": 1.5, "p/r.layer_a_b_ci_low": 1.0,
                                   "checks/p-r": 0.0}
    assert rec.calls[-1] == ("end", True)  # a failed check marks the run failed
    rec = Recorder(fail_on="artifacts")
    with pytest.raises(OSError):
        log_results(rec, DOC, tmp_path)
    assert rec.calls[-1] == ("end", True)


def test_names_and_unknown_trackers():
    assert clean_name("a b/c=d:e") == "a b_c_d:e"
    assert set(flat_metrics(DOC)) == {"p/r.layer_a_b", "p/r.layer_a_b_ci_low", "checks/p-r"}
    with pytest.raises(GeoprobeError, match="unknown tracker 'wandb'; trackers: mlflow"):
        make_tracker("wandb")


def test_probe_command_logs_its_results_too(tmp_path, monkeypatch):
    import numpy as np

    import geoprobe.tracking

    rec = Recorder()
    monkeypatch.setattr(geoprobe.tracking, "make_tracker", lambda spec: rec)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(60, 4)))
    assert main(["probe", "covariance-spectrum", str(tmp_path / "x.npy"), "--param", "n_boot=5",
                 "-o", str(tmp_path / "out"), "--no-progress", "-q", "--log", "mlflow"]) == 0
    calls = dict((c[0], c[1:]) for c in rec.calls)
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    rankme = next(m for m in doc["probes"]["covariance-spectrum"]["metrics"]
                  if m["name"] == "rankme")
    assert calls["metrics"][0]["covariance-spectrum/rankme.layer_0"] == rankme["value"]
    assert calls["artifacts"] == (tmp_path / "out",) and rec.calls[-1] == ("end", False)
