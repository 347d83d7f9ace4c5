"""cocotb scoreboard tests of the whole NIC: GMII models as the wire, simulated host memory
with random DMA stalls, and the test itself as the driver (rings in host memory, CSRs over
Wishbone).

Ref: docs/registers.md (RXQ, TXQ, STEER, Descriptor, Completion); docs/simulation.md, "DMA memory".

Every frame sent on the wire must arrive exactly once, intact, on the RX queue the steering
table names; bad-FCS and runt frames are counted and not delivered; rings wrap; a queue reset
while traffic flows loses nothing on the other queues; TX frames leave intact with a good FCS.
SPLITNIC_TEST_SCALE (default 1.0) scales the frame counts (Icarus runs fewer).

The tests fit the NIC they find: as many RX queues as ID_FEATURES says (the steering rules
spread over queues 1 and up), and jumbo frames as long as SPLITNIC_TEST_JUMBO_BYTES (default
the spec's largest, 9014 bytes without FCS), which a build with smaller packet buffers (the
board's) lowers.

The toplevel is either the NIC itself (``snic_nic``: cocotbext-eth's GMII
models, :class:`WishboneDmaTarget` and :class:`WishboneInitiator` in Python,
on Verilator or Icarus) or the native harness around it (``snic_harness``:
the same models in C, see :mod:`splitnic_sim.native`); :class:`TB` picks the
models that fit, and the tests let cycles pass with
:func:`~splitnic_sim.native.models.wait_cycles`, so they assert the same on both.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotbext.eth import GmiiFrame, GmiiSink, GmiiSource
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from splitnic_gateware.mac.tx import PREAMBLE_BYTES
from splitnic_sim.hostmem import DEFAULT_DMA_BASE, HostMemory, WishboneDmaTarget
from splitnic_sim.native import Harness
from splitnic_sim.native import models as native
from splitnic_sim.native.models import wait_cycles
from splitnic_sim.wishbone import WishboneInitiator
from splitnic_spec import (COMPLETION, CSR_MAP, DESCRIPTOR, NUM_RX_QUEUES, NUM_TX_QUEUES, completion_phase,
                           constant, ring_next, ring_slot, ring_used)

log = logging.getLogger(__name__)

SCALE = float(os.environ.get("SPLITNIC_TEST_SCALE", "1.0"))
STALL = float(os.environ.get("SPLITNIC_TEST_STALL", "0.2"))
OWN_MAC = "02:00:00:00:00:01"
PEER_MAC = "02:00:00:00:00:99"
CTRL = CSR_MAP.register("CTRL")
QCTRL = CSR_MAP.array("RXQ").register("CTRL")
STEER_CTRL = CSR_MAP.array("STEER").register("CTRL")
PHASE = COMPLETION.member("flags").bit("PHASE")
STATUS = COMPLETION.member("status")
FEATURES = CSR_MAP.register("ID_FEATURES")
MEM_SIZE = 4 << 20
#: Longest frame the jumbo test sends, FCS excluded.
JUMBO_BYTES = int(os.environ.get("SPLITNIC_TEST_JUMBO_BYTES", constant("MAX_FRAME_JUMBO") - 4))


def _count(n: int) -> int:
    return max(4, int(n * SCALE))


def _mac_int(mac: str) -> int:
    return int.from_bytes(bytes.fromhex(mac.replace(":", "")), "little")


def _offset(name: str, index: int | None = None) -> int:
    if index is None:
        return CSR_MAP.register(name).offset
    array, reg = name.split(".")
    return CSR_MAP.array(array).offset(index, reg)


@dataclass
class Ring:
    """One queue's rings as the driver keeps them."""
    q: int
    log2: int
    desc: int
    cpl: int
    buf_size: int
    bufs: list[int]
    tail: int = 0
    seen: int = 0                      # completions consumed
    cookies: dict[int, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return 1 << self.log2


class Driver:
    """The test's NIC driver: CSR access, host-memory rings, completion polling."""

    def __init__(self, dut, mem: HostMemory, csr: WishboneInitiator) -> None:
        self.dut, self.mem, self.csr = dut, mem, csr
        self._next = mem.base + 0x1000
        #: RX and TX queues of this build (ID_FEATURES), read by :meth:`TB.start`.
        self.rx_queues = NUM_RX_QUEUES
        self.tx_queues = NUM_TX_QUEUES

    def alloc(self, size: int, align: int = 64) -> int:
        addr = (self._next + align - 1) & ~(align - 1)
        self._next = addr + size
        assert self._next <= self.mem.base + self.mem.size, "host memory exhausted"
        return addr

    def write(self, addr: int, data: bytes) -> None:
        off = addr - self.mem.base
        self.mem.view[off:off + len(data)] = data

    def read(self, addr: int, n: int) -> bytes:
        off = addr - self.mem.base
        return bytes(self.mem.view[off:off + n])

    async def wr(self, name: str, value: int, index: int | None = None) -> None:
        await self.csr.write(_offset(name, index), value)

    async def rd(self, name: str, index: int | None = None) -> int:
        return await self.csr.read(_offset(name, index))

    async def ring(self, kind: str, q: int, log2: int, buf_size: int) -> Ring:
        size = 1 << log2
        r = Ring(q, log2, self.alloc(DESCRIPTOR.size * size), self.alloc(COMPLETION.size * size), buf_size,
                 [self.alloc(buf_size, 4) for _ in range(size)])
        self.write(r.cpl, bytes(COMPLETION.size * size))
        await self.wr(f"{kind}.DESC_LO", r.desc, q)
        await self.wr(f"{kind}.CPL_LO", r.cpl, q)
        await self.wr(f"{kind}.SIZE", log2, q)
        await self.wr(f"{kind}.CTRL", QCTRL.pack(ENABLE=1), q)
        return r

    def post(self, r: Ring, length: int, cookie: int, data: bytes | None = None) -> None:
        slot = ring_slot(r.tail, r.log2)
        if data is not None:
            self.write(r.bufs[slot], data)
        self.write(r.desc + DESCRIPTOR.size * slot, DESCRIPTOR.pack(addr=r.bufs[slot], length=length, cookie=cookie))
        r.cookies[slot] = cookie
        r.tail = ring_next(r.tail)

    def completions(self, r: Ring) -> list[tuple[dict, int]]:
        """New completions (with the buffer slot each one names), in order."""
        out = []
        while True:
            slot = ring_slot(r.seen, r.log2)
            c = COMPLETION.unpack(self.read(r.cpl + COMPLETION.size * slot, COMPLETION.size))
            if PHASE.get(c["flags"]) != completion_phase(r.seen, r.log2):
                return out
            out.append((c, slot))
            r.seen = ring_next(r.seen)


class TB:
    """Clock, reset, host memory, DMA target, CSR initiator and the GMII wire models."""

    def __init__(self, dut, *, stall: float = STALL, latency: int = 0, seed: int | None = None) -> None:
        self.dut = dut
        self.rng = random.Random(cocotb.RANDOM_SEED if seed is None else seed)
        self._tmp = tempfile.TemporaryDirectory(prefix="snic-tb-")
        self.mem = HostMemory(Path(self._tmp.name) / "hostmem", MEM_SIZE, DEFAULT_DMA_BASE)
        self.stall, self.latency = stall, latency
        self.source = self.sink = self.target = None
        self.native = native.is_native(dut)

    async def _start_native(self) -> Driver:
        h = Harness(self.dut)
        h.memory(self.mem.path, self.mem.size, self.mem.base)
        h.dma(self.stall, self.latency, self.rng.getrandbits(64))
        self.target, self.source, self.sink = native.DmaTarget(h), native.GmiiSource(h), native.GmiiSink(h)
        self._errors_before = self.target.errors
        await h.reset(4)
        return Driver(self.dut, self.mem, h)

    async def start(self) -> Driver:
        dut = self.dut
        if self.native:
            return await self._identify(await self._start_native())
        cocotb.start_soon(Clock(dut.clk, 8, unit="ns").start())
        dut.rst.value = 1
        dut.gmii_rx_d.value = 0
        dut.gmii_rx_dv.value = 0
        dut.gmii_rx_er.value = 0
        self.target = WishboneDmaTarget(dut, "dma", dut.clk, self.mem, stall_prob=self.stall,
                                        latency=self.latency, rng=self.rng)
        csr = WishboneInitiator(dut, "csr", dut.clk)
        # The GMII models start only once reset reads 1: created at time 0 they see it
        # de-asserted, start, are stopped by the reset edge and restart twice over.
        await wait_cycles(dut, 1)
        self.source = GmiiSource(dut.gmii_rx_d, dut.gmii_rx_er, dut.gmii_rx_dv, dut.clk, dut.rst)
        self.sink = GmiiSink(dut.gmii_tx_d, dut.gmii_tx_er, dut.gmii_tx_en, dut.clk, dut.rst)
        for model in (self.source, self.sink):
            model.log.setLevel(logging.WARNING)   # they log every frame at INFO
        await wait_cycles(dut, 4)
        dut.rst.value = 0
        await wait_cycles(dut, 2)
        return await self._identify(Driver(dut, self.mem, csr))

    async def _identify(self, drv: Driver) -> Driver:
        """Check the NIC is one, learn its RX and TX queues and give it its MAC address."""
        assert await drv.rd("ID_MAGIC") == constant("ID_MAGIC")
        features = await drv.rd("ID_FEATURES")
        drv.rx_queues = FEATURES.field("RX_QUEUES").get(features)
        drv.tx_queues = FEATURES.field("TX_QUEUES").get(features)
        assert 1 <= drv.rx_queues <= NUM_RX_QUEUES, f"ID_FEATURES names {drv.rx_queues} RX queues"
        assert 1 <= drv.tx_queues <= NUM_TX_QUEUES, f"ID_FEATURES names {drv.tx_queues} TX queues"
        await drv.wr("MAC_ADDR_LO", _mac_int(OWN_MAC) & 0xFFFF_FFFF)
        await drv.wr("MAC_ADDR_HI", _mac_int(OWN_MAC) >> 32)
        return drv

    def close(self) -> None:
        errors = self.target.errors - (self._errors_before if self.native else 0)
        assert errors == 0, f"{errors} DMA accesses outside host memory"
        self.mem.close()
        self._tmp.cleanup()


# --------------------------------------------------------------------------------------------
# Traffic
# --------------------------------------------------------------------------------------------

VXLAN_PORT = 4789
EXP_ETHERTYPE = 0x88B5


def _pad(pkt: bytes, size: int, rng: random.Random) -> bytes:
    return pkt + rng.randbytes(max(0, size - len(pkt)))


def rule_queue(rule: int, rx_queues: int) -> int:
    """The queue :func:`setup_steering` gives steering rule ``rule`` on a NIC of ``rx_queues``:
    1, 2, 3 with four queues; queue 1 for all of them with two."""
    return 1 + rule % (rx_queues - 1) if rx_queues > 1 else 0


def random_frame(rng: random.Random, size: int, rx_queues: int = NUM_RX_QUEUES) -> tuple[bytes, int, int]:
    """A scapy-built frame of ``size`` bytes (FCS excluded); returns (frame, queue, rule) under
    the steering table :func:`setup_steering` installs on a NIC of ``rx_queues``."""
    kind = rng.randrange(5)
    eth = Ether(dst=OWN_MAC, src=PEER_MAC)
    if kind == 0:
        pkt = eth / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=rng.randrange(1024, 65535), dport=VXLAN_PORT)
        rule = 0
    elif kind == 1:
        pkt = Ether(dst=OWN_MAC, src=PEER_MAC, type=EXP_ETHERTYPE) / Raw(b"\x00" * 4)
        rule = 1
    elif kind == 2:
        pkt = Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER_MAC) / ARP(psrc="10.0.0.2", pdst="10.0.0.1")
        rule = 2
    elif kind == 3:
        pkt = eth / IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=40000, dport=rng.choice([22, 80, 4790]))
        rule = constant("RULE_NONE")
    else:
        pkt = eth / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=5353, dport=VXLAN_PORT + 1)
        rule = constant("RULE_NONE")
    q = 0 if rule == constant("RULE_NONE") else rule_queue(rule, rx_queues)
    raw = bytes(pkt)
    size = max(size, len(raw))
    return _pad(raw, size, rng), q, rule


