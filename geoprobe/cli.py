"""The ``geoprobe`` command line: a thin layer over the Python API.

Expected errors (bad input, missing data, malformed suites) print one line and exit with 2;
failed checks exit with 1 (``check``, and ``run --fail-on-checks``); anything else is a bug and keeps its traceback. Subcommands from
plug-ins register through the ``geoprobe.commands`` entry-point group: each entry point is a
function ``register(subparsers)`` that adds a parser and sets ``func=run`` with
``run(args) -> int``.

For scripts: ``--json`` on run, check, probe, info and list prints one JSON document on stdout
and nothing else there (progress bars, messages and anything a plug-in prints go to stderr);
``-q``/``-v`` on every subcommand set how much the ``geoprobe`` logger says on stderr
(:mod:`geoprobe.logs`); ``geoprobe completion bash|zsh|tcsh`` prints a completion script.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
import textwrap
from pathlib import Path

from . import __version__, threads
from .errors import GeoprobeError, SuiteError
from .locks import LockedError, hold
from .logs import cli_logging
from .safepath import inside

log = logging.getLogger(__name__)

#: the suite ``geoprobe run`` runs with no arguments
DEFAULT_SUITE = "jepa-tworoom"
#: subcommands that take ``--threads`` (extract is a plug-in: it gets the flag here)
THREADED_COMMANDS = ("run", "check", "probe", "extract", "sweep")
DEFAULT_OUT = Path("geoprobe-results")
#: subcommands that print their output as one JSON document with ``--json``
JSON_COMMANDS = ("run", "check", "probe", "info", "list")
#: shells ``geoprobe completion`` writes scripts for (those shtab supports)
COMPLETION_SHELLS = ("bash", "zsh", "tcsh")

EPILOG = textwrap.dedent("""\
    examples:
      geoprobe run                                  the main job: train a SIGReg JEPA, probe its latent
      geoprobe run planted                          a 10-second demo on planted ranks
      geoprobe list                                 probes, with what each needs
      geoprobe probe covariance-spectrum emb.npy --items labels.csv -o out/
      geoprobe run my_suite.toml -o out/ --embeddings ckpt_42.npy
      geoprobe check my_suite.toml -o out/ --against previous/results.json
      geoprobe report out/                          redraw every figure from results.json
      geoprobe report out/ --html                   ... and out/report.html, one page for a browser
      geoprobe check suite.toml -o out/ --json -q   for scripts: JSON on stdout, exit 1 on failure
      source <(geoprobe completion bash)            tab completion in this shell
      geoprobe sweep my_suite.toml -o sweep/ --embeddings 'ckpts/step_*.gpemb'
    """)

SWEEP_EPILOG = textwrap.dedent("""\
    examples:
      geoprobe sweep my_suite.toml -o sweep/ --embeddings 'ckpts/step_*.gpemb'
          every checkpoint x every probe of the suite; the step is the last number in a
          file's name; rerun after a crash or a new checkpoint: only what is missing runs
      geoprobe sweep jepa-tworoom -o lam/ --grid sources.tworoom.params.lam=0,0.01,0.1,1
          the suite's generated source at each lambda (the lambda study)
      geoprobe sweep my_suite.toml -o sweep/ --embeddings 'ckpts/*.gpemb' --per-layer
          one task per layer: more, smaller tasks for more workers
      geoprobe sweep my_suite.toml -o sweep/ --embeddings 'ckpts/*' --scheduler tcp://host:8786
          the same tasks on an existing Dask cluster (workers must see the same files)

    writes sweep.csv (one row per metric: source, step, probe, metric, layer, labels, value,
    CI), tasks/<key>.json per task, figures/ (metric vs step with CI bands, layer x step
    heatmaps, metric vs grid value), report.html (checks and trends, figures, the last
    checkpoint's metrics: one page for a browser), and with [[checks]] or [[trends]] in the
    suite junit.xml and summary.md; exits 1 when a check or trend fails. Guide: docs/sweeps.md.
    """)


def _suite_args(p: argparse.ArgumentParser, suite_optional: bool) -> None:
    p.add_argument("suite", nargs="?" if suite_optional else None,
                   default=DEFAULT_SUITE if suite_optional else None,
                   help="a suite file (.toml) or the name of a shipped suite "
                        f"(see `geoprobe list --suites`; default: {DEFAULT_SUITE})")
    p.add_argument("-o", "--out", type=Path,
                   help=f"results directory (default: {DEFAULT_OUT}/<suite name>); replaced "
                        "atomically when the run completes")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any suite value, e.g. --set probes.spectrum.params.n_boot=50, "
                        "--set checks.spectrum-rankme-0.value=25 (probes and checks by id) "
                        "or --set sources.main.path=emb.npy (repeatable; values parse as TOML)")
    p.add_argument("--embeddings", metavar="PATH",
                   help="use this embedding file for the suite's one source")
    p.add_argument("--items", metavar="CSV", help="item table (one row per embedding row)")
    p.add_argument("--seed", type=int, help="override the suite seed")
    p.add_argument("--workdir", type=Path,
                   help="keep generated data here (default: a temporary directory)")
    p.add_argument("--formats", default="pdf,png",
                   help="figure formats, comma-separated (default: pdf,png; svg also works)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--frames", default="", metavar="GROUPS",
                   help="rerun every probe on copies of each set whose layers are mapped by "
                        "random changes of frame that a linear readout undoes, and report "
                        "each metric's spread across frames beside its CI: comma-separated "
                        "groups from orthogonal,diagonal,linear (see docs/frames.md)")
    p.add_argument("--n-frames", type=int, default=20, metavar="N",
                   help="frames drawn per group with --frames (default 20)")
    p.add_argument("--wait", type=float, nargs="?", const=math.inf, default=0.0,
                   metavar="SECONDS",
                   help="if another run is writing the same results directory, wait for it "
                        "(at most SECONDS, if given) instead of stopping at once")
    _add_log_option(p)


def _add_log_option(p) -> None:
    p.add_argument("--log", metavar="TRACKER[:URI]", dest="tracker",
                   help="also log parameters, metrics (with CI bounds) and the results "
                        "directory to an experiment tracker: 'mlflow' (a local ./mlruns "
                        "folder) or 'mlflow:URI' (a folder or a tracking server)")


def _open_tracker(args):
    """The tracker ``--log`` names, or None; made before the run, so that a missing tracker
    package stops it early."""
    if not args.tracker:
        return None
    from .tracking import make_tracker

    return make_tracker(args.tracker)


def _log_to_tracker(tracker, args, doc, out) -> None:
    if tracker is not None:
        from .tracking import log_results

        log_results(tracker, doc, out)
        log.info("logged to %s", args.tracker)


def _load(args):
    from .suite import load_suite

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"suite.seed={args.seed}")
    return load_suite(args.suite, overrides, embeddings=args.embeddings, items=args.items)


def _run(args, checks: bool) -> int:
    from .runner import load_results, run_suite

    suite = _load(args)
    out = args.out or inside(DEFAULT_OUT, suite.name, what="[suite] name", error=SuiteError)
    tracker = _open_tracker(args)
    against = load_results(args.against) if getattr(args, "against", None) else None
    with _suggest_wait(args):
        doc = run_suite(suite, out, checks=checks, against=against, workdir=args.workdir,
                        show_progress=_show_progress(args), wait=args.wait,
                        formats=_names(args.formats), frames=_names(args.frames),
                        n_frames=args.n_frames)
    _log_to_tracker(tracker, args, doc, out)
    n_metrics = sum(len(p["metrics"]) for p in doc["probes"].values())
    html = f"{out}/report.html, " if (Path(out) / "report.html").is_file() else ""
    lines = [f"{suite.name}: {len(doc['probes'])} probe(s), {n_metrics} metrics -> "
             f"{out}/results.json", f"report: {html}{out}/report.md   figures: {out}/figures/"]
    failed = [c for c in doc.get("checks", []) if not c["passed"]]
    if checks:
        lines += [f"  {'PASS' if c['passed'] else 'FAIL'}  {c['name']}  ({c['message']})"
                  f"  [id {c['id']}]" for c in doc["checks"]]
        lines.append(f"{len(doc['checks']) - len(failed)} passed, {len(failed)} failed "
                     f"(junit: {out}/junit.xml, summary: {out}/summary.md)")
    elif failed:  # said where a user running the suite looks, not only in report.md
        log.warning("%d of %d checks failed: %s (see the top of %s/report.md)", len(failed),
                    len(doc["checks"]), ", ".join(c["id"] or c["name"] for c in failed), out)
    _output(args, _results_payload(doc, out), lines)
    if not checks:  # `run` exits 0 on failed checks unless asked; `check` always fails
        return 1 if failed and args.fail_on_checks else 0
    return 1 if failed else 0


def _results_payload(doc: dict, out: Path) -> dict:
    """What ``--json`` prints for a results directory: where its files are, every metric and
    every check, without the arrays the figures are drawn from (they stay in results.json)."""
    checks = doc.get("checks", [])
    return {"suite": doc["suite"]["name"], "seed": doc.get("seed"), "out": str(out),
            "results": str(out / "results.json"), "report": str(out / "report.md"),
            "warnings": doc.get("warnings", []),
            "probes": {pid: {"probe": e["probe"], "figures": e.get("figures", []),
                             "metrics": e["metrics"]} for pid, e in doc["probes"].items()},
            "checks": checks, "failed": sum(not c["passed"] for c in checks)}


def _output(args, payload: dict, lines: list[str]) -> None:
    """A command's output: ``payload`` kept for :func:`main` to print as JSON with ``--json``,
    else the human-readable ``lines`` on stdout (none with ``-q``)."""
    if getattr(args, "json", False):
        args.json_payload = payload
    elif _verbosity(args) >= 0:
        print("\n".join(lines))


def _verbosity(args) -> int:
    return getattr(args, "verbose", 0) - getattr(args, "quiet", 0)


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated option (``--formats pdf,png``, ``--frames a,b``) as its names."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


@contextlib.contextmanager
def _suggest_wait(args):
    """A held output lock names ``--wait`` in its error, unless the user already waited."""
    try:
        yield
    except LockedError as exc:
        if args.wait:
            raise
        raise LockedError(f"{exc}; pass --wait to run after it") from None


def _show_progress(args) -> bool:
    return not args.no_progress and _verbosity(args) >= 0


def cmd_run(args) -> int:
    return _run(args, checks=False)


def cmd_check(args) -> int:
    return _run(args, checks=True)


def cmd_sweep(args) -> int:
    from .sweep import run_sweep

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"suite.seed={args.seed}")
    out = args.out or inside(DEFAULT_OUT, Path(args.suite).stem + "-sweep",
                             what="suite name", error=SuiteError)
    workers = None if args.workers is None else threads.parse(args.workers, what="--workers")
    try:
        with _suggest_wait(args):
            doc = run_sweep(args.suite, out, overrides=overrides, embeddings=args.embeddings,
                            grid=args.grid, items=args.items, per_layer=args.per_layer,
                            scheduler=args.scheduler, n_workers=workers,
                            n_threads=args.threads, serial=args.serial,
                            show_progress=_show_progress(args), formats=_names(args.formats),
                            wait=args.wait)
    except KeyboardInterrupt:
        print(f"geoprobe: interrupted; finished tasks are kept in {out}/tasks, run the same "
              "command again to resume", file=sys.stderr)
        return 130
    c = doc["counts"]
    print(f"{doc['suite']['name']}: {c['tasks']} task(s) over {len(doc['variants'])} "
          f"input(s): {c['computed']} computed, {c['cached']} already done; {c['rows']} rows "
          f"-> {out}/sweep.csv, figures in {out}/figures/"
          + (f", page {out}/report.html" if (out / "report.html").is_file() else ""))
    if not doc["checks"]:
        return 0
    failed = [x for x in doc["checks"] if not x["passed"]]
    for x in failed:
        print(f"  FAIL  {x['name']}  ({x['message']})  [id {x['id']}]")
    print(f"{len(doc['checks']) - len(failed)} passed, {len(failed)} failed "
          f"(junit: {out}/junit.xml, summary: {out}/summary.md)")
    return 1 if failed else 0


def cmd_report(args) -> int:
    from .report import render_figures, write_report
    from .runner import RESULTS_FILE, load_results
    from .provenance import write_json_atomic, writing
    from .sweep.report import SWEEP_FILE

    out = args.results if args.results.is_dir() else args.results.parent
    if (out / SWEEP_FILE).is_file():
        return _report_sweep(args, out)
    doc = load_results(args.results)
    # held: a run replacing the directory meanwhile would swallow these files
    with hold(out), writing(out):
        made = render_figures(doc, out, formats=tuple(args.formats.split(",")))
        write_json_atomic(out / RESULTS_FILE, doc)
        write_report(doc, out / "report.md")
        if args.html:
            from .report_html import write_html_report

            write_html_report(doc, out)
    print(f"redrew {sum(len(v) for v in made.values())} figure file(s) in {out}/figures; "
          f"report: {out}/report.md" + (f" and {out}/report.html" if args.html else ""))
    return 0


def _report_sweep(args, out: Path) -> int:
    """``geoprobe report SWEEP_DIR --html``: the sweep's page again, from its files alone."""
    from .provenance import read_json, writing
    from .sweep.report import SWEEP_FILE, write_sweep_report

    if not args.html:
        raise GeoprobeError(f"{out} is a sweep folder: its figures come from `geoprobe "
                            "sweep`; add --html to write its report.html again")
    doc = read_json(out / SWEEP_FILE, missing="no sweep.json")
    with hold(out), writing(out):
        path = write_sweep_report(doc, out)
    print(f"report: {path}")
    return 0


def cmd_list(args) -> int:
    from .registry import COMMAND_GROUP, GENERATOR_GROUP, available, get_probe
    from .suite import shipped_suites

    show_all = not (args.generators or args.suites)
    payload, lines = {}, []
    if show_all:
        payload["probes"] = []
        lines.append("probes (geoprobe.probes entry points):")
        for name in available():
            try:
                cls = get_probe(name)
                entry = {"name": name, "summary": cls.summary, "needs": cls.requires.describe(),
                         "memory": cls.memory or "(not stated)"}
                lines += [f"  {name:28s} {cls.summary}", f"  {'':28s} needs: {entry['needs']}",
                          f"  {'':28s} memory: {entry['memory']}"]
            except GeoprobeError as exc:
                entry = {"name": name, "error": str(exc)}
                lines.append(f"  {name:28s} [broken plug-in] {exc}")
            payload["probes"].append(entry)
    if show_all or args.generators:
        payload["generators"] = []
        lines.append("generators (geoprobe.generators, for `generate = ...` in suites):")
        for name, ep in available(GENERATOR_GROUP).items():
            try:
                entry = {"name": name,
                         "summary": _first_sentence(ep.load().__doc__) or ep.value}
                lines.append(f"  {name:28s} {entry['summary']}")
            except Exception as exc:  # show a broken plug-in instead of hiding it
                entry = {"name": name, "error": f"{type(exc).__name__}: {exc}"}
                lines.append(f"  {name:28s} [broken plug-in] {entry['error']}")
            payload["generators"].append(entry)
    if show_all or args.suites:
        payload["suites"] = [{"name": name, "description": _suite_description(path)}
                             for name, path in sorted(shipped_suites().items())]
        lines.append("shipped suites (geoprobe run NAME):")
        lines += [f"  {s['name']:28s} {s['description']}" for s in payload["suites"]]
    if show_all:
        payload["commands"] = list(available(COMMAND_GROUP))
        if payload["commands"]:
            lines.append("plug-in commands: " + ", ".join(payload["commands"]))
    _output(args, payload, lines)
    return 0


def _first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    return paragraph.split(". ")[0].rstrip(".")


def _suite_description(path: Path) -> str:
    import tomllib

    try:
        return tomllib.loads(path.read_text()).get("suite", {}).get("description", "")
    except (OSError, tomllib.TOMLDecodeError):
        return "(unreadable)"


def cmd_probe(args) -> int:
    """One probe on one embedding file, through the same runner as suites."""
    from .registry import get_probe
    from .runner import run_suite
    from .suite import parse_override, probe_suite

    get_probe(args.name)  # an unknown name fails as such, before it becomes the suite's name
    params = {}
    for text in args.param:
        keys, value = parse_override(text)
        params[".".join(keys)] = value
    annotations = {}
    for text in args.annotation:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise SuiteError(f"--annotation {text!r}: expected NAME=VALUE")
        annotations[key] = str(Path(value).resolve()) if Path(value).exists() else value
    suite = probe_suite(args.name, args.embeddings, items=args.items, twin=args.twin,
                        params=params, layers=args.layers, seed=args.seed,
                        annotations=annotations)
    out = args.out or inside(DEFAULT_OUT, suite.name, what="probe name", error=SuiteError)
    tracker = _open_tracker(args)
    doc = run_suite(suite, out, show_progress=_show_progress(args))
    _log_to_tracker(tracker, args, doc, out)
    from .report import metrics_table

    _output(args, _results_payload(doc, out), metrics_table(doc["probes"][args.name])
            + [f"-> {out}/results.json, figures in {out}/figures/"])
    return 0


def cmd_info(args) -> int:
    from .io import load_embeddings

    emb = load_embeddings(args.path, items=args.items)
    provenance = {k: v for k, v in emb.provenance.items() if not k.startswith("_")}
    collapsed = emb.collapse_warning()
    if collapsed:
        log.warning(collapsed)
    _output(args, {"path": str(args.path), "n_layers": emb.n_layers, "n_items": emb.n_items,
                   "dim": emb.dim, "layers": emb.layer_names, "columns": emb.items.names,
                   "provenance": provenance, "valid": True,
                   "warnings": [collapsed] if collapsed else []},
            [repr(emb), f"layers: {emb.layer_names}", f"columns: {emb.items.names}"]
            + [f"  {k}: {v}" for k, v in provenance.items()]
            + ["valid: no NaN/Inf, unique item IDs"])
    return 0


def cmd_figure(args) -> int:
    from .compose import write_figure

    out = args.out or args.spec.with_suffix(".pdf")
    log.info("wrote %s", write_figure(args.spec, out))
    return 0


def cmd_completion(args) -> int:
    try:
        import shtab
    except ImportError:
        raise GeoprobeError("shell completion needs shtab: pip install 'geoprobe[completion]'"
                            ) from None
    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


def cmd_convert(args) -> int:
    from .io import export_embeddings, load_embeddings
    from .provenance import writing

    emb = load_embeddings(args.src, items=args.items)
    with writing(args.dst):
        if args.dtype:
            emb.save(args.dst, dtype=args.dtype)
        else:
            export_embeddings(emb, args.dst)
    print(f"wrote {args.dst} ({emb.n_layers} layer(s) x {emb.n_items} items x {emb.dim})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geoprobe", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Probe the geometry of embedding spaces: pluggable probes with baselines, "
                    "confidence intervals and figures, from suites or one at a time.")
    parser.add_argument("--version", action="version", version=f"geoprobe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run a suite and write results.json, figures and a report",
                       description="Run every probe of a suite. With no suite, runs the "
                                   f"shipped '{DEFAULT_SUITE}' suite on generated data. The "
                                   "suite's checks (those needing no --against) are evaluated "
                                   "too: failed ones head report.md and are named on stderr.")
    _suite_args(p, suite_optional=True)
    p.add_argument("--fail-on-checks", action="store_true",
                   help="exit 1 when one of the suite's checks fails (without it, run exits "
                        "0 and names the failed checks on stderr and at the top of report.md; "
                        "`geoprobe check` also writes junit.xml and summary.md)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check", help="run a suite and its checks; exit 1 if any check fails",
                       description="Run a suite, evaluate its [[checks]], write junit.xml and "
                                   "summary.md, and exit 1 when a check fails (0 when all pass).")
    _suite_args(p, suite_optional=False)
    p.add_argument("--against", type=Path, metavar="RESULTS",
                   help="previous results.json (or its directory) for relative checks")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "sweep", help="run a suite over many checkpoints or settings on Dask, resumably",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SWEEP_EPILOG,
        description="Cross a suite's inputs (embedding files, or a grid of suite values) with "
                    "its probes and their layers; every (input, probe, layer group) is one "
                    "task on a Dask cluster, stored the moment it finishes under a hash of its "
                    "input, parameters, seed and geoprobe version, so a rerun computes only "
                    "what is missing. Then one tidy table, figures from it, and the suite's "
                    "checks per checkpoint plus its [[trends]] across checkpoints.")
    p.add_argument("suite", help="a suite file (.toml) or the name of a shipped suite")
    p.add_argument("-o", "--out", type=Path,
                   help=f"sweep folder (default: {DEFAULT_OUT}/<suite>-sweep); kept and "
                        "reused: its tasks/ is the cache a rerun resumes from")
    p.add_argument("--embeddings", action="append", default=[], metavar="PATH_OR_GLOB",
                   help="embedding sets for the suite's one source, one input each; a glob "
                        "in quotes ('ckpts/step_*.gpemb') or a path (repeatable)")
    p.add_argument("--items", metavar="CSV", help="item table for every embedding file")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a suite value to vary, e.g. sources.tworoom.params.lam=0,0.1,1 "
                        "(repeatable: the grids are crossed, and crossed with --embeddings)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a suite value for every input, as in `geoprobe run`")
    p.add_argument("--seed", type=int, help="override the suite seed (each task's seed derives "
                                            "from it and the task)")
    p.add_argument("--per-layer", action="store_true",
                   help="one task per layer instead of one per probe (file inputs only)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on this Dask scheduler instead of a new LocalCluster")
    p.add_argument("--workers", metavar="N",
                   help="LocalCluster worker processes (default: one per core)")
    p.add_argument("--serial", action="store_true",
                   help="no Dask: run the tasks one by one in this process")
    p.add_argument("--formats", default="pdf,png", help="figure formats (default: pdf,png)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--wait", type=float, nargs="?", const=math.inf, default=0.0,
                   metavar="SECONDS", help="wait for another sweep writing the same folder")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="redraw every figure and the report from results.json",
                       description="Re-render all figures (one publication style) and "
                                   "report.md (and report.html with --html) from a results "
                                   "directory alone. On a sweep folder (it holds sweep.json) "
                                   "--html writes the sweep's report.html from sweep.json, "
                                   "sweep.csv and figures/ alone.")
    p.add_argument("results", type=Path, help="results directory or results.json, or a "
                   "sweep folder")
    p.add_argument("--formats", default="pdf,png", help="comma-separated (default: pdf,png)")
    p.add_argument("--html", action="store_true",
                   help="also write report.html: one self-contained page (figures embedded, "
                        "no network or script needed) to open in a browser or attach to CI")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("list", help="list probes, generators and shipped suites",
                       description="List the installed probes with what each needs (item "
                                   "columns, annotations, a model) and its memory: 'streams' "
                                   "when it reads a memory-mapped layer in row chunks (sets "
                                   "larger than RAM work), 'in memory' with the bytes it holds "
                                   "(n rows, d width) otherwise; then data generators and "
                                   "shipped suites.")
    p.add_argument("--generators", action="store_true", help="only data generators")
    p.add_argument("--suites", action="store_true", help="only shipped suites")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("probe", help="run one probe on one embedding file",
                       description="Run one probe on one embedding file without writing a "
                                   "suite; writes the same results directory as `run`.")
    p.add_argument("name", help="registered probe name (see `geoprobe list`)")
    p.add_argument("embeddings", help="embedding file: .npy, .npz, .safetensors, .pt, .hdf5 "
                                      "or a geoprobe directory")
    p.add_argument("--items", help="CSV with one row per embedding row (header required)")
    p.add_argument("--twin", help="the same items embedded by a random-init model (control)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="probe hyperparameter (repeatable), e.g. --param n_boot=100")
    p.add_argument("--annotation", action="append", default=[], metavar="NAME=VALUE",
                   help="named external input (repeatable); a value naming an existing file "
                        "becomes its path, e.g. --annotation other=ckpt2.npy for `similarity`")
    p.add_argument("--layers", default="all", help="'all' (default) or 'last'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", type=Path)
    p.add_argument("--no-progress", action="store_true")
    _add_log_option(p)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("info", help="describe and validate an embedding file")
    p.add_argument("path")
    p.add_argument("--items", help="CSV item table")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("figure", help="compose a paper figure from several results files",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Draw the panels a TOML spec names (a probe's figure or one "
                                   "of its axes from one results.json; a metric across runs) "
                                   "into one figure at a journal's column or page width, with "
                                   "panel letters, in geoprobe's style.",
                       epilog=textwrap.dedent("""\
                           spec (paths relative to it, inside its folder):
                             [figure]
                             width = "page"         # "column" (3.5 in), "page" (7.2 in), inches
                             cols = 2
                             [[panels]]
                             results = "runs/a/results.json"
                             probe = "spectrum"             # probe id; axes = 1 keeps one axes
                             [[panels]]
                             kind = "trend"
                             results = ["runs/a", "runs/b"]
                             x = "suite.config.sources.main.params.noise"
                             probe = "spectrum"
                             metric = "rankme"
                             labels = { layer = "rank4" }
                           the full format: the docstring of geoprobe/compose.py"""))
    p.add_argument("spec", type=Path, help="figure spec (.toml)")
    p.add_argument("-o", "--out", type=Path,
                   help="output file; .pdf, .svg or .png (default: the spec's name with .pdf)")
    p.set_defaults(func=cmd_figure)

    p = sub.add_parser("completion", help="print a shell completion script",
                       description="Print a tab-completion script for geoprobe's subcommands "
                                   "and options (needs the optional shtab package).",
                       epilog="bash: source <(geoprobe completion bash), or save it as "
                              "~/.local/share/bash-completion/completions/geoprobe; zsh: "
                              "geoprobe completion zsh > ~/.zfunc/_geoprobe (with ~/.zfunc "
                              "on fpath)")
    p.add_argument("shell", choices=COMPLETION_SHELLS)
    p.set_defaults(func=cmd_completion)

    p = sub.add_parser("convert", help="import an embedding file into geoprobe's format",
                       description="Convert any supported file to geoprobe's memory-mappable "
                                   "directory format (or .npz/.safetensors by suffix).")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--items", help="CSV item table")
    p.add_argument("--dtype", choices=["float16", "float32", "float64"],
                   help="storage dtype (directory format only)")
    p.set_defaults(func=cmd_convert)

    _register_plugins(sub)
    for name in THREADED_COMMANDS:
        if name in sub.choices:
            sub.choices[name].add_argument(
                "--threads", metavar="N",
                help="BLAS and torch threads: a count or 'auto' (default $GEOPROBE_THREADS, "
                     "else auto: one thread, the fastest on a shared machine)")
    _add_output_flags(sub)
    return parser


def _add_output_flags(sub) -> None:
    """-q/-v on every subcommand, --json on those with machine-readable output."""
    for name, p in sub.choices.items():
        for flags, text in ((("-q", "--quiet"), "say less: no progress bars and no summary on "
                             "stdout (-qq: no warnings either, errors only)"),
                            (("-v", "--verbose"), "say more on stderr: what is loaded and run "
                             "(-vv: details)")):
            try:
                p.add_argument(*flags, action="count", default=0, help=text)
            except argparse.ArgumentError:  # a plug-in command that has the flag already
                pass
        if name in JSON_COMMANDS:
            p.add_argument("--json", action="store_true",
                           help="print one JSON document on stdout and nothing else there "
                                "(messages and progress go to stderr)")


def _register_plugins(sub) -> None:
    from .registry import COMMAND_GROUP, available

    for name, ep in available(COMMAND_GROUP).items():
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken plug-in must not take the whole CLI down
            print(f"geoprobe: warning: command plug-in {name!r} failed to load: {exc}",
                  file=sys.stderr)  # before a command's logging is set up


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    as_json = getattr(args, "json", False)
    stdout = sys.stdout
    try:
        # with --json, whatever else is printed (a plug-in, a library) goes to stderr
        with cli_logging(_verbosity(args)), (contextlib.redirect_stdout(sys.stderr) if as_json
                                             else contextlib.nullcontext()):
            code = _call(args)
    except GeoprobeError as exc:
        print(f"geoprobe: error: {exc}", file=sys.stderr)
        code, args.json_payload = 2, {"error": str(exc)}
    except KeyboardInterrupt:
        print("geoprobe: interrupted; no results were written", file=sys.stderr)
        code, args.json_payload = 130, {"error": "interrupted"}
    if as_json:
        print(json.dumps({**getattr(args, "json_payload", {}), "exit_code": code}, indent=2,
                         default=str), file=stdout)
    return code


def _call(args) -> int:
    if not hasattr(args, "threads"):  # no numerical work here, or its entry points
        return int(args.func(args) or 0)  # open the policy themselves
    # One thread policy for the whole command (geoprobe.threads); plug-in commands with
    # their own --threads flag (jepa train) share it.
    with threads.policy(args.threads):
        return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
