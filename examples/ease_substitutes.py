"""Does zeroing EASE^R's negative weights hurt when items have substitutes?

Steck (2019) reports a large NDCG drop when the negative weights of B are zeroed; on our
``implicit-feedback`` generator it did not reproduce (docs/regularization.md), and the
generator has no substitutes. This study turns them on: items come in substitute groups of
``--size`` consecutive items of one cluster, and with probability ``substitute_strength`` per
user and group a user takes at most one item of the group. For each strength and seed it runs
the ``ease`` probe (default lambda grid, test NDCG@100 at the lambda chosen on validation
users) and records the drop when negatives are zeroed (paired bootstrap CI over test users),
the share of negative weights, and how much the within-group co-occurrence fell.

Writes ``<out>/ease_substitutes.json`` (every number, with the configuration, seeds and the
environment: versions, git hash), ``.md`` (the table) and ``.png`` (the figure)::

    python examples/ease_substitutes.py --out docs/figures
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import geoprobe
from geoprobe.linear_models import ease_weights, gram
from geoprobe.plotting import BASELINE_COLOR, PALETTE, new_figure, save_figure
from geoprobe.provenance import environment, write_json_atomic, write_text_atomic


def within_group_pairs(emb) -> float:
    """Pairs of items of one substitute group taken by one user, summed over users and groups
    (0 when the set has no substitute groups)."""
    group = emb.provenance.get("item_substitute_group")
    if group is None:
        return 0.0
    X = emb.layer(0)
    counts = np.zeros((X.shape[0], max(group) + 1))
    np.add.at(counts.T, np.asarray(group), X.T)
    return float((counts * (counts - 1) / 2).sum())


def group_weights(emb, lam: float) -> dict:
    """Mean EASE^R weight B_ij (fitted on the training users with ``lam``) and share below 0,
    over ordered pairs i != j of one substitute group and over all other pairs."""
    X = emb.layer(0)[emb.column("split") == "train"]
    B = ease_weights(gram(X), lam)
    group = np.asarray(emb.provenance["item_substitute_group"])
    same = (group[:, None] == group[None, :]) & ~np.eye(len(group), dtype=bool)
    other = group[:, None] != group[None, :]
    return {f"{name}_{stat}": float(fn(B[mask])) for name, mask in (("within", same),
                                                                     ("other", other))
            for stat, fn in (("mean", np.mean), ("negative", lambda w: np.mean(w < 0)))}


def run_one(strength: float, seed: int, args) -> dict:
    from geoprobe.datasets.recsys import implicit_feedback

    size = dict(n_users=args.users, n_items=args.items, heldout_users=args.users // 6)
    data = dict(size, substitute_size=args.size, substitute_strength=strength, seed=seed)
    emb = implicit_feedback(**data)
    # the same users, split and preferences without substitutes: the co-occurrence reference
    free = implicit_feedback(**size, substitute_size=args.size, seed=seed)
    result = geoprobe.make_probe("ease", n_boot=args.n_boot).run(emb, seed=seed,
                                                                  progress=False)
    layer = result.info["layers"][-1]

    def metric(name, **labels):
        m = result.metric(name, layer=layer, **labels)
        return {"value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high}

    lam = result.metric("selected_lambda", layer=layer, model="ease").value
    return {"strength": strength, "seed": seed, "data": data,
            "weights": group_weights(emb, lam),
            "within_group_pairs_ratio": within_group_pairs(emb) / within_group_pairs(free),
            "drop": metric("ndcg@100_drop_when_negatives_zeroed"),
            "negative_share": metric("negative_share"),
            "ndcg@100": metric("ndcg@100", model="ease"),
            "ndcg@100_nonneg": metric("ndcg@100", model="ease-nonneg"),
            "selected_lambda": lam}


def table(rows) -> str:
    lines = ["| strength | seed | within-group pairs (vs none) | lambda | NDCG@100 EASE^R | "
             "negatives zeroed | drop [95% CI] | negative share | mean B_ij within group "
             "(negative) | mean B_ij other pairs |", "|" + "---|" * 10]
    for r in rows:
        d, w = r["drop"], r["weights"]
        lines.append(
            f"| {r['strength']:g} | {r['seed']} | {r['within_group_pairs_ratio']:.2f} | "
            f"{r['selected_lambda']:g} | {r['ndcg@100']['value']:.3f} | "
            f"{r['ndcg@100_nonneg']['value']:.3f} | {d['value']:.4f} "
            f"[{d['ci_low']:.4f}, {d['ci_high']:.4f}] | {r['negative_share']['value']:.2f} | "
            f"{w['within_mean']:+.4f} ({w['within_negative']:.0%}) | {w['other_mean']:+.4f} |")
    return "\n".join(lines)


def figure(rows, size: int):
    from matplotlib.lines import Line2D

    fig, axes = new_figure(3, width="double", aspect=1.0)
    ax_drop, ax_neg, ax_w = axes[0]
    seeds = sorted({r["seed"] for r in rows})
    step = 0.01  # seeds side by side at each strength
    for i, seed in enumerate(seeds):
        mine = [r for r in rows if r["seed"] == seed]
        color = PALETTE[i % len(PALETTE)]
        x = np.array([r["strength"] for r in mine]) + (i - (len(seeds) - 1) / 2) * step
        d = np.array([[r["drop"][k] for k in ("value", "ci_low", "ci_high")] for r in mine])
        ax_drop.errorbar(x, d[:, 0], yerr=[d[:, 0] - d[:, 1], d[:, 2] - d[:, 0]], marker="o",
                         ms=3, capsize=2, color=color, label=f"seed {seed}")
        for ax, all_pairs, within in (
                (ax_neg, [r["negative_share"]["value"] for r in mine],
                 [r["weights"]["within_negative"] for r in mine]),
                (ax_w, [r["weights"]["other_mean"] for r in mine],
                 [r["weights"]["within_mean"] for r in mine])):
            ax.plot(x, all_pairs, marker="o", ms=3, color=color)
            ax.plot(x, within, marker="s", ms=3, ls="--", color=color)
    styles = [Line2D([], [], color="k", marker="o", ms=3),
              Line2D([], [], color="k", marker="s", ms=3, ls="--")]
    for ax in (ax_drop, ax_neg, ax_w):
        ax.set_xlabel("substitute strength")
        ax.set_xticks([0, 0.5, 1])
    ax_drop.axhline(0, color=BASELINE_COLOR, lw=0.8)
    ax_drop.set_ylabel("NDCG@100 drop (95% CI)")
    ax_drop.set_title(f"zeroing negatives\n(groups of {size})")
    ax_drop.legend(frameon=False, fontsize=6)
    ax_neg.set_ylabel("share of weights $B_{ij} < 0$")
    ax_neg.set_ylim(0, 1)
    ax_neg.axhline(0.5, color=BASELINE_COLOR, lw=0.8, ls=":")
    ax_neg.set_title("negative weights\n(selected lambda)")
    ax_neg.legend(styles, ["all pairs", "substitute pairs"], frameon=False, fontsize=6,
                  handlelength=3)
    ax_w.axhline(0, color=BASELINE_COLOR, lw=0.8)
    ax_w.set_ylabel("mean weight $B_{ij}$")
    ax_w.set_title("mean weight\n(selected lambda)")
    ax_w.legend(styles, ["other pairs", "substitute pairs"], frameon=False, fontsize=6,
                handlelength=3)
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("ease-substitutes"))
    ap.add_argument("--strengths", type=float, nargs="+",
                    default=[0.0, 0.25, 0.5, 0.75, 0.9, 1.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="each seeds both the generator and the probe")
    ap.add_argument("--size", type=int, default=4, help="items per substitute group")
    ap.add_argument("--n-boot", type=int, default=500)
    ap.add_argument("--users", type=int, default=6000,
                    help="users (a sixth each for validation and test: 1000 by default)")
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--redraw", action="store_true",
                    help="only redraw the figure from <out>/ease_substitutes.json")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / "ease_substitutes"
    if args.redraw:
        doc = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        save_figure(figure(doc["rows"], doc["config"]["size"]), stem, formats=("png",))
        return 0
    rows = []
    for seed in args.seeds:
        for strength in args.strengths:
            rows.append(run_one(strength, seed, args))
            r = rows[-1]
            print(f"strength {strength:g} seed {seed}: drop {r['drop']['value']:.4f} "
                  f"[{r['drop']['ci_low']:.4f}, {r['drop']['ci_high']:.4f}], negative share "
                  f"{r['negative_share']['value']:.2f}", flush=True)
    config = {"strengths": args.strengths, "seeds": args.seeds, "size": args.size,
              "n_boot": args.n_boot, "users": args.users, "items": args.items,
              "probe": "ease (default lambdas and protocol)"}
    write_json_atomic(stem.with_suffix(".json"), {"config": config, "environment": environment(),
                                                  "rows": rows})
    write_text_atomic(stem.with_suffix(".md"), table(rows) + "\n")
    print(table(rows))
    for path in save_figure(figure(rows, args.size), stem, formats=("png",)):
        print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
