"""The ``splitnic`` command line.

Subcommands live in :mod:`splitnic.commands`, one module each.  Errors a user
can fix (:class:`splitnic.errors.SplitnicError`) print one line and exit
non-zero.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .commands import register_all
from .errors import SplitnicError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="splitnic",
        description="Drive a splitnic NIC from user space: simulate it, inspect it, "
                    "move packets, and tunnel the kernel's snic0 through it.")
    parser.add_argument("--version", action="version", version=f"splitnic {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v: info, -vv: debug, including every register access)")
    register_all(parser.add_subparsers(dest="command", metavar="COMMAND"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``splitnic`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
                        format="%(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except SplitnicError as err:
        print(f"splitnic: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
