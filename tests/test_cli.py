"""The command line as a user meets it: run, check, report, list, probe, and bad input."""

import json

import numpy as np
import pytest

from geoprobe.cli import main
from geoprobe.probe import ProbeResult

SMALL = ["--set", "sources.planted.params.n_items=600", "--set",
         "probes.spectrum.params.n_boot=30", "--no-progress"]


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_default_suite_writes_results_and_figures(tmp_path, capsys, check_saved_figure):
    code, out, _ = run_cli(["run", "planted", "-o", tmp_path / "r", *SMALL], capsys)
    assert code == 0 and "results.json" in out
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    assert doc["suite"]["name"] == "planted" and doc["seed"] == 0
    assert doc["environment"]["versions"]["numpy"] == np.__version__
    assert "git_hash" in doc["environment"] and doc["timings"]["total_seconds"] > 0
    assert doc["suite"]["config"]["sources"]["planted"]["params"]["n_items"] == 600
    metrics = doc["probes"]["spectrum"]["metrics"]
    rank1 = [m for m in metrics if m["name"] == "rankme" and m["labels"] == {"layer": "rank1"}]
    # layer rank1 is planted on one direction plus noise of sd 1e-3: RankMe (>= 1 by its
    # definition, exp of an entropy) is ~1, so an interval reaching 2 is not measuring it
    assert 1 <= rank1[0]["ci_low"] <= rank1[0]["value"] <= rank1[0]["ci_high"] < 2
    # the figure written is the probe's figure of these results: same size, not blank
    fig = ProbeResult.from_dict(doc["probes"]["spectrum"]).plot()
    check_saved_figure(fig, [tmp_path / "r" / "figures" / f"spectrum.{ext}"
                             for ext in ("pdf", "png")])
    assert "| rankme |" in (tmp_path / "r" / "report.md").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # no temporary leftovers


def test_same_seed_same_numbers_other_seed_differs(tmp_path, capsys):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert run_cli(["run", "planted", "-o", tmp_path / name, "--seed", seed, *SMALL], capsys)[0] == 0
    load = lambda n: json.loads((tmp_path / n / "results.json").read_text())["probes"]
    assert load("a")["spectrum"]["metrics"] == load("b")["spectrum"]["metrics"]
    assert load("a")["spectrum"]["metrics"] != load("c")["spectrum"]["metrics"]


def test_check_passes_then_fails_on_threshold(tmp_path, capsys):
    code, out, _ = run_cli(["check", "planted", "-o", tmp_path / "ok", *SMALL], capsys)
    assert code == 0 and "3 passed, 0 failed" in out
    junit = (tmp_path / "ok" / "junit.xml").read_text()
    assert 'tests="3"' in junit and "<failure" not in junit
    # every layer collapsed to rank 1: the rank64 check must fail
    code, out, _ = run_cli(["check", "planted", "-o", tmp_path / "bad", *SMALL,
                            "--set", "sources.planted.params.ranks=[1, 16, 4, 1]", "--set",
                            "sources.planted.params.layer_names=['rank64','rank16','rank4','rank1']"],
                           capsys)
    assert code == 1 and "FAIL" in out
    junit = (tmp_path / "bad" / "junit.xml").read_text()
    assert junit.count("<failure") == 1 and "rank64" in junit
    summary = (tmp_path / "bad" / "summary.md").read_text()
    assert "2 passed, 1 failed" in summary and "| FAIL |" in summary


COLLAPSED = ["--set", "sources.planted.params.ranks=[1, 16, 4, 1]", "--set",
             "sources.planted.params.layer_names=['rank64','rank16','rank4','rank1']"]


def test_run_reports_failed_checks_at_the_top_of_the_report(tmp_path, capsys):
    # every layer collapsed to rank 1: run still exits 0, but says which check failed
    code, out, err = run_cli(["run", "planted", "-o", tmp_path / "bad", *SMALL, *COLLAPSED],
                             capsys)
    assert code == 0 and "1 of 3 checks failed: spectrum-rankme-rank64" in err
    doc = json.loads((tmp_path / "bad" / "results.json").read_text())
    assert [c["id"] for c in doc["checks"] if not c["passed"]] == ["spectrum-rankme-rank64"]
    assert not (tmp_path / "bad" / "junit.xml").exists()  # check's files stay check's
    report = (tmp_path / "bad" / "report.md").read_text()
    head = report.split("## Checks")[0]
    assert "## CHECKS FAILED: 1 of 3" in head and "| spectrum-rankme-rank64 |" in head
    assert "spectrum.rankme[layer=rank64] >= 60" in head
    assert head.index("CHECKS FAILED") < report.index("## spectrum")
    code, _, _ = run_cli(["run", "planted", "-o", tmp_path / "bad2", *SMALL, *COLLAPSED,
                          "--fail-on-checks"], capsys)
    assert code == 1
    # a clean run has no failure section
    code, _, err = run_cli(["run", "planted", "-o", tmp_path / "ok", *SMALL], capsys)
    assert code == 0 and "failed" not in err
    assert "CHECKS FAILED" not in (tmp_path / "ok" / "report.md").read_text()


