"""Shared pieces of the host-link engines' cocotb testbenches.

Ref: splitnic_spec.hostlink (the reference codec is the scoreboard);
splitnic_gateware.hostlink.layouts (the port layouts, read here rather than
re-declared).

Signals are driven on the falling edge and sampled, after the combinational
logic settled, before the next rising edge: the engines ack and take words
combinationally, so what the testbench reads there is what the rising edge
transfers.
"""

from __future__ import annotations

import struct

import cocotb
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotb.utils import get_sim_time

__all__ = ["pack", "unpack", "start", "words_of", "bytes_of", "cycle_now"]


def pack(layout: data.StructLayout, **values: int) -> int:
    """Value of the integer that carries ``values`` in ``layout`` (missing fields are 0)."""
    fields = dict(data.Layout.cast(layout))
    out = 0
    for name, value in values.items():
        f = fields[name]
        out |= (value & ((1 << f.width) - 1)) << f.offset
    return out


def unpack(layout: data.StructLayout, value: int) -> dict[str, int]:
    """The fields of ``value`` as laid out by ``layout``."""
    return {name: (value >> f.offset) & ((1 << f.width) - 1) for name, f in data.Layout.cast(layout)}


def words_of(payload: bytes) -> list[int]:
    """32-bit little-endian words of ``payload`` (a multiple of 4 bytes)."""
    return list(struct.unpack(f"<{len(payload) // 4}I", payload))


def bytes_of(words: list[int]) -> bytes:
    """The bytes of little-endian ``words``."""
    return struct.pack(f"<{len(words)}I", *words)


def cycle_now() -> int:
    """Value of the current clock cycle (the clock's period is 8 ns)."""
    return get_sim_time("ns") // 8


async def start(dut, inputs: dict[str, int]) -> None:
    """Start the clock, set ``inputs`` (every input defined from the start) and reset the design."""
    cocotb.start_soon(Clock(dut.clk, 8, unit="ns").start())
    dut.rst.value = 1
    for name, value in inputs.items():
        getattr(dut, name).value = value
    await ClockCycles(dut.clk, 3)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
