"""Amaranth-simulator tests of the TX queue engine against a Python host-memory model and a
frame sink: frames leave whole and in order, completions are right, lengths are checked,
queue resets drop the old generation, the queues share the wire fairly (round robin, one
frame each in turn), and the pipeline keeps a 1 Gb/s MAC busy at 64 bytes."""

from __future__ import annotations

import os
import random

from amaranth.hdl import Module
from amaranth.sim import Simulator

from splitnic_gateware.dma.tx_engine import TxEngine
from splitnic_gateware.mac import MacTx
from splitnic_spec import COMPLETION, DESCRIPTOR, NUM_TX_QUEUES, constant

from .wishbone_model import WishboneMemory

SEED = int(os.environ.get("SPLITNIC_SEED", "1"))
BASE = 0x4000_0000
PHASE = COMPLETION.member("flags").bit("PHASE")
LEN_ERROR = COMPLETION.member("status").bit("LEN_ERROR").mask
LOG2 = 4
RING = 1 << LOG2
DESC = [BASE + 0x200 * q for q in range(NUM_TX_QUEUES)]
CPL = [BASE + 0x200 * q + 0x100 for q in range(NUM_TX_QUEUES)]
BUF_BASE = BASE + 0x200 * NUM_TX_QUEUES
BUF = 0x2400                           # room for a jumbo frame per slot


class Driver:
    """The driver's side of the TX rings, kept in the model memory."""

    def __init__(self, dut: TxEngine, mem: WishboneMemory, queues: int = 2, buf: int = BUF) -> None:
        self.dut, self.mem, self.buf = dut, mem, buf
        self.tail = [0] * queues
        self.posted: list[list[tuple[bytes, int]]] = [[] for _ in range(queues)]

    def setup(self, ctx, *, jumbo: int = 0, max_len: int = 1518) -> None:
        cfg = self.dut.config
        ctx.set(cfg.tx_en, 1)
        ctx.set(cfg.jumbo, jumbo)
        ctx.set(cfg.max_len, max_len)
        for q in range(len(self.tail)):
            c = self.dut.queues[q]
            ctx.set(c.desc_base, DESC[q])
            ctx.set(c.cpl_base, CPL[q])
            ctx.set(c.log2, LOG2)
            ctx.set(c.enable, 1)

    def post(self, ctx, q: int, frame: bytes, cookie: int) -> None:
        slot = self.tail[q] % RING
        addr = BUF_BASE + (q * RING + slot) * self.buf
        self.mem.write(addr, frame)
        self.mem.write(DESC[q] + slot * 16, DESCRIPTOR.pack(addr=addr, length=len(frame), cookie=cookie))
        self.posted[q].append((frame, cookie))
        self.tail[q] = (self.tail[q] + 1) & 0xFFFF
        ctx.set(self.dut.queues[q].tail, self.tail[q])

    def completion(self, q: int, index: int) -> dict:
        return COMPLETION.unpack(self.mem.read(CPL[q] + (index % RING) * 16, 16))


class Sink:
    """Takes frames from the engine like MacTx: ready from the first byte to the last, with gaps
    between frames; checks that ``valid`` never drops inside a frame."""

    def __init__(self, port, rng: random.Random, gap: tuple[int, int] = (0, 30)) -> None:
        self.port, self.rng, self.gap = port, rng, gap
        self.frames: list[bytes] = []
        self.errors: list[str] = []

    async def run(self, ctx) -> None:
        current = bytearray()
        wait = 0
        while True:
            await ctx.tick()
            valid = ctx.get(self.port.valid)
            if not current:
                if wait:
                    wait -= 1
                    ctx.set(self.port.ready, 0)
                    continue
                ctx.set(self.port.ready, valid)
                if not valid:
                    continue
            else:
                ctx.set(self.port.ready, 1)
                if not valid:
                    self.errors.append(f"valid dropped after {len(current)} bytes")
                    continue
            current.append(ctx.get(self.port.payload.data))
            if ctx.get(self.port.payload.last):
                self.frames.append(bytes(current))
                current = bytearray()
                wait = self.rng.randint(*self.gap)


def _frame(rng: random.Random, n: int, q: int, i: int) -> bytes:
    return bytes([q, i & 0xFF]) + rng.randbytes(n - 2)


def _run(dut, mem, tbs) -> None:
    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(mem.serve, background=True)
    for tb, background in tbs:
        sim.add_testbench(tb, background=background)
    sim.run()


