"""``splitnic capture``: what an RX queue receives, printed or written as pcap."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from .info import LINK_HELP


def _summary(data: memoryview) -> str:
    dst, src = data[0:6].hex(":"), data[6:12].hex(":")
    ethertype = int.from_bytes(data[12:14], "big") if len(data) >= 14 else 0
    return f"{src} > {dst} ethertype {ethertype:#06x} length {len(data)}"


def _run(args: argparse.Namespace) -> int:
    import splitnic
    from ..pcap import PcapWriter
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with splitnic.open(args.link) as nic:
            if args.promisc:
                nic.set_filters(promisc=True)
            rxq = nic.rx_queue(args.queue, buf_size=args.buf_size)
            out = PcapWriter(args.write) if args.write else None
            print(f"capturing on RX queue {args.queue} of {nic.link.description}"
                  + (f" to {args.write}" if out else "") + " (Ctrl-C to stop)", file=sys.stderr, flush=True)
            got, deadline = 0, (time.monotonic() + args.seconds) if args.seconds else None
            try:
                while not stop and (args.count is None or got < args.count):
                    if deadline and time.monotonic() >= deadline:
                        break
                    packets = rxq.rx_burst(64 if args.count is None else min(64, args.count - got))
                    if not packets:
                        time.sleep(0.0005)
                        continue
                    now = time.time()
                    for p in packets:
                        if out:
                            out.write(p.data, now)
                        else:
                            print(_summary(p.data), flush=True)
                    rxq.release(packets)
                    got += len(packets)
            finally:
                if out:
                    out.close()
                if args.promisc:
                    nic.set_filters(promisc=False)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"captured {got} frames" + (f" to {args.write}" if args.write else ""), file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``capture`` command."""
    p = subparsers.add_parser("capture", help="capture what an RX queue receives (pcap with -w)")
    p.add_argument("--link", required=True, help=LINK_HELP)
    p.add_argument("-w", "--write", metavar="FILE.pcap", help="write a pcap file instead of printing summaries")
    p.add_argument("--queue", type=int, default=0, help="RX queue (default %(default)s: the kernel's)")
    p.add_argument("--count", type=int, default=None, help="stop after this many frames")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--promisc", action="store_true", help="accept every destination address while capturing")
    p.add_argument("--buf-size", type=int, default=2048, help="RX buffer bytes; longer frames are truncated")
    p.set_defaults(func=_run)
