"""cocotb tests of the host-link encoder: frames checked with the spec's reference codec.

Ref: splitnic_spec.hostlink; splitnic_gateware.hostlink.encoder.  The DUT is
built with max_mtu MTU_JUMBO so the tests can vary ``mtu`` both ways, with the
HELLO answer's fields below (``RX_MTU`` ...), a replay ring of ``REPLAY_SLOTS``
and a resend period of ``RESEND_CYCLES``.  The testbench plays the decoder's
link state: bound to ``SESSION``, and (``auto_ack``) the host's acked, which
follows each frame the testbench takes.
"""

from __future__ import annotations

import random
import struct

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from splitnic_gateware.bus import CTI_CLASSIC, CTI_END, CTI_INCR
from splitnic_gateware.hostlink.encoder import EncoderCounters
from splitnic_gateware.hostlink.layouts import AnswerWord, LinkSent, LinkState, ReplyRequest, TxWord
from splitnic_sim.tb.hostlink_common import bytes_of, cycle_now, pack, start, unpack
from splitnic_spec import board, hostlink
from splitnic_spec.hostlink import (FLAG_ANSWER, FLAG_BOUND, FLAG_HELLO, FLAG_NAK, FLAG_PROBE, FLAG_STALE, Frame,
                                   Message, decode_frame)

BASE = hostlink.HOST_WINDOW_BASE
#: What the DUT is built to announce in its HELLO answer (tests/gateware/test_hostlink_cocotb.py).
RX_MTU, RX_WINDOW, LOCAL_BASE, LOCAL_SIZE = hostlink.MTU_STANDARD, 4, board.DMA_RAM_BASE, board.DMA_RAM_SIZE
REPLAY_SLOTS, RESEND_CYCLES = 4, 3000
SESSION = 0xC0DE_0001


