"""``run_sweep``: plan, run what is missing, then write the table, figures and checks.

The sweep's folder::

    DIR/
      tasks/<key>.json     one file per finished task (the store; never removed by a sweep)
      sources/<hash>/      work of generated sources (a trained JEPA, its exported latents)
      hashes.json          content hashes of the input files, by path, size and mtime
      sweep.json           the plan, seeds, suite, versions, git hash, counts, checks
      sweep.csv            the tidy table (sweep.parquet too with pyarrow)
      figures/             drawn from sweep.csv alone
      junit.xml, summary.md  when the suite has checks or trends
      report.html          one page: checks and trends, figures, the last checkpoint's metrics

The folder is held (:func:`geoprobe.locks.hold`) for the whole sweep, so a second sweep into
it waits or stops instead of racing; the store makes an interrupted sweep's work permanent.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from ..errors import GeoprobeError, SuiteError
from ..locks import hold
from ..provenance import environment, file_sha256, read_json, write_json_atomic, writing
from ..registry import make_probe
from ..runner import write_html_if_possible
from ..safepath import check_name, inside
from .execute import raise_errors, run_dask, run_serial
from .figures import sweep_figures
from .plan import HashCache, plan_sweep
from .report import write_sweep_report
from .store import TaskStore
from .table import read_table, task_rows, write_table
from .trends import evaluate_trends, per_checkpoint, variant_docs

SWEEP_FORMAT = 1


def _validate(plan) -> None:
    """Every probe of every variant is known and takes its parameters: refused before any
    worker starts."""
    seen = set()
    for task in plan.tasks:
        spec = task.probe
        ident = (spec.id, repr(spec.params))
        if ident in seen:
            continue
        seen.add(ident)
        try:
            make_probe(spec.probe, **spec.params)
        except GeoprobeError as exc:
            raise SuiteError(f"probe {spec.id!r}: {exc}") from None


def _unchanged_figures(out_dir: Path, table_sha: str, formats) -> list[Path] | None:
    """The figures the last sweep drew, when they were drawn from the same table in the same
    formats and are all still there (a resumed sweep that found everything done); else None.
    Figures come from the table alone, so the same table gives the same figures."""
    path = out_dir / "sweep.json"
    if not path.exists():
        return None
    files = read_json(path, missing="no sweep.json").get("files", {})
    if files.get("table_sha256") != table_sha or files.get("formats") != list(formats):
        return None
    paths = [inside(out_dir / "figures", check_name(name, what="sweep.json figure"),
                    what="sweep.json figure") for name in files.get("figures", [])]
    return paths if all(p.exists() for p in paths) else None


def run_sweep(suite: str, out_dir, *, overrides=(), embeddings=(), grid=(), items=None,
              per_layer=False, scheduler=None, n_workers=None, n_threads=None,
              serial=False, show_progress=True, formats=("pdf", "png"), wait=0.0,
              announce=print) -> dict:
    """Run a sweep of ``suite`` into ``out_dir`` and return its ``sweep.json`` dict.

    Parameters
    ----------
    suite : a suite file or a shipped suite's name
    out_dir : the sweep's folder (see the module notes); reused, never replaced
    overrides, embeddings, grid, items, per_layer : as :func:`~geoprobe.sweep.plan.plan_sweep`
    scheduler : a Dask scheduler's address; None starts a LocalCluster
    n_workers : LocalCluster processes (default one per core); n_threads: BLAS threads each
    serial : run the tasks in this process, without Dask
    wait : seconds to wait for another sweep writing ``out_dir``
    announce : called with lines worth showing (the dashboard's address)

    The dict's ``checks`` lists every check and trend outcome; ``counts`` says how many tasks
    were computed now and how many were found done.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    with hold(out_dir, wait=wait), writing(out_dir):
        plan = plan_sweep(suite, overrides, embeddings=embeddings, grid=grid, items=items,
                          per_layer=per_layer, hashes=HashCache(out_dir / "hashes.json"))
        _validate(plan)
        if serial:
            outcome = run_serial(plan.tasks, out_dir, n_threads=n_threads,
                                 show_progress=show_progress)
        else:
            outcome = run_dask(plan.tasks, out_dir, scheduler=scheduler, n_workers=n_workers,
                               n_threads=n_threads, show_progress=show_progress,
                               announce=announce)
        raise_errors(outcome)
        t_tasks = time.perf_counter() - t_start
        store = TaskStore(out_dir)
        docs = {t.key: store.get(t.key) for t in plan.tasks}
        rows = [r for t in plan.tasks for r in task_rows(docs[t.key], plan.grid_keys)]
        tables = write_table(rows, out_dir, plan.grid_keys)
        table_sha = file_sha256(out_dir / "sweep.csv")
        figures = _unchanged_figures(out_dir, table_sha, formats)
        if figures is None:
            figures = sweep_figures(read_table(out_dir / "sweep.csv"), out_dir / "figures",
                                    formats)
        per_variant = variant_docs(plan, docs)
        outcomes = per_checkpoint(plan.suite.checks, per_variant)
        if plan.has_steps:
            outcomes += evaluate_trends(plan.suite.trends, per_variant)
        if outcomes:
            from ..checks import write_junit, write_summary

            write_junit(outcomes, out_dir / "junit.xml", plan.suite.name)
            write_summary(outcomes, out_dir / "summary.md", plan.suite.name)
        doc = {
            "geoprobe_sweep": SWEEP_FORMAT,
            "suite": {"name": plan.suite.name, "file": str(plan.suite.path),
                      "config": plan.suite.raw, "overrides": list(overrides),
                      "grid": list(grid)},
            "seed": plan.suite.seed,
            "environment": environment(),
            "executor": "serial" if serial else {"scheduler": scheduler or "LocalCluster",
                                                 "workers": n_workers,
                                                 "dashboard": outcome.dashboard},
            "variants": [{"label": v.label, "step": v.step, "grid": v.grid,
                          "input": v.content} for v in plan.variants],
            "tasks": [t.describe() for t in plan.tasks],
            "counts": {"tasks": len(plan.tasks), "computed": outcome.computed,
                       "cached": outcome.cached, "rows": len(rows)},
            "files": {"tables": [p.name for p in tables], "table_sha256": table_sha,
                      "formats": list(formats), "figures": sorted(p.name for p in figures)},
            "checks": [asdict(o) for o in outcomes],
            "timings": {"tasks_seconds": round(t_tasks, 3),
                        "total_seconds": round(time.perf_counter() - t_start, 3)},
        }
        write_json_atomic(out_dir / "sweep.json", doc)
        write_html_if_possible(doc, out_dir, write_sweep_report)
    return doc
