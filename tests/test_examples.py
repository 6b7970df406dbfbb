"""The examples a researcher copies must keep working."""

import runpy
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs_and_draws(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["quickstart.py", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "layer 2: RankMe   2.0" in out  # the planted collapse onto 2 directions
    assert (tmp_path / "spectrum.png").stat().st_size > 1000
