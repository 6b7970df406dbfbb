"""Gaussianity and fracture diagnostics on MiniLM (treebank words) or on JEPA exports.

    # MiniLM's word vectors on UD English-EWT dev, with its random-init twin
    python examples/diagnostics_study.py minilm --sentences 400 --out diag-minilm

    # JEPA exports with and without SIGReg (made by `geoprobe jepa run pipe --lam 0` and
    # `geoprobe jepa run pipe --lam 0.1`)
    python examples/diagnostics_study.py jepa pipe/latents-lam0-d32-s0 \\
        pipe/latents-lam0.1-d32-s0 --out diag-jepa

Each run writes ``<name>-gaussianity.json`` / ``<name>-fracture.json`` with their figures and
prints the fracture table. MiniLM: target ``noun`` (UPOS NOUN vs other), contexts = the half
of the sentence, others = ``verb`` and relative position, unit = sentence. JEPA: held-out
split, target ``y``, contexts = the two rooms (``x < 0.5``), other = ``x``, unit = episode.
The numbers in docs/gaussianity.md and docs/fracture.md come from these settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from geoprobe import EmbeddingSet
from geoprobe.jepa.pipeline import WALL_FRACTURE, with_rooms
from geoprobe.plotting import save_figure, style
from geoprobe.probes.fracture import Fracture, fracture_table
from geoprobe.probes.gaussianity import Gaussianity
from geoprobe.source import AUTO, resolve_source


def _with(emb: EmbeddingSet, **cols) -> EmbeddingSet:
    return emb.with_items({**{k: emb.items[k] for k in emb.items.names}, **cols})


def minilm_columns(emb: EmbeddingSet) -> EmbeddingSet:
    upos = emb.items["upos"]
    rel = emb.items["position"] / np.maximum(emb.items["n_words"] - 1, 1)
    return _with(emb, noun=np.where(upos == "NOUN", "noun", "other"),
                 verb=np.where(upos == "VERB", "verb", "other"), rel_position=rel,
                 half=np.where(rel < 0.5, "first", "second"))


def run(name, emb, twin, out: Path, gauss_params, frac_params, layers):
    out.mkdir(parents=True, exist_ok=True)
    for probe, stem in ((Gaussianity(**gauss_params), "gaussianity"),
                        (Fracture(**frac_params), "fracture")):
        res = probe.run(emb, seed=0, twin=twin, layers=layers, progress=False)
        (out / f"{name}-{stem}.json").write_text(json.dumps(res.to_dict()))
        with style():
            save_figure(res.plot(), out / f"{name}-{stem}")
        if stem == "fracture":
            print(f"## {name}\n{fracture_table(res)}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    m = sub.add_parser("minilm")
    m.add_argument("--sentences", type=int, default=400)
    m.add_argument("--layers", nargs="+", default=None)
    m.add_argument("--out", type=Path, required=True)
    j = sub.add_parser("jepa")
    j.add_argument("exports", nargs="+", type=Path)
    j.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.what == "minilm":
        from geoprobe.datasets.extraction import treebank_lm

        emb = treebank_lm("dev", max_sentences=args.sentences, workdir=args.out / "extract")
        twin = resolve_source(emb, twin=AUTO).twin
        run("minilm", minilm_columns(emb), minilm_columns(twin), args.out,
            {"group": "sentence_id", "n_boot": 100},
            {"target": "noun", "context": "half", "others": ["verb", "rel_position"],
             "group": "sentence_id", "n_resamples": 8},
            args.layers)
    else:
        for path in args.exports:
            source = resolve_source(path, twin=AUTO)
            emb = source.embeddings
            val = np.flatnonzero(emb.items["split"] == "val")
            run(path.name, with_rooms(emb).subset(val), with_rooms(source.twin).subset(val),
                args.out, {"group": "episode"}, WALL_FRACTURE, None)


if __name__ == "__main__":
    main()
