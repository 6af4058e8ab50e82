"""How the command line shows warnings: one clean line each, the way it shows errors.

Python prints a warning as ``/path/to/cfld/training/verify.py:100: UserWarning: <text>`` and then
the source line that raised it: noise for a user, who did nothing at that line.  While a command
runs, :func:`one_line_warnings` replaces only the *formatting*
(:func:`warnings.formatwarning`), so a warning reads ``cfld train: warning: <text>``.  Warnings
stay warnings: filters, ``python -W error``, :func:`warnings.catch_warnings` and
``pytest.warns`` see them as before (they record warnings before any formatting), and the
Python API is untouched.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def format_warning(prefix: str, message: Warning | str, category: type[Warning],
                   filename: str) -> str:
    """``PREFIX: warning: TEXT`` on one line; another kind of warning from outside cfld (a
    library's FutureWarning, DeprecationWarning, ...) also names its kind and module
    (``(FutureWarning from diffusers)``), which is where its fix lies."""
    text = " ".join(str(message).split())
    path = os.path.abspath(filename) if filename else _PACKAGE_DIR
    # cfld warns with UserWarning, often with stacklevel=2 (the caller's line): those, and
    # anything raised inside the package, are cfld's words.
    if issubclass(category, UserWarning) or os.path.commonpath([_PACKAGE_DIR, path]) == (
            _PACKAGE_DIR):
        return f"{prefix}: warning: {text}\n"
    parts = path.replace("\\", "/").split("/")
    where = next((parts[i + 1] for i, p in enumerate(parts[:-1])
                  if p in ("site-packages", "dist-packages")), os.path.basename(path))
    return f"{prefix}: warning: {text} ({category.__name__} from {where})\n"


@contextlib.contextmanager
def one_line_warnings(prefix: str) -> Iterator[None]:
    """Format every warning shown while the block runs as one ``PREFIX: warning: ...`` line."""
    previous = warnings.formatwarning

    def formatwarning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, line: str | None = None) -> str:
        return format_warning(prefix, message, category, filename)

    warnings.formatwarning = formatwarning
    try:
        yield
    finally:
        warnings.formatwarning = previous


__all__ = ["format_warning", "one_line_warnings"]
