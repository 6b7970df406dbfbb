"""One thread policy for the whole library: how many BLAS and torch intra-op threads to use.

Every place in geoprobe that does numerical work runs under one policy instead of pinning
threads its own way::

    from geoprobe import threads

    with threads.policy():        # GEOPROBE_THREADS, else the default below
        result = probe.run(emb)
    with threads.policy(4):       # an explicit count for this block
        ...

A block sets the BLAS libraries' thread count (through threadpoolctl, every BLAS loaded in the
process: numpy's and scipy's are separate libraries) and torch's intra-op thread count, and
restores both on exit. A block without a count inside another block changes nothing, so the
library's entry points (:meth:`geoprobe.probe.Probe.run`, :func:`geoprobe.runner.run_suite`,
:func:`geoprobe.decoding.mlp_cv_predict`, :func:`geoprobe.jepa.train.train`) each open one:
called from the ``geoprobe`` CLI (whose ``--threads`` flag opens the outer block) or from an
outer block they inherit its count; called alone they apply the policy for the call and leave
the caller's settings as they were.

The count comes from, first to last: the ``n`` given to :func:`policy` (the CLI's
``--threads N``), the ``GEOPROBE_THREADS`` environment variable, :data:`DEFAULT`. ``auto``
means :data:`DEFAULT`.

Why the default is 1
--------------------
Measured by ``benchmarks/bench_threads.py`` (``benchmarks/results/threads.md``) on the project
machine, 2 cores shared with other jobs; seconds, median of 3, 1 thread / 2 threads:

===========================================  =============  ==============  ============
workload                                     no load added  other jobs (*)  2 busy
                                             (load ~1)      (load ~2.5)     neighbours
===========================================  =============  ==============  ============
polar epoch, 1,500 planted sentences, d 384  0.24 / 0.20    0.32 / 5.40     0.38 / 17.39
ridge decode, 20,000 x 384, 5 targets        0.19 / 0.14    0.24 / 1.33     0.30 / 0.61
20 JEPA steps, batch 16, 32x32 frames        0.25 / 0.20    0.29 / 1.42     0.44 / 1.11
spectrum bootstrap, 20,000 x 256, 100        1.14 / 1.07    1.22 / 3.32     2.24 / 53.07
===========================================  =============  ==============  ============

(*) an earlier run of the same script while other users' jobs held the load average at
2.2-2.8 (its file is in the history of ``benchmarks/results/threads.md``); the other two
columns are the run now in that file, whose two neighbours are ``while True: pass`` processes.

With a core to spare, 2 threads gain at most 1.3x (0.77-0.94 of the time); as soon as the
cores are contended they lose 2x to 46x, because a thread that loses its core stalls the other
at every barrier (worst for the polar epoch's many small products and the bootstrap's many
small eigenproblems). On a shared machine the expected cost of 2 threads is far above the
gain, so the default, and ``auto``, is one thread; on cores of your own give ``--threads N``
or ``GEOPROBE_THREADS=N``.

Algorithmic pins
----------------
:func:`single_blas_thread` is for code whose BLAS calls are too small to split whatever the
policy says (L-BFGS's vector updates in :mod:`geoprobe.decoding`): threaded BLAS makes them
about 20x slower on a busy machine.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

from .errors import GeoprobeError

#: the environment variable that sets the policy's thread count
ENV = "GEOPROBE_THREADS"
#: threads when neither an option nor GEOPROBE_THREADS says otherwise (see the module notes)
DEFAULT = 1
#: the other variables that set library thread counts at load time, recorded in provenance
_LOAD_TIME_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# Counts of the policy blocks now open (innermost last); empty outside any block.
_active: list[int] = []


def parse(value, *, what: str = "thread count") -> int:
    """A thread count from an int or text: a positive integer, or ``auto`` (:data:`DEFAULT`).

    Raises :class:`~geoprobe.errors.GeoprobeError` (one line) for anything else.
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return DEFAULT
        try:
            value = int(text)
        except ValueError:
            raise GeoprobeError(f"{what} {value!r}: expected a positive integer or 'auto'"
                                ) from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GeoprobeError(f"{what} {value!r}: expected a positive integer or 'auto'")
    return value


def resolve(n=None) -> int:
    """The count a new policy block would use: ``n``, else ``$GEOPROBE_THREADS``, else
    :data:`DEFAULT`."""
    if n is not None:
        return parse(n)
    if os.environ.get(ENV, "").strip():
        return parse(os.environ[ENV], what=ENV)
    return DEFAULT


def _blas_libraries():
    """Load the BLAS libraries geoprobe uses so that threadpoolctl sees them: a library
    loaded after the limits are set would run with its own default."""
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401


@contextlib.contextmanager
def policy(n=None):
    """Run the block with ``n`` BLAS and torch intra-op threads (see the module notes).

    Parameters
    ----------
    n : int, str or None
        A positive count or ``"auto"``; None inherits an enclosing block's count, or outside
        any block takes ``$GEOPROBE_THREADS`` or :data:`DEFAULT`.

    Both settings are restored when the block exits, also on an exception.
    """
    if n is None and _active:
        _active.append(_active[-1])
        try:
            yield _active[-1]
        finally:
            _active.pop()
        return
    count = resolve(n)
    import torch
    from threadpoolctl import threadpool_limits

    _blas_libraries()
    before = torch.get_num_threads()
    limits = threadpool_limits(limits=count, user_api="blas")
    torch.set_num_threads(count)
    _active.append(count)
    try:
        yield count
    finally:
        _active.pop()
        torch.set_num_threads(before)
        limits.restore_original_limits()


def follows_policy(fn):
    """Decorate a library entry point to run in ``policy()``: an enclosing block's count, or
    the environment's or default for the call alone."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with policy():
            return fn(*args, **kwargs)
    return wrapper


@contextlib.contextmanager
def single_blas_thread():
    """One BLAS thread for the block, whatever the policy: for code made of BLAS calls too
    small to gain from threads (see the module notes)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def settings() -> dict:
    """The thread settings in force, for provenance: the policy's count (None outside a
    block), ``$GEOPROBE_THREADS``, torch's intra-op threads (None when torch is not loaded),
    each loaded BLAS's threads and the load-time variables that are set."""
    from threadpoolctl import threadpool_info

    torch = sys.modules.get("torch")
    return {
        "policy": _active[-1] if _active else None,
        ENV: os.environ.get(ENV),
        "torch": torch.get_num_threads() if torch is not None else None,
        "blas": {f"{i['internal_api']} ({os.path.basename(i['filepath'])})": i["num_threads"]
                 for i in threadpool_info() if i["user_api"] == "blas"},
        "env": {k: os.environ[k] for k in _LOAD_TIME_VARS if k in os.environ},
    }
