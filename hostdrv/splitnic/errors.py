"""Errors the driver raises for conditions a user can fix.

The CLI prints them as one line (``splitnic: error: ...``) and exits non-zero;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["SplitnicError"]


class SplitnicError(Exception):
    """A failure with a message that says what was expected, what came, and what to do."""

    #: Process exit status the CLI uses for this error.
    exit_code: int = 1
