"""Circuits: tasks, weight-sparse training, and pruning that recovers a planted circuit."""

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from geoprobe.circuits.graph import (circuit_edges, neuron_degrees, spectral_modularity,
                                     zero_fraction)
from geoprobe.circuits.model import CircuitConfig
from geoprobe.circuits.planted import PLANTED_CIRCUIT, planted_model
from geoprobe.circuits.prune import CircuitPruner, circuit_losses, node_means
from geoprobe.circuits.tasks import CLOSERS, OPENERS, TOKEN, make_task
from geoprobe.circuits.train import (TrainConfig, evaluate_loss, kept_fraction,
                                     load_checkpoint, save_checkpoint, train, task_batch)


def test_bracket_targets_close_the_innermost_open_bracket():
    tokens, targets = make_task("bracket", 300, 12, seed=1)
    for row, target in zip(tokens, targets):
        stack = []
        for t in row:
            if t in OPENERS:
                stack.append(t)
            elif t in CLOSERS:
                assert stack and CLOSERS[list(OPENERS).index(stack.pop())] == t
        assert stack, "every sequence must end inside an open bracket"
        assert target == CLOSERS[list(OPENERS).index(stack[-1])]
    # the last token is not always the opener to close: nesting must matter
    assert (~np.isin(tokens[:, -1], OPENERS)).mean() > 0.3


def test_tasks_are_seeded():
    a, b = make_task("quote", 50, 8, seed=3), make_task("quote", 50, 8, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], make_task("quote", 50, 8, seed=4)[0])


def _planted_data(n=256, seed=0):
    return task_batch(["close-last"], n, 8, seed)


def _node_index(net):
    index, start = {}, 0
    for group, width in net.node_groups().items():
        for i in range(width):
            index[(group, i)] = start + i
        start += width
    return index


def test_pruning_recovers_the_planted_circuit():
    net = planted_model(seed=0)
    tokens, targets = _planted_data()
    means = node_means(net, tokens)
    pruner = CircuitPruner(target_loss=0.01, steps=150, seed=0).fit(net, tokens, targets, means)
    index = _node_index(net)
    truth = np.zeros(len(index), bool)
    truth[[index[node] for node in PLANTED_CIRCUIT]] = True
    assert pruner.reached_
    np.testing.assert_array_equal(pruner.keep_, truth)

    held = _planted_data(seed=1)
    means_held = node_means(net, held[0])
    alone = circuit_losses(net, *held, truth, means_held).mean()
    without = circuit_losses(net, *held, ~truth, means_held).mean()
    assert alone <= 0.01                     # sufficient
    assert without > 0.5                     # necessary: chance is log 2 = 0.69
    rng = np.random.default_rng(0)
    for _ in range(5):                       # a random circuit of the same size fails
        rand = np.zeros(len(index), bool)
        rand[rng.choice(len(index), truth.sum(), replace=False)] = True
        if not (rand == truth).all():
            assert circuit_losses(net, *held, rand, means_held).mean() > 0.5


def test_planted_circuit_edges_follow_the_hand_built_weights():
    net = planted_model(seed=0)
    index = _node_index(net)
    keep = np.zeros(len(index), bool)
    keep[[index[node] for node in PLANTED_CIRCUIT]] = True
    edges = {(w, i, r, j) for w, i, r, j, _ in
             circuit_edges(net, keep, [TOKEN[")"], TOKEN["]"]])}
    assert edges == {("embed", 3, "mlp0", 5), ("embed", 7, "mlp0", 9),
                     ("mlp0", 5, "logits", TOKEN[")"]), ("mlp0", 9, "logits", TOKEN["]"])}


def test_kept_fraction_anneals_to_the_target():
    cfg = TrainConfig(steps=100, density=0.1, anneal=0.5)
    assert kept_fraction(0, cfg) > 0.95
    assert kept_fraction(49, cfg) == pytest.approx(0.1)
    assert kept_fraction(99, cfg) == pytest.approx(0.1)
    assert kept_fraction(20, cfg) > kept_fraction(30, cfg)


def test_sparse_training_keeps_the_target_density_and_still_learns(tmp_path):
    model = CircuitConfig(d_model=32, n_heads=2, d_mlp=64, n_layers=1)
    cfg = TrainConfig(tasks=("close-last",), length=6, steps=150, batch=64, lr=1e-2,
                      density=0.1, anneal=0.5, model=model)
    net, record = train(cfg, show_progress=False)
    assert zero_fraction(net) >= 0.89        # at most ceil(0.1 size) kept per matrix
    assert record["task_loss"]["close-last"] < 0.1   # chance is log 2
    assert (neuron_degrees(net) < 2 * model.d_model).mean() > 0.5
    path = save_checkpoint(tmp_path / "m.safetensors", net, cfg, record)
    again, meta = load_checkpoint(path)
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert meta["train"]["density"] == 0.1
    assert evaluate_loss(again, "close-last", 6, seed=5) < 0.1


def test_modularity_is_high_for_two_blocks_and_low_when_shuffled():
    rng = np.random.default_rng(0)
    A = np.zeros((20, 20))
    A[:10, :10] = rng.random((10, 10))
    A[10:, 10:] = rng.random((10, 10))
    A = (A + A.T) / 2
    assert spectral_modularity(A, 2, seed=0) == pytest.approx(0.5, abs=0.02)
    dense = rng.random((20, 20))
    assert spectral_modularity((dense + dense.T) / 2, 2, seed=0) < 0.1


def test_study_smoke_writes_rows_results_and_figures(tmp_path, check_saved_figure):
    study = runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples"
                               / "circuits_study.py"))
    out, figs = tmp_path / "out", tmp_path / "figs"
    rows, fig = study["main"](["--smoke", "--out", str(out), "--figures", str(figs),
                               "--workdir", str(tmp_path / "work")])
    assert [(r["density"], r["task"]) for r in rows] == [(1.0, "quote"), (0.1, "quote")]
    saved = json.loads((out / "study.json").read_text())
    assert saved["rows"] == rows and saved["config"]["seeds"] == [0]
    assert saved["environment"]["versions"]["torch"]
    assert rows[1]["zero_fraction"] >= 0.89 > rows[0]["zero_fraction"]
    check_saved_figure(fig, [figs / "circuits_size_vs_density.png"])
    for name in ("sparsest", "dense"):
        assert (figs / f"circuits_{name}.png").stat().st_size > 0


def test_loading_another_safetensors_file_names_it(tmp_path):
    from safetensors.torch import save_file

    from geoprobe.errors import FormatError

    path = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(path), metadata={"format": "geoprobe-jepa/1"})
    with pytest.raises(FormatError, match="other.safetensors: not a geoprobe circuit"):
        load_checkpoint(path)
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(FormatError, match="bad.safetensors: not a readable"):
        load_checkpoint(tmp_path / "bad.safetensors")


def test_geoprobe_list_shows_the_circuit_probes_and_generator(capsys):
    from geoprobe.cli import main

    assert main(["list"]) in (0, None)
    out = capsys.readouterr().out
    for name in ("circuit ", "weight-sparsity", "circuit-transformer", "circuits"):
        assert name in out
