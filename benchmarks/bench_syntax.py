"""Speed of the syntax probes: one training epoch over EWT train plus dev decoding and scoring.

Ours: padded batches of whole sentences, every pair at once (``geoprobe.syntax``), Adam.

Baselines (``syntax_reference.py``, whose docstring describes each reference), strongest first:

1. The polar loss as the published PolarProbe ``train.py`` computes it (the headline): per
   sentence, words projected once, squared distances filled by a Python loop over i < j, the
   angular loss as one matrix product over the step's gold edges, 200 sentences per step as
   its ``Loader`` has it, the same Adam step. It takes minutes per epoch, so it is timed on
   ``--baseline-sentences`` random train sentences and scaled to the epoch by word pairs (the
   pair loop dominates and is linear in them); the ratio on the same sentences, unscaled, is
   reported too.
2. The distance loss (the structural probe's) as Hewitt and Manning's batched code computes it,
   20 sentences per padded batch in a fixed random order, over the whole epoch, against our
   distance loss over the whole epoch.
3. The naive form, every ordered word pair and every pair of edges in Python (no reference is
   written so): reported second, on ``--loop-sentences`` sentences scaled by word pairs.

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
    ap.add_argument("--baseline-sentences", type=int, default=400,
                    help="train sentences the PolarProbe transcription is timed on")
    ap.add_argument("--reference-step", type=int, default=200,
                    help="sentences per step of the PolarProbe transcription (its Loader: 200)")
    ap.add_argument("--hm-step", type=int, default=20,
                    help="sentences per batch of the Hewitt & Manning form (their config: 20)")
    ap.add_argument("--loop-sentences", type=int, default=40,
                    help="train sentences the naive per-pair loops are timed on")
    run = Run(ap, "syntax")
    args = ap.parse_args()
    if args.smoke:
        args.rank, args.baseline_sentences, args.loop_sentences = 8, 4, 3
        args.reference_step, args.hm_step = 2, 2
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
    peak_ours = _peak_mb()  # before any baseline runs: data, our batches, epoch and scoring

    def as_dicts(corpus):
        """The corpus as one dict per sentence (the reference code's per-sentence form)."""
        out = []
        for b in make_batches(corpus, 10**9):
            for i in range(len(b.sent)):
                n = int(b.lengths[i])
                out.append({"H": X[b.rows[i, :n]], "dist": b.dist[i, :n, :n],
                            "depth": b.depth[i, :n], "heads": b.heads[i, :n],
                            "rels": b.rels[i, :n]})
        return out

    def reference_epoch(sents, per_step, loss_fn) -> float:
        """Seconds for Adam steps over ``sents``, ``per_step`` sentences each, of ``loss_fn``."""
        model_r = LinearProbe(X.shape[1], args.rank, torch.Generator().manual_seed(0))
        opt_r = torch.optim.Adam(model_r.parameters(), lr=1e-3)
        t0 = time.perf_counter()
        for start in range(0, len(sents), per_step):
            opt_r.zero_grad()
            loss_fn(model_r, sents[start:start + per_step]).backward()
            opt_r.step()
        return time.perf_counter() - t0

    rng = np.random.default_rng(0)
    pairs_all = float((train.lengths ** 2).sum())

    # 1. PolarProbe's train.py, on a random subset, scaled by word pairs.
    sub = train.take(np.sort(rng.choice(train.n, args.baseline_sentences, replace=False)))
    t_ref_sub = reference_epoch(
        as_dicts(sub), args.reference_step,
        lambda m, chunk: ref.polar_step_reference(m.weight, m.root, chunk, lam=probe.lam,
                                                  beta=probe.beta))
    t_ref_epoch = t_ref_sub * pairs_all / float((sub.lengths ** 2).sum())
    sub_batches = make_batches(sub, probe.max_tokens)
    t_ours_sub = polar_epoch(X, model, opt, sub_batches, probe)

    # 2. Hewitt and Manning's batched distance loss over the whole epoch vs ours.
    order = rng.permutation(train.n)
    hm_batches = []
    for start in range(0, train.n, args.hm_step):
        b = make_batches(train.take(order[start:start + args.hm_step]), 10**9)[0]
        pair_mask = b.mask[:, :, None] & b.mask[:, None, :]
        hm_batches.append((gather(X, b), torch.where(pair_mask, b.dist, -1.0), b.lengths))
    model_h = LinearProbe(X.shape[1], args.rank, torch.Generator().manual_seed(0))
    opt_h = torch.optim.Adam(model_h.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for H, dist, lengths in hm_batches:
        opt_h.zero_grad()
        ref.distance_loss_batched(model_h.weight, H, dist, lengths).backward()
        opt_h.step()
    t_hm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for batch in train_b:
        opt.zero_grad()
        distance_loss(model(gather(X, batch)), batch).backward()
        opt.step()
    t_ours_dist = time.perf_counter() - t0

    # 3. The naive per-pair loops, on a smaller subset, scaled by word pairs.
    loop_sub = train.take(np.sort(rng.choice(train.n, args.loop_sentences, replace=False)))
    t_loop_sub = reference_epoch(
        as_dicts(loop_sub), args.hm_step,
        lambda m, chunk: (ref.distance_loss_loop(m.weight, chunk)
                          + probe.lam * ref.angular_loss_loop(m.weight, chunk)
                          + probe.beta * ref.root_loss_loop(m.weight, m.root, chunk)))
    t_loop_epoch = t_loop_sub * pairs_all / float((loop_sub.lengths ** 2).sum())

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
        "| step | ours (s) | baseline (s) | ratio |",
        "| --- | --- | --- | --- |",
        f"| **one epoch, vs PolarProbe's train.py transcribed** ({args.reference_step} "
        f"sentences per step) | {t_epoch:.2f} | {t_ref_epoch:.1f} (scaled from "
        f"{args.baseline_sentences} sentences by word pairs) | **{t_ref_epoch / t_epoch:.0f}x** |",
        f"| same {args.baseline_sentences} sentences, no scaling | {t_ours_sub:.3f} | "
        f"{t_ref_sub:.1f} | {t_ref_sub / t_ours_sub:.0f}x |",
        f"| distance loss only, one epoch, vs Hewitt & Manning's batched code "
        f"({args.hm_step} sentences per batch) | {t_ours_dist:.2f} | {t_hm:.2f} | "
        f"{t_hm / t_ours_dist:.1f}x |",
        f"| weaker baseline: one epoch vs naive per-pair and per-edge-pair loops (scaled from "
        f"{args.loop_sentences} sentences, {args.hm_step} per step) | {t_epoch:.2f} | {t_loop_epoch:.1f} | "
        f"{t_loop_epoch / t_epoch:.0f}x |",
        "",
        f"Times of our pipeline: batch construction (gold tree distances, once per run) "
        f"{t_batches:.1f} s; one training epoch {t_epoch:.2f} s; dev prototypes, decoding and "
        f"scoring (MST x2, all metrics) {t_dev:.1f} s; extraction of the vectors is not part of "
        f"this script (see `bench_extraction.py`). Dev LAS after one epoch: {las:.3f}. "
        f"Peak RSS: {peak_ours:.0f} MB after our epoch and scoring (data and batches included), "
        f"{_peak_mb():.0f} MB for the whole run (the baselines' data included).",
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
