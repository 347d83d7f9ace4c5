"""A flow monitor on the fast path: packets and bytes per flow, the top talkers printed live.

Ref: docs/apps.md; RFC 791 §3.1 and RFC 8200 §3 (the headers read); splitnic.attach.

Steering moves frames, it does not copy them: the monitor sees (and takes) the
traffic its rule names, for example what a switch mirrors to this host, or a
port the host only watches.  Every second (``--interval``) it prints the
flows with the most bytes; on SIGTERM or Ctrl-C it prints every flow as one
JSON line.

    python examples/flow_monitor.py --interface snic0 --rule 'udp dport 6343'
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import struct
import sys
import time
from collections import defaultdict

import splitnic
from splitnic.errors import SplitnicError

_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}


def flow_of(frame) -> tuple[str, str, str, int, int] | None:
    """(protocol, source, destination, source port, destination port) of an IPv4/IPv6 frame, or None."""
    if len(frame) < 34:
        return None
    ethertype = (frame[12] << 8) | frame[13]
    if ethertype == 0x0800:
        proto, l4 = frame[23], 14 + (frame[14] & 0x0F) * 4
        src, dst = socket.inet_ntop(socket.AF_INET, bytes(frame[26:30])), \
            socket.inet_ntop(socket.AF_INET, bytes(frame[30:34]))
    elif ethertype == 0x86DD and len(frame) >= 54:
        proto, l4 = frame[20], 54
        src, dst = socket.inet_ntop(socket.AF_INET6, bytes(frame[22:38])), \
            socket.inet_ntop(socket.AF_INET6, bytes(frame[38:54]))
    else:
        return None
    sport = dport = 0
    if proto in (6, 17) and len(frame) >= l4 + 4:
        sport, dport = struct.unpack_from("!HH", frame, l4)
    return _PROTOCOLS.get(proto, str(proto)), src, dst, sport, dport


class FlowMonitor:
    """``handler(batch, app)``: count each frame of the batch against its flow."""

    def __init__(self) -> None:
        self.flows: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        self.other = 0

    def __call__(self, batch, app) -> None:
        for frame in batch:
            flow = flow_of(frame)
            if flow is None:
                self.other += 1
                continue
            counts = self.flows[flow]
            counts[0] += 1
            counts[1] += len(frame)

    def top(self, n: int = 5) -> list[tuple[tuple, list[int]]]:
        """The ``n`` flows with the most bytes."""
        return sorted(self.flows.items(), key=lambda kv: kv[1][1], reverse=True)[:n]

    def report(self) -> list[dict]:
        """Every flow, most bytes first."""
        return [{"proto": f[0], "src": f[1], "dst": f[2], "sport": f[3], "dport": f[4], "packets": c[0],
                 "bytes": c[1]} for f, c in self.top(len(self.flows))]


#: The handler ``splitnic up --fast 'RULE -> examples.flow_monitor:handle'`` runs.
handle = FlowMonitor()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interface", default="snic0", help="the interface splitnic up serves (default: snic0)")
    parser.add_argument("--apps", default=None, help="its application socket (default: /run/splitnic/IF.apps)")
    parser.add_argument("--rule", default="udp dport 6343", help="what to watch (default: %(default)s)")
    parser.add_argument("--name", default="flows", help="application name (default: %(default)s)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between two tables (default: 1)")
    parser.add_argument("--top", type=int, default=5, help="flows per table (default: %(default)s)")
    args = parser.parse_args(argv)
    stop: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(1))
    monitor = handle
    try:
        with splitnic.attach(args.rule, name=args.name, interface=args.interface, path=args.apps) as app:
            print(f"flow_monitor: watching '{args.rule}' on RX queue {app.rx.index} (Ctrl-C to stop)", flush=True)
            next_table = time.monotonic() + args.interval
            while not stop:
                app.run(monitor, stop=lambda: bool(stop) or time.monotonic() >= next_table, poll=args.interval)
                if time.monotonic() >= next_table:
                    next_table += args.interval
                    lines = [f"{c[0]:>8} pkts {c[1]:>10} B  {f[0]} {f[1]}:{f[3]} -> {f[2]}:{f[4]}"
                             for f, c in monitor.top(args.top)]
                    print(f"top {len(lines)} of {len(monitor.flows)} flows:", *lines, sep="\n  ", flush=True)
    except SplitnicError as err:
        print(f"flow_monitor: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"flows": monitor.report(), "other": monitor.other}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
