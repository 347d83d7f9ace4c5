"""The smallest application: a UDP echo beside snic0, zero-copy both ways.

Ref: docs/apps.md (the tutorial starts here); splitnic.attach; RxBatch.swap_udp.

Each batch's UDP frames are turned into their answers where they lie, in the
NIC's own buffers (addresses and ports swapped, in C), and forwarded buffer to
buffer: no Python object per frame.

    python examples/echo.py --interface snic0 --port 9000
    splitnic up --link mmio:/dev/shm/nic --fast 'udp dport 9000 -> examples.echo:handle'
"""

from __future__ import annotations

import argparse
import signal
import sys

import splitnic
from splitnic.errors import SplitnicError


def handle(batch, app) -> None:
    """Answer every UDP datagram of ``batch`` (the others are dropped with the batch)."""
    app.forward(batch, upto=batch.swap_udp())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interface", default="snic0", help="the interface splitnic up serves (default: snic0)")
    parser.add_argument("--apps", default=None, help="its application socket (default: /run/splitnic/IF.apps)")
    parser.add_argument("--port", type=int, default=9000, help="UDP port to answer (default: %(default)s)")
    parser.add_argument("--name", default="echo", help="application name (default: %(default)s)")
    parser.add_argument("--ring-log2", type=int, default=9, help="log2 of the ring entries (default: %(default)s)")
    args = parser.parse_args(argv)
    stop: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(1))
    try:
        with splitnic.attach(f"udp dport {args.port}", name=args.name, interface=args.interface,
                             path=args.apps, ring_log2=args.ring_log2) as app:
            print(f"echo: UDP port {args.port} on RX queue {app.rx.index}, TX queue {app.tx.index} "
                  "(Ctrl-C to stop)", flush=True)
            app.run(handle, stop=lambda: bool(stop))
            print(f"echo: {app.tx.sent} answered", flush=True)
    except SplitnicError as err:
        print(f"echo: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
