"""Syntactic probes: the structural probe (Hewitt & Manning 2019) and the polar probe
(Diego-Simón et al. 2024), trained on padded batches of whole sentences.

Anchors: Hewitt & Manning 2019 (structural probe); Diego-Simón et al. 2024 (polar probe). Both probes learn a linear map
``B : R^d -> R^k`` so that squared distances ``||B(h_i - h_j)||^2`` between the words of a
sentence match their distances in the gold dependency tree.

Input
-----
An embedding set with one row per word and the item columns ``sentence_id``, ``position``
(word index, 0-based as ``geoprobe extract`` writes it or 1-based as CoNLL-U's ID: the
smallest position decides), ``head`` (CoNLL-U: 1-based, 0 = root), ``deprel``, ``upos`` and ``split``.

Three disjoint sets of sentences, named by values of the ``split`` column: the probe trains on
``train_split``, selects its checkpoint (and stops early) on the selection sentences, and
reports on ``report_split`` (default ``"dev"``). The selection sentences are ``select_split``'s
or, by default (``select_split=None``), a random held-out slice of train (at most
``select_sentences``, 500, and at most a fifth of train) removed from training, so the reported
split is never the one the checkpoint was selected on. Splits that share a sentence ID are
refused. Optional column ``xpos``: when present, punctuation is the anchor's PTB tag set;
otherwise ``upos == "PUNCT"``.

Losses (vectorised over a padded batch, every word pair of every sentence at once)
-------------------------------------------------------------------------------
* distance: ``mean_s (1/|s|^2) sum_ij | d_T(i,j) - ||B(h_i - h_j)||^2 |`` (both papers).
* depth (structural): ``mean_s (1/|s|) sum_i | depth_T(i) - ||B h_i||^2 |``.
* angular (polar), over the batch's gold edges ``e = B h_head - B h_dep``:
  ``C_ab = clamp(1 - cos(e_a, e_b), 0, 2)``, target ``T_ab = 0`` for the same relation type
  (subtype stripped) else 1, loss ``mean_ab (C_ab - T_ab)^2``.
* root (polar): ``mean_s mean_k (B h_root - r)_k^2`` with a learned root point ``r``.
* polar total: ``distance + lam * angular + beta * root``.

Metrics on the report split (two conventions, see ``docs/syntax.md``)
--------------------------------------------------------------------
Ours (Hewitt & Manning's): trees over the non-punctuation words, corpus-level ratios.

* ``uuas``: minimum spanning tree (MST) of the predicted distances over non-punctuation words;
  share of gold edges between two non-punctuation words that it contains.
* ``uas`` / ``las``: each MST edge ``(u, v)`` is labelled by the relation prototype (mean train
  edge vector per type over at most 5,000 random train sentences) of largest ``|cos|`` and
  oriented ``u -> v`` (u the head) iff
  ``cos(B h_u - B h_v, prototype) > 0``; share of gold edges recovered with the right head
  (and label).
* ``relation_accuracy`` / ``relation_balanced_accuracy``: nearest prototype by cosine for each
  gold edge (dependents that are punctuation left out), pooled accuracy and mean recall per type.
* ``root_accuracy``: the structural probe's least-deep non-punctuation word, the polar probe's
  non-punctuation word nearest ``r``, is the gold root.
* ``dspr``: Spearman correlation of each word's row of predicted vs gold distances (all words),
  averaged within each sentence length, then over lengths 5-50. ``nspr``: the same for depth.

The reference's (``ref_`` prefix, polar code): MST over all words, punctuation included,
each sentence's share averaged over sentences; relation accuracy over all gold edges; root over
all words.

Baselines per layer (``baseline`` label): ``identity`` (B = I, no training), ``random-probe``
(an untrained Gaussian B of the same rank); both get prototypes and, for the polar probe, a
root point fitted on train, so they are scored exactly like the trained probe. The core adds
the random-init model (``random-init``) when the source has a twin; on the twin
(``ctx.is_twin``), itself a control, only the layer sweep runs (no baselines, no rank sweep).

Confidence intervals: percentile bootstrap over report sentences (``n_boot`` replicates, one
multinomial draw of sentence counts per replicate shared by every metric of a layer). They
cover the sampling of report sentences, not training randomness (initialisation, batch order,
the selection slice): ``examples/syntax_layer_sweep.py`` measures the across-seed spread.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from geoprobe.contract import (Interval, NON_NEGATIVE, OPEN_UNIT, Options, POSITIVE, POSITIVE_INT,
                              SequenceOf)
from geoprobe.device import DEVICE_CONSTRAINT, resolve_device
from geoprobe.errors import ProbeInputError
from geoprobe.probe import Example, Probe, ProbeResult, Requirements
from geoprobe.stats import child_seed
from geoprobe.syntax.corpus import SYNTAX_COLUMNS, Split, build_corpus, relation_type
from geoprobe.syntax.figures import edge_plot_arrays, plot_syntax
from geoprobe.syntax.maps import FittedMap, fit_prototypes, fit_root
from geoprobe.syntax.metrics import SentenceBootstrap, scores_to_metrics
from geoprobe.syntax.scoring import score
from geoprobe.syntax.training import TrainConfig, train_map


def _check_disjoint(corpora: dict, probe: str, source: str) -> None:
    """Refuse splits that share a sentence ID (selection or reporting on training sentences,
    or reporting on the sentences the checkpoint was selected on)."""
    names = list(corpora)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = np.intersect1d(corpora[a].sentence_ids, corpora[b].sentence_ids)
            if len(shared):
                raise ProbeInputError(
                    f"probe {probe!r}: {source}: the {a} and {b} sentences share {len(shared)} "
                    f"sentence IDs (e.g. {str(shared[0])!r}); give {a}_split and {b}_split "
                    "different splits")


def _record(prefix: str, out) -> dict:
    """A trained map's training record for the result's ``training`` info."""
    return {f"{prefix}epochs": out.epochs, f"{prefix}best_epoch": out.best_epoch,
            f"{prefix}stopped_early": out.stopped_early}


class _SyntaxProbe(Probe):
    """Shared machinery: splits, batches, layer and rank sweeps, baselines, figure arrays."""

    memory = "in memory: one layer in float32 (4 n d bytes) and the training batches of the probe"

    requires = Requirements(columns=SYNTAX_COLUMNS, min_items=4)
    #: the parameters both probes share
    common_constraints = {
        "rank": [POSITIVE_INT], "lr": [POSITIVE], "epochs": [POSITIVE_INT],
        "patience": [POSITIVE_INT],
        "ranks": [Options({"auto"}), SequenceOf(POSITIVE_INT, min_len=1), None],
        "baselines": [bool],
        "train_split": [str], "select_split": [str, None], "report_split": [str],
        "select_sentences": [POSITIVE_INT],
        "max_train_sentences": [Interval(int, 0, None), None],
        "max_tokens": [POSITIVE_INT], "n_boot": [POSITIVE_INT], "level": [OPEN_UNIT],
        "plot_types": [POSITIVE_INT], "plot_edges": [POSITIVE_INT],
        "device": [DEVICE_CONSTRAINT],
    }
    metric_directions = {"uuas": True, "uas": True, "las": True, "root_accuracy": True,
                         "dspr": True, "nspr": True, "relation_accuracy": True,
                         "relation_balanced_accuracy": True, "ref_*": True}
    kind = ""

    @classmethod
    def example_input(cls, rng) -> Example:
        from geoprobe.datasets.planted_trees import planted_trees

        # planted trees stand in for a treebank run through a language model
        emb = planted_trees(n_sentences=40, dim=24, rank=18, n_layers=2, max_len=10,
                            seed=int(rng.integers(2**31)))
        return Example(emb, {"rank": 8, "epochs": 2, "ranks": None, "n_boot": 20,
                             "plot_types": 3, "plot_edges": 20})
    #: the metric that picks the best layer for the rank sweep and the figure
    select_metric = "uuas"

    def _store(self, params: dict) -> None:
        """Keep the ``__init__`` arguments unchanged (scikit-learn's convention)."""
        for name in self._param_names():
            setattr(self, name, params[name])

    def _setup(self, ctx):
        """The relation types (from train) and the train, selection and report corpora.

        Selection is ``select_split``'s sentences (at most ``select_sentences``, drawn at
        random) or, by default, a random held-out slice of train (at most
        ``select_sentences`` and at most a fifth of train) removed from training. The three
        sets never share a sentence ID.
        """
        items = ctx.items
        split = np.asarray(items["split"]).astype(str)
        src = ctx.embeddings.source

        def corpus(role, value, codes):
            rows = np.flatnonzero(split == value)
            if len(rows) == 0:
                raise ProbeInputError(
                    f"probe {self.name!r}: {src} has no rows with split == {value!r} (found "
                    f"{sorted(set(split.tolist()))[:5]}); set {role}_split to the value that "
                    f"marks the {role} rows")
            return rows if codes is None else build_corpus(items, rows, codes,
                                                           source=f"{src} ({value})")

        train_rows = corpus("train", self.train_split, None)
        types = np.unique(relation_type(np.asarray(items["deprel"])[train_rows]))
        types = types[types != "root"]
        codes = {t: i for i, t in enumerate(types)}
        train = build_corpus(items, train_rows, codes, source=f"{src} ({self.train_split})")
        report = corpus("report", self.report_split, codes)
        if self.select_split is None:
            n_select = min(self.select_sentences, train.n // 5)
            if n_select < 1:
                raise ProbeInputError(f"probe {self.name!r}: {src} has {train.n} train "
                                      "sentences, too few to hold out a selection slice; "
                                      "give select_split")
            held = np.zeros(train.n, bool)
            held[ctx.rng.choice(train.n, n_select, replace=False)] = True
            train, select = train.take(np.flatnonzero(~held)), train.take(np.flatnonzero(held))
        else:
            select = corpus("select", self.select_split, codes)
            if select.n > self.select_sentences:
                select = select.take(np.sort(ctx.rng.choice(select.n, self.select_sentences,
                                                            replace=False)))
        _check_disjoint({"train": train, "select": select, "report": report}, self.name, src)
        if self.max_train_sentences and train.n > self.max_train_sentences:
            train = train.take(np.sort(ctx.rng.choice(train.n, self.max_train_sentences,
                                                      replace=False)))
        return types, train, select, report

    def _ranks(self, dim):
        if self.ranks is None:
            return []
        if self.ranks == "auto":
            ranks = [r for r in (8, 16, 32, 64, 128, 256, 512, 1024, 2048) if r < dim] + [dim]
            return ranks
        return [int(r) for r in self.ranks]

    def _fit(self, X, train: Split, select: Split, *, rank: int, seed: int,
             n_types: int) -> tuple[FittedMap, dict]:
        """Train this probe's map(s) of ``rank`` on X (n_rows, d), selecting the epoch on
        ``select``; returns the fitted map and its training record (epochs run, selected
        epoch, whether early stopping ended it)."""
        raise NotImplementedError

    def evaluate(self, ctx) -> ProbeResult:
        types, train_corpus, select_corpus, report_corpus = self._setup(ctx)
        n_types = len(types)
        train = Split.of(train_corpus, self.max_tokens)
        select = Split.of(select_corpus, self.max_tokens)
        report = Split.of(report_corpus, self.max_tokens)
        boot = SentenceBootstrap(report_corpus.n, n_boot=self.n_boot, level=self.level,
                                 rng=ctx.rng)
        example = int(np.argmin(np.abs(report_corpus.lengths - 12)))
        # The random-init twin is itself a control: layer sweep only.
        control = ctx.is_twin
        metrics, per_layer, info_layers = [], {}, {}
        best = None  # (layer, X, fitted, scores) of the best layer so far; one layer in memory
        for layer, Xn in ctx.iter_layers(dtype=np.float32):
            X = torch.from_numpy(np.array(Xn, dtype=np.float32))
            rank = min(self.rank, X.shape[1])
            fitted, meta = self._fit(X, train, select, rank=rank, seed=child_seed(ctx.rng),
                                     n_types=n_types)
            sc = score(X, fitted, report, n_types=n_types, example=example)
            ms = scores_to_metrics(boot, sc, layer=layer)
            metrics += ms
            per_layer[layer] = {m.name: m for m in ms}
            info_layers[layer] = meta
            value = per_layer[layer][self.select_metric].value
            if best is None or value > per_layer[best[0]][self.select_metric].value:
                best = (layer, X, fitted, sc)
            if self.baselines and not control:
                baselines = self._baselines(X, train, rank=rank, n_types=n_types, rng=ctx.rng)
                for name, base in baselines.items():
                    metrics += scores_to_metrics(boot, score(X, base, report, n_types=n_types),
                                                 layer=layer, baseline=name)
        best, X, fitted, sc = best
        ranks = [] if control else self._ranks(X.shape[1])
        for r in ranks:
            fr, _ = self._fit(X, train, select, rank=r, seed=child_seed(ctx.rng),
                              n_types=n_types)
            for m in scores_to_metrics(boot, score(X, fr, report, n_types=n_types),
                                       layer=best, rank=r):
                if m.name in ("uuas", "las", "dspr", "relation_accuracy", "root_accuracy"):
                    m.name = f"rank_sweep_{m.name}"
                    metrics.append(m)
        arrays = edge_plot_arrays(X, fitted.weight, report.batches, n_types=n_types,
                                  plot_types=self.plot_types, plot_edges=self.plot_edges,
                                  rng=ctx.rng)
        arrays.update({k: np.asarray(v).astype(np.int32) for k, v in sc.example.items()})
        n_words = int(report_corpus.lengths[example])
        words = (np.asarray(ctx.items["word"])[report_corpus.rows[example, :n_words]]
                 .astype(str).tolist() if "word" in ctx.items else
                 [str(i + 1) for i in range(n_words)])
        return self.result(ctx, metrics, arrays, best_layer=best, ranks=ranks,
                           relation_types=types.tolist(), n_train_sentences=train_corpus.n,
                           n_select_sentences=select_corpus.n, n_report_sentences=report_corpus.n,
                           splits={"train": self.train_split,
                                   "select": self.select_split or "held-out slice of train",
                                   "report": self.report_split},
                           training=info_layers,
                           example_sentence=str(report_corpus.sentence_ids[example]),
                           example_words=words)

    def _baselines(self, X, train: Split, *, rank: int, n_types: int,
                   rng: np.random.Generator) -> dict[str, FittedMap]:
        """The untrained maps ``identity`` and ``random-probe`` (Gaussian, ``rank`` rows), with
        prototypes and (polar) a root fitted on train, so they are scored like a trained map."""
        d = X.shape[1]
        W_id = torch.eye(d)
        gen = torch.Generator().manual_seed(child_seed(rng))
        W_rand = torch.randn(rank, d, generator=gen) / np.sqrt(d)
        out = {}
        for name, W in (("identity", W_id), ("random-probe", W_rand)):
            protos = fit_prototypes(X, W, train.corpus, n_types=n_types, seed=child_seed(rng))
            root = fit_root(X, W, train.batches) if self.kind == "polar" else None
            out[name] = FittedMap(W.numpy(), protos, root,
                                  None if self.kind == "polar" else W.numpy())
        return out

    @classmethod
    def plot(cls, result: ProbeResult):
        return plot_syntax(result, cls.curve_metrics)


class StructuralProbe(_SyntaxProbe):
    """Hewitt & Manning's structural probe: a distance probe and a depth probe per layer.

    Parameters
    ----------
    rank : int, default 128 (the anchor: performance saturates around 64-128)
    lr : float, default 1e-3 (Adam)
    epochs : int, default 100, the most epochs; training normally ends earlier, by early
        stopping: patience : int, default 5, epochs without a lower selection loss
    ranks : "auto", list of int or None
        Rank sweep at the best layer (by report UUAS): "auto" = 8, 16, ... up to the width.
    baselines : bool, default True (identity and random-probe, per layer)
    train_split, report_split : values of the ``split`` column, default "train" / "dev"
    select_split : value of the ``split`` column or None (default: a random held-out slice of
        train); select_sentences : int, default 500, the most selection sentences
    max_train_sentences : int or None, a random subset of train sentences (for quick runs)
    max_tokens : int, padded words per batch (256, about the 20 sentences of Hewitt & Manning's
        batches; larger batches gave fewer steps per epoch and a worse probe in 6 epochs)
    n_boot, level : bootstrap replicates over report sentences and interval level
    plot_types, plot_edges : relation types and edges per type in the polar plot
    device : str, default "cpu"
        Where the maps train: "cpu", "cuda", "cuda:N", "mps" or "auto" (see
        :mod:`geoprobe.device`). Scoring, prototypes and baselines stay on the CPU.

    The distance probe's tree is also labelled and oriented by relation prototypes fitted in
    its space, exactly like the polar probe's ("rooted structural probe" in the polar
    reference), so its ``las``/``relation_accuracy`` compare with the polar probe's.
    """

    name = "structural-probe"
    summary = "Hewitt & Manning structural probe: tree distances and depths (UUAS, DSpr, root, NSpr)."
    kind = "structural"
    select_metric = "uuas"
    curve_metrics = ("uuas", "dspr", "root_accuracy")
    parameter_constraints = _SyntaxProbe.common_constraints

    def __init__(self, rank=128, lr=1e-3, epochs=100, patience=5, ranks="auto", baselines=True,
                 train_split="train", select_split=None, report_split="dev",
                 select_sentences=500, max_train_sentences=None, max_tokens=256, n_boot=1000,
                 level=0.95, plot_types=8, plot_edges=150, device="cpu"):
        self._store(locals())

    def _fit(self, X, train, select, *, rank, seed, n_types):
        config = TrainConfig(kind="distance", rank=rank, lr=self.lr, epochs=self.epochs,
                             patience=self.patience)
        device = resolve_device(self.device)
        dist = train_map(X, train, select, config, seed=seed, n_types=n_types, device=device)
        depth = train_map(X, train, select, replace(config, kind="depth"), seed=seed + 1,
                          n_types=n_types, device=device)
        W = torch.from_numpy(dist.weight)
        protos = fit_prototypes(X, W, train.corpus, n_types=n_types, seed=seed)
        return FittedMap(dist.weight, protos, None, depth.weight), {
            **_record("distance_", dist), **_record("depth_", depth)}


class PolarProbe(_SyntaxProbe):
    """Diego-Simón et al.'s polar probe: distances, edge directions by relation type, a root.

    Parameters
    ----------
    rank : int, default 128
    lam : float, default 10.0
        Weight of the angular loss (the reference's reported runs use about 10; its CLI
        default is 0.01).
    beta : float, default 0.01 (root loss weight)
    lr, epochs, patience : Adam learning rate, maximum epochs (default 100), early stopping
        after ``patience`` epochs without a higher selection LAS
    ranks, baselines, train_split, select_split, report_split, select_sentences,
    max_train_sentences, max_tokens, n_boot, level, plot_types, plot_edges, device : as
    :class:`StructuralProbe` (rank sweep at the best layer by report LAS; selection LAS is
    decoded every epoch, which ``select_sentences`` keeps cheap)
    """

    name = "polar-probe"
    summary = "Polar probe: distances plus relation-typed edge directions (LAS, type accuracy)."
    kind = "polar"
    select_metric = "las"
    curve_metrics = ("uuas", "las", "relation_accuracy")
    parameter_constraints = {**_SyntaxProbe.common_constraints,
                             "lam": [NON_NEGATIVE], "beta": [NON_NEGATIVE]}

    def __init__(self, rank=128, lam=10.0, beta=0.01, lr=1e-3, epochs=100, patience=5,
                 ranks="auto", baselines=True, train_split="train", select_split=None,
                 report_split="dev", select_sentences=500, max_train_sentences=None,
                 max_tokens=256, n_boot=1000, level=0.95, plot_types=8, plot_edges=150,
                 device="cpu"):
        self._store(locals())

    def _fit(self, X, train, select, *, rank, seed, n_types):
        config = TrainConfig(kind="polar", rank=rank, lr=self.lr, epochs=self.epochs,
                             patience=self.patience, lam=self.lam, beta=self.beta)
        out = train_map(X, train, select, config, seed=seed, n_types=n_types,
                        device=resolve_device(self.device))
        W = torch.from_numpy(out.weight)
        protos = fit_prototypes(X, W, train.corpus, n_types=n_types, seed=seed)
        return FittedMap(out.weight, protos, out.root), {
            **_record("", out), "select_las_by_epoch": out.history}
