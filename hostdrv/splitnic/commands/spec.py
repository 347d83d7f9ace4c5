"""``splitnic spec``: print the spec version and hash this driver was built for."""

from __future__ import annotations

import argparse

import splitnic_spec as spec


def _run(args: argparse.Namespace) -> int:
    print(f"spec {spec.VERSION_MAJOR}.{spec.VERSION_MINOR} hash {spec.SPEC_HASH:#010x}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``spec`` command."""
    p = subparsers.add_parser("spec", help="print the register spec version and hash the driver expects")
    p.set_defaults(func=_run)
