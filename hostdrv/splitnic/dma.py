"""DMA memory: buffers with a device address and a Python view of the same bytes.

Ref: docs/architecture.md, "Host links".

Each link hands the driver one big :class:`DmaRegion` (the shared-memory
file of the simulator, the DMA part of the mmio file, later coherent memory
from the stub module); :class:`DmaAllocator` carves rings and buffers out of
it with an aligned first-fit free list.

Syncing: who calls what, when, and why
--------------------------------------
On ``sim`` and ``mmio`` a region's view *is* the memory the NIC reads and
writes (``zero_copy`` true).  On ``etherbone`` the NIC's DMA memory is
block RAM on the board and the view is a local copy; bytes move only when
the driver asks, like Linux's ``dma_sync_single_for_device`` /
``dma_sync_single_for_cpu``.  Every :class:`DmaMemory` has both operations,
no-ops when ``zero_copy`` is true:

- ``sync_for_device(device_addr, size)``: the CPU wrote these bytes in the
  view and the NIC is about to read them.  Called by the queue code
  (``ring.py``) after writing and *before* the register write that hands
  them over: the zeroed completion ring and the descriptor ring before the
  queue's CTRL.ENABLE, new descriptors (and, for TX, their frames' bytes)
  before TAIL.
- ``sync_for_cpu(device_addr, size)``: the NIC may have written these bytes
  and the CPU is about to read them.  Called before harvesting, on the
  completion entries that can be new, and before an RX buffer is handed out
  as a Packet, on its received bytes (after its completion was seen: the
  NIC writes a frame before its completion).

Nothing else calls them; applications never do (a Packet's data is synced
when it is handed out, a TxBuffer's when it is posted).  The queues decide
once, at set-up, from ``zero_copy``: on zero-copy links the calls are left
out of the hot path altogether, so the no-ops here cost nothing there.
Both take any span inside the allocator's region; a link that copies rounds
it out to whatever unit it moves (etherbone: 32-bit words).
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .errors import SplitnicError

__all__ = ["DmaRegion", "DmaMemory", "DmaAllocator", "OutOfDmaMemory", "shared_memory_file"]

log = logging.getLogger(__name__)


@dataclass
class DmaRegion:
    """``len(view)`` bytes of DMA memory at device address ``device_addr``."""
    device_addr: int
    view: memoryview

    @property
    def size(self) -> int:
        """Value of the region's length in bytes."""
        return len(self.view)


@runtime_checkable
class DmaMemory(Protocol):
    """Where rings and buffers come from."""
    zero_copy: bool

    def alloc(self, size: int, align: int = 64, *, device_writes: bool = False) -> DmaRegion:
        """A zero-filled region of ``size`` bytes whose device address is ``align``-aligned.

        ``device_writes``: the NIC writes the region (completion rings, RX
        buffers) rather than reads it (descriptor rings, TX buffers).  A link
        whose memory is split by direction (``eth``) places it by that; the
        others ignore it.
        """

    def free(self, region: DmaRegion) -> None:
        """Give ``region`` back."""

    def sync_for_device(self, device_addr: int, size: int) -> None:
        """Make the NIC see the ``size`` bytes the CPU wrote at ``device_addr`` (no-op when zero-copy)."""

    def sync_for_cpu(self, device_addr: int, size: int) -> None:
        """Make the view show the ``size`` bytes the NIC wrote at ``device_addr`` (no-op when zero-copy)."""


class OutOfDmaMemory(SplitnicError):
    """The link's DMA memory is exhausted."""


