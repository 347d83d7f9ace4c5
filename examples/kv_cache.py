"""A UDP key-value cache answered from the fast path, beside snic0.

Ref: docs/apps.md (the tutorial builds this file); splitnic.attach.

The protocol is one datagram each way, text:

    SET key value   ->  STORED
    GET key         ->  VALUE value   (or NOT_FOUND)
    DEL key         ->  DELETED       (or NOT_FOUND)
    anything else   ->  ERROR

Its own process (the queues come from the running ``splitnic up``)::

    python examples/kv_cache.py --interface snic0 --port 9000

or inside ``splitnic up``, the same handler (the repository on PYTHONPATH)::

    splitnic up --link mmio:/dev/shm/nic --fast 'udp dport 9000 -> examples.kv_cache:handle'
"""

from __future__ import annotations

import argparse
import signal
import sys

import splitnic
from splitnic.errors import SplitnicError
from splitnic.frames import udp_payload, udp_reply


class KvCache:
    """``handler(batch, app)``: answer each request of the batch, one TX burst for the replies."""

    def __init__(self, max_keys: int = 1 << 20) -> None:
        self.store: dict[bytes, bytes] = {}
        self.max_keys = max_keys
        self.requests = 0

    def answer(self, request: bytes) -> bytes:
        """The reply to one request."""
        op, _, rest = request.strip().partition(b" ")
        key, _, value = rest.partition(b" ")
        op = op.upper()
        if op == b"GET" and key:
            found = self.store.get(key)
            return b"VALUE " + found if found is not None else b"NOT_FOUND"
        if op == b"SET" and key:
            if key not in self.store and len(self.store) >= self.max_keys:
                return b"ERROR full"
            self.store[key] = value
            return b"STORED"
        if op == b"DEL" and key:
            return b"DELETED" if self.store.pop(key, None) is not None else b"NOT_FOUND"
        return b"ERROR"

    def __call__(self, batch, app) -> None:
        replies = []
        for frame in batch:                       # a view of the NIC's buffer: nothing copied to read it
            request = udp_payload(frame)
            if request is not None:
                self.requests += 1
                replies.append(udp_reply(frame, self.answer(request)))
        if replies:
            app.send(replies)


#: The handler ``splitnic up --fast 'udp dport 9000 -> examples.kv_cache:handle'`` runs.
handle = KvCache()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interface", default="snic0", help="the interface splitnic up serves (default: snic0)")
    parser.add_argument("--apps", default=None, help="its application socket (default: /run/splitnic/IF.apps)")
    parser.add_argument("--port", type=int, default=9000, help="UDP port to answer (default: %(default)s)")
    parser.add_argument("--name", default="kv", help="application name (default: %(default)s)")
    args = parser.parse_args(argv)
    stop: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(1))
    try:
        with splitnic.attach(f"udp dport {args.port}", name=args.name, interface=args.interface,
                             path=args.apps) as app:
            print(f"kv_cache: UDP port {args.port} on RX queue {app.rx.index}, TX queue {app.tx.index} "
                  "(Ctrl-C to stop)", flush=True)
            app.run(handle, stop=lambda: bool(stop))
    except SplitnicError as err:
        print(f"kv_cache: error: {err}", file=sys.stderr)
        return 1
    print(f"kv_cache: {handle.requests} requests, {len(handle.store)} keys", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
