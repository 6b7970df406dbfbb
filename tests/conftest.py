import os
import shutil
import tempfile

import numpy as np
import pytest

os.environ.setdefault("GEOPROBE_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Nothing is cached between test runs: geoprobe's caches (the assembled WordNet directory,
# Monte Carlo nulls) go to a directory that lives only as long as this session.
_CACHE = tempfile.mkdtemp(prefix="geoprobe-test-cache-")
os.environ["GEOPROBE_CACHE"] = _CACHE
os.environ["XDG_CACHE_HOME"] = _CACHE


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def check_saved_figure():
    """Check saved figure files for content, not just size: the PDF is a PDF, and the PNG
    decodes to the figure's size in pixels (inches x dpi, read from the Figure object) and is
    not blank. Returns the PNG as an (h, w, 3) uint8 array."""
    from PIL import Image

    from geoprobe import plotting

    def check(fig, paths):
        by_ext = {p.suffix: p for p in paths}
        if ".pdf" in by_ext:
            assert by_ext[".pdf"].read_bytes().startswith(b"%PDF-")
        with Image.open(by_ext[".png"]) as im:
            png = np.asarray(im.convert("RGB"))
        # saved at the style's dpi with a tight bounding box, which trims or extends the
        # margins by a fraction of the figure: within 25 % of inches x dpi
        w, h = fig.get_size_inches() * plotting.SAVE_DPI
        assert abs(png.shape[1] - w) < 0.25 * w and abs(png.shape[0] - h) < 0.25 * h
        assert png.std() > 0  # a blank canvas is one colour
        # share of pixels with ink (not near-white): a blank figure has 0; axes, tick labels
        # and curves ink several percent of any probe figure, so 1 % means "something drawn"
        assert (png.min(axis=2) < 250).mean() > 0.01
        return png

    return check


@pytest.fixture
def smallest_font():
    """The smallest font size, in points, of any text drawn in a figure (labels, ticks,
    legends, annotations): below 6 points text is illegible at print size."""
    from matplotlib.text import Text

    def smallest(fig) -> float:
        return min(t.get_fontsize() for t in fig.findobj(Text) if t.get_text())

    return smallest
