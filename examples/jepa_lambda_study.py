"""The lambda study: what SIGReg's weight does to a JEPA world model's latent, over seeds.

For each lambda (0 = prediction loss only, LeWM's 0.1, one large value) and each seed, a
TwoRoom dataset is generated, a model trained, exported and probed: linear decodability of
the agent's position, effective rank (RankMe), Gaussianity (SIGReg of held-out latents),
straightness, violation-of-expectation surprise and CEM planning success, each with its
baseline. The same models also get the fracture test across the wall (docs/fracture.md:
target ``y``, contexts the two rooms), so one set of trainings serves both findings.

A seed sets everything random in one run: the generated episodes, the initial weights, the
training batches and the probes' resampling. Each metric is summarised over seeds by its mean
and a 95 % Student-t interval across seeds (``geoprobe.stats.seed_interval``), beside the
mean of the per-seed (within-model, bootstrap) interval bounds where a probe reports them.

    python examples/jepa_lambda_study.py --workdir jepa-lambda \\
        --out examples/results/jepa_lambda --lams 0 0.1 10 --seeds 0-4 --steps 300

Results are written after every model (``summary.json``, with the study's configuration):
an interrupted study keeps what it finished, and rerunning with the same ``--out`` and
``--steps`` skips the (lambda, seed) pairs it already has, so lambdas or seeds can be added
later. Checkpoints and exports in ``--workdir`` are reused as well. Parts of one study run
by parallel processes (each with its own ``--out``, the same ``--workdir`` and different
(lambda, seed) pairs) are combined with ``--replot --merge DIR...``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from geoprobe.jepa.pipeline import (COLLAPSE_FRACTION, DEFAULTS, WALL_FRACTURE, gaussianity,
                                    probe_latents, wall_fracture, world_model_latents,
                                    write_report)
from geoprobe.plotting import (BASELINE_COLOR, PALETTE, baseline_band, interval, new_figure,
                               reference, save_figure, style)
from geoprobe.metric import json_number
from geoprobe.provenance import environment, write_json_atomic, write_text_atomic
from geoprobe.stats import seed_interval

#: per-seed metrics summarised across seeds: key -> label in the tables
LAMBDA_METRICS = {
    "r_x": "r(x)", "r_y": "r(y)", "rankme": "RankMe (of 32)", "collapsed": "collapse flag",
    "gaussianity_sigreg": "held-out SIGReg", "straightness": "straightness",
    "planning": "planning", "planning_random": "random actions",
    "voe_teleport_ratio": "VoE teleport ratio", "voe_colour_ratio": "VoE colour ratio",
}
FRACTURE_METRICS = {
    "within_score": "within-room r", "global_score": "global r",
    "transfer_ratio": "transfer ratio", "context_cosine": "room cosine",
    "residual_within": "within after LEACE", "noise_auc": "noise AUC",
    "transfer_ratio_random_init": "transfer ratio (random-init)",
    "context_cosine_random_init": "room cosine (random-init)",
}


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` (or a mix, ``"0-2,7"``) -> distinct non-negative seeds."""
    seeds = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            span = range(int(lo), int(hi) + 1) if sep else [int(lo)]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--seeds: {part.strip()!r} is not a seed or a range like 0-4") from None
        if sep and not span:
            raise argparse.ArgumentTypeError(f"--seeds: empty range {part.strip()!r}")
        seeds += list(span)
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError("--seeds: seeds are non-negative integers")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds: a seed is repeated in {text!r}")
    return seeds


def _ci(m) -> list:
    return [json_number(m.value), json_number(m.ci_low), json_number(m.ci_high)]


def study_row(lam, emb, results) -> dict:
    """One model's numbers: ``[value, ci_low, ci_high]`` where the probe gives an interval."""
    dec, spec, plan = results["decodability"], results["spectrum"], results["planning"]
    voe = results["voe"]
    return {
        "lam": lam,
        "r_x": _ci(dec.metric("pearson_r", layer="z", target="x")),
        "r_y": _ci(dec.metric("pearson_r", layer="z", target="y")),
        "r_x_random_init": _ci(dec.metric("pearson_r", layer="z", target="x",
                                          baseline="random-init")),
        "r_y_random_init": _ci(dec.metric("pearson_r", layer="z", target="y",
                                          baseline="random-init")),
        "rankme": _ci(spec.metric("rankme", layer="z")),
        "rankme_gaussian": spec.metric("rankme", layer="z", baseline="gaussian").value,
        "dim": emb.dim,
        "collapsed": spec.metric("rankme", layer="z").value < COLLAPSE_FRACTION * emb.dim,
        "gaussianity_sigreg": json_number(gaussianity(emb)),
        "straightness": _ci(results["straightness"].metric("straightness", layer="z")),
        "planning": _ci(plan.metric("success_rate")),
        "planning_random": _ci(plan.metric("success_rate", baseline="random-actions")),
        **{f"voe_{cond}_{key}": json_number(voe.metric(name, condition=cond).value)
           for cond in ("teleport", "colour")
           for key, name in (("ratio", "surprise_ratio"), ("p", "p_value"))},
    }


