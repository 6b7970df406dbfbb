"""examples/jepa_lambda_study.py over seeds: seed parsing, the across-seed summary and
resuming, on planted rows (no training: the per-model step is replaced by a fake)."""

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "jepa_lambda_study.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("jepa_lambda_study", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_row(study, lam, seed):
    """A row with every key the study reads: values made from (lam, seed), intervals
    around them, so summaries can be checked against the plant."""
    v = 0.5 + 0.1 * seed - 0.01 * lam
    row = {"lam": lam, "seed": seed, "dim": 32, "rankme_gaussian": 31.9,
           "voe_teleport_p": 1e-9, "voe_colour_p": 0.5, "seconds": {"probes": 0.0}}
    for key in {**study.LAMBDA_METRICS, **study.FRACTURE_METRICS}:
        row[key] = [v, v - 0.05, v + 0.05]
    row["collapsed"] = lam == 0 and seed < 2
    row["gaussianity_sigreg"] = 10.0 + seed
    return row


def test_parse_seeds_lists_ranges_and_mixes(study):
    assert study.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert study.parse_seeds("3,1") == [3, 1]
    assert study.parse_seeds("0-2, 7") == [0, 1, 2, 7]
    for bad, why in (("a", "not a seed"), ("4-2", "empty range"), ("1,0-2", "repeated"),
                     ("-1", "not a seed")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            study.parse_seeds(bad)


def test_summary_gives_the_seeds_mean_and_t_interval(study):
    rows = [fake_row(study, lam, s) for lam in (0.0, 0.1) for s in range(5)]
    rows[3]["transfer_ratio"] = ["nan", "nan", "nan"]  # undefined for one seed (lam 0, seed 3)
    summary = study.summarise(rows, {**study.LAMBDA_METRICS, **study.FRACTURE_METRICS})
    assert list(summary) == ["0", "0.1"]
    cell = summary["0.1"]["r_x"]
    values = 0.5 + 0.1 * np.arange(5) - 0.001
    assert cell["seeds"] == [0, 1, 2, 3, 4]
    assert cell["values"] == pytest.approx(values)
    assert cell["mean"] == pytest.approx(values.mean())
    # t_{0.975, 4} = 2.7764 times the standard error of the five planted values
    half = 2.7764 * values.std(ddof=1) / np.sqrt(5)
    assert (cell["low"], cell["high"]) == pytest.approx(
        (values.mean() - half, values.mean() + half), abs=1e-4)
    # the per-seed bootstrap bounds, averaged, sit 0.05 either side of the mean
    assert (cell["ci_low_mean"], cell["ci_high_mean"]) == pytest.approx(
        (values.mean() - 0.05, values.mean() + 0.05))
    # a seed whose metric is undefined is left out of the mean and the interval
    ratio = summary["0"]["transfer_ratio"]
    assert ratio["n"] == 4 and ratio["mean"] == pytest.approx(np.mean([0.5, 0.6, 0.7, 0.9]))
    # the collapse flag becomes the fraction and count of seeds flagged, with no interval
    assert summary["0"]["collapsed"]["mean"] == pytest.approx(0.4)
    assert summary["0"]["collapsed"]["flagged"] == 2 and summary["0"]["collapsed"]["low"] is None
    assert summary["0.1"]["collapsed"]["mean"] == 0.0
    assert "| 2/5 seeds |" in study.summary_table(summary, {"collapsed": "flag"})
    assert summary["0"]["gaussianity_sigreg"]["mean"] == pytest.approx(12.0)
    assert "ci_low_mean" not in summary["0"]["gaussianity_sigreg"]  # no per-seed interval


def test_one_seed_gets_no_interval_and_says_why(study):
    summary = study.summarise([fake_row(study, 0.1, 3)], study.LAMBDA_METRICS)
    cell = summary["0.1"]["rankme"]
    assert cell["mean"] == pytest.approx(0.799) and cell["low"] is None is cell["high"]
    assert "at least 2 seeds" in cell["note"]
    assert study.summary_table(summary, {"rankme": "RankMe"}).splitlines()[-1] == (
        "| 0.1 | 1 | 0.8 (n = 1) |")


def test_study_resumes_and_refuses_another_configuration(study, tmp_path, monkeypatch,
                                                          check_saved_figure):
    calls = []

    def run_model(lam, seed, steps, workdir):
        calls.append((lam, seed))
        return fake_row(study, lam, seed)

    monkeypatch.setattr(study, "run_model", run_model)
    # drawing is checked once, at the end: each call only records what it would draw
    write_outputs, written = study.write_outputs, []
    monkeypatch.setattr(study, "write_outputs", lambda out, doc: written.append(out))
    out = tmp_path / "out"
    base = ["--workdir", str(tmp_path / "work"), "--out", str(out), "--steps", "7"]
    study.main(base + ["--lams", "0", "0.1", "--seeds", "0,1"])
    assert calls == [(0.0, 0), (0.1, 0), (0.0, 1), (0.1, 1)]  # seed-major order
    # a second run with more seeds and lambdas trains only the pairs it does not have
    doc = study.main(base + ["--lams", "0", "0.1", "10", "--seeds", "0-2"])
    assert calls[4:] == [(10.0, 0), (10.0, 1), (0.0, 2), (0.1, 2), (10.0, 2)]
    saved = json.loads((out / "summary.json").read_text())
    assert len(saved["rows"]) == 9 and saved["config"]["steps"] == 7
    assert saved["summary"]["lambda"]["10"]["r_x"]["seeds"] == [0, 1, 2]
    assert saved["environment"]["versions"]["numpy"] == np.__version__
    assert doc["summary"] == saved["summary"]
    # rows made at another number of steps are not mixed in
    with pytest.raises(SystemExit, match="summary.json: field 'config'"):
        study.main(base[:-1] + ["8", "--lams", "0"])
    assert len(calls) == 9
    # a part of the study run by another process (into another --out) is merged in
    other = tmp_path / "other"
    study.main(["--workdir", str(tmp_path / "work"), "--out", str(other), "--steps", "7",
                "--lams", "10", "0", "--seeds", "3"])
    merged = study.main(["--workdir", "unused", "--out", str(out), "--replot", "--merge",
                         str(other)])
    assert sorted((r["lam"], r["seed"]) for r in merged["rows"])[-2:] == [(10.0, 2), (10.0, 3)]
    assert len(merged["rows"]) == 11 and merged["summary"]["lambda"]["10"]["r_x"]["n"] == 4
    assert merged["merged"][0]["folder"] == str(other)
    with pytest.raises(SystemExit, match="does not exist"):
        study.main(["--workdir", "w", "--out", str(out), "--replot", "--merge", str(tmp_path)])
    assert written == [out, out, other, out]
    write_outputs(out, merged)
    assert "| 10 | 4 |" in (out / "summary.md").read_text()
    with study.style():
        fig = study.figure(merged["summary"]["lambda"], merged["rows"], 5)
    assert len(fig.axes) == 6
    check_saved_figure(fig, [out / "lambda_study.pdf", out / "lambda_study.png"])
    assert (out / "fracture_seeds.png").exists()
