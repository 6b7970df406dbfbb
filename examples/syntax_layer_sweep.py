"""MiniLM layer sweep of both syntax probes on UD English-EWT, over several training seeds.

For every layer of the offline all-MiniLM-L6-v2 (the embedding output and the 6 transformer
layers) and of its random-init twin, trains the structural probe and the polar probe on all
EWT train sentences but a held-out selection slice (500 sentences, where early stopping picks
the epoch), with ``--seeds`` training seeds, and scores each on EWT dev. Writes into ``--out``:

* ``syntax-layer-sweep.md``: per probe and layer, UUAS, DSpr, root accuracy, UAS, LAS and
  relation accuracy as the mean over seeds, the across-seed standard deviation and the 95%
  sentence-bootstrap interval, for the trained model and the random-init twin; and the epochs
  each training ran;
* ``syntax-layer-sweep.png`` / ``.pdf``: each metric against the layer, the seeds' range as a
  band and the bootstrap interval as error bars, trained model against twin;
* ``syntax-layer-sweep.json``: every seed's value and interval, with the configuration, the
  seed, versions, git hash, machine and thread settings;
* ``runs/<probe>-seed<k>-<layer>.json``: each probe run's full result (one layer, trained
  model and twin), reused by a later call with the same configuration (so an interrupted sweep
  resumes, more layers can be added later, and the two probes can run in two processes:
  ``--probes structural-probe`` and ``--probes polar-probe``, then a call without
  ``--probes`` that only reads them).

The seed moves the map's initialisation, the batch order, the selection slice and the
relation prototypes' sample; the bootstrap interval covers only the sampling of dev
sentences, so the two answer different questions and are reported side by side.

    python examples/syntax_layer_sweep.py --out docs/syntax-sweep --workdir work/ewt
    python examples/syntax_layer_sweep.py --smoke --out /tmp/sweep   # seconds: a few sentences

Extraction (EWT train and dev through MiniLM and its twin, float16) dominates the first call
and is cached in ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

#: the metrics reported, in table order, with their column headers
METRICS = {"uuas": "UUAS", "dspr": "DSpr", "root_accuracy": "root acc", "uas": "UAS",
           "las": "LAS", "relation_accuracy": "relation acc"}
PROBES = ("structural-probe", "polar-probe")
TWIN = "random-init"
SMOKE = {"max_sentences": {"train": 50, "dev": 16}, "layers": "0,3", "seeds": 2,
         "params": {"epochs": 3, "patience": 1, "n_boot": 50, "rank": 16}}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python examples/syntax_layer_sweep.py --out sweep --workdir work/ewt")
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for the table, figure, JSON summary and per-run results")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="extraction cache (EWT through MiniLM and its twin, ~2.5 GB); "
                             "default a temporary work folder")
    parser.add_argument("--layers", default="all",
                        help="'all' or comma-separated layer positions/names (e.g. 0,3,6)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 (>= 2)")
    parser.add_argument("--probes", default=",".join(PROBES),
                        help="comma-separated probes to run (default both)")
    parser.add_argument("--train-sentences", type=int, default=None,
                        help="extract only the first N EWT train sentences (a reduced run; "
                             "default all 12,544)")
    parser.add_argument("--n-boot", type=int, default=1000,
                        help="sentence-bootstrap replicates per metric")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny run for tests: 50 train / 16 dev sentences, layers 0 and 3, "
                             "2 seeds, 3 epochs")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 to measure an across-seed spread")
    probes = [p.strip() for p in args.probes.split(",") if p.strip()]
    unknown = sorted(set(probes) - set(PROBES))
    if unknown:
        parser.error(f"--probes: unknown {unknown}; choose from {list(PROBES)}")
    args.probes = probes
    return args


def sweep_config(args) -> dict:
    """Everything a run depends on; a cached run is reused only when this matches."""
    smoke = args.smoke
    return {"smoke": smoke, "layers": SMOKE["layers"] if smoke else args.layers,
            "seeds": SMOKE["seeds"] if smoke else args.seeds,
            "max_sentences": SMOKE["max_sentences"] if smoke else
            {"train": args.train_sentences, "dev": None},
            "params": {"ranks": None, "baselines": False,
                       "n_boot": SMOKE["params"]["n_boot"] if smoke else args.n_boot,
                       **({k: v for k, v in SMOKE["params"].items() if k != "n_boot"}
                          if smoke else {})}}


def layer_names(emb, spec: str) -> list[str]:
    """The set's layer names that ``spec`` ("all" or "0,3,6" / "embeddings,layer_3") asks for."""
    if spec == "all":
        return list(emb.layer_names)
    return [emb.layer_names[emb.layer_index(int(x) if x.strip().isdigit() else x.strip())]
            for x in spec.split(",")]


