"""Faults: kill -9 mid-run, two writers of one output, concurrent replace_dir, check ids
addressable from the command line, and files with the modes the umask gives.

Runs that must stay alive while the test acts on them read their item table from a named
pipe: they block there, holding their lock and temporary directories, until the test writes
the table (or kills them), so no timing guess decides the outcome.
"""

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import re
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from geoprobe.checks import evaluate_checks
from geoprobe.cli import main
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import SuiteError
from geoprobe.locks import hold, lock_path
from geoprobe.probe import Metric, ProbeResult
from geoprobe.provenance import umask
from geoprobe.suite import build_suite

TINY = textwrap.dedent("""\
    [suite]
    name = "tiny"

    [sources.planted]
    generate = "planted-spectrum"
    params = { n_items = 300, dim = 12, ranks = [12, 2], episode_length = 10 }

    [[probes]]
    id = "spectrum"
    probe = "covariance-spectrum"
    params = { group = "episode", n_boot = 10 }

    [[checks]]
    probe = "spectrum"
    metric = "rankme"
    layer = "rank2"
    op = "<="
    value = 3
    """)
FAST = ["--no-progress", "--formats", "png"]
N_GATED = 50


@pytest.fixture
def files(tmp_path):
    """A tiny suite, and a 'gated' suite whose item table is a named pipe."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "emb.npy", rng.standard_normal((N_GATED, 6)).astype(np.float32))
    os.mkfifo(tmp_path / "gate.csv")
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "gated.toml").write_text(textwrap.dedent(f"""\
        [suite]
        name = "gated"
        [sources.main]
        path = "{tmp_path / 'emb.npy'}"
        items = "{tmp_path / 'gate.csv'}"
        [[probes]]
        probe = "covariance-spectrum"
        params = {{ n_boot = 10 }}
        """))
    return tmp_path


def open_gate(tmp_path: Path) -> None:
    """Let a gated run go on: write its item table into the pipe it is blocked on."""
    with open(tmp_path / "gate.csv", "w") as fh:
        fh.write("label\n" + "".join(f"{i % 3}\n" for i in range(N_GATED)))


@pytest.fixture
def start():
    """Start ``python -m geoprobe ARGS`` with its own cache; whatever is left is killed."""
    started = []

    def _start(args, cache: Path, stderr=subprocess.PIPE) -> subprocess.Popen:
        env = {**os.environ, "GEOPROBE_CACHE": str(cache)}
        proc = subprocess.Popen([sys.executable, "-m", "geoprobe", *map(str, args), *FAST],
                                env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def wait_for(condition, proc=None, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited early ({proc.returncode}): "
                                 f"{proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def temps(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.tmp-*"))


def lock_is_free(out: Path) -> bool:
    """No process holds out's lock (a lock file left by a killed holder is free)."""
    if not lock_path(out).exists():
        return True
    with hold(out):
        return True


def valid_results(out: Path) -> dict:
    doc = json.loads((out / "results.json").read_text())
    assert doc["probes"] and doc["timings"]["total_seconds"] >= 0
    return doc


# -- kill -9 ----------------------------------------------------------------------------------
def test_kill_9_leftovers_are_removed_by_the_next_run(files, start):
    out, cache = files / "out", files / "cache"
    victim = start(["run", files / "gated.toml", "-o", out], cache)
    work = lambda: list((cache / "work").glob(f"run-{victim.pid}-*"))
    wait_for(lambda: temps(out) and [p for p in work() if p.is_dir()], victim)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert temps(out) and lock_path(out).exists() and work()  # what kill -9 leaves

    survivor = start(["run", files / "tiny.toml", "-o", out], cache)
    stdout, stderr = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, stderr
    assert valid_results(out)["suite"]["name"] == "tiny"
    assert temps(out) == [] and not list(files.glob(".out.old-*"))
    assert not lock_path(out).exists() and lock_is_free(out)
    assert work() == [] and list((cache / "work").iterdir()) == []


# -- two writers --------------------------------------------------------------------------------
def test_second_run_into_the_same_folder_stops_naming_the_lock(files, start, capsys):
    out = files / "out"
    first = start(["run", files / "gated.toml", "-o", out], files / "cache")
    wait_for(lambda: temps(out), first)

    code = main(["run", str(files / "tiny.toml"), "-o", str(out), *FAST])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("geoprobe: error: ")
    assert f"pid {first.pid}" in err and str(lock_path(out)) in err and "--wait" in err
    assert temps(out)  # the first run's work is untouched

    open_gate(files)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert valid_results(out)["suite"]["name"] == "gated"
    assert sorted(p.name for p in files.iterdir()) == ["cache", "emb.npy", "gate.csv",
                                                       "gated.toml", "out", "tiny.toml"]


