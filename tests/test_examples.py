"""The examples a researcher copies must keep working."""

import runpy
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs_and_draws(tmp_path, monkeypatch, capsys, check_saved_figure):
    from geoprobe.plotting import save_figure

    figures = []
    # keep the Figure the example saves, to check the files against it
    monkeypatch.setattr("geoprobe.plotting.save_figure",
                        lambda fig, *a, **k: figures.append(fig) or save_figure(fig, *a, **k))
    monkeypatch.setattr(sys, "argv", ["quickstart.py", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "layer 2: RankMe   2.0" in out  # the planted collapse onto 2 directions
    (fig,) = figures
    # one spectrum curve per layer of the 3-layer export (plus the shuffled baseline)
    assert [ln.get_label() for ln in fig.axes[0].get_lines()][:3] == [
        "layer 0", "layer 1", "layer 2"]
    check_saved_figure(fig, [tmp_path / "spectrum.pdf", tmp_path / "spectrum.png"])


def test_notebook_runs_top_to_bottom_and_shows_tables(tmp_path):
    """examples/quickstart.ipynb in a real kernel: every cell runs (a cell's error fails the
    run), and the results, the probe
    result and the embedding set display as HTML tables (the probe result with its figure)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    # the kernel is this interpreter's (ipykernel's own spec), so it imports this geoprobe
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    html = [out["data"]["text/html"] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.outputs if "text/html" in out.get("data", {})]
    assert any('class="geoprobe-results"' in h and "<table" in h for h in html)
    assert any('class="geoprobe-result"' in h and "data:image/png;base64," in h for h in html)
    assert any('class="geoprobe-embeddings"' in h for h in html)
    assert any("<table" in h and "ci_low" in h for h in html)  # the pandas DataFrame
