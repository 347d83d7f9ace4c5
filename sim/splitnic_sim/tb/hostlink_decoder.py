"""cocotb tests of the host-link decoder: frames made with the spec's reference codec.

Ref: splitnic_spec.hostlink; splitnic_gateware.hostlink.decoder.  The DUT is
built with its defaults (4 slots, standard mtu, the board's windows); the bus
behind it is a memory that stalls at random.  Each test but the sessions' binds
the decoder first (a HELLO of session ``SESSION``), and the testbench plays
``from_host`` (the link's address check) per frame.
"""

from __future__ import annotations

import functools
import random
import struct

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from splitnic_gateware.hostlink.decoder import DecoderCounters
from splitnic_gateware.hostlink.layouts import AnswerWord, LinkSent, LinkState, ReplyRequest, RxWord
from splitnic_sim.tb.hostlink_common import bytes_of, pack, start, unpack, words_of
from splitnic_spec import board, hostlink
from splitnic_spec.hostlink import Frame, Message, encode_frame, read_request

RAM = board.DMA_RAM_BASE
CSR = board.NIC_CSR_BASE
SLOTS = 4
SESSION = 0x5EC7_0001
#: What the encoder has sent, as the testbench plays it: an acked up to it is taken.
BOARD_END = 1000
FH = hostlink.FRAME_HEADER.size


class DecoderTB:
    """Feeds frames to the decoder and plays the board's bus and the encoder's answer port."""

    def __init__(self, dut, *, stall_prob: float = 0.3) -> None:
        self.dut = dut
        self.rng = random.Random(cocotb.RANDOM_SEED)
        self.stall_prob = stall_prob
        #: Word-addressed memory behind the bus, and every write in bus order: (byte address, data).
        self.mem: dict[int, int] = {}
        self.writes: list[tuple[int, int]] = []
        #: Answers: (tag, words announced, data words).
        self.answers: list[tuple[int, int, list[int]]] = []
        self.busy_cycle = 0
        #: Every answer the decoder asked the encoder for (ReplyRequest fields), and every bind (LinkState).
        self.replies: list[dict[str, int]] = []
        self.binds: list[dict[str, int]] = []

    async def start(self, *, bind: bool = True) -> None:
        await start(self.dut, {"rx__valid": 0, "rx__payload": 0, "from_host": 1, "unicast": 1, "bus__ack": 0,
                               "bus__dat_r": 0, "answer__ready": 0, "sent": 0, "board_end": BOARD_END})
        cocotb.start_soon(self._bus())
        cocotb.start_soon(self._answers())
        cocotb.start_soon(self._strobes())
        if bind:
            await self.send(hello_frame(mtu=hostlink.MTU_STANDARD, window=100))
            await ClockCycles(self.dut.clk, 3)
            assert self.link()["bound"] and self.link()["session"] == SESSION, self.link()
            self.replies.clear()
            self.binds.clear()

    async def _strobes(self) -> None:
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            reply = unpack(ReplyRequest, int(dut.reply.value))
            if reply["valid"]:
                self.replies.append(reply)
            if dut.hello.value:
                self.binds.append(self.link())

    async def _bus(self) -> None:
        dut, cycle = self.dut, 0
        while True:
            await FallingEdge(dut.clk)
            cycle += 1
            # The decoder's bus outputs come from its registers: settled since the rising edge.
            ack = bool(dut.bus__cyc.value and dut.bus__stb.value) and self.rng.random() >= self.stall_prob
            dut.bus__ack.value = int(ack)
            if dut.bus__cyc.value:
                self.busy_cycle = cycle
            if ack:
                adr = int(dut.bus__adr.value)
                if dut.bus__we.value:
                    assert int(dut.bus__sel.value) == 0xF
                    self.mem[adr] = int(dut.bus__dat_w.value)
                    self.writes.append((adr * 4, self.mem[adr]))
                else:
                    dut.bus__dat_r.value = self.mem.get(adr, 0)

    async def _answers(self) -> None:
        dut, words = self.dut, []
        while True:
            await FallingEdge(dut.clk)
            ready = self.rng.random() < 0.7
            dut.answer__ready.value = int(ready)
            await ReadOnly()
            if ready and dut.answer__valid.value:
                w = unpack(AnswerWord, int(dut.answer__payload.value))
                words.append(w["data"])
                if w["last"]:
                    self.answers.append((w["tag"], w["words"], words))
                    words = []

    async def send(self, payload: bytes, *, from_host: bool = True, error: bool = False,
                   unicast: bool = True) -> None:
        """Send one frame's bytes after the Ethernet header, a word per cycle (``error``: a bad FCS;
        ``unicast``: sent to the board's own address, not broadcast)."""
        dut = self.dut
        tail = len(payload) % 4
        words = words_of(payload + bytes(-len(payload) % 4))
        await FallingEdge(dut.clk)
        dut.from_host.value = int(from_host)
        dut.unicast.value = int(unicast)
        for i, w in enumerate(words):
            last = i + 1 == len(words)
            keep = (1 << tail) - 1 if last and tail else 0xF
            dut.rx__payload.value = pack(RxWord, data=w, last=int(last), keep=keep, error=int(last and error))
            dut.rx__valid.value = 1
            await FallingEdge(dut.clk)
        dut.rx__valid.value = 0
        dut.from_host.value = 1
        dut.unicast.value = 1

    async def settle(self, quiet: int = 40) -> None:
        """Wait until the bus and the answer port have been idle for ``quiet`` cycles."""
        dut = self.dut
        idle = 0
        for _ in range(20_000):
            await FallingEdge(dut.clk)
            await ReadOnly()
            busy = dut.bus__cyc.value or dut.answer__valid.value
            idle = 0 if busy else idle + 1
            if idle >= quiet:
                return
        raise AssertionError("the decoder never went quiet")

    def counters(self) -> dict[str, int]:
        return unpack(DecoderCounters, int(self.dut.counters.value))

    def link(self) -> dict[str, int]:
        return unpack(LinkState, int(self.dut.link.value))

    async def encoder_sent(self, *, nak: bool, credit: int) -> None:
        """Play the encoder: a frame left, carrying ``credit`` (and NAK)."""
        await FallingEdge(self.dut.clk)
        self.dut.sent.value = pack(LinkSent, frame=1, nak=int(nak), credit=credit)
        await FallingEdge(self.dut.clk)
        self.dut.sent.value = 0


