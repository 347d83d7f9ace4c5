"""A TX queue: frames copied (or handed zero-copy) into TX buffers and posted.

Ref: docs/registers.md, "TXQ"; spec/splitnic_spec/nic.py (Descriptor,
Completion and PHASE).

``tx_burst`` takes bytes-like frames (copied into free TX buffers in one C
call), received :class:`~splitnic.packet.Packet`\\ s (copied buffer to buffer
in C: forwarding without touching Python bytes), or :class:`TxBuffer`\\ s taken
with :meth:`TxQueue.buffer` (zero-copy).  Each run of frames is posted with
one TAIL write.  TX buffers come back when the NIC's completions are
harvested, at the start of every burst.
"""

from __future__ import annotations

import logging
import time
from array import array
from typing import TYPE_CHECKING, Sequence

from ._cffi import ffi, lib
from .errors import SplitnicError
from .packet import Packet
from .ring import Ring, fit_sizes
from .rx_batch import RxBatch

if TYPE_CHECKING:
    from .nic import Nic

__all__ = ["TxQueue", "TxBuffer"]

log = logging.getLogger(__name__)


class TxBuffer:
    """A TX buffer lent for zero-copy sending: fill :attr:`view`, set :attr:`length`, pass to ``tx_burst``."""

    __slots__ = ("_queue", "cookie", "view", "length")

    def __init__(self, queue: "TxQueue", cookie: int, view: memoryview) -> None:
        self._queue = queue
        self.cookie = cookie
        self.view = view          #: the whole buffer (the NIC's memory)
        self.length = 0           #: frame bytes to send from the start of the buffer

    def release(self) -> None:
        """Give the buffer back unsent. Idempotent."""
        q = self._queue
        if q is not None:
            self._queue = None
            q._give_back(self.cookie)


