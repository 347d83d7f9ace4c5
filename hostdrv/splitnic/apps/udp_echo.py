"""A UDP echo server on the fast path: answers each datagram from its own RX buffer.

Ref: RFC 768 (UDP), RFC 791 §3.1 (IPv4 header); IEEE Std 802.3 §3.1.1 (MAC addresses).

The reply is the request with Ethernet addresses, IPv4 addresses and UDP
ports swapped.  Swapping leaves both checksums valid (they are sums over the
same 16-bit words in another order), so nothing is recomputed.  Frames that
are not IPv4/UDP are counted and dropped.

Zero-copy: the swap is done in place in the RX buffers, in C for the whole
burst (:meth:`RxBatch.swap_udp <splitnic.rx_batch.RxBatch.swap_udp>`; :func:`swap_in_place` is the same
for one frame, in Python), the burst is forwarded (C copies RX buffer to TX
buffer, the one copy a send needs), and its buffers go back in one release
(one re-post, one TAIL write).

    python -m splitnic.apps.udp_echo --link sim:/path --port 9000
"""

from __future__ import annotations

import argparse
import logging
import select
import signal
import sys
import time

from ..fastpath import App

__all__ = ["UdpEcho", "echo_reply", "swap_in_place"]

log = logging.getLogger(__name__)

_ETH_IPV4 = b"\x08\x00"
_UDP = 17


def echo_reply(frame: memoryview | bytes) -> bytearray | None:
    """The echo of an Ethernet/IPv4/UDP frame, or None when ``frame`` is not one."""
    if len(frame) < 42 or frame[12:14] != _ETH_IPV4 or frame[14] >> 4 != 4 or frame[23] != _UDP:
        return None
    ihl = (frame[14] & 0x0F) * 4
    l4 = 14 + ihl
    if ihl < 20 or len(frame) < l4 + 8:
        return None
    reply = bytearray(frame)
    reply[0:6], reply[6:12] = frame[6:12], frame[0:6]
    reply[26:30], reply[30:34] = frame[30:34], frame[26:30]
    reply[l4:l4 + 2], reply[l4 + 2:l4 + 4] = frame[l4 + 2:l4 + 4], frame[l4:l4 + 2]
    return reply


def swap_in_place(frame: memoryview) -> bool:
    """Turn an Ethernet/IPv4/UDP frame into its echo where it lies; False (untouched) when it is not one."""
    if len(frame) < 42 or frame[12] != 0x08 or frame[13] != 0x00 or frame[14] >> 4 != 4 or frame[23] != _UDP:
        return False
    ihl = (frame[14] & 0x0F) * 4
    l4 = 14 + ihl
    if ihl < 20 or len(frame) < l4 + 8:
        return False
    for a, b, n in ((0, 6, 6), (26, 30, 4), (l4, l4 + 2, 2)):
        first = bytes(frame[a:a + n])
        frame[a:a + n] = frame[b:b + n]
        frame[b:b + n] = first
    return True


class UdpEcho:
    """Handler for :meth:`splitnic.fastpath.FastPath.serve`: echo what arrives, count the rest."""

    def __init__(self, burst: int = 32) -> None:
        self.burst = burst
        self.echoed = 0
        self.ignored = 0
        self.tx_dropped = 0

    def __call__(self, app: App) -> int:
        with app.rx_batch(self.burst) as batch:                     # one re-post for the burst
            if not len(batch):
                return 0
            replies = batch.swap_udp()                              # rewritten in the DMA buffers, in C
            sent = app.forward(batch, upto=replies) if replies else 0   # forwarded buffer to buffer
            self.ignored += len(batch) - replies
            self.echoed += sent
            self.tx_dropped += replies - sent
            return len(batch)


def main(argv: list[str] | None = None) -> int:
    """Run the echo server alone on a NIC until Ctrl-C."""
    from .. import open as open_nic
    from ..errors import SplitnicError
    from ..fastpath import FastPath
    from ..irq import NicInterrupt
    parser = argparse.ArgumentParser(prog="python -m splitnic.apps.udp_echo", description=__doc__.split("\n")[0])
    parser.add_argument("--link", required=True, help="the NIC, e.g. sim:/path/to/socket")
    parser.add_argument("--port", type=int, default=9000, help="UDP port to answer (default: %(default)s)")
    args = parser.parse_args(argv)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        nic = open_nic(args.link)
        fast = FastPath(nic, [f"udp dport {args.port} -> echo"])
        echo = UdpEcho()
        fast.serve("echo", echo)
        print(f"echoing UDP port {args.port} on RX queue {fast.apps['echo'].queue} (Ctrl-C to stop)", flush=True)
        irq = None
        if nic.link.irq is not None:   # sleep on the NIC's interrupt (splitnic.irq), else poll
            irq = NicInterrupt(nic)
            irq.enable(rx_queues=1 << fast.apps["echo"].queue, link=False)
        while not stop:
            if fast.poll():
                continue
            if irq is None:
                time.sleep(0.0005)
                continue
            irq.arm()                  # the queue is empty: the next frame raises the line
            if not fast.poll():
                select.select([irq], [], [], 1.0)   # at most 1 s, so SIGTERM is seen
                irq.take()
    except SplitnicError as err:
        print(f"udp_echo: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    print(f"echoed {echo.echoed}, ignored {echo.ignored}, not sent {echo.tx_dropped}")
    nic.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
