"""The command line for scripts: --json on stdout and nothing else there, -q/-v through the
logging module, and shell completion."""

import json
import logging
import subprocess

import numpy as np
import pytest

from geoprobe.cli import main
from geoprobe.logs import cli_logging, level_for

SMALL = ["--set", "sources.planted.params.n_items=600", "--set",
         "probes.spectrum.params.n_boot=30", "--no-progress"]


def run_json(args, capsys):
    """Run the CLI with --json; the whole stdout must parse as one JSON document."""
    code = main([str(a) for a in args] + ["--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


@pytest.fixture
def npy(tmp_path):
    X = np.random.default_rng(0).standard_normal((300, 10))
    np.save(tmp_path / "emb.npy", X)
    (tmp_path / "items.csv").write_text("sentence\n" + "".join(f"{i // 10}\n" for i in range(300)))
    return tmp_path / "emb.npy", tmp_path / "items.csv"


def test_run_and_check_json_list_metrics_and_checks(tmp_path, capsys):
    code, doc, err = run_json(["run", "planted", "-o", tmp_path / "r", "-v", *SMALL], capsys)
    assert code == 0 and doc["exit_code"] == 0 and doc["suite"] == "planted"
    on_disk = json.loads((tmp_path / "r" / "results.json").read_text())
    assert doc["probes"]["spectrum"]["metrics"] == on_disk["probes"]["spectrum"]["metrics"]
    assert "geoprobe: probe spectrum" in err  # -v: messages on stderr, never stdout
    code, doc, _ = run_json(["check", "planted", "-o", tmp_path / "c", *SMALL,
                             "--set", "checks.spectrum-rankme-rank64.value=1e9"], capsys)
    assert code == 1 and doc["exit_code"] == 1 and doc["failed"] == 1
    assert [c["passed"] for c in doc["checks"]].count(False) == 1


def test_probe_and_info_json(npy, tmp_path, capsys):
    emb, items = npy
    code, doc, _ = run_json(["probe", "covariance-spectrum", emb, "--items", items, "--param",
                             "group=sentence", "--param", "n_boot=20", "-o", tmp_path / "o",
                             "--no-progress"], capsys)
    rankme = [m for m in doc["probes"]["covariance-spectrum"]["metrics"]
              if m["name"] == "rankme" and "baseline" not in m["labels"]]
    assert code == 0 and len(rankme) == 1 and rankme[0]["n"] == 30
    code, doc, _ = run_json(["info", emb, "--items", items], capsys)
    assert code == 0 and (doc["n_items"], doc["dim"], doc["n_layers"]) == (300, 10, 1)
    assert "sentence" in doc["columns"] and doc["warnings"] == []


def test_list_json_filters_like_the_text(capsys):
    code, doc, _ = run_json(["list"], capsys)
    probes = {p["name"]: p for p in doc["probes"]}
    assert code == 0 and probes["covariance-spectrum"]["needs"] == "vectors only"
    assert {"planted"} <= {s["name"] for s in doc["suites"]}
    code, doc, _ = run_json(["list", "--suites"], capsys)
    assert set(doc) == {"suites", "exit_code"}


def test_json_error_is_json_on_stdout_and_one_line_on_stderr(tmp_path, capsys):
    code, doc, err = run_json(["info", tmp_path / "missing.npy"], capsys)
    assert code == 2 and doc["exit_code"] == 2 and "missing.npy" in doc["error"]
    assert err.strip().startswith("geoprobe: error:") and len(err.strip().splitlines()) == 1


def test_json_keeps_stray_prints_off_stdout(tmp_path, capsys, monkeypatch):
    import geoprobe.cli

    real = geoprobe.cli.cmd_list

    def noisy(args):  # a plug-in or library that prints
        print("chatter")
        return real(args)
    monkeypatch.setattr(geoprobe.cli, "cmd_list", noisy)
    code, doc, err = run_json(["list", "--suites"], capsys)
    assert code == 0 and "chatter" in err


def test_quiet_hides_the_summary_and_warnings(tmp_path, capsys):
    flat = tmp_path / "flat.npy"
    np.save(flat, np.tile(np.arange(4.0), (30, 1)))
    args = ["probe", "covariance-spectrum", str(flat), "--param", "n_boot=5", "--no-progress"]
    assert main(args + ["-o", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert "rankme" in out and "geoprobe: warning:" in err
    assert main(args + ["-o", str(tmp_path / "b"), "-q"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "geoprobe: warning:" in err
    assert main(args + ["-o", str(tmp_path / "c"), "-qq"]) == 0
    assert capsys.readouterr() == ("", "")


def test_cli_logging_levels_and_restores_the_logger(capsys):
    logger = logging.getLogger("geoprobe")
    before = (logger.level, logger.propagate, list(logger.handlers))
    with cli_logging(0):
        logging.getLogger("geoprobe.runner").info("hidden")
        logging.getLogger("geoprobe.runner").warning("shown")
    assert capsys.readouterr().err == "geoprobe: warning: shown\n"
    assert (logger.level, logger.propagate, list(logger.handlers)) == before
    assert [level_for(v) for v in (-2, -1, 0, 1, 2)] == [
        logging.ERROR, logging.WARNING, logging.WARNING, logging.INFO, logging.DEBUG]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_knows_the_subcommands(shell, capsys, tmp_path):
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for word in ("run", "check", "probe", "completion", "--json", "--set"):
        assert word in script
    if shell == "zsh":
        assert script.startswith("#compdef")
        return
    (tmp_path / "geoprobe.bash").write_text(script)
    done = subprocess.run(["bash", "-c", f"source {tmp_path / 'geoprobe.bash'} && "
                           "complete -p geoprobe"], capture_output=True, text=True)
    assert done.returncode == 0 and "geoprobe" in done.stdout, done.stderr
