"""Frame sensitivity: does a metric move when the space's coordinate frame changes?

A regulariser can pick a model's coordinate frame without changing its predictions: any
invertible map ``A`` applied to a layer's vectors is undone by a linear readout ``A^-1``
downstream. A metric that moves under such a change of frame measures the regulariser, not
the data (Steck et al. 2024 showed it for cosine similarity). :func:`frame_sensitivity`
reruns a probe on copies of a set whose every layer is mapped by its own random matrix from
one of three groups and reports, per metric, the spread of its values across frames beside
the width of its own confidence interval.

Groups (:func:`random_frame`, each with condition number at most ``max_condition``):

* ``orthogonal``: a Haar-random orthogonal matrix (rotations and reflections; condition 1);
* ``diagonal``: a positive diagonal rescaling ``diag(exp(u))``, ``u`` uniform in
  ``[-h, h]``, ``h = log(max_condition) / 2``: the Steck family;
* ``linear``: ``Q1 diag(exp(u)) Q2^T`` with Haar ``Q1, Q2`` and ``u`` as above: a general
  invertible map with bounded condition number.

Expected invariances: RankMe and participation ratio (functions of singular values) are
invariant under ``orthogonal`` and not under ``diagonal`` or ``linear``; linear CKA and
Procrustes distance likewise; cosine similarities are invariant under ``orthogonal`` only
(and only when the map is shared by the vectors compared); the R^2 of an unregularised linear
readout is invariant under all three (a ridge readout nearly so, through its penalty).

A metric is *frame-dependent* under a group when the range of its values over the frames
(max - min) exceeds the width of its confidence interval on the original set, or
``1e-6 * max(1, |value|)`` when that is larger (a metric reported without an interval, or
with a degenerate one, must be invariant up to round-off). Each frame's run uses the probe's seed, so the bootstrap
and baselines draw the same replicates and the spread is the frame's effect alone. The
random-init twin is not rerun, and probes that need a live model are skipped (a frame change
of the exported vectors says nothing about the model's own forward pass).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .embeddings import EmbeddingSet
from .errors import GeoprobeError, first_line

GROUPS = ("orthogonal", "diagonal", "linear")
DEFAULT_MAX_CONDITION = 10.0
#: the tolerance of a metric without an interval, relative to max(1, |value|)
EXACT_RTOL = 1e-6


def _haar_orthogonal(dim: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))  # the sign fix makes the distribution Haar


def random_frame(group: str, dim: int, rng: np.random.Generator,
                 max_condition: float = DEFAULT_MAX_CONDITION) -> np.ndarray:
    """A random invertible (dim, dim) matrix of ``group`` (see the module docstring)."""
    if group not in GROUPS:
        raise GeoprobeError(f"frames: unknown group {group!r}; choose from {', '.join(GROUPS)}")
    if group == "orthogonal":
        return _haar_orthogonal(dim, rng)
    half = math.log(max_condition) / 2
    scales = np.exp(rng.uniform(-half, half, dim))
    if group == "diagonal":
        return np.diag(scales)
    return (_haar_orthogonal(dim, rng) * scales) @ _haar_orthogonal(dim, rng).T


def reframe(emb: EmbeddingSet, group: str, rng: np.random.Generator,
            max_condition: float = DEFAULT_MAX_CONDITION) -> EmbeddingSet:
    """A copy of ``emb`` (in memory, float64) with each layer ``X`` replaced by ``X @ A``, a
    fresh draw of ``group`` per layer; items and provenance kept, the frame's group recorded."""
    layers = [np.asarray(emb.layer(i), dtype=np.float64)
              @ random_frame(group, emb.dim, rng, max_condition) for i in range(emb.n_layers)]
    return EmbeddingSet(np.stack(layers), emb.items,
                        provenance={**emb.provenance, "frame": group},
                        layer_names=emb.layer_names, source=f"{emb.source} [{group} frame]",
                        validate=False)


