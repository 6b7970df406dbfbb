"""Circuits of a small transformer (Gao et al. 2025, "Weight-sparse transformers have
interpretable circuits"): how few nodes do a task, and how sparse and modular the weights are.

``circuit`` (needs a live :class:`~geoprobe.circuits.model.CircuitTransformer`, or an export
whose provenance names its checkpoint, as the ``circuit-transformer`` generator makes)
------------------------------------------------------------------------------------------
Draws ``n_prune`` sequences of ``task`` to learn node masks and ``n_eval`` fresh ones to
measure, and prunes the model to the smallest set of nodes (embedding channels, attention
channels, MLP neurons) whose mean answer cross-entropy with every other node mean-ablated is
at most ``target_loss`` (method and simplifications: :mod:`geoprobe.circuits.prune`).
Reported on the evaluation sequences, with percentile bootstrap CIs over sequences:

* ``circuit_size`` (nodes; ``group_size`` per node group), ``circuit_fraction`` of all nodes,
  ``circuit_edges`` (non-zero weights between kept nodes, :mod:`geoprobe.circuits.graph`);
* ``circuit_loss``: the circuit alone (sufficiency); ``ablated_loss``: the model with the
  circuit mean-ablated (necessity); ``target_reached``: 1 when the circuit meets the target
  on the pruning sequences;
* baselines of ``circuit_loss``: ``full-model``, ``random-circuit`` (``n_random`` random node
  sets of the same size: mean loss, 2.5-97.5 % of the draws as the interval) and
  ``all-ablated`` (every node mean-ablated: the loss of knowing only the mean activations).

``weight-sparsity`` (the same model sources)
--------------------------------------------
``zero_fraction`` of all weight matrices; per MLP layer the distribution of neuron
connectivity (non-zero in + out weights: ``neuron_degree`` mean and median,
``dead_neuron_fraction``) and the ``modularity`` of a spectral clustering of the weight
graph (:mod:`geoprobe.circuits.graph`), with the ``shuffled-weights`` baseline: the same
measure on the model with each matrix's entries permuted (same sparsity, structure gone).

Neither probe reads the embedding vectors: the model is the input. The export's layers are
the residual stream at the answer position, for the vector probes.
"""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import NullFormatter

from geoprobe.contract import Interval, OPEN_UNIT, Options, POSITIVE, POSITIVE_INT
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import ProbeInputError
from geoprobe.plotting import BASELINE_COLOR, PALETTE, legend_outside, new_figure
from geoprobe.probe import CheckpointModelProbe, Example, Metric, ProbeResult
from geoprobe.stats import bootstrap_mean, child_seed, percentile_interval


#: the heaviest edges the circuit drawing shows (more hide the structure)
MAX_DRAWN_EDGES = 60


class _CheckpointProbe(CheckpointModelProbe):
    """Shared: the circuit transformer (ctx.model or the export's checkpoint)."""

    model_kind = "a circuit transformer"
    exported_by = "the circuit-transformer generator"

    @staticmethod
    def load_checkpoint(path):
        from geoprobe.circuits.train import load_checkpoint

        return load_checkpoint(path)[0]

    @staticmethod
    def _example(params) -> Example:
        """The hand-built planted model and a token two-layer set (no vectors are read)."""
        from geoprobe.circuits.planted import planted_model

        emb = EmbeddingSet(np.zeros((2, 4, 2), np.float32), {"task": np.array(["x"] * 4)},
                           source="example")
        return Example(emb, params, model=planted_model())


