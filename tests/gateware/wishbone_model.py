"""Plain-Python models of the NIC's bus partners for Amaranth-simulator testbenches.

* :class:`WishboneMemory`: a DMA target (host memory) serving a burst-capable
  Wishbone master, with random stalls, that checks the master keeps the
  bus rules (bursts of at most MAX_BURST words ending with CTI_END, BTE 0).
* :class:`CsrDriver`: a classic Wishbone initiator for the CSR slave, the way
  a driver uses it (by register name, through the spec).
"""

from __future__ import annotations

import random

from splitnic_gateware.bus import CTI_CLASSIC, CTI_END, CTI_INCR
from splitnic_spec import CSR_MAP, constant


class WishboneMemory:
    """A byte-addressed memory of ``size`` bytes at device address ``base`` on ``bus``.

    Add :meth:`serve` as a background testbench.  Acknowledges in the cycle the
    strobe is seen (zero wait states) unless a random stall hits.
    """

    def __init__(self, bus, size: int, *, base: int = 0, stall_prob: float = 0.0,
                 rng: random.Random | None = None) -> None:
        self.bus, self.base, self.mem = bus, base, bytearray(size)
        self.stall_prob = stall_prob
        self.rng = rng or random.Random(1)
        self.errors: list[str] = []
        self.reads = self.writes = 0
        self.busy_cycles = 0

    def word_addr(self, byte_addr: int) -> int:
        return byte_addr >> 2

    def __getitem__(self, item):
        if isinstance(item, slice):
            return self.mem[item.start - self.base:item.stop - self.base]
        return self.mem[item - self.base]

    def write(self, addr: int, data: bytes) -> None:
        self.mem[addr - self.base:addr - self.base + len(data)] = data

    def read(self, addr: int, length: int) -> bytes:
        return bytes(self.mem[addr - self.base:addr - self.base + length])

    async def serve(self, ctx) -> None:
        bus = self.bus
        has_cti = hasattr(bus, "cti")
        beats = 0
        while True:
            await ctx.tick()
            cyc, stb = ctx.get(bus.cyc), ctx.get(bus.stb)
            if not cyc:
                beats = 0
            if not (cyc and stb) or self.rng.random() < self.stall_prob:
                ctx.set(bus.ack, 0)
                continue
            self.busy_cycles += 1
            offset = (ctx.get(bus.adr) << 2) - self.base
            if not 0 <= offset <= len(self.mem) - 4:
                self.errors.append(f"access at {offset + self.base:#x} outside memory")
                ctx.set(bus.ack, 1)
                continue
            if has_cti:
                cti, bte = ctx.get(bus.cti), ctx.get(bus.bte)
                if cti not in (CTI_CLASSIC, CTI_INCR, CTI_END) or bte != 0:
                    self.errors.append(f"cti {cti} bte {bte}")
                beats += 1
                if beats > constant("MAX_BURST"):
                    self.errors.append(f"burst longer than MAX_BURST at {offset + self.base:#x}")
                if cti in (CTI_END, CTI_CLASSIC):
                    beats = 0
            if ctx.get(bus.we):
                sel, value = ctx.get(bus.sel), ctx.get(bus.dat_w)
                for i in range(4):
                    if sel >> i & 1:
                        self.mem[offset + i] = value >> (8 * i) & 0xFF
                self.writes += 1
            else:
                ctx.set(bus.dat_r, int.from_bytes(self.mem[offset:offset + 4], "little"))
                self.reads += 1
            ctx.set(bus.ack, 1)


def reg_offset(name: str, index: int | None = None) -> int:
    """Byte offset of a single register (``"CTRL"``) or an array register (``"RXQ", q, "TAIL"``)."""
    if index is None:
        return CSR_MAP.register(name).offset
    array, reg = name.split(".")
    return CSR_MAP.array(array).offset(index, reg)


class CsrDriver:
    """Classic single Wishbone cycles on the CSR slave ``bus``."""

    def __init__(self, bus) -> None:
        self.bus = bus

    async def _cycle(self, ctx, offset: int, write: bool, value: int = 0) -> int:
        bus = self.bus
        ctx.set(bus.adr, offset >> 2)
        ctx.set(bus.we, int(write))
        ctx.set(bus.dat_w, value)
        ctx.set(bus.sel, 0xF)
        ctx.set(bus.cyc, 1)
        ctx.set(bus.stb, 1)
        for _ in range(100):
            await ctx.tick()
            if ctx.get(bus.ack):
                data = ctx.get(bus.dat_r)
                break
        else:
            raise AssertionError(f"no ack from the CSR slave at {offset:#x}")
        ctx.set(bus.cyc, 0)
        ctx.set(bus.stb, 0)
        ctx.set(bus.we, 0)
        return data

    async def read(self, ctx, name: str, index: int | None = None) -> int:
        return await self._cycle(ctx, reg_offset(name, index), False)

    async def write(self, ctx, name: str, value: int, index: int | None = None) -> None:
        await self._cycle(ctx, reg_offset(name, index), True, value)
