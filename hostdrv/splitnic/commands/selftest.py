"""``splitnic selftest``: internal loopback (CTRL.LOOPBACK): TX queue 0 -> RX queue 0, compared.

The library is :mod:`splitnic.selftest`.

``--firmware`` runs the management firmware's own self-test instead (mailbox
op SELFTEST: its SRAM, the NIC's ID as the CPU reads it, CYCLES, the wire
PHY on MDIO); it leaves the NIC alone.
"""

from __future__ import annotations

import argparse

from ..selftest import loopback_selftest
from .info import LINK_HELP


def _run_firmware(args: argparse.Namespace) -> int:
    import splitnic
    from ..firmware import SELFTEST_CHECKS, Firmware
    with splitnic.open(args.link) as nic:
        failed = Firmware(nic.bus, timeout=args.timeout).selftest()
    if failed:
        print(f"FAIL: firmware self-test: {', '.join(failed)} failed ({len(SELFTEST_CHECKS) - len(failed)} "
              f"of {len(SELFTEST_CHECKS)} checks passed)")
        return 1
    print(f"PASS: firmware self-test, {len(SELFTEST_CHECKS)} checks ({', '.join(SELFTEST_CHECKS.values())})")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.firmware:
        return _run_firmware(args)
    import splitnic
    with splitnic.open(args.link) as nic:
        result = loopback_selftest(nic, count=args.count, max_size=args.max_size, seed=args.seed,
                                   timeout=args.timeout)
    print(result.line())
    return 0 if result.ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``selftest`` command."""
    p = subparsers.add_parser("selftest", help="loop frames through the NIC internally and compare (resets the NIC)")
    p.add_argument("--link", required=True, help=LINK_HELP)
    p.add_argument("--count", type=int, default=64, help="frames (default %(default)s)")
    p.add_argument("--max-size", type=int, default=1514, help="largest frame (default %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="random seed for sizes and contents")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default %(default)s)")
    p.add_argument("--firmware", action="store_true",
                   help="run the management firmware's self-test instead (board or simulated board SoC)")
    p.set_defaults(func=_run)
