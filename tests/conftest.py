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
