"""Unit tests of geoprobe.checks: thresholds, comparisons with previous results, reports."""

import math
import xml.etree.ElementTree as ET

import pytest

from geoprobe.checks import evaluate_checks, write_junit, write_summary
from geoprobe.metric import Metric
from geoprobe.probe import ProbeResult
from geoprobe.suite import CheckSpec


def _doc(*metrics, probe="not-installed"):
    """A results dict holding one probe run (id "p") with ``metrics``."""
    return {"probes": {"p": ProbeResult(probe, {}, list(metrics)).to_dict()}}


def _m(value, low=math.nan, high=math.nan, higher=None, name="score", **labels):
    return Metric(name, value, low, high, labels={"layer": "0", **labels},
                  higher_is_better=higher)


def _one(check, doc, against=None):
    (out,) = evaluate_checks([check], doc, against)
    return out


# -- thresholds --------------------------------------------------------------------------------
@pytest.mark.parametrize("op,at_boundary", [(">", False), (">=", True), ("<", False),
                                            ("<=", True)])
def test_each_op_at_its_boundary(op, at_boundary):
    doc = _doc(_m(2.0))
    check = CheckSpec("p", "score", {"layer": "0"}, op=op, value=2.0, id="c")
    out = _one(check, doc)
    assert out.passed is at_boundary and out.value == 2.0
    assert out.message == f"2 {op} 2" + ("" if at_boundary else " is false")
    # one step past the boundary on the allowed side always passes
    step = 1e-9 if op.startswith(">") else -1e-9
    assert _one(check, _doc(_m(2.0 + step))).passed


def test_a_non_finite_value_fails_whatever_the_op():
    out = _one(CheckSpec("p", "score", {"layer": "0"}, op="<", value=1.0), _doc(_m(math.nan)))
    assert not out.passed and out.value is None and out.message == "value is nan"


def test_missing_metric_names_the_metrics_there_are():
    doc = _doc(_m(1.0, name="alpha"), _m(2.0, name="beta"))
    out = _one(CheckSpec("p", "nope", op=">", value=0), doc)
    assert not out.passed and out.value is None
    assert out.message == ("metric not found: probe 'p' (not-installed) produces no metric "
                           "'nope'; its metrics are alpha, beta")
    out = _one(CheckSpec("q", "alpha", op=">", value=0), doc)
    assert out.message == "metric not found: no probe 'q' in the results"
    # the metric exists but not with these labels: still a failure, not a crash
    out = _one(CheckSpec("p", "alpha", {"layer": "9"}, op=">", value=0), doc)
    assert not out.passed and out.message.startswith("metric not found")


# -- against previous results ------------------------------------------------------------------
def _drop_check(max_drop=0.05, ci_overlap=False):
    return CheckSpec("p", "score", {"layer": "0"}, against="previous", max_drop=max_drop,
                     ci_overlap=ci_overlap)


@pytest.mark.parametrize("new,passed", [(9.5, True), (9.4, False), (11.0, True)])
def test_max_drop_when_higher_is_better(new, passed):
    # relative change (new - old) / |old| against old = 10: -5 % is allowed, -6 % is not,
    # and a rise is never a regression
    out = _one(_drop_check(), _doc(_m(new, higher=True)), _doc(_m(10.0, higher=True)))
    assert out.passed is passed
    assert ("dropped 6.00% > 5.00%" in out.message) is not passed
    assert f"change {(new - 10) / 10:+.2%} vs 10" in out.message


@pytest.mark.parametrize("new,passed", [(10.5, True), (10.6, False), (5.0, True)])
def test_max_drop_when_lower_is_better_a_rise_is_the_regression(new, passed):
    out = _one(_drop_check(), _doc(_m(new, higher=False)), _doc(_m(10.0, higher=False)))
    assert out.passed is passed
    assert ("rose 6.00% > 5.00%" in out.message) is not passed


@pytest.mark.parametrize("new,passed", [(9.6, True), (10.4, True), (9.4, False),
                                        (10.6, False)])
def test_max_drop_without_a_direction_fails_a_move_either_way(new, passed):
    # higher_is_better None and a probe that is not installed: the direction is unknown
    out = _one(_drop_check(), _doc(_m(new)), _doc(_m(10.0)))
    assert out.passed is passed
    assert ("moved 6.00% > 5.00%" in out.message) is not passed


