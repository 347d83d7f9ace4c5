"""The NIC's GMII in the system clock, to and from a LiteEth PHY in its own clocks.

Ref: IEEE Std 802.3-2018 §35.2 (GMII: TX_EN/RX_DV framing, one octet per clock);
liteeth/phy/ecp5rgmii.py (the PHY's 8-bit stream, one byte per 125 MHz cycle).

The NIC core has an 8-bit datapath and runs at 40 MHz on the ECP5, while a
gigabit PHY moves a byte every 8 ns.  So the bytes cross clocks through
FIFOs, and a frame keeps its bytes back to back on both sides:

* receive (PHY -> NIC): cut-through.  The PHY writes faster than the NIC
  reads, so once a frame's first byte is out the next ones are already in.
  When the FIFO fills (the host sends faster than the NIC drains) the rest of
  that frame is dropped and an end marker with ``rx_er`` closes it, so the NIC
  counts an errored frame instead of gluing two frames together.
* transmit (NIC -> PHY): store and forward.  The PHY side starts a frame only
  once all of it is in the FIFO (a token per frame says so), since it reads
  about three times faster than the NIC writes.  Frames up to the FIFO depth
  go out intact; a longer one is cut and leaves with a bad FCS.

Sustained throughput is the NIC's: one byte per system clock.
"""

from __future__ import annotations

from migen import ClockDomainsRenamer, If, Signal

from litex.gen import LiteXModule
from litex.soc.interconnect import stream

__all__ = ["GmiiRxBridge", "GmiiTxBridge", "RX_GAP", "TX_GAP"]

#: Idle system clocks between frames towards the NIC (its MAC needs RX_DV low between frames).
RX_GAP = 4
#: Idle PHY clocks between frames on the wire: the minimum inter-packet gap, 96 bit times.
TX_GAP = 12
#: PHY clocks a transmit token waits so that its frame's bytes have crossed too
#: (the token and the data cross in separate FIFOs with their own synchronisers).
TX_SETTLE = 4


class GmiiRxBridge(LiteXModule):
    """PHY receive stream (in clock domain ``cd_phy``) -> GMII receive in ``sys``."""

    def __init__(self, phy_source: stream.Endpoint, cd_phy: str, depth: int = 2048) -> None:
        self.rx_d, self.rx_dv, self.rx_er = Signal(8), Signal(), Signal()
        #: Frames cut short because the FIFO was full (pulses in ``cd_phy``).
        self.overflow = Signal()

        layout = [("data", 8), ("error", 1)]  # plus the endpoint's own last
        fifo = ClockDomainsRenamer({"write": cd_phy, "read": "sys"})(stream.AsyncFIFO(layout, depth, buffered=True))
        self.fifo = fifo

        # Write side (PHY clock): every frame arrives whole or ends in an error marker.
        dropping = Signal()        # rest of the current frame is discarded
        marker_pending = Signal()  # an error end-marker still has to be written
        sink, src = fifo.sink, phy_source
        sync_phy = getattr(self.sync, cd_phy)
        self.comb += [
            If(marker_pending,
                sink.valid.eq(1), sink.data.eq(0), sink.last.eq(1), sink.error.eq(1),
            ).Elif(src.valid & ~dropping,
                sink.valid.eq(1), sink.data.eq(src.data), sink.last.eq(src.last), sink.error.eq(0),
            ),
            self.overflow.eq(src.valid & ~dropping & ~marker_pending & ~sink.ready),
        ]
        sync_phy += [
            If(marker_pending & sink.ready, marker_pending.eq(0)),
            If(self.overflow, marker_pending.eq(1)),
            # While a marker waits, arriving bytes are lost: drop the rest of their frame.
            If(src.valid,
                If(self.overflow | dropping | marker_pending, dropping.eq(~src.last)),
            ),
        ]

        # Read side (system clock): a frame's bytes leave back to back, then a gap.
        gap = Signal(max=RX_GAP + 1)
        out = fifo.source
        self.comb += If(gap == 0, out.ready.eq(1))
        self.sync += [
            self.rx_dv.eq(0), self.rx_er.eq(0),
            If(gap != 0,
                gap.eq(gap - 1),
            ).Elif(out.valid,
                self.rx_dv.eq(1), self.rx_d.eq(out.data), self.rx_er.eq(out.error),
                If(out.last, gap.eq(RX_GAP)),
            ),
        ]


class GmiiTxBridge(LiteXModule):
    """GMII transmit in ``sys`` -> PHY transmit stream (in clock domain ``cd_phy``)."""

    def __init__(self, phy_sink: stream.Endpoint, cd_phy: str, depth: int = 2048) -> None:
        self.tx_d, self.tx_en, self.tx_er = Signal(8), Signal(), Signal()
        #: Frames cut because they did not fit the FIFO (pulses in ``sys``).
        self.overflow = Signal()

        data = ClockDomainsRenamer({"write": "sys", "read": cd_phy})(
            stream.AsyncFIFO([("data", 8)], depth, buffered=True))
        # One token per frame in the data FIFO; a frame is at least 64 bytes.
        tokens = ClockDomainsRenamer({"write": "sys", "read": cd_phy})(
            stream.AsyncFIFO([("cut", 1)], max(4, depth // 64)))
        self.data, self.tokens = data, tokens

        # Write side (system clock).  A byte is written one clock late, when
        # TX_EN of the next clock tells whether it was the frame's last.
        d, en = Signal(8), Signal()
        dropping, marker_pending = Signal(), Signal()
        last = Signal()
        self.comb += last.eq(en & ~self.tx_en)
        self.sync += [d.eq(self.tx_d), en.eq(self.tx_en)]
        self.comb += [
            If(marker_pending,
                # Close a cut frame: one filler byte marked last, and its token.
                data.sink.valid.eq(1), data.sink.data.eq(0), data.sink.last.eq(1),
                tokens.sink.valid.eq(data.sink.ready), tokens.sink.cut.eq(1),
            ).Elif(en & ~dropping,
                data.sink.valid.eq(1), data.sink.data.eq(d), data.sink.last.eq(last),
                tokens.sink.valid.eq(last & data.sink.ready),
            ),
            self.overflow.eq(en & ~dropping & ~marker_pending & ~data.sink.ready),
        ]
        self.sync += [
            If(marker_pending & data.sink.ready, marker_pending.eq(0)),
            If(self.overflow, marker_pending.eq(1)),
            If(en,
                If(self.overflow | dropping | marker_pending, dropping.eq(~last)),
            ),
        ]

        # Read side (PHY clock): wait for a token, let its bytes settle, send them back to back.
        sync_phy = getattr(self.sync, cd_phy)
        busy, settle = Signal(), Signal(max=TX_SETTLE + 1)
        gap = Signal(max=TX_GAP + 1)
        src = data.source
        self.comb += [
            tokens.source.ready.eq(~busy & (gap == 0)),
            src.ready.eq(busy & (settle == 0)),
            phy_sink.valid.eq(busy & (settle == 0) & src.valid),
            phy_sink.data.eq(src.data),
            phy_sink.last.eq(src.last),
        ]
        sync_phy += [
            If(gap != 0, gap.eq(gap - 1)),
            If(~busy & (gap == 0) & tokens.source.valid,
                busy.eq(1), settle.eq(TX_SETTLE),
            ),
            If(busy & (settle != 0), settle.eq(settle - 1)),
            If(busy & (settle == 0) & src.valid & src.last,
                busy.eq(0), gap.eq(TX_GAP),
            ),
        ]
