"""The ``geoprobe`` command line: a thin layer over the Python API.

Expected errors (bad input, missing data, malformed suites) print one line and exit with 2;
failed checks exit with 1; anything else is a bug and keeps its traceback. Subcommands from
plug-ins register through the ``geoprobe.commands`` entry-point group: each entry point is a
function ``register(subparsers)`` that adds a parser and sets ``func=run`` with
``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from pathlib import Path

from . import __version__, threads
from .errors import GeoprobeError, SuiteError
from .locks import LockedError, hold
from .safepath import inside

#: the suite ``geoprobe run`` runs with no arguments
DEFAULT_SUITE = "jepa-tworoom"
#: subcommands that take ``--threads`` (extract is a plug-in: it gets the flag here)
THREADED_COMMANDS = ("run", "check", "probe", "extract")
DEFAULT_OUT = Path("geoprobe-results")

EPILOG = textwrap.dedent("""\
    examples:
      geoprobe run                                  the main job: train a SIGReg JEPA, probe its latent
      geoprobe run planted                          a 10-second demo on planted ranks
      geoprobe list                                 probes, with what each needs
      geoprobe probe covariance-spectrum emb.npy --items labels.csv -o out/
      geoprobe run my_suite.toml -o out/ --embeddings ckpt_42.npy
      geoprobe check my_suite.toml -o out/ --against previous/results.json
      geoprobe report out/                          redraw every figure from results.json
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
    p.add_argument("--wait", type=float, nargs="?", const=math.inf, default=0.0,
                   metavar="SECONDS",
                   help="if another run is writing the same results directory, wait for it "
                        "(at most SECONDS, if given) instead of stopping at once")


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
    against = load_results(args.against) if getattr(args, "against", None) else None
    try:
        doc = run_suite(suite, out, checks=checks, against=against, workdir=args.workdir,
                        show_progress=not args.no_progress, wait=args.wait,
                        formats=tuple(f.strip() for f in args.formats.split(",") if f.strip()))
    except LockedError as exc:
        if args.wait:
            raise
        raise LockedError(f"{exc}; pass --wait to run after it") from None
    n_metrics = sum(len(p["metrics"]) for p in doc["probes"].values())
    print(f"{suite.name}: {len(doc['probes'])} probe(s), {n_metrics} metrics -> {out}/results.json")
    print(f"report: {out}/report.md   figures: {out}/figures/")
    if not checks:
        return 0
    failed = [c for c in doc["checks"] if not c["passed"]]
    for c in doc["checks"]:
        print(f"  {'PASS' if c['passed'] else 'FAIL'}  {c['name']}  ({c['message']})"
              f"  [id {c['id']}]")
    print(f"{len(doc['checks']) - len(failed)} passed, {len(failed)} failed "
          f"(junit: {out}/junit.xml, summary: {out}/summary.md)")
    return 1 if failed else 0


def cmd_run(args) -> int:
    return _run(args, checks=False)


def cmd_check(args) -> int:
    return _run(args, checks=True)


def cmd_report(args) -> int:
    from .report import render_figures, write_report
    from .runner import RESULTS_FILE, load_results
    from .provenance import write_json_atomic, writing

    doc = load_results(args.results)
    out = args.results if args.results.is_dir() else args.results.parent
    # held: a run replacing the directory meanwhile would swallow these files
    with hold(out), writing(out):
        made = render_figures(doc, out, formats=tuple(args.formats.split(",")))
        write_json_atomic(out / RESULTS_FILE, doc)
        write_report(doc, out / "report.md")
    print(f"redrew {sum(len(v) for v in made.values())} figure file(s) in {out}/figures; "
          f"report: {out}/report.md")
    return 0