def test_with_wait_the_second_run_runs_after_the_first(files, start):
    out, cache = files / "out", files / "cache"
    first = start(["run", files / "gated.toml", "-o", out], cache)
    wait_for(lambda: temps(out), first)
    log = files / "second.err"
    with open(log, "w") as err:
        second = start(["run", files / "tiny.toml", "-o", out, "--wait"], cache, stderr=err)
        wait_for(lambda: "waiting for" in log.read_text(), second)
        assert f"pid {first.pid}" in log.read_text()
        open_gate(files)
        assert first.wait(timeout=120) == 0, first.communicate()
        assert second.wait(timeout=120) == 0, log.read_text()
    assert valid_results(out)["suite"]["name"] == "tiny"
    assert temps(out) == [] and not lock_path(out).exists()


def test_wait_with_a_timeout_gives_up(files, start, capsys):
    out = files / "out"
    first = start(["run", files / "gated.toml", "-o", out], files / "cache")
    wait_for(lambda: temps(out), first)
    code = main(["run", str(files / "tiny.toml"), "-o", str(out), "--wait", "0.3", *FAST])
    err = capsys.readouterr().err
    assert code == 2 and "after waiting 0.3 s" in err.splitlines()[-1]


REPLACER = textwrap.dedent("""\
    import sys, tempfile, time
    from pathlib import Path
    from geoprobe.embeddings import replace_dir

    dst, n = Path(sys.argv[1]), int(sys.argv[2])
    while not (dst.parent / "go").exists():
        time.sleep(0.001)
    for i in range(n):
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
        (tmp / "data").write_text(f"{sys.argv[3]} {i}")
        replace_dir(tmp, dst)
    """)


