"""Planning a sweep: which (source, probe, layer group) tasks there are, and their keys.

Pure: nothing here imports Dask or runs a probe, so a plan can be made, inspected and tested
without a cluster.

A sweep crosses *variants* of one suite (one per embedding file given by ``--embeddings``, one
per point of a ``--grid`` of suite values, or both crossed) with the suite's probes and their
layer groups. Each task has

* a **key**: the SHA-256 of the content hash of its input, the probe's name, id, parameters,
  annotations (and the content hash of every file an annotation names) and layers, its seed
  and the geoprobe version. The store files results under it, so a task whose input,
  parameters, annotation files or code version changed is computed afresh and one that did
  not is never computed twice;
* a **seed** derived from the suite seed (or the probe's own ``seed``) and the task's
  identity *without its input* (probe, parameters, layers): every checkpoint of a sweep is
  probed with the same random choices (bootstrap resamples, folds, projections), so the
  difference between two checkpoints is not resampling noise, and a task gives the same numbers
  on any worker and in any order.

The annotation value ``"sweep:last"`` (:data:`geoprobe.suite.LAST_CHECKPOINT`) names, for
each variant, the last checkpoint (highest step) of the ``--embeddings`` files at the same
grid point: with the ``similarity`` probe's ``other`` it gives each checkpoint's similarity
to the final one. A new last checkpoint changes that file, and so the key of every task that
reads it.
"""

from __future__ import annotations

import glob
import hashlib
import inspect
import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SuiteError
from ..io import load_embeddings
from ..provenance import file_sha256, read_json, write_json_atomic
from ..registry import get_generator
from ..source import layer_positions, twin_path
from ..suite import LAST_CHECKPOINT, SourceSpec, Suite, load_suite, parse_override
from ..version import __version__


def canonical_hash(obj) -> str:
    """SHA-256 (hex) of ``obj`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def derive_seed(base: int, identity: dict) -> int:
    """A seed in [0, 2**63) from ``base`` and a task's identity, the same on every machine."""
    digest = hashlib.sha256(f"{base}:{canonical_hash(identity)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class HashCache:
    """Content hashes of files and folders, remembered by (path, size, mtime).

    A resumed sweep over many checkpoints re-hashes only those that changed. ``path`` is a
    JSON file (the sweep's ``hashes.json``), or None to remember nothing.
    """

    def __init__(self, path=None):
        self.path = Path(path) if path else None
        self._entries = {}
        if self.path is not None and self.path.exists():
            data = read_json(self.path, missing="no hash cache", error=SuiteError)
            self._entries = data if isinstance(data, dict) else {}
        self._dirty = False

    @staticmethod
    def _files(path: Path) -> list[Path]:
        if path.is_dir():
            return sorted(p for p in path.rglob("*") if p.is_file())
        return [path]

    def digest(self, path) -> str:
        """SHA-256 of a file's bytes, or of a folder's file names and bytes in sorted order."""
        path = Path(path).resolve()
        if not path.exists():
            raise SuiteError(f"{path}: no such embedding file or folder")
        files = self._files(path)
        stats = [f.stat() for f in files]
        signature = [len(files), sum(s.st_size for s in stats),
                     max((s.st_mtime_ns for s in stats), default=0)]
        entry = self._entries.get(str(path))
        if entry and entry.get("signature") == signature:
            return entry["sha256"]
        if path.is_dir():
            parts = [[str(f.relative_to(path)), file_sha256(f)] for f in files]
            sha = canonical_hash(parts)
        else:
            sha = file_sha256(path)
        self._entries[str(path)] = {"signature": signature, "sha256": sha}
        self._dirty = True
        return sha

    def save(self) -> None:
        if self.path is not None and self._dirty:
            write_json_atomic(self.path, self._entries)
            self._dirty = False


@dataclass(frozen=True)
class Variant:
    """One embedding set of the sweep: a suite variant and its one probed source.

    label : how tables and figures name it (the file's stem, or ``source[key=value,...]``).
    step : training step (the last number in the file's name), or None.
    grid : the ``--grid`` values of this variant, by dotted key.
    content : content hash of its input (files' bytes, or generator, parameters and seed).
    """

    label: str
    suite: Suite
    source: str
    step: int | None
    grid: dict
    content: str

    @property
    def spec(self) -> SourceSpec:
        return self.suite.sources[self.source]

    @property
    def cached_generator(self) -> bool:
        """A generated source whose generator keeps its work in a folder (a trained model):
        made once by a preparation task before the probe tasks reuse it."""
        if not self.spec.generate:
            return False
        return "workdir" in inspect.signature(get_generator(self.spec.generate)).parameters


@dataclass(frozen=True)
class Task:
    """One probe on one layer group of one variant."""

    variant: Variant
    probe_id: str
    layers: object
    seed: int
    key: str
    annotations: dict  # the probe's annotations, "sweep:last" replaced by the file it names

    @property
    def probe(self):
        return next(p for p in self.variant.suite.probes if p.id == self.probe_id)

    def describe(self) -> dict:
        """The task as recorded in its results file and the sweep's plan."""
        spec = self.probe
        return {"key": self.key, "source": self.variant.label, "step": self.variant.step,
                "grid": self.variant.grid, "probe": self.probe_id, "probe_name": spec.probe,
                "params": spec.params, "annotations": self.annotations,
                "layers": self.layers, "seed": self.seed, "input": self.variant.content}


def step_of(path) -> int | None:
    """The training step a checkpoint's file name carries: its stem's last number
    (``step_000400.gpemb`` -> 400, ``ckpt-lam0.1-s3-12`` -> 12), else None."""
    numbers = re.findall(r"\d+", Path(path).stem)
    return int(numbers[-1]) if numbers else None


def expand_embeddings(patterns) -> list[Path]:
    """Files and folders the patterns name, each a path or a glob, in step order, then name."""
    found = {}
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.expanduser(pattern))) if glob.has_magic(pattern) \
            else [pattern]
        if not matches:
            raise SuiteError(f"--embeddings {pattern!r} matches no file")
        for m in matches:
            if not Path(m).exists():
                raise SuiteError(f"--embeddings {m}: no such file or folder")
            found[str(Path(m).resolve())] = Path(m)
    return sorted(found.values(), key=lambda p: (step_of(p) is None, step_of(p) or 0, p.name))