async def setup_steering(drv: Driver) -> None:
    """Entry 0: UDP port VXLAN_PORT; entry 1: ethertype 0x88b5; entry 2: broadcast; each to
    :func:`rule_queue` (queues 1, 2, 3 on the full NIC)."""
    def queue(rule: int) -> int:
        return rule_queue(rule, drv.rx_queues)
    await drv.wr("STEER.IP_PROTO", 17, 0)
    await drv.wr("STEER.L4_DPORT", VXLAN_PORT, 0)
    await drv.wr("STEER.CTRL", STEER_CTRL.pack(ENABLE=1, MATCH_IP_PROTO=1, MATCH_L4_DPORT=1, QUEUE=queue(0)), 0)
    await drv.wr("STEER.ETHERTYPE", EXP_ETHERTYPE, 1)
    await drv.wr("STEER.CTRL", STEER_CTRL.pack(ENABLE=1, MATCH_ETHERTYPE=1, QUEUE=queue(1)), 1)
    await drv.wr("STEER.DMAC_LO", 0xFFFF_FFFF, 2)
    await drv.wr("STEER.DMAC_HI", 0xFFFF, 2)
    await drv.wr("STEER.CTRL", STEER_CTRL.pack(ENABLE=1, MATCH_DMAC=1, QUEUE=queue(2)), 2)


