"""Amaranth-simulator tests of the round-robin DMA arbiter: bursts are never split,
every master's transfers land where they should, and the grant rotates fairly."""

from __future__ import annotations

import os
import random

from amaranth.sim import Simulator

from splitnic_gateware.bus import CTI_END, CTI_INCR
from splitnic_gateware.dma.arbiter import WishboneArbiter
from splitnic_spec import constant

SEED = int(os.environ.get("SPLITNIC_SEED", "1"))


class _Master:
    """A burst writer/reader script for one arbiter port, stepped once per cycle."""

    def __init__(self, port, ident: int, bursts: int, rng: random.Random) -> None:
        self.port, self.ident, self.rng = port, ident, rng
        self.plan = [(ident * 0x1000 + b * 0x40, rng.randint(1, constant("MAX_BURST")), rng.random() < 0.5)
                     for b in range(bursts)]
        self.current: tuple | None = None
        self.beat = 0
        self.idle = 0
        self.read_back: list[tuple[int, int]] = []
        self.done = False

    def word(self, addr: int, k: int) -> int:
        return (self.ident << 28) | ((addr >> 2) + k)

    def step(self, ctx, acked: bool, data: int) -> None:
        p = self.port
        if self.current is not None and acked:
            addr, n, write = self.current
            if not write:
                self.read_back.append(((addr >> 2) + self.beat, data))
            self.beat += 1
            if self.beat == n:
                self.current = None
                # CYC drops for at least a cycle between bursts: holding it would lock the bus.
                self.idle = self.rng.randint(1, 3)
        if self.current is None:
            if self.idle or not self.plan:
                self.idle = max(0, self.idle - 1)
                self.done = not self.plan
                for s in (p.cyc, p.stb, p.we):
                    ctx.set(s, 0)
                return
            self.current, self.beat = self.plan.pop(0), 0
        addr, n, write = self.current
        ctx.set(p.cyc, 1)
        ctx.set(p.stb, 1)
        ctx.set(p.we, int(write))
        ctx.set(p.sel, 0xF)
        ctx.set(p.adr, (addr >> 2) + self.beat)
        ctx.set(p.dat_w, self.word(addr, self.beat))
        ctx.set(p.cti, CTI_END if self.beat == n - 1 else CTI_INCR)


def test_bursts_stay_whole_and_the_grant_rotates() -> None:
    rng = random.Random(SEED)
    n = 3
    dut = WishboneArbiter(n)
    masters = [_Master(p, i, 12, rng) for i, p in enumerate(dut.masters)]
    memory: dict[int, int] = {}
    errors: list[str] = []
    burst_owners: list[int] = []          # owner of each completed burst, in order
    passed_over = [0] * n                 # bursts given to others while this master waited
    worst_wait = [0] * n

    async def tb(ctx):
        acks = [0] * n
        data = 0
        owner = None                      # master whose burst is on the bus
        for cycle in range(4000):
            for m_, a in zip(masters, acks):
                m_.step(ctx, a, data)
            if all(m_.done for m_ in masters):
                break
            bus = dut.bus
            ack = 0
            if ctx.get(bus.cyc) and ctx.get(bus.stb) and rng.random() > 0.25:
                word = ctx.get(bus.adr)
                if ctx.get(bus.we):
                    memory[word] = ctx.get(bus.dat_w)
                else:
                    ctx.set(bus.dat_r, memory.get(word, word ^ 0x5A5A))
                ack = 1
            ctx.set(bus.ack, ack)
            acks = [ctx.get(m_.port.ack) for m_ in masters]
            if ack:
                granted = [i for i, a in enumerate(acks) if a]
                who = ctx.get(bus.adr) >> 10
                if granted != [who]:
                    errors.append(f"cycle {cycle}: ack went to {granted}, the address is master {who}'s")
                if owner is not None and owner != who:
                    errors.append(f"cycle {cycle}: master {who} cut into master {owner}'s burst")
                owner = who
                if ctx.get(bus.cti) == CTI_END:
                    burst_owners.append(who)
                    for i, m_ in enumerate(masters):
                        if i == who:
                            passed_over[i] = 0
                        elif ctx.get(m_.port.cyc):
                            passed_over[i] += 1
                            worst_wait[i] = max(worst_wait[i], passed_over[i])
                    owner = None
            data = ctx.get(bus.dat_r)
            await ctx.tick()
        else:
            raise AssertionError("masters did not finish")

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(tb)
    sim.run()
    assert not errors, errors[:5]
    for m_ in masters:
        assert m_.read_back, "every master read something"
        for word, value in m_.read_back:
            assert value == memory.get(word, word ^ 0x5A5A)
    assert len(burst_owners) == sum(12 for _ in masters)
    # Round robin: a waiting master sees at most one burst from each of the others.
    assert max(worst_wait) <= n - 1, worst_wait
    for word, value in memory.items():
        assert value >> 28 == word >> 10, f"word {word:#x} holds {value:#x}"
