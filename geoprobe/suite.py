"""Suites: a TOML file naming embedding sources, probes with their parameters, and checks.

Format::

    [suite]
    name = "planted"                # default: the file name
    description = "..."
    seed = 0                        # every probe's seed unless it sets its own

    [sources.planted]               # one table per source
    generate = "planted-spectrum"   # a registered generator ...
    params = { n_items = 2000 }
    # path = "emb.npy"              # ... or a file (any format load_embeddings reads)
    # items = "labels.csv"          # row descriptions for a file that lacks them
    # twin = "random_init.npy"      # the random-init control, same items (default: the
    #                               # twin the set's provenance records, if any)
    # layers = ["0", "3"]           # restrict to some layers: "all", "last", a layer, a list

    [[probes]]
    id = "spectrum"                 # default: the probe name; must be unique
    probe = "covariance-spectrum"   # registered probe name
    source = "planted"              # default: the only source
    layers = "all"                  # "all", "last", a layer, or a list
    params = { group = "episode" }  # the probe's __init__ arguments
    annotations = { }               # named external inputs the probe requires
    # seed = 1

    [[checks]]
    id = "rank1-collapsed"          # default: probe-metric-<label values>, here
                                    #   "spectrum-rankme-rank1"; must be unique
    probe = "spectrum"              # a probe id
    metric = "rankme"
    labels = { layer = "rank1" }    # or the shorthand: layer = "rank1"
    op = "<="                       # >, >=, <, <=
    value = 2.0
    # against = "previous"          # or compare with the results given by --against:
    # max_drop = 0.05               #   fail when the metric drops by more than 5 % ...
    # ci_overlap = true             #   ... or when the two CIs no longer overlap

    [[trends]]                      # read by `geoprobe sweep` only (docs/sweeps.md):
    probe = "spectrum"              #   checks across a sweep's checkpoints
    metric = "rankme"
    layer = "rank1"
    max_drop = 0.1                  # or op = ">=", value = 8, from_step = 400

The suite's name, source names and probe ids become folder and file names, so each must be
1-128 letters, digits, '.', '_' or '-' starting with a letter or digit (docs/safety.md).
Relative paths are relative to the suite file. Any value can be overridden with
``--set dotted.key=value``; probes and checks are addressed by id
(``probes.spectrum.params.n_boot=50``, ``checks.spectrum-rankme-rank1.value=1.5``), so CI can
tighten a threshold without editing the suite. Dots in a default check id become underscores
(a dot would split the key); an explicit ``id`` may not contain one. ``--embeddings PATH``
replaces the one source's data, so one suite checks every checkpoint.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import SuiteError, first_line
from .safepath import check_name

#: What tomllib raises on hostile text: a syntax error (TOMLDecodeError, a ValueError), an
#: integer of more digits than Python converts (ValueError), nesting beyond the recursion limit.
_TOML_ERRORS = (ValueError, RecursionError)

# The keys each table may hold and the TOML types of their values.
_NUMBER = (int, float)
_LAYERS = (str, int, list)
_SUITE_KEYS = {"name": str, "description": str, "seed": int}
_SOURCE_KEYS = {"generate": str, "params": dict, "path": str, "items": str, "twin": str,
                "layers": _LAYERS, "validate": bool}
_PROBE_KEYS = {"id": str, "probe": str, "source": str, "layers": _LAYERS, "params": dict,
               "annotations": dict, "seed": int}
_TREND_KEYS = {"probe": str, "metric": str, "labels": dict, "layer": (str, int), "op": str,
               "value": _NUMBER, "from_step": int, "max_drop": _NUMBER, "name": str, "id": str}
_CHECK_KEYS = {"probe": str, "metric": str, "labels": dict, "layer": (str, int), "op": str,
               "value": _NUMBER, "against": str, "max_drop": _NUMBER, "ci_overlap": bool,
               "name": str, "id": str}
OPS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
       "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


@dataclass
class SourceSpec:
    name: str
    generate: str | None = None
    params: dict = field(default_factory=dict)
    path: str | None = None
    items: str | None = None
    twin: str | None = None
    layers: Any = None
    validate: bool = True


#: annotation value standing for a sweep's last checkpoint (replaced by geoprobe.sweep.plan)
LAST_CHECKPOINT = "sweep:last"


@dataclass
class ProbeSpec:
    id: str
    probe: str
    source: str
    layers: Any = "all"
    params: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    seed: int | None = None


def _describe_target(probe: str, metric: str, labels: dict) -> str:
    """``probe.metric[label=value,...]``: what a check or trend is about."""
    lab = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{probe}.{metric}" + (f"[{lab}]" if lab else "")


@dataclass
class CheckSpec:
    probe: str
    metric: str
    labels: dict = field(default_factory=dict)
    op: str | None = None
    value: float | None = None
    against: str | None = None
    max_drop: float | None = None
    ci_overlap: bool = False
    name: str = ""
    id: str = ""

    def describe(self) -> str:
        target = _describe_target(self.probe, self.metric, self.labels)
        if self.op is not None:
            return f"{target} {self.op} {self.value}"
        parts = []
        if self.max_drop is not None:
            parts.append(f"drops by at most {self.max_drop:g} (relative)")
        if self.ci_overlap:
            parts.append("CI overlaps the previous CI")
        return f"{target} " + " and ".join(parts) + " vs previous results"


@dataclass
class TrendSpec:
    """A check across a sweep's checkpoints in step order (:mod:`geoprobe.sweep.trends`):
    ``max_drop``, the most the metric may drop (relative, by its direction) between
    consecutive checkpoints; or ``op``/``value``, a threshold it must meet at every checkpoint
    from ``from_step`` on."""

    probe: str
    metric: str
    labels: dict = field(default_factory=dict)
    op: str | None = None
    value: float | None = None
    from_step: int = 0
    max_drop: float | None = None
    name: str = ""
    id: str = ""

    def describe(self) -> str:
        target = _describe_target(self.probe, self.metric, self.labels)
        if self.op is not None:
            return f"{target} {self.op} {self.value:g} from step {self.from_step} on"
        return f"{target} drops by at most {self.max_drop:g} between checkpoints"


@dataclass
class Suite:
    name: str
    description: str
    seed: int
    sources: dict[str, SourceSpec]
    probes: list[ProbeSpec]
    checks: list[CheckSpec]
    path: Path | None
    raw: dict
    trends: list[TrendSpec] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def resolve(self, p: str | None) -> Path | None:
        if p is None:
            return None
        path = Path(p).expanduser()
        return path if path.is_absolute() else self.base_dir / path


def shipped_suites() -> dict[str, Path]:
    """Names and paths of the suites installed with geoprobe."""
    root = resources.files("geoprobe.suites")
    return {Path(str(f)).stem: Path(str(f)) for f in root.iterdir() if str(f).endswith(".toml")}


def find_suite(name_or_path: str) -> Path:
    """A suite file given by path, or a shipped suite given by name."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise SuiteError(f"{path}: suite file not found")
        return path
    shipped = shipped_suites()
    if name_or_path in shipped:
        return shipped[name_or_path]
    raise SuiteError(f"no suite file or shipped suite named {name_or_path!r}; "
                     f"shipped suites: {', '.join(sorted(shipped)) or 'none'}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], value); value parsed as TOML, else a string."""
    if "=" not in text:
        raise SuiteError(f"override {text!r} is not of the form dotted.key=value")
    key, raw = text.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise SuiteError(f"override {text!r} has an empty key")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except _TOML_ERRORS:
        value = raw
    return keys, value


def check_id(spec: dict) -> str:
    """A check's id: its ``id``, else ``PROBE-METRIC`` and its label values in key order
    (``spectrum-rankme-rank1``), with ``-previous`` for a check against previous results (so
    a threshold and a regression check on one metric differ), dots made underscores so
    ``--set checks.ID...`` reaches it."""
    if "id" in spec:
        return spec["id"]
    labels = spec.get("labels")
    labels = {k: str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    if "layer" in spec:
        labels["layer"] = str(spec["layer"])
    parts = [spec.get("probe"), spec.get("metric"), *(labels[k] for k in sorted(labels))]
    if spec.get("against") is not None:
        parts.append(spec["against"])
    return "-".join(str(p) for p in parts).replace(".", "_")


def _probe_id(spec: dict) -> str:
    return spec.get("id", spec.get("probe"))


def _trend_id(spec: dict) -> str:
    """A trend's id: its ``id``, else the check id of its target and its kind,
    ``PROBE-METRIC-LABELS-max_drop`` or ``PROBE-METRIC-LABELS-from_STEP``."""
    if "id" in spec:
        return spec["id"]
    kind = "max_drop" if "max_drop" in spec else f"from_{spec.get('from_step', 0)}"
    return f"{check_id(spec)}-{kind}"


_LIST_IDS = {"probes": _probe_id, "checks": check_id, "trends": _trend_id}


def _apply_override(raw: dict, keys: list[str], value) -> None:
    node: Any = raw
    if keys[0] in _LIST_IDS:  # lists in TOML; address their entries by id
        kind, ident = keys[0][:-1], _LIST_IDS[keys[0]]
        if len(keys) < 3:
            raise SuiteError(f"override of a {kind} needs an id and a key: "
                             f"{keys[0]}.ID.key=value")
        entries = [e for e in raw.get(keys[0], []) if isinstance(e, dict)]
        matches = [e for e in entries if ident(e) == keys[1]]
        if not matches:
            raise SuiteError(f"override names {kind} {keys[1]!r}; the suite's {keys[0]} are "
                             f"{[ident(e) for e in entries]}")
        node, keys = matches[0], keys[2:]
    for k in keys[:-1]:
        nxt = node.setdefault(k, {})
        if not isinstance(nxt, dict):
            raise SuiteError(f"override: {k!r} is not a table")
        node = nxt
    node[keys[-1]] = value


def load_suite(name_or_path: str, overrides: list[str] = (), *, embeddings: str | None = None,
               items: str | None = None) -> Suite:
    """Read, override and validate a suite. Raises :class:`SuiteError` naming what is wrong."""
    path = find_suite(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SuiteError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except _TOML_ERRORS as exc:
        raise SuiteError(f"{path}: malformed TOML: {first_line(exc)}") from None
    return build_suite(raw, path=path, overrides=overrides, embeddings=embeddings, items=items)


def build_suite(raw: dict, *, path: Path | None = None, overrides=(), embeddings=None,
                items=None) -> Suite:
    raw = copy.deepcopy(raw)
    where = str(path) if path else "suite"
    for text in overrides:
        _apply_override(raw, *parse_override(text))
    if embeddings is not None or items is not None:
        sources = raw.setdefault("sources", {})
        if len(sources) > 1:
            raise SuiteError(f"{where}: --embeddings/--items need a suite with one source, this "
                             f"one has {sorted(sources)}; use --set sources.NAME.path=...")
        name = next(iter(sources), "embeddings")
        src = sources.setdefault(name, {})
        if embeddings is not None:
            src.pop("generate", None)
            src.pop("params", None)
            src.pop("twin", None)
            src["path"] = str(Path(embeddings).resolve())
        if items is not None:
            src["items"] = str(Path(items).resolve())

    # [[trends]] are checks across checkpoints, read by `geoprobe sweep` (geoprobe.sweep.trends)
    _check_keys(raw, {"suite": dict, "sources": dict, "probes": list, "checks": list,
                      "trends": list}, f"{where}: top level")
    head = raw.get("suite", {})
    _check_keys(head, _SUITE_KEYS, f"{where} [suite]")
    seed = head.get("seed", 0)
    # the name is the default results folder, geoprobe-results/<name>
    if head.get("name") is not None:
        suite_name = check_name(head["name"], what=f"{where} [suite]: name", error=SuiteError)
    else:
        suite_name = check_name(path.stem if path else "suite", error=SuiteError,
                                what=f"{where}: suite name (from the file name; set [suite] name)")

    sources = {}
    for name, spec in raw.get("sources", {}).items():
        # a source's name becomes its generator's scratch folder
        check_name(name, what=f"{where} [sources]: source name", error=SuiteError)
        _check_keys(spec, _SOURCE_KEYS, f"{where} [sources.{name}]")
        if bool(spec.get("generate")) == bool(spec.get("path")):
            raise SuiteError(f"{where} [sources.{name}]: give exactly one of 'path' or 'generate'")
        sources[name] = SourceSpec(name=name, **spec)
    if not sources:
        raise SuiteError(f"{where}: no [sources.NAME] table")

    probes, ids = [], set()
    for i, spec in enumerate(raw.get("probes", [])):
        label = f"{where} [[probes]] #{i + 1}"
        _check_keys(spec, _PROBE_KEYS, label)
        if "probe" not in spec:
            raise SuiteError(f"{label}: missing 'probe' (the registered probe name)")
        pid = _probe_id(spec)
        # the id names the probe's figure files
        check_name(pid, what=f"{label}: {'id' if 'id' in spec else 'probe (the default id)'}",
                   error=SuiteError)
        if pid in ids:
            raise SuiteError(f"{label}: duplicate probe id {pid!r}; give each an 'id'")
        ids.add(pid)
        source = spec.get("source")
        if source is None:
            if len(sources) != 1:
                raise SuiteError(f"{label}: 'source' is required when there are several sources")
            source = next(iter(sources))
        if source not in sources:
            raise SuiteError(f"{label}: unknown source {source!r}; sources are {sorted(sources)}")
        for key in ("params", "annotations"):
            if not isinstance(spec.get(key, {}), dict):
                raise SuiteError(f"{label}: '{key}' must be a table")
        probes.append(ProbeSpec(id=pid, probe=spec["probe"], source=source,
                                layers=spec.get("layers", "all"),
                                params=dict(spec.get("params", {})),
                                annotations=dict(spec.get("annotations", {})),
                                seed=spec.get("seed")))
    if not probes:
        raise SuiteError(f"{where}: no [[probes]] entry")

    checks, check_ids = [], {}
    for i, spec in enumerate(raw.get("checks", [])):
        label = f"{where} [[checks]] #{i + 1}"
        _check_keys(spec, _CHECK_KEYS, label)
        labels = _target_labels(spec, ids, label)
        cid = check_id(spec)
        if not isinstance(cid, str) or not cid or "." in cid:
            raise SuiteError(f"{label}: 'id' must be a non-empty string without '.' (--set "
                             f"checks.ID.key=value splits at dots), got {cid!r}")
        if cid in check_ids:
            raise SuiteError(f"{label}: duplicate check id {cid!r} (also check #"
                             f"{check_ids[cid] + 1}); give each an 'id'")
        check_ids[cid] = i
        has_threshold = "op" in spec or "value" in spec
        relative = spec.get("against") is not None
        if has_threshold == relative:
            raise SuiteError(f"{label}: give either 'op' and 'value', or 'against' with "
                             "'max_drop' and/or 'ci_overlap'")
        if has_threshold:
            _check_threshold(spec, label)
        elif spec.get("max_drop") is None and not spec.get("ci_overlap"):
            raise SuiteError(f"{label}: a check against previous results needs 'max_drop' "
                             "and/or 'ci_overlap = true'")
        check = CheckSpec(probe=spec["probe"], metric=spec["metric"], labels=labels,
                          op=spec.get("op"), value=spec.get("value"),
                          against=spec.get("against"), max_drop=spec.get("max_drop"),
                          ci_overlap=bool(spec.get("ci_overlap", False)), id=cid)
        check.name = spec.get("name") or check.describe()
        checks.append(check)

    return Suite(name=suite_name, description=head.get("description", ""), seed=seed,
                 sources=sources, probes=probes, checks=checks, path=path, raw=raw,
                 trends=_trends(raw, ids, where))


def _target_labels(spec: dict, probe_ids: set, label: str) -> dict[str, str]:
    """The labels a check or trend selects its metric by (``layer`` merged in), after
    checking that it names a probe id and a metric."""
    for key in ("probe", "metric"):
        if key not in spec:
            raise SuiteError(f"{label}: missing '{key}'")
    if spec["probe"] not in probe_ids:
        raise SuiteError(f"{label}: unknown probe id {spec['probe']!r}; ids are "
                         f"{sorted(probe_ids)}")
    if not isinstance(spec.get("labels", {}), dict):
        raise SuiteError(f"{label}: 'labels' must be a table")
    labels = {k: str(v) for k, v in spec.get("labels", {}).items()}
    if "layer" in spec:
        labels["layer"] = str(spec["layer"])
    return labels


def _check_threshold(spec: dict, label: str) -> None:
    if spec.get("op") not in OPS or not isinstance(spec.get("value"), (int, float)):
        raise SuiteError(f"{label}: 'op' must be one of {sorted(OPS)} and 'value' a "
                         f"number, got {spec.get('op')!r} and {spec.get('value')!r}")


def _trends(raw: dict, probe_ids: set, where: str) -> list[TrendSpec]:
    trends, seen = [], set()
    for i, spec in enumerate(raw.get("trends", [])):
        label = f"{where} [[trends]] #{i + 1}"
        _check_keys(spec, _TREND_KEYS, label)
        labels = _target_labels(spec, probe_ids, label)
        tid = _trend_id(spec)
        if not isinstance(tid, str) or not tid or "." in tid or tid in seen:
            raise SuiteError(f"{label}: id {tid!r} must be unique, non-empty and without '.' "
                             "(give each trend an 'id')")
        seen.add(tid)
        threshold = "op" in spec or "value" in spec
        if threshold == ("max_drop" in spec):
            raise SuiteError(f"{label}: give either 'op' and 'value' (and 'from_step'), or "
                             "'max_drop'")
        if threshold:
            _check_threshold(spec, label)
        trend = TrendSpec(spec["probe"], spec["metric"], labels, spec.get("op"),
                          spec.get("value"), spec.get("from_step", 0), spec.get("max_drop"),
                          id=tid)
        trend.name = spec.get("name") or trend.describe()
        trends.append(trend)
    return trends


def probe_suite(probe: str, embeddings, *, items=None, twin=None, params=None,
                layers="all", seed: int = 0, checks=(), annotations=None) -> Suite:
    """A suite of one probe on one embedding file (``geoprobe probe``, the pytest plug-in).

    The probe's name is its id and the suite's name; ``checks`` are ``[[checks]]`` tables
    without ``probe`` (it is this one), e.g. ``{"metric": "rankme", "layer": "0", "op": ">=",
    "value": 20}``. ``annotations`` are the probe's annotations (e.g. ``{"other": path}``
    for the similarity probe). Paths are made absolute, so the suite does not depend on the cwd.
    """
    source = {"path": str(Path(embeddings).resolve())}
    if items:
        source["items"] = str(Path(items).resolve())
    if twin:
        source["twin"] = str(Path(twin).resolve())
    raw = {"suite": {"name": probe, "seed": seed}, "sources": {"embeddings": source},
           "probes": [{"probe": probe, "params": dict(params or {}), "layers": layers,
                       "annotations": dict(annotations or {})}],
           "checks": [{"probe": probe, **c} for c in checks]}
    return build_suite(raw)


def _check_keys(spec, allowed: dict[str, type | tuple], label: str) -> None:
    """``spec`` is a table holding only ``allowed`` keys, each with a value of its type."""
    if not isinstance(spec, dict):
        raise SuiteError(f"{label}: must be a table, got {spec!r:.60}")
    unknown = set(spec) - set(allowed)
    if unknown:
        raise SuiteError(f"{label}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    for key, value in spec.items():
        kind = allowed[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise SuiteError(f"{label}: {key!r} must be {names}, got {value!r:.60}")
