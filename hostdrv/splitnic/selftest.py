"""The NIC's internal loopback self-test: TX queue 0 -> CTRL.LOOPBACK -> RX queue 0, compared.

Ref: docs/registers.md (CTRL.LOOPBACK); ``splitnic selftest`` runs it.

The test resets the NIC, sends frames of random sizes and contents from TX
queue 0 with loopback on, and compares what RX queue 0 receives, in order.
Buffers are just big enough for the largest frame, so the queues fit small
DMA memory (the board's 32 KiB).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass

from splitnic_spec import constant

from .errors import SplitnicError
from .nic import Nic

__all__ = ["LoopbackResult", "loopback_selftest"]

#: EtherType of the test frames (IEEE 802 local experimental).
_ETHERTYPE = b"\x88\xb5"


@dataclass
class LoopbackResult:
    """What came back from a loopback run."""
    sent: int
    received: int
    differing: list[int]   #: indices of frames that came back changed
    seconds: float
    min_size: int
    max_size: int

    @property
    def ok(self) -> bool:
        return self.received == self.sent and not self.differing

    def line(self) -> str:
        """``PASS: …`` or ``FAIL: …``, one line."""
        if self.ok:
            return (f"PASS: {self.sent} frames of {self.min_size}..{self.max_size} bytes looped back intact "
                    f"(TX queue 0 -> RX queue 0, {self.seconds:.2f} s)")
        what = f"{self.received} of {self.sent} frames came back" if self.received != self.sent else ""
        if self.differing:
            what += (", " if what else "") + f"frame {self.differing[0]} differs ({len(self.differing)} differ)"
        return f"FAIL: {what} (TX queue 0 -> loopback -> RX queue 0, {self.seconds:.2f} s)"


def loopback_selftest(nic: Nic, *, count: int = 64, max_size: int = 1514, seed: int = 1,
                      timeout: float = 60.0) -> LoopbackResult:
    """Reset ``nic``, loop ``count`` random frames through it and compare them."""
    min_frame = constant("MIN_FRAME")
    if not min_frame <= max_size <= 0xFFFF:
        raise SplitnicError(f"--max-size must be {min_frame}..65535 bytes, not {max_size}")
    rng = random.Random(seed)
    mac = nic.mac
    nic.reset()
    if mac == bytes(6):
        mac = bytes([0x02]) + os.urandom(5)
    nic.mac = mac
    nic.set_loopback(True)
    buf_size = max(64, -(-max_size // 64) * 64)
    rxq = nic.rx_queue(0, ring_log2=6, buf_size=buf_size)
    txq = nic.tx_queue(0, ring_log2=6, buf_size=buf_size)
    frames = [mac + mac + _ETHERTYPE + i.to_bytes(4, "big") + rng.randbytes(rng.randint(min_frame, max_size) - 18)
              for i in range(count)]
    received: list[bytes] = []
    sent, start = 0, time.monotonic()
    deadline = start + timeout
    while len(received) < len(frames) and time.monotonic() < deadline:
        if sent < len(frames):
            sent += txq.tx_burst(frames[sent:sent + 16])
        packets = rxq.rx_burst(64)
        received += [bytes(p.data) for p in packets]
        rxq.release(packets)
        if not packets:
            time.sleep(0.0002)
    elapsed = time.monotonic() - start
    nic.set_loopback(False)
    rxq.check()
    txq.check()
    differing = [i for i, (a, b) in enumerate(zip(frames, received)) if a != b]
    return LoopbackResult(len(frames), len(received), differing, elapsed, min_frame, max_size)
