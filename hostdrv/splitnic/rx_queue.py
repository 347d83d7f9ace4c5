"""An RX queue: buffers posted to the NIC, frames handed out zero-copy.

Ref: docs/registers.md, "RXQ"; spec/splitnic_spec/nic.py (Descriptor,
Completion and PHASE).

``rx_burst`` harvests completions (C: ``snic_harvest``) and returns
:class:`~splitnic.packet.Packet` views into the buffers; ``rx_batch`` returns
the same harvest as one :class:`~splitnic.rx_batch.RxBatch`, without an object
per frame, for applications that take frames by the thousand.  A released buffer
returns to the free stack and is re-posted in a batch with one TAIL write
(C: ``snic_refill``): at once by :meth:`RxQueue.release`, which takes a batch
anyway, and at the start of the next ``rx_burst`` after single
``Packet.release()`` calls.  Re-posting a batch at once matters when the
application transmits before it polls again: frames that arrive meanwhile
find buffers instead of being dropped.  A queue has twice as many buffers as
ring entries by default, so the application can hold a ring's worth of
packets while the ring stays full.
"""

from __future__ import annotations

import logging
from itertools import repeat
from typing import TYPE_CHECKING, Iterable

from ._cffi import ffi, lib
from .packet import Packet
from .ring import Ring, fit_sizes
from .rx_batch import RxBatch

if TYPE_CHECKING:
    from .nic import Nic

__all__ = ["RxQueue"]

log = logging.getLogger(__name__)
#: The arrays of every empty RxBatch (never written: an empty batch has no frame to read).
_NO_FRAMES = (ffi.new("uint32_t[]", 0), ffi.new("uint16_t[]", 0), ffi.new("uint8_t[]", 0))


class RxQueue:
    """RX queue ``index`` of a :class:`~splitnic.nic.Nic`; made by :meth:`Nic.rx_queue`."""

    def __init__(self, nic: "Nic", index: int, ring_log2: int = 8, buf_size: int = 2048,
                 nbufs: int | None = None, *, ring: Ring | None = None) -> None:
        # ``ring``: a ring someone else set up and enabled (an application adopting the queue its
        # primary granted, splitnic.attach); this queue only posts its buffers and harvests.
        self.nic = nic
        self.index = index
        if ring is None and nbufs is None:
            # The default (twice the ring), made smaller on small DMA memory.
            ring_log2, nbufs = fit_sizes(nic.link, f"RXQ{index}", ring_log2, buf_size, 2 << ring_log2)
        self.ring = ring or Ring(nic.link, "RXQ", index, ring_log2, buf_size, nbufs)
        r = self.ring
        self._c = r.c
        self._stride = r.stride
        self._bufview = r.bufs.view
        self._bufs_dev = r.bufs.device_addr
        self._max = r.entries
        self._cookies = ffi.new("uint32_t[]", r.entries)
        self._lengths = ffi.new("uint16_t[]", r.entries)
        self._status = ffi.new("uint8_t[]", r.entries)
        self.lent = 0            #: packets handed out and not yet released
        self.received = 0        #: packets handed out since the queue was set up
        #: Only a copying link pays for syncing (ring.py, dma.py): once per burst.
        self._copying = r.copying
        if ring is None:
            r.program()
        self._refill()

    @property
    def buf_size(self) -> int:
        """Value of the buffer size (longer frames arrive truncated)."""
        return self.ring.buf_size

    def _refill(self) -> None:
        if lib.snic_refill(self._c):
            self.ring.doorbell()

    def _harvest(self, max_frames: int) -> int:
        """Take up to ``max_frames`` completions into the scratch arrays; returns how many."""
        c = self._c
        if c.nfree:
            self._refill()
        most = min(max_frames, self._max)
        if self._copying:
            self.ring.sync_completions(most)
        n = lib.snic_harvest(c, most, self._cookies, self._lengths, self._status)
        if n:
            self.lent += n
            self.received += n
            if self._copying:
                # The NIC wrote each frame before its completion: fetch the bytes now.
                for cookie, length in zip(ffi.unpack(self._cookies, n), ffi.unpack(self._lengths, n)):
                    self.ring.sync_buffer_for_cpu(cookie, length)
        return n

    def rx_burst(self, max_frames: int = 64) -> list[Packet]:
        """Frames received, at most ``max_frames``; never blocks.

        Each :class:`Packet` views its DMA buffer until released.
        """
        n = self._harvest(max_frames)
        if not n:
            return []
        return list(map(Packet, repeat(self, n), ffi.unpack(self._cookies, n), ffi.unpack(self._lengths, n),
                        ffi.unpack(self._status, n)))

    def rx_batch(self, max_frames: int = 64) -> RxBatch:
        """Frames received, at most ``max_frames``, as one :class:`RxBatch`; never blocks.

        The cheap way to take many frames: no object per frame, and one call
        gives every buffer back (:meth:`RxBatch.release`).
        """
        n = self._harvest(max_frames)
        if not n:
            return RxBatch(self, 0, *_NO_FRAMES)    # an idle poll allocates no arrays
        arrays = (ffi.new("uint32_t[]", n), ffi.new("uint16_t[]", n), ffi.new("uint8_t[]", n))
        for dst, src in zip(arrays, (self._cookies, self._lengths, self._status)):
            ffi.memmove(dst, src, ffi.sizeof(dst))
        return RxBatch(self, n, *arrays)

    def _release_one(self, cookie: int) -> None:
        if lib.snic_release_one(self._c, cookie):
            raise RuntimeError(f"RXQ{self.index}: buffer {cookie} was not lent out (released twice?)")
        self.lent -= 1

    def _release_cookies(self, cookies, n: int) -> None:
        """Give back ``n`` buffers (a ``uint32_t[]``) and re-post them."""
        rc = lib.snic_release(self._c, cookies, n)
        if rc:
            raise RuntimeError(f"RXQ{self.index}: buffer {cookies[-rc - 1]} was not lent out (released twice?)")
        self.lent -= n
        self._refill()

    def release(self, packets: Iterable[Packet]) -> None:
        """Give many packets' buffers back at once and re-post them (cheaper than one by one)."""
        cookies = []
        for p in packets:
            if p._queue is self:
                p._queue = None
                cookies.append(p.cookie)
            elif p._queue is not None:
                p.release()
        if cookies:
            self._release_cookies(ffi.new("uint32_t[]", cookies), len(cookies))

    def check(self) -> dict[str, int]:
        """Verify the buffer books (free + posted + lent = all, each buffer once); returns the counts."""
        return self.ring.check(self.lent)

    @property
    def errors(self) -> int:
        """Value of completions with a non-zero status, or claiming more bytes than their buffer, so far."""
        return self._c.errors

    @property
    def bad_lengths(self) -> int:
        """Value of completions whose length exceeded the buffer posted (clamped to it, counted in errors)."""
        return self._c.bad_lengths

    def close(self) -> None:
        """Disable the queue and free its DMA memory (packets still lent become invalid)."""
        self.ring.close()
        self.nic._forget(self)
