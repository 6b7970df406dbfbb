"""Run a suite: load its sources, run its probes, write a self-explaining results directory.

Output directory layout::

    results.json        config as run, seeds, versions, git hash, timings, every metric with CI
    report.md           failed checks first (if any), then a Markdown table of the metrics
    report.html         the same with figures, one self-contained page (needs jinja2)
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
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from . import threads
from .display import has_jinja
from .checks import evaluate_checks, write_junit, write_summary
from .embeddings import EmbeddingSet, replace_dir
from .errors import GeoprobeError, ProbeInputError, SuiteError
from .frames import GROUPS, frame_sensitivity
from .locks import clean_work, hold, remove_leftovers, scratch_dir
from .progress import progress
from .provenance import apply_umask, environment, read_json, write_json_atomic, writing
from .registry import get_generator, make_probe
from .report import check_results, render_figures, write_report
from .report_html import write_html_report
from .results import SuiteResults
from .safepath import inside
from .source import AUTO, Source, resolve_source
from .suite import LAST_CHECKPOINT, Suite

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
RESULTS_FORMAT = 1


def load_source(suite: Suite, spec, workdir: Path) -> Source:
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
              wait: float = 0.0, frames: Sequence[str] = (),
              n_frames: int = 20) -> SuiteResults:
    """Run ``suite`` and write its results directory; returns the results dict (a
    :class:`~geoprobe.results.SuiteResults`, which a notebook displays as tables).

    Parameters
    ----------
    suite : Suite
    out_dir : path of the results directory (replaced atomically when complete)
    checks : also write junit.xml and summary.md (``geoprobe check``). Either way the checks
        that need no previous results are evaluated into ``doc["checks"]`` and report.md
        lists the failed ones at its top
    against : a previous results dict for checks with ``against = "previous"``
    workdir : scratch directory for generators (kept); a temporary one if None
    wait : seconds to wait for another process writing ``out_dir`` (``math.inf``: as long as
        it takes) before raising :class:`~geoprobe.locks.LockedError`
    frames, n_frames : groups of changes of frame (:data:`geoprobe.frames.GROUPS`) under which
        to rerun every probe ``n_frames`` times (:func:`geoprobe.frames.frame_sensitivity`);
        the rows go to ``results["frames"][probe_id]`` and the report

    Generators and probes run under :func:`geoprobe.threads.policy`.
    """
    out_dir = Path(out_dir)
    unknown = [g for g in frames if g not in GROUPS]
    if unknown:
        raise SuiteError(f"--frames: unknown group(s) {unknown}; choose from {', '.join(GROUPS)}")
    if frames and n_frames < 1:
        raise SuiteError(f"--n-frames must be at least 1, got {n_frames}")
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
            sources[name] = load_source(suite, suite.sources[name], scratch)
            source_info[name] = _describe_source(sources[name], time.perf_counter() - t0)
            log.info("source %s: %d items x %d dims, %d layer(s), loaded in %.1f s", name,
                     source_info[name]["n_items"], source_info[name]["dim"],
                     len(source_info[name]["layers"]), time.perf_counter() - t0)
            collapsed = sources[name].embeddings.collapse_warning()
            if collapsed:  # said now, before the probes run, and kept in the results
                log.warning(collapsed)
                warnings.append(collapsed)
        for spec in suite.probes:  # refuse missing columns/annotations before running any
            try:
                probes[spec.id].check_input(sources[spec.source].embeddings, spec.annotations,
                                            None)
            except GeoprobeError as exc:
                raise ProbeInputError(f"probe {spec.id!r}: {exc}") from None

        results, timings, frame_rows = {}, {}, {}
        bar = progress(suite.probes, desc="probes", unit="probe", enable=show_progress)
        for spec in bar:
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(spec.id)
            t0 = time.perf_counter()
            seed = spec.seed if spec.seed is not None else suite.seed
            annotations = {k: resolve_annotation(suite, v) for k, v in spec.annotations.items()}
            result = probes[spec.id].run(sources[spec.source], layers=spec.layers,
                                         annotations=annotations, seed=seed,
                                         progress=show_progress)
            timings[spec.id] = round(time.perf_counter() - t0, 3)
            warnings += [f"probe {spec.id!r}: {w}" for w in result.info.get("warnings", [])]
            log.info("probe %s (%s): %d metrics in %.1f s", spec.id, spec.probe,
                     len(result.metrics), timings[spec.id])
            results[spec.id] = (spec, result)
            if frames and not probes[spec.id].requires.model:
                t0 = time.perf_counter()
                frame_rows[spec.id] = frame_sensitivity(
                    probes[spec.id], sources[spec.source].embeddings, result, groups=frames,
                    n_frames=n_frames, seed=seed, layers=spec.layers, annotations=annotations)
                timings[f"{spec.id} (frames)"] = round(time.perf_counter() - t0, 3)

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
        if frames:
            doc["frames"] = {"groups": list(frames), "n_frames": n_frames,
                             "probes": frame_rows}
        with writing(out_dir):
            # Every run evaluates the checks it can, so that report.md says when a suite's
            # own checks fail (a collapsed run must not look clean); checks against previous
            # results need --against and are only listed as not evaluated without it.
            waiting = [c for c in suite.checks if c.against is not None and against is None]
            outcomes = evaluate_checks([c for c in suite.checks if c not in waiting], doc,
                                       against)
            if suite.checks:
                doc["checks"] = [asdict(o) for o in outcomes]
                doc["checks_not_evaluated"] = [c.id for c in waiting]
            if checks:
                write_junit(outcomes, tmp / "junit.xml", suite.name)
                write_summary(outcomes, tmp / "summary.md", suite.name)
            render_figures(doc, tmp, formats=formats)
            doc["timings"] = {"total_seconds": round(time.perf_counter() - t_start, 3),
                              "probes": timings}
            write_json_atomic(tmp / RESULTS_FILE, doc)
            write_report(doc, tmp / "report.md")
            write_html_if_possible(doc, tmp)
            replace_dir(tmp, out_dir)
        return SuiteResults(doc)


def write_html_if_possible(doc: dict, out_dir, write=write_html_report) -> Path | None:
    """Write ``out_dir/report.html`` with ``write(doc, out_dir)`` (a sweep passes its own
    page); without jinja2 (the ``report`` extra) say so on stderr instead, since the
    results are complete without it."""
    if not has_jinja():
        log.warning("no report.html: it needs jinja2 (pip install 'geoprobe[report]')")
        return None
    return write(doc, out_dir)


def resolve_annotation(suite: Suite, value):
    """Annotation strings that name an existing file relative to the suite become paths."""
    if value == LAST_CHECKPOINT:  # geoprobe.sweep.plan replaces it before a sweep's tasks run
        raise SuiteError(f"annotation {LAST_CHECKPOINT!r} names a sweep's last checkpoint: "
                         "it works in `geoprobe sweep --embeddings ...`, not in a single run")
    if isinstance(value, str) and not Path(value).is_absolute():
        candidate = suite.resolve(value)
        if candidate is not None and candidate.exists():
            return str(candidate)
    return value


def load_results(path) -> SuiteResults:
    """Read a results.json (or the directory holding one); its probes' :class:`ProbeResult`
    objects come from ``SuiteResults.probe_results()``."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    doc = read_json(path, missing="no results file")
    check_results(doc, path)
    return SuiteResults(doc)