def test_direction_falls_back_to_the_probe_class_declaration():
    """Results written before directions were recorded: covariance-spectrum declares rankme
    higher-is-better, so a drop fails and a rise passes (without a direction both would
    fail)."""
    def doc(v):
        return _doc(_m(v, name="rankme"), probe="covariance-spectrum")
    check = CheckSpec("p", "rankme", {"layer": "0"}, against="previous", max_drop=0.05)
    assert not _one(check, doc(9.0), doc(10.0)).passed
    assert _one(check, doc(11.0), doc(10.0)).passed


def test_relative_change_uses_the_magnitude_of_a_negative_previous_value():
    # old -10 -> new -10.6 is a 6 % drop for a higher-is-better metric
    out = _one(_drop_check(), _doc(_m(-10.6, higher=True)), _doc(_m(-10.0, higher=True)))
    assert not out.passed and "dropped 6.00%" in out.message


@pytest.mark.parametrize("new_ci,passed", [((1.0, 2.0), True), ((2.0, 3.0), True),
                                           ((0.0, 0.5), True), ((2.01, 3.0), False),
                                           ((-1.0, -0.01), False)])
def test_ci_overlap_boundaries(new_ci, passed):
    # previous interval [0, 2]: touching counts as overlapping, a gap of any size does not
    check = _drop_check(max_drop=None, ci_overlap=True)
    out = _one(check, _doc(_m(1.0, *new_ci)), _doc(_m(1.0, 0.0, 2.0)))
    assert out.passed is passed
    assert ("does not overlap previous [0, 2]" in out.message) is not passed


def test_ci_overlap_without_intervals_fails():
    check = _drop_check(max_drop=None, ci_overlap=True)
    out = _one(check, _doc(_m(1.0)), _doc(_m(1.0, 0.0, 2.0)))
    assert not out.passed and out.message == "no CI to compare"


def test_both_problems_are_reported_together():
    check = _drop_check(ci_overlap=True)
    out = _one(check, _doc(_m(5.0, 4.0, 6.0, higher=True)),
               _doc(_m(10.0, 9.0, 11.0, higher=True)))
    assert not out.passed
    assert "dropped 50.00% > 5.00%" in out.message and "does not overlap" in out.message


def test_metric_missing_from_previous_results_fails():
    out = _one(_drop_check(), _doc(_m(1.0)), _doc(_m(1.0, name="other")))
    assert not out.passed and out.value == 1.0
    assert out.message.startswith("not in previous results: probe 'p' (not-installed) "
                                  "produces no metric 'score'")


# -- reports -----------------------------------------------------------------------------------
def _outcomes():
    doc = _doc(_m(1.0), _m(3.0, name="other"))
    checks = [CheckSpec("p", "score", {"layer": "0"}, op=">", value=0.5, name="score ok"),
              CheckSpec("p", "other", {"layer": "0"}, op="<", value=2.0, name="other bad"),
              CheckSpec("p", "nope", op=">", value=0.0, name="missing <&>")]
    return evaluate_checks(checks, doc)


def test_junit_xml_parses_and_counts_failures(tmp_path):
    path = write_junit(_outcomes(), tmp_path / "junit.xml", "mysuite")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "3" and root.get("failures") == "2"
    (suite,) = root
    assert suite.get("name") == "mysuite" and suite.get("failures") == "2"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["score ok", "other bad", "missing <&>"]
    assert all(c.get("classname") == "geoprobe.mysuite.p" for c in cases)
    failures = [c.find("failure") for c in cases]
    assert failures[0] is None
    assert failures[1].get("message") == failures[1].text == "3 < 2 is false"
    assert failures[2].text.startswith("metric not found")


def test_summary_md_has_a_headline_and_one_table_row_per_check(tmp_path):
    text = write_summary(_outcomes(), tmp_path / "summary.md", "mysuite").read_text()
    lines = text.splitlines()
    assert lines[0] == "# geoprobe check: mysuite: 1 passed, 2 failed"
    rows = [ln for ln in lines if ln.startswith("| ") and not ln.startswith("| check ")]
    assert len(rows) == 3
    assert rows[0].startswith("| score ok | PASS |")
    assert rows[1].startswith("| other bad | FAIL |") and "3 < 2 is false" in rows[1]
    assert rows[2].startswith("| missing <&> | FAIL |")
