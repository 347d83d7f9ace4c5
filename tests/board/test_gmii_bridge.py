"""The GMII bridges between the NIC's system clock and a PHY's faster clock (Migen simulation).

A frame must keep its bytes back to back on both sides, frames must never
merge, and a receive overflow must end the cut frame with RX_ER.
"""

from __future__ import annotations

import random

from migen import Module
from migen.sim import run_simulation

from litex.soc.interconnect import stream
from liteeth.common import eth_phy_description

from splitnic_gateware.targets.gmii_bridge import TX_GAP, GmiiRxBridge, GmiiTxBridge

# Periods in simulator ticks: the PHY three times faster than the NIC, as on the board (125 vs 40 MHz).
CLOCKS = {"sys": 12, "phy": 4}


def _frames(rng: random.Random, count: int, lo: int = 20, hi: int = 90) -> list[bytes]:
    return [rng.randbytes(rng.randint(lo, hi)) for _ in range(count)]


class _Rx(Module):
    def __init__(self, depth: int) -> None:
        self.phy = stream.Endpoint(eth_phy_description(8))
        self.submodules.bridge = GmiiRxBridge(self.phy, "phy", depth=depth)


def _run_rx(frames: list[bytes], depth: int, idle: int, clocks: dict = CLOCKS) -> list[tuple[bytes, bool]]:
    dut = _Rx(depth)
    got: list[tuple[bytes, bool]] = []

    def phy():
        for f in frames:
            for i, b in enumerate(f):
                yield dut.phy.valid.eq(1)
                yield dut.phy.data.eq(b)
                yield dut.phy.last.eq(i == len(f) - 1)
                yield
            yield dut.phy.valid.eq(0)
            for _ in range(idle):
                yield

    def nic():
        cur, err = bytearray(), False
        for _ in range(sum(len(f) + idle for f in frames) * 4 + 400):
            dv, d, er = (yield dut.bridge.rx_dv), (yield dut.bridge.rx_d), (yield dut.bridge.rx_er)
            if dv:
                cur.append(d)
                err |= bool(er)
            elif cur:
                got.append((bytes(cur), err))
                cur, err = bytearray(), False
            yield

    run_simulation(dut, {"phy": [phy()], "sys": [nic()]}, clocks=clocks)
    return got


def test_rx_frames_cross_intact_and_back_to_back() -> None:
    frames = _frames(random.Random(1), 12)
    got = _run_rx(frames, depth=2048, idle=12)
    assert got == [(f, False) for f in frames]


def test_rx_frames_stay_back_to_back_with_the_phy_no_faster_than_sys() -> None:
    # The simulated SoC clocks its wire PHY with sys: bytes arrive exactly as fast as they leave.
    frames = _frames(random.Random(4), 12, 1, 90)
    got = _run_rx(frames, depth=2048, idle=12, clocks={"sys": 4, "phy": 4})
    assert got == [(f, False) for f in frames]


def test_rx_overflow_drops_the_cut_frame_with_rx_er_and_keeps_the_others_whole() -> None:
    # Back-to-back frames three times faster than the NIC drains them, into a small FIFO.
    frames = _frames(random.Random(2), 10, 60, 90)
    got = _run_rx(frames, depth=64, idle=2)
    assert any(err for _, err in got), "no frame was cut, the FIFO never filled"
    whole = [data for data, err in got if not err]
    assert whole and all(data in frames for data in whole), "a frame arrived merged or damaged without RX_ER"
    order = [frames.index(data) for data in whole]
    assert order == sorted(order)


class _Tx(Module):
    def __init__(self, depth: int) -> None:
        self.phy = stream.Endpoint(eth_phy_description(8))
        self.submodules.bridge = GmiiTxBridge(self.phy, "phy", depth=depth)
        self.comb += self.phy.ready.eq(1)


def test_tx_frames_leave_whole_back_to_back_with_a_gap() -> None:
    frames = _frames(random.Random(3), 8)
    dut = _Tx(2048)
    got: list[bytes] = []
    gaps: list[int] = []

    def nic():
        for f in frames:
            for b in f:
                yield dut.bridge.tx_en.eq(1)
                yield dut.bridge.tx_d.eq(b)
                yield
            yield dut.bridge.tx_en.eq(0)
            yield  # the NIC's own gap: one clock, shorter than the wire's

    def wire():
        cur, idle = bytearray(), 0
        for _ in range(sum(len(f) for f in frames) * 4 + 600):
            if (yield dut.phy.valid):
                if not cur and got:
                    gaps.append(idle)
                cur.append((yield dut.phy.data))
                idle = 0
            else:
                if cur:
                    got.append(bytes(cur))
                    cur = bytearray()
                idle += 1
            yield

    run_simulation(dut, {"sys": [nic()], "phy": [wire()]}, clocks=CLOCKS)
    assert got == frames
    assert gaps and min(gaps) >= TX_GAP
