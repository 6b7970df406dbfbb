"""SIGReg JEPA vs lambda = 0 vs random init: how alike are the latents, and which geometric
conclusions survive a change of frame?

Trains the TwoRoom JEPA twice on the same data with the same seed, once with SIGReg at the
shipped weight (lambda = 0.1, ``geoprobe/suites/jepa-tworoom.toml``) and once without it
(lambda = 0), exports both on the same frames (aligned by item id) and

1. compares the latent spaces (``similarity`` probe: linear CKA biased and debiased, RSA,
   Procrustes distance and shape angle, cluster-bootstrap CIs over episodes, the
   ``permuted`` baseline): SIGReg vs lambda = 0, and each model vs its random-init twin;
2. runs covariance-spectrum (RankMe), linear-decodability of the agent's position and
   gaussianity (SIGReg statistic) on both models, reruns each on ``--n-frames`` random
   frames per group (orthogonal, diagonal, linear; :mod:`geoprobe.frames`) and tabulates
   which conclusions hold in the original frame and in every frame of each group.

A comparison "A > B" survives a group when A's smallest value over that group's frames
exceeds B's largest (frames are drawn independently per model, so this is the conservative
reading); a threshold conclusion survives when every frame's value passes the threshold.

    python examples/jepa_similarity.py --workdir jepa-sim --out examples/results/jepa_similarity

Writes ``summary.json`` (every number, with seed, settings and environment),
``summary.md`` (the two tables) and ``jepa_similarity.png`` into ``--out``. Checkpoints and
exports are cached in ``--workdir`` (reruns reuse them). ``--smoke`` trains tiny models for
a few steps (the test in tests/test_examples.py).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

#: the shipped suite's data and model (jepa-tworoom.toml), with fewer training steps so the
#: whole study fits in about 20 minutes on 2 loaded cores
FULL = {"lam": 0.1, "data": dict(n_episodes=300, steps=32, size=64, dim=32, train_steps=300),
        "model": None, "n_boot": 50, "n_perm": 20, "max_items": 800, "n_directions": 64}
#: tiny models and data: a test of the plumbing, not of the conclusions
SMOKE = {"lam": 0.1, "data": dict(n_episodes=8, steps=16, size=16, dim=8, train_steps=4),
         "model": dict(channels=[8, 8], patch=4, hidden=16, batch=8, history=2,
                       n_directions=16, warmup=2, val_episodes=2),
         "n_boot": 10, "n_perm": 5, "max_items": 64, "n_directions": 16}
SIMILARITY_METRICS = ("cka_linear", "cka_linear_debiased", "rsa", "procrustes", "shape_angle")
#: position counts as linearly decodable at this held-out Pearson r (jepa-dynamics.toml)
DECODABLE_R = 0.95


def train_both(settings: dict, seed: int, workdir: Path) -> dict:
    """{"sigreg": EmbeddingSet, "lam0": EmbeddingSet}, same data, seed and exported frames."""
    from geoprobe.jepa.pipeline import world_model_latents

    return {name: world_model_latents(lam=lam, seed=seed, workdir=workdir,
                                      model=settings["model"], show_progress=True,
                                      **settings["data"])
            for name, lam in (("sigreg", settings["lam"]), ("lam0", 0.0))}


def compare_spaces(sets: dict, settings: dict, seed: int) -> list[dict]:
    """Similarity of each pair: metric value with CI and the permuted baseline."""
    from geoprobe.io import load_embeddings
    from geoprobe.registry import make_probe
    from geoprobe.source import twin_path

    probe = make_probe("similarity", metrics=SIMILARITY_METRICS, group="episode",
                       n_boot=settings["n_boot"], n_perm=settings["n_perm"],
                       max_items=settings["max_items"])
    pairs = [("SIGReg vs lambda=0", sets["sigreg"], sets["lam0"])]
    pairs += [(f"{label} vs its random init", sets[name], load_embeddings(twin_path(sets[name])))
              for name, label in (("sigreg", "SIGReg"), ("lam0", "lambda=0"))]
    rows = []
    for label, a, b in pairs:
        result = probe.run(a, annotations={"other": b}, seed=seed, twin=False, progress=False)
        for name in SIMILARITY_METRICS:
            m = result.metric(name, against="other")
            null = result.metric(name, against="other", baseline="permuted")
            rows.append({"pair": label, "metric": name, "value": m.value,
                         "ci": [m.ci_low, m.ci_high], "permuted": null.value,
                         "permuted_range": [null.ci_low, null.ci_high]})
    return rows


def frame_probes(settings: dict) -> dict:
    """{probe id: probe}: the geometric probes whose conclusions are checked across frames."""
    from geoprobe.registry import make_probe

    return {
        "spectrum": make_probe("covariance-spectrum", group="episode", n_boot=settings["n_boot"]),
        "decodability": make_probe("linear-decodability", targets=["x", "y"], group="episode",
                                   mlp=False, n_boot=settings["n_boot"]),
        "gaussianity": make_probe("gaussianity", n_directions=settings["n_directions"],
                                  standardize=("scale", "whiten"), group="episode",
                                  n_boot=settings["n_boot"], n_null=100, max_null=200,
                                  null_max_rows=1000, cache_dir=False),
    }


def frame_rows(sets: dict, settings: dict, seed: int, n_frames: int) -> dict:
    """{model: {probe id: frame_sensitivity rows}} (each row: the original value and the
    min and max over the frames of one group)."""
    from geoprobe.frames import GROUPS, frame_sensitivity

    out = {}
    for model, emb in sets.items():
        out[model] = {}
        for pid, probe in frame_probes(settings).items():
            t0 = time.perf_counter()
            result = probe.run(emb, seed=seed, twin=False, progress=False)
            out[model][pid] = frame_sensitivity(probe, emb, result, groups=GROUPS,
                                                n_frames=n_frames, seed=seed)
            print(f"{model} {pid}: {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def _find(rows: list[dict], metric: str, group: str, **labels) -> dict:
    for r in rows:
        if r["metric"] == metric and r["group"] == group and all(
                r["labels"].get(k) == v for k, v in labels.items()):
            return r
    raise KeyError(f"no frame row {metric} {labels} {group}")


def conclusions(frames: dict, dim: int) -> list[dict]:
    """Each conclusion's verdict in the original frame and in every frame of each group."""
    from geoprobe.frames import GROUPS
    from geoprobe.jepa.pipeline import COLLAPSE_FRACTION

    # every group's row carries the original-frame value; GROUPS[0]'s is read for "original"
    def greater(label, pid, metric, a, b, **labels):
        # "a > b": original values, then a's worst frame against b's best frame per group
        ra = {g: _find(frames[a][pid], metric, g, **labels) for g in GROUPS}
        rb = {g: _find(frames[b][pid], metric, g, **labels) for g in GROUPS}
        margins = {"original": ra[GROUPS[0]]["value"] - rb[GROUPS[0]]["value"]}
        margins.update({g: ra[g]["frame_min"] - rb[g]["frame_max"] for g in GROUPS})
        return {"conclusion": label, "holds": {k: v > 0 for k, v in margins.items()},
                "margin": margins}

    def at_least(label, model, pid, metric, threshold, **labels):
        rows = {g: _find(frames[model][pid], metric, g, **labels) for g in GROUPS}
        margins = {"original": rows[GROUPS[0]]["value"] - threshold}
        margins.update({g: rows[g]["frame_min"] - threshold for g in GROUPS})
        return {"conclusion": label, "holds": {k: v >= 0 for k, v in margins.items()},
                "margin": margins}

    out = [greater("RankMe: SIGReg > lambda=0", "spectrum", "rankme", "sigreg", "lam0"),
           greater("more isotropic-Gaussian (SIGReg stat., scale): SIGReg", "gaussianity",
                   "sigreg", "lam0", "sigreg", space="scale"),
           greater("more Gaussian after whitening: SIGReg", "gaussianity", "sigreg",
                   "lam0", "sigreg", space="whiten")]
    for model, label in (("sigreg", "SIGReg"), ("lam0", "lambda=0")):
        for target in ("x", "y"):
            out.append(at_least(f"{label}: {target} linearly decodable (r >= {DECODABLE_R})",
                                model, "decodability", "pearson_r", DECODABLE_R,
                                target=target))
        out.append(at_least(f"{label}: not collapsed (RankMe >= {COLLAPSE_FRACTION:g} dim)",
                            model, "spectrum", "rankme", COLLAPSE_FRACTION * dim))
    return out


