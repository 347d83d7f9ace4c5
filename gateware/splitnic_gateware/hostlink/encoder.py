"""Host-link encoder: the NIC's host-window writes, IRQs and READ answers, as numbered messages in frames.

Ref: splitnic_spec.hostlink (module docstring: messages, sequence numbers,
flow control); docs/registers.md, "Frame and message formats".

Messages are built in a block RAM of two frame slots (ping-pong): while the
sender streams one finished frame out, the other fills.  A slot holds only the
messages; the sender makes the FrameHeader as the frame leaves, so ``acked``,
``credit`` and NAK are as fresh as they can be, and the frame number is taken
then.

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

The building frame goes to the sender when the next message does not fit in
``mtu`` (clamped to MTU_STANDARD..max_mtu), when nothing new came for
``latency`` cycles and the sender has room for it (so a busy sender makes
frames longer, not more numerous), or at once when the decoder asks
(``link.update``: NAK or more credit to grant) and nothing else is queued; that
frame may carry no messages.

Flow control: the sender sends no frame numbered at or beyond the host's
``link.peer_credit``; a frame of no messages is not numbered (it carries the
next number without taking it) and needs no credit, though it still leaves
in its turn, behind a frame that waits for credit.  With both slots full the
``dma`` port stops acking, so the NIC's DMA (and behind it its RX FIFO) waits.

HELLO: when the decoder has taken the host's HELLO (``hello``, one cycle), the
encoder restarts: it waits until the sender is between frames and the builder
between messages, drops whatever both slots and the open message hold (they
belong to the session the host just closed), numbers messages and frames from
0 again and sends the board's HELLO answer (``Hello``: what the decoder takes,
the host window, NIC-local memory) before any other frame.  The ``dma`` port
waits meanwhile.

Reads on the ``dma`` port (the NIC never reads the host window: the driver
keeps what the NIC reads in NIC-local memory) are acked with 0, so a stray one
cannot hang the bus.  Byte selects are ignored: the NIC's DMA writes whole words.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from splitnic_spec import hostlink

from ..bus import WishboneSignature
from .layouts import (FRAME_HEADER_WORDS, LEN_BITS, MESSAGE_HEADER_WORDS, SEQ_BITS, FrameHeader, Hello,
                      LinkSent, LinkState, MessageHeader, answer_stream, serial_before, tx_stream, word,
                      FRAME_BITS, COUNT_BITS)

__all__ = ["Encoder", "EncoderCounters"]

#: An IRQ message's data: one word.
_IRQ_WORDS = 1
#: Words of the board's HELLO answer: FrameHeader, MessageHeader, Hello.
HELLO_FRAME_WORDS = (hostlink.FRAME_HEADER.size + hostlink.MESSAGE_HEADER.size + hostlink.HELLO.size) // 4


class EncoderCounters(data.Struct):
    """Free-running event counts of the encoder."""
    #: Frames sent.
    frames: 32
    #: Messages put into frames.
    messages: 32
    #: Times a finished frame had to wait for the host's credit.
    credit_stalls: 32


class Encoder(wiring.Component):
    """Packs the board's messages to the host into host-link frames.

    ``max_mtu``: the largest frame (after the Ethernet header) the buffer holds;
    the ``mtu`` input (the host's Hello.mtu) is clamped to it.  ``rx_mtu`` and
    ``rx_window`` are what the board's decoder takes (its Hello.mtu and
    Hello.window); ``local_base``/``local_size`` the NIC-local memory the host
    writes (Hello.local_base/local_size).
    """

    def __init__(self, *, max_mtu: int = hostlink.MTU_STANDARD, rx_mtu: int = hostlink.MTU_STANDARD,
                 rx_window: int = 4, local_base: int = 0, local_size: int = 0) -> None:
        if not hostlink.MTU_STANDARD <= max_mtu <= hostlink.MTU_JUMBO:
            raise ValueError(f"max_mtu must be {hostlink.MTU_STANDARD}..{hostlink.MTU_JUMBO}, not {max_mtu}")
        if not hostlink.MTU_STANDARD <= rx_mtu <= hostlink.MTU_JUMBO:
            raise ValueError(f"rx_mtu must be {hostlink.MTU_STANDARD}..{hostlink.MTU_JUMBO}, not {rx_mtu}")
        if not 2 <= rx_window < 1 << FRAME_BITS:
            raise ValueError(f"rx_window must be 2..{(1 << FRAME_BITS) - 1} frames, not {rx_window}")
        self.max_mtu = max_mtu
        self.rx_mtu, self.rx_window = rx_mtu, rx_window
        self.local_base, self.local_size = local_base, local_size
        #: Words of one slot: a whole frame less its FrameHeader (made as it leaves).
        self.slot_words = max_mtu // 4 - FRAME_HEADER_WORDS
        super().__init__({
            "dma": In(WishboneSignature(30, burst=True)),
            "irq": In(1),
            "hello": In(1),
            "answer": In(answer_stream()),
            "link": In(LinkState),
            "sent": Out(LinkSent),
            "mtu": In(16),
            "latency": In(16),
            "tx": Out(tx_stream()),
            "counters": Out(EncoderCounters),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        slot_words = self.slot_words
        m.submodules.buffer = buffer = Memory(shape=32, depth=2 * slot_words, init=[])
        wr = buffer.write_port()
        rd = buffer.read_port()

        # Room for messages in one frame, from the host's mtu.
        room = Signal(range(slot_words + 1))
        mtu = Signal(16)
        m.d.comb += mtu.eq(Mux(self.mtu > self.max_mtu, self.max_mtu,
                               Mux(self.mtu < hostlink.MTU_STANDARD, hostlink.MTU_STANDARD, self.mtu)))
        m.d.sync += room.eq(mtu[2:] - FRAME_HEADER_WORDS)

        # ---- slots handed from the builder to the sender ----
        full = Signal(2)
        slot_count = [Signal(COUNT_BITS, name=f"slot{i}_count") for i in range(2)]
        slot_seq = [Signal(SEQ_BITS, name=f"slot{i}_seq") for i in range(2)]
        slot_len = [Signal(range(slot_words + 1), name=f"slot{i}_len") for i in range(2)]

        # ---- builder ----
        bslot = Signal()
        bbase = Signal(range(2 * slot_words))
        m.d.comb += bbase.eq(Mux(bslot, slot_words, 0))
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
        m.d.comb += flush_now.eq(
            # Latency: only when the sender could take the frame at once; while it is busy the frame grows.
            (((bcount != 0) | is_open) & (idle >= self.latency) & ~full.bit_select(~bslot, 1))
            # The decoder wants a header out (NAK, credit) and nothing already queued would carry it.
            | (self.link.update & (full == 0)))

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
                                     bslot.eq(0), idle.eq(0)]
                with m.Elif(flush_now):
                    with m.If(is_open):
                        m.next = "CLOSE_HEAD"
                    with m.Else():
                        m.next = "FLUSH"
                with m.Elif(irq_pending):
                    with m.If(is_open):
                        m.next = "CLOSE_HEAD"
                    with m.Elif(fits(MESSAGE_HEADER_WORDS + _IRQ_WORDS)):
                        # The count as it is now; a rise in this very cycle waits for the next message.
                        m.d.comb += [wr.en.eq(1), wr.addr.eq(bbase + bpos + MESSAGE_HEADER_WORDS),
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
                        start_message(hostlink.OP_ANSWER, self.answer.payload.tag, 0)
                        m.next = "ANSWER"
                    with m.Else():
                        m.next = "FLUSH"
                with m.Elif(write_req):
                    with m.If(mergeable & fits(1)):
                        m.d.comb += [wr.en.eq(1), wr.addr.eq(bbase + bpos), wr.data.eq(bus.dat_w), bus.ack.eq(1)]
                        m.d.sync += [bpos.eq(bpos + 1), mwords.eq(mwords + 1), mnext.eq(mnext + 1), idle.eq(0)]
                    with m.Elif(is_open):
                        m.next = "CLOSE_HEAD"
                    with m.Elif(fits(MESSAGE_HEADER_WORDS + 1)):
                        m.d.comb += [wr.en.eq(1), wr.addr.eq(bbase + bpos + MESSAGE_HEADER_WORDS),
                                     wr.data.eq(bus.dat_w), bus.ack.eq(1)]
                        m.d.sync += mnext.eq(bus.adr + 1)
                        start_message(hostlink.OP_WRITE, bus.adr << 2, 1)
                    with m.Else():
                        m.next = "FLUSH"

            with m.State("ANSWER"):
                m.d.comb += self.answer.ready.eq(1)
                with m.If(self.answer.valid):
                    m.d.comb += [wr.en.eq(1), wr.addr.eq(bbase + bpos), wr.data.eq(self.answer.payload.data)]
                    m.d.sync += [bpos.eq(bpos + 1), mwords.eq(mwords + 1), idle.eq(0)]
                    with m.If(self.answer.payload.last):
                        m.next = "CLOSE_HEAD"

            # Close the open message: its header, now that its length is known.
            with m.State("CLOSE_HEAD"):
                m.d.comb += [wr.en.eq(1), wr.addr.eq(bbase + mhdr), wr.data.eq(word(mh, 0))]
                m.next = "CLOSE_ADDR"
            with m.State("CLOSE_ADDR"):
                m.d.comb += [wr.en.eq(1), wr.addr.eq(bbase + mhdr + 1), wr.data.eq(word(mh, 1))]
                m.d.sync += [is_open.eq(0), tx_seq.eq(tx_seq + 1), bcount.eq(bcount + 1),
                             counters.messages.eq(counters.messages + 1)]
                m.next = "IDLE"

            # Hand the slot to the sender once the other one is free (else the ports wait: no credit).
            with m.State("FLUSH"):
                with m.If(restart):
                    m.next = "IDLE"         # the frame belongs to the closed session
                with m.Elif(~full.bit_select(~bslot, 1)):
                    for i in range(2):
                        with m.If(bslot == i):
                            m.d.sync += [full[i].eq(1), slot_count[i].eq(bcount), slot_seq[i].eq(bseq),
                                         slot_len[i].eq(bpos)]
                    m.d.sync += [bslot.eq(~bslot), bpos.eq(0), bcount.eq(0), bseq.eq(tx_seq), idle.eq(0)]
                    m.next = "IDLE"

        # ---- sender ----
        sslot = Signal()
        sbase = Signal(range(2 * slot_words))
        m.d.comb += sbase.eq(Mux(sslot, slot_words, 0))
        spos = Signal(range(slot_words + 1))
        spos_next = Signal(range(slot_words + 1))
        # The read port always shows buffer[sbase + spos]: it reads the address spos takes next.
        m.d.comb += [spos_next.eq(spos), rd.addr.eq(sbase + spos_next)]
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

        # The board's HELLO answer: constant but for nothing, so it is a constant value.
        hello_fh = Signal(FrameHeader)
        hello_mh = Signal(MessageHeader)
        hello_data = Signal(Hello)
        m.d.comb += [
            hello_fh.version.eq(hostlink.VERSION_MAJOR), hello_fh.flags.HELLO.eq(1), hello_fh.count.eq(1),
            hello_fh.credit.eq(self.rx_window),
            hello_mh.op.eq(hostlink.OP_HELLO), hello_mh.len.eq(hostlink.HELLO.size),
            hello_data.magic.eq(hostlink.HELLO_MAGIC_VALUE), hello_data.spec_hash.eq(hostlink.SPEC_HASH),
            hello_data.mtu.eq(self.rx_mtu), hello_data.window.eq(self.rx_window),
            hello_data.host_base.eq(hostlink.HOST_WINDOW_BASE), hello_data.host_size.eq(hostlink.HOST_WINDOW_SIZE),
            hello_data.local_base.eq(self.local_base), hello_data.local_size.eq(self.local_size),
        ]
        hello_frame = Cat(hello_fh.as_value(), hello_mh.as_value(), hello_data.as_value())
        hello_idx = Signal(range(HELLO_FRAME_WORDS))

        with m.FSM(name="send") as send_fsm:
            with m.State("WAIT"):
                m.d.comb += spos_next.eq(0)
                # Not even in the cycle the HELLO is taken: the host's new credit comes with it.
                with m.If(restarting):
                    with m.If(restart_now):
                        m.d.sync += [full.eq(0), sslot.eq(0), tx_frame.eq(0), waited.eq(0), restart.eq(0),
                                     hello_idx.eq(0), self.sent.frame.eq(1), self.sent.credit.eq(self.rx_window)]
                        m.next = "HELLO"
                with m.Elif(full.bit_select(sslot, 1)):
                    # A frame of no messages is not numbered: it carries the next number without
                    # taking it and needs no credit (the spec's flow control).
                    bare = Signal()
                    m.d.comb += bare.eq(Mux(sslot, slot_count[1], slot_count[0]) == 0)
                    with m.If(credit_ok | bare):
                        m.d.sync += [
                            hdr.version.eq(hostlink.VERSION_MAJOR),
                            hdr.flags.NAK.eq(self.link.nak),
                            hdr.count.eq(Mux(sslot, slot_count[1], slot_count[0])),
                            hdr.seq.eq(Mux(sslot, slot_seq[1], slot_seq[0])),
                            hdr.frame.eq(tx_frame),
                            hdr.credit.eq(self.link.credit),
                            hdr.acked.eq(self.link.acked),
                            cur_len.eq(Mux(sslot, slot_len[1], slot_len[0])),
                            hidx.eq(0),
                            tx_frame.eq(Mux(bare, tx_frame, tx_frame + 1)),
                            self.sent.frame.eq(1),
                            self.sent.nak.eq(self.link.nak),
                            self.sent.credit.eq(self.link.credit),
                            waited.eq(0),
                        ]
                        m.next = "HEADER"
                    with m.Elif(~waited):
                        m.d.sync += [waited.eq(1), counters.credit_stalls.eq(counters.credit_stalls + 1)]
            with m.State("HEADER"):
                m.d.comb += [tx.valid.eq(1), tx.payload.data.eq(word(hdr, hidx)),
                             tx.payload.last.eq((hidx == FRAME_HEADER_WORDS - 1) & (cur_len == 0))]
                with m.If(tx.ready):
                    m.d.sync += hidx.eq(hidx + 1)
                    with m.If(hidx == FRAME_HEADER_WORDS - 1):
                        with m.If(cur_len == 0):
                            m.next = "DONE"
                        with m.Else():
                            m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [tx.valid.eq(1), tx.payload.data.eq(rd.data),
                             tx.payload.last.eq(spos == cur_len - 1)]
                with m.If(tx.ready):
                    m.d.comb += spos_next.eq(spos + 1)
                    with m.If(spos == cur_len - 1):
                        m.next = "DONE"
            with m.State("HELLO"):
                m.d.comb += [tx.valid.eq(1), tx.payload.data.eq(hello_frame.word_select(hello_idx, 32)),
                             tx.payload.last.eq(hello_idx == HELLO_FRAME_WORDS - 1)]
                with m.If(tx.ready):
                    m.d.sync += hello_idx.eq(hello_idx + 1)
                    with m.If(hello_idx == HELLO_FRAME_WORDS - 1):
                        m.d.sync += counters.frames.eq(counters.frames + 1)
                        m.next = "WAIT"
            with m.State("DONE"):
                for i in range(2):
                    with m.If(sslot == i):
                        m.d.sync += full[i].eq(0)
                m.d.sync += [sslot.eq(~sslot), counters.frames.eq(counters.frames + 1)]
                m.next = "WAIT"
        m.d.comb += restart_now.eq(restart & build_fsm.ongoing("IDLE") & send_fsm.ongoing("WAIT"))
        # Last, so that a HELLO in the very cycle of a restart restarts once more.
        with m.If(self.hello):
            m.d.sync += restart.eq(1)
        return m
