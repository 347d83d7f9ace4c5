"""cocotb tests of the board's GMII bridges (sim/splitnic_sim/gmii_bridge_top.py) in their clocks.

Ref: gateware/splitnic_gateware/targets/gmii_bridge.py (the contract: frames cross whole
and back to back, never merge; a receive overflow cuts the frame and ends it with RX_ER;
the PHY side leaves at least TX_GAP idle clocks between transmitted frames).

The clocks are the board's: ``sys`` at 40 MHz, the PHY's receive and transmit clocks at
125 MHz, not in phase.  The same tests run on the Verilog LiteX writes and on its netlist.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, Timer

from splitnic_gateware.targets.gmii_bridge import TX_GAP

SYS_NS = 25.0
PHY_NS = 8.0


async def _start(dut) -> None:
    cocotb.start_soon(Clock(dut.sys_clk, SYS_NS, unit="ns").start())
    await Timer(3, unit="ns")                      # the PHY clocks are not in phase with sys
    cocotb.start_soon(Clock(dut.phy_rx_clk, PHY_NS, unit="ns").start())
    await Timer(2, unit="ns")
    cocotb.start_soon(Clock(dut.phy_tx_clk, PHY_NS, unit="ns").start())
    for sig in (dut.phy_rx_valid, dut.phy_rx_data, dut.phy_rx_last, dut.tx_d, dut.tx_en, dut.tx_er):
        sig.value = 0
    dut.phy_tx_ready.value = 1
    for rst in (dut.sys_rst, dut.phy_rx_rst, dut.phy_tx_rst):
        rst.value = 1
    await ClockCycles(dut.sys_clk, 8)
    for rst in (dut.sys_rst, dut.phy_rx_rst, dut.phy_tx_rst):
        rst.value = 0
    await ClockCycles(dut.sys_clk, 8)


def _frames(rng: random.Random, count: int, lo: int, hi: int) -> list[bytes]:
    return [rng.randbytes(rng.randint(lo, hi)) for _ in range(count)]


async def _phy_send(dut, frames: list[bytes], idle: int) -> None:
    """The PHY's receive stream: each frame's bytes on consecutive PHY clocks, then ``idle`` clocks."""
    for f in frames:
        for i, b in enumerate(f):
            await FallingEdge(dut.phy_rx_clk)
            dut.phy_rx_valid.value = 1
            dut.phy_rx_data.value = b
            dut.phy_rx_last.value = int(i == len(f) - 1)
        await FallingEdge(dut.phy_rx_clk)
        dut.phy_rx_valid.value = 0
        dut.phy_rx_last.value = 0
        for _ in range(idle - 1):
            await FallingEdge(dut.phy_rx_clk)


async def _gmii_collect(dut, out: list[tuple[bytes, bool]]) -> None:
    """The NIC's GMII receive: frames as (bytes, RX_ER seen), split where RX_DV drops."""
    cur, err = bytearray(), False
    while True:
        await RisingEdge(dut.sys_clk)
        if int(dut.rx_dv.value):
            cur.append(int(dut.rx_d.value))
            err |= bool(int(dut.rx_er.value))
        elif cur:
            out.append((bytes(cur), err))
            cur, err = bytearray(), False


async def _wait_frames(dut, out: list, count: int, limit_cycles: int) -> None:
    for _ in range(limit_cycles // 100):
        if len(out) >= count:
            return
        await ClockCycles(dut.sys_clk, 100)
    raise AssertionError(f"timed out: {len(out)} of {count} frames arrived")


@cocotb.test()
async def rx_frames_cross_intact_and_back_to_back(dut) -> None:
    """PHY frames reach the NIC's GMII whole, in order, without RX_ER and without holes."""
    await _start(dut)
    rng = random.Random(1)
    got: list[tuple[bytes, bool]] = []
    cocotb.start_soon(_gmii_collect(dut, got))
    sent: list[bytes] = []
    # Rounds that fit the 2 KiB frame store, each drained before the next (no overflow here).
    for sizes in ((20, 90), (60, 600), (1514, 1514), (1, 30)):
        frames = _frames(rng, max(1, 1800 // sizes[1]), *sizes)
        sent += frames
        await _phy_send(dut, frames, idle=12)
        await _wait_frames(dut, got, len(sent), 200_000)
    await ClockCycles(dut.sys_clk, 50)
    assert [g for g, _ in got] == sent, "frames differ, merged or out of order"
    assert not any(err for _, err in got), "RX_ER on a frame that fitted"
    assert int(dut.rx_overflow.value) == 0


@cocotb.test()
async def rx_overflow_cuts_one_frame_with_rx_er(dut) -> None:
    """Back-to-back frames three times faster than the NIC drains them: the store fills, the cut
    frames end with RX_ER, every other frame arrives whole and in order, none merge."""
    await _start(dut)
    rng = random.Random(2)
    got: list[tuple[bytes, bool]] = []
    cocotb.start_soon(_gmii_collect(dut, got))
    overflows = {"n": 0}

    async def count_overflow() -> None:
        while True:
            await RisingEdge(dut.sys_clk)
            overflows["n"] += int(dut.rx_overflow.value)

    cocotb.start_soon(count_overflow())
    frames = _frames(rng, 40, 200, 400)
    await _phy_send(dut, frames, idle=12)
    await ClockCycles(dut.sys_clk, 3 * 2048 + 1000)
    assert overflows["n"] > 0, "the store never filled"
    assert any(err for _, err in got), "no frame was cut with RX_ER"
    whole = [data for data, err in got if not err]
    assert whole and all(data in frames for data in whole), "a frame arrived merged or damaged without RX_ER"
    order = [frames.index(data) for data in whole]
    assert order == sorted(set(order)), "whole frames out of order or twice"
    assert len(got) <= len(frames), "more frames arrived than were sent"


@cocotb.test()
async def tx_frames_leave_whole_with_the_wire_gap(dut) -> None:
    """GMII frames from the NIC leave on the PHY's stream whole, in order, TX_GAP apart."""
    await _start(dut)
    rng = random.Random(3)
    frames = _frames(rng, 10, 60, 300) + _frames(rng, 2, 1514, 1514)
    got: list[bytes] = []
    gaps: list[int] = []

    async def wire() -> None:
        cur, idle = bytearray(), 0
        while True:
            await RisingEdge(dut.phy_tx_clk)
            if int(dut.phy_tx_valid.value):
                if not cur and got:
                    gaps.append(idle)
                cur.append(int(dut.phy_tx_data.value))
                idle = 0
                if int(dut.phy_tx_last.value):
                    got.append(bytes(cur))
                    cur = bytearray()
            else:
                idle += 1

    cocotb.start_soon(wire())
    for f in frames:
        for b in f:
            await FallingEdge(dut.sys_clk)
            dut.tx_en.value = 1
            dut.tx_d.value = b
        await FallingEdge(dut.sys_clk)
        dut.tx_en.value = 0
        for _ in range(11):                          # the MAC's inter-packet gap in sys clocks
            await FallingEdge(dut.sys_clk)
    await _wait_frames(dut, got, len(frames), 200_000)
    assert got == frames, "frames differ, merged or out of order"
    assert gaps and min(gaps) >= TX_GAP, f"gap of {min(gaps)} PHY clocks between frames, at least {TX_GAP} expected"
    assert int(dut.tx_overflow.value) == 0
