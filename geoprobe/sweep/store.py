"""The content-addressed store of a sweep's finished tasks: ``DIR/tasks/<key>.json``.

Each file is one task's results (the task, its probe result, seed, timing, versions, git
hash), written through a temporary file and a rename the moment the task finishes, so a
crash, a Ctrl-C or a killed worker loses at most the tasks still running. A task's key
(:mod:`geoprobe.sweep.plan`) changes whenever its input, parameters, seed or the geoprobe
version do, so "is the file there" is the whole resume logic: a file present is a task done.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

from ..errors import GeoprobeError
from ..provenance import git_hash, package_versions, read_json, write_json_atomic
from ..safepath import check_name, inside

#: format version of a task file
TASK_FORMAT = 1


@functools.lru_cache(maxsize=1)
def _made_by() -> dict:
    """Versions and commit of this process's geoprobe, looked up once per worker."""
    return {"versions": package_versions(), "git_hash": git_hash()}


class TaskStore:
    """Finished tasks of the sweep writing to ``root``, by key."""

    def __init__(self, root):
        self.root = Path(root)
        self.tasks = self.root / "tasks"

    def path(self, key: str) -> Path:
        check_name(key, what="task key")
        return inside(self.tasks, f"{key}.json", what="task key")

    def has(self, key: str) -> bool:
        return self.path(key).exists()

    def get(self, key: str) -> dict | None:
        """The task's results, or None when it has not finished."""
        path = self.path(key)
        if not path.exists():
            return None
        doc = read_json(path, missing="task file vanished")
        if not isinstance(doc, dict) or doc.get("geoprobe_task") != TASK_FORMAT \
                or doc.get("task", {}).get("key") != key:
            raise GeoprobeError(f"{path}: not a geoprobe task file for key {key}; remove it "
                                "to recompute the task")
        return doc

    def put(self, task: dict, result: dict, seconds: float) -> Path:
        """Store a finished task (``task``: :meth:`~geoprobe.sweep.plan.Task.describe`)."""
        doc = {"geoprobe_task": TASK_FORMAT, "task": task, "result": result,
               "seconds": round(seconds, 4),
               "worker": {"host": socket.gethostname(), "pid": os.getpid()}, **_made_by()}
        return write_json_atomic(self.path(task["key"]), doc)

    def keys(self) -> set[str]:
        """Keys of every stored task."""
        if not self.tasks.is_dir():
            return set()
        return {p.name[:-5] for p in self.tasks.iterdir()
                if p.name.endswith(".json") and not p.name.startswith(".")}
