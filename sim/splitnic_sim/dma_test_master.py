"""A Wishbone DMA master with flat command ports, to test simulated host memory (WishboneDmaTarget).

Ref: docs/simulation.md, "DMA memory"; Wishbone B4 §4.3 (incrementing bursts).

A test pulses ``go`` with an address, a word count, a direction and byte
enables; the master runs that many beats, either as one incrementing burst
(CTI_INCR .. CTI_END) or as separate classic cycles with an idle cycle between
them.  Write data is ``wdata + i * WDATA_STEP`` for beat i; read data comes out
one beat per ``rd_valid`` pulse.  All bus outputs are registers (never
combinational on ack), like the NIC's own DMA master.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from splitnic_gateware.bus import CTI_CLASSIC, CTI_END, CTI_INCR, WishboneSignature

__all__ = ["DmaTestMaster", "WDATA_STEP"]

WDATA_STEP = 0x01030507


class DmaTestMaster(wiring.Component):
    dma: Out(WishboneSignature(30, burst=True))
    go: In(1)
    we: In(1)
    adr: In(30)
    count: In(9)
    sel: In(4)
    wdata: In(32)
    classic: In(1)
    busy: Out(1)
    rd_valid: Out(1)
    rd_data: Out(32)

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.dma
        left = Signal(9)
        classic = Signal()
        beat = bus.cyc & bus.stb & bus.ack
        m.d.sync += [self.rd_valid.eq(beat & ~bus.we), self.rd_data.eq(bus.dat_r)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.go & (self.count != 0)):
                    m.d.sync += [bus.adr.eq(self.adr), bus.we.eq(self.we), bus.sel.eq(self.sel),
                                 bus.dat_w.eq(self.wdata), left.eq(self.count), classic.eq(self.classic),
                                 bus.cyc.eq(1), bus.stb.eq(1), self.busy.eq(1)]
                    with m.If(self.classic):
                        m.d.sync += bus.cti.eq(CTI_CLASSIC)
                    with m.Elif(self.count == 1):
                        m.d.sync += bus.cti.eq(CTI_END)
                    with m.Else():
                        m.d.sync += bus.cti.eq(CTI_INCR)
                    m.next = "ACTIVE"
            with m.State("ACTIVE"):
                with m.If(bus.ack):
                    m.d.sync += [bus.adr.eq(bus.adr + 1), bus.dat_w.eq(bus.dat_w + WDATA_STEP),
                                 left.eq(left - 1)]
                    with m.If(left == 1):
                        m.d.sync += [bus.cyc.eq(0), bus.stb.eq(0), self.busy.eq(0)]
                        m.next = "IDLE"
                    with m.Elif(classic):
                        m.d.sync += [bus.cyc.eq(0), bus.stb.eq(0)]
                        m.next = "GAP"
                    with m.Elif(left == 2):
                        m.d.sync += bus.cti.eq(CTI_END)
            with m.State("GAP"):
                m.d.sync += [bus.cyc.eq(1), bus.stb.eq(1)]
                m.next = "ACTIVE"
        return m
