"""RankMe's finite-sample bias: the covariance-spectrum probe's n-sensitivity curve.

Runs ``covariance-spectrum`` (which draws the curve by default) on

* ``planted``: planted effective ranks 64, 16 and 4 in d = 64 (2,000 rows), where the truth
  is known: the rank-64 layer is an isotropic Gaussian and must follow the ceiling;
* ``minilm``: all-MiniLM-L6-v2 word vectors of UD English-EWT dev (``--sentences``; layers
  emb, 3 and 6; d = 384) and its random-init twin, bootstrap by sentence,

and writes ``<out>/rankme_n_curve_<part>.json`` (the probe's result with the seed, the
configuration and the environment: versions, git hash), ``.md`` (RankMe of the data, of a
Gaussian with the layer's spectrum and of the isotropic ceiling at each n) and ``.png``::

    python examples/rankme_n_curve.py planted minilm --out docs/figures
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geoprobe
from geoprobe.plotting import save_figure
from geoprobe.provenance import environment, write_json_atomic, write_text_atomic


def planted(args):
    from geoprobe.datasets.synthetic import planted_spectrum

    emb = planted_spectrum(n_items=2000, dim=64, ranks=(64, 16, 4), seed=args.seed)
    return emb, {"group": "episode"}, None


def minilm(args):
    from geoprobe.datasets.extraction import treebank_lm

    # extracted into geoprobe's temporary work directory (removed by a later geoprobe process)
    emb = treebank_lm("dev", max_sentences=args.sentences)
    return emb, {"group": "sentence_id"}, ["embeddings", "layer_3", "layer_6"]


def table(result) -> str:
    """One row per n: data RankMe (mean [min, max] of the draws), the Gaussian with the
    layer's spectrum, per layer, and the isotropic ceiling."""
    a = result.arrays
    layers = result.info["layers"]
    head = (["n"] + [f"{layer}: data [min, max]" for layer in layers]
            + [f"{layer}: Gaussian, its spectrum" for layer in layers]
            + ["isotropic Gaussian"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for j, n in enumerate(a["rankme_curve_n"]):
        data = [f"{c[j, 0]:.1f} [{c[j, 1]:.1f}, {c[j, 2]:.1f}]" for c in a["rankme_curve"]]
        matched = [f"{c[j, 0]:.1f}" for c in a["rankme_curve_matched"]]
        cells = [str(int(n))] + data + matched + [f"{a['rankme_curve_isotropic'][j, 0]:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    twin = [m for m in result.metrics if m.name == "rankme"
            and m.labels.get("baseline") == "random-init"]
    if twin:
        lines += ["", "random-init twin RankMe at the full n: "
                  + ", ".join(f"{m.labels['layer']} {m.value:.1f}" for m in twin)]
    return "\n".join(lines)


PARTS = {"planted": planted, "minilm": minilm}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parts", nargs="+", choices=sorted(PARTS))
    ap.add_argument("--out", type=Path, default=Path("rankme-n-curve"))
    ap.add_argument("--sentences", type=int, default=400, help="EWT dev sentences (minilm)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--curve-draws", type=int, default=3)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for part in args.parts:
        emb, params, layers = PARTS[part](args)
        params.update(n_boot=args.n_boot, curve_draws=args.curve_draws)
        result = geoprobe.make_probe("covariance-spectrum", **params).run(
            emb, layers=layers, seed=args.seed)
        # the sets' sources are file paths on this machine: record what they are instead
        result.info["source"] = f"{part}: {emb.provenance.get('model', emb.source)}"
        result.info.pop("twin_source", None)
        stem = args.out / f"rankme_n_curve_{part}"
        write_json_atomic(stem.with_suffix(".json"),
                          {"config": {"part": part, "seed": args.seed, "params": params,
                                      "layers": layers, "sentences": args.sentences},
                           "environment": environment(), "result": result.to_dict()})
        text = table(result)
        write_text_atomic(stem.with_suffix(".md"), text + "\n")
        print(f"## {part}\n{text}")
        for path in save_figure(result.plot(), stem, formats=("png",)):
            print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