def test_frames_leave_whole_and_completions_wrap_the_ring() -> None:
    rng = random.Random(SEED)
    dut = TxEngine()
    mem = WishboneMemory(dut.dma, 0x60000, base=BASE, stall_prob=0.3, rng=rng)
    drv = Driver(dut, mem)
    sink = Sink(dut.frames, rng)
    total = [24, 20]                       # more than a ring's worth on each queue: wraps
    sizes = {q: [rng.choice([14, 60, 61, 62, 63, 64, rng.randrange(14, 1515)]) for _ in range(total[q])]
             for q in range(2)}
    sizes[0][3] = 1514

    async def tb(ctx):
        drv.setup(ctx)
        done = [0, 0]
        for _ in range(400):
            for q in range(2):
                # Post as the ring has room: completions free slots.
                cpl = ctx.get(dut.status[q].cpl)
                while drv.tail[q] - cpl < RING and len(drv.posted[q]) < total[q]:
                    i = len(drv.posted[q])
                    drv.post(ctx, q, _frame(rng, sizes[q][i], q, i), cookie=q << 16 | i)
                done[q] = cpl
            if done == total:
                break
            await ctx.tick().repeat(200)
        else:
            raise AssertionError(f"only {done} of {total} completed")
        await ctx.tick().repeat(20)
        assert ctx.get(dut.status[0].head) == total[0] and ctx.get(dut.status[1].head) == total[1]

    _run(dut, mem, [(tb, False), (sink.run, True)])
    assert not mem.errors and not sink.errors, (mem.errors, sink.errors)
    for q in range(2):
        sent = [f for f in sink.frames if f[0] == q]
        assert sent == [f for f, _ in drv.posted[q]], f"queue {q}: frames differ or out of order"
        for i, (frame, cookie) in enumerate(drv.posted[q]):
            c = drv.completion(q, i) if i >= total[q] - RING else None
            if c is None:
                continue                  # overwritten on the next lap
            lap_phase = 1 - ((i >> LOG2) & 1)
            assert (c["cookie"], c["length"], c["queue"], c["status"], c["rule"]) == \
                (cookie, len(frame), q, 0, constant("RULE_NONE")), (q, i, c)
            assert c["flags"] >> PHASE.lsb & 1 == lap_phase
    # Round robin: with both queues busy, the first frames alternate.
    first = [f[0] for f in sink.frames[:6]]
    assert all(a != b for a, b in zip(first, first[1:])), first


def test_bad_lengths_complete_with_len_error_and_send_nothing() -> None:
    rng = random.Random(SEED)
    dut = TxEngine()
    mem = WishboneMemory(dut.dma, 0x60000, base=BASE, stall_prob=0.1, rng=rng)
    drv = Driver(dut, mem, queues=1)
    sink = Sink(dut.frames, rng)
    sizes = [13, 60, 1515, 1514, 0, 100]
    events = {"packet": 0, "drop": 0, "completion": 0, "bytes": 0}

    async def watch(ctx):
        while True:
            await ctx.tick()
            ev = dut.events[0]
            events["packet"] += ctx.get(ev.packet)
            events["drop"] += ctx.get(ev.drop)
            events["completion"] += ctx.get(ev.completion)
            events["bytes"] += ctx.get(ev.length) if ctx.get(ev.packet) else 0

    async def tb(ctx):
        drv.setup(ctx)
        for i, n in enumerate(sizes):
            drv.post(ctx, 0, rng.randbytes(n), cookie=i)
        for _ in range(100):
            await ctx.tick().repeat(100)
            if ctx.get(dut.status[0].cpl) == len(sizes):
                break
        await ctx.tick().repeat(5)

    _run(dut, mem, [(tb, False), (sink.run, True), (watch, True)])
    good = [n for n in sizes if 14 <= n <= 1514]
    assert [len(f) for f in sink.frames] == good
    for i, n in enumerate(sizes):
        c = drv.completion(0, i)
        assert c["cookie"] == i and c["flags"] >> PHASE.lsb & 1
        assert c["status"] == (0 if 14 <= n <= 1514 else LEN_ERROR), (n, c)
    assert events == {"packet": len(good), "drop": len(sizes) - len(good), "completion": len(sizes),
                      "bytes": sum(good)}


def test_jumbo_frame_when_enabled() -> None:
    rng = random.Random(SEED)
    dut = TxEngine()
    mem = WishboneMemory(dut.dma, 0x60000, base=BASE, stall_prob=0.2, rng=rng)
    drv = Driver(dut, mem, queues=1)
    sink = Sink(dut.frames, rng)
    frames = [rng.randbytes(9014), rng.randbytes(9015), rng.randbytes(3000)]

    async def tb(ctx):
        drv.setup(ctx, jumbo=1, max_len=9018)
        for i, f in enumerate(frames):
            drv.post(ctx, 0, f, cookie=i)
        for _ in range(200):
            await ctx.tick().repeat(200)
            if ctx.get(dut.status[0].cpl) == len(frames):
                break

    _run(dut, mem, [(tb, False), (sink.run, True)])
    assert sink.frames == [frames[0], frames[2]]
    assert drv.completion(0, 1)["status"] == LEN_ERROR


