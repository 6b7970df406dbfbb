"""Run the regularization probes on generated data and write their figures and results.

    python examples/regularization.py [ease|cosine|sparsity|attractors ...] [--out docs/figures]

Each part writes ``<out>/<probe>.png`` and ``<out>/<probe>.json`` (the results file the figure
is drawn from) and prints its headline metrics.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from threadpoolctl import threadpool_limits

import geoprobe
from geoprobe.plotting import save_figure
from geoprobe.provenance import write_json_atomic


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
    import torch

    from geoprobe.datasets.shifted_text import treebank_shift

    torch.set_num_threads(1)
    emb = treebank_shift(n_sentences=300, seed=0)
    twin = treebank_shift(n_sentences=300, seed=0, random_init=True)
    result = geoprobe.make_probe("activation-sparsity", group="sentence_id").run(
        emb, twin=twin, seed=0)
    _finish(result, out, "sparsity")


PARTS = {"ease": ease, "cosine": cosine, "sparsity": sparsity}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = parser.parse_args()
    # One BLAS thread: the closed forms are many small eigh/solve calls, which threads slow
    # down on a shared machine.
    with threadpool_limits(1):
        for part in args.parts:
            PARTS[part](args.out)


if __name__ == "__main__":
    main()
