"""Amaranth-simulator unit tests for the MAC side: CRC, RX framing and checks,
address filter, steering, TX framing.  Each checks the gateware against the
plain-Python models in mac_model.py."""

from __future__ import annotations

import os
import random
import zlib

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from splitnic_gateware.mac import MacRx, MacTx
from splitnic_gateware.mac.crc import CRC_INIT, crc32_next
from splitnic_spec import COMPLETION, constant

from .mac_model import (Entry, gmii_bytes, random_entries, random_packets, steer, with_fcs)

STATUS = COMPLETION.member("status")
OWN_MAC = bytes.fromhex("020000000001")
SEED = int(os.environ.get("SPLITNIC_SEED", "1"))


def _run(dut, testbench, clock: float = 8e-9) -> None:
    sim = Simulator(dut)
    sim.add_clock(clock)
    sim.add_testbench(testbench)
    sim.run()


def test_crc_matches_zlib() -> None:
    m = Module()
    crc, byte = Signal(32), Signal(8)
    nxt = Signal(32)
    m.d.comb += nxt.eq(crc32_next(crc, byte))
    data = random.Random(SEED).randbytes(64)

    async def tb(ctx):
        value = CRC_INIT
        for b in data:
            ctx.set(crc, value)
            ctx.set(byte, b)
            value = ctx.get(nxt)
        assert value ^ 0xFFFFFFFF == zlib.crc32(data)
    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()


class RxHarness:
    """Drives MacRx's GMII input and collects frames and events."""

    def __init__(self, dut: MacRx) -> None:
        self.dut = dut
        self.frames: list[tuple[bytes, dict]] = []
        self.events: list[dict] = []
        self._current = bytearray()

    def configure(self, ctx, *, promisc=0, allmulti=0, broadcast=1, jumbo=0, keep_errored=0, max_len=1518,
                  rx_en=1, mc_hash=0, entries: list[Entry] | None = None) -> None:
        c = self.dut.config
        ctx.set(c.mac_addr, int.from_bytes(OWN_MAC, "little"))
        for name, value in dict(promisc=promisc, allmulti=allmulti, broadcast=broadcast, jumbo=jumbo,
                                keep_errored=keep_errored, max_len=max_len, rx_en=rx_en, tx_en=1,
                                mc_hash=mc_hash).items():
            ctx.set(getattr(c, name), value)
        for i, e in enumerate(entries or []):
            for name, value in vars(e).items():
                ctx.set(getattr(self.dut.steer[i], name), value)

    async def tick(self, ctx) -> None:
        await ctx.tick()
        d = self.dut
        if ctx.get(d.frames.valid):
            self._current.append(ctx.get(d.frames.payload.data))
            if ctx.get(d.frames.payload.last):
                meta = {k: ctx.get(getattr(d.frames.payload.meta, k)) for k in ("deliver", "queue", "rule", "status")}
                self.frames.append((bytes(self._current), meta))
                self._current = bytearray()
        ev = {k: ctx.get(getattr(d.events, k)) for k in ("ok", "fcs_err", "runt", "oversize", "filtered", "length")}
        if any(ev[k] for k in ("ok", "fcs_err", "runt", "oversize", "filtered")):
            self.events.append(ev)

    async def send(self, ctx, wire: bytes, *, er_at: int | None = None, gap: int = 12) -> None:
        d = self.dut
        for i, b in enumerate(wire):
            ctx.set(d.gmii_rx_d, b)
            ctx.set(d.gmii_rx_dv, 1)
            ctx.set(d.gmii_rx_er, int(i == er_at))
            await self.tick(ctx)
        ctx.set(d.gmii_rx_dv, 0)
        ctx.set(d.gmii_rx_er, 0)
        for _ in range(gap):
            await self.tick(ctx)


def _frame(dst: bytes, size: int, rng: random.Random, ethertype: bytes = b"\x88\xb5") -> bytes:
    return dst + bytes.fromhex("020000000099") + ethertype + rng.randbytes(size - 14)


def test_rx_good_frames_are_delivered_without_fcs() -> None:
    rng = random.Random(SEED)
    dut = MacRx()
    h = RxHarness(dut)
    sizes = [60, 61, 63, 64, 100, 777, 1514] + [rng.randrange(60, 1515) for _ in range(3)]
    frames = [_frame(OWN_MAC, n, rng) for n in sizes]

    async def tb(ctx):
        h.configure(ctx)
        for i, f in enumerate(frames):
            await h.send(ctx, gmii_bytes(with_fcs(f), preamble=7 if i % 2 else 3))
    _run(dut, tb)
    assert [f for f, _ in h.frames] == frames
    assert all(meta["deliver"] == 1 and meta["status"] == 0 for _, meta in h.frames)
    assert [e["length"] for e in h.events] == sizes and all(e["ok"] for e in h.events)