class RxScoreboard:
    """Keeps RX rings topped up, collects completions and checks them against what was sent."""

    def __init__(self, drv: Driver, rings: list[Ring]) -> None:
        self.drv, self.rings = drv, rings
        self.expected: list[list[tuple[bytes, int]]] = [[] for _ in rings]
        self.got: list[list[tuple[bytes, dict]]] = [[] for _ in rings]
        self.paused: set[int] = set()

    def expect(self, q: int, frame: bytes, rule: int) -> None:
        self.expected[q].append((frame, rule))

    async def fill(self, r: Ring) -> None:
        while ring_used(r.seen, r.tail) < r.size:
            self.drv.post(r, r.buf_size, cookie=(r.q << 24) | r.tail)
        await self.drv.wr("RXQ.TAIL", r.tail, r.q)

    async def run(self) -> None:
        for r in self.rings:
            await self.fill(r)
        while True:
            await wait_cycles(self.drv.dut, 64)
            for r in self.rings:
                if r.q in self.paused:
                    continue
                new = self.drv.completions(r)
                for c, slot in new:
                    assert c["cookie"] == r.cookies[slot], f"queue {r.q}: cookie {c['cookie']:#x} in slot {slot}"
                    assert c["queue"] == r.q
                    self.got[r.q].append((self.drv.read(r.bufs[slot], c["length"]), c))
                if new:
                    await self.fill(r)

    def total(self) -> int:
        return sum(len(g) for g in self.got)

    def check(self) -> None:
        for q, (exp, got) in enumerate(zip(self.expected, self.got)):
            assert len(got) == len(exp), f"queue {q}: {len(got)} frames arrived, {len(exp)} expected"
            for i, ((frame, rule), (data, c)) in enumerate(zip(exp, got)):
                assert c["status"] == 0, f"queue {q} frame {i}: status {c['status']:#x}"
                assert data == frame, f"queue {q} frame {i} differs ({len(data)} vs {len(frame)} bytes)"
                assert c["rule"] == rule, f"queue {q} frame {i}: rule {c['rule']}, expected {rule}"