def test_queue_reset_drops_the_old_generation() -> None:
    rng = random.Random(SEED)
    dut = TxEngine()
    mem = WishboneMemory(dut.dma, 0x60000, base=BASE, stall_prob=0.2, rng=rng)
    drv = Driver(dut, mem)
    sink = Sink(dut.frames, rng, gap=(100, 200))      # a slow MAC: frames pile up in the buffer

    async def tb(ctx):
        drv.setup(ctx)
        for i in range(10):
            drv.post(ctx, 0, _frame(rng, 200, 0, i), cookie=i)
            drv.post(ctx, 1, _frame(rng, 200, 1, i), cookie=0x100 + i)
        await ctx.tick().repeat(600)
        # Reset queue 1 while it has frames in flight; the driver's TAIL returns to 0 with it.
        ctx.set(dut.queue_reset, 0b10)
        ctx.set(dut.queues[1].tail, 0)
        await ctx.tick()
        ctx.set(dut.queue_reset, 0)
        await ctx.tick()
        assert ctx.get(dut.status[1].head) == 0 and ctx.get(dut.status[1].cpl) == 0
        for zero in range(RING):
            mem.write(CPL[1] + zero * 16, bytes(16))
        sent_before = len([f for f in sink.frames if f[0] == 1])
        drv.tail[1] = 0
        drv.posted[1] = []
        for i in range(3):
            drv.post(ctx, 1, _frame(rng, 100, 1, 0x80 + i), cookie=0x200 + i)
        for _ in range(200):
            await ctx.tick().repeat(100)
            if ctx.get(dut.status[0].cpl) == 10 and ctx.get(dut.status[1].cpl) == 3:
                break
        await ctx.tick().repeat(400)
        results.update(sent_before=sent_before, cpl1=ctx.get(dut.status[1].cpl))

    results: dict = {}
    _run(dut, mem, [(tb, False), (sink.run, True)])
    assert results["cpl1"] == 3
    q0 = [f for f in sink.frames if f[0] == 0]
    assert len(q0) == 10
    q1 = [f for f in sink.frames if f[0] == 1]
    new = [f for f in q1 if f[1] >= 0x80]
    assert [f[1] for f in new] == [0x80, 0x81, 0x82]
    # At most the frame already on the wire at the reset still went out; the rest were dropped.
    assert len(q1) - len(new) <= results["sent_before"] + 1 < 10
    for i in range(3):
        c = drv.completion(1, i)
        assert c["cookie"] == 0x200 + i and c["flags"] >> PHASE.lsb & 1 == 1
    assert drv.completion(1, 3) == COMPLETION.unpack(bytes(16)), "no stale completion after the new ones"


