"""``splitnic sim``: run the simulated NIC (the RTL on Verilator or Icarus) for other commands to attach to.

Ref: docs/simulation.md ("The simulation server"); :mod:`splitnic_sim.server`.

A command the simulator adds to the CLI (entry point ``splitnic.commands``):
the driver does not import the simulator.

    splitnic sim --socket /tmp/snic.sock --wire tap:snicw0 &
    splitnic info --link sim:/tmp/snic.sock

builds the NIC's Verilog the first time (a minute or two; the build is cached
under .cache/sim/), starts the simulator, prints the ``--link`` to use once
its socket listens, and runs until Ctrl-C or SIGTERM.  ``--wire tap:IFNAME``
connects the NIC's Ethernet port to a TAP interface, so real Linux traffic
reaches the simulated NIC.
"""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from splitnic.errors import SplitnicError, missing_extra

#: Seconds between checks that the simulator is still alive.
WATCH_PERIOD = 0.5


def _run(args: argparse.Namespace) -> int:
    try:
        from .server import SimNic
    except ImportError as err:
        raise missing_extra("sim", err) from None
    stopping: list[int] = []
    previous = {sig: signal.signal(sig, lambda num, _frame: stopping.append(num))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    options = {} if args.dma_mib is None else {"dma_size": args.dma_mib << 20}
    sim = SimNic(socket_path=args.socket, simulator=args.simulator, wire=args.wire, harness=args.harness, **options)
    try:
        sim.start(timeout=args.start_timeout)
        print(f"sim: {args.simulator} NIC listening; attach with --link {sim.link} "
              f"(wire {args.wire}; log {sim.log_path}; Ctrl-C to stop)", flush=True)
        while not stopping:
            if not sim.running:
                raise SplitnicError(f"the simulator stopped by itself; see {sim.log_path}")
            time.sleep(WATCH_PERIOD)
        print("sim: stopped", flush=True)
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _dma_mib(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        value = 0
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"must be a whole number of MiB from 1 to 1024, not {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sim`` command."""
    p = subparsers.add_parser(
        "sim", help="run the simulated NIC (RTL) and print the --link other commands attach with",
        description="Build (first time) and run the NIC's RTL in a simulator; the driver attaches over a Unix "
                    "socket and maps the NIC's DMA memory from a shared-memory file. Runs until Ctrl-C/SIGTERM.")
    p.add_argument("--socket", type=Path, default=None,
                   help="Unix socket to listen on (default: a fresh one under /tmp, printed at start)")
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                   help="HDL simulator (default: %(default)s; icarus is about ten times slower)")
    p.add_argument("--harness", choices=("native", "python"), default=None,
                   help="what runs the NIC's ports and clock: native (SystemVerilog + C, Verilator only; the default "
                        "there) or python (cocotb models; Icarus's); SPLITNIC_SIM_HARNESS sets the default")
    p.add_argument("--wire", default="none", metavar="none|tap:IFNAME",
                   help="the NIC's Ethernet port: none, or a TAP interface (created if missing; default: none)")
    p.add_argument("--dma-mib", type=_dma_mib, default=None, metavar="MIB",
                   help="size of the DMA memory in MiB (default: room for every queue at default ring sizes)")
    p.add_argument("--start-timeout", type=float, default=600, metavar="SECONDS",
                   help="give up when the simulator is not listening after this long (default: %(default)s)")
    p.set_defaults(func=_run)
