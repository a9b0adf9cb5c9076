"""The ``pconv`` command line: a thin skin over the library.

Each command lives in its own module (``cli/<command>.py``) and registers itself on ``app``.
Library errors (``PconvError``) become one line on stderr and exit status 1; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

from . import commands as _commands  # noqa: F401  (registers the commands)
from .app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
