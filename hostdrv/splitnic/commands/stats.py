"""``splitnic stats``: the NIC's counters (64-bit), once or as a live view.

While ``splitnic up`` (or the demo) holds the NIC, the counters come from that
process (:mod:`splitnic.stats_control`); otherwise this command attaches itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

from .info import LINK_HELP


def _table(stats: dict[str, int], rates: dict[str, float] | None, show_all: bool) -> list[str]:
    lines = []
    for name, value in stats.items():
        if value or show_all:
            rate = f"  {rates[name]:>14,.0f}/s" if rates is not None else ""
            lines.append(f"{name:<22}{value:>20,}{rate}")
    return lines or ["(all counters are 0)"]


def _run(args: argparse.Namespace) -> int:
    from ..stats_control import query
    # The process that holds the NIC (splitnic up, the demo) answers for it: a sim: link takes
    # one client at a time, and two processes widening the same counters would miss reads.
    reply = query(args.link)
    if reply is not None:
        return _show(lambda: query(args.link)["stats"], f"{reply['link']} (through the process that holds it)", args)
    import splitnic
    with splitnic.open(args.link) as nic:
        return _show(nic.stats, nic.link.description, args)


def _show(read: Callable[[], dict[str, int]], where: str, args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(read(), indent=2))
        return 0
    if not args.watch:
        print("\n".join(_table(read(), None, args.all)))
        return 0
    before, then = read(), time.monotonic()
    tty = sys.stdout.isatty()
    shown = 0
    try:
        while args.count is None or shown < args.count:
            time.sleep(args.watch)
            now_stats, now = read(), time.monotonic()
            rates = {k: (v - before.get(k, 0)) / (now - then) for k, v in now_stats.items()}
            lines = [f"{where}  every {args.watch:g} s (Ctrl-C to stop)", ""]
            lines += _table(now_stats, rates, args.all)
            # Refresh in place: cursor home, clear to end of screen.
            sys.stdout.write(("\x1b[H\x1b[J" if tty else "") + "\n".join(lines) + "\n")
            sys.stdout.flush()
            before, then = now_stats, now
            shown += 1
    except KeyboardInterrupt:
        pass
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``stats`` command."""
    p = subparsers.add_parser("stats", help="show the NIC's counters (widened to 64 bits)")
    p.add_argument("--link", required=True, help=LINK_HELP)
    p.add_argument("--json", action="store_true", help="print all counters as JSON")
    p.add_argument("--all", action="store_true", help="also show counters that are 0")
    p.add_argument("--watch", type=float, nargs="?", const=1.0, default=None, metavar="SECONDS",
                   help="refresh in place every SECONDS (default 1) with rates, until Ctrl-C")
    p.add_argument("--count", type=int, default=None, help="with --watch: stop after this many refreshes")
    p.set_defaults(func=_run)
