"""Safe names and contained paths: nothing read from a file decides where geoprobe writes.

Suites, manifests and results files are input, and may come from someone else. Every name in
them that becomes part of a path (probe ids, suite and source names, split names, figure
names, the files a manifest lists) goes through this module, so that ``id = "../../x"`` or a
manifest entry ``"/etc/passwd"`` is refused with a one-line error naming the key instead of
reading or writing outside the folder it belongs in.

- :func:`check_name` for a name that becomes one path component: it must match
  :data:`NAME_PATTERN`, which by construction has no separator, is never ``.`` or ``..``
  (it starts with a letter or digit) and is never absolute.
- :func:`inside` for a path built under a folder: it refuses any result whose resolved path
  (symbolic links followed) is not within the resolved folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import GeoprobeError

#: what a name that becomes a file or folder name may look like
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_NAME = re.compile(NAME_PATTERN)
_RULE = "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_name(value, *, what: str, error: type[GeoprobeError] = GeoprobeError) -> str:
    """Return ``value`` if it is safe as one file or folder name, else raise ``error``.

    ``what`` names the key in the message, e.g. ``"s.toml [[probes]] #1: id"``.
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise error(f"{what} {value!r} is not allowed: {_RULE}")
    return value


def inside(base, *parts, what: str, error: type[GeoprobeError] = GeoprobeError) -> Path:
    """``base`` joined with ``parts``, refused with ``error`` unless it stays inside ``base``.

    Both sides are resolved first, so ``..``, absolute parts and symbolic links that lead out
    of ``base`` are all caught; a path that does not exist yet is checked as far as it goes.
    Returns the joined path unresolved, so that callers keep relative paths relative.
    """
    path = Path(base).joinpath(*parts)
    if not path.resolve().is_relative_to(Path(base).resolve()):
        shown = "/".join(str(p) for p in parts)
        raise error(f"{what} {shown!r} leads outside {base}")
    return path
