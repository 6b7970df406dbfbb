"""Benchmarks that do not rot: every script in benchmarks/ runs in its ``--smoke`` mode and
writes a results file that says how it was made."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
#: timing benchmarks, and the statistical checks (p-value calibration, interval coverage)
SCRIPTS = sorted(p.name for pattern in ("bench_*.py", "calibration_*.py", "coverage_*.py")
                 for p in BENCHMARKS.glob(pattern))
#: what every results file's provenance section must record
PROVENANCE = ("- command: ", "--smoke", "- git: ", "- machine: ", "cores",
              "- load average (1 min): ", "- threads: policy ")


def test_every_script_is_covered():
    assert len(SCRIPTS) >= 10 and "bench_threads.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_smoke_run_writes_results_with_provenance(script, tmp_path):
    out = tmp_path / "results.md"
    shipped = {p: p.stat().st_mtime_ns for p in (BENCHMARKS / "results").iterdir()}
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--smoke", "--out",
                           str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    for field in PROVENANCE:
        assert field in text, f"{script}: no {field!r} in its results file"
    assert {p: p.stat().st_mtime_ns for p in (BENCHMARKS / "results").iterdir()} == shipped