def _writes_of(frames: list[Frame]) -> list[tuple[int, int]]:
    """What the WRITE messages of ``frames`` put on the bus, in order."""
    out = []
    for f in frames:
        for m in f.messages:
            if m.op == hostlink.OP_WRITE:
                out += [(m.addr + 4 * i, w) for i, w in enumerate(words_of(m.data))]
    return out


def _random_writes(rng: random.Random, count: int) -> list[Message]:
    msgs = []
    for _ in range(count):
        n = rng.randint(1, 40)
        if rng.random() < 0.8:
            addr = RAM + 4 * rng.randrange(0, board.DMA_RAM_SIZE // 4 - n)
        else:
            addr = CSR + 4 * rng.randrange(0, board.NIC_CSR_SIZE // 4 - n)
        msgs.append(Message(hostlink.OP_WRITE, addr, bytes_of([rng.getrandbits(32) for _ in range(n)])))
    return msgs


def _frames(messages: list[Message], per_frame: list[int], *, first_seq: int = 0, first_frame: int = 0) -> list[Frame]:
    frames, seq, pos = [], first_seq, 0
    for i, n in enumerate(per_frame):
        frames.append(Frame(seq, first_frame + i, 100, 0, tuple(messages[pos:pos + n]), session=SESSION))
        seq, pos = seq + n, pos + n
    return frames


@cocotb.test()
async def writes_land_in_order(dut) -> None:
    """Each WRITE reaches the bus at its address, in message order, in bursts; acked and credit follow."""
    tb = DecoderTB(dut)
    await tb.start()
    msgs = _random_writes(tb.rng, 12)
    frames = _frames(msgs, [3, 5, 4])
    for f in frames:
        await tb.send(encode_frame(f))        # back to back: the slots queue them
    await tb.settle()
    assert tb.writes == _writes_of(frames)
    c = tb.counters()
    assert (c["frames"], c["messages"], c["malformed"], c["gaps"], c["bad_address"]) == (3, 12, 0, 0, 0), c
    link = tb.link()
    assert link["acked"] == 12 and link["credit"] == 3 + SLOTS and link["peer_credit"] == 100, link
    # Padding after the last message (a short frame on Ethernet) is ignored.  A frame of no messages is
    # taken, but it is not numbered: its frame (3, the host's next) moves the grant to 3 + free, not past it.
    await tb.send(encode_frame(Frame(12, 3, 101, 0, session=SESSION)) + bytes(30))
    await ClockCycles(dut.clk, 5)
    assert tb.counters()["frames"] == 4 and tb.link()["peer_credit"] == 101 and tb.link()["credit"] == 3 + SLOTS
    # Its next numbered frame moves it one past that frame's number: newest wins.
    await tb.send(encode_frame(Frame(12, 3, 101, 0, (msgs[0],), session=SESSION)))
    await tb.settle()
    assert tb.link()["credit"] == 4 + SLOTS, tb.link()
    # A late frame (number 1, an older credit and acked) takes nothing back.
    await tb.send(encode_frame(Frame(0, 1, 99, 0, (msgs[0],), session=SESSION)))
    await ClockCycles(dut.clk, 5)
    link = tb.link()
    assert (link["credit"], link["peer_credit"], link["acked"]) == (4 + SLOTS, 101, 13), link
    assert tb.counters()["duplicates"] == 1


@cocotb.test()
async def reads_are_answered_in_order(dut) -> None:
    """A READ's words go to the encoder with the tag; a READ after a WRITE sees it."""
    tb = DecoderTB(dut)
    await tb.start()
    for i in range(16):
        tb.mem[(RAM >> 2) + 0x10 + i] = 0x1000 + i
    data = [tb.rng.getrandbits(32) for _ in range(3)]
    frame = Frame(0, 0, 10, 0, session=SESSION, messages=(
        Message(hostlink.OP_READ, RAM + 0x40, read_request(5, 0x1234)),
        Message(hostlink.OP_WRITE, RAM + 0x44, bytes_of(data)),
        Message(hostlink.OP_READ, RAM + 0x40, read_request(5, 0xBEEF)),
        Message(hostlink.OP_READ, CSR, read_request(1, 7)),
    ))
    await tb.send(encode_frame(frame))
    await tb.settle()
    assert tb.answers == [(0x1234, 5, [0x1000, 0x1001, 0x1002, 0x1003, 0x1004]),
                          (0xBEEF, 5, [0x1000, *data, 0x1004]), (7, 1, [0])], tb.answers
    assert tb.counters()["messages"] == 4 and tb.counters()["bad_address"] == 0


@cocotb.test()
async def a_gap_drops_frames_until_the_resend(dut) -> None:
    """After a lost frame, later ones are dropped and counted, NAK is raised once; the resend resumes."""
    tb = DecoderTB(dut)
    await tb.start()
    msgs = _random_writes(tb.rng, 8)
    f0, f1, f2, f3 = _frames(msgs, [2, 1, 2, 3])
    await tb.send(encode_frame(f0))
    await tb.send(encode_frame(f2))            # f1 lost on the cable
    await tb.settle()
    assert tb.counters()["gaps"] == 1 and tb.link()["nak"] == 1 and tb.link()["update"] == 1
    assert tb.writes == _writes_of([f0]) and tb.link()["acked"] == 2
    # The encoder sent the NAK; a further frame after the gap is dropped but NAKs no more.
    await tb.encoder_sent(nak=True, credit=tb.link()["credit"])
    await tb.send(encode_frame(f3))
    await tb.settle()
    assert tb.counters()["gaps"] == 2 and tb.link()["nak"] == 0
    # The credit counts the dropped frames: no credit lost on the cable.
    assert tb.link()["credit"] == f3.frame + 1 + SLOTS
    # The host goes back to acked: an old frame first (a duplicate), then the rest, numbered on.
    await tb.send(encode_frame(Frame(f0.seq, 4, 100, 0, f0.messages, session=SESSION)))
    again = _frames(msgs[2:], [1, 2, 3], first_seq=2, first_frame=5)
    for f in again:
        await tb.send(encode_frame(f))
    await tb.settle()
    c = tb.counters()
    assert c["duplicates"] == 1 and c["frames"] == 4 and c["messages"] == 8, c
    assert tb.writes == _writes_of([f0, *again]) and tb.link()["acked"] == 8


@cocotb.test()
async def bad_frames_take_no_effect(dut) -> None:
    """A malformed frame is counted and none of its messages lands, not even those before the fault."""
    tb = DecoderTB(dut)
    await tb.start()
    rng = tb.rng
    good = Frame(0, 0, 100, 0, tuple(_random_writes(rng, 3)), session=SESSION)
    raw = bytearray(encode_frame(good))
    m1 = FH + 8 + len(good.messages[0].data)     # second message's header
    m2 = m1 + 8 + len(good.messages[1].data)
    version = bytearray(raw)
    version[0] = hostlink.VERSION_MAJOR + 1
    seq = bytearray(raw)
    seq[m1 + 1] ^= 1
    past_end = bytearray(raw)
    struct.pack_into("<H", past_end, m2 + 2, len(good.messages[2].data) + 4)
    odd_len = bytearray(raw)
    struct.pack_into("<H", odd_len, m2 + 2, len(good.messages[2].data) - 2)
    too_many = bytearray(raw)
    struct.pack_into("<H", too_many, 2, 4)
    cases = {"version": bytes(version), "message seq": bytes(seq), "past the end": bytes(past_end),
             "len not whole words": bytes(odd_len), "count beyond the messages": bytes(too_many),
             "truncated": bytes(raw[:-4]), "cut mid-word": bytes(raw[:-2]),
             "header only half": bytes(raw[:10]), "longer than the mtu": bytes(raw) + bytes(1600)}
    for n, (name, payload) in enumerate(cases.items(), 1):
        await tb.send(payload)
        await ClockCycles(dut.clk, 3)
        assert tb.counters()["malformed"] == n, f"{name}: not counted"
    # A bad frame check sequence: whole words, every message in them, and still nothing.
    await tb.send(bytes(raw), error=True)
    await ClockCycles(dut.clk, 3)
    assert tb.counters()["malformed"] == len(cases) + 1, "a frame with a bad FCS was not counted"
    await tb.send(bytes(raw), from_host=False)
    await tb.settle()
    assert tb.counters()["foreign"] == 1, "a frame from another source was not counted"
    assert tb.writes == [] and tb.link()["acked"] == 0 and tb.counters()["frames"] == 0
    assert tb.replies == [], "a bad or foreign frame was answered"
    await tb.send(bytes(raw))
    await tb.settle()
    assert tb.writes == _writes_of([good]) and tb.link()["acked"] == 3


@cocotb.test()
async def writes_outside_the_windows_are_dropped(dut) -> None:
    """A message whose span leaves the windows is skipped and counted; the rest of its frame lands."""
    tb = DecoderTB(dut)
    await tb.start()
    ok1 = Message(hostlink.OP_WRITE, RAM + 0x100, bytes_of([1, 2, 3]))
    ok2 = Message(hostlink.OP_WRITE, CSR + board.NIC_CSR_SIZE - 4, bytes_of([4]))
    ok3 = Message(hostlink.OP_WRITE, hostlink.COUNTERS_BASE, bytes_of([10]))             # the counters' window
    bad = (Message(hostlink.OP_WRITE, 0x1000_0000, bytes_of([5])),                                  # nowhere
           Message(hostlink.OP_WRITE, RAM + board.DMA_RAM_SIZE - 4, bytes_of([6, 7])),             # straddles the end
           Message(hostlink.OP_WRITE, CSR + 2, bytes_of([8])),                                     # not aligned
           Message(hostlink.OP_WRITE, hostlink.HOST_WINDOW_BASE, bytes_of([9])),                   # the host's
           Message(hostlink.OP_WRITE, CSR + board.NIC_CSR_SIZE - 4, bytes_of([11, 12])),          # into the next window
           Message(hostlink.OP_WRITE, hostlink.COUNTERS_BASE + hostlink.COUNTERS_SIZE - 4, bytes_of([13, 14])),
           Message(hostlink.OP_READ, RAM + board.DMA_RAM_SIZE - 8, read_request(3, 1)),            # read past the end
           Message(hostlink.OP_READ, RAM, read_request(0, 2)),                                     # zero words
           Message(hostlink.OP_IRQ, 0, bytes_of([1])))                                             # not the host's op
    frame = Frame(0, 0, 100, 0, (ok1, *bad, ok2, ok3), session=SESSION)
    await tb.send(encode_frame(frame))
    await tb.settle()
    assert tb.writes == _writes_of([Frame(0, 0, 0, 0, (ok1, ok2, ok3))]), tb.writes
    assert tb.answers == []
    c = tb.counters()
    assert c["bad_address"] == len(bad) and c["messages"] == len(bad) + 3 and c["malformed"] == 0, c


def hello_frame(*, mtu: int, window: int, spec_hash: int = hostlink.SPEC_HASH, session: int = SESSION,
                flags: int = 0) -> bytes:
    """The bytes of a host's HELLO request (after the Ethernet header)."""
    hello = struct.pack(hostlink.HELLO.format, hostlink.HELLO_MAGIC_VALUE, spec_hash, mtu, window,
                        hostlink.HOST_WINDOW_BASE, 0x10000, 0, 0)
    return encode_frame(Frame(0, 0, window, 0, (Message(hostlink.OP_HELLO, 0, hello),), hostlink.FLAG_HELLO | flags,
                              session=session))


@cocotb.test()
async def hello_binds_and_restarts_the_numbering(dut) -> None:
    """A HELLO request of the bound station binds again: message 0, the host's credit, its mtu, one strobe and
    an answer with its session; a HELLO of another spec hash is malformed and changes nothing."""
    tb = DecoderTB(dut)
    await tb.start()
    first = _frames(_random_writes(tb.rng, 5), [2, 3])
    for f in first:
        await tb.send(encode_frame(f))
    await tb.settle()
    assert tb.link()["acked"] == 5 and int(dut.host_mtu.value) == hostlink.MTU_STANDARD
    new = SESSION + 1
    await tb.send(hello_frame(mtu=hostlink.MTU_JUMBO, window=9, spec_hash=hostlink.SPEC_HASH ^ 1, session=new))
    await ClockCycles(dut.clk, 5)
    assert tb.binds == [] and tb.replies == [] and tb.counters()["malformed"] == 1 and tb.link()["acked"] == 5
    await tb.send(hello_frame(mtu=hostlink.MTU_JUMBO, window=9, session=new))
    await ClockCycles(dut.clk, 5)
    assert len(tb.binds) == 1, tb.binds
    assert tb.replies == [dict(valid=1, stale=0, bound=0, session=new)], tb.replies
    link = tb.link()
    assert (link["acked"], link["peer_credit"], link["nak"], link["session"]) == (0, 9, 0, new), link
    assert int(dut.host_mtu.value) == hostlink.MTU_JUMBO
    assert tb.counters()["malformed"] == 1 and tb.counters()["frames"] == 2
    # The session starts afresh: message 0 and frame 0 are the next ones taken.
    tb.writes.clear()
    second = [Frame(0, 0, 100, 0, m.messages, session=new) for m in _frames(_random_writes(tb.rng, 4), [4])]
    await tb.send(encode_frame(second[0]))
    await tb.settle()
    assert tb.writes == _writes_of(second)
    link = tb.link()
    assert link["acked"] == 4 and link["credit"] == 1 + SLOTS and link["peer_credit"] == 100, link
    assert tb.counters()["gaps"] == 0 and tb.counters()["duplicates"] == 0
    # Messages taken: the encoder is asked for a frame that acknowledges them, and only until one left.
    assert link["update"] == 1, link
    await tb.encoder_sent(nak=False, credit=link["credit"])
    await FallingEdge(dut.clk)             # update is registered: a cycle behind the sent strobe
    assert tb.link()["update"] == 0, tb.link()
    # A frame that comes again means the host did not see that frame: acknowledge once more, at once.
    await tb.send(encode_frame(second[0]))
    await ClockCycles(dut.clk, 5)
    assert tb.counters()["duplicates"] == 1 and tb.link()["update"] == 1, tb.link()
    await tb.encoder_sent(nak=False, credit=link["credit"])
    # A PROBE is answered at once too, and its acked and a NAK reach the encoder.
    await ClockCycles(dut.clk, 3)
    assert tb.link()["update"] == 0
    await tb.send(encode_frame(Frame(4, 1, 100, 77, (), hostlink.FLAG_PROBE | hostlink.FLAG_NAK, session=new)))
    await ClockCycles(dut.clk, 3)
    assert tb.link()["update"] == 1 and tb.link()["peer_acked"] == 77, tb.link()
    # Nonsense is not believed: an acked past what the board sent (malformed), a frame number far past
    # the grant (it moves no credit).
    malformed, credit = tb.counters()["malformed"], tb.link()["credit"]
    await tb.send(encode_frame(Frame(4, 1, 100, BOARD_END + 5, (), session=new)))
    await tb.send(encode_frame(Frame(4, credit + SLOTS + 1, 100, 77, (), session=new)))
    await ClockCycles(dut.clk, 3)
    assert tb.counters()["malformed"] == malformed + 1 and tb.link()["peer_acked"] == 77, tb.link()
    assert tb.link()["credit"] == credit, tb.link()


@cocotb.test()
async def sessions_bind_one_station(dut) -> None:
    """Unbound, a frame is answered STALE; discovery answers without binding (BOUND when bound elsewhere); a bound
    board drops other stations' frames and requests (foreign) unless TAKEOVER, and answers its host's old
    session with STALE; a HELLO with a bad FCS binds nothing, even when a word follows its Hello, nor one sent to
    the broadcast address."""
    tb = DecoderTB(dut)
    await tb.start(bind=False)
    hello = functools.partial(hello_frame, mtu=hostlink.MTU_STANDARD, window=4)
    msgs = _random_writes(tb.rng, 2)
    # The bug this fixes: the MAC marks the bad FCS on the last word, here a word after the Hello.
    await tb.send(hello() + bytes(4), error=True)
    await ClockCycles(dut.clk, 3)
    assert tb.binds == [] and not tb.link()["bound"] and tb.counters()["malformed"] == 1, tb.link()
    await tb.send(encode_frame(Frame(0, 0, 4, 0, (msgs[0],), session=7)))
    await ClockCycles(dut.clk, 3)
    assert tb.replies == [dict(valid=1, stale=1, bound=0, session=7)] and tb.counters()["stale"] == 1
    await tb.send(hello(session=8, flags=hostlink.FLAG_PROBE), unicast=False)   # discovery is broadcast
    await ClockCycles(dut.clk, 3)
    assert tb.replies[1:] == [dict(valid=1, stale=0, bound=0, session=8)] and not tb.link()["bound"]
    # A binding request sent to the broadcast address would bind every board that hears it: malformed.
    await tb.send(hello(), unicast=False)
    await ClockCycles(dut.clk, 3)
    assert tb.binds == [] and not tb.link()["bound"] and len(tb.replies) == 2
    assert tb.counters()["malformed"] == 2, tb.counters()
    # Discovery of another spec hash is answered too (the host says which side to rebuild); it binds nothing.
    await tb.send(hello(session=8, flags=hostlink.FLAG_PROBE, spec_hash=hostlink.SPEC_HASH ^ 1))
    await ClockCycles(dut.clk, 3)
    assert tb.replies[2:] == [dict(valid=1, stale=0, bound=0, session=8)] and not tb.link()["bound"]
    await tb.send(hello() + bytes(4))                      # a good HELLO with a word after it binds
    await tb.settle()
    assert len(tb.binds) == 1 and tb.link()["session"] == SESSION and tb.replies[3]["session"] == SESSION
    # The host got no answer and sends its request again, after a frame landed: answered, nothing restarted.
    await tb.send(encode_frame(Frame(0, 0, 4, 0, (msgs[1],), session=SESSION)))
    await tb.send(hello())
    await tb.settle()
    assert len(tb.binds) == 1 and tb.replies[4:] == [dict(valid=1, stale=0, bound=0, session=SESSION)]
    assert tb.link()["acked"] == 1 and tb.writes == _writes_of([Frame(0, 0, 4, 0, (msgs[1],))])
    tb.writes.clear()
    tb.replies.clear()
    # Another station: its discovery is answered BOUND, its request and its frames dropped and counted.
    await tb.send(hello(session=9, flags=hostlink.FLAG_PROBE), from_host=False)
    await tb.send(hello(session=9), from_host=False)
    await tb.send(hello(session=9), from_host=False, unicast=False)        # foreign too, as on the stand-in
    await tb.send(encode_frame(Frame(0, 0, 4, 0, (msgs[0],), session=SESSION)), from_host=False)
    # A TAKEOVER sent to the broadcast address takes nothing: it would take every board on the segment.
    await tb.send(hello(session=11, flags=hostlink.FLAG_TAKEOVER), from_host=False, unicast=False)
    await tb.settle()
    assert tb.replies == [dict(valid=1, stale=0, bound=1, session=9)], tb.replies
    assert tb.counters()["foreign"] == 3 and len(tb.binds) == 1 and tb.writes == []
    assert tb.counters()["malformed"] == 3 and tb.link()["session"] == SESSION
    # The host's old session (late frames of a host that restarted): STALE with that session, nothing done.
    await tb.send(encode_frame(Frame(0, 0, 4, 0, (msgs[0],), session=SESSION - 1)))
    await tb.settle()
    assert tb.replies[1:] == [dict(valid=1, stale=1, bound=0, session=SESSION - 1)] and tb.writes == []
    assert tb.counters()["stale"] == 2
    # The host's own frame lands; a TAKEOVER from another station binds to it.
    await tb.send(encode_frame(Frame(1, 1, 4, 0, (msgs[0],), session=SESSION)))
    await tb.settle()
    assert tb.writes == _writes_of([Frame(0, 0, 4, 0, (msgs[0],))]) and tb.link()["acked"] == 2
    await tb.send(hello(session=10, flags=hostlink.FLAG_TAKEOVER), from_host=False)
    await ClockCycles(dut.clk, 3)
    assert len(tb.binds) == 2 and tb.link()["session"] == 10 and tb.link()["acked"] == 0
    assert tb.replies[2:] == [dict(valid=1, stale=0, bound=0, session=10)]
