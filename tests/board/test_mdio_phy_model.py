"""The simulated board's MDIO PHY model, driven by a bit-bang master like the firmware's (Migen simulator).

Ref: IEEE Std 802.3-2018 §22.2.4; firmware/src/mdio.c (the same bit order and turnaround).
"""

from __future__ import annotations

from migen import Module
from migen.sim import run_simulation

from splitnic_gateware.targets.mdio_phy_model import PHYID, MdioPhyModel, SimMdioMaster

MDC, OE, DO = 1, 2, 4


class _Bench(Module):
    def __init__(self) -> None:
        self.submodules.phy = MdioPhyModel(phy_addr=1, reset_cycles=8, an_cycles=50)
        self.submodules.master = SimMdioMaster(self.phy)


def _w(bench, value):
    yield bench.master._w.storage.eq(value)
    yield
    yield


def _r(bench):
    yield
    return (yield bench.master._r.status) & 1


def _send(bench, word, n):
    for i in reversed(range(n)):
        d = DO if (word >> i) & 1 else 0
        yield from _w(bench, OE | d)
        yield from _w(bench, OE | d | MDC)
    yield from _w(bench, OE | DO)


def _idle_clock(bench):
    yield from _w(bench, 0)
    bit = yield from _r(bench)
    yield from _w(bench, MDC)
    return bit


def mdio_read(bench, phy, reg):
    yield from _send(bench, 0xFFFFFFFF, 32)
    yield from _send(bench, (1 << 12) | (2 << 10) | (phy << 5) | reg, 14)
    yield from _idle_clock(bench)
    present = not (yield from _idle_clock(bench))
    value = 0
    for _ in range(16):
        value = (value << 1) | (yield from _idle_clock(bench))
    yield from _w(bench, 0)
    return value if present else None


def mdio_write(bench, phy, reg, value):
    yield from _send(bench, 0xFFFFFFFF, 32)
    yield from _send(bench, (1 << 30) | (1 << 28) | (phy << 23) | (reg << 18) | (2 << 16) | value, 32)
    yield from _w(bench, 0)
    yield from _w(bench, MDC)
    yield from _w(bench, 0)


def _run(process) -> dict:
    bench = _Bench()
    out: dict = {}
    run_simulation(bench, process(bench, out))
    return out


def test_ids_and_an_absent_phy() -> None:
    def process(bench, out):
        out["id"] = ((yield from mdio_read(bench, 1, 2)), (yield from mdio_read(bench, 1, 3)))
        out["absent"] = yield from mdio_read(bench, 5, 2)
    out = _run(process)
    assert out["id"] == PHYID
    assert out["absent"] is None


def test_reset_autonegotiation_and_latched_link() -> None:
    def process(bench, out):
        yield from mdio_write(bench, 1, 0, 0x8000)             # BMCR reset
        out["during_reset"] = yield from mdio_read(bench, 1, 0)
        for _ in range(200):
            yield
        out["bmcr"] = yield from mdio_read(bench, 1, 0)
        out["bmsr_latched"] = yield from mdio_read(bench, 1, 1)
        out["bmsr"] = yield from mdio_read(bench, 1, 1)
        out["anlpar"] = yield from mdio_read(bench, 1, 5)
        out["gbsr"] = yield from mdio_read(bench, 1, 10)
        yield bench.phy.cable.storage.eq(0b0110)              # unplugged
        for _ in range(4):
            yield
        yield bench.phy.cable.storage.eq(0b0111)              # plugged again: a new negotiation
        out["after_flap"] = yield from mdio_read(bench, 1, 1)
        yield bench.phy.cable.storage.eq(0b1011)              # partner: 100 Mb/s full duplex
        for _ in range(200):
            yield
        out["anlpar_100"] = yield from mdio_read(bench, 1, 5)
        out["gbsr_100"] = yield from mdio_read(bench, 1, 10)
    out = _run(process)
    assert out["bmcr"] & 0x8000 == 0 and out["bmcr"] & 0x1000
    assert out["bmsr_latched"] & 0x0024 == 0x0020     # AN complete, link latched low once
    assert out["bmsr"] & 0x0024 == 0x0024
    assert out["gbsr"] & 0x0C00 == 0x0C00 and out["anlpar"] & 0x01E0 == 0x01E0
    assert out["after_flap"] & 0x0004 == 0
    assert out["anlpar_100"] & 0x0100 and out["gbsr_100"] & 0x0C00 == 0


def test_writes_and_broadcom_shadow_registers() -> None:
    def process(bench, out):
        yield from mdio_write(bench, 1, 4, 0x0061)
        out["anar"] = yield from mdio_read(bench, 1, 4)
        yield from mdio_write(bench, 1, 0x1C, 0x8000 | (3 << 10) | 0x200)    # shadow 3: GTXCLK delay
        yield from mdio_write(bench, 1, 0x1C, 3 << 10)                         # select shadow 3 to read
        out["clk"] = yield from mdio_read(bench, 1, 0x1C)
        yield from mdio_write(bench, 1, 0x18, 0x8000 | 0x0100 | 7)           # misc: RGMII RX skew
        yield from mdio_write(bench, 1, 0x18, (7 << 12) | 7)
        out["misc"] = yield from mdio_read(bench, 1, 0x18)
    out = _run(process)
    assert out["anar"] == 0x0061
    assert out["clk"] == (3 << 10) | 0x200
    assert out["misc"] == 0x0107
