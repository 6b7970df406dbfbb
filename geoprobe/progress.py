"""Progress bars (tqdm on stderr), silenced when not wanted or when stderr is not a terminal."""

from __future__ import annotations

import os
import sys


def progress_enabled(enable: bool = True) -> bool:
    if not enable or os.environ.get("GEOPROBE_NO_PROGRESS"):
        return False
    return sys.stderr.isatty()


def progress(iterable=None, *, enable: bool = True, **kwargs):
    """``tqdm(iterable, **kwargs)``, disabled when ``enable`` is false or stderr is no TTY."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not progress_enabled(enable), leave=False, **kwargs)
