"""The NIC's GMII in the system clock, to and from a LiteEth PHY in its own clocks.

Ref: IEEE Std 802.3-2018 §35.2 (GMII: TX_EN/RX_DV framing, one octet per clock);
liteeth/phy/ecp5rgmii.py (the PHY's 8-bit stream, one byte per 125 MHz cycle).

The NIC core has an 8-bit datapath and runs at 40 MHz on the ECP5, while a
gigabit PHY moves a byte every 8 ns.  So the bytes cross clocks through
FIFOs, and a frame keeps its bytes back to back on both sides:

* receive (PHY -> NIC): cut-through.  The PHY side packs the bytes into
  32-bit words and crosses them through a short FIFO; the frame store (2 KiB)
  is in ``sys``, so little runs at the PHY's 125 MHz.  The PHY writes faster
  than the NIC reads, so once a frame's first byte is out the next ones are
  already in.  When the store fills (the host sends faster than the NIC
  drains) the rest of that frame is dropped and an end marker with ``rx_er``
  closes it, so the NIC counts an errored frame instead of gluing two frames
  together.
* transmit (NIC -> PHY): store and forward.  The PHY side starts a frame only
  once all of it is in the FIFO (a token per frame says so), since it reads
  about three times faster than the NIC writes.  The FIFO's read side, at the
  PHY's 125 MHz, keeps its pointer logic in registers (:mod:`.async_fifo`:
  migen's read loop was that clock's slowest path).  Frames up to the FIFO depth
  go out intact; a longer one is cut and leaves with a bad FCS.

Sustained throughput is the NIC's: one byte per system clock.
"""

from __future__ import annotations

from migen import Case, ClockDomainsRenamer, If, Signal

from litex.gen import LiteXModule
from litex.soc.interconnect import stream

from .async_fifo import StreamAsyncFifoFastRead

__all__ = ["GmiiRxBridge", "GmiiTxBridge", "RX_GAP", "TX_GAP"]

#: Idle system clocks between frames towards the NIC (its MAC needs RX_DV low between frames).
RX_GAP = 4
#: Idle PHY clocks between frames on the wire: the minimum inter-packet gap, 96 bit times.
TX_GAP = 12
#: PHY clocks a transmit token waits so that its frame's bytes have crossed too
#: (the token and the data cross in separate FIFOs with their own synchronisers).
TX_SETTLE = 4
assert TX_SETTLE >= 1    # ``sending`` is set as ``settle`` leaves 1 (GmiiTxBridge)


#: Words in the receive side's clock crossing.  The PHY side packs up to 4 bytes per word, so
#: it makes at most one word per 4 of its clocks, and ``sys`` takes one per clock: the crossing
#: never holds more than a few.  Small, its pointers stay short enough for the PHY's 125 MHz
#: (with the whole 2 KiB there, the write side's pointer logic was that domain's critical path).
RX_CDC_WORDS = 8

#: A receive word: up to 4 bytes (byte 0 first), ``count`` = bytes in it - 1; plus the endpoint's last.
_RX_WORD = [("data", 32), ("count", 2), ("error", 1)]


class _WholeFrames(LiteXModule):
    """Word stream ``sink`` -> ``source``, where ``source`` may be full: each frame leaves whole or cut.

    ``sink`` never waits (a PHY cannot).  When ``source`` is full in mid-frame,
    the rest of that frame is dropped and, as soon as there is room, one word
    marked last and error closes it: the NIC counts an errored frame instead
    of gluing two frames together.  ``overflow`` pulses when a word is lost.
    """

    def __init__(self) -> None:
        self.sink = sink = stream.Endpoint(_RX_WORD)
        self.source = source = stream.Endpoint(_RX_WORD)
        self.overflow = Signal()
        dropping = Signal()        # rest of the current frame is discarded
        marker_pending = Signal()  # an error end-marker still has to be written
        self.comb += [
            sink.ready.eq(1),
            If(marker_pending,
                # One filler byte (count 0, data 0), marked last and error.
                source.valid.eq(1), source.last.eq(1), source.error.eq(1),
            ).Elif(sink.valid & ~dropping,
                source.valid.eq(1), source.data.eq(sink.data), source.count.eq(sink.count),
                source.last.eq(sink.last), source.error.eq(sink.error),
            ),
            self.overflow.eq(sink.valid & ~dropping & ~marker_pending & ~source.ready),
        ]
        self.sync += [
            If(marker_pending & source.ready, marker_pending.eq(0)),
            If(self.overflow, marker_pending.eq(1)),
            # While a marker waits, arriving words are lost: drop the rest of their frame.
            If(sink.valid,
                If(self.overflow | dropping | marker_pending, dropping.eq(~sink.last)),
            ),
        ]


