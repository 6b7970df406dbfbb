"""Benchmark: the taxonomy pipeline on ~20,000 WordNet words, and eigenvectors through the
n x d data against the dense n x n Gram.

Words are 20,000 WordNet noun synsets (a seeded sample) with 300-d vectors drawn from the
tree kernel on WordNet's noun tree (``tree_markov_vectors``), so the run has real WordNet
shapes without needing a 20k-word model vocabulary. Timed, after WordNet's first load:

1. the whole gram-eigen-taxonomy probe (2,000 subtrees, 1,000 bootstrap replicates, both
   shuffled baselines, heatmap over all 20,000 words) and the hierarchical-orthogonality
   probe (both estimators, both baselines);
2. the leading eigenvectors of the 20,000 words' Gram: ours (eigh of the d x d matrix) against
   the dense path (eigh of the n x n Gram) at n = ``--dense-n`` (the dense path at n = 20,000
   needs 3.2 GB and hours), with the ratio printed and the dense time extrapolated as n^3.

Run: ``python benchmarks/bench_taxonomy.py [--threads N] [--out benchmarks/results/taxonomy.md]``
(``--smoke``: 16 dimensions, 20 subtrees, 10 replicates, seconds; checks the script runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numpy as np
from _common import Run  # this script's folder is on sys.path


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores (shared; load average {load:.1f} at start), "
            f"Python {platform.python_version()}, NumPy {np.__version__}")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-words", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=300)
    ap.add_argument("--dense-n", type=int, default=3000)
    ap.add_argument("--n-subtrees", type=int, default=2000)
    ap.add_argument("--n-boot", type=int, default=1000)
    run = Run(ap, "taxonomy", default_out=False)
    args = ap.parse_args()
    if args.smoke:
        # all --n-words kept: among a few hundred, no depth-3 subtree has all its 15 nodes
        args.dim, args.dense_n, args.n_subtrees, args.n_boot = 16, 100, 20, 10

    from geoprobe import EmbeddingSet, make_probe
    from geoprobe.datasets.taxonomy import Taxonomy, tree_markov_vectors
    from geoprobe.probes import taxonomy as tx

    desc = machine()
    lines = ["# Taxonomy benchmark", ""]

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    with run.threads(args) as n_threads:
        say(f"Machine: {desc}. BLAS threads: {n_threads}.")
        say()
        t0 = time.perf_counter()
        tree = Taxonomy.from_wordnet()
        t_tree = time.perf_counter() - t0
        tx._WORDNET["tree"] = tree
        rng = np.random.default_rng(0)
        X_all = tree_markov_vectors(tree, args.dim, 0.5, rng)
        rows = np.sort(rng.choice(tree.n_nodes, args.n_words, replace=False))
        names = tree.names[rows].astype(str)
        emb = EmbeddingSet(X_all[rows].astype(np.float32),
                           {"item_id": names, "synset": names}, layer_names=["planted"])
        say(f"WordNet noun tree from the cached arrays: {t_tree:.1f} s "
            "(NLTK's first load, once per machine, is not counted)")
        say(f"{args.n_words} words, d = {args.dim}")
        say()
        t0 = time.perf_counter()
        r1 = make_probe("gram-eigen-taxonomy", n_subtrees=args.n_subtrees,
                        n_boot=args.n_boot).run(
            emb, seed=0, twin=False, progress=False)
        t_gram = time.perf_counter() - t0
        t0 = time.perf_counter()
        r2 = make_probe("hierarchical-orthogonality", n_boot=args.n_boot).run(
            emb, seed=0, twin=False, progress=False)
        t_orth = time.perf_counter() - t0
        aa = r1.metric("alignment_area_normalised", layer="planted")
        say("| step | seconds |")
        say("|---|---|")
        say(f"| gram-eigen-taxonomy ({args.n_subtrees:,} subtrees, {args.n_boot:,} bootstrap, "
            f"baselines, heatmap) | {t_gram:.1f} |")
        say(f"| hierarchical-orthogonality ({r2.info['n_concepts']} concepts, lda + mean, "
            f"baselines) | {t_orth:.1f} |")
        say(f"| whole pipeline (tree + both probes) | {t_tree + t_gram + t_orth:.1f} |")
        say()
        say(f"Planted check: normalised Alignment Area {aa.value:.3f} "
            f"[{aa.ci_low:.3f}, {aa.ci_high:.3f}], {r1.info['n_subtree_roots']} subtree roots.")
        say()

        # Eigenvectors: ours (d x d) against the dense n x n Gram, same rows, same k.
        k = 8
        Z = np.asarray(X_all[rows], dtype=np.float64)

        def ours(Y):
            lam, W = np.linalg.eigh(Y.T @ Y)
            lam, W = lam[::-1][:k], W[:, ::-1][:, :k]
            return Y @ W / np.sqrt(lam)

        def dense(Y):
            _, U = np.linalg.eigh(Y @ Y.T)
            return U[:, ::-1][:, :k]

        n = args.dense_n
        Y = Z[:n]
        t0 = time.perf_counter()
        U_ours = ours(Y)
        t_ours_n = time.perf_counter() - t0
        t0 = time.perf_counter()
        U_dense = dense(Y)
        t_dense_n = time.perf_counter() - t0
        agree = np.abs(np.sum(U_ours * U_dense, 0)).min()
        t0 = time.perf_counter()
        ours(Z)
        t_ours_full = time.perf_counter() - t0
        extrapolated = t_dense_n * (args.n_words / n) ** 3
        say(f"Leading {k} eigenvectors of the Gram (|cos| between the two paths >= {agree:.6f}):")
        say()
        say("| n | ours: eigh of d x d (s) | dense: eigh of n x n (s) | ratio dense/ours |")
        say("|---|---|---|---|")
        say(f"| {n} | {t_ours_n:.3f} | {t_dense_n:.2f} | {t_dense_n / t_ours_n:.0f}x |")
        say(f"| {args.n_words} | {t_ours_full:.3f} | ~{extrapolated:.0f} (n^3 extrapolation; "
            f"{args.n_words ** 2 * 8 / 1e9:.1f} GB Gram) | ~{extrapolated / t_ours_full:.0f}x |")
        say()
        say(f"Peak resident memory: {peak_mb():.0f} MB.")
        run.write(args, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
