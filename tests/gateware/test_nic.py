"""Amaranth-simulator tests of the whole NIC, driven through its CSR bus like a driver would,
with frames looped back internally (CTRL.LOOPBACK) and host memory served by a Python model."""

from __future__ import annotations

import os
import random

from amaranth.sim import Simulator

from splitnic_gateware.nic import Nic
from splitnic_spec import COMPLETION, CSR_MAP, DESCRIPTOR, SPEC_HASH, constant

from .wishbone_model import CsrDriver, WishboneMemory

SEED = int(os.environ.get("SPLITNIC_SEED", "1"))
OWN_MAC = bytes.fromhex("020000000001")
BASE = 0x10000
CTRL = CSR_MAP.register("CTRL")
QCTRL = CSR_MAP.array("RXQ").register("CTRL")
STEER_CTRL = CSR_MAP.array("STEER").register("CTRL")
PHASE = COMPLETION.member("flags").bit("PHASE")
LOG2 = 4
RING = 1 << LOG2
BUF = 0x800


class Layout:
    """Where the test driver keeps its rings and buffers in the model memory."""
    tx_desc, tx_cpl = BASE + 0x0000, BASE + 0x0100
    rx_desc = [BASE + 0x200, BASE + 0x400]
    rx_cpl = [BASE + 0x300, BASE + 0x500]
    tx_buf = BASE + 0x1000
    rx_buf = [BASE + 0x9000, BASE + 0x11000]
    size = 0x20000


def _frame(rng: random.Random, size: int, ethertype: int) -> bytes:
    return OWN_MAC + bytes.fromhex("020000000099") + ethertype.to_bytes(2, "big") + rng.randbytes(size - 14)


def _completion(mem: WishboneMemory, ring: int, index: int) -> dict:
    return COMPLETION.unpack(mem.read(ring + (index % RING) * COMPLETION.size, COMPLETION.size))


