"""A received frame, lent zero-copy from its RX buffer until released.

Ref: docs/architecture.md, "Queues and steering" (applications read
packets zero-copy from their DMA buffers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from splitnic_spec import COMPLETION

if TYPE_CHECKING:
    from .rx_queue import RxQueue

__all__ = ["Packet"]

_TRUNCATED = COMPLETION.member("status").bit("TRUNCATED").mask


class Packet:
    """One frame in an RX buffer.

    :attr:`data` is a memoryview of the DMA buffer itself (no copy).  The
    buffer goes back to the NIC on :meth:`release` (or at the end of a
    ``with`` block); after that :attr:`data` raises, and views taken earlier
    must no longer be used: the NIC will overwrite them.
    """

    __slots__ = ("_queue", "cookie", "length", "status")

    def __init__(self, queue: "RxQueue", cookie: int, length: int, status: int) -> None:
        self._queue = queue
        self.cookie = cookie      #: buffer number inside the queue
        self.length = length      #: frame bytes in the buffer (FCS excluded)
        self.status = status      #: Completion.status bits (0: good)

    @property
    def data(self) -> memoryview:
        """Value of the frame: a view of the DMA buffer (zero-copy)."""
        q = self._queue
        if q is None:
            raise ValueError("packet already released: its buffer belongs to the NIC again")
        off = self.cookie * q._stride
        return q._bufview[off:off + self.length]

    @property
    def device_addr(self) -> int:
        """Value of the buffer's device (bus) address."""
        q = self._queue
        if q is None:
            raise ValueError("packet already released")
        return q._bufs_dev + self.cookie * q._stride

    @property
    def truncated(self) -> bool:
        """Whether the frame was longer than the buffer (only ``length`` bytes kept)."""
        return bool(self.status & _TRUNCATED)

    @property
    def released(self) -> bool:
        """Whether the buffer went back to the NIC."""
        return self._queue is None

    def __len__(self) -> int:
        return self.length

    def __bytes__(self) -> bytes:
        return bytes(self.data)

    def release(self) -> None:
        """Give the buffer back to the queue (re-posted on the next burst). Idempotent."""
        q = self._queue
        if q is not None:
            self._queue = None
            q._release_one(self.cookie)

    def __enter__(self) -> "Packet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._queue is None else f"buffer {self.cookie}"
        return f"<Packet {self.length} bytes, status {self.status:#x}, {state}>"
