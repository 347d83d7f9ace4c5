"""Amaranth-simulator tests of the DMA firewall with the board's windows.

A Python master runs bursts (reads and writes, classic and incrementing) through
the firewall into a model of the board's bus.  The model acks like LiteX's
SRAM, the board's DMA RAM: a registered ack, asserted ahead for every beat of an
incrementing burst (so it acks a beat the firewall has just cut off, the case
the firewall must not pass on).  What is checked, cycle by cycle: no beat
outside NIC-local memory or (writes only) the host window ever shows on the
bus; the bus's memory changes exactly where the allowed beats wrote; a refused
read returns 0; ``error`` strobes once per bus cycle with a refused beat; and
traffic inside the windows sees the bus unchanged (same signals, same cycles).
"""

from __future__ import annotations

import os
import random

import pytest
from amaranth.sim import Simulator

from splitnic_gateware.bus import CTI_CLASSIC, CTI_END, CTI_INCR
from splitnic_gateware.dma.firewall import DmaFirewall, DmaWindow
from splitnic_gateware.nic import Nic
from splitnic_gateware.size import NicSize
from splitnic_gateware.targets.nic_core import BOARD_DMA_WINDOWS
from splitnic_spec import board as amap
from splitnic_spec import COMPLETION, CSR_MAP, DESCRIPTOR, constant, hostlink

from .wishbone_model import CsrDriver, WishboneMemory

SEED = int(os.environ.get("SPLITNIC_SEED", "1"))
MAX_BURST = constant("MAX_BURST")
#: Where a stray DMA beat would do harm on the board, each a word the test poisons first.
TARGETS = {
    "the CPU's SRAM": amap.FW_SRAM_BASE + 0x100,
    "the CPU's ROM": amap.FW_ROM_BASE + 0x40,
    "LiteX's CSRs": amap.LITEX_CSR_BASE + 0x800,
    "the NIC's own registers": amap.NIC_CSR_BASE + 0x100,
    "the eth link's counters": hostlink.COUNTERS_BASE,
    "just past the DMA RAM": amap.DMA_RAM_BASE + amap.DMA_RAM_SIZE,
    "just below the DMA RAM": amap.DMA_RAM_BASE - 4 * MAX_BURST,   # a whole burst stays below
    "just past the host window": hostlink.HOST_WINDOW_BASE + hostlink.HOST_WINDOW_SIZE,
}
POISON = 0x5EC0_DEAD


def _allowed(byte_addr: int, write: bool) -> bool:
    return any(w.contains(byte_addr, write) for w in BOARD_DMA_WINDOWS)


class BusModel:
    """The SoC bus behind the firewall: a sparse word memory that acks like LiteX's SRAM.

    ack(t) = CYC & STB & (~ack | CTI == INCR) at t - 1: registered, and held on through an
    incrementing burst, one beat ahead of the master.  ``stall_prob`` adds wait states.
    dat_r always shows the word at the address presented, and a write beat writes in every
    cycle it is presented, as the SRAM's memory port does.
    """

    def __init__(self, rng: random.Random, stall_prob: float = 0.0) -> None:
        self.words: dict[int, int] = {}          # word address -> value; absent reads 0
        self.rng, self.stall_prob = rng, stall_prob
        self.ack_next = 0
        self.seen: list[tuple[int, bool]] = []   # (byte address, write) of each cycle with CYC & STB
        self.landed: list[tuple[int, bool]] = [] # ... of each beat acked
        self.stray_acks = 0                      # acks in a cycle without CYC & STB

    def step(self, ctx, bus) -> None:
        cyc, stb = ctx.get(bus.cyc), ctx.get(bus.stb)
        adr, we, cti = ctx.get(bus.adr), ctx.get(bus.we), ctx.get(bus.cti)
        ack = self.ack_next
        # Like the SRAM's read port, dat_r shows the word at the address presented, asked for or not.
        data = self.words.get(adr, 0)
        if cyc and stb:
            self.seen.append((adr << 2, bool(we)))
            if ack:
                self.landed.append((adr << 2, bool(we)))
            if we:      # like the SRAM's write enable: on every cycle of a write beat, acked or not
                sel, value = ctx.get(bus.sel), ctx.get(bus.dat_w)
                mask = sum(0xFF << (8 * i) for i in range(4) if sel >> i & 1)
                self.words[adr] = (self.words.get(adr, 0) & ~mask) | (value & mask)
        elif ack:
            self.stray_acks += 1
        ctx.set(bus.ack, ack)
        ctx.set(bus.dat_r, data)
        self.ack_next = int(cyc and stb and (not ack or cti == CTI_INCR) and self.rng.random() >= self.stall_prob)


