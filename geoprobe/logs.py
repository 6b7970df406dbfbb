"""Messages through the :mod:`logging` module, and how the command line shows them.

Library code logs to ``logging.getLogger(__name__)`` (children of the ``geoprobe`` logger) and
never prints messages: a notebook or a script configures logging as it likes. The command line
installs one handler on stderr for the duration of a command (:func:`cli_logging`), so stdout
holds only a command's output (its tables, or its JSON with ``--json``). Verbosity, from
``-q``/``-v``:

====  =========  =======================================================
 -2   ERROR      nothing but errors
 -1   WARNING    warnings and errors (``-q``; also hides the human summary)
  0   WARNING    the default
  1   INFO       what is loaded and run, and how long it took (``-v``)
  2   DEBUG      details (``-vv``)
====  =========  =======================================================

Errors keep their one-line form ``geoprobe: error: ...``; warnings read
``geoprobe: warning: ...`` and other messages ``geoprobe: ...``.
"""

from __future__ import annotations

import contextlib
import logging
import sys

LOGGER = "geoprobe"


def level_for(verbosity: int) -> int:
    """The logging level for a verbosity count (``-v`` adds one, ``-q`` takes one away)."""
    if verbosity <= -2:
        return logging.ERROR
    if verbosity <= 0:
        return logging.WARNING
    return logging.INFO if verbosity == 1 else logging.DEBUG


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        kind = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"geoprobe: {kind}{record.getMessage()}"


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record arrives (pytest's capture, a
    redirection), not to the stream that was current when the handler was made."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # logging must never take the command down
            self.handleError(record)


@contextlib.contextmanager
def cli_logging(verbosity: int = 0):
    """Show the ``geoprobe`` logger's messages on stderr at the level ``verbosity`` picks,
    for the duration of the block; the logger's previous settings come back afterwards."""
    logger = logging.getLogger(LOGGER)
    handler = _StderrHandler()
    handler.setFormatter(_Formatter())
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(level_for(verbosity))
    logger.propagate = False  # the user's root handlers would print each message twice
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
