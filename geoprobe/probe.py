"""The probe plug-in interface: what a probe declares, receives and returns.

A probe is a class deriving from :class:`Probe`, registered in the ``geoprobe.probes``
entry-point group. It

* declares what it needs in ``requires`` (item columns, annotations such as a treebank or a
  taxonomy, a live model) and, in ``column_parameters``, which of its parameters name item
  columns, so the host can refuse bad input by name before any work starts;
* takes its hyperparameters as ``__init__`` keyword arguments, stored unchanged
  (scikit-learn's convention: no work and no validation in ``__init__``), and declares the
  values each may take in ``parameter_constraints`` (:mod:`geoprobe.contract`);
* declares in ``metric_directions`` whether each metric it reports is better higher, lower,
  or neither;
* states in ``memory`` the memory a run needs: whether it streams the layer in row chunks
  from its memory-map or holds it in memory (and how much), shown by ``geoprobe list``;
* provides :meth:`Probe.example_input`, small valid input that ``geoprobe.testing.check_probe``
  runs it on;
* implements :meth:`Probe.evaluate`, which fits whatever it fits (learned attributes end with
  an underscore) and returns a :class:`ProbeResult`;
* implements :meth:`Probe.plot`, a classmethod that renders its figure from a result alone,
  so ``geoprobe report`` can redraw every figure from ``results.json``.

Minimal example::

    class MeanNorm(Probe):
        name = "mean-norm"
        summary = "Mean Euclidean norm of the vectors, per layer."
        memory = "in memory: one layer in float64, 8 n d bytes"

        parameter_constraints = {"n_boot": [contract.Interval(int, 1, None)]}
        metric_directions = {"mean_norm": None}

        def __init__(self, n_boot=200):
            self.n_boot = n_boot

        def evaluate(self, ctx):
            metrics = []
            for layer, X in ctx.iter_layers():
                norms = np.linalg.norm(X, axis=1)
                ci = bootstrap_mean(norms, groups=ctx.groups, n_boot=self.n_boot, rng=ctx.rng)
                metrics.append(Metric.from_interval("mean_norm", ci, layer=layer))
            return self.result(ctx, metrics)
"""

from __future__ import annotations

import fnmatch
import inspect
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from . import threads

logger = logging.getLogger(__name__)
from .contract import column_names, validate_params
from .embeddings import EmbeddingSet
from .display import (dataframe, figure_uri, format_number, has_jinja, metric_rows, render,
                      resampling_units)
from .errors import GeoprobeError, ProbeInputError
from .metric import Metric, json_number
from .plugins import PROBE_GROUP, load
from .source import AUTO, Source, resolve_source
from .stats import as_generator


@dataclass(frozen=True)
class Requirements:
    """What a probe needs beyond the vectors.

    columns : item columns that must exist in the embedding set (e.g. ``("label",)``).
    annotations : named external inputs (e.g. ``("treebank",)``), passed as
        ``annotations={name: value}`` from Python or ``[probes.annotations]`` in a suite.
    model : whether a live model object must be given.
    min_items : the fewest rows the probe can work with.
    """

    columns: tuple[str, ...] = ()
    annotations: tuple[str, ...] = ()
    model: bool = False
    min_items: int = 2

    def describe(self) -> str:
        parts = []
        if self.columns:
            parts.append("columns: " + ", ".join(self.columns))
        if self.annotations:
            parts.append("annotations: " + ", ".join(self.annotations))
        if self.model:
            parts.append("a model")
        return "; ".join(parts) or "vectors only"


def encode_array(arr) -> dict:
    arr = np.asarray(arr)
    if arr.dtype.kind in "fc":
        data = [json_number(v) for v in arr.ravel().tolist()]
    else:
        data = arr.ravel().tolist()
    return {"dtype": arr.dtype.str, "shape": list(arr.shape), "data": data}


