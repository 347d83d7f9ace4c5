"""Amaranth-simulator tests of the register file: every register of the spec at its offset with
its reset value and access type, counters, strobes, the global reset, and interrupts."""

from __future__ import annotations

import os
import random

import pytest
from amaranth.sim import Simulator

from splitnic_gateware.csr import Csr
from splitnic_gateware.id_block import id_values
from splitnic_gateware.size import NicSize
from splitnic_spec import Access, CSR_MAP, NUM_RX_QUEUES, NUM_STEER_ENTRIES, NUM_TX_QUEUES

from .wishbone_model import CsrDriver

#: The whole register map built (the simulations build fewer queues: size.FULL).
WHOLE_MAP = NicSize(rx_queues=NUM_RX_QUEUES, tx_queues=NUM_TX_QUEUES)

SEED = int(os.environ.get("SPLITNIC_SEED", "1"))
IRQ = CSR_MAP.register("IRQ_STATUS")
CTRL = CSR_MAP.register("CTRL")
QCTRL = CSR_MAP.array("RXQ").register("CTRL")


def _writable(reg) -> int:
    return sum(f.mask for f in reg.fields if not f.strobe) if reg.fields else 0xFFFF_FFFF


def _run(dut, testbench) -> None:
    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()


async def _write_watching(ctx, bus, offset: int, value: int, signal, cycles: int = 6) -> list[int]:
    """Write one register and return ``signal``'s value in each of the next ``cycles`` cycles."""
    await ctx.tick()                  # let a previous cycle's ack drop
    ctx.set(bus.adr, offset >> 2)
    ctx.set(bus.dat_w, value)
    ctx.set(bus.sel, 0xF)
    ctx.set(bus.we, 1)
    ctx.set(bus.cyc, 1)
    ctx.set(bus.stb, 1)
    seen = []
    for _ in range(cycles):
        await ctx.tick()
        seen.append(ctx.get(signal))
        if ctx.get(bus.ack):
            ctx.set(bus.cyc, 0)
            ctx.set(bus.stb, 0)
    return seen


async def _raw_read(ctx, csr: CsrDriver, offset: int) -> int:
    return await csr._cycle(ctx, offset, False)


async def _raw_write(ctx, csr: CsrDriver, offset: int, value: int) -> None:
    await csr._cycle(ctx, offset, True, value)


def test_every_register_resets_and_keeps_its_access_type() -> None:
    rng = random.Random(SEED)
    dut = Csr(build_id=0xB0B, clock_hz=50_000_000, size=WHOLE_MAP)
    csr = CsrDriver(dut.bus)
    ids = id_values(0xB0B, 50_000_000, WHOLE_MAP)

    async def tb(ctx):
        for name, offset, reg in CSR_MAP.all_registers():
            value = await _raw_read(ctx, csr, offset)
            if name in ids:
                assert value == ids[name], name
            elif reg.access in (Access.RW,):
                assert value == reg.reset & _writable(reg), f"{name} resets to {value:#x}, spec {reg.reset:#x}"
            elif name != "CYCLES":
                assert value == 0, f"{name} reads {value:#x} after reset"
        for name, offset, reg in CSR_MAP.all_registers():
            if name in ("CTRL",) or reg.name == "CTRL" and name.startswith(("RXQ", "TXQ")):
                continue              # strobes: tested below
            before = await _raw_read(ctx, csr, offset)
            pattern = rng.getrandbits(32)
            await _raw_write(ctx, csr, offset, pattern)
            after = await _raw_read(ctx, csr, offset)
            if reg.access == Access.RW:
                assert after == pattern & _writable(reg), f"{name}: wrote {pattern:#x}, read {after:#x}"
            elif reg.access == Access.RO or (reg.access == Access.RC and name != "CYCLES"):
                assert after == before, f"{name} is read-only but changed to {after:#x}"
        c0 = await csr.read(ctx, "CYCLES")
        c1 = await csr.read(ctx, "CYCLES")
        assert 0 < c1 - c0 < 10
    _run(dut, tb)


