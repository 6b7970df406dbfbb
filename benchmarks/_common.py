"""What every benchmark shares: the ``--smoke``/``--out``/``--threads`` flags and the
provenance its results file records (command line, git hash, machine, load, threads).

Scripts import it as ``from _common import Run`` (a script's own folder is on ``sys.path``)::

    ap = argparse.ArgumentParser()
    run = Run(ap, "spectrum")          # adds --smoke, --out, --threads; notes the load now
    args = ap.parse_args()
    with run.threads(args):            # geoprobe's thread policy for the measured work
        ...
        run.write(args, text)          # text + provenance, atomically, to --out

``--smoke`` runs a script in seconds on tiny sizes with one repeat: it proves the script still
runs, not what it measures (tests/test_benchmarks.py runs every script so).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
from pathlib import Path

from geoprobe import threads
from geoprobe.provenance import git_hash, package_versions, write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """CPU model, cores, memory, OS and the main packages' versions, on one line."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        memory = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        pass
    versions = package_versions()
    libs = ", ".join(f"{k} {versions[k]}" for k in ("python", "numpy", "torch") if k in versions)
    return f"{cpu}, {os.cpu_count()} cores{memory}, {platform.platform()}, {libs}"


def load() -> float:
    """The 1-minute load average (nan where the system has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


class Run:
    """One benchmark run: its shared flags, and the provenance of its results file."""

    def __init__(self, parser: argparse.ArgumentParser, name: str, *, default_out: bool = True):
        """Add ``--smoke``, ``--out`` and ``--threads`` to ``parser``.

        name : the results file's stem; ``--out`` defaults to ``benchmarks/results/NAME.md``
            when ``default_out``, else to no file (the script only prints unless given
            ``--out``).
        """
        self.name = name
        self.load_before = load()
        parser.add_argument("--smoke", action="store_true",
                            help="tiny sizes, one repeat, seconds: checks the script runs")
        parser.add_argument("--out", type=Path,
                            default=RESULTS / f"{name}.md" if default_out else None,
                            help="results file to write"
                                 + (f" (default benchmarks/results/{name}.md)" if default_out
                                    else " (default: print only)"))
        parser.add_argument("--threads", default=None, metavar="N",
                            help="BLAS and torch threads for the measured work (a count or "
                                 "'auto'; default $GEOPROBE_THREADS, else geoprobe's default)")

    @staticmethod
    def threads(args):
        """geoprobe's thread policy for the block, at ``--threads``."""
        return threads.policy(args.threads)

    def provenance(self) -> str:
        """A Markdown section: command line, git hash, machine, load before and now, and the
        thread settings in force (call it inside the :meth:`threads` block)."""
        settings = threads.settings()
        blas = ", ".join(f"{k}: {v}" for k, v in settings["blas"].items()) or "none loaded"
        env = ", ".join(f"{k}={v}" for k, v in settings["env"].items()) or "none set"
        command = shlex.join([Path(sys.executable).name, *sys.argv])
        return "\n".join([
            "## Provenance", "",
            f"- command: `{command}`",
            f"- git: {git_hash() or 'not a git checkout'}",
            f"- machine: {machine()}",
            f"- load average (1 min): {self.load_before:.2f} before, {load():.2f} after",
            f"- threads: policy {settings['policy']}, torch {settings['torch']}, BLAS {blas}; "
            f"{threads.ENV}={settings[threads.ENV]}; load-time variables {env}",
            ""])

    def write(self, args, text: str) -> Path | None:
        """Write ``text`` and the provenance to ``--out`` (atomically); None without one."""
        if args.out is None:
            return None
        path = write_text_atomic(args.out, text.rstrip("\n") + "\n\n" + self.provenance())
        print(f"wrote {path}")
        return path
