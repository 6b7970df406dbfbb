"""A test-only probe that kills its own process the first time it runs (a worker lost
mid-task), then measures the mean vector norm per layer. tests/test_sweep.py registers it
through a hand-made distribution on PYTHONPATH, as an installed plug-in would be."""

import os
import signal

import numpy as np

from geoprobe.metric import Metric
from geoprobe.probe import Probe


class CrashOnce(Probe):
    name = "crash-once"
    summary = "Kills its process on the first run (marker file), then mean norm per layer."
    parameter_constraints = {"marker": [str]}
    metric_directions = {"mean_norm": None}

    def __init__(self, marker="crash-once.marker"):
        self.marker = marker

    def evaluate(self, ctx):
        try:  # exclusive create: exactly one run in the whole sweep crashes
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            os.kill(os.getpid(), signal.SIGKILL)
        except FileExistsError:
            pass
        metrics = [Metric("mean_norm", float(np.linalg.norm(X, axis=1).mean()),
                          labels={"layer": layer}) for layer, X in ctx.iter_layers()]
        return self.result(ctx, metrics)
