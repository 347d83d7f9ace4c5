"""The frames of one harvest, lent zero-copy together and given back in one call.

Ref: docs/architecture.md, "Queues and steering"; :mod:`splitnic.rx_queue`.

:meth:`RxQueue.rx_burst <splitnic.rx_queue.RxQueue.rx_burst>` makes one
:class:`~splitnic.packet.Packet` per frame, which an application can keep or
release on its own.  That object and its release cost a few hundred
nanoseconds of Python per frame, as much as everything else on the receive
path together.  :meth:`RxQueue.rx_batch <splitnic.rx_queue.RxQueue.rx_batch>`
hands out the harvest as one :class:`RxBatch` instead: the buffer numbers,
lengths and status stay in C arrays, a frame's view is made only when asked
for, and :meth:`RxBatch.release` gives every buffer back in one C call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ._cffi import ffi, lib

if TYPE_CHECKING:
    from .rx_queue import RxQueue

__all__ = ["RxBatch"]


class RxBatch:
    """Frames ``0 .. len(batch)-1`` of one harvest, in arrival order.

    ``batch[i]`` (and iteration) gives frame ``i`` as a memoryview of its DMA
    buffer; :meth:`length` and :meth:`status` read its completion.  The
    buffers go back to the NIC together on :meth:`release` (or at the end of
    a ``with`` block); after that every access raises, and views taken
    earlier must no longer be used: the NIC will overwrite them.
    """

    __slots__ = ("_queue", "_n", "_cookies", "_lengths", "_status")

    def __init__(self, queue: "RxQueue", n: int, cookies, lengths, status) -> None:
        self._queue: RxQueue | None = queue
        self._n = n
        self._cookies = cookies       # uint32_t[n]: buffer numbers inside the queue
        self._lengths = lengths       # uint16_t[n]: frame bytes (FCS excluded)
        self._status = status         # uint8_t[n]: Completion.status bits (0: good)

    def _owner(self) -> "RxQueue":
        q = self._queue
        if q is None:
            raise ValueError("batch already released: its buffers belong to the NIC again")
        return q

    def _index(self, i: int) -> int:
        if not -self._n <= i < self._n:
            raise IndexError(f"frame {i} of a batch of {self._n}")
        return i % self._n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> memoryview:
        q, i = self._owner(), self._index(i)
        off = self._cookies[i] * q._stride
        return q._bufview[off:off + self._lengths[i]]

    def __iter__(self) -> Iterator[memoryview]:
        q = self._owner()
        view, stride = q._bufview, q._stride
        for cookie, length in zip(ffi.unpack(self._cookies, self._n), ffi.unpack(self._lengths, self._n)):
            off = cookie * stride
            yield view[off:off + length]

    def length(self, i: int) -> int:
        """Frame ``i``'s bytes in its buffer (FCS excluded)."""
        self._owner()
        return self._lengths[self._index(i)]

    def status(self, i: int) -> int:
        """Frame ``i``'s Completion.status bits (0: good)."""
        self._owner()
        return self._status[self._index(i)]

    def lengths(self) -> list[int]:
        """Every frame's length, in order."""
        self._owner()
        return ffi.unpack(self._lengths, self._n)

    @property
    def nbytes(self) -> int:
        """Value of the frame bytes the batch holds, all frames together."""
        return sum(self.lengths())

    def swap_udp(self) -> int:
        """Turn every Ethernet/IPv4/UDP frame into its echo where it lies (addresses and ports
        swapped: checksums stay valid), in C, and move those frames to the front of the batch in
        order; returns how many there are (``app.forward(batch, upto=n)`` sends them back)."""
        q = self._owner()
        return lib.snic_udp_swap(q._c, self._cookies, self._lengths, self._status, self._n)

    @property
    def released(self) -> bool:
        """Whether the buffers went back to the NIC."""
        return self._queue is None

    def release(self) -> None:
        """Give every buffer back to the queue and re-post them, in one call. Idempotent."""
        q = self._queue
        if q is None:
            return
        self._queue = None
        if self._n:
            q._release_cookies(self._cookies, self._n)

    def __enter__(self) -> "RxBatch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._queue is None else f"RXQ{self._queue.index}"
        return f"<RxBatch of {self._n} frames, {state}>"
