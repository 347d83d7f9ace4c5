"""RX DMA queue engine: received frames into the buffers the driver posted.

Ref: docs/registers.md (generated from splitnic_spec.nic): RXQ registers,
Descriptor, Completion (PHASE), ring index rules; contract B in
:mod:`splitnic_gateware.interfaces`; Wishbone B4 §4.3 (incrementing bursts).

Frames from the MAC go into a store-and-forward :class:`PacketFifo` (the wire
cannot wait for the bus).  For the frame at its head the engine, per frame:

1. checks its queue: enabled and a buffer posted (HEAD != TAIL), else drops
   the frame and strobes ``events[q].drop``;
2. reads the descriptor at slot HEAD (one 4-word burst) and advances HEAD;
3. writes the frame, at most Descriptor.length bytes (TRUNCATED otherwise), to
   Descriptor.addr in bursts of at most MAX_BURST words, the last word with a
   partial ``sel``;
4. writes the completion at slot CPL in one 4-word burst, ascending, so the
   word holding PHASE lands last; advances CPL and strobes the events.

CYC drops for one cycle between bursts so the DMA arbiter can hand the bus to
another engine.  Bus outputs come from registers only; ``ack`` steers just the
packet FIFO's read address, so a new data word is ready on every acked cycle.

A queue reset (``queue_reset[q]``) zeroes HEAD and CPL at once.  A frame of
that queue already in flight is abandoned at the next burst boundary: the
burst under way ends normally, no further data is written, and its completion
is never made valid (if the completion burst already started, its PHASE word is
written with ``sel`` = 0); the frame counts as a drop.  Other queues' rings are
never touched: ring addresses are latched when a frame starts.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from splitnic_spec import COMPLETION, DESCRIPTOR, constant

from ..bus import CTI_END, CTI_INCR, WishboneSignature
from ..interfaces import LEN_BITS, QUEUE_BITS, engine_queue_ports, rx_stream
from ..size import RTL_RX_QUEUES
from .packet_fifo import FrameInfo, PacketFifo, frame_words

__all__ = ["RxEngine"]

_MAX_BURST = constant("MAX_BURST")
_DESC_WORDS = DESCRIPTOR.size // 4
_CPL_WORDS = COMPLETION.size // 4
_TRUNCATED = COMPLETION.member("status").bit("TRUNCATED").mask
_PHASE = COMPLETION.member("flags").bit("PHASE")
_INDEX_BITS = constant("INDEX_BITS")


def _member(raw: Signal, struct, name: str, width: int | None = None):
    """The bits of member ``name`` of ``struct`` inside ``raw`` (the structure's bytes, little-endian)."""
    lsb = struct.offset_of(name) * 8
    return raw[lsb:lsb + (width or struct.member(name).width)]


class RxEngine(wiring.Component):
    """The RX queues' DMA engine (contract B).

    ``fifo_words`` (a power of two) sizes the packet FIFO in 32-bit words; the
    default holds three jumbo frames.  ``fifo_frames`` bounds the frames waiting
    in it.
    """

    def __init__(self, *, queues: int = RTL_RX_QUEUES, fifo_words: int = 8192, fifo_frames: int = 64) -> None:
        self._queues = queues
        self._fifo_words = fifo_words
        self._fifo_frames = fifo_frames
        super().__init__({
            "frames": In(rx_stream()),
            "dma": Out(WishboneSignature(30, burst=True)),
            **engine_queue_ports(queues),
            "fifo_drop": Out(1),
            "cycles": In(32),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.fifo = fifo = PacketFifo(words=self._fifo_words, frames=self._fifo_frames)
        wiring.connect(m, wiring.flipped(self.frames), fifo.frames)
        m.d.comb += [fifo.cycles.eq(self.cycles), self.fifo_drop.eq(fifo.overflow)]

        bus = self.dma
        head_info = fifo.head.payload

        # The frame in flight and its queue's settings, latched when it starts.
        frame = Signal(FrameInfo)
        q = Signal(QUEUE_BITS)
        cpl_base = Signal(32)
        log2 = Signal.like(self.queues[0].log2)
        abandon = Signal()                   # q was reset while its frame was in flight
        desc = Signal(DESCRIPTOR.size * 8)   # the descriptor as read, little-endian
        buf_len = _member(desc, DESCRIPTOR, "length")
        write_len = Signal(LEN_BITS)         # bytes that go to the buffer
        truncated = Signal()
        adr = Signal(30)                     # word address of the current beat
        burst_left = Signal(range(_MAX_BURST + 1))   # beats of this burst, the current one included
        remaining = Signal(LEN_BITS)         # data words still to write, the current one included
        word_index = Signal(LEN_BITS)        # word of the frame on the current data beat
        last_sel = Signal(4)
        phase = Signal()                     # PHASE of the completion being written
        phase_word_off = Signal()            # completion abandoned before its PHASE word went out

        def per_queue(index, action) -> None:
            """Run ``action(i)`` for the queue ``index`` selects (statically unrolled)."""
            with m.Switch(index):
                for i in range(self._queues):
                    with m.Case(i):
                        action(i)

        cpl_index = self.status[q].cpl
        completion = Signal(COMPLETION.size * 8)
        m.d.comb += [
            _member(completion, COMPLETION, "cookie").eq(_member(desc, DESCRIPTOR, "cookie")),
            _member(completion, COMPLETION, "length").eq(write_len),
            _member(completion, COMPLETION, "queue").eq(q),
            _member(completion, COMPLETION, "status").eq(frame.status | Mux(truncated, _TRUNCATED, 0)),
            _member(completion, COMPLETION, "timestamp").eq(frame.timestamp),
            _member(completion, COMPLETION, "rule").eq(frame.rule),
            _member(completion, COMPLETION, "flags")[_PHASE.lsb].eq(phase),
        ]

        m.d.sync += self.events.eq(0)
        m.d.comb += [bus.bte.eq(0), bus.cti.eq(Mux(burst_left == 1, CTI_END, CTI_INCR)), bus.adr.eq(adr)]

        # Data words are read from the FIFO one cycle ahead: on an acked beat, the next one.
        data_ack = Signal()
        m.d.comb += fifo.read_offset.eq(word_index + data_ack)

        def drop_event(i) -> None:
            m.d.sync += self.events[i].drop.eq(1)

        def take_descriptor(i) -> None:
            m.d.sync += self.status[i].head.eq(self.status[i].head + 1)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.sync += [frame.eq(head_info), q.eq(head_info.queue), word_index.eq(0),
                             abandon.eq(0), phase_word_off.eq(0)]
                with m.If(fifo.head.valid):
                    m.next = "PICK"

            with m.State("PICK"):
                # The head frame's queue, now from a register: choosing the queue's settings
                # straight from the packet FIFO's block RAM read put that read (5.6 ns), the
                # queue multiplexers and the descriptor address's adder in one clock, the
                # i9's slowest `sys` path (25 ns).  It costs one clock per frame.
                known = q < self._queues
                cfg = self.queues[q]
                st = self.status[q]
                with m.If(known & cfg.enable & (st.head != cfg.tail)):
                    m.d.sync += [
                        cpl_base.eq(cfg.cpl_base), log2.eq(cfg.log2),
                        adr.eq(cfg.desc_base[2:] + (_ring_slot(st.head, cfg.log2) << 2)),
                        burst_left.eq(_DESC_WORDS),
                        abandon.eq(self.queue_reset.bit_select(q, 1)),
                    ]
                    m.next = "DESC"
                with m.Else():
                    m.d.comb += fifo.head.ready.eq(1)
                    with m.If(known):
                        per_queue(q, drop_event)
                    m.next = "IDLE"

            with m.State("DESC"):
                m.d.comb += [bus.cyc.eq(1), bus.stb.eq(1), bus.sel.eq(0xF)]
                with m.If(bus.ack):
                    with m.Switch(burst_left):
                        for beat in range(_DESC_WORDS):
                            with m.Case(_DESC_WORDS - beat):
                                m.d.sync += desc.word_select(beat, 32).eq(bus.dat_r)
                    m.d.sync += [adr.eq(adr + 1), burst_left.eq(burst_left - 1)]
                    with m.If(burst_left == 1):
                        with m.If(~abandon):
                            per_queue(q, take_descriptor)
                        m.next = "SETUP"

            with m.State("SETUP"):
                longer = frame.length > buf_len
                length = Mux(longer, buf_len, frame.length)
                words = frame_words(length)
                m.d.sync += [
                    write_len.eq(length), truncated.eq(longer),
                    adr.eq(_member(desc, DESCRIPTOR, "addr", 32)[2:]),
                    remaining.eq(words),
                    burst_left.eq(Mux(words > _MAX_BURST, _MAX_BURST, words)),
                    # Bytes of the last word that belong to the frame.
                    last_sel.eq(Mux(length[:2] == 1, 0b0001, Mux(length[:2] == 2, 0b0011,
                                                                     Mux(length[:2] == 3, 0b0111, 0b1111)))),
                ]
                with m.If(abandon):
                    m.next = "SKIP"
                with m.Elif(words == 0):
                    m.next = "CPL_SETUP"
                with m.Else():
                    m.next = "DATA"

            with m.State("DATA"):
                m.d.comb += [bus.cyc.eq(1), bus.stb.eq(1), bus.we.eq(1), bus.dat_w.eq(fifo.read_data),
                             bus.sel.eq(Mux(remaining == 1, last_sel, 0xF)), data_ack.eq(bus.ack)]
                with m.If(bus.ack):
                    m.d.sync += [adr.eq(adr + 1), burst_left.eq(burst_left - 1),
                                 remaining.eq(remaining - 1), word_index.eq(word_index + 1)]
                    with m.If(remaining == 1):
                        m.next = "CPL_SETUP"
                    with m.Elif(burst_left == 1):
                        m.next = "DATA_GAP"

            with m.State("DATA_GAP"):
                # CYC low for a cycle: the arbiter may serve another engine between bursts.
                m.d.sync += burst_left.eq(Mux(remaining > _MAX_BURST, _MAX_BURST, remaining))
                with m.If(abandon):
                    m.next = "SKIP"
                with m.Else():
                    m.next = "DATA"

            with m.State("CPL_SETUP"):
                # 1 on the first lap of the ring, then alternating (Completion.flags.PHASE).
                m.d.sync += [adr.eq(cpl_base[2:] + (_ring_slot(cpl_index, log2) << 2)),
                             phase.eq(~(cpl_index >> log2)[0]), burst_left.eq(_CPL_WORDS)]
                with m.If(abandon):
                    m.next = "SKIP"
                with m.Else():
                    m.next = "CPL"

            with m.State("CPL"):
                beat = _CPL_WORDS - burst_left
                m.d.comb += [bus.cyc.eq(1), bus.stb.eq(1), bus.we.eq(1),
                             bus.dat_w.eq(completion.word_select(beat[:2], 32)),
                             bus.sel.eq(Mux((burst_left == 1) & phase_word_off, 0, 0xF))]
                with m.If(bus.ack):
                    m.d.sync += [adr.eq(adr + 1), burst_left.eq(burst_left - 1)]
                    with m.If(burst_left == 2):
                        # Decide now, before the PHASE word is presented, whether it may land.
                        m.d.sync += phase_word_off.eq(abandon | self.queue_reset.bit_select(q, 1))
                    with m.If(burst_left == 1):
                        m.d.comb += fifo.head.ready.eq(1)
                        m.next = "IDLE"
                        with m.If(abandon | phase_word_off):
                            per_queue(q, drop_event)
                        with m.Else():
                            def done(i) -> None:
                                ev = self.events[i]
                                m.d.sync += [self.status[i].cpl.eq(self.status[i].cpl + 1),
                                             ev.packet.eq(1), ev.completion.eq(1), ev.length.eq(write_len)]
                            per_queue(q, done)

            with m.State("SKIP"):
                m.d.comb += fifo.head.ready.eq(1)
                per_queue(q, drop_event)
                m.next = "IDLE"

        # A queue reset wins over any advance in the same cycle (statements later in the
        # code take priority); a frame in flight on that queue is abandoned.
        for i in range(self._queues):
            with m.If(self.queue_reset[i]):
                m.d.sync += [self.status[i].head.eq(0), self.status[i].cpl.eq(0)]
        with m.If(~fsm.ongoing("IDLE") & self.queue_reset.bit_select(q, 1)):
            m.d.sync += abandon.eq(1)
        return m


def _ring_slot(index, log2):
    """Amaranth expression: ring slot of free-running ``index`` in a ring of ``2**log2`` entries."""
    return index & ~(Const(-1, _INDEX_BITS) << log2)[:_INDEX_BITS]