def test_a_smaller_build_says_so_and_its_missing_registers_read_zero() -> None:
    size = NicSize(rx_queues=2, tx_queues=1, steer_entries=3)
    dut = Csr(size=size)
    csr = CsrDriver(dut.bus)
    features = CSR_MAP.register("ID_FEATURES")
    rxq, txq, steer = (CSR_MAP.array(n) for n in ("RXQ", "TXQ", "STEER"))

    async def tb(ctx):
        value = await csr.read(ctx, "ID_FEATURES")
        assert [features.field(f).get(value) for f in ("RX_QUEUES", "TX_QUEUES", "STEER_ENTRIES")] == [2, 1, 3]
        # The last instance of each array keeps what is written; the first missing one reads 0.
        for array, have in ((rxq, 2), (txq, 1), (steer, 3)):
            for index, kept in ((have - 1, True), (have, False)):
                name = "SIZE" if array is not steer else "L4_DPORT"
                offset = array.offset(index, name)
                await _raw_write(ctx, csr, offset, 7)
                assert await _raw_read(ctx, csr, offset) == (7 if kept else 0), f"{array.name}{index}_{name}"
        # Counters of a missing queue stay 0 too.
        assert await _raw_read(ctx, csr, rxq.offset(3, "PACKETS")) == 0
    _run(dut, tb)


def test_sizes_beyond_the_register_map_are_refused() -> None:
    with pytest.raises(ValueError, match=f"rx_queues must be 1..{NUM_RX_QUEUES}"):
        NicSize(rx_queues=NUM_RX_QUEUES + 1)
    with pytest.raises(ValueError, match="tx_queues"):
        NicSize(tx_queues=0)
    with pytest.raises(ValueError, match="power of two"):
        NicSize(rx_fifo_words=1000)


def test_byte_enables() -> None:
    dut = Csr(size=WHOLE_MAP)
    bus = dut.bus

    async def tb(ctx):
        offset = CSR_MAP.register("SCRATCH").offset
        csr = CsrDriver(bus)
        await csr.write(ctx, "SCRATCH", 0x11223344)
        ctx.set(bus.adr, offset >> 2)
        ctx.set(bus.dat_w, 0xAABBCCDD)
        ctx.set(bus.sel, 0b0100)
        ctx.set(bus.we, 1)
        ctx.set(bus.cyc, 1)
        ctx.set(bus.stb, 1)
        await ctx.tick()
        while not ctx.get(bus.ack):
            await ctx.tick()
        ctx.set(bus.cyc, 0)
        ctx.set(bus.stb, 0)
        assert await csr.read(ctx, "SCRATCH") == 0x11BB3344
    _run(dut, tb)


def test_counters_count_their_events() -> None:
    rng = random.Random(SEED)
    dut = Csr(size=WHOLE_MAP)
    csr = CsrDriver(dut.bus)
    expect: dict[str, int] = {}

    def bump(name: str, amount: int = 1) -> None:
        expect[name] = expect.get(name, 0) + amount

    async def tb(ctx):
        for _ in range(40):
            length = rng.randrange(14, 1515)
            kind = rng.randrange(6)
            if kind == 0:
                ctx.set(dut.rx_events.ok, 1)
                ctx.set(dut.rx_events.length, length)
                bump("STAT_RX_OK")
                bump("STAT_RX_OK_BYTES", length)
            elif kind == 1:
                which = rng.choice(["fcs_err", "runt", "oversize", "filtered"])
                ctx.set(getattr(dut.rx_events, which), 1)
                bump({"fcs_err": "STAT_RX_FCS_ERR", "runt": "STAT_RX_RUNT", "oversize": "STAT_RX_OVERSIZE",
                      "filtered": "STAT_RX_FILTERED"}[which])
            elif kind == 2:
                ctx.set(dut.tx_events.ok, 1)
                ctx.set(dut.tx_events.length, length)
                bump("STAT_TX_OK")
                bump("STAT_TX_OK_BYTES", length)
            elif kind == 3:
                q = rng.randrange(NUM_RX_QUEUES)
                ev = dut.rxq_events[q]
                if rng.random() < 0.5:
                    ctx.set(ev.packet, 1)
                    ctx.set(ev.length, length)
                    bump(f"RXQ{q}_PACKETS")
                    bump(f"RXQ{q}_BYTES", length)
                else:
                    ctx.set(ev.drop, 1)
                    bump(f"RXQ{q}_DROPS")
            elif kind == 4:
                q = rng.randrange(NUM_TX_QUEUES)
                ctx.set(dut.txq_events[q].packet, 1)
                ctx.set(dut.txq_events[q].length, length)
                ctx.set(dut.txq_events[q].drop, 1)
                bump(f"TXQ{q}_PACKETS")
                bump(f"TXQ{q}_BYTES", length)
                bump(f"TXQ{q}_DROPS")
            else:
                rule = rng.choice([rng.randrange(NUM_STEER_ENTRIES), 0xFF])
                ctx.set(dut.steer_hit, 1)
                ctx.set(dut.steer_rule, rule)
                ctx.set(dut.rx_fifo_drop, 1)
                bump("STAT_RX_FIFO_DROP")
                if rule != 0xFF:
                    bump(f"STEER{rule}_HITS")
            await ctx.tick()
            for port in (dut.rx_events, dut.tx_events, dut.rxq_events, dut.txq_events, dut.steer_hit,
                         dut.rx_fifo_drop):
                ctx.set(port.as_value() if hasattr(port, "as_value") else port, 0)
        for name, offset, reg in CSR_MAP.all_registers():
            if reg.access == Access.RC and name != "CYCLES":
                assert await _raw_read(ctx, csr, offset) == expect.get(name, 0), name
        # The global reset clears every counter.
        await csr.write(ctx, "CTRL", CTRL.pack(RESET=1, RX_EN=1))
        for name, offset, reg in CSR_MAP.all_registers():
            if reg.access == Access.RC and name != "CYCLES":
                assert await _raw_read(ctx, csr, offset) == 0, name
        assert await csr.read(ctx, "CTRL") == CTRL.pack(RX_EN=1)
    _run(dut, tb)