def run_probe(emb, probe: str, seed: int, layer: str, config: dict, runs: Path):
    """One probe run on one layer (trained model and twin), cached in ``runs``."""
    from geoprobe.probe import ProbeResult
    from geoprobe.provenance import write_json_atomic
    from geoprobe.registry import make_probe
    from geoprobe.safepath import check_name

    path = runs / f"{probe}-seed{seed}-{check_name(layer, what='layer')}.json"
    # one run does not depend on how many seeds or which other layers the sweep has
    key = {k: v for k, v in config.items() if k not in ("seeds", "layers")}
    if path.exists():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("run_config") == key:
            return ProbeResult.from_dict(cached["result"])
    result = make_probe(probe, **config["params"]).run(emb, layers=[layer], seed=seed)
    write_json_atomic(path, {"run_config": key, "result": result.to_dict()})
    return result


def collect(results: dict) -> dict:
    """Per probe, model and layer: each seed's value and interval of every metric, and the
    epochs each training ran. results: probe -> layer -> list of ProbeResult (one per seed)."""
    out = {}
    for probe, by_layer in results.items():
        layers = list(by_layer)
        first = by_layer[layers[0]][0]
        rows = {}
        for model, labels in (("trained", {}), (TWIN, {"baseline": TWIN})):
            for layer in layers:
                runs = by_layer[layer]
                cell = {}
                for name in METRICS:
                    ms = [r.metric(name, layer=layer, **labels) for r in runs]
                    cell[name] = {"values": [m.value for m in ms],
                                  "ci_low": [m.ci_low for m in ms],
                                  "ci_high": [m.ci_high for m in ms]}
                # the core keeps the twin's metrics, not its training record
                info = [r.info["training"][layer] if model == "trained" else None for r in runs]
                rows[f"{model}|{layer}"] = {"model": model, "layer": layer, "metrics": cell,
                                            "training": info}
        out[probe] = {"layers": layers, "rows": rows,
                      **{k: first.info[k] for k in ("n_train_sentences", "n_select_sentences",
                                                    "n_report_sentences")}}
    return out


def _fmt(x: float) -> str:
    return f"{x:.3f}".replace("0.", ".", 1) if np.isfinite(x) else "-"


def cell_text(m: dict) -> str:
    """``mean ±sd [lo, hi]``: across seeds, and the seeds' mean bootstrap interval."""
    v = np.asarray(m["values"], float)
    return (f"{_fmt(v.mean())} ±{_fmt(v.std(ddof=1))} "
            f"[{_fmt(np.mean(m['ci_low']))}, {_fmt(np.mean(m['ci_high']))}]")


def epochs_text(training: list) -> str:
    """Epochs run per seed (best epoch, 1-based), e.g. ``14 (9)``; ``*`` = hit the cap."""
    parts = []
    for t in training:
        if not t:
            return "-"
        prefix = "distance_" if "distance_epochs" in t else ""
        cap = "" if t[f"{prefix}stopped_early"] else "*"
        parts.append(f"{t[f'{prefix}epochs']}{cap} ({t[f'{prefix}best_epoch'] + 1})")
    return ", ".join(parts)


