"""cocotb tests for the ID block: the simulation stack's smoke test."""

from __future__ import annotations

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from splitnic_spec import CSR_MAP
from splitnic_gateware.id_block import id_values
from splitnic_sim.wishbone import WishboneInitiator

BUILD_ID = int(os.environ.get("SPLITNIC_BUILD_ID", "0"), 0)


async def _start(dut) -> WishboneInitiator:
    cocotb.start_soon(Clock(dut.clk, 8, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    return WishboneInitiator(dut, "csr", dut.clk, idle_max=3, rng=random.Random(cocotb.RANDOM_SEED))


@cocotb.test()
async def id_registers_match_the_spec(dut) -> None:
    """Every ID register reads the value the spec gives it."""
    bus = await _start(dut)
    for name, expected in id_values(build_id=BUILD_ID).items():
        got = await bus.read(CSR_MAP.register(name).offset)
        assert got == expected, f"{name}: expected {expected:#010x}, read {got:#010x}"


@cocotb.test()
async def scratch_keeps_what_was_written(dut) -> None:
    """SCRATCH is read/write with byte enables; CYCLES advances."""
    bus = await _start(dut)
    scratch = CSR_MAP.register("SCRATCH").offset
    rng = random.Random(cocotb.RANDOM_SEED)
    for _ in range(20):
        value = rng.getrandbits(32)
        await bus.write(scratch, value)
        assert await bus.read(scratch) == value
    await bus.write(scratch, 0xAABBCCDD, sel=0b0100)
    assert await bus.read(scratch) == (value & 0xFF00FFFF) | 0x00BB0000
    cycles = CSR_MAP.register("CYCLES").offset
    first = await bus.read(cycles)
    second = await bus.read(cycles)
    assert 0 < (second - first) % 2**32 < 100, f"CYCLES went from {first} to {second}"


@cocotb.test()
async def unmapped_reads_zero_and_reset_clears(dut) -> None:
    """An address that is no ID register reads 0 and ignores writes; the domain's reset clears
    SCRATCH and restarts CYCLES."""
    bus = await _start(dut)
    scratch = CSR_MAP.register("SCRATCH").offset
    await bus.write(scratch, 0x1234_5678)
    mapped = {CSR_MAP.register(n).offset for n in (*id_values(), "SCRATCH", "CYCLES")}
    top = (1 << len(dut.csr__adr)) * 4 - 4          # the last word of the CSR window
    for offset in (CSR_MAP.register("CTRL").offset, max(mapped) + 4, top):
        assert offset not in mapped
        await bus.write(offset, 0xFFFF_FFFF)
        assert await bus.read(offset) == 0, f"unmapped {offset:#x} reads non-zero"
    assert await bus.read(scratch) == 0x1234_5678, "a write elsewhere changed SCRATCH"
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    assert await bus.read(scratch) == 0, "SCRATCH survived the reset"
    assert await bus.read(CSR_MAP.register("CYCLES").offset) < 20, "CYCLES did not restart"