def test_check_against_previous_results(tmp_path, capsys):
    suite = tmp_path / "s.toml"
    suite.write_text("""
[sources.main]
generate = "planted-spectrum"
params = { n_items = 600, dim = 16, ranks = [8] }
[[probes]]
probe = "covariance-spectrum"
params = { n_boot = 30 }
[[checks]]
probe = "covariance-spectrum"
metric = "rankme"
layer = "rank8"
against = "previous"
max_drop = 0.05
ci_overlap = true
""")
    assert run_cli(["run", suite, "-o", tmp_path / "prev", "--no-progress"], capsys)[0] == 0
    # run cannot compare with results it was not given: it says so instead of failing
    assert "Not evaluated" in (tmp_path / "prev" / "report.md").read_text()
    code, out, _ = run_cli(["check", suite, "-o", tmp_path / "same", "--no-progress",
                            "--against", tmp_path / "prev"], capsys)
    assert code == 0, out
    code, out, _ = run_cli(["check", suite, "-o", tmp_path / "worse", "--no-progress",
                            "--against", tmp_path / "prev",
                            "--set", "sources.main.params.ranks=[4]",
                            "--set", "sources.main.params.layer_names=['rank8']"], capsys)
    assert code == 1 and "dropped" in out and "does not overlap" in out


def test_report_redraws_from_results_alone(tmp_path, capsys, check_saved_figure):
    assert run_cli(["run", "planted", "-o", tmp_path / "r", *SMALL], capsys)[0] == 0
    for f in (tmp_path / "r" / "figures").iterdir():
        f.unlink()
    code, out, _ = run_cli(["report", tmp_path / "r", "--formats", "svg,png"], capsys)
    assert code == 0
    assert (tmp_path / "r" / "figures" / "spectrum.svg").read_text().lstrip().startswith("<?xml")
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    check_saved_figure(ProbeResult.from_dict(doc["probes"]["spectrum"]).plot(),
                       [tmp_path / "r" / "figures" / "spectrum.png"])


def test_list_shows_probes_with_needs_and_suites(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    assert "covariance-spectrum" in out and "needs: vectors only" in out
    assert "planted" in out and "planted-spectrum" in out


def test_probe_subcommand_on_npy_and_csv(tmp_path, capsys):
    X = np.random.default_rng(0).standard_normal((300, 10))
    np.save(tmp_path / "emb.npy", X)
    (tmp_path / "items.csv").write_text("sentence\n" + "".join(f"{i // 10}\n" for i in range(300)))
    code, out, _ = run_cli(["probe", "covariance-spectrum", tmp_path / "emb.npy", "--items",
                            tmp_path / "items.csv", "--param", "group=sentence",
                            "--param", "n_boot=20", "-o", tmp_path / "o", "--no-progress"],
                           capsys)
    assert code == 0 and "rankme" in out and "30 sentence" in out


def test_override_of_source_path_checks_a_new_checkpoint(tmp_path, capsys):
    np.save(tmp_path / "ckpt.npy", np.random.default_rng(1).standard_normal((400, 8)))
    code, out, _ = run_cli(["run", "planted", "-o", tmp_path / "o", "--embeddings",
                            tmp_path / "ckpt.npy", "--set", "probes.spectrum.params.group=''",
                            "--no-progress"], capsys)
    assert code == 0
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["sources"]["planted"]["n_items"] == 400


@pytest.mark.parametrize("setup,args,message", [
    (None, ["--set", "probes.spectrum.probe=no-such-probe"], "unknown probe 'no-such-probe'"),
    (None, ["--embeddings", "{tmp}/missing.npy"], "missing.npy: file not found"),
    ("nan", ["--embeddings", "{tmp}/nan.npy"], "row 7 (item '7') has NaN in column 1"),
    ("toml", [], "malformed TOML"),
    (None, ["--set", "probes.spectrum.params.group=nope"], "no item column 'nope'"),
    (None, ["--set", "probes.spectrum.params.bogus=1"], "has no parameter(s) ['bogus']"),
])
def test_bad_input_one_line_exit_2_no_results(tmp_path, capsys, setup, args, message):
    suite = "planted"
    if setup == "nan":
        X = np.ones((20, 3))
        X[7, 1] = np.nan
        np.save(tmp_path / "nan.npy", X)
    if setup == "toml":
        suite = tmp_path / "bad.toml"
        suite.write_text("[suite\nname = 1\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, out, err = run_cli(["run", suite, "-o", tmp_path / "out", "--no-progress", *args],
                             capsys)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_failed_run_keeps_previous_results(tmp_path, capsys):
    assert run_cli(["run", "planted", "-o", tmp_path / "r", *SMALL], capsys)[0] == 0
    before = (tmp_path / "r" / "results.json").read_text()
    code, _, _ = run_cli(["run", "planted", "-o", tmp_path / "r", *SMALL, "--set",
                          "probes.spectrum.params.group=nope"], capsys)
    assert code == 2 and (tmp_path / "r" / "results.json").read_text() == before


def test_no_argument_run_is_the_jepa_main_job(tmp_path, capsys):
    """`geoprobe run` alone runs the README's main job; here with a tiny world and training."""
    tiny = [f"--set=sources.tworoom.params.{k}" for k in
            ("n_episodes=40", "steps=16", "train_steps=20", "size=32")]
    code, out, _ = run_cli(["run", "-o", tmp_path / "r", "--no-progress", *tiny], capsys)
    assert code == 0 and out.startswith("jepa-tworoom:")
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    assert set(doc["probes"]) == {"decodability", "spectrum", "straightness", "voe", "planning"}
    assert doc["sources"]["tworoom"]["provenance"]["checkpoint"]
    for pid in doc["probes"]:
        assert (tmp_path / "r" / "figures" / f"{pid}.png").exists()
