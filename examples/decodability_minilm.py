"""UPOS decodability of MiniLM layers, with the Hewitt & Liang control task and the random-init twin.

Extracts word vectors (mean of each word's sub-word tokens, every hidden state: the embedding
output and the 6 transformer layers) for the first ``--sentences`` sentences of UD English-EWT
dev, from the offline all-MiniLM-L6-v2 and from its random-init twin (the same architecture
from ``AutoModel.from_config`` with a fixed torch seed), then runs ``linear-decodability`` on

* ``upos`` (categorical; control task by lower-cased word form; MDL on), and
* ``rel_position`` (continuous: the word's position in its sentence divided by its length),

with folds and bootstrap by sentence. Writes ``results.json``, ``summary.md`` and the figure
into ``--out``.

    python examples/decodability_minilm.py --sentences 300 --out decod-ewt

(The model comes from ``geoprobe.hf``, the sentences from ``geoprobe.datasets.treebank``; the
official extraction pipeline is ``geoprobe extract``, this script keeps its own small pooling
so that the steps are visible.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def default_dev() -> Path:
    """EWT dev: the copy shipped with geoprobe (or the directory in $GEOPROBE_UD_EWT)."""
    from geoprobe.datasets.treebank import default_treebank_path

    return default_treebank_path("dev")


def read_sentences(path: Path, limit: int):
    """(words, upos) of the first ``limit`` sentences of two words or more: syntactic words
    only (no multi-word ranges, no empty nodes)."""
    from geoprobe.datasets.treebank import read_conllu

    return [(s.words, s.upos) for s in read_conllu(path) if s.n >= 2][:limit]


def word_vectors(model, tokenizer, sentences, batch_size=32):
    """Mean of each word's sub-word hidden states at every layer: (n_layers, n_words, dim)."""
    import torch

    chunks = []
    for start in range(0, len(sentences), batch_size):
        words = [w for w, _ in sentences[start:start + batch_size]]
        enc = tokenizer(words, is_split_into_words=True, return_tensors="pt", padding=True,
                        truncation=True, max_length=512)
        with torch.no_grad():
            hidden = torch.stack(model(**enc, output_hidden_states=True).hidden_states)
        hidden = hidden.double().numpy()                     # (L, batch, tokens, dim)
        for b, ws in enumerate(words):
            ids = np.array([-1 if i is None else i for i in enc.word_ids(b)])
            if ids.max() + 1 != len(ws):
                raise RuntimeError(f"sentence {start + b}: truncated at 512 sub-words")
            keep = ids >= 0
            pool = np.zeros((len(ws), keep.sum()))
            pool[ids[keep], np.arange(keep.sum())] = 1.0
            pool /= pool.sum(1, keepdims=True)
            chunks.append(np.einsum("wt,ltd->lwd", pool, hidden[:, b][:, keep]))
    return np.concatenate(chunks, axis=1).astype(np.float32)


def build_sets(conllu_path: Path, n_sentences: int, seed: int):
    import geoprobe
    from geoprobe import hf

    sentences = read_sentences(conllu_path, n_sentences)
    path = hf.model_dir()
    tokenizer = hf.load_tokenizer(path)
    trained = hf.load_model(path)
    twin_model = hf.load_model(path, random_init=True, seed=seed)
    sent_id = np.concatenate([np.full(len(w), i) for i, (w, _) in enumerate(sentences)])
    position = np.concatenate([np.arange(len(w)) for w, _ in sentences])
    length = np.concatenate([np.full(len(w), len(w)) for w, _ in sentences])
    items = {
        "item_id": np.array([f"dev{s}:{p}" for s, p in zip(sent_id, position)]),
        "sentence_id": sent_id,
        "word": np.array([w.lower() for ws, _ in sentences for w in ws]),
        "upos": np.array([u for _, us in sentences for u in us]),
        "rel_position": position / np.maximum(length - 1, 1),
    }
    names = ["emb"] + [str(i) for i in range(1, trained.config.num_hidden_layers + 1)]
    sets = []
    for model, tag in ((trained, "all-MiniLM-L6-v2"), (twin_model, "random-init twin")):
        X = word_vectors(model, tokenizer, sentences)
        sets.append(geoprobe.EmbeddingSet(
            X, items, layer_names=names, source=f"{tag} on EWT dev[:{n_sentences}]",
            provenance={"model": tag, "pooling": "mean of sub-word tokens",
                        "data": f"UD English-EWT dev, first {n_sentences} sentences"}))
    return sets


