"""Dense vs weight-sparse transformers: how large is the circuit that does a task?

    python examples/circuits_study.py [--densities 1 0.3 0.1 0.05] [--seeds 0] [--steps 1500]
        [--tasks quote bracket] [--target-loss 0.15] [--out examples/results/circuits]
        [--figures docs/figures] [--smoke]

For each kept weight fraction (1 = dense) and seed, trains a small transformer on the
``quote`` and ``bracket`` tasks (geoprobe.circuits; checkpoints cached in ``--workdir``),
then runs the ``circuit`` probe on each task (prune to the smallest node set whose loss
alone is at most ``--target-loss``: every model is cut at the same loss) and the
``weight-sparsity`` probe. Writes ``<out>/study.json`` (every number, with seeds, configs,
versions and git hash), ``<out>/<run>.json`` (each probe result), and the figures
``<figures>/circuits_size_vs_density.png`` (circuit size against the kept weight fraction)
and ``<figures>/circuits_sparsest.png`` / ``circuits_dense.png`` (the probe's figure, with
the drawing of the circuit, for the sparsest and the dense model on the first task).

Defaults took about 20 minutes with ``--jobs 4`` on two cores shared at load 15-25 (not
timed on idle cores); the full-scale settings in docs/circuits.md (3 seeds, 3000 steps) take
about six times as long.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from geoprobe import threads
from geoprobe.plotting import BASELINE_COLOR, PALETTE, new_figure, save_figure, style
from geoprobe.provenance import environment, write_json_atomic

SMOKE = {"densities": [1.0, 0.1], "seeds": [0], "tasks": ["quote"], "steps": 40, "d_model": 16, "d_mlp": 32,
         "prune_steps": 20, "n_prune": 64, "n_eval": 64, "n_random": 3}


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--densities", type=float, nargs="+", default=[1.0, 0.3, 0.1, 0.05],
                    help="kept weight fractions to train (1 = dense)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--tasks", nargs="+", default=["quote", "bracket"])
    ap.add_argument("--steps", type=int, default=1500, help="training steps per model")
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--d-mlp", type=int, default=256)
    ap.add_argument("--target-loss", type=float, default=0.15)
    ap.add_argument("--prune-steps", type=int, default=200)
    ap.add_argument("--n-prune", type=int, default=256)
    ap.add_argument("--n-eval", type=int, default=1024)
    ap.add_argument("--n-random", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("examples/results/circuits"))
    ap.add_argument("--figures", type=Path, default=Path("docs/figures"))
    ap.add_argument("--workdir", type=Path, default=None,
                    help="checkpoint cache (default: a scratch folder of this process)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="models trained and pruned at once, in separate processes")
    ap.add_argument("--smoke", action="store_true", help="tiny settings, for the tests")
    args = ap.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    return args


def one_model(args, density: float, seed: int) -> list[dict]:
    """Train (or reuse) one model, prune it on every task, measure its weights; one row per
    task."""
    from geoprobe.circuits.pipeline import circuit_transformer
    from geoprobe.registry import make_probe

    with threads.policy():  # $GEOPROBE_THREADS or geoprobe's default, for training too
        emb = circuit_transformer(tuple(args.tasks), density=density, steps=args.steps,
                                  d_model=args.d_model, d_mlp=args.d_mlp, n_items=8,
                                  seed=seed, workdir=args.workdir, show_progress=False)
        stem = f"d{density:g}-s{seed}"
        ws = make_probe("weight-sparsity").run(emb, seed=seed, progress=False)
        write_json_atomic(args.out / f"{stem}-weight-sparsity.json", ws.to_dict())
        rows = []
        for task in args.tasks:
            probe = make_probe("circuit", task=task, target_loss=args.target_loss,
                               steps=args.prune_steps, n_prune=args.n_prune,
                               n_eval=args.n_eval, n_random=args.n_random)
            res = probe.run(emb, seed=seed, progress=False)
            write_json_atomic(args.out / f"{stem}-{task}-circuit.json", res.to_dict())
            m = res.metric
            rows.append({"density": density, "seed": seed, "task": task,
                         "zero_fraction": ws.metric("zero_fraction").value,
                         "train_task_loss": emb.provenance["record"]["task_loss"][task],
                         "full_loss": m("circuit_loss", baseline="full-model").value,
                         "circuit_size": m("circuit_size").value,
                         "circuit_fraction": m("circuit_fraction").value,
                         "circuit_edges": m("circuit_edges").value,
                         "target_reached": bool(m("target_reached").value),
                         "circuit_loss": m("circuit_loss").value,
                         "ablated_loss": m("ablated_loss").value,
                         "random_circuit_loss": m("circuit_loss",
                                                  baseline="random-circuit").value,
                         "all_ablated_loss": m("circuit_loss", baseline="all-ablated").value,
                         "modularity": [ws.metric("modularity", layer=f"mlp{i}").value
                                        for i in range(2)],
                         "modularity_shuffled": [ws.metric("modularity", layer=f"mlp{i}",
                                                           baseline="shuffled-weights").value
                                                 for i in range(2)],
                         "result": f"{stem}-{task}-circuit.json"})
    return rows


def run(args) -> list[dict]:
    """Every (seed, density), ``--jobs`` models at a time; rows in (seed, density, task)
    order whatever order the models finish in."""
    from concurrent.futures import ProcessPoolExecutor

    todo = [(d, s) for s in args.seeds for d in args.densities]
    if args.jobs == 1:
        done = [one_model(args, d, s) for d, s in todo]
    else:
        with ProcessPoolExecutor(args.jobs) as pool:
            done = list(pool.map(one_model, [args] * len(todo), *zip(*todo)))
    rows = [row for model_rows in done for row in model_rows]
    for row in rows:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                          for k, v in row.items() if k != "modularity_shuffled"}))
    return rows


def size_figure(rows: list[dict]):
    """Circuit size (nodes, log) against the fraction of non-zero weights, one line per task;
    dense models are the rightmost points, marked with squares."""
    with style():
        fig, axes = new_figure(2, width="double", aspect=0.75)
        ax_n, ax_e = axes[0]
        tasks = list(dict.fromkeys(r["task"] for r in rows))
        for k, task in enumerate(tasks):
            sub = [r for r in rows if r["task"] == task]
            dens = sorted({r["density"] for r in sub})
            for ax, key in ((ax_n, "circuit_size"), (ax_e, "circuit_edges")):
                x = np.array([1 - np.mean([r["zero_fraction"] for r in sub
                                           if r["density"] == d]) for d in dens])
                vals = [[r[key] for r in sub if r["density"] == d] for d in dens]
                y = np.array([np.exp(np.mean(np.log(np.maximum(v, 1)))) for v in vals])
                ax.plot(x, y, "-o", color=PALETTE[k], label=task)
                for d, xi, v in zip(dens, x, vals):
                    ax.scatter([xi] * len(v), v, s=8, color=PALETTE[k], alpha=0.5)
                    if d == 1.0:
                        ax.scatter([xi], [np.exp(np.mean(np.log(np.maximum(v, 1))))], s=60,
                                   marker="s", facecolor="none", edgecolor=BASELINE_COLOR,
                                   label="dense" if k == 0 else None, zorder=3)
                missed = [(xi, r[key]) for r in sub if not r["target_reached"]
                          for d, xi in zip(dens, x) if r["density"] == d]
                if missed:
                    ax.scatter(*zip(*missed), marker="x", color="k", s=30,
                               label="target not met" if k == 0 else None, zorder=4)
        for ax, what in ((ax_n, "nodes"), (ax_e, "edges (non-zero weights)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("fraction of weights non-zero")
            ax.set_ylabel(f"circuit size, {what}")
            ax.legend(frameon=False, fontsize=7)
        target = rows[0]["target"] if "target" in rows[0] else None
        ax_n.set_title("circuit at the same task loss" + (f" ({target:g} nats)" if target else ""))
        ax_e.set_title("edges between the circuit's nodes")
    return fig


def main(argv=None):
    args = parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run(args)
    for r in rows:
        r["target"] = args.target_loss
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
              if k != "workdir"}
    write_json_atomic(args.out / "study.json",
                      {"config": config, "environment": environment(), "rows": rows})
    fig = size_figure(rows)
    save_figure(fig, args.figures / "circuits_size_vs_density", formats=("png",))
    from geoprobe.probe import ProbeResult
    from geoprobe.provenance import read_json

    first = args.tasks[0]
    for name, density in (("sparsest", min(args.densities)), ("dense", max(args.densities))):
        res = ProbeResult.from_dict(read_json(
            args.out / f"d{density:g}-s{args.seeds[0]}-{first}-circuit.json", missing="run"))
        save_figure(res.plot(), args.figures / f"circuits_{name}", formats=("png",))
    return rows, fig


if __name__ == "__main__":
    main()