class DmaAllocator:
    """First-fit allocator with coalescing free list over one region.

    ``zero_copy`` says whether the views are the very memory the NIC reads
    and writes (they are on ``sim`` and ``mmio``).
    """

    def __init__(self, region: DmaRegion, zero_copy: bool = True) -> None:
        self.region = region
        self.zero_copy = zero_copy
        self._free: list[tuple[int, int]] = [(region.device_addr, region.size)]  # (addr, size), sorted
        self._used: dict[int, int] = {}  # addr -> size

    def sync_for_device(self, device_addr: int, size: int) -> None:
        """Make the NIC see the ``size`` bytes the CPU wrote at ``device_addr``; see the module docstring.

        A no-op here (the view is the NIC's memory); a copying link overrides
        :meth:`_to_device`.
        """
        if not self.zero_copy and size:
            self._to_device(*self._check_span(device_addr, size))

    def sync_for_cpu(self, device_addr: int, size: int) -> None:
        """Make the view show the ``size`` bytes the NIC wrote at ``device_addr``; see the module docstring.

        A no-op here (the view is the NIC's memory); a copying link overrides
        :meth:`_to_cpu`.
        """
        if not self.zero_copy and size:
            self._to_cpu(*self._check_span(device_addr, size))

    def _check_span(self, device_addr: int, size: int) -> tuple[int, int]:
        base = self.region.device_addr
        if size < 0 or device_addr < base or device_addr + size > base + self.region.size:
            raise ValueError(f"span {device_addr:#x}+{size} is outside the DMA memory "
                             f"{base:#x}+{self.region.size:#x}")
        return device_addr, size

    def _to_device(self, device_addr: int, size: int) -> None:
        """Copy the span from the view to the NIC's memory (copying links only)."""

    def _to_cpu(self, device_addr: int, size: int) -> None:
        """Copy the span from the NIC's memory to the view (copying links only)."""

    @property
    def free_bytes(self) -> int:
        """Value of the bytes not allocated (possibly fragmented)."""
        return sum(size for _, size in self._free)

    @property
    def largest_free(self) -> int:
        """Value of the largest free piece in bytes (what one allocation can get, before alignment)."""
        return max((size for _, size in self._free), default=0)

    def alloc(self, size: int, align: int = 64, *, device_writes: bool = False) -> DmaRegion:
        """A zero-filled region of ``size`` bytes, device address ``align``-aligned (one memory: ``device_writes`` is moot)."""
        if size <= 0 or align <= 0 or align & (align - 1):
            raise ValueError(f"size must be > 0 and align a power of two, not size={size} align={align}")
        for i, (addr, avail) in enumerate(self._free):
            start = (addr + align - 1) & ~(align - 1)
            if start + size > addr + avail:
                continue
            pieces = [(addr, start - addr), (start + size, addr + avail - start - size)]
            self._free[i:i + 1] = [p for p in pieces if p[1] > 0]
            self._used[start] = size
            off = start - self.region.device_addr
            view = self.region.view[off:off + size]
            view[:] = bytes(size)
            log.debug("dma alloc %#x +%#x", start, size)
            return DmaRegion(start, view)
        raise OutOfDmaMemory(f"out of DMA memory: need {size} bytes ({align}-aligned), {self.free_bytes} of "
                             f"{self.region.size} free in pieces; close queues you no longer use or give "
                             "the link more DMA memory")

    def free(self, region: DmaRegion) -> None:
        """Return ``region`` to the free list (coalescing neighbours)."""
        size = self._used.pop(region.device_addr, None)
        if size is None:
            raise ValueError(f"DMA region at {region.device_addr:#x} was not allocated here (or freed twice)")
        self._free.append((region.device_addr, size))
        self._free.sort()
        merged: list[tuple[int, int]] = []
        for addr, sz in self._free:
            if merged and merged[-1][0] + merged[-1][1] == addr:
                merged[-1] = (merged[-1][0], merged[-1][1] + sz)
            else:
                merged.append((addr, sz))
        self._free = merged


def shared_memory_file(name: str, size: int) -> int:
    """A memfd of ``size`` zero bytes that another process can map, given the descriptor.

    Sealed at that size: a process given it (an application, splitnic.app_server)
    cannot shrink it under this one's mapping, which would end this process with
    SIGBUS at its next access.
    """
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, size)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    except OSError:
        os.close(fd)
        raise
    return fd