class TxQueue:
    """TX queue ``index`` of a :class:`~splitnic.nic.Nic`; made by :meth:`Nic.tx_queue`."""

    def __init__(self, nic: "Nic", index: int, ring_log2: int = 8, buf_size: int = 2048,
                 nbufs: int | None = None, *, ring: Ring | None = None) -> None:
        # ``ring``: a ring someone else set up and enabled (splitnic.attach), as in RxQueue.
        self.nic = nic
        self.index = index
        if ring is None and nbufs is None:
            # The default (one per ring entry), made smaller on small DMA memory.
            ring_log2, nbufs = fit_sizes(nic.link, f"TXQ{index}", ring_log2, buf_size, 1 << ring_log2)
        self.ring = ring or Ring(nic.link, "TXQ", index, ring_log2, buf_size, nbufs)
        self._c = self.ring.c
        self._buf_size = self.ring.buf_size
        self.lent = 0          #: TxBuffers handed out, not yet posted or given back
        self.sent = 0          #: frames posted since set-up
        #: A copying link must fetch completions before harvesting them (frames and
        #: descriptors go out in Ring.doorbell); see ring.py, dma.py.
        self._copying = self.ring.copying
        if ring is None:
            self.ring.program()

    def _harvest(self) -> int:
        # The one place TX completions are harvested, once per burst.
        if self._copying:
            self.ring.sync_completions()
        return lib.snic_harvest(self._c, 1 << 30, ffi.NULL, ffi.NULL, ffi.NULL)

    @property
    def buf_size(self) -> int:
        """Value of the longest frame a TX buffer holds."""
        return self._buf_size

    def reclaim(self) -> int:
        """Harvest TX completions, returning their buffers to the free stack; returns how many."""
        return self._harvest()

    @property
    def in_flight(self) -> int:
        """Value of the descriptors posted whose completion is not harvested yet."""
        return (self._c.tail - self._c.next_cpl) & 0xFFFFFFFF

    def tx_burst(self, frames: Sequence[bytes | bytearray | memoryview | Packet | TxBuffer]) -> int:
        """Post ``frames`` for sending, in order; returns how many were taken (the rest: ring full)."""
        c = self._c
        if c.tail != c.next_cpl:
            self._harvest()
        # The common burst, all bytes: one join, which stops with TypeError at a Packet or a TxBuffer
        # (neither is bytes-like), of only as many frames as the ring has room for.  Looking at each
        # frame's type in Python cost more than copying a small frame in C.
        room = lib.snic_tx_room(c)
        head = frames if len(frames) <= room else frames[:room]
        try:
            data = b"".join(head)
        except TypeError:
            taken = self._post_runs(frames)
        else:
            taken = self._post_copies(head, data) if len(head) else 0
        if taken:
            self.sent += taken
            self.ring.doorbell()
        return taken

    def forward(self, batch: RxBatch, *, upto: int | None = None) -> int:
        """Send the first ``upto`` (all) frames of ``batch``, each copied buffer to buffer in C.

        The frames may have been rewritten in place; no Python object is made per frame.
        Returns how many were taken (the rest: ring full).  The batch is not released.
        """
        src = batch._owner()
        n = len(batch) if upto is None else min(upto, len(batch))
        if not n:
            return 0
        c = self._c
        if c.tail != c.next_cpl:
            self._harvest()
        taken = lib.snic_tx_forward(c, src._c, batch._cookies, batch._lengths, n)
        if taken:
            self.sent += taken
            self.ring.doorbell()
        return taken

    def _post_runs(self, frames: Sequence) -> int:
        # A mixed burst: each run of one kind (copied frames, another queue's Packets, TxBuffers) in turn.
        n = len(frames)
        taken = i = 0
        while i < n:
            first = frames[i]
            kind = type(first)
            j = i + 1
            if kind is Packet:
                src = first._queue
                while j < n and type(frames[j]) is Packet and frames[j]._queue is src:
                    j += 1
            elif kind is TxBuffer:
                while j < n and type(frames[j]) is TxBuffer:
                    j += 1
            else:
                while j < n and type(frames[j]) not in (Packet, TxBuffer):
                    j += 1
            run = frames if (i == 0 and j == n) else frames[i:j]
            got = self._post(kind, run)
            taken += got
            if got < j - i:
                break
            i = j
        return taken

    def _post(self, kind: type, run: Sequence) -> int:
        c = self._c
        if kind is Packet:
            src = run[0]._queue
            if src is None:
                raise ValueError("cannot send a released packet: its buffer belongs to the NIC again")
            return lib.snic_tx_forward(c, src._c, ffi.new("uint32_t[]", [p.cookie for p in run]),
                                       ffi.new("uint16_t[]", [p.length for p in run]), len(run))
        if kind is TxBuffer:
            for b in run:
                if b._queue is not self:
                    raise ValueError("TxBuffer was already sent or released, or belongs to another queue")
                if not 0 < b.length <= self._buf_size:
                    raise ValueError(f"TxBuffer.length must be 1..{self._buf_size}, not {b.length}")
            got = lib.snic_tx_post_held(c, ffi.new("uint32_t[]", [b.cookie for b in run]),
                                        ffi.new("uint16_t[]", [b.length for b in run]), len(run))
            if got < 0:
                bad = run[-got - 1]
                if any(b is bad for b in run[:-got - 1]):
                    raise ValueError(f"TXQ{self.index}: TxBuffer {bad.cookie} passed twice in one burst; "
                                     "none of its run was sent")
                raise RuntimeError(f"TXQ{self.index}: buffer {bad.cookie} was not lent out")
            for b in run[:got]:
                b._queue = None
            self.lent -= got
            return got
        return self._post_copies(run, b"".join(run))

    def _post_copies(self, run: Sequence, data: bytes) -> int:
        # ``data``: the frames of ``run`` joined; C copies each into a free buffer and posts it.
        lengths = list(map(len, run))
        longest = max(lengths)
        if longest > self._buf_size:
            raise SplitnicError(f"TXQ{self.index}: a {longest}-byte frame does not fit the {self._buf_size}-byte "
                                "TX buffers; open the queue with a larger buf_size")
        return lib.snic_tx_copy(self._c, ffi.from_buffer(data), ffi.from_buffer("uint16_t[]", array("H", lengths)),
                                len(lengths))

    def buffer(self) -> TxBuffer | None:
        """A free TX buffer for zero-copy sending, or None when all are in flight."""
        c = self._c
        if c.tail != c.next_cpl:
            self._harvest()
        cookie = lib.snic_take(c)
        if cookie < 0:
            return None
        self.lent += 1
        off = cookie * self.ring.stride
        return TxBuffer(self, cookie, self.ring.bufs.view[off:off + self._buf_size])

    def _give_back(self, cookie: int) -> None:
        # A lent TX buffer goes back exactly like a released RX buffer.
        if lib.snic_release_one(self._c, cookie):
            raise RuntimeError(f"TXQ{self.index}: buffer {cookie} was not lent out (released twice?)")
        self.lent -= 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the NIC completed every posted frame; returns whether it did within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            self.reclaim()
            if not self.in_flight:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0002)

    def check(self) -> dict[str, int]:
        """Verify the buffer books (free + in flight + lent = all, each buffer once); returns the counts."""
        return self.ring.check(self.lent)

    @property
    def errors(self) -> int:
        """Value of completions with a non-zero status (e.g. LEN_ERROR) seen so far."""
        return self._c.errors

    def close(self) -> None:
        """Disable the queue and free its DMA memory."""
        self.ring.close()
        self.nic._forget(self)
