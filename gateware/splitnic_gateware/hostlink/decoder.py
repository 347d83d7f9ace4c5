"""Host-link decoder: the host's frames, checked whole, then carried out in order on the board's bus.

Ref: splitnic_spec.hostlink (module docstring: sessions, messages, sequence
numbers, loss, flow control); docs/registers.md, "Frame and message formats".

Two sides share a block RAM of ``slots`` frame slots, used as a ring:

* the receive side writes each frame into the next free slot as it arrives
  and checks it on the way (version, every message's 8-bit number and length,
  no message past the frame's end, the frame no longer than a slot, and
  ``error`` on its last word: a bad frame check sequence).  Only at the
  frame's last word does it decide, so nothing of a bad frame ever takes
  effect.  The verdict:

  - malformed (any check failed; a HELLO request without the magic, or one
    that would bind without this SPEC_HASH or with unusable sizes): counted;
  - a HELLO with PROBE (discovery): answered (``reply``: HELLO|ANSWER, the
    request's session, BOUND if bound to another station), nothing bound;
  - a HELLO request not sent to this board's own address (``unicast``; a
    broadcast one would bind every board on the segment), unless it is
    another station's while bound (foreign, below): malformed;
  - a HELLO request while unbound, from the bound station (``from_host``) or
    with TAKEOVER: binds the board to the sender's session (``hello`` one
    cycle: the link keeps the sender's address, the encoder restarts),
    restarts the numbering (next message 0, no frame received yet, the host's
    credit from its header, its Hello.mtu on ``host_mtu``) and is answered;
    a repeat of the request that bound it (same station and session) is
    answered and restarts nothing;
  - while bound, any frame from another station (a HELLO request included):
    dropped and counted ``foreign``, never answered;
  - while unbound, or from the bound station with another session: dropped,
    counted ``stale`` and answered with a STALE frame of that session;
  - the session's own frames: malformed if ``acked`` is past every message
    the board sent (``board_end``); their ``credit`` and ``acked`` are taken
    when newer (serial arithmetic), NAK goes to the encoder (``link.peer_nak``),
    and then by sequence: a frame at the next expected message is committed
    (its messages acknowledged, ``link.acked``, at once: they will be carried
    out), or dropped as an overrun if no slot is free; one before it is a
    duplicate (dropped, acknowledged again at once); one after it a gap
    (dropped and counted, NAK raised once until the expected message comes
    again).

* the apply side walks committed frames in order: a WRITE inside one of the
  ``windows`` (NIC-local RAM, the NIC's registers, the link's counters) becomes Wishbone bursts of
  at most ``max_burst`` words; a READ becomes single reads whose words go to
  the encoder as one ANSWER; anything else (a span outside the windows, a READ
  of 0 or more than ``max_read_words`` words, an op the host may not send) is
  skipped and counted in ``bad_address``.

Credit (the spec's rule): ``next_frame + free``, where ``next_frame`` is the
newest of one past a numbered frame's number and an empty frame's own number
over every well-formed frame of the session (gaps and duplicates included, so
a frame lost on the cable costs no credit for long; a number more than a
window past the grant is ignored), and ``free`` the slots not
holding committed frames.  ``link.update`` asks the encoder for a frame now when
the grant grew by half the slots since the last frame it sent, when a NAK is
due, when messages were taken or a duplicate or PROBE came since that frame;
the encoder sends one with no messages if none of its own can go.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.


from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from splitnic_spec import board, constant, hostlink

from ..bus import CTI_CLASSIC, CTI_END, CTI_INCR, WishboneSignature
from .layouts import (COUNT_BITS, FRAME_BITS, FRAME_HEADER_WORDS, LEN_BITS, MESSAGE_HEADER_WORDS, MSG_SEQ_BITS,
                      SEQ_BITS, SESSION_BITS, FrameHeader, Hello, LinkSent, LinkState, MessageHeader, ReadRequest,
                      ReplyRequest, answer_stream, rx_stream, serial_after, serial_before, word)

__all__ = ["Decoder", "DecoderCounters", "DEFAULT_WINDOWS"]

#: What the host may write and read (byte address, bytes): NIC-local DMA RAM, the NIC's registers and
#: the link's own counters (BoardCounters; :class:`~.link.HostLink` serves them on the bus, writes ignored).
DEFAULT_WINDOWS = ((board.DMA_RAM_BASE, board.DMA_RAM_SIZE), (board.NIC_CSR_BASE, board.NIC_CSR_SIZE),
                   (hostlink.COUNTERS_BASE, hostlink.COUNTERS_SIZE))
#: A READ's answer must fit one standard frame with its two headers.
DEFAULT_MAX_READ_WORDS = (hostlink.MTU_STANDARD - hostlink.FRAME_HEADER.size - hostlink.MESSAGE_HEADER.size) // 4
_ALL_BYTES = 0b1111
_MIN_WINDOW = next(c.value for c in hostlink.CONSTANTS if c.name == "MIN_WINDOW")
#: Where a HELLO frame's first message and its Hello start, in words.
_HELLO_MESSAGE_AT = FRAME_HEADER_WORDS
_HELLO_AT = FRAME_HEADER_WORDS + MESSAGE_HEADER_WORDS
#: Words of the Hello the decoder checks: magic, spec_hash, mtu and window.
_HELLO_CHECKED_WORDS = 3


class DecoderCounters(data.Struct):
    """Free-running event counts of the decoder."""
    #: Frames accepted (in sequence, well-formed, from the host).
    frames: 32
    #: Messages in those frames.
    messages: 32
    #: Frames dropped as not this protocol's: bad version, bad message number or length, a message past
    #: the end, longer than a slot, a bad frame check sequence, a HELLO request that is not this spec's.
    malformed: 32
    #: Well-formed frames dropped because they did not start at the next expected message.
    gaps: 32
    #: Messages skipped: a span outside the windows, a bad READ size, an op the host may not send.
    bad_address: 32
    #: Well-formed frames that came again, wholly or partly before the next expected message.
    duplicates: 32
    #: In-sequence frames dropped for want of a free slot (the host sent beyond its credit).
    overruns: 32
    #: Frames dropped while bound: from another station, or a HELLO request of another station.
    foreign: 32
    #: Frames answered with STALE: unbound, or the bound station's with another session.
    stale: 32


class _Phase(enum.Enum, shape=3):
    """Where the receive side is in the frame."""
    FRAME_HEADER = 0
    MESSAGE_HEAD = 1     # MessageHeader word 0: op, seq, len
    MESSAGE_ADDR = 2     # MessageHeader word 1: addr
    MESSAGE_DATA = 3
    DONE = 4             # all ``count`` messages seen: the rest is padding


class Decoder(wiring.Component):
    """Checks the host's frames and carries out their messages on the board's bus."""

    def __init__(self, *, slots: int = 4, max_mtu: int = hostlink.MTU_STANDARD, windows=DEFAULT_WINDOWS,
                 max_read_words: int = DEFAULT_MAX_READ_WORDS, max_burst: int = constant("MAX_BURST")) -> None:
        if not isinstance(slots, int) or slots < _MIN_WINDOW:
            raise ValueError(f"slots must be an integer >= MIN_WINDOW, not {slots!r}")
        if not hostlink.MTU_STANDARD <= max_mtu <= hostlink.MTU_JUMBO:
            raise ValueError(f"max_mtu must be {hostlink.MTU_STANDARD}..{hostlink.MTU_JUMBO}, not {max_mtu}")
        for base, size in windows:
            if base % 4 or size % 4 or size <= 0 or base + size > 1 << 32:
                raise ValueError(f"a window must be whole words inside the 32-bit bus, not {base:#x}+{size:#x}")
        if not 1 <= max_read_words <= DEFAULT_MAX_READ_WORDS:
            raise ValueError(f"max_read_words must be 1..{DEFAULT_MAX_READ_WORDS} (an answer fits one standard "
                             f"frame), not {max_read_words}")
        self.slots = slots
        self.slot_words = max_mtu // 4
        self.windows = tuple(windows)
        self.max_read_words = max_read_words
        self.max_burst = max_burst
        super().__init__({
            "rx": In(rx_stream()),
            "from_host": In(1),
            "unicast": In(1),
            "bus": Out(WishboneSignature(30, burst=True)),
            "answer": Out(answer_stream()),
            "link": Out(LinkState),
            "sent": In(LinkSent),
            "board_end": In(SEQ_BITS),
            "hello": Out(1),
            "reply": Out(ReplyRequest),
            "host_mtu": Out(16, init=hostlink.MTU_STANDARD),
            "counters": Out(DecoderCounters),
        })

    def _in_windows(self, addr, nbytes):
        """Value: 1 if ``nbytes`` bytes at byte address ``addr`` are whole words inside one window."""
        ok = 0
        for base, size in self.windows:
            ok = ok | ((addr >= base) & (addr + nbytes <= base + size))
        return ok & (addr[:2] == 0)

    def elaborate(self, platform) -> Module:
        m = Module()
        slots, slot_words = self.slots, self.slot_words
        m.submodules.buffer = buffer = Memory(shape=32, depth=slots * slot_words, init=[])
        wr = buffer.write_port()
        rd = buffer.read_port()
        counters = self.counters

        def next_slot(s):
            return Mux(s == slots - 1, 0, s + 1)

        # ---- link state ----
        wr_slot = Signal(range(slots))
        rd_slot = Signal(range(slots))
        pending = Signal(range(slots + 1))         # committed frames not yet carried out
        expected = Signal(SEQ_BITS)                # next message number wanted
        next_frame = Signal(FRAME_BITS)            # the spec's next_frame: the grant is next_frame + free
        peer_credit = Signal(FRAME_BITS)
        peer_acked = Signal(SEQ_BITS)
        bound = Signal()
        session = Signal(SESSION_BITS)
        nak = Signal()
        dropping = Signal()                        # after a gap, until the expected message comes
        last_sent_credit = Signal(FRAME_BITS, init=slots)
        credit = Signal(FRAME_BITS)
        grown = Signal(FRAME_BITS)
        ack_due = Signal()                         # messages taken since the encoder's last frame
        m.d.comb += [
            credit.eq(next_frame + slots - pending),
            self.link.bound.eq(bound),
            self.link.session.eq(session),
            self.link.peer_acked.eq(peer_acked),
            self.link.acked.eq(expected),
            self.link.credit.eq(credit),
            self.link.peer_credit.eq(peer_credit),
            self.link.nak.eq(nak),
            grown.eq((credit - last_sent_credit)[:FRAME_BITS]),
        ]
        # Half the slots freed since the host last heard (serial: just after a HELLO it may run behind).
        # Registered: the encoder's answer to the SoC bus depends on it, so unregistered the credit's
        # adders sat on the board's slowest path in sys, on through the bus into the CPU.  A cycle
        # late costs nothing: the frame it asks for is queued until it has left.
        m.d.sync += self.link.update.eq(bound & (nak | ack_due
                                                 | (~grown[FRAME_BITS - 1] & (grown >= max(1, slots // 2)))))
        with m.If(self.sent.frame):
            m.d.sync += [last_sent_credit.eq(self.sent.credit), ack_due.eq(0)]
            with m.If(self.sent.nak):
                m.d.sync += nak.eq(0)
        commit = Signal()
        retire = Signal()
        m.d.sync += pending.eq(pending + commit - retire)

        # ---- receive side ----
        rx = self.rx
        m.d.comb += rx.ready.eq(1)
        beat = Signal()              # a whole word of the frame (a partial last word is padding)
        m.d.comb += beat.eq(rx.valid & (~rx.payload.last | (rx.payload.keep == _ALL_BYTES)))
        wpos = Signal(range(slot_words + 1))
        starting = Signal(init=1)    # the next word is a frame's first
        have_slot = Signal()
        have_slot_now = Signal()
        m.d.comb += have_slot_now.eq(Mux(starting, pending < slots, have_slot))
        hdr = Signal(FrameHeader)
        phase = Signal(_Phase)
        phase_next = Signal(_Phase)
        bad = Signal()
        bad_next = Signal()
        index = Signal(COUNT_BITS)   # messages begun
        left = Signal(LEN_BITS)      # data words of the current message still to come
        mh = Signal(MessageHeader)
        m.d.comb += [word(mh, 0).eq(rx.payload.data), phase_next.eq(phase), bad_next.eq(bad)]
        hello_mh = Signal(MessageHeader)      # word 0 of a HELLO frame's message header
        hello_in = Signal(Hello)              # its first _HELLO_CHECKED_WORDS words

        def message_ended(begun):
            m.d.comb += phase_next.eq(Mux(begun == hdr.count, _Phase.DONE, _Phase.MESSAGE_HEAD))

        with m.If(beat):
            with m.If(wpos == slot_words):
                m.d.comb += bad_next.eq(1)           # longer than any frame the host may send
            with m.Else():
                m.d.comb += [wr.en.eq(have_slot_now), wr.addr.eq(wr_slot * slot_words + wpos),
                             wr.data.eq(rx.payload.data)]
                m.d.sync += wpos.eq(wpos + 1)
            with m.Switch(phase):
                with m.Case(_Phase.FRAME_HEADER):
                    for i in range(FRAME_HEADER_WORDS):
                        with m.If(wpos == i):
                            m.d.sync += word(hdr, i).eq(rx.payload.data)
                    with m.If(wpos == FRAME_HEADER_WORDS - 1):
                        m.d.comb += phase_next.eq(Mux(hdr.count == 0, _Phase.DONE, _Phase.MESSAGE_HEAD))
                with m.Case(_Phase.MESSAGE_HEAD):
                    with m.If((mh.seq != (hdr.seq + index)[:MSG_SEQ_BITS]) | (mh.len[:2] != 0)
                              | (mh.len > hostlink.MAX_MESSAGE_DATA)):
                        m.d.comb += bad_next.eq(1)
                    m.d.sync += [index.eq(index + 1), left.eq(mh.len[2:])]
                    m.d.comb += phase_next.eq(_Phase.MESSAGE_ADDR)
                with m.Case(_Phase.MESSAGE_ADDR):
                    with m.If(left == 0):
                        message_ended(index)
                    with m.Else():
                        m.d.comb += phase_next.eq(_Phase.MESSAGE_DATA)
                with m.Case(_Phase.MESSAGE_DATA):
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        message_ended(index)
            with m.If(wpos == _HELLO_MESSAGE_AT):
                m.d.sync += word(hello_mh, 0).eq(rx.payload.data)
            for i in range(_HELLO_CHECKED_WORDS):
                with m.If(wpos == _HELLO_AT + i):
                    m.d.sync += word(hello_in, i).eq(rx.payload.data)
            with m.If(starting):
                m.d.sync += [have_slot.eq(pending < slots), starting.eq(0)]
            m.d.sync += [phase.eq(phase_next), bad.eq(bad_next)]

        # The verdict, on the last word (a word of padding included).
        self_hello = Signal()
        hello_shape = Signal()       # one HELLO message, a Hello with the magic, a session: enough for discovery
        hello_ok = Signal()          # and this spec's hash and usable sizes: enough to bind
        well_formed = Signal()
        # The host's own frame: from the bound station, of the bound session.
        in_session = Signal()
        m.d.comb += [
            well_formed.eq(~bad_next & (phase_next == _Phase.DONE) & ~rx.payload.error
                           & (hdr.version == hostlink.VERSION_MAJOR)),
            self_hello.eq(hdr.flags.HELLO),
            hello_shape.eq((hdr.count == 1) & (hello_mh.op == hostlink.OP_HELLO) & (hdr.session != 0)
                           & (hello_mh.len >= hostlink.HELLO.size) & (hello_in.magic == hostlink.HELLO_MAGIC_VALUE)),
            hello_ok.eq(hello_shape & (hello_in.spec_hash == hostlink.SPEC_HASH)
                        & (hello_in.mtu >= hostlink.MTU_STANDARD) & (hello_in.window >= _MIN_WINDOW)),
            in_session.eq(bound & self.from_host & (hdr.session == session)),
        ]
        # A numbered frame moves next_frame one past its number, a frame of no messages to its number.
        frame_next = Signal(FRAME_BITS)
        m.d.comb += frame_next.eq(Mux(hdr.count == 0, hdr.frame, hdr.frame + 1))
        m.d.sync += [self.hello.eq(0), self.reply.valid.eq(0), self.link.peer_nak.eq(0)]

        def answer(*, stale: bool, bound_elsewhere=0):
            m.d.sync += [self.reply.valid.eq(1), self.reply.stale.eq(stale), self.reply.bound.eq(bound_elsewhere),
                         self.reply.session.eq(hdr.session)]

        with m.If(rx.valid & rx.payload.last):
            m.d.sync += [wpos.eq(0), starting.eq(1), phase.eq(_Phase.FRAME_HEADER), bad.eq(0), index.eq(0)]
            # DONE is reached only after the header's last word, so the fields used here are all in hdr.
            with m.If(~well_formed | (self_hello & ~hello_shape)
                      | (self_hello & ~hdr.flags.PROBE & ~hello_ok)):
                m.d.sync += counters.malformed.eq(counters.malformed + 1)
            with m.Elif(self_hello & hdr.flags.PROBE):
                # Discovery: answer (whatever the spec hash: the host says which side to rebuild), bind nothing.
                answer(stale=False, bound_elsewhere=bound & ~self.from_host)
            with m.Elif(self_hello & bound & ~self.from_host & ~hdr.flags.TAKEOVER):
                # Another station's request while bound: not a word back.
                m.d.sync += counters.foreign.eq(counters.foreign + 1)
            with m.Elif(self_hello & ~self.unicast):
                # A binding request to the broadcast address would bind every board that hears it.
                m.d.sync += counters.malformed.eq(counters.malformed + 1)
            with m.Elif(self_hello & in_session):
                # The request that bound us, again (resent until answered, or duplicated): answer, restart nothing.
                answer(stale=False)
            with m.Elif(self_hello):
                # Bind to the sender and its session; both directions start again at 0.
                answer(stale=False)
                m.d.sync += [self.hello.eq(1), self.host_mtu.eq(hello_in.mtu), bound.eq(1), session.eq(hdr.session),
                             expected.eq(0), next_frame.eq(0), peer_credit.eq(hdr.credit), peer_acked.eq(0),
                             nak.eq(0), dropping.eq(0), ack_due.eq(0), last_sent_credit.eq(slots)]
            with m.Elif(bound & ~self.from_host):
                # Another station's frame while bound: not a word back.
                m.d.sync += counters.foreign.eq(counters.foreign + 1)
            with m.Elif(~in_session):
                # Unbound (the board was reset), or the bound station's old session: tell it.
                answer(stale=True)
                m.d.sync += counters.stale.eq(counters.stale + 1)
            with m.Elif(serial_after(hdr.acked, self.board_end, SEQ_BITS)):
                # An acked past every message the board sent (``board_end``, the encoder's): nonsense.
                m.d.sync += counters.malformed.eq(counters.malformed + 1)
            with m.Else():
                # Newest wins (serial arithmetic): a late or repeated frame takes nothing back.
                with m.If(serial_after(hdr.credit, peer_credit, FRAME_BITS)):
                    m.d.sync += peer_credit.eq(hdr.credit)
                with m.If(serial_after(hdr.acked, peer_acked, SEQ_BITS)):
                    m.d.sync += peer_acked.eq(hdr.acked)
                # A number far past our own grant (a window past it at most is a host that overshot) is
                # nonsense and moves nothing (spec).
                with m.If(serial_after(frame_next, next_frame, FRAME_BITS)
                          & ~serial_after(frame_next, credit + slots, FRAME_BITS)):
                    m.d.sync += next_frame.eq(frame_next)
                m.d.sync += self.link.peer_nak.eq(hdr.flags.NAK)
                with m.If(hdr.flags.PROBE):
                    # Answered at once with acked and credit (after the sent strobe above, like ack_due below).
                    m.d.sync += ack_due.eq(1)
                with m.If(hdr.seq == expected):
                    with m.If((hdr.count != 0) & ~have_slot_now):
                        m.d.sync += [counters.overruns.eq(counters.overruns + 1), dropping.eq(1)]
                        with m.If(~dropping):
                            m.d.sync += nak.eq(1)
                    with m.Else():
                        m.d.comb += commit.eq(hdr.count != 0)
                        # After the sent strobe above: a frame that leaves now carried the old acked.
                        with m.If(hdr.count != 0):
                            m.d.sync += ack_due.eq(1)
                        m.d.sync += [expected.eq(expected + hdr.count), dropping.eq(0), nak.eq(0),
                                     counters.frames.eq(counters.frames + 1),
                                     counters.messages.eq(counters.messages + hdr.count)]
                        with m.If(hdr.count != 0):
                            m.d.sync += wr_slot.eq(next_slot(wr_slot))
                with m.Elif(serial_before(hdr.seq, expected, SEQ_BITS)):
                    # The host did not see our acked (or resent early): tell it again, at once.
                    m.d.sync += [counters.duplicates.eq(counters.duplicates + 1), ack_due.eq(1)]
                with m.Else():
                    m.d.sync += [counters.gaps.eq(counters.gaps + 1), dropping.eq(1)]
                    with m.If(~dropping):
                        m.d.sync += nak.eq(1)

        # ---- apply side ----
        aptr = Signal(range(slots * slot_words))
        aptr_next = Signal(range(slots * slot_words))
        # The read port always shows buffer[aptr]: it reads the address aptr takes next.
        m.d.comb += [aptr_next.eq(aptr), rd.addr.eq(aptr_next)]
        m.d.sync += aptr.eq(aptr_next)
        rbase = Signal(range(slots * slot_words))
        m.d.comb += rbase.eq(rd_slot * slot_words)
        todo = Signal(COUNT_BITS)            # messages of the frame still to carry out
        op = Signal(8)
        mwords = Signal(LEN_BITS)            # data words of the current message
        after = Signal(range(slots * slot_words))   # where the next message header is
        adr = Signal(30)
        write_ok = Signal()                  # the message's span lies inside one window
        read_ok = Signal()                   # the READ's request is well-formed and inside one window
        remaining = Signal(LEN_BITS)
        burst_left = Signal(range(self.max_burst + 1))
        tag = Signal.like(self.answer.payload.tag)
        read_words = Signal.like(self.answer.payload.words)
        answer_data = Signal(32)
        bus = self.bus
        m.d.comb += [bus.sel.eq(0xF), bus.bte.eq(0)]
        fh0 = Signal(FrameHeader)
        m.d.comb += word(fh0, 0).eq(rd.data)
        amh = Signal(MessageHeader)
        m.d.comb += word(amh, 0).eq(rd.data)
        req = Signal(ReadRequest)
        m.d.comb += req.eq(rd.data)

        def skip_to(ptr):
            m.d.comb += aptr_next.eq(ptr)
            m.d.sync += counters.bad_address.eq(counters.bad_address + 1)
            m.next = "MESSAGE_HEAD"

        with m.FSM(name="apply"):
            with m.State("IDLE"):
                m.d.comb += aptr_next.eq(rbase)
                with m.If(pending != 0):
                    m.next = "FRAME"
            with m.State("FRAME"):
                m.d.sync += todo.eq(fh0.count)
                m.d.comb += aptr_next.eq(aptr + FRAME_HEADER_WORDS)
                m.next = "MESSAGE_HEAD"
            with m.State("MESSAGE_HEAD"):
                with m.If(todo == 0):
                    m.d.comb += retire.eq(1)
                    m.d.sync += rd_slot.eq(next_slot(rd_slot))
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [todo.eq(todo - 1), op.eq(amh.op), mwords.eq(amh.len[2:])]
                    m.d.comb += aptr_next.eq(aptr + 1)
                    m.next = "MESSAGE_ADDR"
            with m.State("MESSAGE_ADDR"):
                # The window check is registered here and acted on in MESSAGE_CHECK: from the block
                # RAM's output through the comparators back to its address was the board's slowest
                # path in sys.  The read port keeps showing the address word meanwhile.
                addr = rd.data
                m.d.sync += [adr.eq(addr[2:]), remaining.eq(mwords), after.eq(aptr + 1 + mwords),
                             burst_left.eq(Mux(mwords > self.max_burst, self.max_burst, mwords)),
                             write_ok.eq(self._in_windows(addr, mwords * 4))]
                m.next = "MESSAGE_CHECK"
            with m.State("MESSAGE_CHECK"):
                data_at = aptr + 1
                with m.If((op == hostlink.OP_WRITE) & (mwords == 0)):
                    m.d.comb += aptr_next.eq(data_at)
                    m.next = "MESSAGE_HEAD"
                with m.Elif((op == hostlink.OP_WRITE) & write_ok):
                    m.d.comb += aptr_next.eq(data_at)
                    m.next = "WRITE"
                with m.Elif((op == hostlink.OP_READ) & (mwords != 0)):
                    m.d.comb += aptr_next.eq(data_at)
                    m.next = "READ_REQUEST"
                with m.Else():
                    skip_to(after)
            with m.State("WRITE"):
                m.d.comb += [bus.cyc.eq(1), bus.stb.eq(1), bus.we.eq(1), bus.adr.eq(adr), bus.dat_w.eq(rd.data),
                             bus.cti.eq(Mux(burst_left == 1, CTI_END, CTI_INCR))]
                with m.If(bus.ack):
                    m.d.comb += aptr_next.eq(aptr + 1)
                    m.d.sync += [adr.eq(adr + 1), remaining.eq(remaining - 1), burst_left.eq(burst_left - 1)]
                    with m.If(remaining == 1):
                        m.next = "MESSAGE_HEAD"
                    with m.Elif(burst_left == 1):
                        m.next = "NEXT_BURST"
            with m.State("NEXT_BURST"):
                # One cycle with cyc low: the arbiter may hand the bus to another master between bursts.
                m.d.sync += burst_left.eq(Mux(remaining > self.max_burst, self.max_burst, remaining))
                m.next = "WRITE"
            with m.State("READ_REQUEST"):
                # Registered, then acted on, as for the window check of a WRITE.
                m.d.sync += [tag.eq(req.tag), read_words.eq(req.words), remaining.eq(req.words),
                             read_ok.eq((req.words != 0) & (req.words <= self.max_read_words)
                                        & self._in_windows(adr << 2, req.words * 4))]
                m.next = "READ_CHECK"
            with m.State("READ_CHECK"):
                with m.If(read_ok):
                    m.next = "READ"
                with m.Else():
                    skip_to(after)
            with m.State("READ"):
                m.d.comb += [bus.cyc.eq(1), bus.stb.eq(1), bus.adr.eq(adr), bus.cti.eq(CTI_CLASSIC)]
                with m.If(bus.ack):
                    m.d.sync += answer_data.eq(bus.dat_r)
                    m.next = "ANSWER"
            with m.State("ANSWER"):
                m.d.comb += [self.answer.valid.eq(1), self.answer.payload.data.eq(answer_data),
                             self.answer.payload.tag.eq(tag), self.answer.payload.words.eq(read_words),
                             self.answer.payload.last.eq(remaining == 1)]
                with m.If(self.answer.ready):
                    m.d.sync += [adr.eq(adr + 1), remaining.eq(remaining - 1)]
                    with m.If(remaining == 1):
                        m.d.comb += aptr_next.eq(after)
                        m.next = "MESSAGE_HEAD"
                    with m.Else():
                        m.next = "READ"
        return m
