"""Run the regularization probes on generated data and write their figures and results.

    python examples/regularization.py [ease|cosine|sparsity|attractors ...] [--out docs/figures]
    python examples/regularization.py --redraw [parts ...]   # figures from the results files

Each part writes ``<out>/<probe>.png`` and ``<out>/<probe>.json`` (the results file the figure
is drawn from) and prints its headline metrics. ``--redraw`` draws the figures again from those
results files without recomputing anything (after a change to figure code only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import geoprobe
from geoprobe import threads
from geoprobe.plotting import save_figure
from geoprobe.probe import ProbeResult
from geoprobe.provenance import write_json_atomic

#: the attractor family: bottleneck sizes and weight decays
SIZES, DECAYS = (2, 4, 8, 32), (0.0, 1e-3)


def _finish(result, out: Path, stem: str) -> None:
    write_json_atomic(out / f"{stem}.json", result.to_dict())
    save_figure(result.plot(), out / stem, formats=("png",))
    for row in result.table():
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                          for k, v in row.items() if k != "probe"}))


def ease(out: Path) -> None:
    from geoprobe.datasets.recsys import implicit_feedback

    _finish(geoprobe.make_probe("ease").run(implicit_feedback(seed=0), seed=0), out, "ease")


def cosine(out: Path) -> None:
    from geoprobe.datasets.recsys import implicit_feedback

    _finish(geoprobe.make_probe("cosine-nonuniqueness").run(implicit_feedback(seed=0), seed=0),
            out, "cosine")


def sparsity(out: Path) -> None:
    from geoprobe.datasets.shifted_text import treebank_shift

    emb = treebank_shift(n_sentences=300, seed=0)
    twin = treebank_shift(n_sentences=300, seed=0, random_init=True)
    result = geoprobe.make_probe("activation-sparsity", group="sentence_id").run(
        emb, twin=twin, seed=0)
    _finish(result, out, "sparsity")


def attractors(out: Path) -> None:
    """The conv autoencoder family: bottleneck k x weight decay, 64 training images."""
    from geoprobe.autoencoders import reconstruction_error, train_autoencoder
    from geoprobe.datasets.shapes import shape_image_set

    emb = shape_image_set(n_train=64, n_test=256, seed=0)
    images = emb.layer(0).reshape(-1, 16, 16)
    train, test = images[emb.column("split") == "train"], images[emb.column("split") == "test"]
    runs = []
    for wd in DECAYS:
        for k in SIZES:
            model = train_autoencoder(train, latent_dim=k, weight_decay=wd, steps=1000, seed=0)
            result = geoprobe.make_probe("latent-attractors").run(emb, model=model, seed=0,
                                                                 progress=False)
            write_json_atomic(_attractor_file(out, k, wd), result.to_dict())
            row = {"latent_dim": k, "weight_decay": wd,
                   "memorization": result.metric("memorization"),
                   "memorization_gap": result.metric("memorization_gap"),
                   "n_attractors": result.metric("n_attractors").value,
                   "test_to_train": result.metric("memorization", baseline="test-to-train"),
                   "train_mse": reconstruction_error(model, train),
                   "test_mse": reconstruction_error(model, test)}
            runs.append((k, wd, result))
            print(json.dumps({key: (round(v.value, 4), round(v.ci_low, 4), round(v.ci_high, 4))
                              if hasattr(v, "value") else v for key, v in row.items()}),
                  json.dumps({m.key(): round(m.value, 4) for m in result.metrics
                              if m.name in ("spectral_radius", "steps_distance_pearson",
                                            "noise_to_data_share", "n_fixed_points")
                              or m.labels.get("baseline") == "random-init"
                              or m.name == "n_attractors_sensitivity"}), flush=True)
    attractor_figures(runs, out)


def _attractor_file(out: Path, k: int, wd: float) -> Path:
    return out / "attractors" / f"attractors_k{k}_wd{wd:g}.json"


def attractor_figures(runs, out: Path) -> None:
    """The k = 2 and k = 32 models' figures (no weight decay) and the family's."""
    from geoprobe.probes.attractors import plot_family

    for k, wd, result in runs:
        if (k, wd) in ((2, 0.0), (32, 0.0)):
            save_figure(result.plot(), out / ("attractors" if k == 2 else
                                              _attractor_file(out, k, wd).stem),
                        formats=("png",))
    save_figure(plot_family(runs), out / "attractors_family", formats=("png",))


def redraw(part: str, out: Path) -> None:
    """Draw ``part``'s figures from the results files a run of it wrote into ``out``."""
    def load(path: Path) -> ProbeResult:
        return ProbeResult.from_dict(json.loads(path.read_text()))

    if part == "attractors":
        attractor_figures([(k, wd, load(_attractor_file(out, k, wd)))
                           for wd in DECAYS for k in SIZES], out)
    else:
        save_figure(load(out / f"{part}.json").plot(), out / part, formats=("png",))


PARTS = {"ease": ease, "cosine": cosine, "sparsity": sparsity, "attractors": attractors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    parser.add_argument("--redraw", action="store_true",
                        help="draw the figures again from the results files in --out, "
                             "computing nothing")
    args = parser.parse_args()
    # geoprobe's thread policy (one thread by default: the closed forms are many small
    # eigh/solve calls, which threads slow down on a shared machine) for every part.
    with threads.policy():
        for part in args.parts:
            if args.redraw:
                redraw(part, args.out)
            else:
                PARTS[part](args.out)


if __name__ == "__main__":
    main()
