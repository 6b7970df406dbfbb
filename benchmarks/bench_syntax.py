"""Speed of the syntax probes: one training epoch over EWT train plus dev decoding and scoring.

Ours: padded batches of whole sentences, every pair at once, the loss's gradient derived by
hand and one fused Adam step per batch (:func:`geoprobe.syntax.training.train_step`; the
batches' constant tensors built once per run by :func:`geoprobe.syntax.gradients.step_batch`).

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

Also against the previous implementation of ours (up to commit 294a591): the same loss through
autograd, over the same batches. All forms but the naive loops run ``--repeats`` times,
interleaved (each repeat times every form once), and the table gives median, min and max: on
a shared machine only these same-run ratios compare across runs, not the seconds.

The pipeline's other stages: extraction (timed on ``--extraction-sentences`` EWT train
sentences through MiniLM in a fresh process, as ``bench_extraction.py`` measures its peak
memory, scaled to the train words), batch construction, and dev prototypes, decoding and
scoring; and peak resident memory.

Usage::

    python benchmarks/bench_syntax.py           # the headline: planted trees of EWT's size
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
from bench_extraction import _peak_rss_child  # a fresh process extracting EWT train

from geoprobe.embeddings import EmbeddingSet
from geoprobe.probes.syntax import PolarProbe
from geoprobe.syntax.corpus import Split, build_corpus, gather, make_batches, relation_type
from geoprobe.syntax.gradients import step_batch
from geoprobe.syntax.losses import polar_loss
from geoprobe.syntax.maps import FittedMap, fit_prototypes
from geoprobe.syntax.scoring import score
from geoprobe.syntax.training import LinearProbe, TrainConfig, adam, train_step

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


def polar_epoch(X, model, opt, steps, probe) -> float:
    """One training pass of the library's step (:func:`geoprobe.syntax.training.train_step`,
    hand-derived gradients) over ``steps`` (StepBatch list); returns its wall-clock seconds."""
    config = _config(probe, "polar")
    t0 = time.perf_counter()
    for sb in steps:
        train_step(X, model, opt, sb, config)
    return time.perf_counter() - t0


def autograd_epoch(X, model, opt, batches, probe) -> float:
    """One pass of the previous implementation (up to commit 294a591): the same loss through
    autograd (:func:`geoprobe.syntax.losses.polar_loss`, ``backward``); wall-clock seconds."""
    t0 = time.perf_counter()
    for batch in batches:
        opt.zero_grad()
        Z = model(gather(X, batch))
        polar_loss(Z, batch, model.root, lam=probe.lam, beta=probe.beta).backward()
        opt.step()
    return time.perf_counter() - t0


def _config(probe, kind: str) -> TrainConfig:
    return TrainConfig(kind=kind, rank=0, lr=1e-3, epochs=1, patience=1, lam=probe.lam,
                       beta=probe.beta)


class Timings:
    """Wall-clock seconds per label over interleaved repeats: median, min and max."""

    def __init__(self):
        self.seconds: dict[str, list[float]] = {}

    def add(self, label: str, seconds: float) -> None:
        self.seconds.setdefault(label, []).append(seconds)

    def median(self, label: str) -> float:
        return float(np.median(self.seconds[label]))

    def text(self, label: str, digits: int = 2) -> str:
        """``median (min-max)``, or the one time."""
        t = self.seconds[label]
        if len(t) == 1:
            return f"{t[0]:.{digits}f}"
        return f"{np.median(t):.{digits}f} ({min(t):.{digits}f}-{max(t):.{digits}f})"

    def ratio(self, slow: str, fast: str) -> str:
        """Ratio of medians, with the range of the per-repeat ratios."""
        r = np.asarray(self.seconds[slow]) / np.asarray(self.seconds[fast])
        med = self.median(slow) / self.median(fast)
        digits = 0 if med >= 20 else 1
        if len(r) == 1:
            return f"{med:.{digits}f}x"
        return f"{med:.{digits}f}x ({r.min():.{digits}f}-{r.max():.{digits}f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embeddings", type=Path)
    ap.add_argument("--layer", default="layer_3")
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3,
                    help="interleaved repeats of every timed step (median, min and max)")
    ap.add_argument("--baseline-sentences", type=int, default=400,
                    help="train sentences the PolarProbe transcription is timed on")
    ap.add_argument("--reference-step", type=int, default=200,
                    help="sentences per step of the PolarProbe transcription (its Loader: 200)")
    ap.add_argument("--hm-step", type=int, default=20,
                    help="sentences per batch of the Hewitt & Manning form (their config: 20)")
    ap.add_argument("--loop-sentences", type=int, default=40,
                    help="train sentences the naive per-pair loops are timed on")
    ap.add_argument("--extraction-sentences", type=int, default=200,
                    help="EWT train sentences whose extraction through MiniLM is timed (in a "
                         "fresh process, bench_extraction's) and scaled to the train words")
    run = Run(ap, "syntax")
    args = ap.parse_args()
    if args.smoke:
        args.rank, args.baseline_sentences, args.loop_sentences = 8, 4, 3
        args.reference_step, args.hm_step, args.repeats = 2, 2, 1
        args.extraction_sentences = 3
    with run.threads(args) as n_threads:
        _main(args, run, n_threads)


def _main(args, run, n_threads) -> None:
    ref = _load_reference()
    # Extraction first, in a fresh process, before this one holds any data: Linux keeps a
    # process's peak RSS across exec, so a child started later would report ours as its own.
    ext = _peak_rss_child(args.extraction_sentences, 32, n_threads)

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
    train_words = int(train.lengths.sum())
    t_extract = ext["seconds"] * train_words / ext["words"]

    t0 = time.perf_counter()
    train_b = make_batches(train, probe.max_tokens)
    dev_b = make_batches(dev, probe.max_tokens)
    t_batches = time.perf_counter() - t0
    t0 = time.perf_counter()
    steps = [step_batch(b) for b in train_b]
    t_steps = time.perf_counter() - t0

    def fresh():
        model = LinearProbe(X.shape[1], args.rank, torch.Generator().manual_seed(0))
        return model, adam(model.parameters(), 1e-3, "cpu")

    # Our pipeline once (also the warm-up): an epoch, then dev prototypes, decoding, scoring.
    model, opt = fresh()
    polar_epoch(X, model, opt, steps, probe)
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
    sub_dicts = as_dicts(sub)
    sub_steps = [step_batch(b) for b in make_batches(sub, probe.max_tokens)]
    scale_sub = pairs_all / float((sub.lengths ** 2).sum())
    # 2. Hewitt and Manning's batched distance loss over the whole epoch.
    order = rng.permutation(train.n)
    hm_batches = []
    for start in range(0, train.n, args.hm_step):
        b = make_batches(train.take(order[start:start + args.hm_step]), 10**9)[0]
        pair_mask = b.mask[:, :, None] & b.mask[:, None, :]
        hm_batches.append((gather(X, b), torch.where(pair_mask, b.dist, -1.0), b.lengths))

    def hm_epoch() -> float:
        model_h = LinearProbe(X.shape[1], args.rank, torch.Generator().manual_seed(0))
        opt_h = torch.optim.Adam(model_h.parameters(), lr=1e-3)
        t0 = time.perf_counter()
        for H, dist, lengths in hm_batches:
            opt_h.zero_grad()
            ref.distance_loss_batched(model_h.weight, H, dist, lengths).backward()
            opt_h.step()
        return time.perf_counter() - t0

    def distance_epoch() -> float:
        model_d, opt_d = fresh()
        config = _config(probe, "distance")
        t0 = time.perf_counter()
        for sb in steps:
            train_step(X, model_d, opt_d, sb, config)
        return time.perf_counter() - t0

    # Interleaved: each repeat times every form once, so load changes hit all of them.
    tm = Timings()
    for _ in range(args.repeats):
        tm.add("ours", polar_epoch(X, *fresh(), steps, probe))
        model_a = LinearProbe(X.shape[1], args.rank, torch.Generator().manual_seed(0))
        tm.add("autograd", autograd_epoch(X, model_a, torch.optim.Adam(model_a.parameters(),
                                                                       lr=1e-3), train_b, probe))
        t_ref = reference_epoch(
            sub_dicts, args.reference_step,
            lambda m, chunk: ref.polar_step_reference(m.weight, m.root, chunk, lam=probe.lam,
                                                      beta=probe.beta))
        tm.add("reference sub", t_ref)
        tm.add("reference", t_ref * scale_sub)
        tm.add("ours sub", polar_epoch(X, *fresh(), sub_steps, probe))
        tm.add("hm", hm_epoch())
        tm.add("ours distance", distance_epoch())

    # 3. The naive per-pair loops, once, on a smaller subset, scaled by word pairs.
    loop_sub = train.take(np.sort(rng.choice(train.n, args.loop_sentences, replace=False)))
    t_loop_sub = reference_epoch(
        as_dicts(loop_sub), args.hm_step,
        lambda m, chunk: (ref.distance_loss_loop(m.weight, chunk)
                          + probe.lam * ref.angular_loss_loop(m.weight, chunk)
                          + probe.beta * ref.root_loss_loop(m.weight, m.root, chunk)))
    t_loop_epoch = t_loop_sub * pairs_all / float((loop_sub.lengths ** 2).sum())
    tm.add("loops", t_loop_epoch)

    las = sc.ours.las[:, 0].sum() / sc.ours.las[:, 1].sum()
    reps = f"median (min-max) of {args.repeats} interleaved repeats" if args.repeats > 1 \
        else "one run"
    lines = [
        "# Syntax probes: speed",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), "
        f"load average {run.load_before:.1f} at the start (times are wall-clock).",
        f"Data: {emb.source}, layer {layer}, {train.n} train / {dev.n} dev sentences, "
        f"{train_words} train words, dim {X.shape[1]}, probe rank {args.rank}, "
        f"polar loss (distance + lam angular + beta root), {len(train_b)} padded batches "
        f"of <= {probe.max_tokens} words.",
        "",
        f"Seconds: {reps}; ratio: of the medians (range of the per-repeat ratios).",
        "",
        "| step | ours (s) | baseline (s) | ratio |",
        "| --- | --- | --- | --- |",
        f"| **one epoch, vs PolarProbe's train.py transcribed** ({args.reference_step} "
        f"sentences per step; scaled from {args.baseline_sentences} sentences by word pairs) "
        f"| {tm.text('ours')} | {tm.text('reference', 1)} | "
        f"**{tm.ratio('reference', 'ours')}** |",
        f"| same {args.baseline_sentences} sentences, no scaling | {tm.text('ours sub', 3)} | "
        f"{tm.text('reference sub', 1)} | {tm.ratio('reference sub', 'ours sub')} |",
        f"| one epoch vs the previous implementation (the same loss through autograd, up to "
        f"294a591) | {tm.text('ours')} | {tm.text('autograd')} | "
        f"{tm.ratio('autograd', 'ours')} |",
        f"| distance loss only, one epoch, vs Hewitt & Manning's batched code "
        f"({args.hm_step} sentences per batch) | {tm.text('ours distance')} | {tm.text('hm')} | "
        f"{tm.ratio('hm', 'ours distance')} |",
        f"| weaker baseline: one epoch vs naive per-pair and per-edge-pair loops (scaled from "
        f"{args.loop_sentences} sentences, {args.hm_step} per step; once) | {tm.text('ours')} | "
        f"{tm.text('loops', 1)} | {tm.median('loops') / tm.median('ours'):.0f}x |",
        "",
        "Times of our pipeline:",
        "",
        "| stage | seconds | peak RSS (MB) |",
        "| --- | --- | --- |",
        f"| extraction of the train words through MiniLM (all 7 layers; timed on the first "
        f"{ext['words']} words of EWT train in a fresh process, {ext['seconds']:.1f} s, and "
        f"scaled to {train_words} words) | {t_extract:.0f} | {ext['rss_peak_mb']:.0f} |",
        f"| batch construction (gold tree distances; the steps' constant tensors) | "
        f"{t_batches:.1f}; {t_steps:.1f} | |",
        f"| one training epoch | {tm.text('ours')} | |",
        f"| dev prototypes, decoding and scoring (MST x2, all metrics) | {t_dev:.1f} | "
        f"{peak_ours:.0f} |",
        "",
        f"Peak RSS {peak_ours:.0f} MB is this process's after data, batches, one epoch and "
        f"scoring, before any baseline ran; {_peak_mb():.0f} MB for the whole run (the "
        f"baselines' data included). Dev LAS after one epoch: {las:.3f}.",
        "",
        "Reproduce: `python benchmarks/bench_syntax.py` (planted trees of EWT's size); on "
        "MiniLM vectors: `python benchmarks/bench_syntax.py --embeddings "
        "<workdir>/ewt/train+dev.gpemb --layer layer_3` (the set the `syntax-minilm` suite "
        "extracts).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    run.write(args, text)


if __name__ == "__main__":
    main()
