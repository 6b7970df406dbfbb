"""What a results file records about how it was made; atomic writes; file modes; the cache
directory."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

_PACKAGES = ("geoprobe", "numpy", "scipy", "scikit-learn", "torch", "matplotlib", "nltk",
             "safetensors", "transformers", "h5py", "conllu")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_hash(path=None) -> str | None:
    """Commit of the git checkout holding ``path`` (geoprobe's own source by default),
    with ``-dirty`` appended when it has uncommitted changes; None outside git."""
    where = Path(path or Path(__file__).resolve().parent)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                              text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=where, capture_output=True, text=True, timeout=5)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes (checkpoint hashes in provenance), read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def environment() -> dict:
    """How and where a result was made: versions, commit, platform, command line, time, and
    the thread settings in force (:func:`geoprobe.threads.settings`)."""
    from .threads import settings

    return {
        "versions": package_versions(),
        "git_hash": git_hash(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "argv": sys.argv,
        "threads": settings(),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def cache_root() -> Path:
    """geoprobe's cache directory: ``$GEOPROBE_CACHE``, else ``$XDG_CACHE_HOME/geoprobe``,
    else ``~/.cache/geoprobe``. Everything in it can be rebuilt from its inputs."""
    if os.environ.get("GEOPROBE_CACHE"):
        return Path(os.environ["GEOPROBE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "geoprobe"


def read_json(path, *, missing: str, error=None):
    """Parse a JSON file; a missing, unreadable or malformed file raises ``error`` (a
    GeoprobeError subclass) naming the file, with ``missing`` as the reason for an absent one.

    Malformed covers what ``json`` itself raises on hostile text: a syntax error, bytes that
    are not UTF-8, an integer of more digits than Python converts (ValueError) and nesting
    deeper than the recursion limit (RecursionError)."""
    from .errors import GeoprobeError, first_line

    error = error or GeoprobeError
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: invalid JSON, not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or first_line(exc)})") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise error(f"{path}: invalid JSON ({first_line(exc)})") from None


def umask() -> int:
    """The process umask, read without changing it where the system allows.

    ``os.umask`` can only be read by setting it, which races with threads creating files;
    Linux reports it in ``/proc/self/status``, so the set-and-restore is only the fallback.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path) -> Path:
    """Give ``path`` the mode a plain ``open()`` or ``mkdir()`` would have: 0o666 for a file,
    0o777 for a directory, less the umask.

    ``tempfile.mkstemp``/``mkdtemp`` create private (0600/0700) entries, and renaming one into
    place keeps that mode, so without this every result would be unreadable to the user's
    group whatever their umask says. Everything geoprobe renames into sight passes through here.
    """
    path = Path(path)
    base = 0o777 if path.is_dir() else 0o666
    os.chmod(path, base & ~umask())
    return path


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path beside ``path``; on a clean exit it is renamed to ``path``.

    Write the file to the yielded path with any library (``np.savez``, ``fig.savefig``,
    safetensors). On an exception the temporary file is removed and ``path`` is untouched, so a
    crash never leaves a half-written result. ``suffix`` keeps writers that append one (as
    ``np.savez`` does for ``.npz``) writing to the yielded name. The file gets the mode the
    umask gives (:func:`apply_umask`), not the private one of a temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        apply_umask(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def writing(path):
    """Turn an OSError raised in the block (disk full, read-only file system, no permission)
    into a one-line GeoprobeError naming ``path`` and the system's reason: the user can fix
    it, and the atomic writes have kept whatever ``path`` held before."""
    from .errors import GeoprobeError, first_line

    try:
        yield
    except OSError as exc:
        raise GeoprobeError(f"{path}: cannot write ({exc.strerror or first_line(exc)})") from None


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path, obj) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")
