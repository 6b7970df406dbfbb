"""Run a suite: load its sources, run its probes, write a self-explaining results directory.

Output directory layout::

    results.json        config as run, seeds, versions, git hash, timings, every metric with CI
    report.md           a Markdown table of the metrics (and checks, if any)
    figures/<id>.pdf    each probe's figure, vector ...
    figures/<id>.png    ... and raster
    junit.xml           (geoprobe check) one test case per check
    summary.md          (geoprobe check) the checks as a Markdown table

Everything is written into a temporary directory beside the target and renamed into place at
the end, so an interrupted or failed run leaves either the previous results or none, never a
half-written directory. A run holds the target's lock (``.NAME.lock`` beside it) from start to
end, so a second run into the same directory waits or stops instead of racing it, and removes
the temporary directories a killed run left there; generators get a scratch directory under
``cache_root()/work`` that is cleaned the same way (:mod:`geoprobe.locks`).
"""

from __future__ import annotations

import contextlib
import inspect
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from . import threads
from .embeddings import EmbeddingSet, replace_dir
from .errors import GeoprobeError, ProbeInputError, SuiteError
from .locks import clean_work, hold, remove_leftovers, scratch_dir
from .probe import ProbeResult
from .progress import progress
from .provenance import apply_umask, environment, read_json, write_json_atomic, writing
from .registry import get_generator, make_probe
from .report import check_results, render_figures, write_report
from .safepath import inside
from .source import AUTO, Source, resolve_source
from .suite import Suite

RESULTS_FILE = "results.json"
RESULTS_FORMAT = 1


def _load_source(suite: Suite, spec, workdir: Path) -> Source:
    """The suite source ``spec``, generated or read, with its twin: an explicit ``twin =``
    path, else the one the set records (:func:`~geoprobe.source.resolve_source`)."""
    main = _generate(suite, spec, workdir) if spec.generate else suite.resolve(spec.path)
    return resolve_source(main, items=None if spec.generate else suite.resolve(spec.items),
                          twin=suite.resolve(spec.twin) if spec.twin else AUTO,
                          layers=spec.layers, validate=spec.validate, name=spec.name)


def _generate(suite: Suite, spec, workdir: Path) -> EmbeddingSet:
    gen = get_generator(spec.generate)
    kwargs = dict(spec.params)
    accepted = inspect.signature(gen).parameters
    if "seed" in accepted:
        kwargs.setdefault("seed", suite.seed)
    if "workdir" in accepted:
        kwargs["workdir"] = inside(workdir, spec.name, error=SuiteError, what="source name")
        kwargs["workdir"].mkdir(parents=True, exist_ok=True)
    unknown = set(kwargs) - set(accepted)
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
        raise SuiteError(f"source {spec.name!r}: generator {spec.generate!r} has no "
                         f"parameter(s) {sorted(unknown)}; it takes {sorted(accepted)}")
    emb = gen(**kwargs)
    if not isinstance(emb, EmbeddingSet):
        raise SuiteError(f"generator {spec.generate!r} returned {type(emb).__name__}, "
                         "expected an EmbeddingSet")
    return emb


def _describe_source(source: Source, seconds: float) -> dict:
    emb, twin = source.embeddings, source.twin
    return {"source": emb.source, "n_items": emb.n_items, "dim": emb.dim,
            "layers": emb.layer_names, "columns": emb.items.names,
            "provenance": {k: v for k, v in emb.provenance.items() if not k.startswith("_")},
            "twin": twin.source if twin is not None else None, "seconds": round(seconds, 3)}