def _run(bursts: list[tuple[int, int, bool]], bus: BusModel, rng: random.Random, *, check_transparent: bool = False):
    """Run ``bursts`` (byte address, words, write) through a firewall with the board's windows.

    Returns (reads: list of (byte address, value), errors, refused cycles): ``refused cycles``
    counts the bursts with a beat outside the windows, as the reference says.
    """
    dut = DmaFirewall(BOARD_DMA_WINDOWS)
    out: dict = {"reads": [], "errors": 0}
    refused_cycles = sum(any(not _allowed(a + 4 * k, w) for k in range(n)) for a, n, w in bursts)

    async def tb(ctx):
        m = dut.dma
        plan = list(bursts)
        for addr, n, write in plan:
            # CYC low between bursts, 0..2 cycles more (the engines drop it for one).
            for _ in range(1 + rng.randrange(3)):
                ctx.set(m.cyc, 0)
                ctx.set(m.stb, 0)
                bus.step(ctx, dut.bus)
                out["errors"] += ctx.get(dut.error)
                await ctx.tick()
            classic = n == 1 and rng.random() < 0.5
            beat, waited = 0, 0
            while beat < n:
                a = addr + 4 * beat
                ctx.set(m.cyc, 1)
                ctx.set(m.stb, 1)
                ctx.set(m.we, int(write))
                ctx.set(m.adr, a >> 2)
                ctx.set(m.sel, 0xF)
                ctx.set(m.dat_w, (a * 2654435761) & 0xFFFF_FFFF)
                ctx.set(m.cti, CTI_CLASSIC if classic else (CTI_END if beat == n - 1 else CTI_INCR))
                bus.step(ctx, dut.bus)
                if check_transparent:
                    for name in ("cyc", "stb", "adr", "we", "dat_w", "sel", "cti", "ack", "dat_r"):
                        assert ctx.get(getattr(dut.bus, name)) == ctx.get(getattr(dut.dma, name)), name
                out["errors"] += ctx.get(dut.error)
                if ctx.get(m.ack):
                    if not write:
                        out["reads"].append((a, ctx.get(m.dat_r)))
                    beat += 1
                    waited = 0
                else:
                    waited += 1
                    assert waited < 50, f"no ack for the beat at {a:#x}"
                await ctx.tick()
        ctx.set(m.cyc, 0)
        ctx.set(m.stb, 0)
        for _ in range(3):
            bus.step(ctx, dut.bus)
            out["errors"] += ctx.get(dut.error)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return out["reads"], out["errors"], refused_cycles


def _poisoned(rng: random.Random, stall_prob: float = 0.0) -> BusModel:
    bus = BusModel(rng, stall_prob)
    for a in TARGETS.values():
        for k in range(-MAX_BURST, MAX_BURST):
            bus.words[(a >> 2) + k] = POISON
    return bus


def test_the_board_windows_are_the_dma_ram_and_the_host_window_write_only() -> None:
    assert BOARD_DMA_WINDOWS == (DmaWindow(amap.DMA_RAM_BASE, amap.DMA_RAM_SIZE),
                                 DmaWindow(hostlink.HOST_WINDOW_BASE, hostlink.HOST_WINDOW_SIZE, read=False))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_burst_outside_the_windows_never_reaches_the_bus(target: str) -> None:
    rng = random.Random(SEED)
    addr = TARGETS[target]
    bus = _poisoned(rng)
    before = dict(bus.words)
    bursts = [(addr, MAX_BURST, True), (addr, 4, False), (addr, 1, True), (addr, 1, False)]
    reads, errors, refused = _run(bursts, bus, rng)
    assert bus.seen == [], f"beats at {target} reached the bus: {bus.seen[:4]}"
    assert bus.words == before, f"{target} was written"
    assert [v for _, v in reads] == [0] * 5, "a refused read returns 0"
    assert errors == refused == len(bursts)