def test_rx_bad_frames_are_counted_and_not_delivered() -> None:
    rng = random.Random(SEED)
    dut = MacRx()
    h = RxHarness(dut)
    good = _frame(OWN_MAC, 100, rng)
    bad_fcs = bytearray(with_fcs(_frame(OWN_MAC, 200, rng)))
    bad_fcs[50] ^= 0x10
    runt = with_fcs(_frame(OWN_MAC, 40, rng))
    oversize = with_fcs(_frame(OWN_MAC, 1515, rng))          # 1519 bytes with FCS

    async def tb(ctx):
        h.configure(ctx)
        await h.send(ctx, gmii_bytes(bytes(bad_fcs)))
        await h.send(ctx, gmii_bytes(runt))
        await h.send(ctx, gmii_bytes(oversize))
        await h.send(ctx, gmii_bytes(with_fcs(good)), er_at=30)   # RX_ER counts as an FCS error
        await h.send(ctx, gmii_bytes(with_fcs(good)))
    _run(dut, tb)
    kinds = [next(k for k in ("ok", "fcs_err", "runt", "oversize") if e[k]) for e in h.events]
    assert kinds == ["fcs_err", "runt", "oversize", "fcs_err", "ok"]
    delivered = [f for f, meta in h.frames if meta["deliver"]]
    assert delivered == [good]
    # Nothing past the limit ever reaches the FIFO.
    assert all(len(f) <= 1518 for f, _ in h.frames)


def test_rx_keep_errored_flags_instead_of_dropping() -> None:
    rng = random.Random(SEED)
    dut = MacRx()
    h = RxHarness(dut)
    bad = bytearray(with_fcs(_frame(OWN_MAC, 80, rng)))
    bad[-1] ^= 1

    async def tb(ctx):
        h.configure(ctx, keep_errored=1)
        await h.send(ctx, gmii_bytes(bytes(bad)))
        await h.send(ctx, gmii_bytes(with_fcs(_frame(OWN_MAC, 30, rng))))
    _run(dut, tb)
    (f1, m1), (f2, m2) = h.frames
    assert m1["deliver"] and m1["status"] == STATUS.bit("FCS_ERROR").mask and f1 == bytes(bad[:-4])
    assert m2["deliver"] and m2["status"] == STATUS.bit("RUNT").mask


def test_rx_jumbo_needs_the_jumbo_bit() -> None:
    rng = random.Random(SEED)
    jumbo = _frame(OWN_MAC, 9014, rng)

    def run(jumbo_bit: int) -> list:
        dut = MacRx()
        h = RxHarness(dut)

        async def tb(ctx):
            h.configure(ctx, jumbo=jumbo_bit, max_len=constant("MAX_FRAME_JUMBO"))
            await h.send(ctx, gmii_bytes(with_fcs(jumbo)))
        _run(dut, tb)
        return h.frames
    (frame, meta), = run(1)
    assert frame == jumbo and meta["deliver"]
    assert not any(meta["deliver"] for _, meta in run(0))


@pytest.mark.parametrize("settings, accepted", [
    ({}, {"own", "bcast"}),
    ({"broadcast": 0}, {"own"}),
    ({"allmulti": 1}, {"own", "bcast", "mcast"}),
    ({"promisc": 1}, {"own", "bcast", "mcast", "other"}),
])
def test_rx_address_filter(settings: dict, accepted: set) -> None:
    rng = random.Random(SEED)
    dests = {"own": OWN_MAC, "bcast": b"\xff" * 6, "mcast": bytes.fromhex("01005e0000fb"),
             "other": bytes.fromhex("020000000002")}
    dut = MacRx()
    h = RxHarness(dut)

    async def tb(ctx):
        h.configure(ctx, **settings)
        for name, dst in dests.items():
            await h.send(ctx, gmii_bytes(with_fcs(_frame(dst, 64, rng))))
    _run(dut, tb)
    got = {name for name, (_, meta) in zip(dests, h.frames) if meta["deliver"]}
    assert got == accepted
    assert sum(e["filtered"] for e in h.events) == len(dests) - len(accepted)


def mc_hash_bit(address: bytes) -> int:
    """The MC_HASH bit that accepts multicast ``address`` (docs/registers.md, MC_HASH_LO)."""
    return 1 << (zlib.crc32(address) & 63)


