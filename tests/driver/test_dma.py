"""The DMA allocator: alignment, reuse, coalescing, exhaustion."""

from __future__ import annotations

import os

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


def test_sync_is_a_checked_no_op_on_zero_copy_memory() -> None:
    a = _allocator()
    r = a.alloc(128)
    r.view[:4] = b"abcd"
    a.sync_for_device(r.device_addr, r.size)
    a.sync_for_cpu(r.device_addr + 4, 8)
    assert bytes(r.view[:4]) == b"abcd" and a.zero_copy


class _Copying(DmaAllocator):
    """A copying link's DMA memory that records what it was asked to move."""

    def __init__(self) -> None:
        super().__init__(DmaRegion(0x4000_0000, memoryview(bytearray(4096))), zero_copy=False)
        self.moves: list[tuple[str, int, int]] = []

    def _to_device(self, device_addr: int, size: int) -> None:
        self.moves.append(("device", device_addr, size))

    def _to_cpu(self, device_addr: int, size: int) -> None:
        self.moves.append(("cpu", device_addr, size))


def test_sync_delegates_on_copying_memory_and_refuses_spans_outside() -> None:
    a = _Copying()
    a.sync_for_device(0x4000_0010, 32)
    a.sync_for_cpu(0x4000_0000, 4096)
    a.sync_for_cpu(0x4000_0000, 0)          # nothing to move: not asked
    assert a.moves == [("device", 0x4000_0010, 32), ("cpu", 0x4000_0000, 4096)]
    with pytest.raises(ValueError, match="outside the DMA memory"):
        a.sync_for_device(0x4000_0ff0, 32)
    with pytest.raises(ValueError, match="outside the DMA memory"):
        a.sync_for_cpu(0x3fff_fffc, 8)


def test_largest_free_piece() -> None:
    a = _allocator(4096)
    parts = [a.alloc(1024, 64) for _ in range(4)]
    a.free(parts[0])
    a.free(parts[2])
    assert a.free_bytes == 2048 and a.largest_free == 1024


def test_default_queue_sizes_shrink_to_small_dma_memory() -> None:
    from types import SimpleNamespace

    from splitnic.errors import SplitnicError
    from splitnic.ring import fit_sizes

    big = SimpleNamespace(dma=_allocator(8 << 20))
    assert fit_sizes(big, "RXQ0", 8, 2048, 512) == (8, 512)        # fits: as asked
    small = SimpleNamespace(dma=_allocator(32 * 1024))
    log2, nbufs = fit_sizes(small, "RXQ0", 8, 2048, 512)
    assert log2 == 4 and 1 <= nbufs < 16
    assert (2 << log2) * 16 + nbufs * 2048 <= 16 * 1024                # half, the other queue gets the rest
    with pytest.raises(SplitnicError, match="RXQ0: DMA memory too small") as err:
        fit_sizes(SimpleNamespace(dma=_allocator(8192)), "RXQ0", 6, 9216, 128)
    assert "\n" not in str(err.value)


def test_on_the_eth_link_only_what_the_nic_reads_counts_against_the_boards_memory() -> None:
    from types import SimpleNamespace

    from splitnic.link_eth import EthDma
    from splitnic.ring import fit_sizes

    class PostedWrites(list):
        def write(self, addr: int, data: memoryview) -> None:
            self.append((addr, bytes(data)))

    # The board's 32 KiB hold descriptor rings and TX frames; completions and RX frames are in host memory.
    posted = PostedWrites()
    host_file = os.memfd_create("test-host", os.MFD_CLOEXEC)
    dma = EthDma(posted, DmaRegion(0xA000_0000, memoryview(bytearray(1 << 20))), host_file, 0x4000_0000, 32 * 1024)
    link = SimpleNamespace(dma=dma)
    assert fit_sizes(link, "RXQ0", 8, 2048, 512) == (8, 512)         # a 4 KiB descriptor ring on the board
    log2, nbufs = fit_sizes(link, "TXQ0", 8, 2048, 256)
    assert (1 << log2) * 16 + nbufs * 2048 <= 16 * 1024 and nbufs >= 6
    rx_cpl = dma.alloc(4096, 64, device_writes=True)
    tx_desc = dma.alloc(4096, 64)
    assert rx_cpl.device_addr >= 0xA000_0000 and 0x4000_0000 <= tx_desc.device_addr < 0x4000_8000
    assert posted == [(tx_desc.device_addr, bytes(4096))]            # zeroed on the board too, host memory not sent
    tx_desc.view[5] = 7
    dma.sync_for_device(tx_desc.device_addr + 5, 1)                  # rounded out to the word
    dma.sync_for_device(rx_cpl.device_addr, 64)                      # host memory: nothing to send
    assert posted[1:] == [(tx_desc.device_addr + 4, bytes([0, 7, 0, 0]))]
    dma.free(rx_cpl)
    dma.free(tx_desc)
    assert dma.free_bytes == 32 * 1024
    dma.close()


def test_a_ring_that_does_not_fit_gives_back_what_it_took(mmio_nic) -> None:
    from splitnic.dma import OutOfDmaMemory
    free = mmio_nic.link.dma.free_bytes
    with pytest.raises(OutOfDmaMemory):
        mmio_nic.rx_queue(0, ring_log2=4, nbufs=free // 2048 + 1)
    assert mmio_nic.link.dma.free_bytes == free


def test_a_shared_memory_file_cannot_be_shrunk_or_grown_by_whoever_is_given_it() -> None:
    # An application given host memory or the doorbell page could otherwise end the primary with
    # SIGBUS at its next access, by truncating the file under its mapping.
    import mmap

    from splitnic.dma import shared_memory_file
    fd = shared_memory_file("test-shared", 8192)
    try:
        assert os.fstat(fd).st_size == 8192
        other = os.open(f"/proc/self/fd/{fd}", os.O_RDWR)     # what another process would hold
        try:
            for size in (0, 4096, 1 << 20):
                with pytest.raises(PermissionError):
                    os.ftruncate(other, size)
            with mmap.mmap(other, 8192) as view:
                view[8191] = 1                            # writable as ever
        finally:
            os.close(other)
    finally:
        os.close(fd)
