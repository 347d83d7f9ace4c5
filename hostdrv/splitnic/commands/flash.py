"""``splitnic flash``: load the board bitstream with openFPGALoader (SRAM, or SPI flash with ``--flash``).

Ref: docs/hardware.md, "Flash"; the library is :mod:`splitnic.flasher`.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from splitnic_spec.board import BOARDS, DEFAULT_BOARD

from ..flasher import KNOWN_PROBES, choose_cable, default_bitstream, flash_command, load_bitstream


def _run(args: argparse.Namespace) -> int:
    bitstream = Path(args.bitstream) if args.bitstream else default_bitstream(board_name=args.board)
    cable = args.cable or choose_cable(dry_run=args.dry_run, board_name=args.board)
    if args.dry_run:
        print(shlex.join(flash_command(bitstream, cable, args.flash, args.board)))
        return 0
    load_bitstream(bitstream, cable, args.flash, args.board)
    where = "SPI flash (kept across power cycles)" if args.flash else "SRAM (until the next power cycle)"
    print(f"flashed {bitstream.name} to the {BOARDS[args.board].title}'s {where} through {cable}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``flash`` command."""
    p = subparsers.add_parser("flash", help="load the board's bitstream (Colorlight i5 or i9) with openFPGALoader "
                                            "(SRAM; --flash for SPI flash)")
    p.add_argument("--board", choices=tuple(BOARDS), default=DEFAULT_BOARD, help="the board (default %(default)s)")
    p.add_argument("--bitstream", help="bitstream to load (default: the one `make bitstream BOARD=...` builds)")
    p.add_argument("--flash", action="store_true", help="write the SPI flash (survives power cycles) instead of SRAM")
    p.add_argument("--cable", help=f"openFPGALoader cable name (default: detected; one of "
                                   f"{', '.join(sorted(set(KNOWN_PROBES.values())))})")
    p.add_argument("--dry-run", action="store_true", help="print the openFPGALoader command and stop")
    p.set_defaults(func=_run)

