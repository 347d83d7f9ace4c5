"""cocotb tests of the host-link decoder: frames made with the spec's reference codec.

Ref: splitnic_spec.hostlink; splitnic_gateware.hostlink.decoder.  The DUT is
built with its defaults (4 slots, standard mtu, the board's windows); the bus
behind it is a memory that stalls at random.
"""

from __future__ import annotations

import random
import struct

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from splitnic_gateware.hostlink.decoder import DecoderCounters
from splitnic_gateware.hostlink.layouts import AnswerWord, LinkSent, LinkState, RxWord
from splitnic_sim.tb.hostlink_common import bytes_of, pack, start, unpack, words_of
from splitnic_spec import board, hostlink
from splitnic_spec.hostlink import Frame, Message, encode_frame, read_request

RAM = board.DMA_RAM_BASE
CSR = board.NIC_CSR_BASE
SLOTS = 4


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

    async def start(self) -> None:
        await start(self.dut, {"rx__valid": 0, "rx__payload": 0, "from_host": 1, "bus__ack": 0,
                               "bus__dat_r": 0, "answer__ready": 0, "sent": 0})
        cocotb.start_soon(self._bus())
        cocotb.start_soon(self._answers())

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

    async def send(self, payload: bytes, *, from_host: bool = True) -> None:
        """Send one frame's bytes after the Ethernet header, a word per cycle."""
        dut = self.dut
        tail = len(payload) % 4
        words = words_of(payload + bytes(-len(payload) % 4))
        await FallingEdge(dut.clk)
        dut.from_host.value = int(from_host)
        for i, w in enumerate(words):
            last = i + 1 == len(words)
            keep = (1 << tail) - 1 if last and tail else 0xF
            dut.rx__payload.value = pack(RxWord, data=w, last=int(last), keep=keep)
            dut.rx__valid.value = 1
            await FallingEdge(dut.clk)
        dut.rx__valid.value = 0
        dut.from_host.value = 1

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
        frames.append(Frame(seq, first_frame + i, 100, 0, tuple(messages[pos:pos + n])))
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
    # Padding after the last message (a short frame on Ethernet) is ignored; a frame of no messages counts.
    await tb.send(encode_frame(Frame(12, 3, 101, 0)) + bytes(30))
    await ClockCycles(dut.clk, 5)
    assert tb.counters()["frames"] == 4 and tb.link()["peer_credit"] == 101 and tb.link()["credit"] == 4 + SLOTS


@cocotb.test()
async def reads_are_answered_in_order(dut) -> None:
    """A READ's words go to the encoder with the tag; a READ after a WRITE sees it."""
    tb = DecoderTB(dut)
    await tb.start()
    for i in range(16):
        tb.mem[(RAM >> 2) + 0x10 + i] = 0x1000 + i
    data = [tb.rng.getrandbits(32) for _ in range(3)]
    frame = Frame(0, 0, 10, 0, (
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
    await tb.send(encode_frame(Frame(f0.seq, 4, 100, 0, f0.messages)))
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
    good = Frame(0, 0, 100, 0, tuple(_random_writes(rng, 3)))
    raw = bytearray(encode_frame(good))
    m1 = 16 + 8 + len(good.messages[0].data)     # second message's header
    m2 = m1 + 8 + len(good.messages[1].data)
    version = bytearray(raw)
    version[0] = 2
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
    await tb.send(bytes(raw), from_host=False)
    await tb.settle()
    assert tb.counters()["malformed"] == len(cases) + 1, "a frame from another source was not counted"
    assert tb.writes == [] and tb.link()["acked"] == 0 and tb.counters()["frames"] == 0
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
    frame = Frame(0, 0, 100, 0, (ok1, *bad, ok2, ok3))
    await tb.send(encode_frame(frame))
    await tb.settle()
    assert tb.writes == _writes_of([Frame(0, 0, 0, 0, (ok1, ok2, ok3))]), tb.writes
    assert tb.answers == []
    c = tb.counters()
    assert c["bad_address"] == len(bad) and c["messages"] == len(bad) + 3 and c["malformed"] == 0, c


def hello_frame(*, mtu: int, window: int, spec_hash: int = hostlink.SPEC_HASH) -> bytes:
    """The bytes of a host's HELLO frame (after the Ethernet header)."""
    hello = struct.pack(hostlink.HELLO.format, hostlink.HELLO_MAGIC_VALUE, spec_hash, mtu, window,
                        hostlink.HOST_WINDOW_BASE, 0x10000, 0, 0)
    return encode_frame(Frame(0, 0, window, 0, (Message(hostlink.OP_HELLO, 0, hello),), hostlink.FLAG_HELLO))


@cocotb.test()
async def hello_restarts_the_numbering(dut) -> None:
    """A HELLO from any source restarts at message 0, takes the host's credit, latches its mtu, strobes hello once;
    a HELLO of another spec hash is malformed and changes nothing."""
    tb = DecoderTB(dut)
    await tb.start()
    strobes = []

    async def watch() -> None:
        while True:
            await FallingEdge(dut.clk)
            if dut.hello.value:
                strobes.append(tb.link())

    cocotb.start_soon(watch())
    first = _frames(_random_writes(tb.rng, 5), [2, 3])
    for f in first:
        await tb.send(encode_frame(f))
    await tb.settle()
    assert tb.link()["acked"] == 5 and int(dut.host_mtu.value) == hostlink.MTU_STANDARD
    await tb.send(hello_frame(mtu=hostlink.MTU_JUMBO, window=9, spec_hash=hostlink.SPEC_HASH ^ 1), from_host=False)
    await ClockCycles(dut.clk, 5)
    assert strobes == [] and tb.counters()["malformed"] == 1 and tb.link()["acked"] == 5
    await tb.send(hello_frame(mtu=hostlink.MTU_JUMBO, window=9), from_host=False)
    await ClockCycles(dut.clk, 5)
    assert len(strobes) == 1, strobes
    link = tb.link()
    assert (link["acked"], link["peer_credit"], link["nak"]) == (0, 9, 0), link
    assert int(dut.host_mtu.value) == hostlink.MTU_JUMBO
    assert tb.counters()["malformed"] == 1 and tb.counters()["frames"] == 2
    # The session starts afresh: message 0 and frame 0 are the next ones taken.
    tb.writes.clear()
    second = _frames(_random_writes(tb.rng, 4), [4])
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
    # A frame that comes again means the host did not see that frame: acknowledge once more.
    await tb.send(encode_frame(second[0]))
    await ClockCycles(dut.clk, 5)
    assert tb.counters()["duplicates"] == 1 and tb.link()["update"] == 1, tb.link()
