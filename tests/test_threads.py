"""geoprobe.threads: one policy sets BLAS and torch threads, restores them, and reaches the CLI."""

import json

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from geoprobe import threads
from geoprobe.cli import build_parser, main
from geoprobe.errors import GeoprobeError


def blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


@pytest.fixture
def outside(monkeypatch):
    """Torch and BLAS at 2 threads before the test (not the policy's 1), restored after."""
    monkeypatch.delenv(threads.ENV, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    import scipy.linalg  # noqa: F401  (its BLAS is a separate library from numpy's)

    with threadpool_limits(limits=2, user_api="blas"):
        yield
    torch.set_num_threads(before)


def test_policy_sets_and_restores_torch_and_blas(outside):
    with threads.policy(1) as n:
        assert n == 1 and torch.get_num_threads() == 1 and blas_threads() == {1}
        assert threads.settings()["policy"] == 1
    assert torch.get_num_threads() == 2 and blas_threads() == {2}
    with pytest.raises(RuntimeError), threads.policy(3):
        assert torch.get_num_threads() == 3 and blas_threads() == {3}
        raise RuntimeError("an error in the block")
    assert torch.get_num_threads() == 2 and blas_threads() == {2}
    assert threads.settings()["policy"] is None


def test_inner_block_inherits_and_explicit_count_overrides(outside):
    with threads.policy(3):
        with threads.policy() as n:
            assert n == 3 and torch.get_num_threads() == 3
        with threads.policy(1):
            assert torch.get_num_threads() == 1 and blas_threads() == {1}
        assert torch.get_num_threads() == 3 and blas_threads() == {3}


def test_environment_variable_and_auto(outside, monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    with threads.policy():
        assert torch.get_num_threads() == 3 and blas_threads() == {3}
        assert threads.settings()[threads.ENV] == "3"
    with threads.policy(1):  # an explicit count beats the environment
        assert torch.get_num_threads() == 1
    monkeypatch.setenv(threads.ENV, "auto")
    with threads.policy():
        assert torch.get_num_threads() == threads.DEFAULT
    monkeypatch.delenv(threads.ENV)
    assert threads.resolve() == threads.DEFAULT


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5", "", 0, True])
def test_bad_value_is_one_line_error(outside, bad):
    with pytest.raises(GeoprobeError) as err, threads.policy(bad):
        pass
    assert "\n" not in str(err.value) and "positive integer or 'auto'" in str(err.value)
    assert torch.get_num_threads() == 2


def test_bad_environment_variable_is_named(outside, monkeypatch):
    monkeypatch.setenv(threads.ENV, "many")
    with pytest.raises(GeoprobeError, match=threads.ENV), threads.policy():
        pass


def test_cli_flag_reaches_the_policy_and_provenance(outside, tmp_path, capsys):
    path = tmp_path / "emb.npy"
    np.save(path, np.random.default_rng(0).standard_normal((60, 6)).astype(np.float32))
    out = tmp_path / "out"
    assert main(["probe", "covariance-spectrum", str(path), "--param", "n_boot=5",
                 "--threads", "3", "--no-progress", "-o", str(out)]) == 0
    recorded = json.loads((out / "results.json").read_text())["environment"]["threads"]
    assert recorded["policy"] == 3 and recorded["torch"] == 3
    assert set(recorded["blas"].values()) == {3}
    assert torch.get_num_threads() == 2  # restored when the command returns
    capsys.readouterr()
    assert main(["probe", "covariance-spectrum", str(path), "--threads", "x", "-o",
                 str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "thread count 'x'" in err


@pytest.mark.parametrize("command", [["run"], ["check", "s.toml"], ["probe", "p", "e.npy"],
                                     ["extract", "--out", "x"]])
def test_threaded_subcommands_take_the_flag(command):
    assert build_parser().parse_args([*command, "--threads", "2"]).threads == "2"


def test_mlp_decode_leaves_torch_threads_alone(outside):
    from geoprobe.decoding import group_folds, mlp_cv_predict

    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4))
    mlp_cv_predict(X, X[:, 0], group_folds(80, 2, rng=0), kind="continuous", rng=0,
                   hidden=8, max_epochs=2)
    assert torch.get_num_threads() == 2 and blas_threads() == {2}


def test_jepa_train_leaves_torch_threads_alone(outside, tmp_path):
    from geoprobe.jepa.model import JEPAConfig
    from geoprobe.jepa.train import train
    from geoprobe.jepa.worlds import write_dataset

    data = write_dataset(tmp_path / "d", "tworoom", n_episodes=4, steps=4, size=16, seed=0)
    cfg = JEPAConfig(data=str(data), dim=4, channels=(4, 4), hidden=8, batch=2, history=2,
                     n_directions=4, steps=2, warmup=1, val_episodes=1)
    train(cfg, tmp_path / "run", show_progress=False)
    assert torch.get_num_threads() == 2
    train(cfg, tmp_path / "run3", show_progress=False, threads=3)
    assert torch.get_num_threads() == 2 and blas_threads() == {2}