class GmiiRxBridge(LiteXModule):
    """PHY receive stream (in clock domain ``cd_phy``) -> GMII receive in ``sys``.

    The PHY side only packs bytes into words and hands them to a short clock
    crossing; the frame store (``depth`` bytes, a block RAM) and the decision
    to cut a frame that does not fit are in ``sys``.  ``sys`` must take words
    faster than the PHY makes them (over a quarter of the PHY's clock), which
    also keeps the crossing from filling.
    """

    def __init__(self, phy_source: stream.Endpoint, cd_phy: str, depth: int = 2048) -> None:
        if depth % 4 or depth < 16:
            raise ValueError(f"depth must be a multiple of 4 bytes, at least 16, not {depth}")
        self.rx_d, self.rx_dv, self.rx_er = Signal(8), Signal(), Signal()
        #: Frames cut short because the frame store was full (pulses in ``sys``).
        self.overflow = Signal()

        # PHY side: bytes -> words of up to 4 (the last word of a frame may be short).
        src = phy_source
        packed = stream.Endpoint(_RX_WORD)          # one-cycle pulses; the crossing has room
        word, count = Signal(32), Signal(2)
        with_byte = Signal(32)                      # word with this clock's byte in place
        self.comb += [src.ready.eq(1), with_byte.eq(word),
                      Case(count, {i: with_byte[8 * i:8 * i + 8].eq(src.data) for i in range(4)})]
        sync_phy = getattr(self.sync, cd_phy)
        sync_phy += [
            packed.valid.eq(0),
            If(src.valid,
                word.eq(with_byte), count.eq(count + 1),
                If((count == 3) | src.last,
                    packed.valid.eq(1), packed.data.eq(with_byte), packed.count.eq(count),
                    packed.last.eq(src.last), packed.error.eq(0),
                    count.eq(0),
                ),
            ),
        ]
        # Should the crossing ever be full, the frame is cut there too, not glued to the next.
        self.phy_side = phy_side = ClockDomainsRenamer(cd_phy)(_WholeFrames())
        self.cdc = cdc = ClockDomainsRenamer({"write": cd_phy, "read": "sys"})(
            stream.AsyncFIFO(_RX_WORD, RX_CDC_WORDS))
        self.sys_side = sys_side = _WholeFrames()
        self.store = store = stream.SyncFIFO(_RX_WORD, depth // 4, buffered=True)
        self.comb += [
            packed.connect(phy_side.sink), phy_side.source.connect(cdc.sink),
            cdc.source.connect(sys_side.sink), sys_side.source.connect(store.sink),
            self.overflow.eq(sys_side.overflow),
        ]

        # sys side: a frame's bytes leave back to back, then a gap.  Words arrive at least as
        # fast as their bytes leave (as fast with a PHY clocked like sys, in the simulated SoC),
        # so once a frame has started its next word is always there in time.
        gap = Signal(max=RX_GAP + 1)
        index = Signal(2)                           # the head word's byte that leaves next
        go = Signal()
        out = store.source
        self.comb += [go.eq((gap == 0) & out.valid), out.ready.eq(go & (index == out.count))]
        byte = Signal(8)
        self.comb += Case(index, {i: byte.eq(out.data[8 * i:8 * i + 8]) for i in range(4)})
        self.sync += [
            self.rx_dv.eq(0), self.rx_er.eq(0),
            If(gap != 0,
                gap.eq(gap - 1),
            ).Elif(go,
                self.rx_dv.eq(1), self.rx_d.eq(byte), self.rx_er.eq(out.error),
                If(index == out.count,
                    index.eq(0),
                    If(out.last, gap.eq(RX_GAP)),
                ).Else(
                    index.eq(index + 1),
                ),
            ),
        ]


class GmiiTxBridge(LiteXModule):
    """GMII transmit in ``sys`` -> PHY transmit stream (in clock domain ``cd_phy``)."""

    def __init__(self, phy_sink: stream.Endpoint, cd_phy: str, depth: int = 2048) -> None:
        self.tx_d, self.tx_en, self.tx_er = Signal(8), Signal(), Signal()
        #: Frames cut because they did not fit the FIFO (pulses in ``sys``).
        self.overflow = Signal()

        # The read side's pointer logic is registered (see async_fifo): 2 KiB deep at the PHY's 125 MHz.
        data = ClockDomainsRenamer({"write": "sys", "read": cd_phy})(
            StreamAsyncFifoFastRead([("data", 8)], depth))
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
        # ``sending`` (busy and settled) is a register of its own, set a clock ahead: it is the
        # FIFO's read enable, which decides the block RAM's next read address, and a compare of
        # ``settle`` in front of it left too little of the 8 ns for the route to the RAM.
        sync_phy = getattr(self.sync, cd_phy)
        busy, sending, settle = Signal(), Signal(), Signal(max=TX_SETTLE + 1)
        gap = Signal(max=TX_GAP + 1)
        src = data.source
        self.comb += [
            tokens.source.ready.eq(~busy & (gap == 0)),
            src.ready.eq(sending),
            phy_sink.valid.eq(sending & src.valid),
            phy_sink.data.eq(src.data),
            phy_sink.last.eq(src.last),
        ]
        sync_phy += [
            If(gap != 0, gap.eq(gap - 1)),
            If(~busy & (gap == 0) & tokens.source.valid,
                busy.eq(1), settle.eq(TX_SETTLE),
            ),
            If(busy & (settle != 0),
                settle.eq(settle - 1),
                If(settle == 1, sending.eq(1)),
            ),
            If(sending & src.valid & src.last,
                busy.eq(0), sending.eq(0), gap.eq(TX_GAP),
            ),
        ]