class Circuit(_CheckpointProbe):
    """Smallest circuit for one task, its sufficiency and necessity, against random circuits.

    Parameters
    ----------
    task : str — ``quote``, ``bracket`` or ``close-last`` (:mod:`geoprobe.circuits.tasks`).
    length : int or None — sequence length (None: the export's training length, else 12).
    target_loss : float — mean answer cross-entropy (nats) the circuit must reach.
    n_prune, n_eval : int — sequences to learn the masks on / to measure on.
    steps, penalty, lr : mask training (Adam steps, per-node penalty, learning rate).
    n_random : int — random circuits of the same size. n_boot : int; level : float.
    """

    name = "circuit"
    summary = ("Smallest node circuit meeting a task-loss target in a small transformer: size, "
               "sufficiency, necessity vs random circuits (needs a model or its checkpoint).")
    memory = "in memory: the live model and n_prune + n_eval token sequences (no layer is read)"

    parameter_constraints = {
        "task": [Options({"quote", "bracket", "close-last"})],
        "length": [Interval(int, 2, None), None], "target_loss": [POSITIVE],
        "n_prune": [Interval(int, 2, None)], "n_eval": [Interval(int, 2, None)],
        "steps": [POSITIVE_INT], "penalty": [POSITIVE], "lr": [POSITIVE],
        "n_random": [POSITIVE_INT], "n_boot": [POSITIVE_INT], "level": [OPEN_UNIT],
    }
    metric_directions = {"circuit_size": False, "group_size": False, "circuit_fraction": False,
                         "circuit_edges": False, "circuit_loss": False, "ablated_loss": True,
                         "target_reached": True}

    @classmethod
    def example_input(cls, rng) -> Example:
        return cls._example({"task": "close-last", "length": 8, "target_loss": 0.01, "n_prune": 128, "n_eval": 128,
                             "steps": 100, "n_random": 5, "n_boot": 50})

    def __init__(self, task="quote", length=None, target_loss=0.15, n_prune=256, n_eval=1024,
                 steps=200, penalty=1e-3, lr=0.05, n_random=20, n_boot=1000, level=0.95):
        self.task = task
        self.length = length
        self.target_loss = target_loss
        self.n_prune = n_prune
        self.n_eval = n_eval
        self.steps = steps
        self.penalty = penalty
        self.lr = lr
        self.n_random = n_random
        self.n_boot = n_boot
        self.level = level

    def evaluate(self, ctx) -> ProbeResult:
        from geoprobe.circuits.graph import circuit_edges
        from geoprobe.circuits.prune import CircuitPruner, circuit_losses, node_means
        from geoprobe.circuits.train import task_batch

        net = self.live_model(ctx)
        length = self.length or ctx.embeddings.provenance.get("length", 12)
        if length > net.cfg.max_len:
            raise ProbeInputError(f"probe 'circuit': length={length} is longer than the "
                                  f"model's max_len={net.cfg.max_len}")
        prune_data = task_batch([self.task], self.n_prune, length, child_seed(ctx.rng))
        tokens, targets = task_batch([self.task], self.n_eval, length, child_seed(ctx.rng))
        pruner = CircuitPruner(self.target_loss, self.penalty, self.steps, self.lr,
                               seed=child_seed(ctx.rng)).fit(net, *prune_data)
        keep = pruner.keep_
        # the ablation means come from the pruning sequences: the evaluation is held out
        means = node_means(net, prune_data[0])

        def loss_ci(values):
            return bootstrap_mean(values, n_boot=self.n_boot, level=self.level, rng=ctx.rng,
                                  unit="sequences")

        runs = {"circuit_loss": circuit_losses(net, tokens, targets, keep, means),
                "ablated_loss": circuit_losses(net, tokens, targets, ~keep, means)}
        full = circuit_losses(net, tokens, targets, np.ones_like(keep), means)
        none = circuit_losses(net, tokens, targets, np.zeros_like(keep), means)
        random_losses = []
        for _ in range(self.n_random):
            rand = np.zeros_like(keep)
            rand[ctx.rng.choice(len(keep), pruner.size_, replace=False)] = True
            random_losses.append(circuit_losses(net, tokens, targets, rand, means).mean())
        random_losses = np.array(random_losses)

        groups = net.node_groups()
        edges = circuit_edges(net, keep, np.unique(targets))
        n = len(tokens)
        metrics = [Metric("circuit_size", float(pruner.size_)),
                   Metric("circuit_fraction", pruner.size_ / len(keep)),
                   Metric("circuit_edges", float(len(edges))),
                   Metric("target_reached", float(pruner.reached_))]
        start = 0
        for g, w in groups.items():
            metrics.append(Metric("group_size", float(keep[start:start + w].sum()),
                                  labels={"group": g}))
            start += w
        for name, values in runs.items():
            metrics.append(Metric.from_interval(name, loss_ci(values)))
        for label, values in (("full-model", full), ("all-ablated", none)):
            metrics.append(Metric.from_interval("circuit_loss", loss_ci(values),
                                                baseline=label))
        lo, hi = percentile_interval(random_losses, self.level)
        metrics.append(Metric("circuit_loss", float(random_losses.mean()), lo, hi,
                              len(random_losses), "random circuits",
                              {"baseline": "random-circuit"}))
        order = list(groups) + ["logits"]
        edge_array = np.array([[order.index(w), i, order.index(r), j, v]
                               for w, i, r, j, v in edges], float).reshape(-1, 5)
        return self.result(ctx, metrics,
                           {"trace": pruner.trace_, "keep": keep.astype(np.int8),
                            "random_losses": random_losses, "edges": edge_array},
                           groups=list(groups), widths=list(groups.values()), task=self.task,
                           length=int(length), n_eval=n,
                           answers=[int(a) for a in np.unique(targets)])

    @classmethod
    def plot(cls, result: ProbeResult):
        from geoprobe.circuits.draw import draw_circuit

        fig, axes = new_figure(3, width="double", aspect=0.8)
        ax_s, ax_b, ax_c = axes[0]
        trace = result.arrays["trace"]
        target = result.params["target_loss"]
        ax_s.plot(np.maximum(trace[:, 0], 0.5), np.maximum(trace[:, 1], 1e-6), "o",
                  color=PALETTE[0], ms=3, label="top-k nodes (search)")
        ax_s.axhline(target, color="k", lw=0.6, ls=":", label="target")
        size = result.metric("circuit_size").value
        ax_s.axvline(size, color=PALETTE[3], lw=0.8, label=f"circuit: {size:.0f} nodes")
        ax_s.set_xscale("log")
        ax_s.set_yscale("log")
        ax_s.xaxis.set_minor_formatter(NullFormatter())
        ax_s.set_xlabel("nodes kept")
        ax_s.set_ylabel("answer loss (nats), pruning set")
        ax_s.set_title(f"size search, task {result.info['task']}")
        ax_s.legend(frameon=False, fontsize=6, loc="lower left")  # small k, low loss: empty
        bars = [("full\nmodel", result.metric("circuit_loss", baseline="full-model")),
                ("circuit\nalone", result.metric("circuit_loss")),
                ("random\ncircuit", result.metric("circuit_loss", baseline="random-circuit")),
                ("circuit\nablated", result.metric("ablated_loss")),
                ("all\nablated", result.metric("circuit_loss", baseline="all-ablated"))]
        v = np.array([m.value for _, m in bars])
        err = np.nan_to_num(np.abs(np.array([[m.ci_low, m.ci_high] for _, m in bars]).T - v))
        colors = [BASELINE_COLOR, PALETTE[0], BASELINE_COLOR, PALETTE[3], BASELINE_COLOR]
        ax_b.bar(np.arange(len(bars)), v, yerr=err, color=colors, capsize=3)
        for x, (value, top) in enumerate(zip(v, v + err[1])):  # above the interval: the
            # full model's bar is often too short to see
            ax_b.annotate(f"{value:.2g}", (x, top), xytext=(0, 3), textcoords="offset points",
                          ha="center", fontsize=6)
        ax_b.axhline(target, color="k", lw=0.6, ls=":")
        ax_b.set_xticks(np.arange(len(bars)), [b for b, _ in bars], fontsize=6)
        ax_b.set_ylabel("answer loss (nats), held out (95% CI)")
        ax_b.set_title("sufficiency and necessity")
        groups, widths = result.info["groups"], result.info["widths"]
        keep = result.arrays["keep"].astype(bool)
        bounds = np.cumsum([0] + list(widths))
        nodes = {g: np.flatnonzero(keep[bounds[i]:bounds[i + 1]]) for i, g in enumerate(groups)}
        nodes["logits"] = np.array(result.info["answers"])
        if size <= 40:
            edges = result.arrays["edges"]
            draw_circuit(ax_c, groups + ["logits"], nodes, edges, max_edges=MAX_DRAWN_EDGES)
            drawn = ("" if len(edges) <= MAX_DRAWN_EDGES
                     else f"\n{MAX_DRAWN_EDGES} heaviest drawn")
            ax_c.set_title(f"the circuit ({len(edges)} edges){drawn}")
        else:
            ax_c.bar(np.arange(len(groups)), [len(nodes[g]) for g in groups], color=PALETTE[0])
            ax_c.set_xticks(np.arange(len(groups)), groups, rotation=30)
            ax_c.set_ylabel("nodes kept")
            ax_c.set_title("circuit by node group (too large to draw)")
        return fig