def fracture_row(res) -> dict:
    """The fracture-across-the-wall numbers of one model (layer ``z``)."""
    row = {name: _ci(res.metric(name, layer="z")) for name in
           ("within_score", "global_score", "transfer_ratio", "context_cosine",
            "residual_within", "noise_auc")}
    for name in ("transfer_ratio", "context_cosine"):
        row[f"{name}_random_init"] = json_number(
            res.metric(name, layer="z", baseline="random-init").value)
    return row


def run_model(lam: float, seed: int, steps: int, workdir: Path) -> dict:
    """Train (or reuse), export and probe one (lambda, seed) model; its row of results."""
    t0 = time.perf_counter()
    emb = world_model_latents(lam=lam, train_steps=steps, seed=seed, workdir=workdir,
                              show_progress=False)
    t1 = time.perf_counter()
    results = probe_latents(emb, seed=seed, mlp=False)
    frac = wall_fracture(emb, seed=seed)
    seconds = {"train+export": t1 - t0, "probes": time.perf_counter() - t1}
    report = workdir / f"report-lam{lam:g}-s{seed}"
    write_report(report, emb, results, seconds, formats=())
    write_json_atomic(report / "fracture.json", frac.to_dict())
    return {**study_row(lam, emb, results), **fracture_row(frac), "seed": seed,
            "seconds": seconds}


def summarise(rows, keys, level: float = 0.95) -> dict:
    """Across-seed summary per lambda: {lambda (str): {key: cell}}.

    A cell has ``values`` and ``seeds`` (per seed), ``mean``, the across-seed Student-t
    interval ``low``/``high`` (None with a ``note`` when fewer than two seeds have a finite
    value) and, for metrics given as ``[value, ci_low, ci_high]``, ``ci_low_mean`` and
    ``ci_high_mean``: the per-seed bootstrap bounds averaged over seeds. A boolean metric
    (the collapse flag) is summarised as the fraction of seeds where it is true and the count
    ``flagged``, without an interval. Intervals are not clipped to a metric's range (a
    success rate's may pass 1).
    """
    out = {}
    for lam in sorted({r["lam"] for r in rows}):
        at = sorted((r for r in rows if r["lam"] == lam), key=lambda r: r["seed"])
        cells = {}
        for key in keys:
            raw = [r[key] for r in at]
            # values are JSON numbers: NaN is stored as the string "nan", which float() reads
            vals = np.array([float(v[0] if isinstance(v, list) else v) for v in raw])
            finite = vals[np.isfinite(vals)]
            cell = {"seeds": [r["seed"] for r in at], "values": [json_number(v) for v in vals],
                    "mean": json_number(finite.mean() if finite.size else math.nan)}
            if isinstance(raw[0], bool):  # a t-interval of a 0/1 flag means nothing
                cell.update(low=None, high=None, n=int(finite.size), flagged=int(finite.sum()),
                            note="a flag: mean = fraction of seeds flagged, no interval")
                cells[key] = cell
                continue
            try:
                iv = seed_interval(vals, level)
                cell.update(low=iv.low, high=iv.high, n=iv.n)
            except ValueError as err:
                cell.update(low=None, high=None, n=int(finite.size),
                            note=f"no across-seed interval: {err}")
            if isinstance(raw[0], list):
                bounds = np.array([[float(v[1]), float(v[2])] for v in raw])
                mean = bounds[np.isfinite(bounds).all(axis=1)].mean(axis=0) if np.isfinite(
                    bounds).all(axis=1).any() else [math.nan, math.nan]
                cell.update(ci_low_mean=json_number(mean[0]), ci_high_mean=json_number(mean[1]))
            cells[key] = cell
        out[f"{lam:g}"] = cells
    return out


def _f(x) -> float:
    """A JSON number back to a float (None and "nan" -> NaN)."""
    return math.nan if x is None else float(x)


