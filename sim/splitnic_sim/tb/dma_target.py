"""cocotb tests of WishboneDmaTarget (simulated host memory) driven by DmaTestMaster.

Ref: docs/simulation.md, "DMA memory".  SPLITNIC_TEST_STALL and SPLITNIC_TEST_LATENCY set
the target's stall probability and latency, so one build runs both a
zero-wait-state and a stalling memory.
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from splitnic_sim.dma_test_master import WDATA_STEP
from splitnic_sim.hostmem import DEFAULT_DMA_BASE, HostMemory, WishboneDmaTarget

STALL = float(os.environ.get("SPLITNIC_TEST_STALL", "0"))
LATENCY = int(os.environ.get("SPLITNIC_TEST_LATENCY", "0"))
MEM_SIZE = 64 << 10


class _Harness:
    def __init__(self, dut, mem: HostMemory, target: WishboneDmaTarget) -> None:
        self.dut, self.mem, self.target = dut, mem, target
        self.read_data: list[int] = []

    async def run(self, byte_addr: int, count: int, *, write: bool, sel: int = 0xF, wdata: int = 0,
                  classic: bool = False) -> tuple[list[int], int]:
        """One command; returns the words read and the clock cycles it took."""
        dut = self.dut
        self.read_data = []
        await FallingEdge(dut.clk)
        dut.adr.value = byte_addr >> 2
        dut.count.value = count
        dut.we.value = int(write)
        dut.sel.value = sel
        dut.wdata.value = wdata
        dut.classic.value = int(classic)
        dut.go.value = 1
        await FallingEdge(dut.clk)
        dut.go.value = 0
        cycles = 1
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            cycles += 1
            if dut.rd_valid.value:
                self.read_data.append(int(dut.rd_data.value))
            if not dut.busy.value:
                break
            assert cycles < 100_000, "DMA command never finished"
        await RisingEdge(dut.clk)
        await ReadOnly()
        if dut.rd_valid.value:
            self.read_data.append(int(dut.rd_data.value))
        return self.read_data, cycles


async def _start(dut, seed_offset: int = 0) -> _Harness:
    cocotb.start_soon(Clock(dut.clk, 8, unit="ns").start())
    dut.rst.value = 1
    for name in ("go", "we", "adr", "count", "sel", "wdata", "classic"):
        getattr(dut, name).value = 0
    path = Path("/dev/shm") / f"snic-test-dma-{os.getpid()}-{seed_offset}"
    mem = HostMemory(path, MEM_SIZE)
    path.unlink()          # the mapping stays; nothing left behind if the test dies
    target = WishboneDmaTarget(dut, "dma", dut.clk, mem, stall_prob=STALL, latency=LATENCY,
                               rng=random.Random(cocotb.RANDOM_SEED + seed_offset))
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    return _Harness(dut, mem, target)


def _words(mem: HostMemory, byte_addr: int, count: int) -> list[int]:
    off = byte_addr - mem.base
    return list(struct.unpack_from(f"<{count}I", mem.view, off))


@cocotb.test()
async def bursts_write_and_read_back(dut) -> None:
    """Incrementing bursts and classic cycles land in the shared memory and read back intact."""
    h = await _start(dut, 1)
    rng = random.Random(cocotb.RANDOM_SEED)
    for i in range(30):
        count = rng.choice([1, 2, 3, 16, rng.randrange(1, 65)])
        addr = DEFAULT_DMA_BASE + 4 * rng.randrange(0, MEM_SIZE // 4 - count)
        wdata = rng.getrandbits(32)
        classic = i % 3 == 0
        await h.run(addr, count, write=True, wdata=wdata, classic=classic)
        expected = [(wdata + k * WDATA_STEP) & 0xFFFFFFFF for k in range(count)]
        assert _words(h.mem, addr, count) == expected, f"write of {count} words at {addr:#x} (classic={classic})"
        # Change the memory behind the NIC's back, as a driver would, and read it.
        fresh = [rng.getrandbits(32) for _ in range(count)]
        struct.pack_into(f"<{count}I", h.mem.view, addr - h.mem.base, *fresh)
        got, _ = await h.run(addr, count, write=False, classic=not classic)
        assert got == fresh, f"read of {count} words at {addr:#x}"
    assert h.target.errors == 0
    assert h.target.writes == h.target.reads > 0


@cocotb.test()
async def byte_enables_are_honoured(dut) -> None:
    """Only the bytes whose sel bit is set change."""
    h = await _start(dut, 2)
    addr = DEFAULT_DMA_BASE + 0x100
    for sel in range(16):
        struct.pack_into("<4I", h.mem.view, 0x100, *([0x11223344] * 4))
        await h.run(addr, 4, write=True, sel=sel, wdata=0xAABBCCDD)
        for k, word in enumerate(_words(h.mem, addr, 4)):
            new = (0xAABBCCDD + k * WDATA_STEP) & 0xFFFFFFFF
            expected = int.from_bytes(bytes((new if sel >> b & 1 else 0x11223344) >> 8 * b & 0xFF
                                            for b in range(4)), "little")
            assert word == expected, f"sel={sel:04b} word {k}: {word:#010x} != {expected:#010x}"


@cocotb.test()
async def out_of_range_is_counted_not_fatal(dut) -> None:
    """Accesses outside the memory are acknowledged, read 0 and counted; memory is untouched."""
    h = await _start(dut, 3)
    before = bytes(h.mem.view)
    await h.run(DEFAULT_DMA_BASE - 8, 4, write=True, wdata=0x12345678)
    assert h.target.errors == 2, "two of the four words were below the memory"
    assert bytes(h.mem.view[8:]) == before[8:]
    got, _ = await h.run(DEFAULT_DMA_BASE + MEM_SIZE - 4, 3, write=False)
    assert got[1:] == [0, 0]
    assert h.target.errors == 4
    # The bus still works afterwards.
    await h.run(DEFAULT_DMA_BASE, 1, write=True, wdata=0xCAFEF00D)
    assert _words(h.mem, DEFAULT_DMA_BASE, 1) == [0xCAFEF00D]


@cocotb.test()
async def bursts_stream_one_word_per_cycle(dut) -> None:
    """Without stalls a burst of N words takes about N cycles; latency and stalls add to it."""
    h = await _start(dut, 4)
    n = 64
    _, cycles = await h.run(DEFAULT_DMA_BASE, n, write=False)
    _, classic_cycles = await h.run(DEFAULT_DMA_BASE, n, write=False, classic=True)
    dut._log.info("burst of %d words: %d cycles; as classic cycles: %d", n, cycles, classic_cycles)
    if STALL == 0 and LATENCY == 0:
        assert n <= cycles <= n + 3, f"a {n}-word burst took {cycles} cycles"
    else:
        assert cycles >= n + LATENCY
    # Classic cycles pay the latency (and the master's idle cycle) on every word.
    assert classic_cycles >= n * (LATENCY + 2) - 2
