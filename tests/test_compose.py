"""Paper figures composed from several results files: the shipped example spec drawn from runs
the test makes, the numbers in a trend panel, the layout, and a spec's errors."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from geoprobe.cli import main
from geoprobe.compose import JOURNAL_WIDTH, compose, load_spec
from geoprobe.errors import GeoprobeError
from geoprobe.runner import load_results

EXAMPLE = Path(__file__).parents[1] / "examples" / "figures" / "noise_sweep.toml"
NOISE = ("0.001", "0.05", "0.2")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The example spec beside the three runs it names (small and quick)."""
    root = tmp_path_factory.mktemp("figure")
    shutil.copy(EXAMPLE, root / EXAMPLE.name)
    for n in NOISE:
        assert main(["run", "planted", "-o", str(root / "runs" / f"noise-{n}"), "-qq",
                     "--set", "sources.planted.params.n_items=400",
                     "--set", "probes.spectrum.params.n_boot=20",
                     "--set", f"sources.planted.params.noise={n}", "--formats", "png"]) == 0
    return root


def test_example_spec_draws_to_pdf_and_png(runs, check_saved_figure):
    spec = runs / EXAMPLE.name
    for ext in ("pdf", "png"):
        assert main(["figure", str(spec), "-o", str(runs / f"fig.{ext}"), "-q"]) == 0
    fig = compose(load_spec(spec))
    assert fig.get_size_inches()[0] == pytest.approx(JOURNAL_WIDTH["page"])
    check_saved_figure(fig, [runs / "fig.pdf", runs / "fig.png"])
    # one letter per panel, and the two 'axes' panels kept one axes each
    subs = fig.subfigs
    assert [s.get_suptitle() for s in subs] == ["a", "b", "c"]
    assert [len(s.axes) for s in subs] == [1, 1, 1]
    assert subs[1].axes[0].get_ylabel() == "RankMe"


def test_trend_panel_plots_each_runs_value_against_x(runs):
    fig = compose(load_spec(runs / EXAMPLE.name))
    ax = fig.subfigs[2].axes[0]
    expected = [load_results(runs / "runs" / f"noise-{n}").get("probes")["spectrum"]
                for n in NOISE]
    values = [next(m["value"] for m in e["metrics"]
                   if m["name"] == "rankme" and m["labels"] == {"layer": "rank4"})
              for e in expected]
    main_line = next(line for line in ax.lines if line.get_marker() == "o")
    np.testing.assert_allclose(main_line.get_xdata(), [float(n) for n in NOISE])
    np.testing.assert_allclose(main_line.get_ydata(), values)
    assert values[0] < values[-1]  # noise fills the planted rank-4 subspace's complement
    assert ax.get_xscale() == "log"


def test_whole_probe_figure_as_a_panel_in_two_rows(runs, tmp_path):
    spec = runs / "two_rows.toml"
    spec.write_text('[figure]\nwidth = "column"\ncols = 1\nletters = false\n'
                    '[[panels]]\nresults = "runs/noise-0.2"\nprobe = "spectrum"\n'
                    '[[panels]]\nkind = "trend"\nresults = ["runs/noise-0.001", "runs/noise-0.2"]'
                    '\nx = ["low", "high"]\nprobe = "spectrum"\nmetric = "rankme"\n'
                    'labels = { layer = "rank16" }\n')
    fig = compose(load_spec(spec))
    assert [len(s.axes) for s in fig.subfigs] == [3, 1]  # the probe's own three axes, a trend
    trend = fig.subfigs[1].axes[0]
    assert [t.get_text() for t in trend.get_xticklabels()] == ["low", "high"]  # categories
    assert fig.get_size_inches()[0] == pytest.approx(3.5)
    assert fig.subfigs[0].get_suptitle() == ""


@pytest.mark.parametrize("body, message", [
    ('[figure]\nwidth = "poster"\n[[panels]]\nresults = "r"\nprobe = "p"\n',
     "width 'poster' is not one of ['column', 'page']"),
    ('[[panels]]\nresults = "r"\nprobe = "p"\ncolour = 1\n',
     "[[panels]] #1: unknown key(s) ['colour']"),
    ('[[panels]]\nkind = "trend"\nresults = ["r"]\nprobe = "p"\n', "#1: missing 'x'"),
    ('[[panels]]\nresults = "../../etc"\nprobe = "p"\n', "results '../../etc' leads outside"),
    ('[[panels]]\nresults = ["a", "b"]\nprobe = "p"\n', "draws one results file, got 2"),
    ("[figure\n", "not a readable TOML figure spec"),
])
def test_bad_spec_is_one_line_naming_file_and_key(tmp_path, capsys, body, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(body)
    assert main(["figure", str(spec), "-o", str(tmp_path / "f.pdf")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(spec) in err[0] and message in err[0], err
    assert not (tmp_path / "f.pdf").exists()


def test_missing_probe_id_and_axes_out_of_range(runs):
    spec = runs / "wrong.toml"
    spec.write_text('[[panels]]\nresults = "runs/noise-0.2"\nprobe = "nope"\n')
    with pytest.raises(GeoprobeError, match=r"no probe id 'nope' .* ids are \['spectrum'\]"):
        compose(load_spec(spec))
    spec.write_text('[[panels]]\nresults = "runs/noise-0.2"\nprobe = "spectrum"\naxes = 5\n')
    with pytest.raises(GeoprobeError, match="axes 5 is out of range; .* has 3"):
        compose(load_spec(spec))


def test_polar_probe_polar_axes_as_a_panel(tmp_path):
    """The brief's first example panel: the polar plot from a syntax run, alone in a panel."""
    from matplotlib.figure import Figure

    from geoprobe import get_probe
    from geoprobe.compose import Panel, _draw_figure

    cls = get_probe("polar-probe")
    ex = cls.example_input(np.random.default_rng(0))
    result = cls(**ex.params).run(ex.embeddings, annotations=ex.annotations, seed=0)
    doc = {"probes": {"polar": result.to_dict()}}
    whole = Figure().subfigures(1, 1)
    _draw_figure(Panel("figure", [tmp_path], "polar", "spec"), doc, whole)
    index = [ax.name for ax in whole.axes].index("polar")
    sub = Figure().subfigures(1, 1)
    _draw_figure(Panel("figure", [tmp_path], "polar", "spec", axes=index), doc, sub)
    assert [ax.name for ax in sub.axes] == ["polar"] and not sub.legends