def test_rx_multicast_hash_filter() -> None:
    rng = random.Random(SEED)
    # IPv6 all-nodes, a solicited-node address, mDNS (IPv6 and IPv4).
    wanted = [bytes.fromhex(a) for a in ("333300000001", "3333ff000001", "3333000000fb", "01005e0000fb")]
    mc_hash = 0
    for a in wanted:
        mc_hash |= mc_hash_bit(a)
    others = [bytes([0x01 | rng.randrange(256) & 0xFE]) + rng.randbytes(5) for _ in range(40)]
    others = [a for a in others if not mc_hash_bit(a) & mc_hash and a != b"\xff" * 6]
    dests = wanted + others
    dut = MacRx()
    h = RxHarness(dut)

    async def tb(ctx):
        h.configure(ctx, broadcast=0, mc_hash=mc_hash)
        for dst in dests:
            await h.send(ctx, gmii_bytes(with_fcs(_frame(dst, 64, rng))))
    _run(dut, tb)
    got = [dst for dst, (_, meta) in zip(dests, h.frames) if meta["deliver"]]
    assert got == wanted
    assert len(others) > 20 and sum(e["filtered"] for e in h.events) == len(others)


def test_rx_steering_matches_the_reference_model() -> None:
    rng = random.Random(SEED)
    packets = random_packets(rng, 50)
    entries = random_entries(rng, packets)
    dut = MacRx()
    h = RxHarness(dut)

    async def tb(ctx):
        h.configure(ctx, promisc=1, entries=entries)
        for p in packets:
            await h.send(ctx, gmii_bytes(with_fcs(p)))
    _run(dut, tb)
    assert len(h.frames) == len(packets)
    for p, (frame, meta) in zip(packets, h.frames):
        assert frame == p
        assert (meta["queue"], meta["rule"]) == steer(p, entries), p.hex()
    assert len({meta["rule"] for _, meta in h.frames}) > 2, "the random table should hit several rules"


def test_rx_disabled_drops_everything() -> None:
    rng = random.Random(SEED)
    dut = MacRx()
    h = RxHarness(dut)

    async def tb(ctx):
        h.configure(ctx, rx_en=0)
        await h.send(ctx, gmii_bytes(with_fcs(_frame(OWN_MAC, 64, rng))))
    _run(dut, tb)
    assert h.frames == [] and h.events == []


def test_tx_framing_padding_fcs_and_gap() -> None:
    rng = random.Random(SEED)
    frames = [rng.randbytes(n) for n in (14, 59, 60, 61, 200, 1514)]
    dut = MacTx()
    wire: list[tuple[int, int, int]] = []
    ok_lengths: list[int] = []

    async def tb(ctx):
        ctx.set(dut.config.tx_en, 1)
        queue = [(f, i) for f in frames for i in range(len(f))]
        cycles = 0
        while queue or cycles < 40:
            if queue:
                f, i = queue[0]
                ctx.set(dut.frames.valid, 1)
                ctx.set(dut.frames.payload.data, f[i])
                ctx.set(dut.frames.payload.last, int(i == len(f) - 1))
            else:
                ctx.set(dut.frames.valid, 0)
                cycles += 1
            ready = ctx.get(dut.frames.ready)
            await ctx.tick()
            if queue and ready:
                queue.pop(0)
            wire.append((ctx.get(dut.gmii_tx_en), ctx.get(dut.gmii_tx_d), ctx.get(dut.gmii_tx_er)))
            if ctx.get(dut.events.ok):
                ok_lengths.append(ctx.get(dut.events.length))
    _run(dut, tb)

    bursts, gaps, current, idle = [], [], bytearray(), 0
    for en, d, er in wire:
        assert not er
        if en:
            if idle and bursts:
                gaps.append(idle)
            idle = 0
            current.append(d)
        else:
            if current:
                bursts.append(bytes(current))
                current = bytearray()
            idle += 1
    assert len(bursts) == len(frames)
    for f, burst in zip(frames, bursts):
        assert burst[:8] == b"\x55" * 7 + b"\xd5"
        body, fcs = burst[8:-4], burst[-4:]
        padded = f + bytes(max(0, 60 - len(f)))
        assert body == padded
        assert fcs == zlib.crc32(body).to_bytes(4, "little")
    # Back to back: exactly the minimum gap (96 bit times = 12 bytes) between waiting frames.
    assert gaps == [12] * (len(frames) - 1)
    assert ok_lengths == [len(f) for f in frames]