@threads.follows_policy
def run_suite(suite: Suite, out_dir, *, checks: bool = False, against: dict | None = None,
              workdir=None, show_progress: bool = True, formats=("pdf", "png"),
              wait: float = 0.0) -> dict:
    """Run ``suite`` and write its results directory; returns the results dict.

    Parameters
    ----------
    suite : Suite
    out_dir : path of the results directory (replaced atomically when complete)
    checks : evaluate the suite's checks and write junit.xml and summary.md
    against : a previous results dict for checks with ``against = "previous"``
    workdir : scratch directory for generators (kept); a temporary one if None
    wait : seconds to wait for another process writing ``out_dir`` (``math.inf``: as long as
        it takes) before raising :class:`~geoprobe.locks.LockedError`

    Generators and probes run under :func:`geoprobe.threads.policy`.
    """
    out_dir = Path(out_dir)
    # Validate every probe's name and parameters before any expensive work.
    probes = {}
    for spec in suite.probes:
        try:
            probes[spec.id] = make_probe(spec.probe, **spec.params)
        except GeoprobeError as exc:
            raise SuiteError(f"probe {spec.id!r}: {exc}") from None
    if checks and any(c.against for c in suite.checks) and against is None:
        raise SuiteError("this suite has checks against previous results; pass --against "
                         "PATH/results.json")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with hold(out_dir, wait=wait), contextlib.ExitStack() as cleanup:
        remove_leftovers(out_dir)
        clean_work()
        tmp = apply_umask(Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-",
                                                dir=out_dir.parent)))
        cleanup.callback(shutil.rmtree, tmp, ignore_errors=True)
        scratch = Path(workdir) if workdir else cleanup.enter_context(scratch_dir("run"))
        t_start = time.perf_counter()
        sources, source_info, warnings = {}, {}, []
        needed = {spec.source for spec in suite.probes}
        for name in progress(sorted(needed), desc="sources", enable=show_progress):
            t0 = time.perf_counter()
            sources[name] = _load_source(suite, suite.sources[name], scratch)
            source_info[name] = _describe_source(sources[name], time.perf_counter() - t0)
            collapsed = sources[name].embeddings.collapse_warning()
            if collapsed:  # said now, before the probes run, and kept in the results
                print(f"geoprobe: warning: {collapsed}", file=sys.stderr)
                warnings.append(collapsed)
        for spec in suite.probes:  # refuse missing columns/annotations before running any
            try:
                probes[spec.id].check_input(sources[spec.source].embeddings, spec.annotations,
                                            None)
            except GeoprobeError as exc:
                raise ProbeInputError(f"probe {spec.id!r}: {exc}") from None

        results, timings = {}, {}
        bar = progress(suite.probes, desc="probes", unit="probe", enable=show_progress)
        for spec in bar:
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(spec.id)
            t0 = time.perf_counter()
            seed = spec.seed if spec.seed is not None else suite.seed
            annotations = {k: _resolve_annotation(suite, v) for k, v in spec.annotations.items()}
            result = probes[spec.id].run(sources[spec.source], layers=spec.layers,
                                         annotations=annotations, seed=seed,
                                         progress=show_progress)
            timings[spec.id] = round(time.perf_counter() - t0, 3)
            warnings += [f"probe {spec.id!r}: {w}" for w in result.info.get("warnings", [])]
            results[spec.id] = (spec, result)

        doc = {
            "geoprobe_results": RESULTS_FORMAT,
            "suite": {"name": suite.name, "description": suite.description,
                      "file": str(suite.path) if suite.path else None, "config": suite.raw},
            "seed": suite.seed,
            "environment": environment(),
            "sources": source_info,
            "warnings": warnings,
            "probes": {pid: {"source": spec.source, "probe_seed": result.seed,
                             "seconds": timings[pid], **result.to_dict()}
                       for pid, (spec, result) in results.items()},
        }
        with writing(out_dir):
            if checks:
                from .checks import evaluate_checks, write_junit, write_summary

                outcomes = evaluate_checks(suite.checks, doc, against)
                doc["checks"] = [asdict(o) for o in outcomes]
                write_junit(outcomes, tmp / "junit.xml", suite.name)
                write_summary(outcomes, tmp / "summary.md", suite.name)
            render_figures(doc, tmp, formats=formats)
            doc["timings"] = {"total_seconds": round(time.perf_counter() - t_start, 3),
                              "probes": timings}
            write_json_atomic(tmp / RESULTS_FILE, doc)
            write_report(doc, tmp / "report.md")
            replace_dir(tmp, out_dir)
        return doc


def _resolve_annotation(suite: Suite, value):
    """Annotation strings that name an existing file relative to the suite become paths."""
    if isinstance(value, str) and not Path(value).is_absolute():
        candidate = suite.resolve(value)
        if candidate is not None and candidate.exists():
            return str(candidate)
    return value


def load_results(path) -> dict:
    """Read a results.json (or the directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    doc = read_json(path, missing="no results file")
    check_results(doc, path)
    return doc


def probe_results(doc: dict) -> dict[str, ProbeResult]:
    """The ProbeResult of every probe id in a results dict."""
    return {pid: ProbeResult.from_dict(d) for pid, d in doc["probes"].items()}
