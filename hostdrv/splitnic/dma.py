"""DMA memory: buffers with a device address and a Python view of the same bytes.

Ref: /work/shared/ARCHITECTURE.md, "The host link: one driver, several links".

Each link hands the driver one big :class:`DmaRegion` (the shared-memory
file of the simulator, the DMA part of the mmio file, later coherent memory
from the stub module); :class:`DmaAllocator` carves rings and buffers out of
it with an aligned first-fit free list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .errors import SplitnicError

__all__ = ["DmaRegion", "DmaMemory", "DmaAllocator", "OutOfDmaMemory"]

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

    def alloc(self, size: int, align: int = 64) -> DmaRegion:
        """A zero-filled region of ``size`` bytes whose device address is ``align``-aligned."""

    def free(self, region: DmaRegion) -> None:
        """Give ``region`` back."""


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

    @property
    def free_bytes(self) -> int:
        """Value of the bytes not allocated (possibly fragmented)."""
        return sum(size for _, size in self._free)

    def alloc(self, size: int, align: int = 64) -> DmaRegion:
        """A zero-filled region of ``size`` bytes, device address ``align``-aligned."""
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
