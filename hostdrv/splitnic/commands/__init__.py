"""The ``splitnic`` subcommands: one module per command.

Each module defines ``register(subparsers)``, which adds its parser and sets
``func`` (a callable taking the parsed arguments and returning the exit
status).  The CLI discovers the modules here, so adding a command touches no
other file.

Packages above the driver add commands through the entry-point group
``splitnic.commands`` (the simulator's ``sim``, the lab's ``demo``): the
driver never imports them, and a light install (``pip install .`` without
the ``sim`` extra) still lists them, answering with one line that says what
to install.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import pkgutil

from ..errors import missing_extra

__all__ = ["register_all", "ENTRY_POINT_GROUP"]

#: Entry-point group through which other packages add subcommands.
ENTRY_POINT_GROUP = "splitnic.commands"


def register_all(subparsers: argparse._SubParsersAction) -> None:
    """Register every command module in this package, then the plugged-in ones, in name order."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(subparsers)
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as err:
            _register_missing(subparsers, entry.name, err)
        else:
            register(subparsers)


def _register_missing(subparsers: argparse._SubParsersAction, name: str, err: ImportError) -> None:
    """A command whose package cannot load here: it fails with one line naming what is missing."""
    def fail(_args: argparse.Namespace) -> int:
        raise missing_extra(name, err)

    p = subparsers.add_parser(name, help="(not installed: needs splitnic[sim])", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=fail)