def decode_array(d: Mapping) -> np.ndarray:
    dtype = np.dtype(d["dtype"])
    data = d["data"]
    if dtype.kind == "f":
        data = [float(v) for v in data]
    return np.asarray(data, dtype=dtype).reshape(d["shape"])


@dataclass(frozen=True)
class Series:
    """One metric along one label (layers, by default), as aligned arrays for a figure.

    labels : str array (n,), the label's values in order (the x axis).
    values, ci_low, ci_high : float arrays (n,), NaN where no metric matched.
    found : bool array (n,), where a metric matched.
    """

    labels: np.ndarray
    values: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    found: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def band(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) for ``fill_between``: the interval, or the value where it is missing."""
        return (np.where(np.isfinite(self.ci_low), self.ci_low, self.values),
                np.where(np.isfinite(self.ci_high), self.ci_high, self.values))

    def yerr(self) -> np.ndarray:
        """Distances from the value to the interval ends, shape (2, n), for ``errorbar``;
        0 where the interval is missing or does not contain the value."""
        err = np.array([self.values - self.ci_low, self.ci_high - self.values])
        return np.nan_to_num(np.clip(err, 0, None))


@dataclass(repr=False)
class ProbeResult:
    """Everything a probe found, serialisable to JSON and enough to redraw its figure.

    probe : registered probe name.
    params : the probe's hyperparameters as run.
    metrics : list of :class:`Metric` (findings and baselines).
    arrays : named arrays the figure needs (keep them small: summaries, not raw data).
    info : anything else worth recording (layer names, n_items, warnings).
    seed : the seed the run used.
    """

    probe: str
    params: dict
    metrics: list[Metric]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    seed: int | None = None

    def metric(self, name: str, **labels) -> Metric:
        """The unique metric called ``name`` whose labels include ``labels``.

        Baselines are only matched when ``baseline=...`` is given.
        """
        want = {k: str(v) for k, v in labels.items()}
        found = self._matches(name, labels)
        if len(found) == 1:
            return found[0]
        if not found:
            raise KeyError(f"{self.probe}: no metric {name!r} with labels {want}; "
                           f"have {sorted({m.key() for m in self.metrics})}")
        raise KeyError(f"{self.probe}: metric {name!r} is ambiguous, add labels to pick one of "
                       f"{[m.key() for m in found]}")

    def find(self, name: str, **labels) -> Metric | None:
        """Like :meth:`metric`, but None when no metric matches (still raises when several do)."""
        return self.metric(name, **labels) if self._matches(name, labels) else None

    def series(self, name: str, over: str = "layer", at=None, **labels) -> Series:
        """The metric ``name`` across the values of the label ``over`` (layers by default).

        ``labels`` select as in :meth:`metric` (baselines only when ``baseline=...`` is given).
        ``at`` lists the values of ``over`` to report, in order (e.g. the result's layers):
        entries with no metric are NaN and ``found`` is False there. Without ``at``, the values
        found, in the order the metrics were recorded. Two metrics at one value are ambiguous:
        KeyError, as in :meth:`metric`.
        """
        if over in labels:
            raise ValueError(f"series over {over!r} cannot also select {over}={labels[over]!r}")
        by_value = {}
        for m in self._matches(name, labels):
            if over not in m.labels:
                continue
            key = m.labels[over]
            if key in by_value:
                raise KeyError(f"{self.probe}: metric {name!r} is ambiguous at {over}={key!r}, "
                               f"add labels to pick one of "
                               f"{[x.key() for x in self._matches(name, labels)]}")
            by_value[key] = m
        keys = list(by_value) if at is None else [str(v) for v in at]
        ms = [by_value.get(k) for k in keys]

        def column(attr):
            return np.array([math.nan if m is None else getattr(m, attr) for m in ms], float)

        return Series(np.array(keys, dtype=str), column("value"), column("ci_low"),
                      column("ci_high"), np.array([m is not None for m in ms], bool))

    def _matches(self, name: str, labels: Mapping) -> list[Metric]:
        want = {k: str(v) for k, v in labels.items()}
        return [m for m in self.metrics if m.name == name
                and all(m.labels.get(k) == v for k, v in want.items())
                and ("baseline" in want or not m.is_baseline)]

    def table(self) -> list[dict]:
        """One flat dict per metric (tidy: ``pandas.DataFrame(result.table())`` works)."""
        rows = []
        for m in self.metrics:
            row = {"probe": self.probe, "metric": m.name, **m.labels, "value": m.value,
                   "ci_low": m.ci_low, "ci_high": m.ci_high, "n": m.n, "unit": m.unit}
            rows.append(row)
        return rows

    def to_frame(self):
        """:meth:`table` as a pandas DataFrame, one row per metric (needs the ``frame`` extra).
        """
        return dataframe(self.table())

    def headline(self) -> Metric | None:
        """The first finding (not a baseline) the probe reported: what a one-line summary
        shows. None when it reported only baselines."""
        return next((m for m in self.metrics if not m.is_baseline), None)

    def __repr__(self) -> str:
        # short on purpose: a notebook shows _repr_html_, a terminal or a log this line
        n_base = sum(m.is_baseline for m in self.metrics)
        text = (f"ProbeResult(probe={self.probe!r}, layers={len(self.info.get('layers', []))}, "
                f"metrics={len(self.metrics)} ({n_base} baselines), seed={self.seed}")
        head = self.headline()
        if head is not None:
            ci = (f" [{format_number(head.ci_low)}, {format_number(head.ci_high)}]"
                  if math.isfinite(head.ci_low) and math.isfinite(head.ci_high) else "")
            text += f", {head.key()}={format_number(head.value)}{ci}"
        return text + ")"

    def _repr_html_(self) -> str | None:
        """The notebook display: the figure (when the probe draws one) and the metrics,
        findings and baselines apart. None without jinja2, so the notebook shows the repr."""
        if not has_jinja():
            return None
        try:
            figure = figure_uri(self.plot())
        except (NotImplementedError, GeoprobeError):  # no figure, or its plug-in is missing
            figure = None
        findings, baselines = metric_rows(self.metrics)
        return render("result.html.j2", probe=self.probe, seed=self.seed,
                      layers=len(self.info.get("layers", [])), figure=figure,
                      alt=f"Figure of probe {self.probe}; the numbers are in the tables.",
                      units=resampling_units(self.metrics), findings=findings,
                      baselines=baselines, n_findings=len(findings), n_baselines=len(baselines))

    def plot(self):
        """Render this result's figure with the probe class that made it."""
        from .plotting import style

        with style():
            return load(PROBE_GROUP, self.probe, "probe", base=Probe).plot(self)

    def to_dict(self) -> dict:
        return {"probe": self.probe, "params": _jsonable(self.params), "seed": self.seed,
                "metrics": [m.to_dict() for m in self.metrics],
                "arrays": {k: encode_array(v) for k, v in self.arrays.items()},
                "info": _jsonable(self.info)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "ProbeResult":
        return cls(d["probe"], dict(d.get("params", {})),
                   [Metric.from_dict(m) for m in d.get("metrics", [])],
                   {k: decode_array(v) for k, v in d.get("arrays", {}).items()},
                   dict(d.get("info", {})), d.get("seed"))


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float):
        return json_number(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


@dataclass
class ProbeContext:
    """What :meth:`Probe.evaluate` receives.

    embeddings : the embedding set (all layers available, loaded lazily).
    layers : names of the layers to probe, in order.
    annotations : named external inputs (see :class:`Requirements`).
    model : a live model, when the probe asked for one.
    rng : the generator for every random choice this probe makes.
    seed : the seed ``rng`` came from (recorded in the result).
    progress : whether to show progress bars.
    is_twin : whether ``embeddings`` is the random-init twin, evaluated as the control of
        another set (its metrics become the ``random-init`` baseline), rather than the set
        being probed.
    warnings : what :meth:`warn` said (the run records them in ``result.info["warnings"]``).
    """

    embeddings: EmbeddingSet
    layers: list[str]
    annotations: dict[str, Any]
    model: Any
    rng: np.random.Generator
    seed: int
    progress: bool = True
    is_twin: bool = False
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Log ``message`` as a warning of the ``geoprobe.probe`` logger now (the command line
        shows it as ``geoprobe: warning: message``; ``-qq`` hides it) and record it in the
        result (the runner copies it into results.json's ``warnings``): for a run that changed
        what it computes, such as a subsample taken to fit in memory."""
        logger.warning(message)
        self.warnings.append(message)

    @property
    def items(self):
        return self.embeddings.items

    def column(self, name: str) -> np.ndarray:
        return self.embeddings.items[name]

    def iter_layers(self, dtype=np.float64) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(layer_name, X)`` with X of shape (n_items, dim), one layer at a time."""
        from .progress import progress

        for name in progress(self.layers, desc="layers", unit="layer", enable=self.progress):
            yield name, self.embeddings.layer(name, dtype=dtype)


@dataclass
class Example:
    """Small valid input for a probe (what :meth:`Probe.example_input` returns).

    embeddings : a small embedding set with at least two layers.
    params : hyperparameters that keep the run fast (seconds) on it.
    annotations : named external inputs the probe needs.
    model : the live model, for probes that need one.
    """

    embeddings: EmbeddingSet
    params: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    model: Any = None


class Probe:
    """Base class of every probe. See the module docstring for the contract."""

    #: registered name (the entry-point name)
    name: ClassVar[str] = ""
    #: one line for ``geoprobe list``
    summary: ClassVar[str] = ""
    requires: ClassVar[Requirements] = Requirements()
    #: parameter name -> list of allowed forms (types, None, :mod:`geoprobe.contract`
    #: constraints); checked by ``make_probe`` and :meth:`check_input`
    parameter_constraints: ClassVar[dict[str, list]] = {}
    #: parameters whose value names item columns (a str, a list of str, or None for none):
    #: with ``requires.columns`` they make :meth:`required_columns`
    column_parameters: ClassVar[tuple[str, ...]] = ()
    #: metric name (or ``fnmatch`` pattern, e.g. ``"recall@*"``) -> True when higher is
    #: better, False when lower is, None when neither
    metric_directions: ClassVar[dict[str, bool | None]] = {}
    #: run the probe on the embedding set's random-init twin too, when it has one
    uses_twin: ClassVar[bool] = True
    #: metric labels whose values are layer names: the twin's metrics take the main set's
    #: names there (a probe comparing two layers labels both, e.g. ``("layer", "vs_layer")``)
    layer_labels: ClassVar[tuple[str, ...]] = ("layer",)
    #: one line saying what memory a run needs, for ``geoprobe list``: begin with "streams"
    #: when the layer is read from its memory-map in row chunks (then give the size that does
    #: not grow with the rows), else with "in memory" and the bytes it holds in terms of
    #: n (rows) and d (width), and what it does when that is too much
    memory: ClassVar[str] = ""

    # -- scikit-learn style parameters ---------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict:
        """Hyperparameters as given to ``__init__``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- the declared contract -----------------------------------------------------------
    @classmethod
    def check_params(cls, params: Mapping, name: str | None = None) -> None:
        """Refuse a parameter value that ``parameter_constraints`` does not allow."""
        validate_params(name or cls.name, cls.parameter_constraints, params)

    def required_columns(self) -> dict[str, str | None]:
        """Item columns this instance reads: column name -> the parameter naming it (None for
        the static ``requires.columns``)."""
        needed = {c: None for c in self.requires.columns}
        for param in self.column_parameters:
            for column in column_names(getattr(self, param)):
                needed.setdefault(column, param)
        return needed

    @classmethod
    def direction(cls, metric: str) -> tuple[bool, bool | None]:
        """``(declared, higher_is_better)`` of the metric called ``metric``.

        An exact name in ``metric_directions`` wins over a pattern; ``declared`` is False when
        neither matches (the direction is then unknown, not "higher is better").
        """
        if metric in cls.metric_directions:
            return True, cls.metric_directions[metric]
        for pattern, higher in cls.metric_directions.items():
            if fnmatch.fnmatchcase(metric, pattern):
                return True, higher
        return False, None

    @classmethod
    def example_input(cls, rng: np.random.Generator) -> Example:
        """Small valid input (seconds to run) drawn with ``rng``, for
        ``geoprobe.testing.check_probe``; its set should have at least two layers."""
        raise NotImplementedError(f"probe {cls.name!r} declares no example_input")

    # -- running -------------------------------------------------------------------------
    def check_input(self, embeddings: EmbeddingSet, annotations: Mapping, model) -> None:
        """Refuse parameters, columns, annotations or a model that break the declared
        contract, naming what is wrong; nothing has run yet."""
        self.check_params(self.get_params(), self.name)
        req = self.requires
        needed = self.required_columns()
        static = [c for c, param in needed.items() if param is None and c not in embeddings.items]
        if static:
            raise ProbeInputError(
                f"probe {self.name!r} needs item column(s) {static} that {embeddings.source} "
                f"lacks; its columns are {embeddings.items.names}")
        for column, param in needed.items():
            if column not in embeddings.items:
                raise ProbeInputError(
                    f"probe {self.name!r}: parameter {param}={getattr(self, param)!r}: no item "
                    f"column {column!r} in {embeddings.source}; its columns are "
                    f"{embeddings.items.names}")
        missing = [a for a in req.annotations if a not in annotations]
        if missing:
            raise ProbeInputError(f"probe {self.name!r} needs annotation(s) {missing}")
        if req.model and model is None:
            raise ProbeInputError(f"probe {self.name!r} needs a model")
        if embeddings.n_items < req.min_items:
            raise ProbeInputError(f"probe {self.name!r} needs at least {req.min_items} items, "
                                  f"{embeddings.source} has {embeddings.n_items}")

    @threads.follows_policy
    def run(self, embeddings: EmbeddingSet | Source, *,
            layers: Sequence[int | str] | str | None = None,
            annotations: Mapping | None = None, model=None, seed: int = 0,
            twin: EmbeddingSet | bool | None = True, progress: bool = True) -> ProbeResult:
        """Check the input, evaluate, and add the random-init twin's metrics as a baseline.

        Parameters
        ----------
        embeddings : Source or EmbeddingSet
            A :class:`~geoprobe.source.Source` (from :func:`~geoprobe.source.resolve_source`,
            as the runner passes it), or a plain set, which becomes one here.
        layers : "all", "last", a layer, or a list of layers (positions or names)
        annotations : mapping of annotation name to value
        model : a live model, for probes that need one
        seed : int
            Seeds every random choice; recorded in the result.
        twin : EmbeddingSet, True or False/None
            The random-init control. True: the Source's twin, or for a plain set the one its
            provenance records, if any. A set (with a plain set only): that twin, aligned to
            the set's items. False/None: none.

        Runs under :func:`geoprobe.threads.policy` (BLAS and torch threads, restored on
        return).
        """
        if isinstance(embeddings, Source):
            if isinstance(twin, EmbeddingSet):
                raise ProbeInputError("a Source brings its own twin; give the twin to "
                                      "resolve_source instead of to run()")
            source = embeddings if twin is True else embeddings.without_twin()
        else:
            source = resolve_source(embeddings, twin=(AUTO if twin is True else twin or None)
                                    if self.uses_twin else None)
        embeddings = source.embeddings
        annotations = dict(annotations or {})
        self.check_input(embeddings, annotations, model)
        names = self._layer_names(embeddings, layers)
        ctx = ProbeContext(embeddings, names, annotations, model, as_generator(seed), seed,
                           progress)
        result = self.evaluate(ctx)
        result.seed = seed
        if ctx.warnings:
            result.info.setdefault("warnings", []).extend(ctx.warnings)
        result.info.setdefault("n_items", embeddings.n_items)
        result.info.setdefault("dim", embeddings.dim)
        result.info.setdefault("layers", names)
        result.info.setdefault("source", embeddings.source)
        if source.twin is not None and self.uses_twin:
            twin = source.twin
            # Layers correspond by position; the twin's metrics take the main set's names.
            positions = [embeddings.layer_index(name) for name in names]
            rename = {twin.layer_names[i]: embeddings.layer_names[i] for i in positions}
            twin_ctx = ProbeContext(twin, list(rename), annotations, model,
                                    as_generator(seed), seed, progress, is_twin=True)
            twin_result = self.evaluate(twin_ctx)
            for m in twin_result.metrics:
                if not m.is_baseline:
                    m.labels["baseline"] = "random-init"
                    for label in self.layer_labels:
                        if label in m.labels:
                            m.labels[label] = rename.get(m.labels[label], m.labels[label])
                    result.metrics.append(m)
            result.info["twin_source"] = twin.source
        for m in result.metrics:
            if m.higher_is_better is None:
                m.higher_is_better = self.direction(m.name)[1]
        return result

    @staticmethod
    def _layer_names(embeddings: EmbeddingSet, layers) -> list[str]:
        if layers is None or layers == "all":
            return list(embeddings.layer_names)
        if layers == "last":
            return [embeddings.layer_names[-1]]
        if isinstance(layers, (str, int)):
            layers = [layers]
        return [embeddings.layer_names[embeddings.layer_index(layer)] for layer in layers]

    def evaluate(self, ctx: ProbeContext) -> ProbeResult:
        """Fit and evaluate on ``ctx``; return metrics with CIs, baselines and figure arrays."""
        raise NotImplementedError

    def result(self, ctx: ProbeContext, metrics: list[Metric], arrays=None, **info) -> ProbeResult:
        """Build this probe's :class:`ProbeResult` (a convenience for ``evaluate``)."""
        return ProbeResult(self.name, self.get_params(), metrics, dict(arrays or {}), info,
                           ctx.seed)

    @classmethod
    def plot(cls, result: ProbeResult):
        """Render the probe's figure from ``result`` alone; returns a matplotlib Figure."""
        raise NotImplementedError(f"probe {cls.name!r} has no figure")


class CheckpointModelProbe(Probe):
    """Base of probes that need a live model: ``model=...`` given to :meth:`Probe.run`, or the
    checkpoint that the embedding set's provenance names (``provenance["checkpoint"]``, which
    the exporting generator records).

    Subclasses set ``model_kind`` (what the model is, for the error message),
    ``exported_by`` (what records the checkpoint) and :meth:`load_checkpoint`. The random-init
    twin is not used: the model itself is what is probed.
    """

    uses_twin = False
    model_kind: ClassVar[str] = "a model"
    exported_by: ClassVar[str] = "an export"

    def check_input(self, embeddings: EmbeddingSet, annotations: Mapping, model) -> None:
        super().check_input(embeddings, annotations, model)
        if model is None and not embeddings.provenance.get("checkpoint"):
            raise ProbeInputError(
                f"probe {self.name!r} needs {self.model_kind}: pass model=... or use "
                f"{self.exported_by}, whose provenance names its checkpoint "
                f"({embeddings.source} names none)")

    @classmethod
    def live_model(cls, ctx: ProbeContext):
        """``ctx.model``, or the model loaded from the set's checkpoint."""
        if ctx.model is not None:
            return ctx.model
        return cls.load_checkpoint(ctx.embeddings.provenance["checkpoint"])

    @staticmethod
    def load_checkpoint(path):
        """The model stored at ``path``."""
        raise NotImplementedError
