"""The DMA firewall: the NIC's DMA master reaches only the windows it is given.

Ref: Wishbone B4 (OpenCores) §3.2 (classic cycles), §4.3 (incrementing bursts);
docs/registers.md, STAT_DMA_ERR (generated from splitnic_spec.nic).

The DMA engines take ring and buffer addresses from registers and descriptors,
that is from whoever can write the NIC's register window or its rings.  On the
board their master port is on the SoC's whole bus, beside the management CPU's
SRAM and LiteX's CSRs (the PHYs, the SPI flash).  This block sits on that port
and lets a beat through only when its address is inside one of ``windows``
with the access it asks for (a window may be write-only: the host window, which
the NIC never reads).  A beat outside never reaches the bus: the firewall acks
it itself, a write goes nowhere and a read returns 0, and the engine carries on
(its frame or completion is lost, the queue does not wedge).  ``error`` strobes
once per bus cycle (CYC high; one burst of the engines) that had a beat refused,
for the NIC's STAT_DMA_ERR counter.

Cost (why it is this shape): each window is naturally aligned and a power of
two, so "inside" is an equality on the address's high bits, one or two LUT
levels beside the SoC decoder's own comparators.  The bus signals other than
CYC/STB pass straight through; the refusal's ack is a flip-flop, so a refused
beat takes two cycles, and only ``ack`` and the ``dat_r`` zeroing sit behind the
compare and that flip-flop.  In-window beats keep the bus's own timing, bursts
and wait states untouched.  Measured with yosys ``synth_ecp5 -abc9`` and the
board's windows: the firewall alone is 61 LUT4 and 2 flip-flops (32 of the
LUTs zero ``dat_r``), its paths two LUT levels deep; the board's NIC goes from
6 090 to 6 204 LUT4 with it and STAT_DMA_ERR's counter.

A burst that runs out of its window is cut where it leaves: the beats inside go
to the bus, the downstream cycle ends (CYC drops) at the first beat outside, and
the rest are refused here.  A burst-capable slave may have acked the next beat
ahead (LiteX's SRAM acks every cycle of an incrementing burst); that ack is for
a beat the bus never saw, so ``ack`` comes from the bus only for a beat inside.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from collections.abc import Iterable
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..bus import WishboneSignature

__all__ = ["DmaWindow", "DmaFirewall"]


@dataclass(frozen=True)
class DmaWindow:
    """``size`` bytes at byte address ``base`` the DMA engines may ``read`` and/or ``write``.

    ``size`` is a power of two of at least one 32-bit word and ``base`` a
    multiple of it, so that the check is a compare of the address's high bits.
    """
    base: int
    size: int
    read: bool = True
    write: bool = True

    def __post_init__(self) -> None:
        if self.size < 4 or self.size & (self.size - 1):
            raise ValueError(f"DMA window size must be a power of two >= 4 bytes, not {self.size:#x}")
        if self.base < 0 or self.base % self.size:
            raise ValueError(f"DMA window base {self.base:#x} is not a multiple of its size {self.size:#x}")
        if not (self.read or self.write):
            raise ValueError(f"DMA window at {self.base:#x} allows neither reads nor writes")

    def contains(self, byte_addr: int, write: bool) -> bool:
        """Whether an access of the word at ``byte_addr`` (a write if ``write``) is allowed here."""
        return self.base <= byte_addr < self.base + self.size and (self.write if write else self.read)


class DmaFirewall(wiring.Component):
    """Between the DMA engines (``dma``) and the bus (``bus``): only beats inside ``windows`` pass.

    ``error`` is a one-cycle strobe per bus cycle with a refused beat.
    ``addr_width`` is the word-address width of both ports.
    """

    def __init__(self, windows: Iterable[DmaWindow], *, addr_width: int = 30) -> None:
        self.windows = tuple(windows)
        if not self.windows:
            raise ValueError("a DMA firewall needs at least one window")
        for w in self.windows:
            if not isinstance(w, DmaWindow):
                raise TypeError(f"windows must be DmaWindow, not {w!r}")
            if w.base + w.size > 4 << addr_width:
                raise ValueError(f"DMA window at {w.base:#x} does not fit a {addr_width}-bit word address")
        self._addr_width = addr_width
        sig = WishboneSignature(addr_width, burst=True)
        super().__init__({"dma": In(sig), "bus": Out(sig), "error": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        dma, bus = self.dma, self.bus

        # Inside a window: the word address's bits above the window's size equal its base's.
        hits = []
        for w in self.windows:
            low = (w.size // 4).bit_length() - 1           # word-address bits inside the window
            hit = dma.adr[low:] == (w.base >> 2) >> low if low < self._addr_width else Const(1)
            if not (w.read and w.write):
                hit = hit & (dma.we if w.write else ~dma.we)
            hits.append(hit)
        inside = Signal()
        m.d.comb += inside.eq(Cat(*hits).any())

        # Refused beats: acked here a cycle later, once each (the engine holds a beat until its ack).
        refused = Signal()          # the ack of a refused beat, this cycle
        counted = Signal()          # this bus cycle already strobed ``error``
        m.d.sync += [refused.eq(dma.cyc & dma.stb & ~inside & ~refused),
                     counted.eq(dma.cyc & (counted | refused))]
        m.d.comb += self.error.eq(refused & ~counted)

        for name in ("adr", "dat_w", "sel", "we", "cti", "bte"):
            m.d.comb += getattr(bus, name).eq(getattr(dma, name))
        m.d.comb += [bus.cyc.eq(dma.cyc & inside), bus.stb.eq(dma.stb & inside),
                     dma.ack.eq(Mux(inside, bus.ack, refused)),
                     # Zero, not what the bus shows: LiteX's decoder picks dat_r by address and memory
                     # ports read every cycle, so without CYC it still shows the word at a refused
                     # address (the CPU's SRAM, a TX buffer's worth of it, onto the wire).
                     dma.dat_r.eq(Mux(refused, 0, bus.dat_r))]
        return m
