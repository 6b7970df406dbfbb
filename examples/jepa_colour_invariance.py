"""Colour invariance: does a JEPA world model stop being surprised by a colour change once
its training data vary the object's colour?

LeWorldModel reports that a colour change of the agent causes no surprise spike while a
teleport does; our model trained on a red agent found the colour change 6x as surprising as
a clean frame. Here the same model (lambda = 0.1) is trained on the same trajectories with
three colourings of the object (``geoprobe jepa generate --colours``), for several seeds each:

``fixed``
    always red (the data of the main job).
``random-episode`` (the main condition)
    one random vivid colour per episode, constant within it, red and blue included. With red
    and blue both seen as episode colours, the only novelty left in a colour-change episode
    is the change itself, which is LeWM's claim. (Training without blue would mix the change
    with an unseen colour.)
``random-frame`` (the control)
    a new random colour every frame: colour changes are part of the training data and
    colour cannot be predicted, so this asks whether the model can learn to ignore colour
    at all.

Every model is probed with the same violation-of-expectation episodes (red object; a teleport,
or a red-to-blue change at ``event_t``) and for linear decodability of the agent's position
(the model still works). Per condition, the across-seed geometric mean of each surprise ratio
comes with a 95% t-interval over seeds (on log ratios).

    python examples/jepa_colour_invariance.py --workdir jepa-colour \
        --out examples/results/jepa_colour

Results (``summary.json``, ``summary.md``) are rewritten after every model, so an interrupted
study keeps what it finished; a rerun skips finished models and reuses checkpoints in
``--workdir``. ``--replot`` only redraws the figure and tables from ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from geoprobe.jepa.pipeline import train_and_probe
from geoprobe.jepa.worlds import COLOUR_MODES
from geoprobe.plotting import BASELINE_COLOR, PALETTE, new_figure, save_figure, style
from geoprobe.provenance import environment, write_json_atomic, write_text_atomic
from geoprobe.stats import seed_interval

#: the per-seed numbers the summary aggregates: key -> aggregated on a log scale
AGGREGATED = {"voe_colour_ratio": True, "voe_teleport_ratio": True, "r_x": False, "r_y": False}


def _ci(m) -> list[float]:
    return [m.value, m.ci_low, m.ci_high]


def study_row(colours: str, seed: int, results: dict) -> dict:
    """The numbers of one model: VoE ratios, p-values and paired increases (95% bootstrap CI
    over episodes), clean surprise, held-out linear decodability of x and y (trained and
    random-init), planning success."""
    dec, voe = results["decodability"], results["voe"]
    row = {"colours": colours, "seed": seed,
           "voe_clean_surprise": _ci(voe.metric("surprise", condition="clean"))}
    for cond in ("teleport", "colour"):
        row[f"voe_{cond}_ratio"] = voe.metric("surprise_ratio", condition=cond).value
        row[f"voe_{cond}_p"] = voe.metric("p_value", condition=cond).value
        row[f"voe_{cond}_increase"] = _ci(voe.metric("surprise_increase", condition=cond))
    for target in ("x", "y"):
        row[f"r_{target}"] = dec.metric("pearson_r", layer="z", target=target).value
        row[f"r_{target}_random_init"] = dec.metric("pearson_r", layer="z", target=target,
                                                    baseline="random-init").value
    if "planning" in results:
        row["planning"] = results["planning"].metric("success_rate").value
    return row


def summarise(rows: list[dict], level: float = 0.95) -> dict:
    """Across-seed summary per colour mode: for each key of :data:`AGGREGATED`, the mean and
    the t-interval over seeds (ratios: geometric mean, interval computed on log ratios and
    exponentiated), and the seeds whose colour change is not significant (p >= 0.01).

    Returns {mode: {"n_seeds", "seeds", key: [mean, low, high], "colour_not_significant"}};
    the bounds are None with fewer than two seeds (JSON has no NaN).
    """
    out = {}
    for mode in sorted({r["colours"] for r in rows}, key=_mode_order):
        mine = sorted((r for r in rows if r["colours"] == mode), key=lambda r: r["seed"])
        entry = {"n_seeds": len(mine), "seeds": [r["seed"] for r in mine]}
        for key, log in AGGREGATED.items():
            v = np.array([r[key] for r in mine], float)
            v = np.log(v) if log else v
            if len(v) >= 2:
                ci = seed_interval(v, level)
                bounds = [ci.value, ci.low, ci.high]
            else:  # one seed: its value, no interval
                bounds = [float(v.mean()) if len(v) else float("nan"), None, None]
            bounds = [None if b is None or not np.isfinite(b) else
                      float(np.exp(b)) if log else float(b) for b in bounds]
            entry[key] = bounds
        entry["colour_not_significant"] = [r["seed"] for r in mine if r["voe_colour_p"] >= 0.01]
        out[mode] = entry
    return out


def _mode_order(mode: str) -> int:
    return COLOUR_MODES.index(mode) if mode in COLOUR_MODES else len(COLOUR_MODES)


def verdict(summary: dict) -> list[str]:
    """One plain sentence per colour mode: is the colour change still surprising (the
    interval of its geometric-mean ratio above 1, or every seed's paired test significant),
    and is the teleport?"""
    lines = []
    for mode, s in summary.items():
        col, tel = s["voe_colour_ratio"], s["voe_teleport_ratio"]
        if col[1] is None:
            state = "not settled (fewer than two seeds)"
        elif col[1] > 1:
            state = "still surprising (interval above 1)"
        elif col[2] < 1:
            state = "less surprising than a clean frame (interval below 1)"
        elif not s["colour_not_significant"]:
            # few seeds make a wide interval; each seed's own paired test still speaks
            state = ("surprising in every seed (p < 0.01), though the seeds disagree on how "
                     "much (interval contains 1)")
        else:
            state = "at the clean level (interval contains 1)"
        lines.append(
            f"- `{mode}` ({s['n_seeds']} seeds): colour change {_mean_ci(col, '.2f')}x, "
            f"{state}; teleport {_mean_ci(tel, '.1f')}x; colour change not significant "
            f"(p >= 0.01) in "
            f"{len(s['colour_not_significant'])} of {s['n_seeds']} seeds.")
    return lines


def _mean_ci(ci: list, fmt: str) -> str:
    """``mean [low, high]``, or the mean alone when the interval is undefined."""
    if ci[1] is None:
        return format(ci[0], fmt)
    return f"{ci[0]:{fmt}} [{ci[1]:{fmt}}, {ci[2]:{fmt}}]"


def _p(p: float) -> str:
    # a t-test p below the smallest double comes back as exactly 0
    return "< 1e-300" if p == 0 else f"{p:.2g}"


def tables(rows: list[dict], summary: dict) -> str:
    """summary.md: the verdict, the across-seed table and the per-seed table."""
    lines = ["## Verdict", "", *verdict(summary), "",
             "## Across seeds (mean [95% t-interval over seeds]; ratios: geometric mean)", "",
             "| colours | seeds | VoE colour ratio | VoE teleport ratio | r(x) | r(y) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for mode, s in summary.items():
        cells = [_mean_ci(s[k], ".3g") for k in AGGREGATED]
        lines.append(f"| {mode} | {s['n_seeds']} | " + " | ".join(cells) + " |")
    lines += ["", "## Per seed (paired increase over the clean twin: mean [95% bootstrap CI "
              "over episodes])", "",
              "| colours | seed | colour ratio (p) | colour increase | teleport ratio (p) | "
              "r(x) | r(x) random init | planning |", "|" + " --- |" * 8]
    for r in sorted(rows, key=lambda r: (_mode_order(r["colours"]), r["seed"])):
        inc = r["voe_colour_increase"]
        lines.append(
            f"| {r['colours']} | {r['seed']} | {r['voe_colour_ratio']:.2f} "
            f"({_p(r['voe_colour_p'])}) | {inc[0]:.3g} [{inc[1]:.3g}, {inc[2]:.3g}] | "
            f"{r['voe_teleport_ratio']:.1f} ({_p(r['voe_teleport_p'])}) | {r['r_x']:.3f} | "
            f"{r['r_x_random_init']:.3f} | {r.get('planning', float('nan')):.2f} |")
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], summary: dict):
    """Per-seed points and the across-seed mean with its interval, per colour mode, for the
    colour-change ratio, the teleport ratio (log y, a line at 1 = clean) and position
    decodability."""
    modes = list(summary)
    fig, axes = new_figure(3, width="double", aspect=0.9)
    panels = [("voe_colour_ratio", "colour change / clean", True),
              ("voe_teleport_ratio", "teleport / clean", True),
              ("r_x", "held-out linear r of x", False)]
    # seeds spread left of each tick, their summary right of it
    jitter = np.linspace(-0.3, -0.06, max(len({r["seed"] for r in rows}), 1))
    for ax, (key, title, log) in zip(axes[0], panels):
        for i, mode in enumerate(modes):
            mine = sorted((r for r in rows if r["colours"] == mode), key=lambda r: r["seed"])
            ax.plot(i + jitter[:len(mine)], [r[key] for r in mine], "o", ms=3, alpha=0.6,
                    color=PALETTE[i % len(PALETTE)], label="seeds" if i == 0 else None)
            m, lo, hi = summary[mode][key]
            if lo is not None:
                ax.errorbar([i + 0.15], [m], yerr=[[m - lo], [hi - m]], fmt="s", ms=5,
                            capsize=3, color="k", label="mean over seeds (ratios: geometric), 95% t-interval"
                            if i == 0 else None)
            else:
                ax.plot([i + 0.15], [m], "s", ms=5, color="k")
        if log:
            ax.set_yscale("log")
            ax.axhline(1.0, color=BASELINE_COLOR, ls="--", lw=0.8, label="clean level")
            ax.set_ylabel("surprise ratio at event_t")
        else:
            ax.set_ylabel("Pearson r (validation episodes)")
        ax.set_xticks(range(len(modes)), [m.replace("-", "\n") for m in modes])
        ax.set_xlabel("object colour in training")
        ax.set_xlim(-0.6, len(modes) - 0.4)
        ax.set_title(title)
    # below the panels, where it covers no points
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncols=3,
               frameon=False)
    return fig


def write_outputs(out: Path, rows: list[dict], config: dict) -> dict:
    """summary.json (config, environment, rows, summary) and summary.md; returns the summary."""
    summary = summarise(rows)
    write_json_atomic(out / "summary.json", {"config": config, "environment": environment(),
                                             "rows": rows, "summary": summary})
    write_text_atomic(out / "summary.md", tables(rows, summary))
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True, help="scratch: data, runs, exports")
    ap.add_argument("--out", type=Path, default=Path("examples/results/jepa_colour"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--colours", nargs="+", default=list(COLOUR_MODES),
                    choices=COLOUR_MODES, help="colour modes of the training data to compare")
    ap.add_argument("--steps", type=int, default=600, help="training steps per model")
    ap.add_argument("--episodes", type=int, default=300, help="episodes per dataset")
    ap.add_argument("--lam", type=float, default=0.1)
    ap.add_argument("--replot", action="store_true",
                    help="only redraw the figure and tables from --out/summary.json")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    config = {"lam": args.lam, "steps": args.steps, "episodes": args.episodes,
              "seeds": args.seeds, "colours": args.colours}
    previous = args.out / "summary.json"
    rows = []
    if previous.exists():
        saved = json.loads(previous.read_text())
        # finished models are reused only if they were trained with these settings
        if args.replot or all(saved["config"][k] == config[k] for k in ("lam", "steps",
                                                                         "episodes")):
            rows = saved["rows"]
    if not args.replot:
        # seeds outermost: an interrupted study has the same seeds in every condition
        for seed in args.seeds:
            for colours in args.colours:
                if any(r["seed"] == seed and r["colours"] == colours for r in rows):
                    continue
                _, results, seconds, _ = train_and_probe(
                    args.workdir, lam=args.lam, seed=seed, train_steps=args.steps,
                    colours=colours, n_episodes=args.episodes, mlp=False,
                    show_progress=False, formats=())
                rows.append({**study_row(colours, seed, results), "seconds": seconds})
                write_outputs(args.out, rows, config)
                print(json.dumps(rows[-1]), flush=True)
    if args.replot:  # summary.json keeps the provenance of the run that measured it
        summary = summarise(rows)
        write_text_atomic(args.out / "summary.md", tables(rows, summary))
    else:
        summary = write_outputs(args.out, rows, config)
    with style():
        save_figure(figure(rows, summary), args.out / "colour_invariance")
    print("\n".join(verdict(summary)))


if __name__ == "__main__":
    main()