def expand_grid(items) -> list[dict]:
    """``["a.b=1,2", "c=x,y"]`` -> every combination, e.g. ``{"a.b": 1, "c": "x"}``; values
    parse as TOML (numbers, booleans, strings)."""
    axes = []
    for text in items:
        if "=" not in text:
            raise SuiteError(f"--grid {text!r} is not of the form dotted.key=v1,v2,...")
        key, values = text.split("=", 1)
        parsed = [parse_override(f"{key}={v.strip()}")[1] for v in values.split(",") if v.strip()]
        if not parsed:
            raise SuiteError(f"--grid {text!r} gives no values")
        axes.append([(key.strip(), v) for v in parsed])
    return [dict(combo) for combo in itertools.product(*axes)]


def _variant_label(source: str, path: Path | None, grid: dict) -> str:
    base = path.stem if path is not None else source
    if grid:
        base += "[" + ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in grid.items()) + "]"
    return base


def _content(suite: Suite, spec: SourceSpec, hashes: HashCache) -> str:
    """What a source's data is made of: its files' hashes, or its generator's inputs."""
    if spec.generate:
        return canonical_hash({"generate": spec.generate, "params": spec.params,
                               "seed": suite.seed, "layers": spec.layers})
    main = suite.resolve(spec.path)
    twin = suite.resolve(spec.twin) if spec.twin else None
    if twin is None and main.is_dir():  # the twin the set records (geoprobe's format)
        twin = twin_path(load_embeddings(main, validate=False))
    return canonical_hash({
        "main": hashes.digest(main),
        "items": hashes.digest(suite.resolve(spec.items)) if spec.items else None,
        "twin": hashes.digest(twin) if twin is not None and twin.exists() else None,
        "layers": spec.layers, "validate": spec.validate})


def _layer_groups(variant: Variant, probe_layers, per_layer: bool) -> list:
    """The probe's layer selection as one group, or with ``per_layer`` one group per layer
    (which needs the set's layer names: a file source)."""
    if not per_layer:
        return [probe_layers]
    spec = variant.spec
    if spec.generate:
        raise SuiteError(f"--per-layer needs file sources; source {spec.name!r} is generated "
                         "(its layers are known only once it is made)")
    emb = load_embeddings(variant.suite.resolve(spec.path), validate=False)
    emb = emb.select_layers(layer_positions(emb, spec.layers))
    return [emb.layer_names[i] for i in layer_positions(emb, probe_layers)]