def test_counters_are_exact_when_read_and_cleared_amid_events_every_cycle() -> None:
    """The counters live in a block RAM with narrow pending counts (counter_ram): with every
    source firing each cycle at the largest amounts, reads jumping the flusher's turn back to
    back, and global resets between, each read must give exactly the events before it."""
    rng = random.Random(SEED)
    dut = Csr(size=WHOLE_MAP)
    bus = dut.bus
    names = [name for name, _, reg in CSR_MAP.all_registers() if reg.access == Access.RC and name != "CYCLES"]
    offsets = {name: offset for name, offset, _ in CSR_MAP.all_registers()}
    largest = (1 << len(dut.rx_events.length)) - 1

    def fire(ctx) -> dict[str, int]:
        """Set every event input at random for one cycle; return what each counter gains."""
        gain: dict[str, int] = {}

        def maybe(port, *counters, length_port=None) -> None:
            if rng.random() < 0.7:
                ctx.set(port, 1)
                length = rng.choice([largest, rng.randrange(largest + 1)])
                if length_port is not None:
                    ctx.set(length_port, length)
                for name in counters:
                    gain[name] = gain.get(name, 0) + (length if name.endswith("BYTES") else 1)
            else:
                ctx.set(port, 0)

        rx, tx = dut.rx_events, dut.tx_events
        maybe(rx.ok, "STAT_RX_OK", "STAT_RX_OK_BYTES", length_port=rx.length)
        for port, name in ((rx.fcs_err, "STAT_RX_FCS_ERR"), (rx.runt, "STAT_RX_RUNT"),
                           (rx.oversize, "STAT_RX_OVERSIZE"), (rx.filtered, "STAT_RX_FILTERED"),
                           (dut.rx_fifo_drop, "STAT_RX_FIFO_DROP")):
            maybe(port, name)
        maybe(tx.ok, "STAT_TX_OK", "STAT_TX_OK_BYTES", length_port=tx.length)
        for array, events, count in (("RXQ", dut.rxq_events, NUM_RX_QUEUES), ("TXQ", dut.txq_events, NUM_TX_QUEUES)):
            for q in range(count):
                maybe(events[q].packet, f"{array}{q}_PACKETS", f"{array}{q}_BYTES", length_port=events[q].length)
                maybe(events[q].drop, f"{array}{q}_DROPS")
        rule = rng.randrange(NUM_STEER_ENTRIES)
        ctx.set(dut.steer_rule, rule)
        maybe(dut.steer_hit, f"STEER{rule}_HITS")
        return gain

    async def tb(ctx):
        model = dict.fromkeys(names, 0)
        reading = None                  # (name, the count when the read went out)
        writing_reset = False
        cleared_next = False            # the reset's own cycle: its events are lost
        reads = resets = 0
        for cycle in range(4000):
            gain = fire(ctx)
            if reading is None and not writing_reset and not ctx.get(bus.ack):
                if cycle > 100 and rng.random() < 0.01:
                    ctx.set(bus.adr, CTRL.offset >> 2)
                    ctx.set(bus.dat_w, CTRL.pack(RESET=1))
                    ctx.set(bus.sel, 0xF)
                    ctx.set(bus.we, 1)
                    writing_reset = True
                elif cycle > 100 or rng.random() < 0.2:    # first let the pending counts fill
                    name = rng.choice(names)
                    ctx.set(bus.adr, offsets[name] >> 2)
                    ctx.set(bus.we, 0)
                    reading = (name, model[name])
                ctx.set(bus.cyc, int(writing_reset or reading is not None))
                ctx.set(bus.stb, int(writing_reset or reading is not None))
            await ctx.tick()
            if not cleared_next:
                for name, amount in gain.items():
                    model[name] = (model[name] + amount) & 0xFFFF_FFFF
            cleared_next = False
            if ctx.get(bus.ack):
                ctx.set(bus.cyc, 0)
                ctx.set(bus.stb, 0)
                if reading is not None:
                    name, expected = reading
                    assert ctx.get(bus.dat_r) == expected, f"cycle {cycle}: {name} read {ctx.get(bus.dat_r)}, " \
                                                          f"expected {expected}"
                    reading = None
                    reads += 1
                else:
                    writing_reset = False
                    model = dict.fromkeys(names, 0)
                    cleared_next = True
                    resets += 1
        assert reads > 1000 and resets > 5, (reads, resets)
    _run(dut, tb)


