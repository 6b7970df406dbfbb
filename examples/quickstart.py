"""Quickstart: embeddings in a .npy file, labels in a CSV, one probe, its numbers and figure.

    python examples/quickstart.py [OUT_DIR]

Writes a small example pair of files first (stand-ins for your model's export), then does what
a notebook would: load, run, read metrics with their confidence intervals, save the figure.
"""

import sys
from pathlib import Path

import numpy as np

import geoprobe
from geoprobe.plotting import save_figure


def write_example_files(out: Path) -> tuple[Path, Path]:
    """A 3-layer export whose last layer has collapsed onto 2 directions."""
    rng = np.random.default_rng(0)
    n, d = 1200, 32
    layers = [rng.standard_normal((n, d)),
              rng.standard_normal((n, 8)) @ rng.standard_normal((8, d)),
              rng.standard_normal((n, 2)) @ rng.standard_normal((2, d))]
    np.save(out / "emb.npy", np.stack(layers).astype(np.float32))
    with open(out / "labels.csv", "w") as fh:
        fh.write("item_id,sentence,label\n")
        for i in range(n):
            fh.write(f"s{i // 12}:{i % 12},{i // 12},{rng.integers(3)}\n")
    return out / "emb.npy", out / "labels.csv"


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    emb_path, labels_path = write_example_files(out)

    emb = geoprobe.load_embeddings(emb_path, items=labels_path)
    print(emb)
    probe = geoprobe.make_probe("covariance-spectrum", group="sentence", n_boot=200)
    result = probe.run(emb, seed=0)
    for layer in emb.layer_names:
        m = result.metric("rankme", layer=layer)
        base = result.metric("rankme", layer=layer, baseline="shuffled-features")
        print(f"layer {layer}: RankMe {m.value:5.1f}  95% CI [{m.ci_low:.1f}, {m.ci_high:.1f}] "
              f"over {m.n} {m.unit}s   (shuffled-features baseline {base.value:.1f})")
    paths = save_figure(result.plot(), out / "spectrum")
    print("figure:", ", ".join(map(str, paths)))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("quickstart-out"))