def _shares_run(rng: random.Random, backlogged: list[int], light: int | None, light_frames: int,
                wire_frames: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Run a TX engine of every queue the map has room for: the ``backlogged`` queues always have
    frames posted (60..200 bytes, at random), the ``light`` one posts one frame at a time, each once
    the previous one has gone, ``light_frames`` in all.  Stops after ``wire_frames`` frames, or
    once the light frames have all gone.
    Returns the queue of each frame in wire order, and for each light frame its index in that
    order and how many frames had left before it was posted."""
    dut = TxEngine(queues=NUM_TX_QUEUES)
    mem = WishboneMemory(dut.dma, 0x20000, base=BASE, stall_prob=0.2, rng=rng)
    drv = Driver(dut, mem, queues=NUM_TX_QUEUES, buf=0x200)
    sink = Sink(dut.frames, rng, gap=(0, 4))
    light_posted: list[int] = []            # len(sink.frames) when each light frame was posted

    async def tb(ctx):
        drv.setup(ctx)
        for _ in range(wire_frames * 40):
            for q in backlogged:
                cpl = ctx.get(dut.status[q].cpl)
                while drv.tail[q] - cpl < RING:
                    i = len(drv.posted[q])
                    drv.post(ctx, q, _frame(rng, rng.randrange(60, 201), q, i), cookie=i)
            if light is not None and len(light_posted) < light_frames \
                    and ctx.get(dut.status[light].cpl) == len(light_posted) and rng.random() < 0.2:
                light_posted.append(len(sink.frames))
                drv.post(ctx, light, _frame(rng, 60, light, len(light_posted)), cookie=len(light_posted))
            if len(sink.frames) >= wire_frames or \
                    light is not None and ctx.get(dut.status[light].cpl) == light_frames:
                break
            await ctx.tick().repeat(20)

    _run(dut, mem, [(tb, False), (sink.run, True)])
    assert not mem.errors and not sink.errors, (mem.errors, sink.errors)
    order = [f[0] for f in sink.frames[:wire_frames]]
    for q in range(NUM_TX_QUEUES):
        sent = [f for f in sink.frames if f[0] == q]
        assert sent == [f for f, _ in drv.posted[q]][:len(sent)], f"queue {q}: frames differ or out of order"
    light_sent = [i for i, q in enumerate(order) if q == light]
    return order, list(zip(light_sent, light_posted))


def test_every_backlogged_queue_sends_one_frame_in_turn() -> None:
    """All of the map's TX queues backlogged, frames of random lengths: after any number of frames
    on the wire, no queue has sent more than one frame more than any other (a fixed-priority pick
    would send queue 0's frames only)."""
    seed = random.Random(SEED).randrange(1 << 32)
    queues = list(range(NUM_TX_QUEUES))
    order, _ = _shares_run(random.Random(seed), queues, None, 0, wire_frames=8 * NUM_TX_QUEUES)
    counts = [0] * NUM_TX_QUEUES
    for n, q in enumerate(order):
        counts[q] += 1
        assert max(counts) - min(counts) <= 1, f"seed {seed}: after {n + 1} frames the queues sent {counts}: {order}"
    assert counts == [8] * NUM_TX_QUEUES, f"seed {seed}: {counts}"


def test_a_backlogged_queue_cannot_starve_another() -> None:
    """Queue 0 always backlogged, the last queue posting one frame now and then: each of its frames
    leaves behind at most the frames the engine had already taken when it was posted (``frames_in_flight``
    = 8 waiting, one on the wire) and one more of queue 0's, whatever queue 0 has waiting (a
    fixed-priority pick would never send it).  Seen: 9 of 10 for every frame but the first."""
    seed = random.Random(SEED).randrange(1 << 32)
    light = NUM_TX_QUEUES - 1
    order, light_frames = _shares_run(random.Random(seed), [0], light, 5, wire_frames=100)
    assert len(light_frames) == 5, f"seed {seed}: queue {light} sent {len(light_frames)} of its 5 frames: {order}"
    waits = [sent - posted for sent, posted in light_frames]
    assert max(waits) <= 8 + 1 + 1, f"seed {seed}: queue {light}'s frames waited behind {waits} frames"


def test_line_rate_at_64_bytes_with_the_real_mac() -> None:
    rng = random.Random(SEED)
    m = Module()
    m.submodules.engine = engine = TxEngine()
    m.submodules.mac = mac = MacTx()
    m.d.comb += [mac.frames.valid.eq(engine.frames.valid), mac.frames.payload.eq(engine.frames.payload),
                 engine.frames.ready.eq(mac.frames.ready), mac.config.eq(engine.config),
                 engine.sent.eq(mac.events)]
    mem = WishboneMemory(engine.dma, 0x60000, base=BASE, stall_prob=0.0, rng=rng)
    drv = Driver(engine, mem, queues=1)
    count = 40
    starts: list[int] = []

    async def tb(ctx):
        drv.setup(ctx)
        for i in range(RING - 1):
            drv.post(ctx, 0, _frame(rng, 60, 0, i), cookie=i)
        cycle, prev_en = 0, 0
        while len(starts) < count:
            await ctx.tick()
            cycle += 1
            en = ctx.get(mac.gmii_tx_en)
            if en and not prev_en:
                starts.append(cycle)
            prev_en = en
            cpl = ctx.get(engine.status[0].cpl)
            while drv.tail[0] - cpl < RING - 1 and len(drv.posted[0]) < count + 5:
                drv.post(ctx, 0, _frame(rng, 60, 0, len(drv.posted[0])), cookie=len(drv.posted[0]))
            assert cycle < count * 200, "TX stalled"

    sim = Simulator(m)
    sim.add_clock(8e-9)
    sim.add_testbench(mem.serve, background=True)
    sim.add_testbench(tb)
    sim.run()
    spacing = [b - a for a, b in zip(starts, starts[1:])]
    # 7 preamble + 1 SFD + 60 data + 4 FCS + 12 gap = 84 byte times per 64-byte frame.
    assert max(spacing[2:]) == 84, spacing