def test_configuration_outputs_and_resets() -> None:
    dut = Csr(size=WHOLE_MAP)
    csr = CsrDriver(dut.bus)
    steer_ctrl = CSR_MAP.array("STEER").register("CTRL")

    async def tb(ctx):
        await csr.write(ctx, "CTRL", CTRL.pack(RX_EN=1, TX_EN=1, LOOPBACK=1, JUMBO=1, BROADCAST=0, PROMISC=1))
        await csr.write(ctx, "MAC_ADDR_LO", 0x44332211)
        await csr.write(ctx, "MAC_ADDR_HI", 0x6655)
        await csr.write(ctx, "MAX_FRAME", 9018)
        cfg = dut.mac_config
        assert (ctx.get(cfg.rx_en), ctx.get(cfg.tx_en), ctx.get(cfg.jumbo), ctx.get(cfg.promisc),
                ctx.get(cfg.broadcast), ctx.get(dut.loopback)) == (1, 1, 1, 1, 0, 1)
        assert ctx.get(cfg.mac_addr) == 0x665544332211 and ctx.get(cfg.max_len) == 9018
        await csr.write(ctx, "STEER.DMAC_LO", 0xDDCCBBAA, 5)
        await csr.write(ctx, "STEER.DMAC_HI", 0xFFEE, 5)
        await csr.write(ctx, "STEER.L4_DPORT", 4789, 5)
        await csr.write(ctx, "STEER.CTRL", steer_ctrl.pack(ENABLE=1, MATCH_L4_DPORT=1, QUEUE=2), 5)
        e = dut.steer[5]
        assert (ctx.get(e.enable), ctx.get(e.match_l4_dport), ctx.get(e.match_dmac), ctx.get(e.queue),
                ctx.get(e.l4_dport), ctx.get(e.dmac)) == (1, 1, 0, 2, 4789, 0xFFEEDDCCBBAA)
        for array, out, resets in (("RXQ", dut.rxq, dut.rxq_reset), ("TXQ", dut.txq, dut.txq_reset)):
            q = 1
            await csr.write(ctx, f"{array}.DESC_LO", 0x1000_0040, q)
            await csr.write(ctx, f"{array}.CPL_LO", 0x1000_0080, q)
            await csr.write(ctx, f"{array}.SIZE", 7, q)
            await csr.write(ctx, f"{array}.TAIL", 0x1234, q)
            await csr.write(ctx, f"{array}.CTRL", QCTRL.pack(ENABLE=1), q)
            c = out[q]
            assert (ctx.get(c.enable), ctx.get(c.desc_base), ctx.get(c.cpl_base), ctx.get(c.log2),
                    ctx.get(c.tail)) == (1, 0x1000_0040, 0x1000_0080, 7, 0x1234)
            # The queue's own reset: a one-cycle strobe, TAIL back to 0, ENABLE kept.
            pulses = await _write_watching(ctx, dut.bus, CSR_MAP.array(array).offset(q, "CTRL"),
                                           QCTRL.pack(ENABLE=1, RESET=1), resets)
            assert pulses.count(1 << q) == 1 and pulses.count(0) == 5, pulses
            assert ctx.get(c.tail) == 0 and ctx.get(c.enable) == 1
            assert await csr.read(ctx, f"{array}.CTRL", q) == QCTRL.pack(ENABLE=1)
        # Global reset: every queue strobes, queue and steering registers return to reset values,
        # MAC settings stay.
        await csr.write(ctx, "CTRL", CTRL.pack(RESET=1, RX_EN=1))
        await ctx.tick()
        assert ctx.get(dut.rxq[1].enable) == 0 and ctx.get(dut.rxq[1].desc_base) == 0
        assert ctx.get(dut.steer[5].enable) == 0 and ctx.get(dut.steer[5].l4_dport) == 0
        assert ctx.get(cfg.mac_addr) == 0x665544332211 and ctx.get(cfg.max_len) == 9018
        assert await csr.read(ctx, "RXQ.SIZE", 1) == CSR_MAP.array("RXQ").register("SIZE").reset
    _run(dut, tb)