def table(summary: dict, config: dict, command: str) -> str:
    seeds = config["seeds"]
    lines = ["# Syntax probes across MiniLM layers: seeds and sentence bootstrap", "",
             f"Written by `{command}`.", "",
             f"Each cell: mean over {seeds} training seeds ± their standard deviation "
             "[95% percentile bootstrap interval over dev sentences, bounds averaged over the "
             "seeds]. Trained probe on MiniLM, then the same probe on the random-init twin. "
             "Epochs: per seed, epochs run (best epoch); `*` = stopped by the epoch cap, not "
             "by early stopping.", ""]
    for probe, s in summary.items():
        lines += [f"## {probe}", "",
                  f"{s['n_train_sentences']} train sentences, {s['n_select_sentences']} "
                  f"held-out selection sentences, {s['n_report_sentences']} report (dev) "
                  "sentences.", "",
                  "| model | layer | " + " | ".join(METRICS.values()) + " | epochs |",
                  "| --- | --- | " + " | ".join("---" for _ in METRICS) + " | --- |"]
        for row in s["rows"].values():
            cells = [cell_text(row["metrics"][name]) for name in METRICS]
            lines.append(f"| {row['model']} | {row['layer']} | " + " | ".join(cells)
                         + f" | {epochs_text(row['training'])} |")
        lines.append("")
    return "\n".join(lines)


def plot(summary: dict):
    """Each metric against the layer: seeds' range (band), bootstrap interval (bars)."""
    from geoprobe.plotting import BASELINE_COLOR, PALETTE, new_figure, style

    with style():
        fig, axes = new_figure(len(METRICS), len(summary), width=12.0, aspect=0.9)
        for row_axes, (probe, s) in zip(axes, summary.items()):
            x = np.arange(len(s["layers"]))
            for model, color in (("trained", PALETTE[0]), (TWIN, BASELINE_COLOR)):
                rows = [s["rows"][f"{model}|{layer}"] for layer in s["layers"]]
                for ax, name in zip(row_axes, METRICS):
                    vals = np.array([r["metrics"][name]["values"] for r in rows])
                    lo = np.array([np.mean(r["metrics"][name]["ci_low"]) for r in rows])
                    hi = np.array([np.mean(r["metrics"][name]["ci_high"]) for r in rows])
                    mean = vals.mean(1)
                    ax.fill_between(x, vals.min(1), vals.max(1), color=color, alpha=0.3, lw=0)
                    ax.errorbar(x, mean, yerr=[mean - lo, hi - mean], color=color, marker="o",
                                ms=3, capsize=2, label=model if model == "trained"
                                else "random-init twin")
                    ax.set_title(f"{probe.split('-')[0]}: {METRICS[name]}")
                    ax.set_xticks(x, [str(layer).replace("layer_", "")
                                      .replace("embeddings", "emb") for layer in s["layers"]])
                    ax.set_xlabel("layer")
        axes[0][0].legend(loc="best")
    return fig


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from geoprobe.datasets.treebank_splits import treebank_lm_splits
    from geoprobe.plotting import save_figure
    from geoprobe.provenance import environment, write_json_atomic, write_text_atomic

    config = sweep_config(args)
    emb = treebank_lm_splits(splits=("train", "dev"), dtype="float16",
                             max_sentences=config["max_sentences"], workdir=args.workdir)
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    results = {}
    for probe in args.probes:
        results[probe] = {}
        for layer in layer_names(emb, config["layers"]):  # all seeds of a layer, layer by layer
            results[probe][layer] = []
            for seed in range(config["seeds"]):
                print(f"{probe}, {layer}, seed {seed}", flush=True)
                results[probe][layer].append(run_probe(emb, probe, seed, layer, config, runs))
    summary = collect(results)
    command = "python examples/syntax_layer_sweep.py " + " ".join(
        a for a in (argv if argv is not None else __import__("sys").argv[1:]))
    write_json_atomic(args.out / "syntax-layer-sweep.json",
                      {"config": config, "environment": environment(), "summary": summary})
    write_text_atomic(args.out / "syntax-layer-sweep.md", table(summary, config, command.strip()))
    fig = plot(summary)
    paths = save_figure(fig, args.out / "syntax-layer-sweep")
    print("wrote", args.out / "syntax-layer-sweep.md", *paths)
    return summary, fig


if __name__ == "__main__":
    main()