class EncoderTB:
    """Drives the encoder's inputs and collects the frames it sends."""

    def __init__(self, dut, *, ready_prob: float = 0.8, auto_ack: bool = True) -> None:
        self.dut = dut
        self.rng = random.Random(cocotb.RANDOM_SEED)
        self.ready_prob = ready_prob
        #: (frame, its size in bytes, cycle its last word left)
        self.frames: list[tuple[Frame, int, int]] = []
        #: Every word the write port acked: (byte address, data).
        self.written: list[tuple[int, int]] = []
        self.link = dict(acked=0x1234_5678, credit=0x0042, peer_credit=0x7000, nak=0, update=0, bound=1,
                         session=SESSION, peer_acked=0, peer_nak=0)
        self.auto_ack = auto_ack
        self._collector = None

    async def start(self, *, mtu: int = hostlink.MTU_STANDARD, latency: int = 20) -> None:
        dut = self.dut
        await start(dut, {"mtu": mtu, "latency": latency, "irq": 0, "hello": 0, "reply": 0, "answer__valid": 0,
                          "answer__payload": 0,
                          "link": pack(LinkState, **self.link), "dma__cyc": 0, "dma__stb": 0, "dma__we": 0,
                          "dma__adr": 0, "dma__dat_w": 0, "dma__sel": 0xF, "dma__cti": 0, "dma__bte": 0,
                          "tx__ready": 0})
        if self._collector is None:
            self._collector = cocotb.start_soon(self._collect())

    def set_link(self, **values: int) -> None:
        self.link.update(values)
        self.dut.link.value = pack(LinkState, **self.link)

    def counters(self) -> dict[str, int]:
        return unpack(EncoderCounters, int(self.dut.counters.value))

    async def _collect(self) -> None:
        dut, words, ack = self.dut, [], None
        while True:
            await FallingEdge(dut.clk)
            if ack is not None and self.auto_ack and hostlink.seq_after(ack, self.link["peer_acked"]):
                self.set_link(peer_acked=ack)
            ack = None
            ready = self.rng.random() < self.ready_prob
            dut.tx__ready.value = int(ready)
            await ReadOnly()
            if ready and dut.tx__valid.value:
                word = unpack(TxWord, int(dut.tx__payload.value))
                words.append(word["data"])
                if word["last"]:
                    payload = bytes_of(words)
                    frame = decode_frame(payload)
                    self.frames.append((frame, len(payload), cycle_now()))
                    words = []
                    if frame.messages:       # the host's acked, set at the next falling edge
                        ack = (frame.seq + len(frame.messages)) & 0xFFFF_FFFF

    async def write(self, byte_addr: int, data: list[int], *, burst: bool = True) -> None:
        """Write ``data`` at ``byte_addr``: one Wishbone burst (or classic cycles), as the NIC's DMA does."""
        dut = self.dut
        await FallingEdge(dut.clk)
        for i, value in enumerate(data):
            cti = (CTI_INCR if i + 1 < len(data) else CTI_END) if burst else CTI_CLASSIC
            dut.dma__adr.value = (byte_addr >> 2) + i
            dut.dma__dat_w.value = value
            dut.dma__cti.value = cti
            dut.dma__cyc.value = dut.dma__stb.value = dut.dma__we.value = 1
            while True:
                await ReadOnly()
                acked = bool(dut.dma__ack.value)
                await FallingEdge(dut.clk)
                if acked:
                    break
            self.written.append((byte_addr + 4 * i, value))
            if not burst:
                dut.dma__cyc.value = dut.dma__stb.value = 0
                await FallingEdge(dut.clk)
        dut.dma__cyc.value = dut.dma__stb.value = dut.dma__we.value = 0

    async def answer(self, tag: int, data: list[int]) -> None:
        """Hand the encoder one READ's answer, as the decoder does."""
        dut = self.dut
        await FallingEdge(dut.clk)
        for i, value in enumerate(data):
            dut.answer__payload.value = pack(AnswerWord, data=value, tag=tag, words=len(data),
                                             last=int(i + 1 == len(data)))
            dut.answer__valid.value = 1
            while True:
                await ReadOnly()
                taken = bool(dut.answer__ready.value)
                await FallingEdge(dut.clk)
                if taken:
                    break
        dut.answer__valid.value = 0

    async def irq(self) -> None:
        await FallingEdge(self.dut.clk)
        self.dut.irq.value = 1
        await FallingEdge(self.dut.clk)
        self.dut.irq.value = 0

    async def wait_frames(self, count: int, limit: int = 20_000) -> None:
        for _ in range(limit):
            if len(self.frames) >= count:
                return
            await ClockCycles(self.dut.clk, 1)
        raise AssertionError(f"expected {count} frames, {len(self.frames)} came in {limit} cycles")

    async def drain(self, limit: int = 5000) -> None:
        """Wait until every word written left in a frame."""
        for _ in range(limit // 10):
            if len(self.written_by_messages()) == len(self.written):
                await ClockCycles(self.dut.clk, 2)
                return
            await ClockCycles(self.dut.clk, 10)
        raise AssertionError(f"{len(self.written)} words written, {len(self.written_by_messages())} sent "
                             f"after {limit} cycles")

    def check_numbering(self) -> None:
        """Frames with messages numbered 0, 1, ...; one of no messages carries the next number without
        taking it; each seq the number of its first (or next) message; message seq8 in order."""
        seq = number = 0
        for i, (frame, size, _) in enumerate(self.frames):
            assert frame.frame == number, f"frame {i} is numbered {frame.frame}, not {number}"
            assert frame.seq == seq, f"frame {i} starts at message {frame.seq}, not {seq}"
            assert frame.acked == self.link["acked"] and frame.credit == self.link["credit"]
            assert frame.session == SESSION and frame.flags == 0, frame
            seq += len(frame.messages)
            number += 1 if frame.messages else 0

    def written_by_messages(self) -> list[tuple[int, int]]:
        """(byte address, data) of every word the WRITE messages carry, in order."""
        out = []
        for frame, _, _ in self.frames:
            for msg in frame.messages:
                if msg.op == hostlink.OP_WRITE:
                    out += [(msg.addr + 4 * i, w) for i, w in enumerate(
                        int.from_bytes(msg.data[j:j + 4], "little") for j in range(0, len(msg.data), 4))]
        return out


def _words(rng: random.Random, n: int) -> list[int]:
    return [rng.getrandbits(32) for _ in range(n)]


@cocotb.test()
async def writes_and_bursts_become_messages(dut) -> None:
    """A burst is one WRITE message; a write continuing the open message joins it; others start a new one."""
    tb = EncoderTB(dut)
    await tb.start(latency=30)
    rng = tb.rng
    a, b, c = _words(rng, 5), _words(rng, 1), _words(rng, 3)
    await tb.write(BASE + 0x100, a)
    await tb.write(BASE + 0x2000, b, burst=False)     # elsewhere: a new message
    await tb.write(BASE + 0x2004, c)                  # continues it: the same message
    await tb.wait_frames(1)
    frame = tb.frames[0][0]
    expected = (hostlink.Message(hostlink.OP_WRITE, BASE + 0x100, bytes_of(a), 0),
                hostlink.Message(hostlink.OP_WRITE, BASE + 0x2000, bytes_of(b + c), 1))
    assert frame == Frame(0, 0, tb.link["credit"], tb.link["acked"], expected, session=SESSION), frame
    await ClockCycles(dut.clk, 2)
    assert tb.counters() == {"frames": 1, "messages": 2, "credit_stalls": 0, "resent_frames": 0}


@cocotb.test()
async def frames_fill_up_to_the_mtu(dut) -> None:
    """Messages batch into a frame until the next would not fit in the mtu; numbering runs on across frames."""
    tb = EncoderTB(dut)
    for mtu in (hostlink.MTU_STANDARD, 4000):
        tb.frames.clear()
        tb.written.clear()
        await tb.start(mtu=mtu, latency=400)
        rng = tb.rng
        addr = BASE
        for _ in range(120):
            # Mostly jumps (new messages), sometimes a continuation (the message grows across bursts).
            if rng.random() < 0.7:
                addr = BASE + rng.randrange(0, 1 << 20) * 4
            data = _words(rng, rng.randint(1, 16))
            await tb.write(addr, data, burst=rng.random() < 0.8)
            addr += 4 * len(data)
            if rng.random() < 0.2:
                await ClockCycles(dut.clk, rng.randint(1, 10))
        await tb.drain()
        assert len(tb.frames) >= 2, f"mtu {mtu}: only {len(tb.frames)} frames"
        tb.check_numbering()
        assert tb.written_by_messages() == tb.written, f"mtu {mtu}: the messages do not carry the writes"
        for i, (frame, size, _) in enumerate(tb.frames):
            assert size <= mtu, f"frame {i} is {size} bytes, the mtu {mtu}"
            if i + 1 < len(tb.frames):
                # Closed because a word more would not fit (as a new message at least 12 bytes, appended 4),
                # or because the sender was idle and the frame held a quarter of its room.
                nxt = tb.frames[i + 1][0].messages[0]
                continues = (frame.messages[-1].addr + len(frame.messages[-1].data) == nxt.addr)
                quarter = 4 * ((mtu // 4 - hostlink.FRAME_HEADER.size // 4) >> 2)
                assert size + (4 if continues else 12) > mtu or size - hostlink.FRAME_HEADER.size >= quarter, \
                    f"frame {i} of {size} bytes was sent with room left"
        c = tb.counters()
        assert c["frames"] == len(tb.frames) and c["messages"] == sum(len(f.messages) for f, _, _ in tb.frames)


@cocotb.test()
async def a_long_burst_fills_frames_to_the_mtu_and_not_beyond(dut) -> None:
    """One burst of many frames' words, a word acked every cycle, while the sender is slow: every frame
    fills to the mtu, less at most the few words the write port's registered checks keep in hand
    (``write_step`` in the encoder), and never past it."""
    tb = EncoderTB(dut, ready_prob=0.1)
    mtu = hostlink.MTU_STANDARD
    await tb.start(mtu=mtu, latency=2000)
    data = _words(tb.rng, 4 * (mtu // 4))
    start_cycle = cycle_now()
    await tb.write(BASE + 0x800, data)
    took = cycle_now() - start_cycle
    await tb.drain(limit=40_000)
    assert tb.written_by_messages() == tb.written
    sizes = [size for _, size, _ in tb.frames]
    assert max(sizes) <= mtu, f"frames of {sizes} bytes, the mtu {mtu}"
    # The first frame leaves at a quarter of its room (the sender was idle), the last with the rest.
    margin = 4 * (hostlink.MESSAGE_HEADER.size // 4 + 1)
    assert all(size > mtu - 4 - margin for size in sizes[1:-1]), f"frames of {sizes} bytes, the mtu {mtu}"
    # A word per cycle but for the frames' closing (header and flush, a few cycles each) and the ring's room.
    assert took < len(data) + 40 * len(sizes), f"{len(data)} words took {took} cycles"


@cocotb.test()
async def latency_sends_a_quiet_frame(dut) -> None:
    """A frame leaves ``latency`` cycles after the last message came, not before."""
    tb = EncoderTB(dut, ready_prob=1.0)
    for latency in (40, 300):
        tb.frames.clear()
        await tb.start(latency=latency)
        await tb.write(BASE + 0x40, [1, 2])
        done = cycle_now()
        await tb.wait_frames(1, limit=latency + 100)
        took = tb.frames[0][2] - done
        # latency cycles idle, then closing the message and the frame, then 6 words out.
        assert latency <= took <= latency + 20, f"latency {latency}: the frame left after {took} cycles"


@cocotb.test()
async def no_frame_beyond_the_hosts_credit(dut) -> None:
    """With the credit used up the frames wait and then the write port stalls; it resumes when the credit grows."""
    tb = EncoderTB(dut)
    tb.link["peer_credit"] = 2
    await tb.start(latency=5)
    rng = tb.rng
    # More than the ring holds while the credit is used up: its 2 x REPLAY_SLOTS frames (each of about
    # 22 writes at the standard mtu) and the one building.
    data = [_words(rng, 16) for _ in range(80 * REPLAY_SLOTS)]

    async def writer() -> None:
        for i, d in enumerate(data):
            await tb.write(BASE + 0x1000 * i, d)
            await ClockCycles(dut.clk, 12)        # past the latency: a frame per write while the sender is idle
    task = cocotb.start_soon(writer())
    await ClockCycles(dut.clk, 2000 * REPLAY_SLOTS)
    # Frames with messages: the PROBEs of no messages that the resend timer sends meanwhile need no credit.
    def numbered() -> int:
        return sum(1 for f, _, _ in tb.frames if f.messages)
    assert numbered() == 2, f"{numbered()} frames sent on a credit of 2"
    assert all(f.flags == FLAG_PROBE for f, _, _ in tb.frames if not f.messages), tb.frames
    # One frame waits for credit, the other fills up to the mtu; then the port stops acking.
    taken = len(tb.written)
    assert not task.done() and taken < len(data) * 16, "the write port did not stall"
    await ClockCycles(dut.clk, 300)
    assert len(tb.written) == taken, "writes taken while every slot was full"
    assert tb.counters()["credit_stalls"] >= 1
    tb.set_link(peer_credit=5)
    await ClockCycles(dut.clk, 1500)
    assert numbered() == 5
    tb.set_link(peer_credit=(5 + 0x8001) & 0xFFFF)   # serial arithmetic: that far ahead is behind
    await ClockCycles(dut.clk, 300)
    assert numbered() == 5
    tb.set_link(peer_credit=1000)
    await task
    await tb.drain()
    tb.frames = [f for f in tb.frames if f[0].messages]
    tb.check_numbering()
    got = tb.written_by_messages()
    bad = next((i for i, (a, b) in enumerate(zip(got, tb.written)) if a != b), None)
    assert got == tb.written, (f"{len(got)} words in messages, {len(tb.written)} written; first difference at "
                               f"{bad}: {got[bad - 1:bad + 2] if bad else ''} vs {tb.written[bad - 1:bad + 2] if bad else ''}")
    assert len(tb.written) == len(data) * 16


@cocotb.test()
async def irq_answer_and_empty_frames(dut) -> None:
    """IRQ and ANSWER messages keep their place among the writes; update sends a count-0 frame with NAK."""
    tb = EncoderTB(dut)
    await tb.start(latency=60)
    rng = tb.rng
    w1, w2, ans = _words(rng, 4), _words(rng, 2), _words(rng, 7)
    await tb.write(BASE + 0x10, w1)
    await tb.irq()
    await tb.answer(0xBEEF, ans)
    await tb.write(BASE + 0x20, w2)   # continues nothing open: after the answer, a new message
    await tb.irq()
    await tb.irq()
    await tb.wait_frames(1)
    ops = [(m.op, m.addr, m.data) for m in tb.frames[0][0].messages]
    assert ops[:4] == [(hostlink.OP_WRITE, BASE + 0x10, bytes_of(w1)), (hostlink.OP_IRQ, 0, bytes_of([1])),
                       (hostlink.OP_ANSWER, 0xBEEF, bytes_of(ans)),
                       (hostlink.OP_WRITE, BASE + 0x20, bytes_of(w2))], ops
    # Rises close together may share a message: its data is the count so far.
    rises = [int.from_bytes(data, "little") for op, _, data in ops[4:] if op == hostlink.OP_IRQ]
    assert len(rises) == len(ops) - 4 and rises == sorted(set(rises)) and rises[-1] == 3, ops
    # An update with nothing to send: a frame with no messages that carries NAK, acked and credit.
    # Like the decoder, drop the request when a frame went out.
    tb.set_link(nak=1, update=1, acked=777, credit=9)
    while not unpack(LinkSent, int(dut.sent.value))["frame"]:
        await RisingEdge(dut.clk)
        await ReadOnly()
    await FallingEdge(dut.clk)
    tb.set_link(nak=0, update=0)
    await tb.wait_frames(2, limit=200)
    frame = tb.frames[1][0]
    assert frame == Frame(len(ops), 1, 9, 777, (), FLAG_NAK, session=SESSION), frame
    await ClockCycles(dut.clk, 100)
    assert len(tb.frames) == 2, "update was dropped but frames kept coming"
    # It took no number: the next frame with messages is numbered 1 too.
    await tb.write(BASE + 0x40, w1)
    await tb.wait_frames(3)
    assert tb.frames[2][0].frame == 1 and tb.frames[2][0].seq == len(ops), tb.frames[2][0]


async def _reply(tb: EncoderTB, **fields: int) -> None:
    """Play the decoder's answer request (and, with ``hello``, its bind strobe) for one cycle."""
    dut = tb.dut
    await FallingEdge(dut.clk)
    bind = fields.pop("hello", 0)
    dut.reply.value = pack(ReplyRequest, valid=1, **fields)
    dut.hello.value = bind
    await FallingEdge(dut.clk)
    dut.reply.value = 0
    dut.hello.value = 0


def _hello_answer(session: int, flags: int = 0) -> Frame:
    hello = struct.pack(hostlink.HELLO.format, hostlink.HELLO_MAGIC_VALUE, hostlink.SPEC_HASH, RX_MTU, RX_WINDOW,
                        hostlink.HOST_WINDOW_BASE, hostlink.HOST_WINDOW_SIZE, LOCAL_BASE, LOCAL_SIZE)
    return Frame(0, 0, RX_WINDOW, 0, (Message(hostlink.OP_HELLO, 0, hello),), FLAG_HELLO | FLAG_ANSWER | flags,
                 session=session)


@cocotb.test()
async def hello_answers_and_restarts(dut) -> None:
    """A bind: what waited for credit is dropped, the HELLO answer (the request's session) goes first, then
    frame 0; discovery and STALE answers go out with the request's session and change nothing."""
    tb = EncoderTB(dut)
    tb.link.update(peer_credit=0)              # nothing may go: the writes below wait in a slot
    await tb.start(latency=20)
    old = _words(tb.rng, 6)
    await tb.write(BASE + 0x100, old)
    await ClockCycles(dut.clk, 100)
    assert tb.frames == [] and tb.counters()["credit_stalls"] == 1
    await _reply(tb, session=0x77, bound=1)
    await _reply(tb, session=0x78, stale=1)   # the first is still going: dropped (the station asks again)
    await tb.wait_frames(1, limit=500)
    assert tb.frames[0][0] == _hello_answer(0x77, FLAG_BOUND), tb.frames[0][0]
    await _reply(tb, session=0x79, stale=1)
    await tb.wait_frames(2, limit=500)
    assert tb.frames[1][0] == Frame(0, 0, 0, 0, (), FLAG_STALE, session=0x79), tb.frames[1][0]
    new_session = 0xABCD
    tb.set_link(session=new_session)
    await _reply(tb, session=new_session, hello=1)
    tb.set_link(peer_credit=4)
    await tb.wait_frames(3, limit=500)
    frame, size, _ = tb.frames[2]
    assert frame == _hello_answer(new_session), frame
    assert size == hostlink.FRAME_HEADER.size + hostlink.MESSAGE_HEADER.size + hostlink.HELLO.size
    new = _words(tb.rng, 3)
    tb.written.clear()
    await tb.write(BASE + 0x200, new)
    await tb.wait_frames(4)
    frame = tb.frames[3][0]
    assert (frame.frame, frame.seq, frame.flags, frame.session) == (0, 0, 0, new_session), frame
    assert [(m.op, m.addr, m.data) for m in frame.messages] == [(hostlink.OP_WRITE, BASE + 0x200, bytes_of(new))]
    await ClockCycles(dut.clk, 100)
    assert len(tb.frames) == 4, "the old session's frame came after all"


@cocotb.test()
async def unacknowledged_frames_are_sent_again(dut) -> None:
    """Frames stay in the ring until acked passes them: a NAK sends them again from acked (whole frames, new
    numbers, fresh headers), so does the resend timer with PROBE on the first; out of credit, a PROBE of no
    messages goes instead; the ring full, the write port waits."""
    tb = EncoderTB(dut, auto_ack=False)
    await tb.start(latency=10)
    rng = tb.rng
    writes = [_words(rng, 4) for _ in range(3)]
    for i, w in enumerate(writes):
        await tb.write(BASE + 0x1000 * i, w)
        await ClockCycles(dut.clk, 40)         # one frame each
    await tb.wait_frames(3)
    first = [f for f, _, _ in tb.frames]
    assert [(f.frame, f.seq, len(f.messages)) for f in first] == [(0, 0, 1), (1, 1, 1), (2, 2, 1)], first
    # The host got frame 0 and NAKs the rest.
    await FallingEdge(dut.clk)
    tb.set_link(peer_acked=1, peer_nak=1, acked=5)
    await FallingEdge(dut.clk)
    tb.set_link(peer_nak=0)
    await tb.wait_frames(5, limit=2000)
    again = [f for f, _, _ in tb.frames[3:5]]
    assert [(f.frame, f.seq, f.messages, f.acked, f.flags) for f in again] == \
        [(3, 1, first[1].messages, 5, 0), (4, 2, first[2].messages, 5, 0)], again
    assert tb.counters()["resent_frames"] == 2
    # Silence: after the resend period, both again, PROBE on the first.
    start = cycle_now()
    await tb.wait_frames(7, limit=2 * RESEND_CYCLES)
    took = tb.frames[5][2] - start
    assert RESEND_CYCLES - 50 <= took <= RESEND_CYCLES + 200, took
    again = [f for f, _, _ in tb.frames[5:7]]
    assert [(f.frame, f.seq, f.flags) for f in again] == [(5, 1, FLAG_PROBE), (6, 2, 0)], again
    assert tb.counters()["resent_frames"] == 4
    # Acked passes them: nothing more comes.  Out of credit with work waiting: a PROBE of no messages.
    tb.set_link(peer_acked=3, peer_credit=7)
    await ClockCycles(dut.clk, RESEND_CYCLES + 500)
    assert len(tb.frames) == 7
    await tb.write(BASE + 0x8000, writes[0])
    await ClockCycles(dut.clk, RESEND_CYCLES + 500)
    probes = [f for f, _, _ in tb.frames[7:]]
    assert probes and probes[0] == Frame(3, 7, tb.link["credit"], 5, (), FLAG_PROBE, session=SESSION), probes
    # The ring holds 2 x REPLAY_SLOTS frames and the one building: then the port waits until acked moves.
    tb.set_link(peer_credit=1000)
    task = cocotb.start_soon(tb.write(BASE + 0x9000, _words(rng, 4000)))
    await ClockCycles(dut.clk, 4000)
    assert not task.done(), "the write port took more than the ring holds without an acknowledgement"
    sent = [f for f, _, _ in tb.frames if f.messages]
    tb.auto_ack = True
    tb.set_link(peer_acked=(sent[-1].seq + len(sent[-1].messages)))
    await task
    for _ in range(200):           # the frames sent before carry some words twice: compare the tail
        if tb.written_by_messages()[-4000:] == tb.written[-4000:]:
            break
        await ClockCycles(dut.clk, 100)
    assert tb.written_by_messages()[-4000:] == tb.written[-4000:], "the ring's frames did not all go"


@cocotb.test()
async def a_frame_slower_to_leave_than_the_resend_period_is_not_sent_again(dut) -> None:
    """The resend timer counts only cycles in which the host could have answered: not those in which a
    frame is still leaving.  On a cable slower than a frame per resend period (the simulated SoC's: a
    1500-byte frame takes 1500 cycles of its 8-bit PHY, the period 1000) the board sent every full
    frame of a stream again although the host acknowledged each as soon as its last word arrived."""
    tb = EncoderTB(dut, ready_prob=0.1)       # a full frame leaves in about 3 750 cycles
    await tb.start(latency=10)
    rng = tb.rng
    words = (hostlink.MTU_STANDARD - 20 - 8) // 4 - 8      # one WRITE message filling a standard frame
    for i in range(4):
        await tb.write(BASE + 0x10000 * i, _words(rng, words))
    for _ in range(600):
        if len(tb.written_by_messages()) >= len(tb.written):
            break
        await ClockCycles(dut.clk, 100)
    await ClockCycles(dut.clk, 100)
    sent = [(f.seq, len(f.messages), size) for f, size, _ in tb.frames if f.messages]
    # Full frames among them: each took about 3 700 cycles to leave, past the resend period.
    assert max(size for _, _, size in sent) > 1400 and 1400 // 4 * 10 > RESEND_CYCLES, sent
    assert len({seq for seq, _, _ in sent}) == len(sent), f"frames sent again (seq, messages, bytes): {sent}"
    assert tb.counters()["resent_frames"] == 0, tb.counters()
    assert tb.written_by_messages() == tb.written
    # Still, silence after the last frame left brings it back after one resend period, PROBE on it.
    tb.auto_ack = False
    await tb.write(BASE + 0x50000, _words(rng, 4))
    await tb.wait_frames(len(tb.frames) + 2, limit=4 * RESEND_CYCLES)
    again = [f for f, _, _ in tb.frames[-2:]]
    assert again[0].messages == again[1].messages and again[1].flags & FLAG_PROBE, again