def summary(result) -> str:
    layers = result.info["layers"]
    n_control = result.params["n_control"]
    lines = [f"| layer | UPOS acc [95% CI] | control acc, mean of {n_control} [95% CI] | "
             "control min-max | selectivity [95% CI] | MLP acc | MLP selectivity | "
             "random-init acc | MDL compression (control) | rel. position R^2 |",
             "|" + "---|" * 10]

    def fmt(m, ci=True):
        return f"{m.value:.3f} [{m.ci_low:.3f}, {m.ci_high:.3f}]" if ci else f"{m.value:.3f}"

    def opt(name, **labels):
        try:
            return fmt(result.metric(name, **labels))
        except KeyError:
            return "-"

    for layer in layers:
        g = dict(layer=layer, target="upos")
        lines.append(" | ".join([
            f"| {layer}", fmt(result.metric("accuracy", **g)),
            fmt(result.metric("accuracy", baseline="control", **g)),
            "{min:.3f}-{max:.3f}".format(
                **result.info["control_spread"][f"{layer}:upos"]["accuracy"]),
            fmt(result.metric("selectivity", **g)), opt("mlp_accuracy", **g),
            opt("mlp_selectivity", **g),
            fmt(result.metric("accuracy", baseline="random-init", **g)),
            f"{result.metric('mdl_compression', **g).value:.2f} "
            f"({result.metric('mdl_compression', baseline='control', **g).value:.2f})",
            fmt(result.metric("r2", layer=layer, target="rel_position"))]) + " |")
    g = dict(layer=layers[-1], target="upos")
    lines.append("")
    lines.append(f"Majority-class accuracy {result.metric('accuracy', baseline='majority', **g).value:.3f}; "
                 f"shuffled-label accuracy (last layer) "
                 f"{fmt(result.metric('accuracy', baseline='shuffled', **g))}.")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conllu", type=Path, default=None, help="CoNLL-U(.gz); default EWT dev")
    ap.add_argument("--sentences", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("decodability-minilm"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=500)
    ap.add_argument("--mlp-epochs", type=int, default=100, help="MLP probe's epoch cap")
    ap.add_argument("--no-mlp", action="store_true", help="skip the MLP probe (faster)")
    ap.add_argument("--n-control", type=int, default=5,
                    help="random control-task assignments averaged (Hewitt & Liang draw 1)")
    ap.add_argument("--layers", nargs="+", default=None, help="layer names (default: all)")
    args = ap.parse_args(argv)

    from geoprobe import threads
    from geoprobe.plotting import save_figure
    from geoprobe.probes.decodability import LinearDecodability
    from geoprobe.provenance import write_json_atomic, write_text_atomic

    with threads.policy():  # the models' forward passes follow geoprobe's policy (probes do)
        emb, twin = build_sets(args.conllu or default_dev(), args.sentences, args.seed)
    print(f"{emb.n_items} words, {len(np.unique(emb.items['sentence_id']))} sentences, "
          f"{len(np.unique(emb.items['upos']))} UPOS tags, {emb.n_layers} layers")
    probe = LinearDecodability(targets=["upos", "rel_position"], group="sentence_id",
                               control="word", mdl=True, rare_classes="drop", mlp=not args.no_mlp,
                               mlp_max_epochs=args.mlp_epochs, n_boot=args.n_boot,
                               n_control=args.n_control)
    result = probe.run(emb, layers=args.layers, twin=twin, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "results.json", result.to_dict())
    text = summary(result)
    write_text_atomic(args.out / "summary.md", text + "\n")
    print(text)
    print("dropped:", result.info["dropped"])
    for path in save_figure(result.plot(), args.out / "decodability_minilm"):
        print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
