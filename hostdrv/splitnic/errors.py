"""Errors the driver raises for conditions a user can fix.

The CLI prints them as one line (``splitnic: error: ...``) and exits non-zero;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["SplitnicError", "missing_extra"]


class SplitnicError(Exception):
    """A failure with a message that says what was expected, what came, and what to do."""

    #: Process exit status the CLI uses for this error.
    exit_code: int = 1


def missing_extra(command: str, err: ImportError, extra: str = "sim") -> SplitnicError:
    """The error of a command whose toolchain (a pip extra) is not installed here."""
    return SplitnicError(f"'splitnic {command}' needs the {extra} toolchain (no module {err.name or err}); "
                         f"install it with pip install 'splitnic[{extra}]' (in a checkout: make setup)")
