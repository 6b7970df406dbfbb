"""Running a sweep's tasks: on a Dask cluster, or in a plain loop in this process.

Dask (``dask.distributed``, the ``geoprobe[sweep]`` extra) is imported here only, inside the
functions that need it, so ``import geoprobe`` stays light.

Each task runs :func:`compute` on a worker. It looks in the store first and returns at once
when the task is there, so a task the scheduler runs again (its worker died after storing it)
is not computed twice; otherwise it runs the probe under geoprobe's thread policy and stores
the result atomically before returning. A worker killed mid-task loses only that task, which
the scheduler reschedules on another worker (Dask's ``allowed-failures``, 3 by default).

Generated sources whose generator caches its work in a folder (the JEPA trains a model) get
one preparation task per source, which the source's probe tasks depend on, so the model is
trained once, not once per probe.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import threads
from ..errors import GeoprobeError, SuiteError
from ..progress import progress
from ..registry import make_probe
from ..safepath import check_name, inside
from .plan import Task, Variant
from .store import TaskStore


def source_workdir(root, variant: Variant) -> Path:
    """Where a generated source of the sweep keeps its work: ``DIR/sources/<content hash>``."""
    check_name(variant.content, what="source content hash")
    return inside(Path(root) / "sources", variant.content, what="source content hash")


def _load(variant: Variant, root):
    from ..runner import load_source

    # a file source needs no work folder; a generator that takes one makes it
    workdir = source_workdir(root, variant) if variant.spec.generate else None
    return load_source(variant.suite, variant.spec, workdir)


def prepare(variant: Variant, root, n_threads=None) -> str:
    """Make a generated source once (train its model), before its probe tasks run."""
    with threads.policy(n_threads):
        _load(variant, root)
    return variant.content


def compute(task: Task, root, n_threads=None, *_after) -> dict:
    """Run one task and store it, unless the store has it; what was done, as a dict.

    ``_after`` receives the preparation tasks this one waits for (Dask passes their
    results); they are not used.
    """
    from ..runner import resolve_annotation

    store = TaskStore(root)
    if store.has(task.key):
        return {"key": task.key, "computed": False}
    t0 = time.perf_counter()
    spec = task.probe
    with threads.policy(n_threads):
        probe = make_probe(spec.probe, **spec.params)
        source = _load(task.variant, root)
        annotations = {k: resolve_annotation(task.variant.suite, v)
                       for k, v in task.annotations.items()}
        result = probe.run(source, layers=task.layers, annotations=annotations,
                           seed=task.seed, progress=False)
    seconds = time.perf_counter() - t0
    store.put(task.describe(), result.to_dict(), seconds)
    return {"key": task.key, "computed": True, "seconds": seconds}


@dataclass
class Outcome:
    """What a run of tasks did: how many were computed, found done, or failed."""

    computed: int = 0
    cached: int = 0
    errors: list = field(default_factory=list)
    dashboard: str | None = None


def _pending(tasks, store: TaskStore) -> list[Task]:
    done = store.keys()
    return [t for t in tasks if t.key not in done]


def run_serial(tasks: list[Task], root, *, n_threads=None, show_progress=True) -> Outcome:
    """Run the tasks one after the other in this process (no Dask): the baseline the
    benchmark compares with, and what a one-worker sweep amounts to."""
    pending = _pending(tasks, TaskStore(root))
    outcome = Outcome(cached=len(tasks) - len(pending))
    for task in progress(pending, desc="tasks", unit="task", enable=show_progress):
        outcome.computed += compute(task, root, n_threads)["computed"]
    return outcome


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None):
    """A Dask client: connected to ``scheduler`` (``tcp://HOST:PORT``), or to a new
    LocalCluster of ``n_workers`` processes (default: one per core) with one thread each, so
    that workers times BLAS threads never exceeds the cores."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise GeoprobeError("geoprobe sweep needs Dask: pip install 'geoprobe[sweep]'") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise GeoprobeError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        with client:
            yield client
        return
    import logging

    import dask

    # Dask's statistical profiler samples each worker's stack every 10 ms from a thread of
    # its own, which competes for the GIL with the task's many small NumPy calls.
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in each worker; setting it at all turns off
    # glibc's dynamic mmap threshold, so every large NumPy temporary is mmapped and unmapped
    # again: tasks ran 1.5x slower on a worker than in a plain loop. None unsets it.
    with dask.config.set({"distributed.worker.profile.enabled": False,
                          "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = LocalCluster(n_workers=n_workers or os.cpu_count() or 1,
                               threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.CRITICAL)  # errors: one line, ours
    with cluster, Client(cluster) as client:
        yield client


def run_dask(tasks: list[Task], root, *, scheduler=None, n_workers=None, n_threads=None,
             show_progress=True, retries: int = 1, announce=print) -> Outcome:
    """Run the tasks the store lacks on Dask; see the module notes.

    Parameters
    ----------
    scheduler : address of an existing Dask scheduler; None starts a LocalCluster
    n_workers : LocalCluster worker processes (default: the number of cores)
    n_threads : BLAS/torch threads inside each task (geoprobe's policy; default 1)
    retries : extra attempts for a task that raised (a killed worker is retried by the
        scheduler regardless)
    announce : called with one line giving the dashboard's address

    Nothing starts when every task is already stored. A task that still fails is recorded
    in ``Outcome.errors`` (task label and error) and the others go on.
    """
    store = TaskStore(root)
    pending = _pending(tasks, store)
    outcome = Outcome(cached=len(tasks) - len(pending))
    if not pending:
        return outcome
    root = str(Path(root).resolve())  # workers may run elsewhere on a shared file system
    with dask_client(scheduler, n_workers) as client:
        from dask.distributed import as_completed

        outcome.dashboard = client.dashboard_link
        if outcome.dashboard:
            announce(f"Dask dashboard: {outcome.dashboard}")
        prepared = {}
        for t in pending:
            v = t.variant
            if v.content not in prepared and v.cached_generator:
                prepared[v.content] = client.submit(prepare, v, root, n_threads, pure=False,
                                                    key=f"geoprobe-source-{v.content}",
                                                    retries=retries)
        futures = {client.submit(compute, t, root, n_threads,
                                 *([prepared[t.variant.content]]
                                   if t.variant.content in prepared else []),
                                 pure=False, key=f"geoprobe-task-{t.key}", retries=retries): t
                   for t in pending}
        bar = progress(as_completed(futures), total=len(futures), desc="tasks", unit="task",
                       enable=show_progress)
        for future in bar:
            task = futures[future]
            try:
                done = future.result()
            except Exception as exc:  # a probe's error stays that task's; the rest go on
                outcome.errors.append((f"{task.variant.label}/{task.probe_id}",
                                       f"{type(exc).__name__}: {exc}"))
                continue
            outcome.computed += done["computed"]
            outcome.cached += not done["computed"]
    return outcome


def raise_errors(outcome: Outcome) -> None:
    """One line naming the failed tasks, if any."""
    if outcome.errors:
        label, error = outcome.errors[0]
        raise SuiteError(f"{len(outcome.errors)} task(s) failed, first {label}: {error}; "
                         "the others are stored, a rerun retries only the failed ones")
