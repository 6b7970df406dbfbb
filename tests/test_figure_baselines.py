"""Figures keep their intervals and baselines with one layer, show R2 near 1 apart, and place
legends inside the figure and off the data (issue 18, item 3)."""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import ErrorbarContainer
from matplotlib.mathtext import MathTextParser

import geoprobe
from geoprobe.datasets.synthetic import planted_spectrum
from geoprobe.plotting import interval, new_figure, reference, save_figure
from geoprobe.probes.decodability import LinearDecodability
from geoprobe.probes.worldmodel import LatentPlanning, OracleWorldModel, VoESurprise
from geoprobe.registry import get_probe


def _renderer(fig):
    return FigureCanvasAgg(fig).get_renderer()


def _legends(fig):
    return list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]


def _assert_legends_clear(fig):
    """Every legend lies inside the figure and covers no data point of any curve."""
    FigureCanvasAgg(fig).draw()
    renderer = _renderer(fig)
    legends = _legends(fig)
    assert legends
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert box.x0 >= fig.bbox.x0 - 1 and box.x1 <= fig.bbox.x1 + 1
        assert box.y0 >= fig.bbox.y0 - 1 and box.y1 <= fig.bbox.y1 + 1
        for ax in fig.axes:
            for line in ax.get_lines():
                # the line's own transform: axhline's x is in axes coordinates, not data
                ends = line.get_transform().transform(
                    np.column_stack(line.get_data()).astype(float))
                # points along each segment too, not just its ends
                t = np.linspace(0, 1, 50)[:, None, None]
                pts = (ends[:-1] + t * (ends[1:] - ends[:-1])).reshape(-1, 2) \
                    if len(ends) > 1 else ends
                inside = ((pts[:, 0] > box.x0) & (pts[:, 0] < box.x1)
                          & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1))
                assert not inside.any(), f"legend covers {line.get_label()!r}"


def test_interval_and_reference_fall_back_to_error_bars_and_markers_at_one_position():
    fig, axes = new_figure(2)
    one, many = axes[0]
    assert isinstance(interval(one, [0], [1.0], [3.0], color="k"), ErrorbarContainer)
    (mark,) = reference(one, [0], [2.0])
    assert mark.get_marker() == "_" and mark.get_linestyle() == "None"
    # over several positions: a shaded band and a line, as before
    assert not isinstance(interval(many, [0, 1], [1.0, 1.0], [3.0, 3.0], color="k"),
                          ErrorbarContainer)
    (line,) = reference(many, [0, 1], [2.0, 2.0])
    assert line.get_linestyle() == ":"
    # the error bar spans the interval: from 1 to 3 around the midpoint 2
    bar = one.containers[0]
    (segs,) = bar.lines[2]
    assert np.allclose(segs.get_segments()[0][:, 1], [1.0, 3.0])


def _one_layer_decodability():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((1, 240, 5))
    z = X[0, :, 0] + 0.05 * rng.standard_normal(240)
    emb = geoprobe.EmbeddingSet(X.astype(np.float32), {"z": z}, source="test-set")
    # the MLP too: four legend entries, more than a single-column figure holds in one row
    return LinearDecodability(targets=["z"], mlp_max_epochs=5, n_boot=50).run(
        emb, seed=0, progress=False)


def test_single_layer_decodability_shows_ci_baselines_and_error_on_log_axis(tmp_path,
                                                                             check_saved_figure):
    res = _one_layer_decodability()
    fig = res.plot()
    check_saved_figure(fig, save_figure(fig, tmp_path / "dec"))
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    # the shuffled-targets interval and the CIs of the linear and MLP probes
    assert {c.get_label() for c in bars} >= {"shuffled targets (95% CI)"}
    assert len(bars) == 3
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert lines["mean predictor"].get_marker() == "_"
    # the axis shows 1 - R2 of the linear probe, which is near 1e-3 here, not R2 itself
    r2 = res.metric("r2", layer=res.info["layers"][0], target="z").value
    assert np.allclose(lines["linear probe"].get_ydata(), 1 - r2)
    _assert_legends_clear(fig)


def test_single_layer_spectrum_shows_its_gaussian_reference_and_baselines():
    emb = planted_spectrum(n_items=300, dim=8, ranks=(3,), seed=1)
    fig = geoprobe.make_probe("covariance-spectrum", n_boot=20).run(emb, seed=0).plot()
    ax_rank = fig.axes[1]
    bars = [c.get_label() for c in ax_rank.containers if isinstance(c, ErrorbarContainer)]
    assert "isotropic Gaussian" in bars and "RankMe (95% CI)" in bars
    assert ax_rank.get_xlim() == (-0.6, 0.6)


def _dummy_set():
    return geoprobe.EmbeddingSet(np.zeros((4, 2), np.float32),
                                 {"episode": np.zeros(4, int), "t": np.arange(4)})


def test_voe_label_uses_a_mathtext_superscript():
    res = VoESurprise(n_episodes=8, steps=6, event_t=3, n_boot=50).run(
        _dummy_set(), model=OracleWorldModel(), seed=0, progress=False)
    label = res.plot().axes[0].get_ylabel()
    # one $...$ span holding the superscript, which mathtext parses (a plain "^2" would not be
    # raised)
    assert label.count("$") == 2 and "^2" in label.split("$")[1]
    MathTextParser("path").parse(f"${label.split('$')[1]}$")


def test_planning_legend_does_not_cover_the_curves():
    res = LatentPlanning(n_pairs=4, goal_steps=3, budget=4, n_samples=8, n_elites=2,
                         n_iters=1, n_boot=50).run(_dummy_set(), model=OracleWorldModel(),
                                                   seed=0, progress=False)
    _assert_legends_clear(res.plot())


@pytest.mark.parametrize("name", ["ease", "gram-eigen-taxonomy", "hierarchical-orthogonality",
                                  "gaussianity"])
def test_legends_of_probe_figures_stay_off_their_curves(name):
    # each had a legend inside an axes that covered curves (EASE's baselines, g(k) curves,
    # the spike of cosines near 0, SIGReg and effective-dimension curves)
    cls = get_probe(name)
    ex = cls.example_input(np.random.default_rng(0))
    res = cls(**ex.params).run(ex.embeddings, seed=0, progress=False)
    _assert_legends_clear(res.plot())