def _x(lams):
    """Log-axis positions of ``lams``: lambda = 0 is put a decade left of the smallest
    positive lambda (labelled "0" by :func:`_lambda_axis`)."""
    lams = np.asarray(lams, float)
    pos = lams[lams > 0]
    return np.where(lams > 0, lams, pos.min() / 10 if pos.size else 1e-3)


def _lambda_axis(ax, lams):
    x = _x(lams)
    ax.set_xscale("log")
    ax.set_xlim(x.min() / 2, x.max() * 2)  # fixed: an all-NaN panel has no data limits
    ax.set_xticks(x, [f"{lam:g}" for lam in lams])
    ax.minorticks_off()
    ax.set_xlabel("lambda (SIGReg weight)")


def _seed_panel(ax, summary, key, color, label, marker="o"):
    """Per-seed values (small points, spread sideways), the across-seed mean (line) and its
    t-interval (a translucent bar at each lambda)."""
    lams = [float(lam) for lam in summary]
    x = _x(lams)
    cells = [summary[lam][key] for lam in summary]
    for xi, cell in zip(x, cells):
        v = np.array([_f(u) for u in cell["values"]])
        jitter = xi * 10 ** np.linspace(-0.06, 0.06, len(v)) if len(v) > 1 else [xi]
        ax.plot(jitter, v, ls="none", marker=marker, ms=2.5, alpha=0.55, color=color)
    ax.plot(x, [_f(c["mean"]) for c in cells], marker=marker, ms=4, color=color, label=label)
    # one bar per lambda: a band would suggest values between the lambdas we trained
    for xi, c in zip(x, cells):
        interval(ax, [xi], [_f(c["low"])], [_f(c["high"])], color=color)


def _baseline(ax, summary, key, label):
    x = _x([float(lam) for lam in summary])
    cells = [summary[lam][key] for lam in summary]
    for i, (xi, c) in enumerate(zip(x, cells)):
        baseline_band(ax, [xi], [_f(c["low"])], [_f(c["high"])], label=None if i else label)
    reference(ax, x, [_f(c["mean"]) for c in cells])


def _score_panel(ax, summary, keys, ylabel, title):
    """Two held-out scores against lambda (``keys``: {key: label}), blue circles and
    orange squares."""
    for (key, label), color, marker in zip(keys.items(), PALETTE[:2], "os"):
        _seed_panel(ax, summary, key, color, label, marker)
    ax.set_ylabel(ylabel)
    ax.set_title(title)


def _finish(fig, axes, summary, what, n_seeds, **legend):
    """Lambda axis and legend on every panel; a title saying what the marks are."""
    for a in axes:
        _lambda_axis(a, [float(lam) for lam in summary])
        a.legend(frameon=False, fontsize=6, **legend)
    fig.suptitle(f"{what}, {n_seeds} seeds per lambda: points = seeds, line = mean, "
                 "bar = 95% t-interval across seeds", fontsize=8)
    return fig


def figure(summary, rows, n_seeds):
    """Six panels against lambda: decodability, RankMe, Gaussianity, planning, straightness,
    VoE teleport surprise; per-seed points, across-seed mean and 95 % t-interval."""
    lams = [float(lam) for lam in summary]
    fig, axes = new_figure(3, 2, width="double", aspect=0.85)
    ax = axes.ravel()
    _score_panel(ax[0], summary, {"r_x": "x", "r_y": "y"}, "held-out linear Pearson r",
                 "agent position decodability")
    _seed_panel(ax[1], summary, "rankme", PALETTE[0], "RankMe")
    reference(ax[1], _x(lams), [np.mean([r["rankme_gaussian"] for r in rows])] * len(lams),
              ls="--", label="isotropic Gaussian")
    ax[1].axhline(COLLAPSE_FRACTION * rows[0]["dim"], color=PALETTE[3], lw=0.6, ls=":",
                  label="collapse flag")
    ax[1].set_ylabel("RankMe")
    ax[1].set_title("effective rank")
    _seed_panel(ax[2], summary, "gaussianity_sigreg", PALETTE[2], "SIGReg")
    ax[2].set_yscale("log")
    ax[2].set_ylabel("held-out SIGReg")
    ax[2].set_title("Gaussianity (lower: more Gaussian)")
    _seed_panel(ax[3], summary, "planning", PALETTE[0], "CEM")
    _baseline(ax[3], summary, "planning_random", "random actions")
    ax[3].set_ylim(0, 1)
    ax[3].set_ylabel("planning success rate")
    ax[3].set_title("planning")
    _seed_panel(ax[4], summary, "straightness", PALETTE[4], "straightness")
    ax[4].axhline(0, color=BASELINE_COLOR, lw=0.6)
    ax[4].set_ylabel("temporal straightness")
    ax[4].set_title("straightness")
    _seed_panel(ax[5], summary, "voe_teleport_ratio", PALETTE[3], "teleport")
    _seed_panel(ax[5], summary, "voe_colour_ratio", PALETTE[5], "colour", "s")
    ax[5].axhline(1, color=BASELINE_COLOR, lw=0.6, ls=":", label="clean (ratio 1)")
    ax[5].set_yscale("log")
    ax[5].set_ylabel("surprise / clean surprise")
    ax[5].set_title("violation of expectation")
    return _finish(fig, ax, summary, "TwoRoom JEPA", n_seeds)


