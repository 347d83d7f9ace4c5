"""MAC receive path: GMII in, frames with a verdict out.

Ref: IEEE Std 802.3-2018 §35.2.2 (GMII receive), §3.2 (frame format),
§4.2.4.2.2 (FCS check, minimum and maximum frame sizes).

Bytes leave through a five-byte delay line: four bytes so the FCS is never
emitted, and one more so the last data byte is still held when RX_DV falls
and can be marked ``last`` together with the frame's :class:`RxMeta`.  The
output is never back-pressured (the wire cannot wait); the host side commits
or discards the frame on its last byte.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from splitnic_spec import COMPLETION, NUM_STEER_ENTRIES, constant

from ..interfaces import LEN_BITS, MacConfig, RxEvents, rx_stream, steer_table
from .crc import CRC_INIT, CRC_RESIDUE, crc32_next
from .steering import HeaderParser, SteeringMatch

__all__ = ["MacRx", "address_accepted"]

_PREAMBLE, _SFD = 0x55, 0xD5
_DELAY = 5
_MIN_WITH_FCS = constant("MIN_FRAME") + constant("FCS_LEN")
_STATUS = COMPLETION.member("status")


def address_accepted(config, dmac, mc_index):
    """Amaranth expression: does the address filter take a frame sent to ``dmac``?

    ``mc_index`` is the multicast hash index of ``dmac`` (the low 6 bits of
    its CRC-32, MC_HASH_LO in docs/registers.md).
    """
    broadcast = dmac == (1 << 48) - 1
    multicast = dmac[0] & ~broadcast      # I/G bit: bit 0 of the first byte
    return (config.promisc
            | (dmac == config.mac_addr)
            | (broadcast & config.broadcast)
            | (multicast & (config.allmulti | config.mc_hash.bit_select(mc_index, 1))))


class MacRx(wiring.Component):
    """GMII receiver: framing, FCS check and strip, length checks, address filter (own, broadcast,
    multicast hash, ALLMULTI, PROMISC), steering.

    ``steer_entries`` sizes the steering table (``steer`` port).
    """

    def __init__(self, steer_entries: int = NUM_STEER_ENTRIES) -> None:
        self._steer_entries = steer_entries
        super().__init__({"gmii_rx_d": In(8), "gmii_rx_dv": In(1), "gmii_rx_er": In(1), "config": In(MacConfig),
                          "steer": In(steer_table(steer_entries)), "frames": Out(rx_stream()),
                          "events": Out(RxEvents)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.parser = parser = HeaderParser()
        m.submodules.match = match = SteeringMatch(self._steer_entries)
        m.d.comb += [match.fields.eq(parser.fields), match.table.eq(self.steer)]

        # Register the PHY inputs once: short paths from the pins.
        rxd, rxdv, rxer = Signal(8), Signal(), Signal()
        m.d.sync += [rxd.eq(self.gmii_rx_d), rxdv.eq(self.gmii_rx_dv), rxer.eq(self.gmii_rx_er)]

        cfg = self.config
        limit = Signal(LEN_BITS)
        m.d.comb += limit.eq(Mux(cfg.jumbo,
                                 Mux(cfg.max_len > constant("MAX_FRAME_JUMBO"), constant("MAX_FRAME_JUMBO"), cfg.max_len),
                                 Mux(cfg.max_len > constant("MAX_FRAME_STD"), constant("MAX_FRAME_STD"), cfg.max_len)))

        delay = [Signal(8, name=f"delay{i}") for i in range(_DELAY)]
        count = Signal(LEN_BITS)          # bytes of this frame so far, FCS included (saturating)
        crc = Signal(32)
        had_er = Signal()
        oversize = Signal()
        active = Signal()                 # this frame is being received (rx_en was set at its start)
        mc_index = Signal(6)              # multicast hash index of the destination address

        m.d.comb += [parser.valid.eq(0), parser.byte.eq(rxd), parser.index.eq(count)]
        m.d.sync += [self.frames.valid.eq(0), self.events.eq(0)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(rxdv):
                    with m.If(rxd == _SFD):
                        m.next = "DATA"
                    with m.Elif(rxd == _PREAMBLE):
                        m.next = "PREAMBLE"
                    with m.Else():
                        m.next = "DISCARD"
                m.d.comb += parser.start.eq(1)
                m.d.sync += [count.eq(0), crc.eq(CRC_INIT), had_er.eq(0), oversize.eq(0),
                             active.eq(cfg.rx_en)]
            with m.State("PREAMBLE"):
                with m.If(~rxdv):
                    m.next = "IDLE"
                with m.Elif(rxd == _SFD):
                    m.next = "DATA"
                with m.Elif(rxd != _PREAMBLE):
                    m.next = "DISCARD"
            with m.State("DISCARD"):
                with m.If(~rxdv):
                    m.next = "IDLE"
            with m.State("DATA"):
                with m.If(rxdv):
                    m.d.comb += parser.valid.eq(1)
                    m.d.sync += [crc.eq(crc32_next(crc, rxd)), had_er.eq(had_er | rxer),
                                 Cat(*delay).eq(Cat(rxd, *delay[:-1]))]
                    with m.If(count != (1 << LEN_BITS) - 1):
                        m.d.sync += count.eq(count + 1)
                    with m.If(count >= limit):
                        m.d.sync += oversize.eq(1)
                    # The CRC register holds the 6 destination bytes' CRC when the 7th byte arrives:
                    # its complement's low bits are zlib.crc32(dmac) & 63 (MC_HASH_LO).
                    with m.If(count == 6):
                        m.d.sync += mc_index.eq(~crc[:6])
                    # Emit the byte leaving the delay line, unless past the limit.
                    with m.If(active & (count >= _DELAY) & ~oversize):
                        m.d.sync += [self.frames.valid.eq(1), self.frames.payload.data.eq(delay[-1]),
                                     self.frames.payload.last.eq(0)]
                with m.Else():
                    m.next = "IDLE"
                    self._finish(m, count, crc, had_er, oversize, active, delay[-1], parser, match, mc_index)
        return m

    def _finish(self, m, count, crc, had_er, oversize, active, last_byte, parser, match, mc_index) -> None:
        """Frame end (RX_DV fell): emit the held byte with the verdict; count the frame."""
        cfg = self.config
        runt = count < _MIN_WITH_FCS
        fcs_bad = (crc != CRC_RESIDUE) | had_er
        good = ~runt & ~oversize & ~fcs_bad
        accepted = address_accepted(cfg, parser.fields.dmac, mc_index)
        status = Signal(8)
        m.d.comb += status.eq(Mux(runt, _STATUS.bit("RUNT").mask,
                                  Mux(oversize, _STATUS.bit("OVERSIZE").mask,
                                      Mux(fcs_bad, _STATUS.bit("FCS_ERROR").mask, 0))))
        length = count - constant("FCS_LEN")
        with m.If(active & (count > _DELAY)):
            meta = self.frames.payload.meta
            m.d.sync += [self.frames.valid.eq(1), self.frames.payload.data.eq(last_byte),
                         self.frames.payload.last.eq(1),
                         meta.deliver.eq(accepted & (good | cfg.keep_errored)),
                         meta.queue.eq(match.queue), meta.rule.eq(match.rule), meta.status.eq(status)]
        with m.If(active):
            ev = self.events
            m.d.sync += [ev.ok.eq(good), ev.length.eq(length),
                         ev.runt.eq(runt), ev.oversize.eq(~runt & oversize),
                         ev.fcs_err.eq(~runt & ~oversize & fcs_bad),
                         ev.filtered.eq(good & ~accepted)]
