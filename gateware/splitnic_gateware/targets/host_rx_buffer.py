"""The host-link port's receive buffer: whole frames or none, never a frame cut short.

Ref: :data:`splitnic_spec.board.HOST_RX_BUFFER_BYTES`; liteeth/mac/core.py (the
MAC's receive path); liteeth/frontend/etherbone.py (``LiteEthEtherboneRecordReceiver``).

A PHY never waits: its receive stream has no ``ready``.  LiteEth's MAC ends its
receive path in a 32-word clock-domain crossing, and when the frames behind it
stall longer than that (Etherbone waiting for the bus: the NIC's DMA bursts,
or a read of an unmapped address that waits for the bus timeout), the PHY's
bytes fall on the floor in the middle of a frame.  A frame that lost words is
fatal to Etherbone: its record receiver counts words, not frames, so it reads
the next record's return address as a read address and stays one word out of
step until the board is reset (seen as a simulated SoC that stopped answering
after a burst of writes).

This buffer sits at the end of the MAC's receive path (in ``sys``, 32 bits),
always ready.  It writes each frame into block RAM and makes it visible only
when its last word is in; a frame that does not fit in the free space is
dropped whole and counted in ``dropped``.  So a stall costs whole frames at
worst, which UDP allows and Etherbone's client retries (reads) or avoids (it
keeps its writes in flight within half this buffer, see
``splitnic.link_etherbone``).
"""

from __future__ import annotations

from migen import Cat, If, Memory, Signal

from litex.gen import LiteXModule
from litex.soc.interconnect import stream
from litex.soc.interconnect.csr import CSRStatus

__all__ = ["HostRxBuffer"]


class HostRxBuffer(LiteXModule):
    """A frame FIFO of ``depth`` words (a power of two) of ``description``'s payload.

    ``sink`` never waits; ``source`` carries only frames whose last word has
    arrived, in order.  ``dropped`` (a CSR) counts the frames that did not fit.
    """

    def __init__(self, description: stream.EndpointDescription | list, depth: int) -> None:
        if depth < 2 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two of at least 2 words, not {depth}")
        self.sink = sink = stream.Endpoint(description)
        self.source = source = stream.Endpoint(description)
        self.dropped = CSRStatus(32, description="Frames from the host-link port dropped whole: "
                                                 "the receive buffer had no room for them.")
        self.drop = Signal()    # high for one word of each frame it drops

        # # #

        payload = Cat(*[sink.payload.raw_bits(), sink.last])
        word_bits = len(payload)
        self.specials.mem = mem = Memory(word_bits, depth)
        # LiteX's AutoCSR would put every Memory attribute on the CSR bus, with a third port
        # that writes: a memory no block RAM can hold, so yosys built it from flip-flops
        # (41 kbit of them) and ran out of stack.  Nothing but these two ports touches it.
        self.autocsr_exclude = {"mem"}
        wport = mem.get_port(write_capable=True)
        rport = mem.get_port(has_re=True)
        self.specials += wport, rport

        ptr_bits = (depth - 1).bit_length()
        written = Signal(ptr_bits)      # next slot this frame writes
        committed = Signal(ptr_bits)    # end of the last whole frame: what the reader may take
        taken = Signal(ptr_bits)        # next slot the reader fetches
        dropping = Signal()             # the rest of the current frame goes nowhere
        full = Signal()
        self.comb += [
            sink.ready.eq(1),
            full.eq((written + 1)[:ptr_bits] == taken),    # one slot stays free: full != empty
            wport.adr.eq(written),
            wport.dat_w.eq(payload),
        ]
        self.sync += If(sink.valid,
            If(dropping,
                If(sink.last, dropping.eq(0)),
            ).Elif(full,
                # No room for this word: the frame so far is forgotten, the rest skipped.
                written.eq(committed),
                dropping.eq(~sink.last),
            ).Else(
                written.eq(written + 1),
                If(sink.last, committed.eq(written + 1)),
            )
        )
        self.comb += [
            wport.we.eq(sink.valid & ~dropping & ~full),
            self.drop.eq(sink.valid & ~dropping & full),
        ]
        self.sync += If(self.drop, self.dropped.status.eq(self.dropped.status + 1))

        # The reader: block RAM answers a clock after its address, so ``source`` is that
        # answer, held (read enable low) while it waits.
        held = Signal()
        fetch = Signal()
        self.comb += [
            fetch.eq((taken != committed) & (~held | source.ready)),
            rport.adr.eq(taken),
            rport.re.eq(fetch),
            source.valid.eq(held),
            Cat(*[source.payload.raw_bits(), source.last]).eq(rport.dat_r),
        ]
        self.sync += [
            If(fetch, taken.eq(taken + 1)),
            If(fetch, held.eq(1)).Elif(source.ready, held.eq(0)),
        ]
