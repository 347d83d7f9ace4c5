"""MAC transmit path: frames in, GMII out.

Ref: IEEE Std 802.3-2018 §35.2.2 (GMII transmit), §3.2 (preamble, SFD, pad,
FCS), §4.4.2 (interframe gap: 96 bit times = 12 byte times at 1 Gb/s).

One byte leaves per cycle.  The host side offers a frame only once it holds
all of it, so DATA never waits; should a byte still be missing, the frame is
poisoned with TX_ER rather than sent short.  The GMII outputs are registered.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from splitnic_spec import constant

from ..interfaces import LEN_BITS, MacConfig, TxEvents, tx_stream
from .crc import CRC_INIT, crc32_next

__all__ = ["MacTx", "IFG_BYTES", "PREAMBLE_BYTES"]

PREAMBLE_BYTES = 7
IFG_BYTES = 12
_MIN_FRAME = constant("MIN_FRAME")


class MacTx(wiring.Component):
    """GMII transmitter: preamble, SFD, data, padding to MIN_FRAME, FCS, interframe gap."""

    frames: In(tx_stream())
    config: In(MacConfig)
    gmii_tx_d: Out(8)
    gmii_tx_en: Out(1)
    gmii_tx_er: Out(1)
    events: Out(TxEvents)

    def elaborate(self, platform) -> Module:
        m = Module()
        d, en, er = Signal(8), Signal(), Signal()
        m.d.sync += [self.gmii_tx_d.eq(d), self.gmii_tx_en.eq(en), self.gmii_tx_er.eq(er)]
        m.d.sync += self.events.eq(0)

        count = Signal(LEN_BITS)       # data bytes sent (padding excluded)
        sent = Signal(LEN_BITS)        # bytes after the SFD, padding included
        crc = Signal(32)
        step = Signal(4)               # position inside preamble / FCS / gap

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.frames.valid & self.config.tx_en):
                    m.d.sync += step.eq(0)
                    m.next = "PREAMBLE"
            with m.State("PREAMBLE"):
                m.d.comb += [d.eq(0x55), en.eq(1)]
                m.d.sync += step.eq(step + 1)
                with m.If(step == PREAMBLE_BYTES - 1):
                    m.next = "SFD"
            with m.State("SFD"):
                m.d.comb += [d.eq(0xD5), en.eq(1)]
                m.d.sync += [crc.eq(CRC_INIT), count.eq(0), sent.eq(0)]
                m.next = "DATA"
            with m.State("DATA"):
                byte = self.frames.payload.data
                m.d.comb += [d.eq(byte), en.eq(1), er.eq(~self.frames.valid), self.frames.ready.eq(1)]
                m.d.sync += [crc.eq(crc32_next(crc, byte)), sent.eq(sent + 1)]
                with m.If(self.frames.valid):
                    m.d.sync += count.eq(count + 1)
                with m.If(~self.frames.valid | self.frames.payload.last):
                    with m.If(sent + 1 < _MIN_FRAME):
                        m.next = "PAD"
                    with m.Else():
                        m.d.sync += step.eq(0)
                        m.next = "FCS"
            with m.State("PAD"):
                m.d.comb += [d.eq(0), en.eq(1)]
                m.d.sync += [crc.eq(crc32_next(crc, 0)), sent.eq(sent + 1), step.eq(0)]
                with m.If(sent + 1 == _MIN_FRAME):
                    m.next = "FCS"
            with m.State("FCS"):
                # The FCS is the complemented register, least significant byte first.
                fcs = ~crc
                m.d.comb += [d.eq(fcs.word_select(step[0:2], 8)), en.eq(1)]
                m.d.sync += step.eq(step + 1)
                with m.If(step == 3):
                    m.d.sync += [self.events.ok.eq(1), self.events.length.eq(count), step.eq(0)]
                    m.next = "GAP"
            with m.State("GAP"):
                m.d.sync += step.eq(step + 1)
                with m.If(step == IFG_BYTES - 1):
                    with m.If(self.frames.valid & self.config.tx_en):
                        m.d.sync += step.eq(0)
                        m.next = "PREAMBLE"
                    with m.Else():
                        m.next = "IDLE"
        return m