def cmd_list(args) -> int:
    from .registry import COMMAND_GROUP, GENERATOR_GROUP, available, get_probe
    from .suite import shipped_suites

    show_all = not (args.generators or args.suites)
    if show_all:
        print("probes (geoprobe.probes entry points):")
        for name in available():
            try:
                cls = get_probe(name)
                print(f"  {name:28s} {cls.summary}")
                print(f"  {'':28s} needs: {cls.requires.describe()}")
                print(f"  {'':28s} memory: {cls.memory or '(not stated)'}")
            except GeoprobeError as exc:
                print(f"  {name:28s} [broken plug-in] {exc}")
    if show_all or args.generators:
        print("generators (geoprobe.generators, for `generate = ...` in suites):")
        for name, ep in available(GENERATOR_GROUP).items():
            try:
                print(f"  {name:28s} {_first_sentence(ep.load().__doc__) or ep.value}")
            except Exception as exc:  # show a broken plug-in instead of hiding it
                print(f"  {name:28s} [broken plug-in] {type(exc).__name__}: {exc}")
    if show_all or args.suites:
        print("shipped suites (geoprobe run NAME):")
        for name, path in sorted(shipped_suites().items()):
            print(f"  {name:28s} {_suite_description(path)}")
    if show_all and available(COMMAND_GROUP):
        print("plug-in commands: " + ", ".join(available(COMMAND_GROUP)))
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
    from .suite import build_suite, parse_override

    get_probe(args.name)  # an unknown name fails as such, before it becomes the suite's name
    params = {}
    for text in args.param:
        keys, value = parse_override(text)
        params[".".join(keys)] = value
    probe = {"probe": args.name, "params": params, "layers": args.layers}
    raw = {"suite": {"name": args.name, "seed": args.seed},
           "sources": {"embeddings": {"path": str(Path(args.embeddings).resolve())}},
           "probes": [probe]}
    if args.items:
        raw["sources"]["embeddings"]["items"] = str(Path(args.items).resolve())
    if args.twin:
        raw["sources"]["embeddings"]["twin"] = str(Path(args.twin).resolve())
    suite = build_suite(raw)
    out = args.out or inside(DEFAULT_OUT, suite.name, what="probe name", error=SuiteError)
    doc = run_suite(suite, out, show_progress=not args.no_progress)
    from .report import metrics_table

    print("\n".join(metrics_table(doc["probes"][args.name])))
    print(f"-> {out}/results.json, figures in {out}/figures/")
    return 0


def cmd_info(args) -> int:
    from .io import load_embeddings

    emb = load_embeddings(args.path, items=args.items)
    print(repr(emb))
    print(f"layers: {emb.layer_names}")
    print(f"columns: {emb.items.names}")
    for k, v in emb.provenance.items():
        if not k.startswith("_"):
            print(f"  {k}: {v}")
    print("valid: no NaN/Inf, unique item IDs")
    collapsed = emb.collapse_warning()
    if collapsed:
        print(f"geoprobe: warning: {collapsed}", file=sys.stderr)
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
                                   f"shipped '{DEFAULT_SUITE}' suite on generated data.")
    _suite_args(p, suite_optional=True)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check", help="run a suite and its checks; exit 1 if any check fails",
                       description="Run a suite, evaluate its [[checks]], write junit.xml and "
                                   "summary.md, and exit 1 when a check fails (0 when all pass).")
    _suite_args(p, suite_optional=False)
    p.add_argument("--against", type=Path, metavar="RESULTS",
                   help="previous results.json (or its directory) for relative checks")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("report", help="redraw every figure and the report from results.json",
                       description="Re-render all figures (one publication style) and "
                                   "report.md from a results directory alone.")
    p.add_argument("results", type=Path, help="results directory or results.json")
    p.add_argument("--formats", default="pdf,png", help="comma-separated (default: pdf,png)")
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
    p.add_argument("--layers", default="all", help="'all' (default) or 'last'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", type=Path)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("info", help="describe and validate an embedding file")
    p.add_argument("path")
    p.add_argument("--items", help="CSV item table")
    p.set_defaults(func=cmd_info)

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
    return parser


def _register_plugins(sub) -> None:
    from .registry import COMMAND_GROUP, available

    for name, ep in available(COMMAND_GROUP).items():
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken plug-in must not take the whole CLI down
            print(f"geoprobe: warning: command plug-in {name!r} failed to load: {exc}",
                  file=sys.stderr)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if not hasattr(args, "threads"):  # no numerical work here, or its entry points
            return int(args.func(args) or 0)  # open the policy themselves
        # One thread policy for the whole command (geoprobe.threads); plug-in commands with
        # their own --threads flag (jepa train) share it.
        with threads.policy(args.threads):
            return int(args.func(args) or 0)
    except GeoprobeError as exc:
        print(f"geoprobe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("geoprobe: interrupted; no results were written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