async def _wait_for(dut, predicate, what: str, limit: int = 2_000_000) -> None:
    for _ in range(limit // 100):
        if predicate():
            return
        await wait_cycles(dut, 100)
    raise AssertionError(f"timed out waiting for {what}")


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------

@cocotb.test()
async def rx_steering_wrap_and_errors(dut) -> None:
    """Random scapy frames 60..1514 from the wire land once, intact, on the steered queue; bad
    FCS and runts are counted, not delivered; small rings wrap several times."""
    tb = TB(dut)
    drv = await tb.start()
    await setup_steering(drv)
    rng = tb.rng
    n = _count(60)
    # The traffic first, so the rings can be made small enough that the busiest queue wraps
    # whatever the seed (cocotb picks a new one each run) and however short the run.
    plan: list[tuple[GmiiFrame, int, int, bytes | None]] = []   # (wire frame, queue, rule, expected)
    bad_fcs = runts = 0
    for i in range(n):
        size = rng.choice([60, 61, 62, 63, 64, 65, 1514, rng.randrange(60, 1515), rng.randrange(60, 300)])
        frame, q, rule = random_frame(rng, size, drv.rx_queues)
        roll = rng.random()
        if roll < 0.08:
            gf = GmiiFrame.from_payload(frame)
            gf.data[8 + rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
            bad_fcs += 1
            plan.append((gf, q, rule, None))
        elif roll < 0.14:
            plan.append((GmiiFrame.from_payload(frame[:rng.randrange(14, 60)], min_len=0), q, rule, None))
            runts += 1
        else:
            plan.append((GmiiFrame.from_payload(frame), q, rule, frame))
    queues = range(drv.rx_queues)
    busiest = max(sum(1 for _, q, _, good in plan if good is not None and q == k) for k in queues)
    assert busiest >= 3, f"the random traffic gives no queue more than {busiest} good frames"
    log2 = min(4, (busiest - 1).bit_length() - 1)   # ring size < busiest
    rings = [await drv.ring("RXQ", q, log2, 1536) for q in queues]
    board = RxScoreboard(drv, rings)
    cocotb.start_soon(board.run())
    await drv.wr("CTRL", CTRL.pack(RX_EN=1, BROADCAST=1))
    good_bytes = 0
    for gf, q, rule, good in plan:
        if good is not None:
            board.expect(q, good, rule)
            good_bytes += len(good)
        await tb.source.send(gf)
    await tb.source.wait()
    expected = sum(len(e) for e in board.expected)
    try:
        await _wait_for(dut, lambda: board.total() >= expected, f"{expected} frames")
    finally:
        stats = {name: await drv.rd(name) for name in ("STAT_RX_OK", "STAT_RX_FCS_ERR", "STAT_RX_RUNT",
                                                       "STAT_RX_FILTERED", "STAT_RX_FIFO_DROP")}
        stats.update({f"q{q}": (await drv.rd("RXQ.HEAD", q), await drv.rd("RXQ.CPL", q),
                                await drv.rd("RXQ.DROPS", q), len(board.got[q]), len(board.expected[q]))
                      for q in queues})
        log.info("RX state: %s", stats)
    await wait_cycles(dut, 500)
    board.check()
    assert await drv.rd("STAT_RX_FCS_ERR") == bad_fcs
    assert await drv.rd("STAT_RX_RUNT") == runts
    assert await drv.rd("STAT_RX_OK") == expected
    assert await drv.rd("STAT_RX_OK_BYTES") == good_bytes
    assert await drv.rd("STAT_RX_FIFO_DROP") == 0
    for q in queues:
        assert await drv.rd("RXQ.PACKETS", q) == len(board.expected[q])
        assert await drv.rd("RXQ.DROPS", q) == 0
    assert any(r.seen > r.size for r in rings), "no ring wrapped"
    for rule in range(3):
        hits = sum(1 for frames in board.expected for _, r in frames if r == rule)
        assert await drv.rd("STEER.HITS", rule) == hits, f"steering rule {rule}"
    tb.close()


async def _collect_wire(tb: TB, out: list) -> None:
    while True:
        out.append(await tb.sink.recv())


@cocotb.test()
async def tx_to_wire(dut) -> None:
    """Frames posted on every TX queue the NIC has (ID_FEATURES) leave the wire intact, padded,
    with a good FCS; a bad descriptor length completes with LEN_ERROR and sends nothing; the rings
    wrap.  The frames are shared out between the queues: as many in all whatever the build, and
    more per queue than its 8-entry ring holds (at full scale)."""
    tb = TB(dut)
    drv = await tb.start()
    queues = drv.tx_queues
    rings = [await drv.ring("TXQ", q, 3, 1536) for q in range(queues)]
    await drv.wr("CTRL", CTRL.pack(TX_EN=1))
    wire: list = []
    cocotb.start_soon(_collect_wire(tb, wire))
    rng = tb.rng
    n = max(2, 2 * _count(40) // queues)
    frames: list[list[bytes]] = [[] for _ in range(queues)]
    bad: list[set[int]] = [set() for _ in range(queues)]
    posted = [0] * queues
    done = [0] * queues
    sent: list[list[dict]] = [[] for _ in range(queues)]
    rounds = 0
    while min(done) < n:
        rounds += 1
        if rounds > 20_000:   # 4 M cycles: far beyond what queues x n frames need
            state = {q: (await drv.rd("TXQ.HEAD", q), await drv.rd("TXQ.CPL", q), posted[q], done[q])
                     for q in range(queues)}
            raise AssertionError(f"TX completions stalled: (HEAD, CPL, posted, completed) per queue {state}")
        for q, r in enumerate(rings):
            for c, _slot in drv.completions(r):
                sent[q].append(c)
                done[q] += 1
            room = r.size - ring_used(r.seen, r.tail)
            k = 0
            while room and posted[q] < n:
                i = posted[q]
                if rng.random() < 0.05:
                    length = rng.choice([0, 13, 1515, 3000])
                    bad[q].add(i)
                    data = bytes(16)
                else:
                    length = rng.choice([14, 59, 60, 61, 64, 1514, rng.randrange(14, 1515)])
                    frame, _, _ = random_frame(rng, max(length, 60))
                    data = bytes([q, i]) + frame[2:length] if length >= 2 else frame[:length]
                    frames[q].append(data)
                drv.post(r, length, cookie=(q << 16) | i, data=data)
                posted[q] += 1
                room -= 1
                k += 1
            if k:
                await drv.wr("TXQ.TAIL", r.tail, q)
        await wait_cycles(dut, 200)
    await _wait_for(dut, lambda: len(wire) >= sum(len(f) for f in frames), "frames on the wire")
    await wait_cycles(dut, 300)
    for g in wire:
        assert g.check_fcs(), "bad FCS on the wire"
        # GmiiSink records one preamble byte fewer than the wire carries (it opens the frame
        # on the first TX_EN byte without storing it): 6 + SFD for the MAC's 7 + SFD.
        assert g.error is None and g.get_preamble_len() == PREAMBLE_BYTES
    payloads = [bytes(g.get_payload()) for g in wire]
    assert len(payloads) == sum(len(f) for f in frames)
    for q in range(queues):
        out = [p for p in payloads if p[0] == q and len(p) >= 2]
        assert [p[:len(f)] for p, f in zip(out, frames[q])] == frames[q], f"queue {q}: frames differ"
        for p, f in zip(out, frames[q]):
            assert len(p) == max(len(f), 60) and p[len(f):] == bytes(len(p) - len(f))
        for i, c in enumerate(sent[q]):
            assert c["cookie"] == (q << 16) | i
            want = STATUS.bit("LEN_ERROR").mask if i in bad[q] else 0
            assert c["status"] == want, f"queue {q} descriptor {i}: status {c['status']:#x}"
        assert await drv.rd("TXQ.DROPS", q) == len(bad[q])
        assert await drv.rd("TXQ.PACKETS", q) == len(frames[q])
    assert await drv.rd("STAT_TX_OK") == len(payloads)
    tb.close()


@cocotb.test()
async def jumbo_both_ways_in_loopback(dut) -> None:
    """With CTRL.JUMBO and MAX_FRAME 9018, a 9014-byte frame (JUMBO_BYTES) goes out and comes back
    through the internal loopback (nothing leaves on the wire), next to standard frames."""
    tb = TB(dut)
    drv = await tb.start()
    await setup_steering(drv)
    await drv.wr("MAX_FRAME", constant("MAX_FRAME_JUMBO"))
    rx = [await drv.ring("RXQ", q, 4, 9216) for q in range(drv.rx_queues)]
    tx = await drv.ring("TXQ", 0, 4, 9216)
    board = RxScoreboard(drv, rx)
    cocotb.start_soon(board.run())
    wire: list = []
    cocotb.start_soon(_collect_wire(tb, wire))
    await drv.wr("CTRL", CTRL.pack(RX_EN=1, TX_EN=1, LOOPBACK=1, JUMBO=1, BROADCAST=1))
    rng = tb.rng
    sizes = [JUMBO_BYTES, 64, 1514, JUMBO_BYTES - rng.randrange(1, JUMBO_BYTES - 1514), 60]
    for i, size in enumerate(sizes):
        frame, q, rule = random_frame(rng, size, drv.rx_queues)
        drv.post(tx, len(frame), cookie=i, data=frame)
        board.expect(q, frame, rule)
    await drv.wr("TXQ.TAIL", tx.tail, 0)
    await _wait_for(dut, lambda: board.total() >= len(sizes), "looped-back frames")
    await wait_cycles(dut, 200)
    board.check()
    assert not wire, "frames left on the wire in loopback"
    assert [c["status"] for c, _ in drv.completions(tx)] == [0] * len(sizes)
    tb.close()


@cocotb.test()
async def queue_reset_while_traffic_flows(dut) -> None:
    """RX queue 1 is reset while frames stream in: the other queues lose nothing, queue 1
    restarts at completion 0 with phase 1, and no frame is delivered twice or out of order."""
    tb = TB(dut)
    drv = await tb.start()
    await setup_steering(drv)
    assert drv.rx_queues >= 2, "resetting queue 1 needs a NIC with a second RX queue"
    rings = [await drv.ring("RXQ", q, 4, 1536) for q in range(drv.rx_queues)]
    others = [q for q in range(drv.rx_queues) if q != 1]
    board = RxScoreboard(drv, rings)
    cocotb.start_soon(board.run())
    await drv.wr("CTRL", CTRL.pack(RX_EN=1, BROADCAST=1))
    rng = tb.rng
    n = _count(40)
    sent_q1: list[bytes] = []
    rule_of: dict[bytes, int] = {}            # queue 1's frames: the rule that steers each
    progress = {"sent": 0}

    async def sender() -> None:
        for _ in range(n):
            frame, q, rule = random_frame(rng, rng.randrange(60, 600), drv.rx_queues)
            if q == 1:
                sent_q1.append(frame)
                rule_of[frame] = rule
            else:
                board.expect(q, frame, rule)
            await tb.source.send(GmiiFrame.from_payload(frame))
            progress["sent"] += 1
        await tb.source.wait()

    send_task = cocotb.start_soon(sender())
    await _wait_for(dut, lambda: progress["sent"] >= n // 2, "half the frames")
    # Reset queue 1 under traffic: stop reaping it, reset, zero its completion ring, re-post.
    board.paused.add(1)
    await drv.wr("RXQ.CTRL", QCTRL.pack(ENABLE=1, RESET=1), 1)
    r = rings[1]
    before = [data for data, _ in board.got[1]]
    assert await drv.rd("RXQ.HEAD", 1) == 0 and await drv.rd("RXQ.CPL", 1) == 0
    drv.write(r.cpl, bytes(COMPLETION.size * r.size))
    r.tail = r.seen = 0
    board.got[1].clear()
    board.paused.discard(1)
    await board.fill(r)
    refilled_at = len(sent_q1) + 1          # q1 frames from here on must all arrive
    await send_task
    expected_others = sum(len(board.expected[q]) for q in others)
    await _wait_for(dut, lambda: sum(len(board.got[q]) for q in others) >= expected_others
                    and len(board.got[1]) >= len(sent_q1) - refilled_at, "frames after the reset")
    await wait_cycles(dut, 500)
    after = [data for data, _ in board.got[1]]
    # Queue 1: what arrived is in send order, nothing twice, and nothing sent after the refill lost.
    positions = [sent_q1.index(d) for d in before + after]
    assert positions == sorted(set(positions)), "queue 1 frames duplicated or reordered across the reset"
    assert set(range(refilled_at, len(sent_q1))) <= set(positions), "queue 1 lost frames after the refill"
    assert await drv.rd("RXQ.CPL", 1) == len(after)
    for c, _ in [(c, 0) for _, c in board.got[1]]:
        assert c["status"] == 0
    board.expected[1] = [(d, rule_of[d]) for d in after]
    board.check()
    tb.close()