def _resolve_annotations(spec, last: Variant | None) -> dict:
    """The probe's annotations with ``sweep:last`` replaced by the last checkpoint's path."""
    out = {}
    for name, value in spec.annotations.items():
        if value == LAST_CHECKPOINT:
            if last is None or last.step is None:
                raise SuiteError(f"probe {spec.id!r}: annotation {name} = "
                                 f"{LAST_CHECKPOINT!r} needs checkpoints given with "
                                 "--embeddings (files whose names carry their step)")
            value = str(last.suite.resolve(last.spec.path))
        out[name] = value
    return out


def _annotation_files(suite: Suite, annotations: dict, hashes: HashCache) -> dict:
    """Content hash of every annotation that names an existing file (relative to the suite)."""
    out = {}
    for name, value in annotations.items():
        if isinstance(value, str):
            path = Path(value) if Path(value).is_absolute() else suite.resolve(value)
            if path is not None and path.exists():
                out[name] = hashes.digest(path)
    return out


def make_tasks(variant: Variant, *, per_layer: bool = False, last: Variant | None = None,
               hashes: HashCache | None = None) -> list[Task]:
    """The tasks of one variant: each probe, on each of its layer groups. ``last`` is the
    variant ``sweep:last`` annotations name; ``hashes`` hashes annotation files."""
    hashes = hashes or HashCache()
    tasks = []
    for spec in variant.suite.probes:
        if spec.source != variant.source:
            continue
        annotations = _resolve_annotations(spec, last)
        files = _annotation_files(variant.suite, annotations, hashes)
        for group in _layer_groups(variant, spec.layers, per_layer):
            # the seed follows the annotations as written, not the paths they resolve to
            identity = {"probe": spec.probe, "probe_id": spec.id, "params": spec.params,
                        "annotations": spec.annotations, "layers": group}
            base = spec.seed if spec.seed is not None else variant.suite.seed
            seed = derive_seed(base, identity)
            key = canonical_hash({"input": variant.content, **identity, "seed": seed,
                                  "annotation_files": files, "geoprobe": __version__})
            tasks.append(Task(variant, spec.id, group, seed, key, annotations))
    return tasks


@dataclass
class Plan:
    """A sweep's variants (in step order, then grid order) and tasks."""

    suite: Suite
    variants: list[Variant]
    tasks: list[Task]
    grid_keys: list[str]

    @property
    def has_steps(self) -> bool:
        return any(v.step is not None for v in self.variants)


def plan_sweep(suite_name: str, overrides=(), *, embeddings=(), grid=(), items=None,
               per_layer: bool = False, hashes: HashCache | None = None) -> Plan:
    """Plan a sweep of the suite ``suite_name`` (a file or a shipped suite's name).

    Parameters
    ----------
    overrides : ``--set`` values applied to every variant
    embeddings : paths or globs of embedding sets, one variant each, for the suite's one
        source (as ``geoprobe run --embeddings``); empty: the suite's own sources
    grid : ``dotted.key=v1,v2,...`` items; their values are crossed (and crossed with the
        embedding files)
    items : an item table (CSV) for every embedding file
    per_layer : one task per layer instead of one per probe (file sources only)
    hashes : where content hashes are remembered (default: nowhere)
    """
    hashes = hashes or HashCache()
    base = load_suite(suite_name, list(overrides))
    files = expand_embeddings(embeddings) if embeddings else [None]
    points = expand_grid(grid) if grid else [{}]
    variants = []
    for path, point in itertools.product(files, points):
        sets = list(overrides) + [f"{k}={json.dumps(v)}" for k, v in point.items()]
        suite = load_suite(suite_name, sets, embeddings=str(path) if path else None,
                           items=items)
        for name, spec in suite.sources.items():
            if not any(p.source == name for p in suite.probes):
                continue
            variants.append(Variant(_variant_label(name, path, point), suite, name,
                                    step_of(path) if path else None, dict(point),
                                    _content(suite, spec, hashes)))
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        dup = sorted({x for x in labels if labels.count(x) > 1})
        raise SuiteError(f"two sweep inputs have the same name {dup[0]!r}; give files "
                         "distinct names")
    last = {}  # grid point -> its last checkpoint (variants come in step order)
    for v in variants:
        last[canonical_hash(v.grid)] = v
    tasks = [t for v in variants for t in make_tasks(
        v, per_layer=per_layer, last=last[canonical_hash(v.grid)], hashes=hashes)]
    hashes.save()
    return Plan(base, variants, tasks, [k for k in (points[0] if points else {})])