async def _wait(ctx, csr: CsrDriver, name: str, q: int, value: int, limit: int = 40000) -> None:
    for _ in range(limit // 50):
        if await csr.read(ctx, name, q) == value:
            return
        await ctx.tick().repeat(50)
    raise AssertionError(f"{name}[{q}] never reached {value} (is {await csr.read(ctx, name, q)})")


def _run(dut, mem: WishboneMemory, testbench) -> None:
    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(mem.serve, background=True)
    sim.add_testbench(testbench)
    sim.run()


def test_id_block_reads_through_the_nic() -> None:
    dut = Nic(build_id=0x1234)
    mem = WishboneMemory(dut.dma, 0x100)
    csr = CsrDriver(dut.csr)

    async def tb(ctx):
        assert await csr.read(ctx, "ID_MAGIC") == constant("ID_MAGIC")
        assert await csr.read(ctx, "ID_SPEC_HASH") == SPEC_HASH
        assert await csr.read(ctx, "ID_BUILD") == 0x1234
        await csr.write(ctx, "SCRATCH", 0xA5A5_5A5A)
        assert await csr.read(ctx, "SCRATCH") == 0xA5A5_5A5A
    _run(dut, mem, tb)


def test_loopback_frames_come_back_on_the_steered_queue() -> None:
    rng = random.Random(SEED)
    dut = Nic()
    mem = WishboneMemory(dut.dma, Layout.size, base=BASE, stall_prob=0.2, rng=rng)
    csr = CsrDriver(dut.csr)
    steered_type = 0x88B5
    # Frame 4 (10 bytes) is too short: a LEN_ERROR completion, nothing sent.
    sizes = [60, 61, 64, 130, 10, 257, 1514, 75]
    types = [steered_type if i % 2 else 0x0800 for i in range(len(sizes))]
    frames = [_frame(rng, max(n, 14), t)[:n] for n, t in zip(sizes, types)]
    bad = {i for i, n in enumerate(sizes) if n < 14}

    async def tb(ctx):
        await csr.write(ctx, "CTRL", CTRL.pack(RESET=1))
        await csr.write(ctx, "MAC_ADDR_LO", int.from_bytes(OWN_MAC[:4], "little"))
        await csr.write(ctx, "MAC_ADDR_HI", int.from_bytes(OWN_MAC[4:], "little"))
        # Entry 3 sends the steered ethertype to RX queue 1; everything else goes to queue 0.
        await csr.write(ctx, "STEER.ETHERTYPE", steered_type, 3)
        await csr.write(ctx, "STEER.CTRL", STEER_CTRL.pack(ENABLE=1, MATCH_ETHERTYPE=1, QUEUE=1), 3)
        for q in range(2):
            for i in range(RING):
                mem.write(Layout.rx_desc[q] + i * 16,
                          DESCRIPTOR.pack(addr=Layout.rx_buf[q] + i * BUF, length=BUF, cookie=0x100 * q + i))
            await csr.write(ctx, "RXQ.DESC_LO", Layout.rx_desc[q], q)
            await csr.write(ctx, "RXQ.CPL_LO", Layout.rx_cpl[q], q)
            await csr.write(ctx, "RXQ.SIZE", LOG2, q)
            await csr.write(ctx, "RXQ.CTRL", QCTRL.pack(ENABLE=1), q)
            await csr.write(ctx, "RXQ.TAIL", RING - 1, q)
        await csr.write(ctx, "TXQ.DESC_LO", Layout.tx_desc, 0)
        await csr.write(ctx, "TXQ.CPL_LO", Layout.tx_cpl, 0)
        await csr.write(ctx, "TXQ.SIZE", LOG2, 0)
        await csr.write(ctx, "TXQ.CTRL", QCTRL.pack(ENABLE=1), 0)
        await csr.write(ctx, "CTRL", CTRL.pack(RX_EN=1, TX_EN=1, LOOPBACK=1, BROADCAST=1))
        for i, f in enumerate(frames):
            addr = Layout.tx_buf + i * BUF
            mem.write(addr, f)
            mem.write(Layout.tx_desc + i * 16, DESCRIPTOR.pack(addr=addr, length=len(f), cookie=0xC000 + i))
        await csr.write(ctx, "TXQ.TAIL", len(frames), 0)
        await _wait(ctx, csr, "TXQ.CPL", 0, len(frames))
        good = [i for i in range(len(frames)) if i not in bad]
        per_q = [[i for i in good if types[i] != steered_type], [i for i in good if types[i] == steered_type]]
        for q in range(2):
            await _wait(ctx, csr, "RXQ.CPL", q, len(per_q[q]))
        counters = {name: await csr.read(ctx, name) for name in ("STAT_TX_OK", "STAT_RX_OK", "STAT_RX_OK_BYTES")}
        counters["tx_drops"] = await csr.read(ctx, "TXQ.DROPS", 0)
        counters["tx_packets"] = await csr.read(ctx, "TXQ.PACKETS", 0)
        counters["rx_packets"] = [await csr.read(ctx, "RXQ.PACKETS", q) for q in range(2)]
        counters["hits"] = await csr.read(ctx, "STEER.HITS", 3)
        counters["head"] = await csr.read(ctx, "TXQ.HEAD", 0)
        ctx_results.update(counters=counters, per_q=per_q, good=good)

    ctx_results: dict = {}
    _run(dut, mem, tb)
    assert not mem.errors, mem.errors
    per_q, good, counters = ctx_results["per_q"], ctx_results["good"], ctx_results["counters"]

    for i, f in enumerate(frames):
        c = _completion(mem, Layout.tx_cpl, i)
        assert c["cookie"] == 0xC000 + i and c["flags"] >> PHASE.lsb & 1 == 1 and c["rule"] == constant("RULE_NONE")
        if i in bad:
            assert c["status"] == COMPLETION.member("status").bit("LEN_ERROR").mask
        else:
            assert c["status"] == 0 and c["length"] == len(f)
    for q in range(2):
        for k, i in enumerate(per_q[q]):
            c = _completion(mem, Layout.rx_cpl[q], k)
            assert c["cookie"] == 0x100 * q + k, (q, k, c)
            assert c["queue"] == q and c["status"] == 0 and c["flags"] >> PHASE.lsb & 1 == 1
            assert c["rule"] == (3 if q == 1 else constant("RULE_NONE"))
            assert c["length"] == max(len(frames[i]), constant("MIN_FRAME")), (q, k, c)
            got = mem.read(Layout.rx_buf[q] + k * BUF, c["length"])
            assert got == frames[i] + bytes(c["length"] - len(frames[i])), f"frame {i} differs on queue {q}"
    assert counters["tx_packets"] == counters["STAT_TX_OK"] == len(good)
    assert counters["tx_drops"] == len(bad) and counters["head"] == len(frames)
    assert counters["STAT_RX_OK"] == len(good)
    assert counters["rx_packets"] == [len(per_q[0]), len(per_q[1])]
    assert counters["hits"] == len(per_q[1])
