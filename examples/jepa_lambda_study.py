"""The lambda study: what SIGReg's weight does to a JEPA world model's latent.

For each lambda (0 = prediction loss only, values around LeWM's 0.1, one large value) the
same TwoRoom dataset and seed are used to train, export and probe a model; the figure shows
linear decodability of the agent's position, effective rank (RankMe), Gaussianity (SIGReg of
held-out latents) and CEM planning success against lambda, each with its baseline.

    python examples/jepa_lambda_study.py --workdir jepa-lambda \
        --out examples/results/jepa_lambda

Results are written after every lambda (``summary.json``), so an interrupted study keeps
what it finished; rerunning reuses finished checkpoints and exports in ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from geoprobe.jepa.pipeline import (COLLAPSE_FRACTION, gaussianity, probe_latents,
                                    world_model_latents, write_report)
from geoprobe.plotting import BASELINE_COLOR, PALETTE, new_figure, save_figure, style
from geoprobe.provenance import write_json_atomic, write_text_atomic


def _ci(m) -> list[float]:
    return [m.value, m.ci_low, m.ci_high]


def study_row(lam, emb, results) -> dict:
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
        "gaussianity_sigreg": gaussianity(emb),
        "straightness": _ci(results["straightness"].metric("straightness", layer="z")),
        "planning": _ci(plan.metric("success_rate")),
        "planning_random": _ci(plan.metric("success_rate", baseline="random-actions")),
        "voe_teleport_ratio": voe.metric("surprise_ratio", condition="teleport").value,
        "voe_teleport_p": voe.metric("p_value", condition="teleport").value,
        "voe_colour_ratio": voe.metric("surprise_ratio", condition="colour").value,
        "voe_colour_p": voe.metric("p_value", condition="colour").value,
    }


def figure(rows):
    rows = sorted(rows, key=lambda r: r["lam"])
    lams = np.array([r["lam"] for r in rows])
    x = np.where(lams > 0, lams, lams[lams > 0].min() / 10 if (lams > 0).any() else 1e-3)
    fig, axes = new_figure(2, 2, width="double", aspect=0.62)
    ax = axes.ravel()

    def band(a, key, color, label, marker="o"):
        v = np.array([r[key] for r in rows], float)
        if v.ndim == 1:
            a.plot(x, v, marker=marker, color=color, label=label)
            return
        a.errorbar(x, v[:, 0], yerr=np.abs(v[:, 1:].T - v[:, 0]), marker=marker, color=color,
                   capsize=2, label=label)

    band(ax[0], "r_x", PALETTE[0], "x")
    band(ax[0], "r_y", PALETTE[1], "y", "s")
    band(ax[0], "r_x_random_init", BASELINE_COLOR, "x, random init", ".")
    ax[0].set_ylabel("held-out linear Pearson r")
    ax[0].set_title("agent position decodability")
    band(ax[1], "rankme", PALETTE[0], "RankMe")
    ax[1].plot(x, [r["rankme_gaussian"] for r in rows], ls="--", color=BASELINE_COLOR,
               label="isotropic Gaussian")
    ax[1].axhline(COLLAPSE_FRACTION * rows[0]["dim"], color=PALETTE[3], lw=0.6, ls=":",
                  label="collapse flag")
    ax[1].set_ylabel("RankMe")
    ax[1].set_title("effective rank")
    band(ax[2], "gaussianity_sigreg", PALETTE[2], "held-out SIGReg")
    ax[2].set_yscale("log")
    ax[2].set_ylabel("held-out SIGReg (lower: more Gaussian)")
    ax[2].set_title("Gaussianity")
    band(ax[3], "planning", PALETTE[0], "CEM planner")
    band(ax[3], "planning_random", BASELINE_COLOR, "random actions", ".")
    ax[3].set_ylim(0, 1)
    ax[3].set_ylabel("success rate (95% CI)")
    ax[3].set_title("planning")
    for a in ax:
        a.set_xscale("log")
        a.set_xlabel("lambda (leftmost point: lambda = 0)")
        a.legend(frameon=False, fontsize=6)
    return fig


def table(rows) -> str:
    head = ("| lambda | r(x) | r(y) | RankMe | collapsed | SIGReg (val) | straightness | "
            "planning | random | VoE teleport ratio (p) | VoE colour ratio (p) |")
    lines = [head, "|" + " --- |" * 11]
    for r in sorted(rows, key=lambda r: r["lam"]):
        lines.append(
            f"| {r['lam']:g} | {r['r_x'][0]:.4f} [{r['r_x'][1]:.4f}, {r['r_x'][2]:.4f}] | "
            f"{r['r_y'][0]:.4f} | {r['rankme'][0]:.1f} | {'yes' if r['collapsed'] else 'no'} | "
            f"{r['gaussianity_sigreg']:.2f} | {r['straightness'][0]:.3f} | "
            f"{r['planning'][0]:.2f} [{r['planning'][1]:.2f}, {r['planning'][2]:.2f}] | "
            f"{r['planning_random'][0]:.2f} | {r['voe_teleport_ratio']:.1f} "
            f"({r['voe_teleport_p']:.1g}) | {r['voe_colour_ratio']:.2f} ({r['voe_colour_p']:.1g}) |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True, help="scratch: data, runs, exports")
    ap.add_argument("--out", type=Path, default=Path("examples/results/jepa_lambda"))
    ap.add_argument("--lams", type=float, nargs="+", default=[0.0, 0.03, 0.1, 0.3, 10.0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--replot", action="store_true",
                    help="only redraw the figure and table from --out/summary.json")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        rows = json.loads((args.out / "summary.json").read_text())["rows"]
        with style():
            save_figure(figure(rows), args.out / "lambda_study")
        write_text_atomic(args.out / "summary.md", table(rows) + "\n")
        return
    rows = []
    for lam in args.lams:
        t0 = time.perf_counter()
        emb = world_model_latents(lam=lam, train_steps=args.steps, seed=args.seed,
                                  workdir=args.workdir, show_progress=False)
        t1 = time.perf_counter()
        results = probe_latents(emb, seed=args.seed, mlp=False)
        write_report(args.workdir / f"report-lam{lam:g}", emb, results,
                     {"train+export": t1 - t0, "probes": time.perf_counter() - t1})
        rows.append({**study_row(lam, emb, results),
                     "seconds": {"train+export": t1 - t0, "probes": time.perf_counter() - t1}})
        write_json_atomic(args.out / "summary.json", {"steps": args.steps, "seed": args.seed,
                                                      "rows": rows})
        print(json.dumps(rows[-1]), flush=True)
    with style():
        save_figure(figure(rows), args.out / "lambda_study")
    write_text_atomic(args.out / "summary.md", table(rows) + "\n")


if __name__ == "__main__":
    main()
