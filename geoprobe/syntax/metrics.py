"""Corpus-level parsing metrics from per-sentence scores, with percentile intervals from one
bootstrap over the report split's sentences."""

from __future__ import annotations

import numpy as np

from geoprobe.probe import Metric
from geoprobe.stats import ClusterBootstrap
from geoprobe.syntax.scoring import SentenceScores


class SentenceBootstrap:
    """Corpus-level parsing metrics with percentile intervals over report sentences.

    One :class:`~geoprobe.stats.ClusterBootstrap` over sentences (``kernel``) is shared by
    every metric of a layer; the statistics below are computed from per-sentence sums.
    counts : int array (n_boot, n_sent), sentence counts of each replicate.
    """

    def __init__(self, n_sent: int, *, n_boot: int, level: float, rng: np.random.Generator):
        self.kernel = ClusterBootstrap(None, n_sent, n_boot=n_boot, rng=rng, unit="sentences",
                                       level=level)
        self.counts = self.kernel.counts

    def _metric(self, name, value, boot, labels, higher=True):
        return self.kernel.metric(name, value, boot, higher_is_better=higher, **labels)

    def ratio(self, name, num_den: np.ndarray, **labels) -> Metric:
        """Corpus-level ``sum(num) / sum(den)`` over sentences; num_den of shape (n_sent, 2)."""
        num, den = num_den[:, 0], num_den[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = (self.counts @ num) / (self.counts @ den)
        return self._metric(name, num.sum() / max(den.sum(), 1e-300), boot, labels)

    def mean(self, name, value_valid: np.ndarray, **labels) -> Metric:
        """Mean of per-sentence values over sentences where they are defined."""
        return self.ratio(name, np.stack([value_valid[:, 0] * value_valid[:, 1],
                                          value_valid[:, 1]], 1), **labels)

    def length_average(self, name, values: np.ndarray, lengths: np.ndarray, lo=5, hi=50,
                       **labels) -> Metric:
        """Mean within each sentence length in [lo, hi], then mean over lengths (DSpr/NSpr)."""
        ok = np.isfinite(values) & (lengths >= lo) & (lengths <= hi)
        lens = np.unique(lengths[ok])
        M = (lengths[:, None] == lens[None, :]) & ok[:, None]
        v = np.where(ok, values, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.nanmean((v @ M) / M.sum(0)) if len(lens) else np.nan
            boot = np.nanmean(((self.counts * v) @ M) / (self.counts @ M), axis=1) \
                if len(lens) else np.full(len(self.counts), np.nan)
        return self._metric(name, value, boot, labels)

    def balanced(self, name, correct: np.ndarray, total: np.ndarray, **labels) -> Metric:
        """Mean over relation types of per-type recall; correct, total of shape (n_sent, t)."""
        def bal(c, t):
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.nanmean(np.where(t > 0, c / t, np.nan), axis=-1)
        return self._metric(name, bal(correct.sum(0), total.sum(0)),
                            bal(self.counts @ correct, self.counts @ total), labels)


def scores_to_metrics(boot: SentenceBootstrap, sc: SentenceScores, **labels) -> list[Metric]:
    """Every report metric of one fitted map, both conventions, with sentence-bootstrap CIs."""
    ours, ref = sc.ours, sc.ref
    # Ours pools counts over the corpus; the reference averages each sentence's tree share.
    out = [boot.ratio("uuas", ours.uuas, **labels), boot.ratio("uas", ours.uas, **labels),
           boot.ratio("las", ours.las, **labels), boot.ratio("root_accuracy", ours.root, **labels),
           boot.length_average("dspr", sc.dspr, sc.lengths, **labels),
           boot.ratio("relation_accuracy", ours.relations, **labels),
           boot.balanced("relation_balanced_accuracy", ours.rel_correct, ours.rel_total,
                         **labels),
           boot.mean("ref_uuas", ref.uuas, **labels), boot.mean("ref_uas", ref.uas, **labels),
           boot.mean("ref_las", ref.las, **labels),
           boot.ratio("ref_root_accuracy", ref.root, **labels),
           boot.ratio("ref_relation_accuracy", ref.relations, **labels),
           boot.balanced("ref_relation_balanced_accuracy", ref.rel_correct, ref.rel_total,
                         **labels)]
    if sc.nspr is not None:
        out.append(boot.length_average("nspr", sc.nspr, sc.lengths, **labels))
    return out
