"""The ``splitnic`` subcommands: one module per command.

Each module defines ``register(subparsers)``, which adds its parser and sets
``func`` (a callable taking the parsed arguments and returning the exit
status).  The CLI discovers the modules here, so adding a command touches no
other file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

__all__ = ["register_all"]


def register_all(subparsers: argparse._SubParsersAction) -> None:
    """Register every command module in this package, in name order."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(subparsers)
