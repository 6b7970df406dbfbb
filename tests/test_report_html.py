"""report.html and the notebook display: one self-contained, escaped page from results.json,
checked by parsing it and by a screenshot in headless Chromium; short reprs, HTML tables and
DataFrames for results, probe results and embedding sets."""

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from geoprobe.cli import main
from geoprobe.errors import FormatError, GeoprobeError
from geoprobe.registry import get_generator
from geoprobe.report_html import write_html_report
from geoprobe.runner import load_results, run_suite
from geoprobe.suite import build_suite

#: a name from the user's suite file, to prove it is escaped, not executed
HOSTILE = '<script>alert("x")</script> & co'


class Page(HTMLParser):
    """The parts of a page the report promises: headings, tables (with their captions and
    rows), images and anything that would need a script or the network."""

    def __init__(self, text):
        super().__init__()
        self.headings, self.tables, self.images, self.scripts, self.remote = [], [], [], 0, []
        self._in, self._text = None, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if attrs.get(key, "").startswith(("http:", "https:", "//")):
                self.remote.append(attrs[key])
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables.append({"class": attrs.get("class"), "caption": "", "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        if tag in ("h1", "h2", "caption", "td"):
            self._in, self._text = tag, []

    def handle_data(self, data):
        if self._in:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag != self._in:
            return
        text = "".join(self._text).strip()
        if tag in ("h1", "h2"):
            self.headings.append(text)
        elif tag == "caption":
            self.tables[-1]["caption"] = text
        elif tag == "td":
            self.tables[-1]["rows"][-1].append(text)
        self._in = None


def _suite():
    raw = {"suite": {"name": "tiny", "seed": 0, "description": HOSTILE},
           "sources": {"planted": {"generate": "planted-spectrum",
                                   "params": {"n_items": 400, "dim": 16, "ranks": [16, 2],
                                              "episode_length": 10}}},
           "probes": [{"id": "spectrum", "probe": "covariance-spectrum",
                       "params": {"group": "episode", "n_boot": 20}},
                      {"id": "gauss", "probe": "gaussianity",
                       "params": {"n_boot": 10, "n_null": 20, "n_directions": 32,
                                  "n_pairs": 500}}],
           "checks": [{"probe": "spectrum", "metric": "rankme", "layer": "rank16",
                       "op": ">=", "value": 10},
                      {"name": "impossible rank", "probe": "spectrum", "metric": "rankme",
                       "layer": "rank2", "op": ">=", "value": 15}]}
    return build_suite(raw)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("html")
    out = tmp / "out"
    run_suite(_suite(), out, checks=True, show_progress=False)
    return out


def _decoded_png(uri):
    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
        return np.asarray(im.convert("RGB"))


def test_report_html_has_checks_every_figure_and_every_table(run_dir):
    doc = load_results(run_dir)
    page = Page((run_dir / "report.html").read_text())
    assert page.scripts == 0 and page.remote == []  # readable offline, without JavaScript
    assert page.headings[:2] == ["geoprobe results: tiny", "Checks"]
    checks = [t for t in page.tables if t["class"] == "checks"]
    assert len(checks) == 1
    # the failed check is listed first and written out, not only coloured
    assert [row[0] for row in checks[0]["rows"][1:]] == ["FAIL", "PASS"]
    assert checks[0]["rows"][1][1] == "impossible rank"
    for pid, entry in doc["probes"].items():
        assert any(h.startswith(pid) for h in page.headings)
        findings = [t for t in page.tables if t["caption"] == f"Findings: {pid}"]
        baselines = [t for t in page.tables if t["caption"] == f"Baselines and controls: {pid}"]
        n_base = sum("baseline" in m["labels"] for m in entry["metrics"])
        assert len(findings[0]["rows"]) - 1 == len(entry["metrics"]) - n_base
        assert len(baselines[0]["rows"]) - 1 == n_base
        assert baselines[0]["class"] == "baselines"
    # one embedded, decodable, non-blank figure per probe, each with alt text
    assert len(page.images) == len(doc["probes"])
    for img in page.images:
        assert img["alt"].startswith("Figure of probe")
        png = _decoded_png(img["src"])
        assert png.std() > 0


def test_report_html_escapes_names_from_user_files(run_dir):
    text = (run_dir / "report.html").read_text()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co" in text


def test_rows_carry_interval_and_resampling_units(run_dir):
    page = Page((run_dir / "report.html").read_text())
    table = next(t for t in page.tables if t["caption"] == "Findings: spectrum")
    rankme = next(r for r in table["rows"][1:] if r[:2] == ["rankme", "layer=rank2"])
    value, ci, n = rankme[2:5]
    low, high = (float(x) for x in ci.strip("[]").split(","))
    assert low <= float(value) <= high
    assert n == "40 episode"  # 400 items in episodes of 10


def test_report_cli_html_draws_figures_from_results_json_alone(tmp_path, run_dir, capsys):
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(run_dir / "results.json", copy)  # no figures/ folder beside it
    assert main(["report", str(copy), "--formats", "pdf", "--html"]) == 0
    assert "report.html" in capsys.readouterr().out
    page = Page((copy / "report.html").read_text())
    assert len(page.images) == 2 and all(_decoded_png(i["src"]).std() > 0 for i in page.images)


def test_report_refuses_a_figure_outside_the_results_directory(tmp_path, run_dir):
    doc = json.loads((run_dir / "results.json").read_text())
    doc["probes"]["spectrum"]["figures"] = ["../../secret.png"]
    with pytest.raises(FormatError, match="figure"):
        write_html_report(doc, tmp_path)


def test_run_without_jinja_says_so_and_writes_the_rest(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("geoprobe.runner.has_jinja", lambda: False)
    raw = {"suite": {"name": "t", "seed": 0},
           "sources": {"s": {"generate": "planted-spectrum",
                             "params": {"n_items": 100, "dim": 8, "ranks": [4]}}},
           "probes": [{"id": "p", "probe": "covariance-spectrum", "params": {"n_boot": 5}}]}
    run_suite(build_suite(raw), tmp_path / "out", show_progress=False)
    assert "no report.html" in caplog.text  # a warning through the geoprobe logger
    assert (tmp_path / "out" / "report.md").is_file()
    assert not (tmp_path / "out" / "report.html").exists()


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="no Chromium installed (apt-get install "
                    "chromium; .ci/run installs it so that CI runs this test)")
def test_report_html_renders_in_headless_chromium(run_dir, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1200,3000",
                    (run_dir / "report.html").resolve().as_uri()],
                   check=True, capture_output=True, timeout=180)
    with Image.open(shot) as im:
        png = np.asarray(im.convert("RGB"))
    assert png.shape[:2] == (3000, 1200)
    ink = png.min(axis=2) < 200
    assert ink.mean() > 0.01  # text, tables and figures, not a blank page
    # the failed check's row is drawn with its light vermillion background (#fbe9df)
    assert (np.abs(png.astype(int) - [0xfb, 0xe9, 0xdf]).max(axis=2) <= 2).sum() > 500


# -- notebook display ----------------------------------------------------------------------

def test_probe_result_repr_is_short_and_html_is_tables_and_figure(run_dir):
    result = load_results(run_dir).probe_results()["spectrum"]
    text = repr(result)
    assert len(text) < 200 and text.startswith("ProbeResult(probe='covariance-spectrum'")
    head = result.headline()
    assert not head.is_baseline and f"{head.key()}=" in text
    page = Page(result._repr_html_())
    assert [t["caption"] for t in page.tables] == ["Findings: covariance-spectrum",
                                                   "Baselines and controls: covariance-spectrum"]
    assert sum(len(t["rows"]) - 1 for t in page.tables) == len(result.metrics)
    assert len(page.images) == 1 and _decoded_png(page.images[0]["src"]).std() > 0


def test_to_frame_has_one_row_per_metric(run_dir):
    results = load_results(run_dir)
    result = results.probe_results()["spectrum"]
    frame = result.to_frame()
    assert len(frame) == len(result.metrics) == len(result.table())
    row = frame[(frame.metric == "rankme") & (frame.layer == "rank2") & frame.baseline.isna()]
    assert row.value.item() == result.metric("rankme", layer="rank2").value
    whole = results.to_frame()
    assert sorted(set(whole["id"])) == ["gauss", "spectrum"]
    assert len(whole) == sum(len(p["metrics"]) for p in results["probes"].values())


def test_to_frame_without_pandas_names_the_extra(run_dir, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(GeoprobeError, match=r"geoprobe\[frame\]"):
        load_results(run_dir).to_frame()


def test_suite_results_repr_and_html(run_dir):
    results = load_results(run_dir)
    assert repr(results) == ("SuiteResults(suite='tiny', probes=['spectrum', 'gauss'], "
                             f"metrics={sum(len(p['metrics']) for p in results['probes'].values())}"
                             ", seed=0, checks: 1 passed, 1 failed)")
    assert results["suite"]["name"] == "tiny"  # still the results dict
    page = Page(results._repr_html_())
    assert page.tables[0]["class"] == "checks"
    assert page.tables[0]["rows"][1][0] == "FAIL"
    assert {t["caption"] for t in page.tables[1:]} >= {"Findings: spectrum", "Findings: gauss"}


def test_embedding_set_repr_and_html():
    emb = get_generator("planted-spectrum")(n_items=50, dim=8, ranks=[8, 2])
    assert repr(emb).startswith("EmbeddingSet(") and len(repr(emb)) < 200
    page = Page(emb._repr_html_())
    rows = {r[0] if len(r) == 1 else None for t in page.tables for r in t["rows"]}
    assert "2 layer(s) × 50 items × 8" in rows
    assert "rank8, rank2" in rows


def test_reprs_fall_back_without_jinja(run_dir, monkeypatch):
    for module in ("geoprobe.probe", "geoprobe.results", "geoprobe.embeddings"):
        monkeypatch.setattr(f"{module}.has_jinja", lambda: False)
    results = load_results(run_dir)
    assert results._repr_html_() is None
    assert results.probe_results()["spectrum"]._repr_html_() is None
    assert get_generator("planted-spectrum")(n_items=50, dim=8, ranks=[2])._repr_html_() is None
