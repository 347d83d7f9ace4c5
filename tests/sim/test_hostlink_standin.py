"""The board's stand-in on the eth host link, against a raw-socket host speaking the spec's codec.

Ref: sim/splitnic_sim/hostlink_standin.py; spec/splitnic_spec/hostlink.py (the
protocol and its reference codec, which plays the host here).

Each test runs the stand-in on one end of a veth pair in a namespace of its
own and the "host" on the other end, in a second namespace; nothing touches
the machine's own namespace.  A second "station" (another host) sends from a
made-up address on the same socket.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Callable, Iterator

import pytest

from splitnic_lab.netns import add_netns, del_netns, inside, sh, unique
from splitnic_sim.hostlink_standin import HostLinkStandIn
from splitnic_spec import COMPLETION, CSR_MAP, DESCRIPTOR, ID_MAGIC_VALUE
from splitnic_spec.board import DMA_RAM_BASE, DMA_RAM_SIZE, NIC_CSR_BASE
from splitnic_spec.hostlink import (BOARD_COUNTERS, COUNTERS_BASE, ETHERTYPE, FLAG_ANSWER, FLAG_BOUND, FLAG_HELLO,
                                    FLAG_NAK, FLAG_PROBE, FLAG_STALE, FLAG_TAKEOVER, HOST_WINDOW_BASE,
                                    HOST_WINDOW_SIZE, MTU_STANDARD, OP_ANSWER, OP_HELLO, OP_IRQ, OP_READ, OP_WRITE,
                                    Frame, Message, decode_frame, encode_frame, hello, parse_hello, read_request)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and raw sockets")

BROADCAST = b"\xff" * 6
#: The host's DMA memory, as it registers it in its Hello.
HOST_SIZE = 1 << 20
#: Another station on the cable's segment.
STRANGER = bytes.fromhex("020000000099")
_PACKET_OUTGOING = 4


def write(addr: int, data: bytes) -> Message:
    return Message(OP_WRITE, addr, data)


def read(addr: int, words: int, tag: int) -> Message:
    return Message(OP_READ, addr, read_request(words, tag))


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def reg(name: str) -> int:
    return NIC_CSR_BASE + CSR_MAP.register(name).offset


def queue_reg(array: str, name: str) -> int:
    return NIC_CSR_BASE + CSR_MAP.array(array).offset(0, name)


def wait_for(check: Callable[[], bool], timeout: float = 2.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


class Host:
    """The host's end of the link: a raw socket and the spec's codec, numbering as the spec says.

    ``drop``: a function of each board frame with messages (before it is
    taken) that says whether to lose it, as a lossy cable would.
    ``answer_probes``: answer the board's PROBEs at once, as the spec asks.
    """

    def __init__(self, netns: str, ifname: str, session: int = 0x5E55_0001) -> None:
        with inside(netns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
            self.sock.bind((ifname, ETHERTYPE))
        self.mac: bytes = self.sock.getsockname()[4]
        self.session = session
        self.board = BROADCAST
        self.window = 64
        self.seq = self.frame = 0             # host to board
        self.expected = self.next_frame = 0   # board to host
        self.backlog: list[Message] = []
        self.control: list[Frame] = []        # the board's frames of no messages, as they came
        self.duplicates = self.gaps = 0
        self.drop: Callable[[Frame], bool] = lambda frame: False
        self.answer_probes = True

    def raw(self, payload: bytes, src: bytes | None = None, dst: bytes | None = None) -> None:
        self.sock.send((dst or self.board) + (src or self.mac) + ETHERTYPE.to_bytes(2, "big") + payload)

    def hello_frame(self, flags: int = 0, session: int | None = None, window: int = 64) -> bytes:
        data = hello(MTU_STANDARD, window, HOST_WINDOW_BASE, HOST_SIZE)
        return encode_frame(Frame(0, 0, window, 0, (Message(OP_HELLO, 0, data),), FLAG_HELLO | flags,
                                  session=self.session if session is None else session))

    def hello_answers(self, session: int, timeout: float = 1.0) -> list[tuple[bytes, Frame]]:
        """The board's HELLO answers of ``session`` within ``timeout`` (the first ends the wait)."""
        end = time.monotonic() + timeout
        while (answer := self.receive(end - time.monotonic(), acks=True)) is not None:
            if answer[1].flags & FLAG_HELLO and answer[1].session == session:
                return [answer]
        return []

    def discover(self, session: int | None = None) -> tuple[bytes, Frame] | None:
        """A discovery HELLO (PROBE, broadcast); the board's answer (Ethernet header, frame) or None."""
        session = self.session if session is None else session
        self.raw(self.hello_frame(FLAG_PROBE, session), dst=BROADCAST)
        answers = self.hello_answers(session)
        return answers[0] if answers else None

    def bind(self, board: bytes, *, window: int = 64, flags: int = 0, session: int | None = None,
             expect_answer: bool = True) -> tuple[bytes, Frame] | None:
        """Bind ``board`` (a unicast HELLO); its answer, after which both sides number from 0."""
        if session is not None:
            self.session = session
        self.window = window
        self.raw(self.hello_frame(flags, window=window), dst=board)
        answers = self.hello_answers(self.session, timeout=1.0 if expect_answer else 0.3)
        if not answers:
            assert not expect_answer, "no answer to HELLO"
            return None
        self.board = board
        self.seq = self.frame = self.expected = self.next_frame = 0
        self.backlog.clear()
        self.control.clear()
        return answers[0]

    def credit(self) -> int:
        return (self.next_frame + self.window) & 0xFFFF

    def frame_for(self, *messages: Message, flags: int = 0) -> Frame:
        """The next numbered frame of ``messages`` (not sent: :meth:`put` it, maybe later, maybe twice)."""
        f = Frame(self.seq, self.frame, self.credit(), self.expected, messages, flags, session=self.session)
        self.seq += len(messages)
        self.frame += 1
        return f

    def put(self, f: Frame) -> None:
        self.raw(encode_frame(f))

    def send(self, *messages: Message) -> Frame:
        f = self.frame_for(*messages)
        self.put(f)
        return f

    def bare(self, flags: int = 0, **fields: int) -> Frame:
        """Send a frame of no messages (an acknowledgement, a grant, a NAK, a PROBE) and return it."""
        values = dict(seq=self.seq, frame=self.frame, credit=self.credit(), acked=self.expected)
        values.update(fields)
        f = Frame(values["seq"], values["frame"], values["credit"], values["acked"], (), flags, session=self.session)
        self.put(f)
        return f

    def receive(self, timeout: float = 2.0, acks: bool = False) -> tuple[bytes, Frame] | None:
        """The board's next frame (None after ``timeout``); ``acks``: also a frame of no messages.

        Frames of no messages (acknowledgements, grants, PROBEs) are kept in
        ``control``; most tests look past them.
        """
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, addr = self.sock.recvfrom(65536)
            except socket.timeout:
                return None
            if addr[2] == _PACKET_OUTGOING:
                continue
            frame = decode_frame(data[14:])
            if frame.messages and not frame.flags & FLAG_HELLO and self.drop(frame):
                continue
            if not frame.flags & FLAG_HELLO and frame.session == self.session:
                # The spec's next_frame: one past a numbered frame, a frame of no messages' own number.
                nxt = frame.frame + 1 if frame.messages else frame.frame
                if 0 < (nxt - self.next_frame) & 0xFFFF < 0x8000:
                    self.next_frame = nxt & 0xFFFF
            if frame.flags & FLAG_PROBE and frame.session == self.session and self.answer_probes:
                self.bare()
            if not frame.messages:
                self.control.append(frame)
                if not acks:
                    continue
            return data[:14], frame
        return None

    def drain(self, seconds: float) -> list[Frame]:
        """Every frame the board sends for ``seconds`` (frames of no messages also land in ``control``)."""
        frames = []
        end = time.monotonic() + seconds
        while (answer := self.receive(end - time.monotonic(), acks=True)) is not None:
            frames.append(answer[1])
        return frames

    def messages(self, enough: Callable[[list[Message]], bool], timeout: float = 2.0,
                 ack: bool = True) -> list[Message]:
        """The board's messages until ``enough`` of them came, each once and in order, acknowledging them
        (``ack``) as a host does: a frame sent again is skipped up to the next expected message, a frame
        after a gap is dropped and NAKed once."""
        got: list[Message] = []
        end = time.monotonic() + timeout
        nak_sent = False
        while not enough(got):
            answer = self.receive(end - time.monotonic())
            assert answer is not None, f"timed out after {got}"
            frame = answer[1]
            if frame.flags & FLAG_HELLO or frame.session != self.session:
                continue                              # an answer to a HELLO, or another station's
            skip = (self.expected - frame.seq) & 0xFFFF_FFFF
            if skip >= 1 << 31:                       # starts after the expected message: a gap
                self.gaps += 1
                if ack and not nak_sent:
                    self.bare(FLAG_NAK)
                    nak_sent = True
                continue
            if skip >= len(frame.messages):
                self.duplicates += 1
                if ack:
                    self.bare()
                continue
            nak_sent = False
            got += frame.messages[skip:]
            self.expected += len(frame.messages) - skip
            if ack:
                self.bare()
        return got

    def answer(self, tag: int) -> bytes:
        """The data of the ANSWER to the READ tagged ``tag`` (answers that came with others are kept)."""
        def found() -> Message | None:
            return next((m for m in self.backlog if m.op == OP_ANSWER and m.addr == tag), None)
        if found() is None:
            self.backlog += self.messages(lambda got: any(m.op == OP_ANSWER and m.addr == tag for m in got))
        message = found()
        self.backlog.remove(message)
        return message.data

    def board_counters(self, tag: int = 0xC0) -> dict[str, int]:
        """The board's BoardCounters, READ from COUNTERS_BASE as a host would."""
        self.send(read(COUNTERS_BASE, BOARD_COUNTERS.size // 4, tag))
        return BOARD_COUNTERS.unpack(self.answer(tag))


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[str, str, str, str]]:
    """Two namespaces joined by a veth pair: (board namespace, its end, host namespace, its end)."""
    board_ns, host_ns = unique("hlb"), unique("hlh")
    board_if, host_if = unique("hlb"), unique("hlh")
    add_netns(board_ns)
    add_netns(host_ns)
    try:
        sh("ip", "-n", host_ns, "link", "add", host_if, "type", "veth", "peer", "name", board_if, "netns", board_ns)
        sh("ip", "-n", host_ns, "link", "set", host_if, "up")
        sh("ip", "-n", board_ns, "link", "set", board_if, "up")
        yield board_ns, board_if, host_ns, host_if
    finally:
        del_netns(board_ns)
        del_netns(host_ns)


def _standin(lab: tuple[str, str, str, str], **kwargs) -> tuple[HostLinkStandIn, Host]:
    board_ns, board_if, host_ns, host_if = lab
    with inside(board_ns):
        standin = HostLinkStandIn(board_if, **kwargs)
    return standin, Host(host_ns, host_if)


@pytest.fixture
def link(lab: tuple[str, str, str, str]) -> Iterator[tuple[HostLinkStandIn, Host]]:
    standin, host = _standin(lab)
    with standin:
        yield standin, host
    host.sock.close()


@pytest.fixture
def bound(link: tuple[HostLinkStandIn, Host]) -> tuple[HostLinkStandIn, Host]:
    """The stand-in bound to the host."""
    standin, host = link
    host.bind(standin.mac)
    return standin, host


# ---------------------------------------------------------------------------------------------- sessions

def test_discovery_is_answered_and_binds_nothing(link: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = link
    answer = host.discover(session=0x1234_5678)
    assert answer is not None
    eth, frame = answer
    assert eth[:6] == host.mac and eth[6:12] == standin.mac
    assert frame.flags == FLAG_HELLO | FLAG_ANSWER and frame.session == 0x1234_5678
    fields = parse_hello(frame.messages[0].data)
    assert fields["mtu"] == MTU_STANDARD and fields["window"] == 64
    assert (fields["host_base"], fields["host_size"]) == (HOST_WINDOW_BASE, HOST_WINDOW_SIZE)
    assert (fields["local_base"], fields["local_size"]) == (DMA_RAM_BASE, DMA_RAM_SIZE)
    assert standin.host_mac is None and standin.counters()["discoveries"] == 1
    # Not bound: a frame of that session is answered with STALE.
    host.board, host.session = standin.mac, 0x1234_5678
    host.send(read(reg("ID_MAGIC"), 1, tag=1))
    wait_for(lambda: any(f.flags & FLAG_STALE for f in host.control) or host.receive(0.05) is not None)
    assert [f.session for f in host.control if f.flags & FLAG_STALE] == [0x1234_5678]


def test_a_unicast_hello_binds_and_is_answered_with_its_session(link: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = link
    eth, frame = host.bind(standin.mac, session=0xABCD_0001)
    assert eth[:6] == host.mac and eth[6:12] == standin.mac
    assert frame.flags == FLAG_HELLO | FLAG_ANSWER and frame.session == 0xABCD_0001
    assert (frame.seq, frame.frame, frame.acked, frame.credit) == (0, 0, 0, 64)
    assert [m.op for m in frame.messages] == [OP_HELLO]
    assert (standin.host_mac, standin.session) == (host.mac, 0xABCD_0001)
    # Traffic, then a new session from the same station: the numbering restarts both ways.
    host.send(read(reg("ID_MAGIC"), 1, tag=2))
    assert host.answer(2) == u32(ID_MAGIC_VALUE)
    host.bind(standin.mac, session=0xABCD_0002)
    host.send(read(reg("ID_MAGIC"), 1, tag=3))
    answer = host.receive()
    assert answer is not None
    assert (answer[1].seq, answer[1].frame, answer[1].session) == (0, 0, 0xABCD_0002)
    assert answer[1].acked == 1 and answer[1].messages[0].addr == 3


def test_a_broadcast_hello_request_binds_nothing(link: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = link
    host.raw(host.hello_frame(), dst=BROADCAST)
    assert host.hello_answers(host.session, timeout=0.3) == []
    assert standin.host_mac is None and standin.counters()["hellos_refused"] == 1


def test_a_hello_whose_window_credit_cannot_compare_binds_nothing(link: tuple[HostLinkStandIn, Host]) -> None:
    # Credit compares frame numbers modulo 2**16: from a window of 2**15 on, the first credit (the
    # window, past frame 0) looks older than frame 0, and the board could never send in the session.
    standin, host = link
    assert host.bind(standin.mac, window=0x8001, expect_answer=False) is None
    assert standin.host_mac is None and standin.counters()["hellos_refused"] == 1
    assert host.bind(standin.mac, window=0x7FFF) is not None


def test_the_same_hello_again_is_answered_without_restarting(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    host.send(write(DMA_RAM_BASE, b"kept"))
    wait_for(lambda: standin.counters()["messages_in"] == 1)
    host.raw(host.hello_frame(), dst=standin.mac)        # a late copy of the request
    assert host.hello_answers(host.session)
    host.send(read(DMA_RAM_BASE, 1, tag=4))              # still message 1 of the session
    assert host.answer(4) == b"kept"
    assert standin.counters()["gaps"] == 0


def test_another_station_is_ignored_while_bound_unless_it_takes_over(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    # Its discovery is answered, flagged BOUND; its HELLO request and its frames are dropped unanswered.
    host.raw(host.hello_frame(FLAG_PROBE, session=0x0D15_C0DE), src=STRANGER, dst=BROADCAST)
    host.raw(host.hello_frame(session=0x0D15_C0DE), src=STRANGER, dst=standin.mac)
    host.raw(encode_frame(Frame(0, 0, 64, 0, (write(DMA_RAM_BASE, b"evil"),), session=host.session)), src=STRANGER)
    wait_for(lambda: standin.counters()["foreign"] == 2)
    assert standin.counters()["discoveries"] == 1
    assert (standin.host_mac, standin.session) == (host.mac, host.session)
    host.send(read(DMA_RAM_BASE, 1, tag=5))
    assert host.answer(5) == b"\0\0\0\0"
    # The host's own discovery is not flagged BOUND.
    answer = host.discover(session=0x0D15_0002)
    assert answer is not None and not answer[1].flags & FLAG_BOUND
    # TAKEOVER binds the other station.
    host.raw(host.hello_frame(FLAG_TAKEOVER, session=0x0D15_C0DE), src=STRANGER, dst=standin.mac)
    wait_for(lambda: standin.session == 0x0D15_C0DE)
    assert standin.host_mac == STRANGER and standin.counters()["takeovers"] == 1


def test_a_discovery_from_another_station_is_answered_bound(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    # The answer goes to the stranger's address, which the veth peer's socket still sees.
    host.raw(host.hello_frame(FLAG_PROBE, session=0x0D15_C0DE), src=STRANGER, dst=BROADCAST)
    answers = host.hello_answers(0x0D15_C0DE)
    assert answers and answers[0][0][:6] == STRANGER
    assert answers[0][1].flags == FLAG_HELLO | FLAG_ANSWER | FLAG_BOUND


def test_a_frame_of_an_old_session_from_the_host_is_answered_stale(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    current = host.session
    host.session = 0x01D0_5E55
    host.send(write(DMA_RAM_BASE, b"late"))
    wait_for(lambda: standin.counters()["stale"] == 1)
    host.receive(0.1)
    assert [f.session for f in host.control if f.flags & FLAG_STALE] == [0x01D0_5E55]
    host.session = current
    host.seq, host.frame = 0, 0
    host.send(read(DMA_RAM_BASE, 1, tag=6))
    assert host.answer(6) == b"\0\0\0\0"                # the old session's write did nothing
    assert standin.counters()["messages_in"] == 1


def test_a_board_reset_forgets_the_session_and_answers_stale(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    set_up_rx_queue(host)
    wait_for(lambda: standin.counters()["messages_in"] == 10)
    standin.reset_board()
    assert standin.host_mac is None and standin.counters()["resets"] == 1
    host.send(read(reg("ID_MAGIC"), 1, tag=7))
    wait_for(lambda: host.receive(0.05) is not None or any(f.flags & FLAG_STALE for f in host.control))
    stale = [f for f in host.control if f.flags & FLAG_STALE]
    assert [(f.session, f.messages) for f in stale] == [(host.session, ())]
    # The host binds again with a new session; the NIC was reset with the board.
    host.bind(standin.mac, session=host.session + 1)
    host.send(read(queue_reg("RXQ", "CTRL"), 1, tag=8), read(reg("ID_MAGIC"), 1, tag=9))
    assert host.answer(8) == u32(0) and host.answer(9) == u32(ID_MAGIC_VALUE)
    counters = host.board_counters()
    assert (counters["stale"], counters["rx_messages"]) == (1, 2)


# ---------------------------------------------------------------------------------------------- host to board

def test_a_register_read_is_answered(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    host.send(read(reg("ID_MAGIC"), 1, tag=7))
    assert host.answer(7) == u32(ID_MAGIC_VALUE)
    assert standin.counters()["reads"] == 1


def test_writes_to_nic_local_memory_read_back(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    data = bytes(range(64))
    host.send(write(DMA_RAM_BASE + 0x100, data), write(DMA_RAM_BASE + DMA_RAM_SIZE - 4, b"LAST"))
    host.send(read(DMA_RAM_BASE + 0x100, 16, tag=1), read(DMA_RAM_BASE + DMA_RAM_SIZE - 4, 1, tag=2))
    assert host.answer(1) == data
    assert host.answer(2) == b"LAST"
    assert bytes(standin.nic.dma_view(DMA_RAM_BASE + 0x100, 64)) == data
    assert standin.counters()["messages_in"] == 4


def test_what_the_board_would_skip_is_skipped_and_counted(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    host.send(write(0x5000_0000, b"\1\2\3\4"),                      # nothing there
              write(DMA_RAM_BASE + DMA_RAM_SIZE - 4, b"12345678"),  # runs past local memory
              write(HOST_WINDOW_BASE, b"host"),                     # host memory is not on the board
              write(DMA_RAM_BASE + 2, b"odd!"),                     # not word-aligned
              write(COUNTERS_BASE, b"\xff" * 4),                    # the counters take no writes (not counted)
              Message(OP_READ, DMA_RAM_BASE, b""),                  # a READ without its request
              read(DMA_RAM_BASE + 2, 1, tag=9),                     # not word-aligned
              read(DMA_RAM_BASE, 0, tag=9),                         # no words
              read(DMA_RAM_BASE, 369, tag=9),                       # more than a standard frame's room
              Message(OP_IRQ, 0, u32(1)),                           # an op the host may not send
              read(DMA_RAM_BASE, 1, tag=3))
    assert host.answer(3) == b"\0\0\0\0"
    assert standin.counters()["bad_address"] + standin.counters()["bad_op"] == 9
    assert host.board_counters()["bad_address"] == 9
    assert bytes(standin.nic.dma_view(DMA_RAM_BASE, 8)) == bytes(8)


def test_foreign_and_malformed_frames_are_counted_and_change_nothing(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    good = Frame(host.seq, host.frame, host.credit(), 0, (write(DMA_RAM_BASE, b"evil"),), session=host.session)
    host.raw(encode_frame(good), src=STRANGER)                                   # another station
    host.raw(bytes([9]) + encode_frame(good)[1:])                                # another version
    host.raw(encode_frame(good)[:10])                                            # header cut short
    host.raw(encode_frame(good)[:-4])                                            # message cut short
    bad_seq = bytearray(encode_frame(good))
    bad_seq[20 + 1] ^= 0x55                                                      # message number
    host.raw(bytes(bad_seq))
    bad_len = bytearray(encode_frame(good))
    bad_len[20 + 2] = 2                                                          # len not whole words
    host.raw(bytes(bad_len))
    host.send(read(DMA_RAM_BASE, 1, tag=4))
    assert host.answer(4) == b"\0\0\0\0"
    counters = standin.counters()
    assert (counters["foreign"], counters["malformed"], counters["gaps"]) == (1, 5, 0)
    board = host.board_counters()
    assert (board["foreign"], board["malformed"]) == (1, 5)


def test_a_gap_is_naked_once_and_frames_are_dropped_until_the_resend(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    frames = [host.frame_for(write(DMA_RAM_BASE + 4 * i, u32(0x1000 + i))) for i in range(4)]
    host.put(frames[0])
    host.put(frames[2])                    # frames[1] lost on the cable
    host.put(frames[3])
    wait_for(lambda: standin.counters()["gap_frames"] == 2)
    host.drain(0.05)
    naks = [f for f in host.control if f.flags & FLAG_NAK]
    assert len(naks) == 1 and naks[0].acked == 1
    assert bytes(standin.nic.dma_view(DMA_RAM_BASE, 16)) == u32(0x1000) + bytes(12)
    for f in frames[1:]:                   # go-back-N from acked
        host.put(f)
    wait_for(lambda: standin.counters()["messages_in"] == 4)
    assert bytes(standin.nic.dma_view(DMA_RAM_BASE, 16)) == b"".join(u32(0x1000 + i) for i in range(4))
    counters = standin.counters()
    assert (counters["gaps"], counters["gap_messages"], counters["naks_sent"]) == (1, 1, 1)
    assert host.board_counters()["gaps"] == 2


def test_an_empty_frame_at_the_expected_message_ends_the_gap(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    frames = [host.frame_for(write(DMA_RAM_BASE + 4 * i, u32(i))) for i in range(3)]
    host.put(frames[1])                    # frames[0] lost: a gap, NAKed
    wait_for(lambda: standin.counters()["naks_sent"] == 1)
    host.bare(seq=0)                       # the host goes back to message 0: the gap is being filled
    host.put(frames[2])                    # ... but this frame is lost ahead of it again: a new gap
    wait_for(lambda: standin.counters()["gap_frames"] == 2)
    wait_for(lambda: standin.counters()["naks_sent"] == 2)
    assert standin.counters()["gaps"] == 2


def test_a_duplicate_is_acknowledged_again_at_once(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    first = host.send(write(DMA_RAM_BASE, u32(1)))
    wait_for(lambda: any(f.acked == 1 for f in host.control) or host.receive(0.05) is not None)
    host.control.clear()
    host.put(first)                        # the board's acknowledgement was "lost": the host sends again
    assert host.receive(0.5, acks=True) is not None
    assert [(f.acked, f.messages) for f in host.control] == [(1, ())]
    assert standin.counters()["duplicates"] == 1 and standin.counters()["messages_in"] == 1


def test_an_empty_frame_behind_the_boards_acked_is_acknowledged_at_once(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    host.send(write(DMA_RAM_BASE, u32(1)), write(DMA_RAM_BASE + 4, u32(2)))
    wait_for(lambda: any(f.acked == 2 for f in host.control) or host.receive(0.05) is not None)
    host.control.clear()
    host.bare(seq=0)                       # the host did not hear acked 2: it is about to send again from 0
    assert host.receive(0.5, acks=True) is not None
    assert [(f.acked, f.messages) for f in host.control] == [(2, ())]
    assert standin.counters()["messages_in"] == 2


def test_a_partly_duplicated_frame_is_dropped_whole(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    host.send(write(DMA_RAM_BASE, u32(1)), write(DMA_RAM_BASE + 4, u32(2)))
    wait_for(lambda: standin.counters()["messages_in"] == 2)
    # Messages 1 and 2: the first came already, so the board drops the frame whole.
    host.put(Frame(1, host.frame, host.credit(), 0, (write(DMA_RAM_BASE + 4, u32(2)), write(DMA_RAM_BASE + 8, u32(3))),
                   session=host.session))
    host.frame += 1
    wait_for(lambda: standin.counters()["duplicates"] == 1)
    assert bytes(standin.nic.dma_view(DMA_RAM_BASE + 8, 4)) == bytes(4)
    assert standin.counters()["messages_in"] == 2
    # The host trims what it sends again to start at acked: taken.
    host.seq = 2
    host.send(write(DMA_RAM_BASE + 8, u32(3)))
    wait_for(lambda: standin.counters()["messages_in"] == 3)
    assert bytes(standin.nic.dma_view(DMA_RAM_BASE + 8, 4)) == u32(3)


def test_a_frame_beyond_the_credit_is_an_overrun(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    host.send(write(DMA_RAM_BASE, u32(1)))
    wait_for(lambda: standin.counters()["messages_in"] == 1)
    host.frame = 100                       # far past any grant (64 + 1)
    host.send(write(DMA_RAM_BASE + 4, u32(2)))
    wait_for(lambda: standin.counters()["overruns"] == 1)
    host.drain(0.05)
    assert [f.acked for f in host.control if f.flags & FLAG_NAK] == [1]
    assert bytes(standin.nic.dma_view(DMA_RAM_BASE + 4, 4)) == bytes(4)
    # The NAK's grant covers the resend (next_frame moved past the dropped frame).
    host.seq = 1
    host.send(write(DMA_RAM_BASE + 4, u32(2)))
    wait_for(lambda: bytes(standin.nic.dma_view(DMA_RAM_BASE + 4, 4)) == u32(2))
    assert host.board_counters()["overruns"] == 1


# ---------------------------------------------------------------------------------------------- credit

def test_a_probe_is_answered_at_once_with_a_grant_past_the_probers_number(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    # The host's frames 0..19 were lost on the cable: its probe carries its next number, 20.
    host.bare(FLAG_PROBE, frame=20)
    assert host.receive(0.5, acks=True) is not None
    assert [(f.credit, f.acked, f.flags) for f in host.control] == [(20 + 64, 0, 0)]
    assert standin.counters()["probes_received"] == 1


def test_a_grant_goes_out_when_it_grew_by_half_the_window(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    host.bare(frame=31)                    # grant 95: grew by 31 < 32, nothing to say
    assert host.receive(0.2, acks=True) is None
    host.bare(frame=32)                    # grant 96: grew by 32
    assert host.receive(0.5, acks=True) is not None
    assert [f.credit for f in host.control] == [32 + 64]


def test_only_a_newer_credit_is_taken(lab: tuple[str, str, str, str]) -> None:
    standin, host = _standin(lab, replay=16, resend_us=10_000_000)
    with standin:
        host.bind(standin.mac, window=2)
        set_up_rx_queue(host)
        wait_for(lambda: standin.counters()["messages_in"] == 10)
        host.bare(credit=8)                # a grant, then a late one from before it
        host.bare(credit=5)
        wait_for(lambda: standin.counters()["frames_in"] == 3)
        inject_frames(standin, 10)
        frames = []
        while (answer := host.receive(timeout=0.3)) is not None:
            frames.append(answer[1].frame)
        assert frames == list(range(8))    # credit 8 kept: 5 would have stopped it at frame 5
    host.sock.close()


def test_out_of_credit_it_waits_then_probes_the_host(lab: tuple[str, str, str, str]) -> None:
    standin, host = _standin(lab)
    with standin:
        host.bind(standin.mac, window=2)
        host.answer_probes = False
        set_up_rx_queue(host)
        wait_for(lambda: standin.counters()["messages_in"] == 10)
        inject_frames(standin, 6)
        frames = []
        end = time.monotonic() + 0.3
        while (answer := host.receive(timeout=end - time.monotonic())) is not None:
            frames.append(answer[1])
        assert [f.frame for f in frames] == [0, 1]        # two frames of credit, each sent once
        assert standin.counters()["credit_stalls"] >= 1
        probes = [f for f in host.control if f.flags & FLAG_PROBE]
        assert probes and probes[0].frame == 2 and not probes[0].messages
        # The host answers the probe with acked and a grant past the prober's number: the rest follows.
        host.expected = sum(len(f.messages) for f in frames)
        host.bare()

        def completions(got: list[Message]) -> list[int]:
            return [m.addr for m in got if m.op == OP_WRITE and CPL_RING <= m.addr < BUFFERS]
        first = [m for f in frames for m in f.messages]
        rest = host.messages(lambda got: len(completions(first + got)) == 6)
        assert completions(first + rest) == [CPL_RING + 16 * i for i in range(6)]
    host.sock.close()


# ---------------------------------------------------------------------------------------------- board to host

def test_unacknowledged_frames_are_sent_again_after_the_resend_period(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    host.send(read(DMA_RAM_BASE, 1, tag=1))
    got = []
    end = time.monotonic() + 0.1
    while (answer := host.receive(timeout=end - time.monotonic())) is not None:   # never acknowledged
        got.append(answer[1])
    assert len(got) >= 3
    assert {(f.seq, f.messages[0].addr) for f in got} == {(0, 1)}      # the same message each time
    assert [f.frame for f in got] == list(range(len(got)))              # each time a new frame number
    assert all(f.flags & FLAG_PROBE for f in got[1:])                   # ... asking for acked at once
    assert standin.counters()["resent_frames"] >= 2
    host.expected = 1
    host.bare()                                                          # acknowledged: no more
    time.sleep(0.01)
    assert host.receive(timeout=0.1) is None
    resent = standin.counters()["resent_frames"]
    board = host.board_counters(tag=2)
    assert (board["resent_frames"], board["tx_messages"]) == (resent, 1)   # a message is counted once


def test_a_nak_sends_again_from_the_first_unacknowledged_frame(lab: tuple[str, str, str, str]) -> None:
    standin, host = _standin(lab, resend_us=10_000_000)                  # no timer: only the NAK
    with standin:
        host.bind(standin.mac)
        for tag in range(3):
            host.send(read(DMA_RAM_BASE, 1, tag=tag))
            answer = host.receive()
            assert answer is not None and answer[1].messages[0].addr == tag
        # The host took the first (acked 1) and lost the other two: go-back-N from message 1.
        host.expected = 1
        host.bare(FLAG_NAK)
        again = [host.receive(), host.receive()]
        assert [(a[1].seq, a[1].frame, a[1].messages[0].addr) for a in again] == [(1, 3, 1), (2, 4, 2)]
        assert standin.counters()["resent_frames"] == 2
        assert host.receive(timeout=0.1) is None
    host.sock.close()


def test_a_full_replay_buffer_stops_the_model(lab: tuple[str, str, str, str]) -> None:
    standin, host = _standin(lab, replay=3)         # two frames unacknowledged, one being built
    with standin:
        host.bind(standin.mac)
        set_up_rx_queue(host)
        wait_for(lambda: standin.counters()["messages_in"] == 10)
        inject_frames(standin, 2)                     # two frames' worth: the replay buffer is full
        frames = set()
        end = time.monotonic() + 0.2
        while (answer := host.receive(timeout=end - time.monotonic())) is not None:   # never acknowledged
            frames.add(answer[1].seq)
        assert len(frames) == 2                       # the replay buffer's frames, sent again and again
        inject_frames(standin, 4)
        host.drain(0.05)
        assert standin.nic.s.wire_in.tail - standin.nic.s.wire_in.head == 4   # the rest waits on the wire

        def completions(got: list[Message]) -> list[int]:
            return [m.addr for m in got if m.op == OP_WRITE and CPL_RING <= m.addr < BUFFERS]
        got = host.messages(lambda got: len(completions(got)) == 6)
        assert completions(got) == [CPL_RING + 16 * i for i in range(6)]
    host.sock.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_message_arrives_once_and_in_order_over_a_lossy_cable(lab: tuple[str, str, str, str],
                                                                    seed: int) -> None:
    """Board frames lost at random (the host's side of the cable): the replay fills every gap."""
    rng = random.Random(seed)
    standin, host = _standin(lab)
    with standin:
        host.bind(standin.mac)
        set_up_rx_queue(host)
        wait_for(lambda: standin.counters()["messages_in"] == 10)
        host.drop = lambda frame: rng.random() < 0.2
        frames = [BROADCAST + bytes.fromhex("020000000001") + b"\x88\xb6" + bytes([i]) * (400 + 20 * i)
                  for i in range(48)]
        burst = 8                          # frames of 400+ bytes: several host-link frames in flight
        for first in range(0, len(frames), burst):
            for frame in frames[first:first + burst]:
                assert standin.inject(frame), f"seed {seed}"

            def completions(got: list[Message]) -> list[dict[str, int]]:
                return [COMPLETION.unpack(m.data) for m in got if m.op == OP_WRITE and CPL_RING <= m.addr < BUFFERS]
            new = host.messages(lambda got: len(completions(got)) >= burst, timeout=5.0)
            assert [(c["length"], c["cookie"]) for c in completions(new)] == \
                [(len(frames[i]), 0x100 + i % 16) for i in range(first, first + burst)], f"seed {seed}"
            for i in range(first, first + burst):
                buffer = BUFFERS + (i % 16) * BUFFER_SIZE
                data = b"".join(m.data for m in new if m.op == OP_WRITE and buffer <= m.addr < buffer + BUFFER_SIZE)
                assert data[:len(frames[i])] == frames[i], f"seed {seed}, frame {i}"
            host.send(write(queue_reg("RXQ", "TAIL"), u32((1 << RING_LOG2) + first + burst)))
        counters = standin.counters()
        assert counters["resent_frames"] > 0 and counters["naks_received"] > 0, f"seed {seed}"
    host.sock.close()


# ---------------------------------------------------------------------------------------------- the NIC behind it

# An RX queue set up by hand, as docs/registers.md and the hostlink docstring place it: descriptors
# in NIC-local memory, buffers and completions in host memory.
DESC_RING = DMA_RAM_BASE + 0x1000
CPL_RING = HOST_WINDOW_BASE + 0x1000
BUFFERS = HOST_WINDOW_BASE + 0x10000
RING_LOG2 = 4
BUFFER_SIZE = 2048


def set_up_rx_queue(host: Host) -> None:
    descriptors = b"".join(DESCRIPTOR.pack(addr=BUFFERS + i * BUFFER_SIZE, length=BUFFER_SIZE, cookie=0x100 + i)
                           for i in range(1 << RING_LOG2))
    ctrl, irq_mask = CSR_MAP.register("CTRL"), CSR_MAP.register("IRQ_MASK")
    host.send(write(DESC_RING, descriptors),
              write(queue_reg("RXQ", "DESC_LO"), u32(DESC_RING)), write(queue_reg("RXQ", "DESC_HI"), u32(0)),
              write(queue_reg("RXQ", "CPL_LO"), u32(CPL_RING)), write(queue_reg("RXQ", "CPL_HI"), u32(0)),
              write(queue_reg("RXQ", "SIZE"), u32(RING_LOG2)),
              write(queue_reg("RXQ", "CTRL"), u32(CSR_MAP.array("RXQ").register("CTRL").pack(ENABLE=1))),
              write(reg("IRQ_MASK"), u32(irq_mask.pack(RX=1))),
              write(reg("CTRL"), u32(ctrl.pack(RX_EN=1, PROMISC=1, BROADCAST=1))),
              write(queue_reg("RXQ", "TAIL"), u32(1 << RING_LOG2)))   # the doorbell, after the ring


def inject_frames(standin: HostLinkStandIn, n: int) -> None:
    """``n`` frames of 1000 bytes on the NIC's wire: each fills most of a 1500-byte host-link frame."""
    for i in range(n):
        assert standin.inject(BROADCAST + bytes.fromhex("020000000001") + b"\x88\xb6" + bytes([i]) * 986)


def test_a_received_frame_reaches_host_memory_as_writes_then_an_irq(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    set_up_rx_queue(host)
    frame = BROADCAST + bytes.fromhex("020000000001") + b"\x88\xb6" + bytes(range(48))   # 62 bytes
    wait_for(lambda: standin.counters()["messages_in"] == 10)
    assert standin.inject(frame)
    msgs = host.messages(lambda got: any(m.op == OP_IRQ for m in got))
    assert [(m.op, m.addr) for m in msgs] == [(OP_WRITE, BUFFERS), (OP_WRITE, CPL_RING), (OP_IRQ, 0)]
    data, cpl, irq = msgs
    assert len(data.data) == 64 and data.data[:62] == frame        # widened to whole words
    fields = COMPLETION.unpack(cpl.data)
    assert (fields["cookie"], fields["length"], fields["queue"], fields["status"]) == (0x100, 62, 0, 0)
    assert fields["flags"] & 1 == 1                                 # PHASE, in the last word
    assert standin.host_view(CPL_RING, 16) == cpl.data
    assert irq.data == u32(1)
    assert standin.counters()["dma_errors"] == 0


def test_a_descriptor_ring_in_host_memory_is_a_dma_error(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    ctrl = CSR_MAP.register("CTRL")
    host.send(write(queue_reg("TXQ", "DESC_LO"), u32(HOST_WINDOW_BASE)),
              write(queue_reg("TXQ", "CPL_LO"), u32(HOST_WINDOW_BASE + 0x1000)),
              write(queue_reg("TXQ", "CTRL"), u32(CSR_MAP.array("TXQ").register("CTRL").pack(ENABLE=1))),
              write(reg("CTRL"), u32(ctrl.pack(TX_EN=1))),
              write(queue_reg("TXQ", "TAIL"), u32(1)))
    wait_for(lambda: standin.counters()["dma_errors"] >= 1)
    assert host.receive(timeout=0.2) is None                         # nothing was written to the host


def test_the_loss_knobs_lose_one_frame_each_way(bound: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = bound
    standin.drop_received(1)
    host.send(write(DMA_RAM_BASE, b"lost"))
    host.send(read(DMA_RAM_BASE, 1, tag=5))  # after the lost frame: a gap
    wait_for(lambda: any(f.flags & FLAG_NAK for f in host.control) or host.receive(0.05) is not None)
    standin.drop_sent(1)
    host.seq, host.frame = 0, 2              # go back to the lost frame
    host.send(write(DMA_RAM_BASE, b"kept"), read(DMA_RAM_BASE, 1, tag=6))   # its answer is lost once
    assert host.answer(6) == b"kept"         # ... and sent again
    counters = standin.counters()
    assert (counters["test_drops_in"], counters["test_drops_out"]) == (1, 1)
    assert counters["resent_frames"] >= 1


def test_the_command_serves_resets_on_sigusr1_and_names_a_missing_interface(lab: tuple[str, str, str, str]) -> None:
    board_ns, board_if, host_ns, host_if = lab
    command = ["ip", "netns", "exec", board_ns, sys.executable, "-m", "splitnic_sim.hostlink_standin"]
    missing = subprocess.run(command + ["nosuch0"], capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "no network interface 'nosuch0'" in missing.stderr
    proc = subprocess.Popen(command + [board_if], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    host = Host(host_ns, host_if)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"hostlink stand-in on {board_if}") and f"{DMA_RAM_BASE:#x}" in line
        answer = host.discover()
        assert answer is not None
        host.bind(answer[0][6:12])
        host.send(read(reg("ID_MAGIC"), 1, tag=1))
        assert host.answer(1) == u32(ID_MAGIC_VALUE)
        proc.send_signal(signal.SIGUSR1)
        assert proc.stdout.readline().startswith("board reset")
        host.send(read(reg("ID_MAGIC"), 1, tag=2))
        wait_for(lambda: host.receive(0.05) is not None or any(f.flags & FLAG_STALE for f in host.control))
        assert any(f.flags & FLAG_STALE and f.session == host.session for f in host.control)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        host.sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
