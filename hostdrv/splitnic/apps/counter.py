"""A packet counter on the fast path: what reached its queue, per protocol and port.

Ref: RFC 791 §3.1 (IPv4 header), RFC 8200 §3 (IPv6 header).

It reads each packet in place (zero-copy) and releases it at once, so its
queue never fills.  ``splitnic up`` serves every application that has no
built-in handler with one, so steered frames are counted, never stranded.
"""

from __future__ import annotations

from collections import Counter as _Tally

from ..fastpath import App

__all__ = ["Counter", "flow_key"]

_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}


def flow_key(frame: memoryview | bytes) -> str:
    """A short name for what ``frame`` carries: ``udp/9000``, ``ethertype 0x88b5``..."""
    if len(frame) < 14:
        return "runt"
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == 0x0800 and len(frame) >= 34:
        proto, l4 = frame[23], 14 + (frame[14] & 0x0F) * 4
    elif ethertype == 0x86DD and len(frame) >= 54:
        proto, l4 = frame[20], 54
    else:
        return f"ethertype {ethertype:#06x}"
    name = _PROTOCOLS.get(proto, f"ip proto {proto}")
    if proto in (6, 17) and len(frame) >= l4 + 4:
        return f"{name}/{int.from_bytes(frame[l4 + 2:l4 + 4], 'big')}"
    return name


class Counter:
    """Handler for :meth:`splitnic.fastpath.FastPath.serve`: count frames and bytes per flow key."""

    def __init__(self, burst: int = 64) -> None:
        self.burst = burst
        self.frames: _Tally[str] = _Tally()
        self.bytes: _Tally[str] = _Tally()

    def __call__(self, app: App) -> int:
        with app.rx_batch(self.burst) as batch:
            for data in batch:
                key = flow_key(data)
                self.frames[key] += 1
                self.bytes[key] += len(data)
            return len(batch)
