"""geoprobe's pytest plug-in: geometry checks in your own test suite.

Installed with geoprobe and registered through the ``pytest11`` entry point, so any pytest run
in an environment with geoprobe has the ``geoprobe_check`` fixture and these options:

``--geoprobe-embeddings PATH``  the embeddings to check (a checkpoint's export), for tests
                                that do not name one
``--geoprobe-items CSV``        their item table
``--geoprobe-against RESULTS``  previous results.json for checks with ``against``
``--geoprobe-out DIR``          keep each run's results directory here (default: the test's
                                ``tmp_path``), e.g. to upload report.html and junit.xml

Example (``tests/test_geometry.py``)::

    def test_no_collapse(geoprobe_check):
        geoprobe_check("covariance-spectrum", checks=[{"metric": "rankme", "layer": "0",
                                                       "op": ">=", "value": 20}])

``pytest --geoprobe-embeddings ckpt_42.npy`` then fails that test when RankMe drops below 20,
with a table of the failed checks: id, metric, labels, value, 95 % CI, threshold and previous
value. ``geoprobe_check("suite.toml")`` runs a whole suite and its ``[[checks]]``.

The plug-in stays out of the way of test runs that do not use it: loading it imports nothing
beyond pytest (geoprobe's numerical modules load when the fixture is first called), and it
only adds options and a fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser) -> None:
    group = parser.getgroup("geoprobe", "geometry checks on embeddings (geoprobe)")
    group.addoption("--geoprobe-embeddings", metavar="PATH",
                    help="embeddings for geoprobe_check when a test names none (a .npy, .npz, "
                         ".safetensors, .pt, .hdf5 file or a geoprobe directory)")
    group.addoption("--geoprobe-items", metavar="CSV", help="item table for those embeddings")
    group.addoption("--geoprobe-against", metavar="RESULTS",
                    help="previous results.json (or its directory) for checks with 'against'")
    group.addoption("--geoprobe-out", metavar="DIR",
                    help="write each geoprobe_check's results directory under DIR "
                         "(default: the test's tmp_path)")


@pytest.fixture
def geoprobe_check(request, tmp_path):
    """Run a suite, or one probe, with checks; fail the test with a readable table if any
    check fails. Returns the results dict (as in results.json) when all pass.

    ``geoprobe_check(target, *, embeddings=None, items=None, against=None, params=None,
    checks=(), overrides=(), seed=None)``

    target : a suite file (.toml), a shipped suite's name, or a registered probe's name.
    embeddings, items : the data (default: ``--geoprobe-embeddings``/``--geoprobe-items``);
        for a suite, they replace its one source, as ``geoprobe check --embeddings`` does.
    against : previous results (default: ``--geoprobe-against``).
    params, checks : for a probe: its hyperparameters, and ``[[checks]]`` tables without
        ``probe``, e.g. ``{"metric": "rankme", "layer": "0", "op": ">=", "value": 20}``.
    overrides : for a suite: ``--set`` strings such as ``"checks.spectrum-rankme-0.value=25"``.
    """
    config = request.config

    def check(target: str, *, embeddings=None, items=None, against=None, params=None,
              checks=(), overrides=(), seed=None) -> dict:
        from .errors import GeoprobeError

        embeddings = embeddings or config.getoption("geoprobe_embeddings")
        items = items or config.getoption("geoprobe_items")
        against = against or config.getoption("geoprobe_against")
        out_root = config.getoption("geoprobe_out")
        out_root = Path(out_root) / request.node.name if out_root else tmp_path
        try:
            return _run_checked(target, out_root, embeddings=embeddings, items=items,
                                against=against, params=params, checks=checks,
                                overrides=overrides, seed=seed)
        except GeoprobeError as exc:  # bad input: one line, like the command line
            pytest.fail(f"geoprobe: error: {exc}", pytrace=False)

    return check


def _run_checked(target, out_root: Path, *, embeddings, items, against, params, checks,
                 overrides, seed) -> dict:
    from .errors import GeoprobeError
    from .registry import available
    from .runner import load_results, run_suite
    from .safepath import inside
    from .suite import load_suite, probe_suite

    if target in available() and not target.endswith(".toml"):
        if embeddings is None:
            raise GeoprobeError(f"geoprobe_check({target!r}) needs embeddings: pass "
                                "embeddings=PATH or run pytest with --geoprobe-embeddings PATH")
        suite = probe_suite(target, embeddings, items=items, params=params,
                            seed=0 if seed is None else seed, checks=checks)
    else:
        if params or checks:
            raise GeoprobeError("params= and checks= are for a single probe; a suite has its "
                                "own (change them with overrides=['probes.ID.params.KEY=V'])")
        sets = list(overrides) + ([f"suite.seed={seed}"] if seed is not None else [])
        suite = load_suite(target, sets, embeddings=embeddings, items=items)
    if not suite.checks:
        raise GeoprobeError(f"{target}: no checks to run (give checks=[...] for a probe, or "
                            "[[checks]] in the suite)")
    previous = load_results(against) if against else None
    out = inside(out_root, suite.name, what="suite name")
    doc = run_suite(suite, out, checks=True, against=previous, show_progress=False)
    failed = [c for c in doc["checks"] if not c["passed"]]
    if failed:
        pytest.fail(failure_report(doc, suite, previous, out), pytrace=False)
    return doc


def failure_report(doc: dict, suite, previous: dict | None, out: Path) -> str:
    """The failed checks of a results dict as an aligned table, one row per check, with
    each failure's reason below it."""
    from .display import format_number

    def num(x) -> str:
        return format_number(x) or "-"

    specs = {c.id: c for c in suite.checks}
    failed = [c for c in doc["checks"] if not c["passed"]]
    header = ("check", "metric", "labels", "value", "95% CI", "threshold", "previous")
    rows, reasons = [], []
    for c in failed:
        spec = specs[c["id"]]
        now = _metric(doc, spec)
        old = _metric(previous, spec) if previous else None
        if spec.op is not None:
            threshold = f"{spec.op} {spec.value:g}"
        else:
            threshold = " and ".join(
                ([f"drop <= {spec.max_drop:.0%}"] if spec.max_drop is not None else [])
                + (["CI overlap"] if spec.ci_overlap else []))
        rows.append((c["id"], spec.metric,
                     ",".join(f"{k}={v}" for k, v in sorted(spec.labels.items())) or "-",
                     num(now.value if now else None),
                     f"[{num(now.ci_low)}, {num(now.ci_high)}]" if now else "-",
                     threshold, num(old.value if old else None)))
        reasons.append(f"{c['id']}: {c['message']}")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    table = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()
             for r in [header, *rows]]
    return "\n".join([f"geoprobe: {len(failed)} of {len(doc['checks'])} check(s) failed in "
                      f"suite {suite.name!r} (results: {out / 'results.json'})", *table, "",
                      *reasons])


def _metric(doc: dict, spec):
    """The metric a check reads in a results dict, or None where it is missing."""
    from .probe import ProbeResult

    entry = doc["probes"].get(spec.probe)
    return ProbeResult.from_dict(entry).find(spec.metric, **spec.labels) if entry else None
