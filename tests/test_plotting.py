"""Figures: saved in every format, drawn without pyplot, and no global matplotlib state."""

import subprocess
import sys

import numpy as np

from geoprobe.plotting import new_figure, save_figure


def test_importing_geoprobe_leaves_the_users_backend_alone():
    """A notebook user's backend survives importing the library and every probe module."""
    code = ("import matplotlib; matplotlib.use('svg'); import geoprobe, geoprobe.plotting; "
            "from geoprobe.registry import available, get_probe; "
            "[get_probe(n) for n in available()]; print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"


def test_figures_are_not_kept_by_pyplot_and_save_in_each_format(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig, axes = new_figure(2, width="double")
    axes[0, 0].plot(np.arange(5))
    assert axes.shape == (1, 2) and plt.get_fignums() == before
    paths = save_figure(fig, tmp_path / "f", formats=("pdf", "png", "svg"))
    assert [p.suffix for p in paths] == [".pdf", ".png", ".svg"]
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[0].read_bytes()[:5] == b"%PDF-"
