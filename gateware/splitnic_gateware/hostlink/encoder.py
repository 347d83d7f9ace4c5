"""Host-link encoder: the NIC's host-window writes, IRQs and READ answers, as numbered messages in frames.

Ref: splitnic_spec.hostlink (module docstring: messages, sequence numbers,
loss and go-back-N, flow control, sessions); docs/registers.md, "Frame and
message formats".

Messages are built in a block RAM of ``replay_slots`` largest frames used as
a ring, which is also the replay buffer: the builder fills the next frame
after the closed ones while the sender streams closed ones out, and a frame
stays in the ring until the host's ``acked`` (``link.peer_acked``) passes all
its messages.  A closed frame takes the words it has (a frame closed early
leaves the rest of the ring's room to the next ones) and one of
``2 x replay_slots`` descriptors.  The ring holds only the messages; the sender
makes the FrameHeader as the frame leaves, so ``acked``, ``credit``, NAK and
the frame number are as fresh as they can be, for a frame sent again as for a
new one.

* Writes (the ``dma`` Wishbone target, which sees only the NIC's writes into
  the host window): a write that continues exactly where the open WRITE
  message ends is appended to it, whether it came in the same burst or not, so
  a burst (or a run of single writes) becomes one message.  Any other write
  closes the open message and starts a new one.  A message's header is written
  when it closes, once its length is known (two cycles in which the port
  waits).
* IRQ (a one-cycle strobe): an IRQ message whose data is the number of rises so
  far; rises while one waits are counted in it.
* ANSWER (``answer`` stream from the decoder): the words of one READ, one
  message, never split across frames (the decoder asks for no more than a
  standard frame holds).

The building frame is closed into the ring when the next message does not fit
in ``mtu`` (clamped to MTU_STANDARD..max_mtu), or, when the sender is idle
with every closed frame sent (so a busy sender makes frames longer, not more
numerous): after ``latency`` cycles with nothing new, at once when the decoder
asks for a frame (``link.update``: the frame carries acked and credit), or at
once when it holds a quarter of its room (a sender that waits for a quiet
moment in a long DMA is an idle link).  With the ring full of unacknowledged
frames the builder waits, and so does the ``dma`` port: the NIC's DMA (and
behind it its RX FIFO) waits.

Sending, in this order of priority, between frames:

* an answer the decoder asked for (``reply``: a HELLO answer or a STALE frame,
  to the station whose frame it answers: ``tx_reply`` is high while it
  leaves);
* nothing else while the board is not bound (``link.bound``);
* the next frame of the ring not sent since the last go-back, if the host's
  credit (``link.peer_credit``) allows its number;
* else a frame of no messages when the decoder asks (``link.update``: acked,
  credit or NAK to tell) and the builder has nothing to close, or a probe is
  due: not numbered (it carries the next number without taking it) and
  needing no credit.

Go-back-N: on the host's NAK (``link.peer_nak``) or when ``acked`` has not
moved for ``resend_cycles`` while the ring holds frames (cycles in which a
frame is leaving do not count: the host cannot answer it sooner), the sender starts
again at the oldest unacknowledged slot: whole frames, new frame numbers.  The
resend timer also sets PROBE on the next frame (the first resent one, or a
frame of no messages if the credit lets none go), so that the host answers at
once with its ``acked`` and ``credit``: a lost acknowledgement or grant costs
one resend period.  Frames sent again are counted (``resent_frames``).

HELLO: when the decoder binds the board to a host (``hello``, one cycle), the
encoder restarts: it waits until the sender is between frames and the builder
between messages, drops whatever the ring and the open message hold (they
belong to the session that just ended), numbers messages and frames from 0
again and sends the HELLO answer the decoder asked for before any other frame.
The ``dma`` port waits meanwhile.

Reads on the ``dma`` port (the NIC never reads the host window: the driver
keeps what the NIC reads in NIC-local memory) are acked with 0, so a stray one
cannot hang the bus.  Byte selects are ignored: the NIC's DMA writes whole words.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from splitnic_spec import hostlink

from ..bus import WishboneSignature
from .layouts import (COUNT_BITS, FRAME_BITS, FRAME_HEADER_WORDS, MESSAGE_HEADER_WORDS, SEQ_BITS, FrameHeader,
                      Hello, LinkSent, LinkState, MessageHeader, ReplyRequest, answer_stream, serial_before,
                      tx_stream, word)

__all__ = ["Encoder", "EncoderCounters", "DEFAULT_REPLAY_SLOTS", "DEFAULT_RESEND_CYCLES"]

#: An IRQ message's data: one word.
_IRQ_WORDS = 1
#: Words of the board's HELLO answer: FrameHeader, MessageHeader, Hello.
HELLO_FRAME_WORDS = (hostlink.FRAME_HEADER.size + hostlink.MESSAGE_HEADER.size + hostlink.HELLO.size) // 4
#: Frames the replay ring holds (the building one included): four standard frames take 3 DP16KD.
DEFAULT_REPLAY_SLOTS = 4
#: RESEND_US at the board's 40 MHz sys clock.
DEFAULT_RESEND_CYCLES = hostlink.RESEND_US * 40


class EncoderCounters(data.Struct):
    """Free-running event counts of the encoder."""
    #: Frames sent (answers, frames of no messages and frames sent again included).
    frames: 32
    #: Messages put into frames (each once, however often its frame is sent).
    messages: 32
    #: Times a finished frame had to wait for the host's credit.
    credit_stalls: 32
    #: Frames sent again (go-back-N after a NAK or the resend timer).
    resent_frames: 32


class Encoder(wiring.Component):
    """Packs the board's messages to the host into host-link frames and replays what the host did not get.

    ``max_mtu``: the largest frame (after the Ethernet header) a slot holds;
    the ``mtu`` input (the host's Hello.mtu) is clamped to it.  ``rx_mtu`` and
    ``rx_window`` are what the board's decoder takes (its Hello.mtu and
    Hello.window); ``sent_end`` tells the decoder one past the last message
    sent, so that it can refuse an ``acked`` beyond it; ``local_base``/``local_size`` the NIC-local memory the host
    writes (Hello.local_base/local_size).  ``replay_slots``: frames in the
    ring (at least 2: one building, one in flight); ``resend_cycles``: the
    resend period in cycles of the clock.
    """

    def __init__(self, *, max_mtu: int = hostlink.MTU_STANDARD, rx_mtu: int = hostlink.MTU_STANDARD,
                 rx_window: int = 4, local_base: int = 0, local_size: int = 0,
                 replay_slots: int = DEFAULT_REPLAY_SLOTS, resend_cycles: int = DEFAULT_RESEND_CYCLES) -> None:
        if not hostlink.MTU_STANDARD <= max_mtu <= hostlink.MTU_JUMBO:
            raise ValueError(f"max_mtu must be {hostlink.MTU_STANDARD}..{hostlink.MTU_JUMBO}, not {max_mtu}")
        if not hostlink.MTU_STANDARD <= rx_mtu <= hostlink.MTU_JUMBO:
            raise ValueError(f"rx_mtu must be {hostlink.MTU_STANDARD}..{hostlink.MTU_JUMBO}, not {rx_mtu}")
        if not 2 <= rx_window < 1 << FRAME_BITS:
            raise ValueError(f"rx_window must be 2..{(1 << FRAME_BITS) - 1} frames, not {rx_window}")
        if not 2 <= replay_slots <= 64:
            raise ValueError(f"replay_slots must be 2..64, not {replay_slots}")
        if not 1 <= resend_cycles < 1 << 24:
            raise ValueError(f"resend_cycles must be 1..{(1 << 24) - 1}, not {resend_cycles}")
        self.max_mtu = max_mtu
        self.rx_mtu, self.rx_window = rx_mtu, rx_window
        self.local_base, self.local_size = local_base, local_size
        self.replay_slots, self.resend_cycles = replay_slots, resend_cycles
        #: Words of one slot: a whole frame less its FrameHeader (made as it leaves).
        self.slot_words = max_mtu // 4 - FRAME_HEADER_WORDS
        super().__init__({
            "dma": In(WishboneSignature(30, burst=True)),
            "irq": In(1),
            "hello": In(1),
            "reply": In(ReplyRequest),
            "reply_free": Out(1),
            "tx_reply": Out(1),
            "answer": In(answer_stream()),
            "link": In(LinkState),
            "sent": Out(LinkSent),
            "sent_end": Out(SEQ_BITS),
            "mtu": In(16),
            "latency": In(16),
            "tx": Out(tx_stream()),
            "counters": Out(EncoderCounters),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        slot_words = self.slot_words
        # The ring holds replay_slots frames of the largest size, more of smaller ones: each closed frame
        # takes the words it has (so a frame closed early wastes no room while it waits for its
        # acknowledgement), and one of ``slots`` descriptors.
        ring = self.replay_slots * slot_words
        slots = 2 * self.replay_slots
        m.submodules.buffer = buffer = Memory(shape=32, depth=ring, init=[])
        wr = buffer.write_port()
        rd = buffer.read_port()

        def next_slot(s):
            return Mux(s == slots - 1, 0, s + 1)

        def wrap(a):
            """Value: ring word ``a`` (below 2 x ring) folded into the ring."""
            return Mux(a >= ring, a - ring, a)

        # Room for messages in one frame, from the host's mtu.
        room = Signal(range(slot_words + 1))
        mtu = Signal(16)
        m.d.comb += mtu.eq(Mux(self.mtu > self.max_mtu, self.max_mtu,
                               Mux(self.mtu < hostlink.MTU_STANDARD, hostlink.MTU_STANDARD, self.mtu)))
        m.d.sync += room.eq(mtu[2:] - FRAME_HEADER_WORDS)

        # ---- the ring: descriptors head .. head+filled-1 hold closed frames, the first ``sent_count`` of them
        # sent since the last go-back; the builder's frame takes descriptor bslot (= head+filled) when it
        # closes.  ``occupied`` words of the ring hold closed frames, from the head's start to ``bstart``,
        # where the building frame starts. ----
        slot_count = Array(Signal(COUNT_BITS, name=f"slot{i}_count") for i in range(slots))
        slot_seq = Array(Signal(SEQ_BITS, name=f"slot{i}_seq") for i in range(slots))
        slot_len = Array(Signal(range(slot_words + 1), name=f"slot{i}_len") for i in range(slots))
        slot_start = Array(Signal(range(ring), name=f"slot{i}_start") for i in range(slots))
        occupied = Signal(range(ring + 1))
        head = Signal(range(slots))
        filled = Signal(range(slots + 1))
        sent_count = Signal(range(slots + 1))
        # Slots from head ever sent (in this session): a frame sent from one before it is a resend.
        sent_max = Signal(range(slots + 1))
        flush = Signal()
        retire = Signal()
        start_frame = Signal()       # the sender takes the slot at head + sent_count
        go_back_now = Signal()
        m.d.sync += filled.eq(filled + flush - retire)
        # sent_count and sent_max follow head when it moves; a go-back restarts sending at head.
        sent_count_next = Signal(range(slots + 1))
        m.d.comb += sent_count_next.eq(Mux(go_back_now, 0, sent_count) + start_frame)
        m.d.sync += [
            sent_count.eq(Mux(retire & (sent_count_next != 0), sent_count_next - 1, sent_count_next)),
            sent_max.eq(Mux(retire & (sent_max != 0), sent_max - 1, sent_max)),
        ]
        with m.If(start_frame & (sent_count_next > sent_max)):
            m.d.sync += sent_max.eq(Mux(retire, sent_count_next - 1, sent_count_next))
        unsent = Signal()
        m.d.comb += unsent.eq(sent_count != filled)
        # The frame that leaves: its slot is kept from its start to its end (``streaming``).
        sslot = Signal(range(slots))
        streaming = Signal()

        # ---- builder ----
        bslot = Signal(range(slots))
        bstart = Signal(range(ring))
        bpos = Signal(range(slot_words + 1))       # next free word of the building slot
        bcount = Signal(COUNT_BITS)
        bseq = Signal(SEQ_BITS)
        tx_seq = Signal(SEQ_BITS)                  # number of the next message
        # The open message: its header is written when it closes.
        is_open = Signal()
        mop = Signal(8)
        maddr = Signal(32)
        mhdr = Signal(range(slot_words))
        mwords = Signal(range(slot_words + 1))
        mnext = Signal(30)                         # word address a WRITE continues at
        irq_pending = Signal()
        irq_rises = Signal(32)
        idle = Signal(16)
        counters = self.counters

        def fits(words):
            return bpos + words <= room

        def space(words):
            """Value: ``words`` more fit in the ring beside the closed frames (else the builder waits)."""
            return occupied + bpos + words < ring

        # The bus's ack for a DMA write must not wait on the builder's adders: on the board it goes
        # through the SoC's shared interconnect into the CPU, and bpos -> fits/space -> ack was sys's
        # slowest path (docs/hardware.md).  So the write's four checks are registered, from the
        # previous cycle's bpos and occupied, with the most one cycle that ends in IDLE adds to them
        # (a new WRITE message, ``write_step``; a flush moves bpos into occupied, a retire frees
        # room): a write never overruns, and a frame holds at most ``write_step`` words less.
        write_step = MESSAGE_HEADER_WORDS + 1
        fits_merge, space_merge = Signal(), Signal()     # one more word of the open WRITE
        fits_new, space_new = Signal(), Signal()         # a new WRITE message of one word
        m.d.sync += [fits_merge.eq(fits(1 + write_step)), space_merge.eq(space(1 + write_step)),
                     fits_new.eq(fits(write_step + write_step)), space_new.eq(space(write_step + write_step))]

        with m.If(self.irq):
            m.d.sync += [irq_pending.eq(1), irq_rises.eq(irq_rises + 1)]
        # The host's HELLO: restart once the builder is in IDLE and the sender in WAIT (``restart_now``).
        restart = Signal()
        restart_now = Signal()
        restarting = Signal()
        m.d.comb += restarting.eq(restart | self.hello)
        with m.If(idle != 0xFFFF):
            m.d.sync += idle.eq(idle + 1)

        bus = self.dma
        write_req = Signal()
        m.d.comb += write_req.eq(bus.cyc & bus.stb & bus.we)
        # See the docstring: a read of the host window is a bug elsewhere; never hang the bus on it.
        m.d.comb += bus.dat_r.eq(0)
        with m.If(bus.cyc & bus.stb & ~bus.we):
            m.d.comb += bus.ack.eq(1)

        mergeable = Signal()
        m.d.comb += mergeable.eq(is_open & (mop == hostlink.OP_WRITE) & (bus.adr == mnext))
        flush_now = Signal()
        sender_idle = Signal()       # the sender waits between frames and every closed frame has gone
        # Only when the sender could take the frame at once (while it is busy the frame grows): after
        # ``latency`` quiet cycles, or when the decoder asks for a frame (acked, credit, NAK): the frame
        # carries them, rather than one of no messages beside it.
        builder_has = Signal()
        m.d.comb += [builder_has.eq((bcount != 0) | is_open),
                     flush_now.eq(builder_has & sender_idle
                                  & ((idle >= self.latency) | self.link.update | (bpos >= room[2:])))]

        mh = Signal(MessageHeader)
        m.d.comb += [mh.op.eq(mop), mh.seq.eq(tx_seq), mh.len.eq(mwords * 4), mh.addr.eq(maddr)]

        def start_message(op, addr, data_words):
            m.d.sync += [is_open.eq(1), mop.eq(op), maddr.eq(addr), mhdr.eq(bpos),
                         mwords.eq(data_words), bpos.eq(bpos + MESSAGE_HEADER_WORDS + data_words), idle.eq(0)]

        with m.FSM(name="build") as build_fsm:
            with m.State("IDLE"):
                with m.If(restarting):
                    # Nothing is taken until the restart (the sender may still be streaming a frame).
                    with m.If(restart_now):
                        m.d.sync += [bpos.eq(0), bcount.eq(0), bseq.eq(0), tx_seq.eq(0), is_open.eq(0),
                                     bslot.eq(0), bstart.eq(0), idle.eq(0)]
                with m.Elif(flush_now):
                    with m.If(is_open):
                        m.next = "CLOSE_HEAD"
                    with m.Else():
                        m.next = "FLUSH"
                with m.Elif(irq_pending):
                    with m.If(is_open):
                        m.next = "CLOSE_HEAD"
                    with m.Elif(fits(MESSAGE_HEADER_WORDS + _IRQ_WORDS)):
                        with m.If(~space(MESSAGE_HEADER_WORDS + _IRQ_WORDS)):
                            pass                    # wait for an acknowledgement to free the ring
                        with m.Else():
                            # The count as it is now; a rise in this very cycle waits for the next message.
                            m.d.comb += [wr.en.eq(1), wr.addr.eq(wrap(bstart + bpos + MESSAGE_HEADER_WORDS)),
                                         wr.data.eq(irq_rises)]
                            m.d.sync += irq_pending.eq(self.irq)
                            start_message(hostlink.OP_IRQ, 0, _IRQ_WORDS)
                            m.next = "CLOSE_HEAD"
                    with m.Else():
                        m.next = "FLUSH"
                with m.Elif(self.answer.valid):
                    with m.If(is_open):
                        m.next = "CLOSE_HEAD"
                    with m.Elif(fits(MESSAGE_HEADER_WORDS + self.answer.payload.words)):
                        with m.If(space(MESSAGE_HEADER_WORDS + self.answer.payload.words)):
                            start_message(hostlink.OP_ANSWER, self.answer.payload.tag, 0)
                            m.next = "ANSWER"
                    with m.Else():
                        m.next = "FLUSH"
                with m.Elif(write_req):
                    with m.If(mergeable & fits_merge):
                        with m.If(space_merge):
                            m.d.comb += [wr.en.eq(1), wr.addr.eq(wrap(bstart + bpos)), wr.data.eq(bus.dat_w),
                                         bus.ack.eq(1)]
                            m.d.sync += [bpos.eq(bpos + 1), mwords.eq(mwords + 1), mnext.eq(mnext + 1), idle.eq(0)]
                    with m.Elif(is_open):
                        m.next = "CLOSE_HEAD"
                    with m.Elif(fits_new):
                        with m.If(space_new):
                            m.d.comb += [wr.en.eq(1), wr.addr.eq(wrap(bstart + bpos + MESSAGE_HEADER_WORDS)),
                                         wr.data.eq(bus.dat_w), bus.ack.eq(1)]
                            m.d.sync += mnext.eq(bus.adr + 1)
                            start_message(hostlink.OP_WRITE, bus.adr << 2, 1)
                    with m.Elif(builder_has):
                        m.next = "FLUSH"
                    # else the checks are a clock old (just after a reset or a restart): wait for them

            with m.State("ANSWER"):
                m.d.comb += self.answer.ready.eq(1)
                with m.If(self.answer.valid):
                    m.d.comb += [wr.en.eq(1), wr.addr.eq(wrap(bstart + bpos)), wr.data.eq(self.answer.payload.data)]
                    m.d.sync += [bpos.eq(bpos + 1), mwords.eq(mwords + 1), idle.eq(0)]
                    with m.If(self.answer.payload.last):
                        m.next = "CLOSE_HEAD"

            # Close the open message: its header, now that its length is known.
            with m.State("CLOSE_HEAD"):
                m.d.comb += [wr.en.eq(1), wr.addr.eq(wrap(bstart + mhdr)), wr.data.eq(word(mh, 0))]
                m.next = "CLOSE_ADDR"
            with m.State("CLOSE_ADDR"):
                m.d.comb += [wr.en.eq(1), wr.addr.eq(wrap(bstart + mhdr + 1)), wr.data.eq(word(mh, 1))]
                m.d.sync += [is_open.eq(0), tx_seq.eq(tx_seq + 1), bcount.eq(bcount + 1),
                             counters.messages.eq(counters.messages + 1)]
                m.next = "IDLE"

            # Close the frame into the ring once a descriptor is free (else the ports wait); the next frame
            # starts where it ends.
            with m.State("FLUSH"):
                with m.If(restart):
                    m.next = "IDLE"         # the frame belongs to the closed session
                with m.Elif(filled < slots):
                    m.d.comb += flush.eq(1)
                    m.d.sync += [slot_count[bslot].eq(bcount), slot_seq[bslot].eq(bseq), slot_len[bslot].eq(bpos),
                                 slot_start[bslot].eq(bstart), bstart.eq(wrap(bstart + bpos)),
                                 bslot.eq(next_slot(bslot)), bpos.eq(0), bcount.eq(0), bseq.eq(tx_seq), idle.eq(0)]
                    # The new frame is empty: a write fits in it at once (the ring's room is the same).
                    m.d.sync += [fits_merge.eq(1), fits_new.eq(1)]
                    m.next = "IDLE"

        # ---- acknowledgements and the resend timer ----
        # The head slot leaves the ring once the host's acked passes its messages.  ``head_end`` is
        # registered (a 32-bit compare through the slot mux is on a long path), so a retire waits a
        # cycle for the next head's end.
        head_end = Signal(SEQ_BITS)
        head_end_valid = Signal()
        m.d.sync += [head_end.eq(slot_seq[head] + slot_count[head]),
                     head_end_valid.eq(~retire & ~flush & ~restart_now)]
        # Not the frame that is leaving: its words must stay until its last has gone.
        m.d.comb += retire.eq(head_end_valid & (filled != 0) & ~(streaming & (sslot == head))
                              & ~serial_before(self.link.peer_acked, head_end, SEQ_BITS))
        m.d.sync += occupied.eq(occupied + Mux(flush, bpos, 0) - Mux(retire, slot_len[head], 0))
        with m.If(retire):
            m.d.sync += head.eq(next_slot(head))
        quiet = Signal(range(self.resend_cycles + 1))
        resend_due = Signal()
        go_back = Signal()           # a NAK or the timer: start again at head once between frames
        probe_due = Signal()         # PROBE on the next frame, one of no messages if no other can go
        m.d.comb += resend_due.eq(quiet == self.resend_cycles)
        with m.If(retire | (filled == 0) | ~self.link.bound | resend_due):
            m.d.sync += quiet.eq(0)
        with m.Elif(~streaming):
            # Not while a frame leaves: the host cannot acknowledge a frame before its last word, and on
            # a cable slower than a frame per period (the simulated SoC's 8-bit PHY: 1500 cycles a full
            # frame, 1000 a period) the timer sent every frame of a stream again.
            m.d.sync += quiet.eq(quiet + 1)

        # ---- sender ----
        sbase = Signal(range(ring))
        spos = Signal(range(slot_words + 1))
        spos_next = Signal(range(slot_words + 1))
        # The read port always shows buffer[sbase + spos]: it reads the address spos takes next.
        m.d.comb += [spos_next.eq(spos), rd.addr.eq(wrap(sbase + spos_next))]
        m.d.sync += spos.eq(spos_next)
        tx_frame = Signal(FRAME_BITS)
        hdr = Signal(FrameHeader)
        hidx = Signal(range(FRAME_HEADER_WORDS))
        cur_len = Signal(range(slot_words + 1))
        waited = Signal()
        credit_ok = Signal()
        m.d.comb += credit_ok.eq(serial_before(tx_frame, self.link.peer_credit, FRAME_BITS))
        m.d.sync += self.sent.eq(0)
        tx = self.tx
        # The next slot to send, as go_back would leave it.
        next_offset = Signal(range(slots + 1))
        send_slot = Signal(range(slots))
        can_send = Signal()
        m.d.comb += [
            next_offset.eq(Mux(go_back, 0, sent_count)),
            send_slot.eq(Mux(head + next_offset >= slots, head + next_offset - slots, head + next_offset)),
            can_send.eq((next_offset != filled) & credit_ok),
        ]

        # Answers outside the session: a HELLO answer or a STALE frame, for the station that asked.
        reply_pending = Signal()
        reply = Signal(ReplyRequest)
        with m.If(self.reply.valid & self.reply_free):
            m.d.sync += [reply_pending.eq(1), reply.eq(self.reply)]
        reply_fh = Signal(FrameHeader)
        reply_mh = Signal(MessageHeader)
        hello_data = Signal(Hello)
        m.d.comb += [
            reply_fh.version.eq(hostlink.VERSION_MAJOR), reply_fh.session.eq(reply.session),
            reply_fh.flags.HELLO.eq(~reply.stale), reply_fh.flags.ANSWER.eq(~reply.stale),
            reply_fh.flags.BOUND.eq(~reply.stale & reply.bound), reply_fh.flags.STALE.eq(reply.stale),
            reply_fh.count.eq(~reply.stale), reply_fh.credit.eq(Mux(reply.stale, 0, self.rx_window)),
            reply_mh.op.eq(hostlink.OP_HELLO), reply_mh.len.eq(hostlink.HELLO.size),
            hello_data.magic.eq(hostlink.HELLO_MAGIC_VALUE), hello_data.spec_hash.eq(hostlink.SPEC_HASH),
            hello_data.mtu.eq(self.rx_mtu), hello_data.window.eq(self.rx_window),
            hello_data.host_base.eq(hostlink.HOST_WINDOW_BASE), hello_data.host_size.eq(hostlink.HOST_WINDOW_SIZE),
            hello_data.local_base.eq(self.local_base), hello_data.local_size.eq(self.local_size),
        ]
        reply_frame = Cat(reply_fh.as_value(), reply_mh.as_value(), hello_data.as_value())
        reply_idx = Signal(range(HELLO_FRAME_WORDS))
        reply_last = Signal()
        m.d.comb += reply_last.eq(Mux(reply.stale, reply_idx == FRAME_HEADER_WORDS - 1,
                                      reply_idx == HELLO_FRAME_WORDS - 1))

        def header(*, count, seq, length, numbered):
            m.d.sync += [
                hdr.version.eq(hostlink.VERSION_MAJOR),
                hdr.flags.NAK.eq(self.link.nak),
                hdr.flags.PROBE.eq(probe_due),
                hdr.count.eq(count),
                hdr.seq.eq(seq),
                hdr.frame.eq(tx_frame),
                hdr.credit.eq(self.link.credit),
                hdr.acked.eq(self.link.acked),
                hdr.session.eq(self.link.session),
                cur_len.eq(length),
                hidx.eq(0),
                tx_frame.eq(tx_frame + numbered),
                self.sent.frame.eq(1),
                self.sent.nak.eq(self.link.nak),
                self.sent.credit.eq(self.link.credit),
                probe_due.eq(0),
                counters.frames.eq(counters.frames + 1),
            ]
            if numbered:
                with m.If(serial_before(self.sent_end, seq + count, SEQ_BITS)):
                    m.d.sync += self.sent_end.eq(seq + count)
            m.next = "HEADER"

        with m.FSM(name="send") as send_fsm:
            with m.State("WAIT"):
                m.d.comb += spos_next.eq(0)
                # Not even in the cycle the HELLO is taken: the host's new credit comes with it.
                with m.If(restarting):
                    with m.If(restart_now):
                        m.d.sync += [head.eq(0), filled.eq(0), occupied.eq(0), sent_count.eq(0), sent_max.eq(0),
                                     self.sent_end.eq(0),
                                     tx_frame.eq(0),
                                     waited.eq(0), restart.eq(0), go_back.eq(0), probe_due.eq(0), quiet.eq(0),
                                     self.sent.frame.eq(1), self.sent.credit.eq(self.rx_window)]
                with m.Elif(reply_pending):
                    m.d.sync += [reply_idx.eq(0), counters.frames.eq(counters.frames + 1)]
                    m.next = "REPLY"
                with m.Elif(~self.link.bound):
                    pass
                with m.Elif(can_send):
                    m.d.comb += [start_frame.eq(1), go_back_now.eq(go_back)]
                    m.d.sync += [sslot.eq(send_slot), sbase.eq(slot_start[send_slot]), go_back.eq(0), waited.eq(0)]
                    with m.If(next_offset < sent_max):
                        m.d.sync += counters.resent_frames.eq(counters.resent_frames + 1)
                    header(count=slot_count[send_slot], seq=slot_seq[send_slot], length=slot_len[send_slot],
                           numbered=1)
                with m.Elif((self.link.update & ~(builder_has & (filled < slots))) | probe_due):
                    # Not numbered, no credit needed; its seq is the next message the host will get.
                    m.d.comb += go_back_now.eq(go_back)
                    m.d.sync += go_back.eq(0)
                    header(count=0, seq=Mux(next_offset != filled, slot_seq[send_slot], bseq), length=0, numbered=0)
                with m.Elif((next_offset != filled) & ~waited):
                    m.d.sync += [waited.eq(1), counters.credit_stalls.eq(counters.credit_stalls + 1)]
            with m.State("HEADER"):
                m.d.comb += [streaming.eq(1), tx.valid.eq(1), tx.payload.data.eq(word(hdr, hidx)),
                             tx.payload.last.eq((hidx == FRAME_HEADER_WORDS - 1) & (cur_len == 0))]
                with m.If(tx.ready):
                    m.d.sync += hidx.eq(hidx + 1)
                    with m.If(hidx == FRAME_HEADER_WORDS - 1):
                        with m.If(cur_len == 0):
                            m.next = "WAIT"
                        with m.Else():
                            m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [streaming.eq(1), tx.valid.eq(1), tx.payload.data.eq(rd.data),
                             tx.payload.last.eq(spos == cur_len - 1)]
                with m.If(tx.ready):
                    m.d.comb += spos_next.eq(spos + 1)
                    with m.If(spos == cur_len - 1):
                        m.next = "WAIT"
            with m.State("REPLY"):
                m.d.comb += [self.tx_reply.eq(1), tx.valid.eq(1),
                             tx.payload.data.eq(reply_frame.word_select(reply_idx, 32)),
                             tx.payload.last.eq(reply_last)]
                with m.If(tx.ready):
                    m.d.sync += reply_idx.eq(reply_idx + 1)
                    with m.If(reply_last):
                        m.d.sync += reply_pending.eq(0)
                        m.next = "WAIT"
        m.d.comb += [
            restart_now.eq(restart & build_fsm.ongoing("IDLE") & send_fsm.ongoing("WAIT")),
            self.reply_free.eq(~reply_pending),
            sender_idle.eq(send_fsm.ongoing("WAIT") & ~unsent),
        ]
        # After the sender's, so that a NAK or the timer in the cycle a frame starts is not lost.
        with m.If(self.link.peer_nak):
            m.d.sync += go_back.eq(1)
        with m.If(resend_due):
            m.d.sync += [go_back.eq(1), probe_due.eq(1)]
        # Last, so that a HELLO in the very cycle of a restart restarts once more.
        with m.If(self.hello):
            m.d.sync += restart.eq(1)
        return m
