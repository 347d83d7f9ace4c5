"""An application process for the tests: attach, echo UDP, check every frame, report on SIGTERM.

Ref: hostdrv/splitnic/app_client.py (splitnic.attach); tests/fastpath/test_app_processes.py.

    python -m tests.fastpath.app_proc --apps PATH --name NAME --port PORT [--bad-descriptor|--stray-descriptor]

Prints ``ready RXQ TXQ`` once attached, then echoes each UDP datagram steered
to it (swapped in place, forwarded buffer to buffer).  For every frame it
checks that it is the UDP port it asked for (``foreign`` counts the others)
and that the frame's bytes lie in the RX buffers the primary granted, in this
process's mapping of the NIC's DMA memory (``outside`` counts the others: a
copy would be outside).  On SIGTERM it prints one JSON line of its counts.
``--bad-descriptor`` first posts a TX descriptor pointing outside the DMA
memory (a buggy application), then carries on; ``--stray-descriptor`` one
pointing inside it but outside its own TX buffers (at its TX descriptor ring).
"""

from __future__ import annotations

import argparse
import json
import signal
import struct
import sys

import splitnic
from splitnic._cffi import ffi
from splitnic.apps.udp_echo import swap_in_place
from splitnic_spec import CSR_MAP, DESCRIPTOR


def post_bad_descriptor(app, addr: int = 0xFFFF_0000) -> None:
    """Write one TX descriptor whose 60-byte frame is at device address ``addr`` (by default past
    the end of DMA memory), and ring TAIL."""
    ring = app.tx.ring
    c = ring.c
    slot = c.tail & (ring.entries - 1)
    struct.pack_into("<QHHI", ring.desc.view, slot * DESCRIPTOR.size, addr, 60, 0, 0xBAD)
    c.tail += 1
    app.link.bus.write32(CSR_MAP.array("TXQ").offset(ring.index, "TAIL"), c.tail & 0xFFFF)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bad-descriptor", action="store_true")
    parser.add_argument("--stray-descriptor", action="store_true")
    args = parser.parse_args(argv)
    counts = {"frames": 0, "echoed": 0, "foreign": 0, "outside": 0}
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with splitnic.attach(f"udp dport {args.port}", name=args.name, path=args.apps) as app:
        rx = app.rx.ring
        first = int(ffi.cast("uintptr_t", rx.c.bufs))
        last = first + rx.nbufs * rx.stride
        print(f"ready {app.rx.index} {app.tx.index}", flush=True)
        if args.bad_descriptor:
            post_bad_descriptor(app)
        if args.stray_descriptor:
            post_bad_descriptor(app, app.tx.ring.desc.device_addr)

        def handle(batch, app) -> None:
            for frame in batch:
                counts["frames"] += 1
                where = int(ffi.cast("uintptr_t", ffi.from_buffer(frame)))
                if not first <= where < last:
                    counts["outside"] += 1
                if len(frame) < 42 or struct.unpack_from("!H", frame, 36)[0] != args.port:
                    counts["foreign"] += 1
                swap_in_place(frame)
            counts["echoed"] += app.forward(batch)
        app.run(handle, stop=lambda: bool(stop))
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
