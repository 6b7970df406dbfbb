"""Experiment-tracker logging: a results directory's parameters, metrics and files.

``geoprobe run ... --log mlflow[:URI]`` (and ``check``, ``probe``) logs, after the run is written:

* parameters: the seed, the suite as run (flattened: ``probes.spectrum.params.n_boot``),
  geoprobe's and Python's versions and the git hash;
* metrics: every metric of every probe, named ``PROBE_ID/METRIC`` and its labels
  (``spectrum/rankme.layer_0``; ``spectrum/rankme.layer_0.baseline_shuffled``), with the
  confidence bounds as separate metrics ``..._ci_low`` and ``..._ci_high``, and each check
  as ``checks/ID`` (1 passed, 0 failed); names keep only the characters trackers accept
  (letters, digits, ``_ - . :`` and spaces; one ``/`` after the probe id, since MLflow's
  folder store makes each ``/`` a folder); non-finite values are left out, as trackers
  refuse them;
* artefacts: the whole results directory (results.json, the reports, the figures, junit.xml).

A tracker is a :class:`Tracker`: five methods (start a run, log parameters, log metrics, log
a folder of artefacts, end the run), so another one (Weights & Biases, say) is one small class
added to :data:`TRACKERS`. MLflow's default store is a local ``mlruns`` folder in the current
directory (not in the results directory, which each run replaces): it works offline and in CI,
and ``mlflow ui`` in that directory shows the runs.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from .errors import GeoprobeError, first_line

#: MLflow's default store when ``--log mlflow`` names no URI: relative to the cwd
DEFAULT_MLRUNS = "mlruns"

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-.: ]")
#: longest parameter value stored (MLflow's limit on older servers)
MAX_PARAM_CHARS = 500


class Tracker:
    """What geoprobe asks of an experiment tracker. Subclasses implement all five methods."""

    def start(self, experiment: str, run_name: str, tags: Mapping[str, str]) -> None:
        raise NotImplementedError

    def log_params(self, params: Mapping[str, str]) -> None:
        raise NotImplementedError

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        raise NotImplementedError

    def log_artifacts(self, directory: Path) -> None:
        raise NotImplementedError

    def end(self, failed: bool = False) -> None:
        raise NotImplementedError


class MLflowTracker(Tracker):
    """Logs to MLflow through its client (no global active run is touched).

    uri : a tracking URI, or a folder path; None for ``./mlruns``.

    MLflow 3 keeps its folder store (``file:`` URIs) in maintenance mode and refuses it unless
    ``MLFLOW_ALLOW_FILE_STORE`` is set; a folder is what works offline with the light
    ``mlflow-skinny`` (a ``sqlite:`` store needs SQLAlchemy and Alembic besides), so the
    tracker sets that variable for its own calls only, and restores it after each.
    """

    #: MLflow accepts at most this many metrics / parameters in one batch
    BATCH = 100

    def __init__(self, uri: str | None = None):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise GeoprobeError("--log mlflow needs mlflow: pip install 'geoprobe[mlflow]'"
                                ) from None
        self.uri = _as_uri(uri or DEFAULT_MLRUNS)
        with self._store_allowed():
            self.client_ = MlflowClient(tracking_uri=self.uri)
        self.run_id_ = None

    @contextlib.contextmanager
    def _store_allowed(self):
        """The folder store allowed for a ``file:`` URI, for the duration of the block."""
        allow = self.uri.startswith("file:") and "MLFLOW_ALLOW_FILE_STORE" not in os.environ
        if allow:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        try:
            yield
        finally:
            if allow:
                del os.environ["MLFLOW_ALLOW_FILE_STORE"]

    def _call(self, method: str, *args, **kwargs):
        from mlflow.exceptions import MlflowException

        try:
            with self._store_allowed():
                return getattr(self.client_, method)(*args, **kwargs)
        except (MlflowException, OSError) as exc:  # the store, not geoprobe: one line
            raise GeoprobeError(f"--log mlflow ({self.uri}): {first_line(exc)}") from None

    def start(self, experiment, run_name, tags):
        found = self._call("get_experiment_by_name", experiment)
        exp_id = found.experiment_id if found else self._call("create_experiment", experiment)
        self.run_id_ = self._call("create_run", exp_id, run_name=run_name,
                                  tags=dict(tags)).info.run_id

    def log_params(self, params):
        from mlflow.entities import Param

        self._batches(params=[Param(k, v) for k, v in params.items()])

    def log_metrics(self, metrics):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._batches(metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])

    def _batches(self, **items) -> None:
        (kind, entries), = items.items()
        for i in range(0, len(entries), self.BATCH):
            self._call("log_batch", self.run_id_, **{kind: entries[i:i + self.BATCH]})

    def log_artifacts(self, directory):
        self._call("log_artifacts", self.run_id_, str(directory))

    def end(self, failed=False):
        self._call("set_terminated", self.run_id_, status="FAILED" if failed else "FINISHED")


#: tracker name (as in ``--log NAME[:URI]``) -> class taking the URI (or None)
TRACKERS: dict[str, type[Tracker]] = {"mlflow": MLflowTracker}


def make_tracker(spec: str) -> Tracker:
    """The tracker ``NAME[:URI]`` names (``mlflow``, ``mlflow:./runs``,
    ``mlflow:http://host:5000``); raises GeoprobeError naming the choices."""
    name, _, uri = spec.partition(":")
    if name not in TRACKERS:
        raise GeoprobeError(f"--log {spec!r}: unknown tracker {name!r}; trackers: "
                            f"{', '.join(sorted(TRACKERS))} (as NAME or NAME:URI)")
    return TRACKERS[name](uri or None)


def _as_uri(uri: str) -> str:
    """A folder path becomes a ``file:`` URI (absolute, so the cwd of later tools does not
    matter); anything with a scheme is kept."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri) and not re.match(r"^[A-Za-z]:[\\/]", uri):
        return uri
    return Path(uri).expanduser().resolve().as_uri()


def clean_name(name: str) -> str:
    """``name`` with every character trackers refuse, and ``/``, replaced by ``_``."""
    return _UNSAFE.sub("_", name)


def flat_params(doc: dict) -> dict[str, str]:
    """The run's parameters, one string per dotted key: seed, versions, the suite as run.

    Lists of tables with an ``id`` (or ``probe``) are keyed by it, so
    ``probes.spectrum.params.n_boot`` reads as the ``--set`` override that changes it.
    """
    env = doc.get("environment", {})
    params = {"seed": doc.get("seed"), "git_hash": env.get("git_hash"),
              **{f"versions.{k}": v for k, v in env.get("versions", {}).items()}}
    _flatten(doc.get("suite", {}).get("config", {}), "suite", params)
    return {clean_name(k): str(v)[:MAX_PARAM_CHARS] for k, v in params.items()}


def _flatten(value, key: str, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{key}.{k}", out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            _flatten(v, f"{key}.{v.get('id') or v.get('probe') or i}", out)
    else:
        out[key] = value


def flat_metrics(doc: dict) -> dict[str, float]:
    """Every finite metric value and CI bound of a results dict, by tracker-safe name."""
    out = {}
    for pid, entry in doc["probes"].items():
        for m in entry["metrics"]:
            labels = "".join(f".{k}_{v}" for k, v in m["labels"].items())
            base = f"{clean_name(pid)}/{clean_name(m['name'] + labels)}"
            for suffix, key in (("", "value"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high")):
                value = float(m[key]) if m[key] is not None else math.nan
                if math.isfinite(value):
                    out[base + suffix] = value
    for c in doc.get("checks", []):
        out[f"checks/{clean_name(c['id'])}"] = float(c["passed"])
    return out


def log_results(tracker: Tracker, doc: dict, out_dir) -> None:
    """Log one results directory as one tracker run (see the module docstring)."""
    suite = doc["suite"]["name"]
    env = doc.get("environment", {})
    failed = any(not c["passed"] for c in doc.get("checks", []))
    tracker.start(experiment=suite, run_name=f"{suite}-seed{doc.get('seed')}",
                  tags={"geoprobe.results": str(Path(out_dir).resolve()),
                        "geoprobe.git_hash": str(env.get("git_hash"))})
    try:
        tracker.log_params(flat_params(doc))
        tracker.log_metrics(flat_metrics(doc))
        tracker.log_artifacts(Path(out_dir))
    except BaseException:
        tracker.end(failed=True)
        raise
    tracker.end(failed=failed)
