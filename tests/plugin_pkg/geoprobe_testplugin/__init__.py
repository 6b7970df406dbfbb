"""A minimal third-party probe: the mean Euclidean norm of the vectors, per layer."""

import numpy as np

from geoprobe.contract import Interval
from geoprobe.embeddings import EmbeddingSet
from geoprobe.plotting import new_figure
from geoprobe.probe import Example, Metric, Probe, Requirements
from geoprobe.stats import bootstrap_mean


class MeanNorm(Probe):
    name = "mean-norm"
    summary = "Mean vector norm per layer (test plug-in)."
    requires = Requirements(columns=("group",))
    parameter_constraints = {"n_boot": [Interval(int, 1, None)]}
    metric_directions = {"mean_norm": None}
    memory = "in memory: one layer in float64, 8 n d bytes"

    @classmethod
    def example_input(cls, rng):
        X = rng.standard_normal((2, 40, 5))
        return Example(EmbeddingSet(X, {"group": np.arange(40) // 4}), {"n_boot": 20})

    def __init__(self, n_boot=100):
        self.n_boot = n_boot

    def evaluate(self, ctx):
        metrics = []
        for layer, X in ctx.iter_layers():
            ci = bootstrap_mean(np.linalg.norm(X, axis=1), groups=ctx.column("group"),
                                n_boot=self.n_boot, rng=ctx.rng, unit="group")
            metrics.append(Metric.from_interval("mean_norm", ci, layer=layer))
        return self.result(ctx, metrics)

    @classmethod
    def plot(cls, result):
        fig, axes = new_figure()
        values = [m.value for m in result.metrics if not m.is_baseline]
        axes[0, 0].plot(values, marker="o")
        return fig
