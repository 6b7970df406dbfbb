"""Speed of the syntax probes: one training epoch over EWT train plus dev decoding and scoring.

Ours: padded batches of whole sentences, every pair at once (``geoprobe.syntax``).
Baseline: the same polar loss written per pair and per edge pair, as the reference code has it
(``syntax_reference.py``), one sentence batch at a time, with the same Adam step. The per-pair
epoch takes minutes, so it is timed on ``--baseline-sentences`` train sentences and scaled to
the full epoch by word pairs (its cost is linear in them); the ratio is reported for both the
scaled epoch and the same subset.

Usage::

    python benchmarks/bench_syntax.py --embeddings WORK/ewt/train+dev.gpemb --layer layer_3

The embedding set is the one ``treebank-lm-splits`` (the ``syntax-minilm`` suite's source)
writes; without ``--embeddings`` a planted set of the same size is generated.
Prints times, ratios and peak memory; writes ``benchmarks/results/syntax.md`` (``--out``
elsewhere). ``--smoke`` runs a tiny planted set in seconds, to check the script runs.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch
from _common import Run  # this script's folder is on sys.path

from geoprobe.embeddings import EmbeddingSet
from geoprobe.probes.syntax import PolarProbe
from geoprobe.syntax.corpus import Split, build_corpus, gather, make_batches, relation_type
from geoprobe.syntax.losses import distance_loss, polar_loss
from geoprobe.syntax.maps import FittedMap, fit_prototypes
from geoprobe.syntax.scoring import score
from geoprobe.syntax.training import LinearProbe

HERE = Path(__file__).resolve().parent


def _load_reference():
    import importlib.util

    spec = importlib.util.spec_from_file_location("syntax_reference",
                                                  HERE / "syntax_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def polar_epoch(X, model, opt, batches, probe) -> float:
    """One vectorised training pass over ``batches``; returns its wall-clock seconds."""
    t0 = time.perf_counter()
    for batch in batches:
        opt.zero_grad()
        Z = model(gather(X, batch))
        loss = polar_loss(Z, batch, model.root, lam=probe.lam, beta=probe.beta)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embeddings", type=Path)
    ap.add_argument("--layer", default="layer_3")
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--baseline-sentences", type=int, default=40)
    ap.add_argument("--sentences-per-step", type=int, default=20,
                    help="reference batch size in sentences (Hewitt & Manning use 20)")
    run = Run(ap, "syntax")
    args = ap.parse_args()
    if args.smoke:
        args.rank, args.baseline_sentences, args.sentences_per_step = 8, 3, 2
    with run.threads(args):
        _main(args, run)


def _main(args, run) -> None:
    ref = _load_reference()

    if args.embeddings:
        emb = EmbeddingSet.open(args.embeddings, validate=False)
        layer = args.layer
    elif args.smoke:
        from geoprobe.datasets.planted_trees import planted_trees
        emb = planted_trees(n_sentences=40, dim=48, rank=24, max_len=12, n_layers=1,
                            dev_fraction=0.25)
        layer = "0"
    else:
        from geoprobe.datasets.planted_trees import planted_trees
        emb = planted_trees(n_sentences=14_544, dim=384, rank=64, max_len=40, n_layers=1,
                            dev_fraction=2000 / 14_544)
        layer = "0"
    probe = PolarProbe(rank=args.rank)
    items = emb.items
    split = np.asarray(items["split"]).astype(str)
    types = np.unique(relation_type(np.asarray(items["deprel"])[split == "train"]))
    codes = {t: i for i, t in enumerate(types[types != "root"])}
    train = build_corpus(items, np.flatnonzero(split == "train"), codes)
    dev = build_corpus(items, np.flatnonzero(split == "dev"), codes)
    X = torch.from_numpy(np.asarray(emb.layer(layer), dtype=np.float32))
    n_types = len(codes)

    t0 = time.perf_counter()
    train_b = make_batches(train, probe.max_tokens)
    dev_b = make_batches(dev, probe.max_tokens)
    t_batches = time.perf_counter() - t0

    gen = torch.Generator().manual_seed(0)
    model = LinearProbe(X.shape[1], args.rank, gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t_epoch = polar_epoch(X, model, opt, train_b, probe)
    W = model.weight.detach()
    t0 = time.perf_counter()
    fitted = FittedMap(W.numpy(), fit_prototypes(X, W, train, n_types=n_types),
                       model.root.detach().numpy())
    sc = score(X, fitted, Split(dev, dev_b), n_types=n_types)
    t_dev = time.perf_counter() - t0
    ours_total = t_epoch + t_dev

    # The per-pair baseline, on a random subset of train sentences.
    rng = np.random.default_rng(0)
    sub = train.take(np.sort(rng.choice(train.n, args.baseline_sentences, replace=False)))
    sub_b = make_batches(sub, 10**9)
    sents = []
    for b in sub_b:
        for i in range(len(b.sent)):
            n = int(b.lengths[i])
            sents.append({"H": X[b.rows[i, :n]], "dist": b.dist[i, :n, :n],
                          "depth": b.depth[i, :n], "heads": b.heads[i, :n],
                          "rels": b.rels[i, :n]})
    model_r = LinearProbe(X.shape[1], args.rank, torch.Generator().manual_seed(0))
    opt_r = torch.optim.Adam(model_r.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for start in range(0, len(sents), args.sentences_per_step):
        chunk = sents[start:start + args.sentences_per_step]
        opt_r.zero_grad()
        loss = (ref.distance_loss_loop(model_r.weight, chunk)
                + probe.lam * ref.angular_loss_loop(model_r.weight, chunk)
                + probe.beta * ref.root_loss_loop(model_r.weight, model_r.root, chunk))
        loss.backward()
        opt_r.step()
    t_ref_sub = time.perf_counter() - t0
    # The distance term alone (the structural probe's loss), per pair vs vectorised.
    t0 = time.perf_counter()
    for start in range(0, len(sents), args.sentences_per_step):
        opt_r.zero_grad()
        ref.distance_loss_loop(model_r.weight, sents[start:start + args.sentences_per_step]
                               ).backward()
        opt_r.step()
    t_ref_dist = time.perf_counter() - t0
    sub_batches = make_batches(sub, probe.max_tokens)
    t0 = time.perf_counter()
    for batch in sub_batches:
        opt.zero_grad()
        distance_loss(model(gather(X, batch)), batch).backward()
        opt.step()
    t_ours_dist = time.perf_counter() - t0
    pairs_sub = float((sub.lengths ** 2).sum())
    pairs_all = float((train.lengths ** 2).sum())
    t_ref_epoch = t_ref_sub * pairs_all / pairs_sub

    # Ours on the same subset, for a like-for-like ratio without extrapolation.
    t_ours_sub = polar_epoch(X, model, opt, sub_batches, probe)

    las = sc.ours.las[:, 0].sum() / sc.ours.las[:, 1].sum()
    lines = [
        "# Syntax probes: speed",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), shared 2-core "
        "host "
        "(other jobs were running; times are wall-clock).",
        f"Data: {emb.source}, layer {layer}, {train.n} train / {dev.n} dev sentences, "
        f"{int(train.lengths.sum())} train words, dim {X.shape[1]}, probe rank {args.rank}, "
        f"polar loss (distance + lam angular + beta root), {len(train_b)} padded batches "
        f"of <= {probe.max_tokens} words.",
        "",
        "| step | ours (s) | per-pair reference (s) | ratio |",
        "| --- | --- | --- | --- |",
        f"| one epoch over train | {t_epoch:.1f} | {t_ref_epoch:.0f} (scaled from "
        f"{args.baseline_sentences} sentences by word pairs) | {t_ref_epoch / t_epoch:.0f}x |",
        f"| same {args.baseline_sentences} sentences, no scaling | {t_ours_sub:.3f} | "
        f"{t_ref_sub:.1f} | {t_ref_sub / t_ours_sub:.0f}x |",
        f"| distance loss only, same {args.baseline_sentences} sentences | {t_ours_dist:.3f} | "
        f"{t_ref_dist:.1f} | {t_ref_dist / t_ours_dist:.0f}x |",
        f"| epoch + dev decoding and scoring (prototypes, MST x2, all metrics) | "
        f"{ours_total:.1f} | {t_ref_epoch:.0f} + decoding | "
        f"{t_ref_epoch / ours_total:.0f}x (epoch alone counted for the reference) |",
        "",
        f"The reference side's time is dominated by the angular term's loop over every pair of "
        f"gold edges in a step ({args.sentences_per_step} sentences per step). "
        f"Batch construction (gold tree distances, once per run): {t_batches:.1f} s. "
        f"Dev decoding + scoring alone: {t_dev:.1f} s. Dev LAS after one epoch: {las:.3f}. "
        f"Peak RSS: {_peak_mb():.0f} MB.",
        "",
        "Reproduce: `python benchmarks/bench_syntax.py --embeddings "
        "<workdir>/ewt/train+dev.gpemb --layer layer_3` (the set the `syntax-minilm` suite "
        "extracts).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    run.write(args, text)


if __name__ == "__main__":
    main()
