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


needs_chromium = pytest.mark.skipif(
    _chromium() is None,
    reason="no Chromium installed (apt-get install chromium; .ci/run installs it so that CI "
           "runs this test)")


def _screenshot(page, tmp_path):
    """``page`` drawn by headless Chromium in a 1200 x 3000 window, as an RGB array."""
    from PIL import Image

    shot = tmp_path / "report.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1200,3000",
                    page.resolve().as_uri()],
                   check=True, capture_output=True, timeout=180)
    with Image.open(shot) as im:
        png = np.asarray(im.convert("RGB"))
    assert png.shape[:2] == (3000, 1200)
    assert (png.min(axis=2) < 200).mean() > 0.01  # text, tables and figures, not a blank page
    return png


def _failed_rows_drawn(png) -> int:
    """Pixels of a failed check's light vermillion row background (#fbe9df)."""
    return int((np.abs(png.astype(int) - [0xfb, 0xe9, 0xdf]).max(axis=2) <= 2).sum())


@needs_chromium
def test_report_html_renders_in_headless_chromium(run_dir, tmp_path):
    assert _failed_rows_drawn(_screenshot(run_dir / "report.html", tmp_path)) > 500


# -- a sweep's page --------------------------------------------------------------------------

#: a sweep suite whose trend (its name hostile) fails when layer 1's rank falls
SWEEP_SUITE = """
sources.ckpt = { path = "unused.npy", items = "items.csv" }
probes = [{ id = "spec", probe = "covariance-spectrum", params = { group = "g", n_boot = 20 } }]
checks = [{ probe = "spec", metric = "rankme", layer = "1", op = ">=", value = 1.0 }]

[suite]
name = "sweep-page"
seed = 3
description = '<script>alert("x")</script> & co'

[[trends]]
name = "<b>rank</b> keeps"
probe = "spec"
metric = "rankme"
layer = "1"
max_drop = 0.1
"""


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """A serial sweep over three 2-layer checkpoints whose layer-1 rank falls (6, 4, 2): the
    trend fails at both steps, the check passes at every checkpoint."""
    from geoprobe.sweep import run_sweep

    tmp = tmp_path_factory.mktemp("sweep")
    (tmp / "items.csv").write_text("g\n" + "".join(f"{i % 20}\n" for i in range(60)))
    (tmp / "s.toml").write_text(SWEEP_SUITE)
    for step, rank in [(100, 6), (200, 4), (300, 2)]:
        X = np.random.default_rng(step).standard_normal((2, 60, 8))
        X[1, :, rank:] *= 0.01  # layer 1 spans about `rank` dimensions
        np.save(tmp / f"step_{step}.npy", X)
    out = tmp / "sweep"
    run_sweep(str(tmp / "s.toml"), out, embeddings=[str(tmp / "step_*.npy")],
              items=str(tmp / "items.csv"), per_layer=True, serial=True, show_progress=False,
              formats=("png",))
    return out


def _check_sweep_page(out):
    """The sweep page's promises, checked against its sweep.json and sweep.csv."""
    from geoprobe.sweep.table import read_table

    doc = json.loads((out / "sweep.json").read_text())
    text = (out / "report.html").read_text()
    page = Page(text)
    assert page.scripts == 0 and page.remote == []
    assert page.headings[:2] == ["geoprobe sweep: sweep-page", "Checks and trends"]
    # names from the suite file are escaped, not markup
    assert "<script>" not in text and "<b>rank" not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co" in text
    (checks,) = [t for t in page.tables if t["class"] == "checks"]
    results = [row[:2] for row in checks["rows"][1:]]
    assert results[0] == ["FAIL", "<b>rank</b> keeps"]  # the failing trend leads
    assert [r[0] for r in results[1:]] == ["PASS"] * 3  # rankme >= 1 at each checkpoint
    # every PNG the sweep drew, embedded and decodable, with alt text and a real caption
    pngs = [n for n in doc["files"]["figures"] if n.endswith(".png")]
    assert "dynamics-spec-rankme.png" in pngs and "heatmap-spec-rankme.png" in pngs
    assert len(page.images) == len(pngs)
    for img in page.images:
        assert img["alt"].startswith("Figure of the sweep: spec: ")
        assert "training step" in img["alt"]
        assert _decoded_png(img["src"]).std() > 0
    # the last checkpoint's metrics, findings and baselines apart
    last = [r for r in read_table(out / "sweep.csv") if r["step"] == 300]
    n_base = sum(bool(r["baseline"]) for r in last)
    tables = {t["caption"]: t for t in page.tables}
    assert len(tables["Findings: spec on step_300"]["rows"]) - 1 == len(last) - n_base
    assert n_base and len(tables["Baselines and controls: spec on step_300"]["rows"]) - 1 \
        == n_base
    assert "Metrics at the last checkpoint (step 300)" in page.headings


def test_sweep_writes_report_html(sweep_dir):
    _check_sweep_page(sweep_dir)


def test_report_cli_html_rewrites_a_sweep_page_from_its_files_alone(sweep_dir, tmp_path,
                                                                      capsys):
    copy = tmp_path / "copy"
    shutil.copytree(sweep_dir / "figures", copy / "figures")
    for name in ("sweep.json", "sweep.csv"):  # no tasks/, no inputs, no report.html
        shutil.copy(sweep_dir / name, copy)
    assert main(["report", str(copy), "--html"]) == 0
    assert "report.html" in capsys.readouterr().out
    _check_sweep_page(copy)
    assert main(["report", str(copy)]) == 2  # a sweep's figures come from geoprobe sweep
    assert "add --html" in capsys.readouterr().err


def test_sweep_page_refuses_a_figure_outside_the_folder(sweep_dir, tmp_path):
    from geoprobe.sweep.report import write_sweep_report

    doc = json.loads((sweep_dir / "sweep.json").read_text())
    doc["files"]["figures"] = ["../../secret.png"]
    shutil.copy(sweep_dir / "sweep.csv", tmp_path)
    with pytest.raises(FormatError, match="sweep.json figure"):
        write_sweep_report(doc, tmp_path)


@needs_chromium
def test_sweep_report_html_renders_in_headless_chromium(sweep_dir, tmp_path):
    assert _failed_rows_drawn(_screenshot(sweep_dir / "report.html", tmp_path)) > 500


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
