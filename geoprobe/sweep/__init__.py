"""Sweeps: one suite over many embedding sets (checkpoints, a grid of settings), its probes
and their layers, each (source, probe, layer group) one task on Dask; resumable.

One module per job: :mod:`~geoprobe.sweep.plan` (tasks, keys, seeds; pure),
:mod:`~geoprobe.sweep.store` (finished tasks by key, atomic), :mod:`~geoprobe.sweep.execute`
(Dask or a plain loop), :mod:`~geoprobe.sweep.table` (the tidy table),
:mod:`~geoprobe.sweep.figures` (drawn from the table alone), :mod:`~geoprobe.sweep.trends`
(checks per checkpoint and across them), and :mod:`~geoprobe.sweep.run`, which ties them
together for ``geoprobe sweep``. Guide: docs/sweeps.md.
"""

from .plan import Plan, Task, Variant, plan_sweep
from .run import run_sweep
from .store import TaskStore

__all__ = ["Plan", "Task", "TaskStore", "Variant", "plan_sweep", "run_sweep"]
