"""The NIC's internal loopback self-test: TX queue 0 -> CTRL.LOOPBACK -> RX queue 0, compared.

Ref: docs/registers.md (CTRL.LOOPBACK, RXQ DROPS); ``splitnic selftest`` runs it.

The test resets the NIC, sends frames of random sizes and contents from TX
queue 0 with loopback on, and compares what RX queue 0 receives, in order.
Buffers are just big enough for the largest frame, so the queues fit small
DMA memory (the board's 32 KiB).

With loopback on, every frame sent needs an RX buffer the moment the NIC
takes it, and a frame that finds none is dropped (and counted in the queue's
``DROPS``), as a frame from the wire would be.  So the test never has more
frames in flight than RX queue 0 has buffers posted: it takes and re-posts
what arrived (one TAIL write) *before* it posts more TX (the host link keeps
the two writes in that order), and sends a frame only while the frames sent
and not yet back fit the RX ring.  Posting TX first let the NIC loop frames
the host had already seen complete on TX into RX slots the host had not yet
given back; over a slow link (``eth:`` through a relay) the re-post came too
late a few times a run.

Each frame carries its number (bytes 14..17), so the comparison tells a frame
that never came back (and whether the NIC counted it dropped) from one that
came back changed, instead of calling every frame after a gap changed.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field

from splitnic_spec import constant

from .errors import SplitnicError
from .nic import Nic

__all__ = ["LoopbackResult", "loopback_selftest", "compare_looped"]

#: EtherType of the test frames (IEEE 802 local experimental).
_ETHERTYPE = b"\x88\xb5"
#: Where each test frame carries its number, after the Ethernet header.
_NUMBER = slice(14, 18)
#: Frames posted to TX per call.
_TX_BATCH = 16
#: While nothing arrives, how often the NIC's drop counters are read (a frame dropped never comes back).
_IDLE_CHECK_S = 0.25


@dataclass
class LoopbackResult:
    """What came back from a loopback run."""
    sent: int
    received: int
    differing: list[int]   #: numbers of the frames that came back changed
    seconds: float
    min_size: int
    max_size: int
    missing: list[int] = field(default_factory=list)   #: numbers of the frames that never came back
    misordered: int = 0    #: frames that came back out of order or twice
    dropped: int = 0       #: frames the NIC counted as dropped on receive during the run

    @property
    def ok(self) -> bool:
        return self.received == self.sent and not self.differing and not self.missing and not self.misordered

    def line(self) -> str:
        """``PASS: …`` or ``FAIL: …``, one line."""
        if self.ok:
            return (f"PASS: {self.sent} frames of {self.min_size}..{self.max_size} bytes looped back intact "
                    f"(TX queue 0 -> RX queue 0, {self.seconds:.2f} s)")
        what = []
        if self.received != self.sent:
            what.append(f"{self.received} of {self.sent} frames came back")
        if self.missing:
            what.append(f"frame {self.missing[0]} missing ({len(self.missing)} missing, "
                        f"{self.dropped} counted as dropped by the NIC on receive)")
        if self.differing:
            what.append(f"frame {self.differing[0]} differs ({len(self.differing)} differ)")
        if self.misordered:
            what.append(f"{self.misordered} out of order or twice")
        return f"FAIL: {', '.join(what)} (TX queue 0 -> loopback -> RX queue 0, {self.seconds:.2f} s)"


def compare_looped(frames: list[bytes], received: list[bytes]) -> tuple[list[int], list[int], int]:
    """``(differing, missing, misordered)``: what of ``frames`` (each carrying its number) ``received`` lacks.

    A frame whose number is intact but whose bytes are not is charged to that
    number; one whose number is damaged too, to the frame that was due next.
    """
    differing: list[int] = []
    seen: set[int] = set()
    misordered = 0
    due = 0
    for got in received:
        number = _number(got)
        if not 0 <= number < len(frames):
            number = min(due, len(frames) - 1)
        if number in seen or number < due:
            misordered += 1
        elif got != frames[number]:
            differing.append(number)
        seen.add(number)
        due = max(due, number + 1)
    missing = [n for n in range(len(frames)) if n not in seen]
    return differing, missing, misordered


def _rx_drops(nic: Nic) -> int:
    """Frames of this loop the NIC dropped on receive so far: its RX FIFO full, or RX queue 0 out of
    buffers (another queue's drops are not this loop's frames)."""
    stats = nic.stats()
    return stats.get("rx_fifo_drop", 0) + stats.get("rxq0_drops", 0)


def _number(frame: bytes) -> int:
    """The number a looped frame carries (-1: too short to carry one)."""
    return int.from_bytes(frame[_NUMBER], "big") if len(frame) >= _NUMBER.stop else -1


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
    # The RX buffers the NIC holds at once when every frame that arrived was given back.
    rx_posted = min(rxq.ring.entries, rxq.ring.nbufs)
    frames = [mac + mac + _ETHERTYPE + i.to_bytes(4, "big") + rng.randbytes(rng.randint(min_frame, max_size) - 18)
              for i in range(count)]
    received: list[bytes] = []
    # The numbers that came back: a frame that came twice (the link's duplicate) ends nothing early.
    arrived: set[int] = set()
    drops_before, dropped = _rx_drops(nic), 0
    sent, start = 0, time.monotonic()
    deadline, idle_since = start + timeout, None
    while len(arrived) + dropped < len(frames) and time.monotonic() < deadline:
        packets = rxq.rx_burst(64)
        received += [bytes(p.data) for p in packets]
        arrived.update(_number(bytes(p.data[:_NUMBER.stop])) for p in packets)
        rxq.release(packets)     # re-posted (TAIL) before the TX doorbell below
        # Frames in flight need a posted RX buffer each; a dropped frame took none.
        room = min(_TX_BATCH, len(frames) - sent, rx_posted - (sent - len(received) - dropped))
        posted = txq.tx_burst(frames[sent:sent + room]) if room > 0 else 0
        sent += posted
        if packets or posted:
            idle_since = None
            continue
        now = time.monotonic()
        if idle_since is None:
            idle_since = now
        elif now - idle_since > _IDLE_CHECK_S:
            dropped, idle_since = _rx_drops(nic) - drops_before, now
        time.sleep(0.0002)
    elapsed = time.monotonic() - start
    nic.set_loopback(False)
    dropped = _rx_drops(nic) - drops_before
    rxq.check()
    txq.check()
    differing, missing, misordered = compare_looped(frames, received)
    return LoopbackResult(len(frames), len(received), differing, elapsed, min_frame, max_size, missing, misordered,
                          dropped)
