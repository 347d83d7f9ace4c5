"""The DMA allocator: alignment, reuse, coalescing, exhaustion."""

from __future__ import annotations

import pytest

from splitnic.dma import DmaAllocator, DmaRegion, OutOfDmaMemory


def _allocator(size: int = 4096, base: int = 0x1000_0000) -> DmaAllocator:
    return DmaAllocator(DmaRegion(base, memoryview(bytearray(size))))


def test_regions_are_aligned_disjoint_and_zeroed() -> None:
    a = _allocator()
    r1 = a.alloc(10, 4)
    r1.view[:] = b"x" * 10
    r2 = a.alloc(100, 64)
    r3 = a.alloc(1, 256)
    assert r2.device_addr % 64 == 0 and r3.device_addr % 256 == 0
    spans = sorted((r.device_addr, r.device_addr + r.size) for r in (r1, r2, r3))
    assert all(e0 <= s1 for (_, e0), (s1, _) in zip(spans, spans[1:]))
    a.free(r1)
    again = a.alloc(10, 4)
    assert bytes(again.view) == bytes(10)


def test_freed_neighbours_coalesce_so_the_whole_region_comes_back() -> None:
    a = _allocator()
    parts = [a.alloc(1024, 64) for _ in range(4)]
    with pytest.raises(OutOfDmaMemory, match="out of DMA memory: need 64 bytes"):
        a.alloc(64)
    for p in (parts[1], parts[3], parts[0], parts[2]):
        a.free(p)
    assert a.alloc(4096, 64).size == 4096


def test_double_free_is_refused() -> None:
    a = _allocator()
    r = a.alloc(64)
    a.free(r)
    with pytest.raises(ValueError, match="freed twice"):
        a.free(r)
