"""``splitnic demo``: the split in action on a simulated NIC (what ``make demo`` runs).

Ref: lab/splitnic_lab/demo.py and sim_lab.py (topology and checks).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from splitnic.errors import SplitnicError, missing_extra
from splitnic.tunnel import KINDS


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise SplitnicError("the demo creates network namespaces and TAP devices: run it as root")
    try:
        from .demo import run_demo  # the simulator's toolchain loads only when the demo runs
    except ImportError as err:
        raise missing_extra("demo", err) from None
    signal.signal(signal.SIGTERM, _interrupt)  # clean up on SIGTERM as on Ctrl-C
    try:
        result = run_demo(simulator=args.simulator, kernel=args.kernel, live=args.live)
    except KeyboardInterrupt:
        print("demo: interrupted; namespaces, TAP and simulator removed", file=sys.stderr)
        return 130
    return 0 if result.ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    p = subparsers.add_parser(
        "demo", help="run the demo: simulated NIC, snic0 through the tunnel, fast-path UDP echo",
        description="Build and start the simulated NIC with its wire in a peer network namespace, bring up "
                    "snic0 (stub module if loaded, else TAP) in a host namespace, steer UDP port 9000 to a "
                    "fast-path echo application, and show ping, TCP and UDP from the peer working at once, "
                    "with per-queue counters. Cleans up after itself, also on Ctrl-C. Needs root.")
    p.add_argument("--simulator", choices=("verilator", "icarus", "software"), default="verilator",
                   help="the NIC: its RTL on verilator or icarus, or the software NIC (the C model: no build, "
                        "fast; default: %(default)s)")
    p.add_argument("--kernel", choices=KINDS, default="auto",
                   help="kernel side: stub, tap or auto (stub if /dev/splitnic exists; default)")
    live = p.add_mutually_exclusive_group()
    live.add_argument("--live", dest="live", action="store_true", default=None,
                      help="redraw the counters in place (default on a terminal)")
    live.add_argument("--no-live", dest="live", action="store_false", help="print progress lines instead")
    p.set_defaults(func=_run)
