"""Latent-level against token-level self-supervision on the random hierarchy model.

For every depth ``L`` and number of training samples ``n``, both learners of
:mod:`geoprobe.hierarchy_ssl` (same tree encoder; masked last-token prediction against
same-level latent prediction with SIGReg) train on the same RHM samples, and the
``linear-decodability`` probe asks how well each level's node vectors on held-out samples
encode that level's latent, on rules the probe never saw (``group="rule{l}_0"``: synonyms are
kept out of the probe's training folds, so a representation must map a synonym it was not
shown to its latent). Recovery of the hierarchy at ``(L, n)`` is the *lowest* such accuracy
over levels 1..L-1 (position 0: the node farthest from the masked last token); ``n*`` is the
smallest ``n`` of the grid whose recovery, averaged over seeds, reaches ``--threshold``.
``n = 0`` is the random-init encoder, the baseline.

    python examples/hierarchy_sample_complexity.py                 # default, ~30 min on 2 cores
    python examples/hierarchy_sample_complexity.py --smoke --out /tmp/rhm   # seconds
    python examples/hierarchy_sample_complexity.py --replot        # redraw from results.json

Writes ``--out/results.json`` (every row, with the configuration, seeds, versions and git
hash) after every run, so an interrupted sweep keeps what it finished, and at the end
``results.md`` and the figure ``hierarchy_sample_complexity.{pdf,png}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from geoprobe.datasets.hierarchy import hierarchy_ssl
from geoprobe.plotting import BASELINE_COLOR, PALETTE, new_figure, save_figure, style
from geoprobe.probes.decodability import LinearDecodability
from geoprobe.progress import progress
from geoprobe.provenance import environment, write_json_atomic, write_text_atomic

LEARNERS = ("token", "latent")
DEFAULTS = {"depths": [2, 3, 4], "n_train": [0, 300, 3000, 30000],
            "seeds": [0], "v": 16, "m": 4, "s": 2, "steps": 3000, "n_eval": 1000,
            "width": 32, "hidden": 64, "lam": 1.0, "threshold": 0.3, "n_boot": 200}
SMOKE = {**DEFAULTS, "depths": [2, 3], "n_train": [0, 100], "v": 6, "m": 2, "steps": 5,
         "n_eval": 150, "width": 8, "hidden": 16, "n_boot": 10}


def recovery(emb, depth: int, *, seed: int, n_boot: int) -> dict:
    """Held-out-rule accuracy of ``level{l}_0`` from layer ``level{l}`` for l = 1..L-1:
    ``{l: [value, ci_low, ci_high]}``."""
    out = {}
    for level in range(1, depth):
        probe = LinearDecodability(targets=[f"level{level}_0"], group=f"rule{level}_0",
                                   kind="categorical", mlp=False, shuffled=False,
                                   trivial=False, rare_classes="drop", n_boot=n_boot)
        m = probe.run(emb, seed=seed, progress=False, layers=[f"level{level}"]).metric(
            "accuracy", layer=f"level{level}", target=f"level{level}_0")
        out[level] = [m.value, m.ci_low, m.ci_high]
    return out


def n_star(rows, learner: str, depth: int, threshold: float) -> float | None:
    """Smallest n > 0 whose seed-mean recovery reaches ``threshold``; None if none does."""
    by_n: dict[int, list[float]] = {}
    for r in rows:
        if r["learner"] == learner and r["depth"] == depth and r["n_train"] > 0:
            by_n.setdefault(r["n_train"], []).append(r["recovery"])
    hits = [n for n, v in sorted(by_n.items()) if np.mean(v) >= threshold]
    return float(hits[0]) if hits else None


def figure(result):
    cfg, rows = result["config"], result["rows"]
    depths, thr = cfg["depths"], cfg["threshold"]
    fig, axes = new_figure(2, (len(depths) + 2) // 2, width="double", aspect=0.62)
    ax = axes.ravel()
    for spare in ax[1 + len(depths):]:
        fig.delaxes(spare)
    top = max(cfg["n_train"])
    for k, learner in enumerate(LEARNERS):
        stars = [n_star(rows, learner, d, thr) for d in depths]
        hit = [(d, n) for d, n in zip(depths, stars) if n is not None]
        miss = [d for d, n in zip(depths, stars) if n is None]
        if hit:
            ax[0].plot(*zip(*hit), marker="o", color=PALETTE[k], label=f"{learner}-level")
        if miss:  # not reached within the grid: drawn above its largest n, side by side
            ax[0].plot(np.array(miss) + 0.06 * (2 * k - 1), [2 * top] * len(miss), ls="none",
                       marker="^", mfc="none", color=PALETTE[k],
                       label=f"{learner}-level: not reached (> {top})")
    ax[0].set_yscale("log")
    ax[0].set_xticks(depths)
    ax[0].set_xlabel("depth L")
    ax[0].set_ylabel(f"n* (recovery >= {thr:g})")
    ax[0].set_title("samples needed")
    ax[0].legend(frameon=False, fontsize=6)
    for i, depth in enumerate(depths, start=1):
        for k, learner in enumerate(LEARNERS):
            sel = sorted((r for r in rows if r["learner"] == learner and r["depth"] == depth),
                         key=lambda r: r["n_train"])
            ns = sorted({r["n_train"] for r in sel if r["n_train"] > 0})
            for level in range(1, depth):
                vals = [np.mean([r["levels"][str(level)][0] for r in sel if r["n_train"] == n])
                        for n in ns]
                top_level = level == depth - 1
                ax[i].plot(ns, vals, marker="o" if top_level else ".", color=PALETTE[k],
                           ls="-" if top_level else (":", "-.")[level % 2],
                           label=f"{learner}, level {level}")
        base = [r["recovery"] for r in rows if r["depth"] == depth and r["n_train"] == 0]
        if base:
            ax[i].axhline(np.mean(base), color=BASELINE_COLOR, ls="--", lw=0.8,
                          label="random init")
        ax[i].axhline(thr, color=PALETTE[3], ls=":", lw=0.6)
        ax[i].set_xscale("log")
        ax[i].set_ylim(-0.02, 1.02)
        ax[i].set_xlabel("training samples n")
        ax[i].set_ylabel("held-out-rule accuracy")
        ax[i].set_title(f"L = {depth}")
        ax[i].legend(frameon=False, fontsize=5)
    return fig


def table(result) -> str:
    cfg, rows = result["config"], result["rows"]
    lines = [f"Recovery = lowest held-out-rule accuracy of level 1..L-1 latents "
             f"(chance about 1/v = {1 / cfg['v']:.3f}); threshold {cfg['threshold']:g}.", "",
             "| learner | L | n | recovery | per level [95% CI] | final loss | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(rows, key=lambda r: (r["learner"], r["depth"], r["n_train"], r["seed"])):
        levels = "; ".join(f"{lv}: {v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"
                           for lv, v in r["levels"].items())
        loss = "-" if r["final_loss"] is None else f"{r['final_loss']:.3f}"
        lines.append(f"| {r['learner']} | {r['depth']} | {r['n_train']} | "
                     f"{r['recovery']:.3f} | {levels} | {loss} | {r['seconds']:.0f} |")
    lines += ["", "| learner | " + " | ".join(f"n* at L = {d}" for d in cfg["depths"]) + " |",
              "| --- |" + " --- |" * len(cfg["depths"])]
    for learner in LEARNERS:
        stars = [n_star(rows, learner, d, cfg["threshold"]) for d in cfg["depths"]]
        cells = [f"> {max(cfg['n_train'])}" if s is None else f"{s:.0f}" for s in stars]
        lines.append(f"| {learner} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(result, out: Path) -> None:
    with style():
        save_figure(figure(result), out / "hierarchy_sample_complexity")
    write_text_atomic(out / "results.md", table(result))


def run(cfg: dict, out: Path, *, show_progress: bool = True) -> dict:
    """The sweep: every (learner, depth, n, seed), results.json rewritten after each."""
    grid = [(learner, depth, n, seed) for depth in cfg["depths"] for n in cfg["n_train"]
            for seed in cfg["seeds"] for learner in LEARNERS]
    result = {"config": cfg, "environment": environment(), "rows": []}
    for learner, depth, n, seed in progress(grid, enable=show_progress, desc="runs"):
        t0 = time.perf_counter()
        emb = hierarchy_ssl(learner=learner, n_train=n, n_eval=cfg["n_eval"], v=cfg["v"],
                            m=cfg["m"], s=cfg["s"], depth=depth, rules_seed=seed,
                            width=cfg["width"], hidden=cfg["hidden"], steps=cfg["steps"],
                            lam=cfg["lam"], seed=seed)
        levels = recovery(emb, depth, seed=seed, n_boot=cfg["n_boot"])
        result["rows"].append({"learner": learner, "depth": depth, "n_train": n, "seed": seed,
                               "levels": {str(k): v for k, v in levels.items()},
                               "recovery": min(v[0] for v in levels.values()),
                               "final_loss": emb.provenance["final_loss"],
                               "seconds": time.perf_counter() - t0})
        write_json_atomic(out / "results.json", result)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("examples/results/hierarchy"))
    ap.add_argument("--smoke", action="store_true", help="tiny settings, seconds")
    ap.add_argument("--depths", type=int, nargs="+")
    ap.add_argument("--n-train", type=int, nargs="+", help="training-set sizes (0: random init)")
    ap.add_argument("--seeds", type=int, nargs="+", help="seeds of the rules, data and model")
    ap.add_argument("--steps", type=int, help="Adam steps per run (same for every n)")
    ap.add_argument("--threshold", type=float, help="recovery that counts as recovered")
    ap.add_argument("--replot", action="store_true",
                    help="only redraw the figure and table from --out/results.json")
    ap.add_argument("--combine", type=Path, nargs="+", metavar="DIR",
                    help="merge the results.json of sweeps run in parallel (same settings, "
                         "other --depths or --n-train) into --out, then draw")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.combine:
        parts = [json.loads((d / "results.json").read_text(encoding="utf-8"))
                 for d in args.combine]
        result = {"config": {**parts[0]["config"], **{key: sorted(
                      {x for p in parts for x in p["config"][key]}) for key in
                      ("depths", "n_train")}},
                  "environment": parts[0]["environment"], "parts": [str(d) for d in args.combine],
                  "rows": [r for p in parts for r in p["rows"]]}
        write_json_atomic(args.out / "results.json", result)
    elif args.replot:
        result = json.loads((args.out / "results.json").read_text(encoding="utf-8"))
    else:
        cfg = dict(SMOKE if args.smoke else DEFAULTS)
        for key in ("depths", "n_train", "seeds", "steps", "threshold"):
            if getattr(args, key) is not None:
                cfg[key] = getattr(args, key)
        result = run(cfg, args.out)
    write_outputs(result, args.out)
    print(table(result))
    return result


if __name__ == "__main__":
    main()