def fracture_figure(summary, n_seeds):
    """Fracture across the wall against lambda: within-room score, transfer ratio and room
    cosine; per-seed points, across-seed mean and 95 % t-interval, random-init twin."""
    fig, axes = new_figure(3, 1, width="double", aspect=1.0)
    ax = axes.ravel()
    _score_panel(ax[0], summary, {"within_score": "within room", "global_score": "global"},
                 "held-out Pearson r of y", "decodable inside each room?")
    for a, key, title in ((ax[1], "transfer_ratio", "one code across the wall?"),
                          (ax[2], "context_cosine", "one direction across the wall?")):
        _seed_panel(a, summary, key, PALETTE[1], "trained")
        _baseline(a, summary, f"{key}_random_init", "random-init")
        a.axhline(1, color=BASELINE_COLOR, lw=0.6, ls=":")
        a.axhline(0, color=BASELINE_COLOR, lw=0.6)
        a.set_title(title)
    ax[1].set_ylabel("transfer / within (1: unified)")
    ax[2].set_ylabel("cosine of the two rooms' probes")
    return _finish(fig, ax, summary, "y across TwoRoom's wall", n_seeds)


def _cell(c, digits) -> str:
    if "flagged" in c:
        return f"{c['flagged']}/{c['n']} seeds"
    if c["low"] is None:
        return f"{_f(c['mean']):.{digits}f} (n = {c['n']})"
    return f"{_f(c['mean']):.{digits}f} [{c['low']:.{digits}f}, {c['high']:.{digits}f}]"


#: decimals per metric in the tables
_DIGITS = {"r_x": 4, "r_y": 4, "rankme": 1, "collapsed": 1, "gaussianity_sigreg": 1,
           "voe_teleport_ratio": 1, "voe_colour_ratio": 2}


def summary_table(summary, keys) -> str:
    """Markdown: one row per lambda, each cell ``mean [95 % t-interval across seeds]``."""
    lines = ["| lambda | seeds | " + " | ".join(keys.values()) + " |",
             "|" + " --- |" * (len(keys) + 2)]
    for lam, cells in summary.items():
        first = next(iter(cells.values()))
        lines.append(f"| {lam} | {len(first['seeds'])} | " + " | ".join(
            _cell(cells[k], _DIGITS.get(k, 3)) for k in keys) + " |")
    return "\n".join(lines)


def seed_table(rows, keys) -> str:
    """Markdown: one row per (lambda, seed) with each model's own value."""
    lines = ["| lambda | seed | " + " | ".join(keys.values()) + " |",
             "|" + " --- |" * (len(keys) + 2)]
    for r in sorted(rows, key=lambda r: (r["lam"], r["seed"])):
        vals = [r[k][0] if isinstance(r[k], list) else r[k] for k in keys]
        lines.append(f"| {r['lam']:g} | {r['seed']} | " + " | ".join(
            f"{_f(v):.{_DIGITS.get(k, 3)}f}" for k, v in zip(keys, vals)) + " |")
    return "\n".join(lines)


def write_outputs(out: Path, doc: dict) -> None:
    """summary.md and the two figures, from a summary.json document."""
    rows, cfg = doc["rows"], doc["config"]
    lam_sum, frac_sum = doc["summary"]["lambda"], doc["summary"]["fracture"]
    n_seeds = max(len(c["seeds"]) for c in (next(iter(v.values())) for v in lam_sum.values()))
    text = [f"# The lambda study over seeds ({cfg['steps']} training steps)", "",
            "Each cell: mean over seeds [95 % Student-t interval across seeds, not clipped to "
            "the metric's range]; `(n = 1)`: one seed, no interval. Collapse flag: seeds "
            "flagged.", "",
            "## Lambda study", "", summary_table(lam_sum, LAMBDA_METRICS), "",
            "## Fracture of y across the wall", "", summary_table(frac_sum, FRACTURE_METRICS),
            "", "## Per seed", "", seed_table(rows, {**LAMBDA_METRICS, **FRACTURE_METRICS}), ""]
    write_text_atomic(out / "summary.md", "\n".join(text))
    with style():
        save_figure(figure(lam_sum, rows, n_seeds), out / "lambda_study")
        save_figure(fracture_figure(frac_sum, n_seeds), out / "fracture_seeds")


