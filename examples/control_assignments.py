"""Control tasks over several random assignments: how much one draw of the labels moves them.

Hewitt & Liang (2019) draw one control labelling (one random label per word type). With few
types the draw alone moves the control accuracy, and so the selectivity, by more than the
bootstrap interval of one draw. This example plants the case: 1,200 words of 12 types in
120 sentences of 10, a 3-class label fixed per type, and three layers:

* ``type``: the one-hot word type (plus small noise): every labelling of the types is
  learnable, so task and control are both decoded perfectly;
* ``half``: the mean of ``type`` and ``noise``;
* ``noise``: Gaussian noise: task and control fall to their majority rates, which for the
  control depends on the draw.

For each seed it runs ``linear-decodability`` (linear probe, folds and bootstrap by sentence)
with ``n_control`` = 1 (one draw, as in the paper), 5 (the default) and 20 (the reference
mean), and records, on the ``noise`` layer, the selectivity with its interval and whether the
interval covers the 20-draw mean. Writes ``<out>/control_assignments.json`` (every number,
with the configuration and the environment: versions, git hash), ``.md`` and ``.png`` (the
probe's figure at seed 0 with ``n_control=5``)::

    python examples/control_assignments.py --out docs/figures
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import geoprobe
from geoprobe.plotting import save_figure
from geoprobe.provenance import environment, write_json_atomic, write_text_atomic

N_TYPES, N_WORDS, SENTENCE = 12, 1200, 10


def planted_set(seed: int = 3) -> geoprobe.EmbeddingSet:
    """The three layers described above, shape (3, 1200, 12), with columns ``pos``, ``word``
    and ``sent``."""
    rng = np.random.default_rng(seed)
    word = rng.integers(0, N_TYPES, N_WORDS)
    pos = rng.choice(np.array(["N", "V", "D"]), N_TYPES, p=[0.5, 0.3, 0.2])[word]
    typed = np.eye(N_TYPES)[word] * 3 + 0.1 * rng.standard_normal((N_WORDS, N_TYPES))
    noise = rng.standard_normal((N_WORDS, N_TYPES))
    items = {"item_id": np.arange(N_WORDS).astype(str), "pos": pos,
             "word": np.char.add("w", word.astype(str)), "sent": np.arange(N_WORDS) // SENTENCE}
    return geoprobe.EmbeddingSet(np.stack([typed, (typed + noise) / 2, noise]).astype(np.float32),
                                 items, layer_names=["type", "half", "noise"],
                                 source=f"planted control-task set (seed {seed})")


def probe(n_control: int, n_boot: int):
    return geoprobe.make_probe("linear-decodability", targets=["pos"], group="sent",
                               control="word", mlp=False, n_control=n_control, n_boot=n_boot)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("control-assignments"))
    ap.add_argument("--seeds", type=int, default=10, help="probe seeds 0 .. seeds-1")
    ap.add_argument("--n-boot", type=int, default=500)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    emb = planted_set()
    rows = []
    for seed in range(args.seeds):
        row = {"seed": seed}
        for n_control in (1, 5, 20):
            res = probe(n_control, args.n_boot).run(emb, layers=["noise"], seed=seed,
                                                    progress=False)
            sel = res.metric("selectivity", layer="noise", target="pos")
            spread = res.info["control_spread"]["noise:pos"]["accuracy"]
            row[n_control] = {"selectivity": [sel.value, sel.ci_low, sel.ci_high],
                              "control_accuracy": res.metric(
                                  "accuracy", layer="noise", target="pos",
                                  baseline="control").value,
                              "control_min": spread["min"], "control_max": spread["max"]}
        reference = row[20]["selectivity"][0]
        for n_control in (1, 5):
            _, lo, hi = row[n_control]["selectivity"]
            row[n_control]["covers_20_draw_mean"] = bool(lo <= reference <= hi)
        rows.append(row)
        print(f"seed {seed}: selectivity 1 draw {row[1]['selectivity'][0]:+.3f}, 5 draws "
              f"{row[5]['selectivity'][0]:+.3f}, 20 draws {reference:+.3f}", flush=True)

    lines = ["| seed | 1 draw: selectivity [95% CI] | 5 draws: mean [95% CI] | "
             "5 draws: control acc min-max | 20 draws: mean |", "|---|---|---|---|---|"]
    for r in rows:
        one, five = r[1]["selectivity"], r[5]["selectivity"]
        lines.append(f"| {r['seed']} | {one[0]:+.3f} [{one[1]:+.3f}, {one[2]:+.3f}] | "
                     f"{five[0]:+.3f} [{five[1]:+.3f}, {five[2]:+.3f}] | "
                     f"{r[5]['control_min']:.3f}-{r[5]['control_max']:.3f} | "
                     f"{r[20]['selectivity'][0]:+.3f} |")
    cover = {k: int(sum(r[k]["covers_20_draw_mean"] for r in rows)) for k in (1, 5)}
    lines += ["", f"Intervals covering the 20-draw mean: 1 draw {cover[1]} of {len(rows)}, "
              f"5 draws {cover[5]} of {len(rows)}."]
    text = "\n".join(lines)
    stem = args.out / "control_assignments"
    write_json_atomic(stem.with_suffix(".json"), {
        "config": {"seeds": args.seeds, "n_boot": args.n_boot, "layer": "noise",
                   "set": emb.source, "n_control": [1, 5, 20]},
        "environment": environment(),
        "rows": [{"seed": r["seed"], **{f"n_control={k}": r[k] for k in (1, 5, 20)}}
                 for r in rows]})
    write_text_atomic(stem.with_suffix(".md"), text + "\n")
    print(text)
    figure = probe(5, args.n_boot).run(emb, seed=0, progress=False).plot()
    for path in save_figure(figure, stem, formats=("png",)):
        print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