class WeightSparsity(_CheckpointProbe):
    """Zero weights, neuron connectivity and weight-graph modularity of a small transformer.

    Parameters
    ----------
    n_clusters : int — spectral clusters of each MLP layer's weight graph.
    n_shuffles : int — shuffled-weights models for the modularity baseline.
    """

    name = "weight-sparsity"
    summary = ("Fraction of zero weights, per-neuron connectivity and weight-graph modularity "
               "vs shuffled weights (needs a model or its checkpoint).")
    memory = "in memory: the live model and one (d_model + d_mlp)^2 weight graph per layer"

    parameter_constraints = {"n_clusters": [Interval(int, 2, None)],
                             "n_shuffles": [POSITIVE_INT]}
    metric_directions = {"zero_fraction": None, "neuron_degree_*": None,
                         "dead_neuron_fraction": None, "modularity": None}

    @classmethod
    def example_input(cls, rng) -> Example:
        return cls._example({"n_shuffles": 2})

    def __init__(self, n_clusters=4, n_shuffles=5):
        self.n_clusters = n_clusters
        self.n_shuffles = n_shuffles

    def evaluate(self, ctx) -> ProbeResult:
        from geoprobe.circuits.graph import (mlp_graph, neuron_degrees, shuffled_weights,
                                             spectral_modularity, zero_fraction)

        net = self.live_model(ctx)
        seed = child_seed(ctx.rng)
        degrees = neuron_degrees(net)
        shuffled = [shuffled_weights(net, seed + s) for s in range(self.n_shuffles)]
        metrics = [Metric("zero_fraction", zero_fraction(net))]
        for layer, deg in enumerate(degrees):
            name = f"mlp{layer}"
            metrics += [Metric("neuron_degree_mean", float(deg.mean()), labels={"layer": name}),
                        Metric("neuron_degree_median", float(np.median(deg)),
                               labels={"layer": name}),
                        Metric("dead_neuron_fraction", float((deg == 0).mean()),
                               labels={"layer": name}),
                        Metric("modularity", spectral_modularity(
                            mlp_graph(net, layer), self.n_clusters, seed),
                            labels={"layer": name})]
            null = np.array([spectral_modularity(mlp_graph(s, layer), self.n_clusters, seed)
                             for s in shuffled])
            lo, hi = (percentile_interval(null) if np.isfinite(null).all()
                      else (float("nan"),) * 2)
            metrics.append(Metric("modularity", float(np.mean(null)), lo, hi, len(null),
                                  "shuffles", {"layer": name, "baseline": "shuffled-weights"}))
        return self.result(ctx, metrics, {"degrees": degrees.astype(np.float64)},
                           max_degree=2 * net.cfg.d_model)

    @classmethod
    def plot(cls, result: ProbeResult):
        fig, axes = new_figure(2, width="double", aspect=0.7)
        ax_d, ax_m = axes[0]
        degrees = result.arrays["degrees"]
        bins = np.linspace(0, result.info["max_degree"], 33)
        for layer, deg in enumerate(degrees):
            ax_d.hist(deg, bins=bins, histtype="step", color=PALETTE[layer % len(PALETTE)],
                      label=f"mlp{layer}")
        ax_d.set_xlabel("non-zero weights per neuron (in + out)")
        ax_d.set_ylabel("neurons")
        zero = result.metric("zero_fraction").value
        ax_d.set_title(f"neuron connectivity ({100 * zero:.1f}% weights zero)")
        ax_d.legend(frameon=False)
        layers = [f"mlp{i}" for i in range(len(degrees))]
        x = np.arange(len(layers))
        for dx, kw, color, label in ((-0.2, {}, PALETTE[0], "model"),
                                     (0.2, {"baseline": "shuffled-weights"}, BASELINE_COLOR,
                                      "shuffled weights")):
            ms = [result.metric("modularity", layer=lay, **kw) for lay in layers]
            v = np.array([m.value for m in ms])
            err = np.nan_to_num(np.abs(np.array([[m.ci_low, m.ci_high] for m in ms]).T - v))
            ax_m.bar(x + dx, v, width=0.4, yerr=err, color=color, label=label, capsize=3)
        ax_m.set_xticks(x, layers)
        ax_m.set_ylabel("modularity Q of spectral clusters")
        ax_m.set_title("weight-graph modularity")
        legend_outside(ax_m)
        return fig
