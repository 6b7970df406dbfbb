"""The examples a researcher copies must keep working."""

import json
import runpy
import sys
from pathlib import Path

import numpy as np

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


def test_syntax_layer_sweep_smoke_writes_table_figure_and_reuses_runs(tmp_path, monkeypatch,
                                                                       check_saved_figure):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sweep = runpy.run_path(str(EXAMPLES / "syntax_layer_sweep.py"))
    out, work = tmp_path / "out", tmp_path / "work"
    argv = ["--smoke", "--out", str(out), "--workdir", str(work)]
    summary, fig = sweep["main"](argv)
    table = (out / "syntax-layer-sweep.md").read_text(encoding="utf-8")
    for probe in ("structural-probe", "polar-probe"):
        rows = summary[probe]["rows"]
        assert f"## {probe}" in table
        # trained and twin rows for both smoke layers, each metric with one value per seed
        assert sorted(rows) == ["random-init|embeddings", "random-init|layer_3",
                                "trained|embeddings", "trained|layer_3"]
        uuas = {k: r["metrics"]["uuas"] for k, r in rows.items()}
        assert all(len(m["values"]) == 2 for m in uuas.values())
        # seeds train different maps, so the across-seed spread is not zero everywhere
        assert any(np.std(r["metrics"][m]["values"]) > 0 for r in rows.values()
                   for m in r["metrics"])
        # even a 3-epoch probe finds more tree in MiniLM's layer 3 than in its random twin
        assert np.mean(uuas["trained|layer_3"]["values"]) > np.mean(
            uuas["random-init|layer_3"]["values"])
    check_saved_figure(fig, [out / "syntax-layer-sweep.pdf", out / "syntax-layer-sweep.png"])
    # a second call with the same configuration reads the cached runs instead of training
    monkeypatch.setattr("geoprobe.registry.make_probe",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    sweep["main"](argv)
    assert (out / "syntax-layer-sweep.md").read_text(encoding="utf-8") == table


def test_jepa_similarity_smoke_compares_models_and_frames(tmp_path, check_saved_figure):
    study = runpy.run_path(str(EXAMPLES / "jepa_similarity.py"))
    out = tmp_path / "out"
    summary, fig = study["main"](["--smoke", "--workdir", str(tmp_path / "work"),
                                  "--out", str(out), "--n-frames", "2"])
    sim = {(r["pair"], r["metric"]): r for r in summary["similarity"]}
    pairs = {p for p, _ in sim}
    assert pairs == {"SIGReg vs lambda=0", "SIGReg vs its random init",
                     "lambda=0 vs its random init"}
    for pair in pairs:
        # the spaces share their items, so every pair is more alike than the permuted
        # correspondence: CKA above the permutation range, Procrustes distance below it
        cka, dist = sim[pair, "cka_linear"], sim[pair, "procrustes"]
        assert cka["ci"][0] > cka["permuted_range"][1]
        assert dist["ci"][1] < dist["permuted_range"][0]
    verdicts = {r["conclusion"]: r for r in summary["conclusions"]}
    assert all(list(r["holds"]) == ["original", "orthogonal", "diagonal", "linear"]
               for r in verdicts.values())
    # RankMe is a function of singular values: a rotation leaves both models' RankMe, so the
    # comparison's margin, unchanged, while a diagonal rescaling moves it
    rank = verdicts["RankMe: SIGReg > lambda=0"]["margin"]
    assert np.isclose(rank["orthogonal"], rank["original"], rtol=1e-6, atol=1e-9)
    assert not np.isclose(rank["diagonal"], rank["original"], rtol=1e-3)
    table = (out / "summary.md").read_text(encoding="utf-8")
    assert "## Similarity" in table and "## Frame survival" in table
    assert json.loads((out / "summary.json").read_text())["seed"] == 0
    check_saved_figure(fig, [out / "jepa_similarity.png"])


def _colour_rows():
    """Fake per-seed rows of the colour study: the fixed-colour model is surprised by the
    colour change (5-7x), the colour-varied one is not (about 1x); both by the teleport."""
    rows = []
    for mode, colour, teleport in (("fixed", [5.0, 6.0, 7.0], [60.0, 50.0, 70.0]),
                                   ("random-episode", [1.0, 1.1, 0.95], [40.0, 50.0, 45.0])):
        for seed, (c, t) in enumerate(zip(colour, teleport)):
            rows.append({"colours": mode, "seed": seed, "voe_colour_ratio": c,
                         "voe_colour_p": 1e-20 if c > 2 else 0.4 + 0.1 * seed,
                         "voe_colour_increase": [c - 1, c - 1.5, c - 0.5],
                         "voe_teleport_ratio": t, "voe_teleport_p": 0.0, "r_x": 0.9 + seed / 100,
                         "r_y": 0.95, "r_x_random_init": 0.5, "planning": 0.8})
    return rows


def test_colour_invariance_summary_verdict_and_figure(tmp_path, check_saved_figure):
    from geoprobe.plotting import save_figure, style

    study = runpy.run_path(str(EXAMPLES / "jepa_colour_invariance.py"))
    rows = _colour_rows()
    summary = study["write_outputs"](tmp_path, rows, {"seeds": [0, 1, 2]})
    assert list(summary) == ["fixed", "random-episode"]
    fixed, varied = summary["fixed"], summary["random-episode"]
    assert fixed["n_seeds"] == 3 and fixed["seeds"] == [0, 1, 2]
    # ratios: the geometric mean, the interval from log ratios (so it stays above 0)
    np.testing.assert_allclose(fixed["voe_colour_ratio"][0], (5 * 6 * 7) ** (1 / 3))
    assert 1 < fixed["voe_colour_ratio"][1] < fixed["voe_colour_ratio"][0]
    assert 0 < varied["voe_colour_ratio"][1] < 1 < varied["voe_colour_ratio"][2]
    np.testing.assert_allclose(fixed["r_x"][0], 0.91)  # the plain mean for decodability
    assert fixed["colour_not_significant"] == [] and varied["colour_not_significant"] == [0, 1, 2]
    verdict = study["verdict"](summary)
    assert "still surprising" in verdict[0] and "at the clean level" in verdict[1]
    text = (tmp_path / "summary.md").read_text()
    assert text.count("| fixed |") == 4 and "3 of 3 seeds" in text
    assert "(< 1e-300)" in text  # a p-value that underflowed to 0 is not printed as "0"
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["rows"] == rows and saved["environment"]["versions"]["numpy"]
    # two seeds far apart: the interval reaches 1, but both seeds' own tests are significant
    spread = [dict(rows[0], voe_colour_ratio=2.0), dict(rows[1], voe_colour_ratio=20.0)]
    assert "surprising in every seed" in study["verdict"](study["summarise"](spread))[0]
    # one seed: no interval, said so, and JSON still writes (no NaN)
    one = study["write_outputs"](tmp_path, rows[:1], {})
    assert one["fixed"]["voe_colour_ratio"][1] is None
    assert "not settled" in study["verdict"](one)[0]
    with style():
        fig = study["figure"](rows, summary)
        paths = save_figure(fig, tmp_path / "colour_invariance", ("png",))
    assert [a.get_yscale() for a in fig.axes] == ["log", "log", "linear"]
    check_saved_figure(fig, paths)


def _run_example(name, argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [name] + argv)
    study = runpy.run_path(str(EXAMPLES / name))
    assert study["main"](argv) == 0


def test_rankme_n_curve_writes_curve_table_results_and_figure(tmp_path, monkeypatch):
    _run_example("rankme_n_curve.py", ["planted", "--out", str(tmp_path), "--n-boot", "5",
                                       "--curve-draws", "2"], monkeypatch)
    doc = json.loads((tmp_path / "rankme_n_curve_planted.json").read_text(encoding="utf-8"))
    assert doc["config"]["seed"] == 0 and doc["environment"]["versions"]
    grid = doc["result"]["arrays"]["rankme_curve_n"]["data"]
    rows = (tmp_path / "rankme_n_curve_planted.md").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 2 + len(grid) and rows[-1].startswith(f"| {grid[-1]} |")
    assert (tmp_path / "rankme_n_curve_planted.png").stat().st_size > 0


def test_control_assignments_and_ease_substitutes_smoke(tmp_path, monkeypatch):
    _run_example("control_assignments.py", ["--out", str(tmp_path), "--seeds", "1",
                                            "--n-boot", "20"], monkeypatch)
    doc = json.loads((tmp_path / "control_assignments.json").read_text(encoding="utf-8"))
    (row,) = doc["rows"]
    five = row["n_control=5"]
    assert five["control_min"] <= five["control_accuracy"] <= five["control_max"]
    assert (tmp_path / "control_assignments.png").stat().st_size > 0
    _run_example("ease_substitutes.py", ["--out", str(tmp_path), "--strengths", "0", "1",
                                         "--seeds", "0", "--n-boot", "20", "--users", "900",
                                         "--items", "80"], monkeypatch)
    doc = json.loads((tmp_path / "ease_substitutes.json").read_text(encoding="utf-8"))
    none, full = doc["rows"]
    # no within-group pair is left at strength 1, and the substitutes' weights turn negative
    assert none["within_group_pairs_ratio"] == 1 and full["within_group_pairs_ratio"] == 0
    assert full["weights"]["within_mean"] < 0 < none["weights"]["within_mean"]
    assert (tmp_path / "ease_substitutes.png").stat().st_size > 0


def test_hierarchy_sample_complexity_smoke_writes_rows_table_and_figure(
        tmp_path, monkeypatch, check_saved_figure):
    from geoprobe.plotting import save_figure

    figures = []
    monkeypatch.setattr("geoprobe.plotting.save_figure",
                        lambda fig, *a, **k: figures.append(fig) or save_figure(fig, *a, **k))
    study = runpy.run_path(str(EXAMPLES / "hierarchy_sample_complexity.py"))
    result = study["main"](["--smoke", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["rows"]
    assert rows == json.loads(json.dumps(result["rows"]))
    assert len(rows) == 2 * 2 * 2  # learners x depths x n
    for r in rows:
        assert set(r["levels"]) == {str(lv) for lv in range(1, r["depth"])}
        assert r["recovery"] == min(v[0] for v in r["levels"].values())
    # n = 0 is the random-init encoder, the same for both learners (same seed, same encoder)
    init = {(r["learner"], r["depth"]): r["levels"] for r in rows if r["n_train"] == 0}
    assert init[("token", 3)] == init[("latent", 3)]
    assert "n* at L = 3" in (tmp_path / "results.md").read_text(encoding="utf-8")
    (fig,) = figures
    assert len(fig.axes) == 3  # n* against depth, then one recovery panel per depth
    check_saved_figure(fig, [tmp_path / "hierarchy_sample_complexity.pdf",
                             tmp_path / "hierarchy_sample_complexity.png"])


def test_regularization_redraw_draws_from_the_results_file_alone(tmp_path, monkeypatch,
                                                                 check_saved_figure):
    import geoprobe
    from geoprobe.plotting import save_figure
    from geoprobe.registry import get_probe

    cls = get_probe("ease")
    ex = cls.example_input(np.random.default_rng(0))
    result = cls(**ex.params).run(ex.embeddings, seed=0, progress=False)
    (tmp_path / "ease.json").write_text(json.dumps(result.to_dict()))
    figures = []
    monkeypatch.setattr("geoprobe.plotting.save_figure",
                        lambda fig, *a, **k: figures.append(fig) or save_figure(fig, *a, **k))
    # nothing may be computed: a probe run during --redraw fails the test
    monkeypatch.setattr(geoprobe.Probe, "run", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("--redraw ran a probe")))
    monkeypatch.setattr(sys, "argv", ["regularization.py", "--redraw", "ease",
                                      "--out", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "regularization.py"), run_name="__main__")
    (fig,) = figures
    check_saved_figure(fig, [tmp_path / "ease.png"])
    # the figure shows the stored result: its selected-lambda panel quotes a stored share
    titles = "".join(ax.get_title() for ax in fig.axes)
    assert any(f"{m.value:.0%} negative weights" in titles for m in result.metrics
               if m.name == "negative_share")
