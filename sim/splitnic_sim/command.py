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
reaches the simulated NIC.  ``--trace FILE.fst`` records the NIC's signals
while drivers use it, bounded: ``--trace-cycles`` cycles (default a million,
8 ms of the NIC's time) from ``--trace-start`` (docs/simulation.md, "Waveforms").
"""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from splitnic.errors import SplitnicError, missing_extra

from .native import DEFAULT_TRACE_CYCLES

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
    if args.trace is not None:
        options.update(trace=args.trace, trace_start=args.trace_start, trace_cycles=args.trace_cycles)
    sim = SimNic(socket_path=args.socket, simulator=args.simulator, wire=args.wire, harness=args.harness, **options)
    try:
        sim.start(timeout=args.start_timeout)
        print(f"sim: {args.simulator} NIC listening; attach with --link {sim.link} "
              f"(wire {args.wire}; log {sim.log_path}; Ctrl-C to stop)", flush=True)
        if sim.trace is not None:
            t = sim.trace
            print(f"sim: recording cycles {t.start}..{t.start + t.cycles - 1} into {t.path} "
                  f"(complete once the window has passed or the simulator stops)", flush=True)
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


def _cycles(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""), 0)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of cycles >= {minimum}, not {text!r}")
        return value
    return parse


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
    p.add_argument("--trace", type=Path, default=None, metavar="FILE.fst",
                   help="record the NIC's signals into this FST file (native harness; a traced build of its own, "
                        "built the first time); open it with gtkwave")
    p.add_argument("--trace-start", type=_cycles(0), default=0, metavar="CYCLE",
                   help="first clock cycle to record (default: %(default)s, the start)")
    p.add_argument("--trace-cycles", type=_cycles(1), default=DEFAULT_TRACE_CYCLES, metavar="N",
                   help="record this many cycles, then close the file (default: %(default)s, 8 ms of the NIC's time)")
    p.add_argument("--start-timeout", type=float, default=600, metavar="SECONDS",
                   help="give up when the simulator is not listening after this long (default: %(default)s)")
    p.set_defaults(func=_run)