def frame_sensitivity(probe, emb: EmbeddingSet, result, *, groups: Sequence[str] = GROUPS,
                      n_frames: int = 20, seed: int = 0, layers=None,
                      annotations: Mapping | None = None,
                      max_condition: float = DEFAULT_MAX_CONDITION) -> list[dict]:
    """Rerun ``probe`` on ``n_frames`` reframed copies of ``emb`` per group.

    Parameters
    ----------
    probe : a Probe instance
    emb : EmbeddingSet, the set ``result`` was computed on (cut to its layers)
    result : ProbeResult of ``probe`` on ``emb``; its non-baseline metrics are compared
    groups, n_frames, max_condition : which frames and how many (module docstring)
    seed : the probe's seed (every rerun uses it); frames are drawn from a generator seeded
        with ``[seed, n]`` for the n-th group in :data:`GROUPS`
    layers, annotations : as given to ``probe.run``

    Returns
    -------
    One dict per (metric, group): ``metric``, ``labels``, ``group``, ``value`` and
    ``ci_width`` (on ``emb``), ``frame_min``, ``frame_max``, ``spread`` (max - min over
    frames), ``ratio`` (spread / tolerance) and ``dependent`` (ratio > 1). When the probe
    refuses a reframed set (input that is not a space to reframe), the group's rows have NaN
    spread, ``dependent`` None and ``refused``, the probe's one-line error.
    """
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise GeoprobeError(f"frames: unknown group(s) {unknown}; choose from "
                            f"{', '.join(GROUPS)}")
    base = [m for m in result.metrics if not m.is_baseline]
    rows = []
    for group in groups:
        rng = np.random.default_rng([seed, GROUPS.index(group)])
        values = np.full((len(base), n_frames), np.nan)
        try:
            for k in range(n_frames):
                framed = probe.run(reframe(emb, group, rng, max_condition), layers=layers,
                                   annotations=annotations, seed=seed, twin=False,
                                   progress=False)
                for i, m in enumerate(base):
                    found = framed.find(m.name, **m.labels)
                    values[i, k] = np.nan if found is None else found.value
        except GeoprobeError as exc:  # input that is not a space (EASE's 0/1 interactions)
            rows += [_row(m, group, math.nan, math.nan, math.nan, None, refused=first_line(exc))
                     for m in base]
            continue
        for i, m in enumerate(base):
            width = m.ci_high - m.ci_low
            # the exact tolerance is also the floor: a degenerate interval (a copy against
            # itself: CKA 1 in every replicate) must not turn round-off into a dependence
            tol = max(width if math.isfinite(width) else 0.0,
                      EXACT_RTOL * max(1.0, abs(m.value) if math.isfinite(m.value) else 0.0))
            finite = values[i][np.isfinite(values[i])]
            if not finite.size:  # the metric was NaN in every frame: no verdict
                rows.append(_row(m, group, math.nan, math.nan, tol, None))
                continue
            lo, hi = float(finite.min()), float(finite.max())
            rows.append(_row(m, group, lo, hi, tol, bool(hi - lo > tol)))
    return rows


def _row(m, group: str, lo: float, hi: float, tol: float, dependent, **extra) -> dict:
    """One result row; NaN (no interval, no value) is stored as None, as JSON allows."""
    def num(x):
        return float(x) if math.isfinite(x) else None

    return {"metric": m.name, "labels": dict(m.labels), "group": group, "value": num(m.value),
            "ci_width": num(m.ci_high - m.ci_low), "frame_min": num(lo), "frame_max": num(hi),
            "spread": num(hi - lo), "ratio": num((hi - lo) / tol), "dependent": dependent,
            **extra}


def frames_table(rows: list[dict]) -> list[str]:
    """Markdown lines: one row per metric and labels, one column per group
    (``spread / tolerance``, marked when frame-dependent)."""
    groups = list(dict.fromkeys(r["group"] for r in rows))
    by_key: dict[tuple, dict] = {}
    for r in rows:
        key = (r["metric"], tuple(sorted(r["labels"].items())))
        by_key.setdefault(key, {})[r["group"]] = r
    lines = ["| metric | labels | value | CI width | " + " | ".join(
        f"{g}: spread (ratio)" for g in groups) + " |",
        "|---|---|---|---|" + "---|" * len(groups)]
    for (name, labels), cells in by_key.items():
        first = next(iter(cells.values()))
        parts = []
        for g in groups:
            r = cells.get(g)
            if r is None or r["dependent"] is None:
                parts.append("n/a")
            else:
                parts.append(f"{r['spread']:.3g} ({r['ratio']:.3g})"
                             + (" **dependent**" if r["dependent"] else ""))
        lines.append(f"| {name} | {', '.join(f'{k}={v}' for k, v in labels)} | "
                     f"{_fmt(first['value'])} | {_fmt(first['ci_width'])} | "
                     + " | ".join(parts) + " |")
    return lines


def _fmt(x) -> str:
    return "" if x is None else f"{x:.4g}"