def test_global_reset_pulses_every_queue_reset() -> None:
    dut = Csr(size=WHOLE_MAP)
    csr = CsrDriver(dut.bus)

    async def tb(ctx):
        both = dut.rxq_reset | (dut.txq_reset << NUM_RX_QUEUES)
        seen = await _write_watching(ctx, dut.bus, CTRL.offset, CTRL.pack(RESET=1), both)
        assert seen.count((1 << (NUM_RX_QUEUES + NUM_TX_QUEUES)) - 1) == 1 and seen.count(0) == len(seen) - 1
        assert await csr.read(ctx, "CTRL") == 0
    _run(dut, tb)


def test_interrupts_status_mask_and_coalescing() -> None:
    dut = Csr(size=WHOLE_MAP)
    csr = CsrDriver(dut.bus)
    rx_bit = IRQ.field("RX").lsb
    tx_bit = IRQ.field("TX").lsb
    link_bit = IRQ.field("LINK").lsb
    holdoff = 200

    async def tb(ctx):
        async def completion(events, q):
            ctx.set(events[q].completion, 1)
            await ctx.tick()
            ctx.set(events[q].completion, 0)
            await ctx.tick()

        await completion(dut.rxq_events, 2)
        await completion(dut.txq_events, 1)
        assert await csr.read(ctx, "IRQ_STATUS") == (1 << (rx_bit + 2)) | (1 << (tx_bit + 1))
        assert ctx.get(dut.irq) == 0, "masked"
        await csr.write(ctx, "IRQ_MASK", 1 << (tx_bit + 1))
        await ctx.tick()
        assert ctx.get(dut.irq) == 1
        await csr.write(ctx, "IRQ_STATUS", 1 << (tx_bit + 1))      # write 1 to clear
        await ctx.tick()
        assert ctx.get(dut.irq) == 0
        assert await csr.read(ctx, "IRQ_STATUS") == 1 << (rx_bit + 2)
        # LINK changes are a cause too.
        await csr.write(ctx, "LINK", 0b1101)
        await ctx.tick()
        assert await csr.read(ctx, "IRQ_STATUS") >> link_bit & 1
        await csr.write(ctx, "IRQ_STATUS", 0xFFFF_FFFF)
        assert await csr.read(ctx, "IRQ_STATUS") == 0
        # Coalescing: after a rise, the line stays low for `holdoff` cycles however many completions come.
        await csr.write(ctx, "IRQ_COALESCE", holdoff)
        await csr.write(ctx, "IRQ_MASK", 1 << rx_bit)
        await completion(dut.rxq_events, 0)
        await ctx.tick()
        assert ctx.get(dut.irq) == 1
        await csr.write(ctx, "IRQ_STATUS", 1 << rx_bit)
        await ctx.tick()
        assert ctx.get(dut.irq) == 0
        await completion(dut.rxq_events, 0)
        rose_after = None
        for cycle in range(2 * holdoff):
            await ctx.tick()
            if ctx.get(dut.irq):
                rose_after = cycle
                break
        assert rose_after is not None and holdoff - 20 < rose_after < holdoff, rose_after
        # The global reset clears status and the line.
        await csr.write(ctx, "CTRL", CTRL.pack(RESET=1))
        await ctx.tick()
        assert ctx.get(dut.irq) == 0 and await csr.read(ctx, "IRQ_STATUS") == 0
        assert await csr.read(ctx, "IRQ_MASK") == 0
    _run(dut, tb)
