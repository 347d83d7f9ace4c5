"""The board's stand-in on the eth host link, against a raw-socket host speaking the spec's codec.

Ref: sim/splitnic_sim/hostlink_standin.py; spec/splitnic_spec/hostlink.py (the
protocol and its reference codec, which plays the host here).

Each test runs the stand-in on one end of a veth pair in a namespace of its
own and the "host" on the other end, in a second namespace; nothing touches
the machine's own namespace.
"""

from __future__ import annotations

import os
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
from splitnic_spec.hostlink import (ETHERTYPE, FLAG_HELLO, FLAG_NAK, HOST_WINDOW_BASE, HOST_WINDOW_SIZE,
                                    MTU_STANDARD, OP_ANSWER, OP_HELLO, OP_IRQ, OP_READ, OP_WRITE, Frame, Message,
                                    decode_frame, encode_frame, hello, parse_hello, read_request)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and raw sockets")

BROADCAST = b"\xff" * 6
#: The host's DMA memory, as it registers it in its Hello.
HOST_SIZE = 1 << 20
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
    """The host's end of the link: a raw socket and the spec's codec, numbering as the spec says."""

    def __init__(self, netns: str, ifname: str) -> None:
        with inside(netns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
            self.sock.bind((ifname, ETHERTYPE))
        self.mac: bytes = self.sock.getsockname()[4]
        self.board = BROADCAST
        self.window = 64
        self.seq = self.frame = 0          # host to NIC
        self.expected = self.next_frame = 0  # NIC to host
        self.backlog: list[Message] = []

    def raw(self, payload: bytes, src: bytes | None = None, dst: bytes | None = None) -> None:
        self.sock.send((dst or self.board) + (src or self.mac) + ETHERTYPE.to_bytes(2, "big") + payload)

    def hello(self, window: int = 64) -> tuple[bytes, Frame]:
        """Open the link; the board's answer (Ethernet header, frame)."""
        self.window = window
        data = hello(MTU_STANDARD, window, HOST_WINDOW_BASE, HOST_SIZE)
        self.raw(encode_frame(Frame(0, 0, window, 0, (Message(OP_HELLO, 0, data),), FLAG_HELLO)), dst=BROADCAST)
        answer = self.receive()
        assert answer is not None, "no answer to HELLO"
        eth, frame = answer
        assert frame.flags & FLAG_HELLO
        self.board = eth[6:12]
        self.seq = self.frame = self.expected = self.next_frame = 0
        return eth, frame

    def frame_for(self, *messages: Message) -> Frame:
        """The next numbered frame of ``messages`` (not sent: :meth:`put` it, maybe later, maybe twice)."""
        f = Frame(self.seq, self.frame, self.next_frame + self.window, self.expected, messages)
        self.seq += len(messages)
        self.frame += 1
        return f

    def put(self, f: Frame) -> None:
        self.raw(encode_frame(f))

    def send(self, *messages: Message) -> Frame:
        f = self.frame_for(*messages)
        self.put(f)
        return f

    def receive(self, timeout: float = 2.0, acks: bool = False) -> tuple[bytes, Frame] | None:
        """The board's next frame (None after ``timeout``); ``acks``: also a bare acknowledgement.

        A bare acknowledgement (no messages, no NAK) follows every batch the
        board took when it has nothing else to send; most tests look past it.
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
            if not frame.flags & FLAG_HELLO:
                self.next_frame = max(self.next_frame, frame.frame + 1)
            if not acks and not frame.messages and not frame.flags:
                continue
            return data[:14], frame
        return None

    def messages(self, enough: Callable[[list[Message]], bool], timeout: float = 2.0) -> list[Message]:
        """The board's messages until ``enough`` of them came, checking they come in sequence."""
        got: list[Message] = []
        end = time.monotonic() + timeout
        while not enough(got):
            answer = self.receive(end - time.monotonic())
            assert answer is not None, f"timed out after {got}"
            frame = answer[1]
            assert frame.seq == self.expected, f"board messages from {frame.seq}, expected {self.expected}"
            self.expected += len(frame.messages)
            got += frame.messages
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


def test_hello_is_answered_to_the_host_with_the_boards_memory_map(link: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = link
    eth, frame = host.hello()
    assert eth[:6] == host.mac and eth[6:12] == standin.mac
    assert (frame.seq, frame.frame, frame.acked, frame.credit) == (0, 0, 0, 64)
    assert [m.op for m in frame.messages] == [OP_HELLO]
    fields = parse_hello(frame.messages[0].data)
    assert fields["mtu"] == MTU_STANDARD and fields["window"] == 64
    assert (fields["host_base"], fields["host_size"]) == (HOST_WINDOW_BASE, HOST_WINDOW_SIZE)
    assert (fields["local_base"], fields["local_size"]) == (DMA_RAM_BASE, DMA_RAM_SIZE)
    assert standin.host_mac == host.mac


def test_a_register_read_is_answered(link: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = link
    host.hello()
    host.send(read(reg("ID_MAGIC"), 1, tag=7))
    assert host.answer(7) == u32(ID_MAGIC_VALUE)
    assert standin.counters()["reads"] == 1


def test_writes_to_nic_local_memory_read_back(link: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = link
    host.hello()
    data = bytes(range(64))
    host.send(write(DMA_RAM_BASE + 0x100, data), write(DMA_RAM_BASE + DMA_RAM_SIZE - 4, b"LAST"))
    host.send(read(DMA_RAM_BASE + 0x100, 16, tag=1), read(DMA_RAM_BASE + DMA_RAM_SIZE - 4, 1, tag=2))
    assert host.answer(1) == data
    assert host.answer(2) == b"LAST"
    assert bytes(standin.nic.dma_view(DMA_RAM_BASE + 0x100, 64)) == data
    assert standin.counters()["messages_in"] == 4


def test_a_write_outside_local_memory_and_registers_is_dropped_and_counted(link: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = link
    host.hello()
    host.send(write(0x5000_0000, b"\1\2\3\4"),                      # nothing there
              write(DMA_RAM_BASE + DMA_RAM_SIZE - 4, b"12345678"),  # runs past local memory
              write(HOST_WINDOW_BASE, b"host"),                     # host memory is not on the board
              read(DMA_RAM_BASE + DMA_RAM_SIZE - 4, 1, tag=3))
    assert host.answer(3) == b"\0\0\0\0"
    assert standin.counters()["bad_address"] == 3


def test_foreign_and_malformed_frames_are_counted_and_change_nothing(link: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = link
    host.hello()
    good = Frame(host.seq, host.frame, host.window, 0, (write(DMA_RAM_BASE, b"evil"),))
    host.raw(encode_frame(good), src=b"\x02\0\0\0\0\x99")                         # another host
    host.raw(bytes([9]) + encode_frame(good)[1:])                                # another version
    host.raw(encode_frame(good)[:10])                                            # header cut short
    host.raw(encode_frame(good)[:-4])                                            # message cut short
    bad_seq = bytearray(encode_frame(good))
    bad_seq[16 + 1] ^= 0x55                                                      # message number
    host.raw(bytes(bad_seq))
    host.send(read(DMA_RAM_BASE, 1, tag=4))
    assert host.answer(4) == b"\0\0\0\0"
    counters = standin.counters()
    assert (counters["foreign"], counters["malformed"], counters["gaps"]) == (2, 3, 0)


def test_a_gap_is_naked_and_frames_are_dropped_until_the_resend(link: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = link
    host.hello()
    frames = [host.frame_for(write(DMA_RAM_BASE + 4 * i, u32(0x1000 + i))) for i in range(4)]
    host.put(frames[0])
    host.put(frames[2])                    # frames[1] lost on the cable
    answer = host.receive()
    assert answer is not None and answer[1].flags & FLAG_NAK and answer[1].acked == 1
    host.put(frames[3])
    wait_for(lambda: standin.counters()["dropped_after_gap"] == 2)
    assert bytes(standin.nic.dma_view(DMA_RAM_BASE, 16)) == u32(0x1000) + bytes(12)
    for f in frames[1:]:                   # go-back-N from acked
        host.put(f)
    host.put(frames[0])                    # an old duplicate is ignored
    wait_for(lambda: standin.counters()["duplicates"] == 1)
    assert bytes(standin.nic.dma_view(DMA_RAM_BASE, 16)) == b"".join(u32(0x1000 + i) for i in range(4))
    counters = standin.counters()
    assert (counters["gaps"], counters["gap_messages"], counters["naks_sent"], counters["messages_in"]) == (1, 1, 1, 4)


def test_the_loss_knobs_lose_one_frame_each_way(link: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = link
    host.hello()
    standin.drop_received(1)
    host.send(write(DMA_RAM_BASE, b"lost"))
    host.send(read(DMA_RAM_BASE, 1, tag=5))  # after the lost frame: a gap
    answer = host.receive()
    assert answer is not None and answer[1].flags & FLAG_NAK
    standin.drop_sent(1)
    host.seq, host.frame = 0, 2              # go back to the lost frame
    host.send(write(DMA_RAM_BASE, b"kept"))
    host.send(read(DMA_RAM_BASE, 1, tag=6))  # its answer is lost ...
    wait_for(lambda: standin.counters()["test_drops_out"] == 1)
    host.send(read(DMA_RAM_BASE, 1, tag=7))  # ... so this one's shows the host a gap
    answer = host.receive()
    assert answer is not None
    assert answer[1].seq > host.expected and answer[1].messages[-1].addr == 7
    counters = standin.counters()
    assert (counters["test_drops_in"], counters["test_drops_out"]) == (1, 1)


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


def test_a_received_frame_reaches_host_memory_as_writes_then_an_irq(link: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = link
    host.hello()
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


def test_a_descriptor_ring_in_host_memory_is_a_dma_error(link: tuple[HostLinkStandIn, Host]) -> None:
    standin, host = link
    host.hello()
    ctrl = CSR_MAP.register("CTRL")
    host.send(write(queue_reg("TXQ", "DESC_LO"), u32(HOST_WINDOW_BASE)),
              write(queue_reg("TXQ", "CPL_LO"), u32(HOST_WINDOW_BASE + 0x1000)),
              write(queue_reg("TXQ", "CTRL"), u32(CSR_MAP.array("TXQ").register("CTRL").pack(ENABLE=1))),
              write(reg("CTRL"), u32(ctrl.pack(TX_EN=1))),
              write(queue_reg("TXQ", "TAIL"), u32(1)))
    wait_for(lambda: standin.counters()["dma_errors"] >= 1)
    assert host.receive(timeout=0.2) is None                         # nothing was written to the host


def test_out_of_credit_it_sends_no_more_frames_until_granted(lab: tuple[str, str, str, str]) -> None:
    standin, host = _standin(lab)
    with standin:
        host.hello(window=2)
        set_up_rx_queue(host)
        wait_for(lambda: standin.counters()["messages_in"] == 10)
        for i in range(6):   # a 1000-byte frame fills most of a 1500-byte host-link frame
            assert standin.inject(BROADCAST + bytes.fromhex("020000000001") + b"\x88\xb6" + bytes([i]) * 986)
        frames = []
        while (answer := host.receive(timeout=0.5)) is not None:
            frames.append(answer[1])
        assert len(frames) == 2
        assert standin.counters()["credit_stalls"] >= 1
        first = [m for f in frames for m in f.messages]
        assert frames[0].seq == 0
        host.expected = len(first)
        # A message taken while its own frames wait for credit is acknowledged at once, by a frame
        # whose seq is the first waiting message: a larger one would show the host a false gap.
        host.window = 0                    # this frame grants nothing new
        host.send(write(DMA_RAM_BASE, u32(7)))
        ack = host.receive(timeout=1.0, acks=True)
        assert ack is not None and not ack[1].messages and ack[1].seq == len(first), ack
        # Grant more with an empty frame: the rest follows, in sequence.
        host.window = 64
        host.send()

        def completions(got: list[Message]) -> list[int]:
            return [m.addr for m in first + got if m.op == OP_WRITE and CPL_RING <= m.addr < BUFFERS]
        rest = host.messages(lambda got: len(completions(got)) == 6)
        assert 0 < len(completions([])) < 6
        assert completions(rest) == [CPL_RING + 16 * i for i in range(6)]
    host.sock.close()


def test_the_command_serves_until_sigterm_and_names_a_missing_interface(lab: tuple[str, str, str, str]) -> None:
    board_ns, board_if, _, _ = lab
    command = ["ip", "netns", "exec", board_ns, sys.executable, "-m", "splitnic_sim.hostlink_standin"]
    missing = subprocess.run(command + ["nosuch0"], capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "no network interface 'nosuch0'" in missing.stderr
    proc = subprocess.Popen(command + [board_if], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"hostlink stand-in on {board_if}") and f"{DMA_RAM_BASE:#x}" in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
