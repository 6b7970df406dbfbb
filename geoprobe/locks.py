"""One writer per output, and no temporary leftovers after a crash.

Both guarantees rest on ``fcntl.flock`` (Linux, macOS), whose locks the kernel drops when the
holding process dies, however it dies; so a lock never outlives its holder and "I could take
the lock" proves "its last holder is gone". No pid is trusted: pids are reused, and a cache on
a shared disk is seen by processes of other machines.

* :func:`hold` locks an output (a results directory, an embedding set) through a lock file
  beside it, ``.NAME.lock``, which records the holder's pid for error messages. Every writer
  of ``NAME`` holds it while its temporary ``.NAME.tmp-*`` exists, so the next holder may
  remove any it finds (:func:`remove_leftovers`): their writer died.
* :func:`work_dir` makes a scratch directory under ``cache_root()/work`` with a lock file
  beside it, held until the directory is released or its process exits. Each new one first
  removes those whose lock can be taken: what a killed run left behind.

Within one process, threads take turns too: each lock path has a re-entrant thread lock taken
before the file lock, so a thread that already holds an output may lock it again (a run calls
replace_dir on its own output) while another thread waits.

A lock file is unlinked by its holder while still locked, and whoever locks one checks that it
is still the file at that path, so a lock taken on an unlinked file is never trusted.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from .errors import GeoprobeError
from .provenance import cache_root

#: lock files this process holds -> fd (the thread holding the lock path's RLock owns it)
_HELD: dict[Path, int] = {}
#: one re-entrant thread lock per lock path, created on first use
_THREAD_LOCKS: dict[Path, threading.RLock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()
#: work directories this process owns -> fd of their locked lock file
_WORK: dict[Path, int] = {}


class LockedError(GeoprobeError):
    """Another process is writing the same output."""


def lock_path(target) -> Path:
    """The lock file of ``target``: ``.NAME.lock`` beside it."""
    target = Path(os.path.abspath(target))
    return target.with_name(f".{target.name}.lock")


def _try_lock(path: Path, *, create: bool = True) -> int | None:
    """Lock the file at ``path``; its descriptor, or None if another process holds it (or,
    with ``create=False``, it does not exist)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0) | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            current = False
        if current:
            return fd
        os.close(fd)  # its holder unlinked it before we locked it: that lock means nothing
        if not create:
            return None


def _release(path: Path, fd: int) -> None:
    """Unlink a lock file, then unlock it (in that order: see the module docstring)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.close(fd)


def _stamp(fd: int) -> None:
    """Record the holder in its lock file, for the message of whoever finds it locked."""
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="ascii").split()[0]
        return f"pid {int(pid)}"
    except (OSError, ValueError, IndexError):
        return "pid unknown"


@contextlib.contextmanager
def hold(target, *, wait: float = 0.0):
    """Hold the writer lock of ``target`` for the ``with`` block.

    If another process holds it, poll for up to ``wait`` seconds (``math.inf``: until it is
    free), then raise :class:`LockedError` naming ``target``, the lock file and the holder's
    pid. A wait longer than a second is announced on stderr, so a run that seems to hang
    says what it waits for.
    Threads of one process take turns the same way; a thread that holds ``target`` already
    may hold it again. The directory holding ``target`` must exist.
    """
    lock = lock_path(target)
    with _THREAD_LOCKS_GUARD:
        local = _THREAD_LOCKS.setdefault(lock, threading.RLock())
    if not local.acquire(timeout=-1 if math.isinf(wait) else max(wait, 0.0)):
        raise LockedError(f"{target} is being written by another thread of this process "
                          f"(lock {lock}) after waiting {wait:g} s")
    try:
        if lock in _HELD:  # this thread holds it already; the outer hold releases it
            yield lock
            return
        start = time.monotonic()
        delay, announced = 0.01, False
        while (fd := _try_lock(lock)) is None:
            waited = time.monotonic() - start
            if waited >= wait:
                after = f" after waiting {wait:g} s" if wait > 0 else ""
                raise LockedError(f"{target} is being written by another geoprobe process "
                                  f"({_holder(lock)}, lock {lock}){after}")
            if waited > 1 and not announced:
                print(f"geoprobe: waiting for {_holder(lock)} to finish writing {target} "
                      f"(lock {lock})", file=sys.stderr, flush=True)
                announced = True
            delay = min(2 * delay, 0.5)
            time.sleep(min(delay, wait - waited))
        _stamp(fd)
        _HELD[lock] = fd
        try:
            yield lock
        finally:
            del _HELD[lock]
            _release(lock, fd)
    finally:
        local.release()


def _leftover_pattern(name: str) -> re.Pattern:
    # the temporary names geoprobe's writers give: mkdtemp/mkstemp's 8 random characters
    # (plus a suffix such as .npz), and replace_dir's aside copy with a pid
    return re.compile(re.escape(f".{name}.") + r"(tmp-[a-z0-9_]{8}(\.\w+)?|old-\d+)")


def remove_leftovers(target) -> list[Path]:
    """Remove the ``.NAME.tmp-*`` and ``.NAME.old-*`` entries beside ``target``.

    Call only while holding :func:`hold` on ``target``: then no live geoprobe writer owns
    them. Returns what was removed.
    """
    target = Path(os.path.abspath(target))
    if not target.parent.is_dir():
        return []
    pattern = _leftover_pattern(target.name)
    removed = []
    for entry in target.parent.iterdir():
        if pattern.fullmatch(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
            removed.append(entry)
    return removed


def work_root() -> Path:
    """``cache_root()/work``: the scratch directories of runs and generators."""
    return cache_root() / "work"


def clean_work() -> list[Path]:
    """Remove the work directories whose owner has exited without releasing them; returns
    them. Directories of live processes (their lock is held) are never touched."""
    root = work_root()
    if not root.is_dir():
        return []
    removed = []
    for lock in root.glob("*.lock"):
        path = lock.with_suffix("")
        if path in _WORK:
            continue
        fd = _try_lock(lock, create=False)
        if fd is None:
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            _release(lock, fd)
        removed.append(path)
    for path in root.iterdir():  # a lock file goes only after its directory, so these are dead
        if path.is_dir() and not path.with_name(path.name + ".lock").exists():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def work_dir(prefix: str) -> Path:
    """A new directory ``<prefix>-<pid>-<random>`` in :func:`work_root`, owned by this process
    until :func:`release_work_dir` or its exit (after which the next call removes it).

    Stale directories of dead processes are removed first.
    """
    root = work_root()
    root.mkdir(parents=True, exist_ok=True)
    clean_work()
    while True:
        fd, name = tempfile.mkstemp(prefix=f"{prefix}-{os.getpid()}-", suffix=".lock", dir=root)
        os.close(fd)
        lock = Path(name)
        fd = _try_lock(lock, create=False)
        if fd is not None:  # else a concurrent clean_work took it before us and removes it
            break
    _stamp(fd)
    path = lock.with_suffix("")
    path.mkdir()
    _WORK[path] = fd
    return path


def release_work_dir(path) -> None:
    """Delete a directory made by :func:`work_dir` and drop its lock."""
    path = Path(path)
    fd = _WORK.pop(path)
    try:
        shutil.rmtree(path, ignore_errors=True)
    finally:
        _release(path.with_name(path.name + ".lock"), fd)


@contextlib.contextmanager
def scratch_dir(prefix: str):
    """A :func:`work_dir` for the ``with`` block, deleted at its end."""
    path = work_dir(prefix)
    try:
        yield path
    finally:
        release_work_dir(path)