def document(config: dict, rows: list) -> dict:
    return {"config": config, "environment": environment(), "rows": rows,
            "summary": {"lambda": summarise(rows, LAMBDA_METRICS),
                        "fracture": summarise(rows, FRACTURE_METRICS)}}


def finished_rows(path: Path, config: dict) -> list:
    """Rows of an earlier run of the same configuration in ``path`` ([] if none); a
    different configuration is refused rather than mixed in."""
    if not path.exists():
        return []
    old = json.loads(path.read_text(encoding="utf-8"))
    if old.get("config") != config:
        raise SystemExit(f"{path}: field 'config' is {old.get('config')}, this run's is "
                         f"{config}; use another --out or remove the file")
    return old["rows"]


def merge(doc: dict, folders) -> dict:
    """``doc`` with the rows of ``folders``' summary.json (same configuration) for the
    (lambda, seed) pairs it lacks, re-summarised; each merged file's environment is kept
    under ``merged``."""
    rows, merged = list(doc["rows"]), list(doc.get("merged", []))
    for folder in folders:
        other = Path(folder) / "summary.json"
        if not other.exists():
            raise SystemExit(f"--merge: {other} does not exist")
        have = {(r["lam"], r["seed"]) for r in rows}
        rows += [r for r in finished_rows(other, doc["config"])
                 if (r["lam"], r["seed"]) not in have]
        merged.append({"folder": str(folder), "environment": json.loads(
            other.read_text(encoding="utf-8"))["environment"]})
    return {**document(doc["config"], rows), "environment": doc["environment"],
            "merged": merged}


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Example: --lams 0 0.1 10 --seeds 0-4 --steps 300 (7 to 10 minutes per model "
               "on two cores at a load average of 15 to 25; about 2 minutes idle).")
    ap.add_argument("--workdir", type=Path, required=True,
                    help="scratch: data, runs, exports, per-model reports")
    ap.add_argument("--out", type=Path, default=Path("examples/results/jepa_lambda"),
                    help="summary.json, summary.md and the figures")
    ap.add_argument("--lams", type=float, nargs="+", default=[0.0, 0.1, 10.0],
                    help="SIGReg weights to train at")
    ap.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-4"),
                    help="seeds, e.g. 0,1,2 or 0-4 (one seed gives no across-seed interval)")
    ap.add_argument("--steps", type=int, default=300, help="training steps per model")
    ap.add_argument("--replot", action="store_true",
                    help="only redo the summary, figures and table from --out/summary.json")
    ap.add_argument("--merge", type=Path, nargs="+", default=[], metavar="DIR",
                    help="with --replot: add the (lambda, seed) rows that --out lacks from the "
                         "summary.json of other --out folders of the same configuration "
                         "(parts of one study run by parallel processes)")
    args = ap.parse_args(argv)
    if args.merge and not args.replot:
        ap.error("--merge goes with --replot")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "summary.json"
    if args.replot:
        doc = merge(json.loads(path.read_text(encoding="utf-8")), args.merge)
        write_json_atomic(path, doc)
        write_outputs(args.out, doc)
        return doc
    config = {"steps": args.steps, "world": DEFAULTS, "dim": 32, "decodability": "linear",
              "fracture": WALL_FRACTURE}
    rows = finished_rows(path, config)
    done = {(r["lam"], r["seed"]) for r in rows}
    # seed-major order: an interrupted study has every lambda at its first seeds
    for seed in args.seeds:
        for lam in args.lams:
            if (lam, seed) in done:
                continue
            rows.append({"lam": lam, **run_model(lam, seed, args.steps, args.workdir)})
            doc = document(config, rows)
            write_json_atomic(path, doc)
            print(json.dumps({k: rows[-1][k] for k in ("lam", "seed", "r_y", "rankme",
                                                       "transfer_ratio", "seconds")}),
                  flush=True)
    doc = document(config, rows)
    write_json_atomic(path, doc)
    write_outputs(args.out, doc)
    return doc


if __name__ == "__main__":
    main()