def test_the_host_window_takes_writes_and_refuses_reads() -> None:
    rng = random.Random(SEED)
    bus = BusModel(rng)
    base = hostlink.HOST_WINDOW_BASE + 0x2000
    reads, errors, _ = _run([(base, 8, True), (base, 8, False)], bus, rng)
    assert bus.landed == [(base + 4 * k, True) for k in range(8)] and set(bus.seen) == set(bus.landed)
    assert [v for _, v in reads] == [0] * 8 and errors == 1


def test_a_burst_that_runs_out_of_the_dma_ram_is_cut_where_it_leaves() -> None:
    # The bus acks ahead through the burst, so it acks the first beat past the end too.
    rng = random.Random(SEED)
    bus = _poisoned(rng)
    end = amap.DMA_RAM_BASE + amap.DMA_RAM_SIZE
    start = end - 5 * 4
    reads, errors, _ = _run([(start, MAX_BURST, True)], bus, rng)
    inside = [(start + 4 * k, True) for k in range(5)]
    assert bus.landed == inside and set(bus.seen) == set(inside), bus.seen
    assert bus.stray_acks >= 1, "the model did not ack ahead: the case is not exercised"
    for k in range(MAX_BURST):
        a = start + 4 * k
        expected = (a * 2654435761) & 0xFFFF_FFFF if a < end else POISON
        assert bus.words.get(a >> 2) == expected, hex(a)
    assert errors == 1
    # The same for reads: the words inside come back, the rest read 0.
    reads, errors, _ = _run([(start, MAX_BURST, False)], bus, rng)
    assert [v for _, v in reads] == [(a * 2654435761) & 0xFFFF_FFFF if a < end else 0 for a, _ in reads]
    assert errors == 1