def test_replace_dir_survives_a_concurrent_replacer(tmp_path):
    script = tmp_path / "replacer.py"
    script.write_text(REPLACER)
    dst = tmp_path / "dst"
    procs = [subprocess.Popen([sys.executable, str(script), str(dst), "200", name],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    time.sleep(0.5)  # both interpreters up before the start
    (tmp_path / "go").touch()
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0 and stderr == "", stderr
    assert (dst / "data").read_text() in ("a 199", "b 199")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "go", "replacer.py"]


# -- check ids ----------------------------------------------------------------------------------
def tiny_raw(*checks) -> dict:
    return {"sources": {"p": {"generate": "planted-spectrum"}},
            "probes": [{"id": "spectrum", "probe": "covariance-spectrum"}],
            "checks": list(checks)}


def test_check_ids_default_explicit_and_overridden():
    raw = tiny_raw({"probe": "spectrum", "metric": "rankme", "layer": "rank1", "op": "<=",
                    "value": 2},
                   {"probe": "spectrum", "metric": "rankme", "labels": {"layer": "l.3"},
                    "op": ">=", "value": 1},
                   {"id": "floor", "probe": "spectrum", "metric": "rankme", "layer": "rank64",
                    "op": ">=", "value": 60},
                   {"probe": "spectrum", "metric": "rankme", "layer": "rank1",
                    "against": "previous", "max_drop": 0.1})
    suite = build_suite(raw)
    assert [c.id for c in suite.checks] == ["spectrum-rankme-rank1", "spectrum-rankme-l_3",
                                            "floor", "spectrum-rankme-rank1-previous"]
    suite = build_suite(raw, overrides=["checks.floor.value=63",
                                        "checks.spectrum-rankme-rank1.op='<'"])
    assert suite.checks[2].value == 63 and suite.checks[2].name.endswith(">= 63")
    assert suite.checks[0].op == "<"
    assert suite.raw["checks"][2]["value"] == 63  # results.json records the threshold as run


@pytest.mark.parametrize("override, message", [
    ("checks.nope.value=1", "override names check 'nope'; the suite's checks are "
                            "['spectrum-rankme-rank1', 'floor']"),
    ("checks.floor=1", "override of a check needs an id and a key"),
])
def test_bad_check_override_names_the_ids(override, message):
    raw = tiny_raw({"probe": "spectrum", "metric": "rankme", "layer": "rank1", "op": "<=",
                    "value": 2},
                   {"id": "floor", "probe": "spectrum", "metric": "rankme", "op": ">=",
                    "value": 1})
    with pytest.raises(SuiteError, match=re.escape(message)):
        build_suite(raw, overrides=[override])


@pytest.mark.parametrize("second, message", [
    ({}, "duplicate check id 'spectrum-rankme-rank1' (also check #1); give each an 'id'"),
    ({"id": "a"}, "duplicate check id 'a'"),
    ({"id": "a.b"}, "'id' must be a non-empty string without '.'"),
])
def test_duplicate_or_bad_check_ids_are_suite_errors(second, message):
    first = {"id": "a"} if second.get("id") == "a" else {}
    check = {"probe": "spectrum", "metric": "rankme", "layer": "rank1", "op": "<=", "value": 2}
    with pytest.raises(SuiteError, match=re.escape("[[checks]] #2: " + message)):
        build_suite(tiny_raw({**check, **first}, {**check, **second}))


def test_missing_metric_is_a_failed_check_listing_what_the_probe_has():
    result = ProbeResult("covariance-spectrum", {}, [
        Metric("rankme", 3.0, labels={"layer": "0"}),
        Metric("participation_ratio", 2.0, labels={"layer": "0"}),
        Metric("rankme", 9.0, labels={"layer": "0", "baseline": "gaussian"})])
    doc = {"probes": {"spectrum": result.to_dict()}}
    suite = build_suite(tiny_raw({"probe": "spectrum", "metric": "rank_me", "layer": "0",
                                  "op": ">=", "value": 1}))
    [outcome] = evaluate_checks(suite.checks, doc)
    assert not outcome.passed and outcome.id == "spectrum-rank_me-0"
    assert outcome.message == ("metric not found: probe 'spectrum' (covariance-spectrum) "
                               "produces no metric 'rank_me'; its metrics are "
                               "participation_ratio, rankme")


def test_cli_tightens_a_check_by_id(files, capsys):
    args = ["check", str(files / "tiny.toml"), "-o", str(files / "out"), *FAST]
    assert main(args) == 0
    assert "[id spectrum-rankme-rank2]" in capsys.readouterr().out
    assert main(args + ["--set", "checks.spectrum-rankme-rank2.value=0.5"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  spectrum.rankme[layer=rank2] <= 0.5" in out
    doc = valid_results(files / "out")
    assert doc["checks"][0]["id"] == "spectrum-rankme-rank2" and not doc["checks"][0]["passed"]


# -- modes --------------------------------------------------------------------------------------
@contextlib.contextmanager
def umask_set(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_results_get_the_modes_the_umask_gives(files):
    out = files / "out"
    with umask_set(0o022):
        assert umask() == 0o022
        assert main(["check", str(files / "tiny.toml"), "-o", str(out), *FAST]) == 0
    assert mode(out) == 0o755 and mode(out / "figures") == 0o755
    for name in ("results.json", "report.md", "junit.xml", "summary.md", "figures/spectrum.png"):
        assert mode(out / name) == 0o644, name


@pytest.mark.parametrize("mask, dirs, files_", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_embedding_sets_get_the_modes_the_umask_gives(tmp_path, mask, dirs, files_):
    emb = EmbeddingSet(np.zeros((4, 3), np.float32))
    with umask_set(mask):
        assert umask() == mask
        path = emb.save(tmp_path / "e.gpemb")
    assert mode(path) == dirs and mode(path / "layers") == dirs
    assert mode(path / "manifest.json") == files_ and mode(path / "layers" / "000.npy") == files_


# -- other staged writers -------------------------------------------------------------------
def test_world_dataset_and_wordnet_copy_remove_what_a_killed_writer_left(tmp_path):
    """Both write through embeddings.staged_dir: a stale ``.NAME.tmp-*`` (its writer was
    killed) is removed by the next write, and a finished write leaves nothing beside it."""
    from geoprobe.datasets import wordnet
    from geoprobe.jepa.worlds import open_dataset, write_dataset

    data = tmp_path / "data"
    data.mkdir()
    (data / ".ball.tmp-abcd1234").mkdir()
    (data / ".ball.tmp-abcd1234" / "frames.npy").write_bytes(b"half")
    write_dataset(data / "ball", "ball", n_episodes=2, steps=3, size=16, seed=0)
    assert sorted(p.name for p in data.iterdir()) == ["ball"]
    assert open_dataset(data / "ball")["frames"].shape == (2, 3, 16, 16, 3)

    corpora = tmp_path / "nltk" / "corpora"
    corpora.mkdir(parents=True)
    (corpora / ".wordnet.tmp-zz99zz99").mkdir()
    wordnet.assemble_nltk_wordnet(wordnet.SYSTEM_DIRS[0], tmp_path / "nltk")
    assert sorted(p.name for p in corpora.iterdir()) == ["wordnet"]


def test_threads_of_one_process_take_turns_on_an_output(tmp_path):
    import threading

    target, inside, errors = tmp_path / "out", [], []

    def writer():
        try:
            with hold(target, wait=10):
                inside.append(1)
                assert len(inside) == 1  # nobody else in here
                time.sleep(0.05)
                with hold(target):  # re-entrant in the holding thread
                    pass
                inside.pop()
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not lock_path(target).exists()
