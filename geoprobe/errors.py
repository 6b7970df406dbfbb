"""User-facing errors.

Every error a user can fix by changing their input derives from :class:`GeoprobeError`. The
CLI prints these as one line and exits with status 2; anything else is a bug in geoprobe and
keeps its traceback.
"""

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class GeoprobeError(Exception):
    """Base class for errors caused by input the user can correct."""


class EmbeddingError(GeoprobeError, ValueError):
    """An embedding set is malformed: bad shape, NaN/Inf, duplicate or mismatched item IDs."""


class FormatError(GeoprobeError, ValueError):
    """A file is not in the format its name or caller says it is."""


class ProbeInputError(GeoprobeError, ValueError):
    """A probe cannot run on the input it was given (missing column, annotation or model)."""


class UnknownProbeError(GeoprobeError, KeyError):
    """No probe is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SuiteError(GeoprobeError, ValueError):
    """A suite file is malformed or names something that does not exist."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of a foreign exception's message, without terminal colours:
    parsers' messages can span paragraphs, and geoprobe's errors are one line."""
    for line in _ANSI.sub("", str(exc)).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