def test_traffic_inside_the_windows_sees_the_bus_unchanged() -> None:
    rng = random.Random(SEED)
    bus = BusModel(rng, stall_prob=0.3)
    ram = amap.DMA_RAM_BASE
    bursts = []
    for _ in range(60):
        n = rng.randint(1, MAX_BURST)
        if rng.random() < 0.3:
            bursts.append((hostlink.HOST_WINDOW_BASE + 4 * rng.randrange(1 << 20), n, True))
        else:
            bursts.append((ram + 4 * rng.randrange(amap.DMA_RAM_SIZE // 4 - n), n, rng.random() < 0.5))
    reads, errors, _ = _run(bursts, bus, rng, check_transparent=True)
    assert errors == 0 and bus.stray_acks == 0


def test_random_bursts_anywhere_only_the_allowed_beats_land() -> None:
    rng = random.Random(SEED)
    print(f"seed {SEED} (SPLITNIC_SEED)")
    bus = _poisoned(rng, stall_prob=0.2)
    reference = dict(bus.words)
    places = [*TARGETS.values(), amap.DMA_RAM_BASE, amap.DMA_RAM_BASE + amap.DMA_RAM_SIZE - 32,
              hostlink.HOST_WINDOW_BASE + hostlink.HOST_WINDOW_SIZE - 32, hostlink.HOST_WINDOW_BASE]
    bursts = []
    for _ in range(80):
        n = rng.randint(1, MAX_BURST)
        bursts.append((rng.choice(places) + 4 * rng.randrange(-8, 8), n, rng.random() < 0.6))
    expected_reads = []
    for addr, n, write in bursts:
        for k in range(n):
            a = addr + 4 * k
            if write and _allowed(a, True):
                reference[a >> 2] = (a * 2654435761) & 0xFFFF_FFFF
            elif not write:
                expected_reads.append((a, reference.get(a >> 2, 0) if _allowed(a, False) else 0))
    reads, errors, refused = _run(bursts, bus, rng)
    assert all(_allowed(a, w) for a, w in bus.seen), [(hex(a), w) for a, w in bus.seen if not _allowed(a, w)][:4]
    assert bus.words == reference
    assert reads == expected_reads
    assert errors == refused > 0


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_windows_must_be_aligned_powers_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        DmaWindow(0x4000_0000, 3 * 1024)
    with pytest.raises(ValueError, match="multiple"):
        DmaWindow(0x4000_1000, 0x8000)
    with pytest.raises(ValueError, match="fit"):
        DmaFirewall([DmaWindow(0x1_0000_0000, 0x1000)])


# -- the whole NIC: rings and buffers pointed outside ------------------------------------------------

#: A small bus for the NIC test, laid out like the board's: the CPU's memory, NIC-local memory,
#: the host window (write only) and LiteX's CSRs, 64 KiB each.
SRAM, LOCAL, HOST, CSRS = 0x00000, 0x10000, 0x20000, 0x30000
NIC_WINDOWS = (DmaWindow(LOCAL, 0x10000), DmaWindow(HOST, 0x10000, read=False))
OWN_MAC = bytes.fromhex("020000000001")
RING_LOG2 = 4
QCTRL = CSR_MAP.array("RXQ").register("CTRL")
CTRL = CSR_MAP.register("CTRL")


def _nic_frames(rng: random.Random, count: int) -> list[bytes]:
    return [OWN_MAC + bytes.fromhex("020000000099") + b"\x08\x00" + rng.randbytes(rng.randint(46, 600))
            for _ in range(count)]


def _bursts(length: int) -> int:
    """Bus cycles the RX engine takes to write a frame of ``length`` bytes."""
    words = -(-length // 4)
    return -(-words // MAX_BURST)


def _run_nic(rx_desc: int, rx_buf: int, rx_cpl: int, tx_desc: int, frames: list[bytes],
             windows: tuple[DmaWindow, ...] | None = NIC_WINDOWS) -> dict:
    """Send ``frames`` in loopback through a NIC with ``windows``, its rings where the arguments say."""
    dut = Nic(size=NicSize(rx_queues=1, tx_queues=1, steer_entries=0, rx_fifo_words=1024, tx_buffer_words=1024),
              dma_windows=windows)
    mem = WishboneMemory(dut.dma, 0x40000, stall_prob=0.1, rng=random.Random(SEED))
    for region in (SRAM, CSRS):
        mem.write(region, POISON.to_bytes(4, "little") * (0x10000 // 4))
    tx_buf, tx_cpl = LOCAL + 0x8000, HOST + 0x100
    for i in range(1 << RING_LOG2):
        mem.write(rx_desc + 16 * i, DESCRIPTOR.pack(addr=rx_buf + 0x800 * i, length=0x800, cookie=i))
    before = {region: mem.read(region, 0x10000) for region in (SRAM, CSRS)}
    out: dict = {}
    csr = CsrDriver(dut.csr)

    async def tb(ctx):
        await csr.write(ctx, "MAC_ADDR_LO", int.from_bytes(OWN_MAC[:4], "little"))
        await csr.write(ctx, "MAC_ADDR_HI", int.from_bytes(OWN_MAC[4:], "little"))
        for array, desc, cpl in (("RXQ", rx_desc, rx_cpl), ("TXQ", tx_desc, tx_cpl)):
            await csr.write(ctx, f"{array}.DESC_LO", desc, 0)
            await csr.write(ctx, f"{array}.CPL_LO", cpl, 0)
            await csr.write(ctx, f"{array}.SIZE", RING_LOG2, 0)
            await csr.write(ctx, f"{array}.CTRL", QCTRL.pack(ENABLE=1), 0)
        await csr.write(ctx, "RXQ.TAIL", (1 << RING_LOG2) - 1, 0)
        await csr.write(ctx, "CTRL", CTRL.pack(RX_EN=1, TX_EN=1, LOOPBACK=1))
        for i, f in enumerate(frames):
            mem.write(tx_buf + 0x800 * i, f)
            if tx_desc >= LOCAL:      # the test can place a descriptor only where it has memory
                mem.write(tx_desc + 16 * i, DESCRIPTOR.pack(addr=tx_buf + 0x800 * i, length=len(f), cookie=i))
        await csr.write(ctx, "TXQ.TAIL", len(frames), 0)
        for _ in range(400):
            if await csr.read(ctx, "TXQ.CPL", 0) == len(frames):
                break
            await ctx.tick().repeat(100)
        await ctx.tick().repeat(3000)          # the last frame's way back through RX
        out["tx_cpl"] = await csr.read(ctx, "TXQ.CPL", 0)
        out["rx_cpl"] = await csr.read(ctx, "RXQ.CPL", 0)
        out["dma_err"] = await csr.read(ctx, "STAT_DMA_ERR")
        await csr.write(ctx, "CTRL", CTRL.pack(RESET=1))
        out["dma_err_after_reset"] = await csr.read(ctx, "STAT_DMA_ERR")

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(mem.serve, background=True)
    sim.add_testbench(tb)
    sim.run()
    assert not mem.errors, mem.errors
    out["untouched"] = all(mem.read(region, 0x10000) == before[region] for region in (SRAM, CSRS))
    out["mem"] = mem
    return out


def test_rx_buffers_in_the_cpus_memory_are_counted_and_written_nowhere() -> None:
    frames = _nic_frames(random.Random(SEED), 6)
    out = _run_nic(rx_desc=LOCAL, rx_buf=SRAM + 0x1000, rx_cpl=HOST, tx_desc=LOCAL + 0x400, frames=frames)
    assert out["untouched"], "the NIC's DMA wrote into the CPU's memory or the CSRs"
    # Every frame is sent, and received (its completion is in the host window): the queue carries on.
    assert out["tx_cpl"] == out["rx_cpl"] == len(frames)
    assert out["dma_err"] == sum(_bursts(len(f)) for f in frames)
    assert out["dma_err_after_reset"] == 0


def test_rings_outside_are_counted_and_written_nowhere() -> None:
    frames = _nic_frames(random.Random(SEED + 1), 4)
    # The RX descriptor ring in the CSRs: each read is refused (zeros: a buffer of 0 bytes, nothing
    # written) and its completion ring in the CPU's memory: refused too.
    out = _run_nic(rx_desc=CSRS + 0x40, rx_buf=HOST + 0x1000, rx_cpl=SRAM + 0x40, tx_desc=LOCAL + 0x400, frames=frames)
    assert out["untouched"]
    assert out["tx_cpl"] == out["rx_cpl"] == len(frames)
    assert out["dma_err"] == 2 * len(frames)
    # The TX descriptor ring in the host window, which the NIC may only write: each descriptor
    # reads as zeros, a LEN_ERROR completion, nothing sent.
    out = _run_nic(rx_desc=LOCAL, rx_buf=HOST + 0x1000, rx_cpl=HOST, tx_desc=HOST + 0x400, frames=frames)
    assert out["untouched"] and out["tx_cpl"] == len(frames) and out["rx_cpl"] == 0
    assert out["dma_err"] == len(frames)
    for i in range(len(frames)):
        c = COMPLETION.unpack(out["mem"].read(HOST + 0x100 + COMPLETION.size * i, COMPLETION.size))
        assert c["status"] == COMPLETION.member("status").bit("LEN_ERROR").mask, c


def test_a_nic_without_windows_reaches_everywhere_and_counts_nothing() -> None:
    # The simulations' NIC (no firewall): the same misplaced buffers land, STAT_DMA_ERR stays 0.
    frames = _nic_frames(random.Random(SEED), 2)
    out = _run_nic(rx_desc=LOCAL, rx_buf=SRAM + 0x1000, rx_cpl=HOST, tx_desc=LOCAL + 0x400, frames=frames,
                   windows=None)
    assert not out["untouched"] and out["dma_err"] == 0