# -- tables and figure -------------------------------------------------------------------------
def similarity_table(rows: list[dict]) -> str:
    lines = ["| pair | metric | value [95% CI] | permuted baseline [range] |",
             "| --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['pair']} | {r['metric']} | {r['value']:.3f} [{r['ci'][0]:.3f}, "
                     f"{r['ci'][1]:.3f}] | {r['permuted']:.3f} [{r['permuted_range'][0]:.3f}, "
                     f"{r['permuted_range'][1]:.3f}] |")
    return "\n".join(lines)


def survival_table(rows: list[dict]) -> str:
    cols = list(rows[0]["holds"])
    lines = ["| conclusion | " + " | ".join(cols) + " |", "| --- |" + " --- |" * len(cols)]
    for r in rows:
        cells = [f"{'yes' if r['holds'][c] else '**no**'} ({r['margin'][c]:+.3g})" for c in cols]
        lines.append(f"| {r['conclusion']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(sim_rows: list[dict], survival: list[dict]):
    """Top: similarity heatmap (pairs x metrics, coloured by similarity on each metric's
    range, annotated with value and permuted baseline). Bottom: conclusion x frame group,
    holds / fails, annotated with the margin."""
    from matplotlib.colors import ListedColormap

    from geoprobe.plotting import PALETTE, new_figure

    pairs = list(dict.fromkeys(r["pair"] for r in sim_rows))
    # distances coloured as similarities: 1 at distance 0, 0 at the metric's maximum
    scale = {"procrustes": math.sqrt(2.0), "shape_angle": math.pi / 2}
    colour = np.full((len(pairs), len(SIMILARITY_METRICS)), np.nan)
    fig, axes = new_figure(1, 2, width="double", aspect=0.38)
    ax = axes[0][0]
    for r in sim_rows:
        i, j = pairs.index(r["pair"]), SIMILARITY_METRICS.index(r["metric"])
        v = r["value"]
        colour[i, j] = 1 - v / scale[r["metric"]] if r["metric"] in scale else v
        ax.text(j, i, f"{v:.2f}\nperm {r['permuted']:.2f}", ha="center", va="center",
                fontsize=5, color="black" if colour[i, j] > 0.6 else "white")
    image = ax.imshow(colour, cmap="cividis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(SIMILARITY_METRICS)), SIMILARITY_METRICS, rotation=30,
                  ha="right", fontsize=6)
    ax.set_yticks(range(len(pairs)), [p.replace(" vs ", "\nvs ") for p in pairs], fontsize=6)
    ax.set_title("latent similarity (colour: 1 = identical)", fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.7)

    ax = axes[1][0]
    cols = list(survival[0]["holds"])
    held = np.array([[r["holds"][c] for c in cols] for r in survival], float)
    ax.imshow(held, cmap=ListedColormap([PALETTE[3], PALETTE[2]]), vmin=0, vmax=1,
              aspect="auto")
    for (i, j), h in np.ndenumerate(held):
        ax.text(j, i, f"{'holds' if h else 'fails'}\n{survival[i]['margin'][cols[j]]:+.3g}",
                ha="center", va="center", fontsize=6, color="white")
    ax.set_xticks(range(len(cols)), cols, fontsize=6)
    ax.set_yticks(range(len(survival)), [r["conclusion"] for r in survival], fontsize=6)
    ax.set_title("does the conclusion hold in the original frame / in every frame of a group? "
                 "(margin)", fontsize=7)
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True,
                    help="cache for data, checkpoints and exports (reused by reruns)")
    ap.add_argument("--out", type=Path, default=Path("examples/results/jepa_similarity"))
    ap.add_argument("--n-frames", type=int, default=5, help="random frames per group")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="tiny models: a test of the plumbing")
    args = ap.parse_args(argv)
    from geoprobe.plotting import save_figure, style
    from geoprobe.provenance import environment, write_json_atomic, write_text_atomic

    settings = SMOKE if args.smoke else FULL
    t0 = time.perf_counter()
    sets = train_both(settings, args.seed, args.workdir)
    t1 = time.perf_counter()
    sim = compare_spaces(sets, settings, args.seed)
    t2 = time.perf_counter()
    frames = frame_rows(sets, settings, args.seed, args.n_frames)
    survival = conclusions(frames, sets["sigreg"].dim)
    t3 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"seed": args.seed, "n_frames": args.n_frames, "smoke": args.smoke,
               "settings": settings, "n_items": sets["sigreg"].n_items,
               "similarity": sim, "conclusions": survival, "frames": frames,
               "seconds": {"train+export": t1 - t0, "similarity": t2 - t1, "frames": t3 - t2},
               "environment": environment()}
    write_json_atomic(args.out / "summary.json", summary)
    write_text_atomic(args.out / "summary.md", "## Similarity\n\n" + similarity_table(sim)
                      + "\n\n## Frame survival\n\n" + survival_table(survival) + "\n")
    with style():
        fig = figure(sim, survival)
        save_figure(fig, args.out / "jepa_similarity", formats=("png",))
    print(similarity_table(sim) + "\n\n" + survival_table(survival))
    return summary, fig


if __name__ == "__main__":
    main()
