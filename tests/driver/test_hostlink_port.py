"""The host side of the eth host link against a Python board on a veth pair in a network namespace.

Ref: hostdrv/splitnic/hostlink_port.py, hostdrv/splitnic/_hostlink.c; spec/splitnic_spec/hostlink.py
(the protocol; its reference codec is the board's side here).

Each test gets a namespace with a veth pair: the host port opens one end, the
``Board`` below speaks the protocol on the other with a raw socket (answers
HELLO, acknowledges and grants credit, answers READs, sends WRITEs and IRQs,
drops frames and sends NAK on demand).  Nothing touches the root namespace.
"""

from __future__ import annotations

import mmap
import select
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, Iterator

import pytest

from splitnic.errors import SplitnicError
from splitnic.hostlink_port import COUNTERS, HostLinkPort
from splitnic_lab.netns import add_netns, del_netns, inside, sh, unique
from splitnic_spec import hostlink as hl
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="AF_PACKET and network namespaces are Linux's")

MEM_SIZE = 0x10000
MEM_BASE = hl.HOST_WINDOW_BASE + 0x20000
LOCAL_BASE, LOCAL_SIZE = 0x4000_0000, 0x1_0000
FOREIGN_MAC = bytes.fromhex("02aabbccdd99")
_PACKET_OUTGOING = 4


def eventually(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Whether ``condition`` became true within ``timeout`` seconds (generous: the suite runs beside
    the bitstream build on two cores; a condition that holds returns at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return condition()


class Board:
    """The board's side of the protocol, in Python with the spec's codec, on a raw socket."""

    def __init__(self, netns: str, ifname: str, *, window: int = 16, mtu: int = hl.MTU_STANDARD,
                 grant: bool = True, spec_hash: int = hl.SPEC_HASH) -> None:
        with inside(netns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(hl.ETHERTYPE))
            self.sock.bind((ifname, hl.ETHERTYPE))
        self.sock.settimeout(0.05)
        self.mac: bytes = self.sock.getsockname()[4]
        self.window, self.mtu, self.grant, self.spec_hash = window, mtu, grant, spec_hash
        #: Send a frame (acked, credit) for every frame taken; off: only answers and what the test sends.
        self.acknowledge = True
        self.host_mac: bytes | None = None
        self.host_hello: dict[str, int] | None = None
        self.local: dict[int, int] = {}             # NIC-local words the READs see
        self.received: list[hl.Message] = []        # host->NIC messages taken, in order
        self.frames_seen: list[int] = []            # frame numbers of every numbered host frame
        self.drop_once: set[int] = set()            # host frame numbers lost on the cable (once)
        self.delay = 0.0                            # seconds the board takes over each frame (a slow board)
        self.lock = threading.Lock()
        self._reset()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _reset(self) -> None:
        self.tx_seq = self.tx_frame = 0             # NIC->host numbering
        self.expected = 0                           # next host->NIC message
        self.newest = -1                            # newest host frame number
        self.nak_sent = False

    # -- sending -----------------------------------------------------------
    def frame_bytes(self, messages: list[hl.Message] = (), *, flags: int = 0, seq: int | None = None,
                    src: bytes | None = None, advance: bool = True) -> bytes:
        """An Ethernet frame to the host with the board's next numbers (``advance``: take them)."""
        credit = (self.newest + 1 + self.window) if self.grant else self.window
        f = hl.Frame(seq=self.tx_seq if seq is None else seq, frame=self.tx_frame, credit=credit,
                     acked=self.expected, messages=tuple(messages), flags=flags)
        if advance:
            self.tx_seq = f.seq + len(messages)
            self.tx_frame += 1
        eth = (self.host_mac or b"\xff" * 6) + (src or self.mac) + hl.ETHERTYPE.to_bytes(2, "big")
        return eth + hl.encode_frame(f)

    def send(self, messages: list[hl.Message] = (), **kwargs) -> None:
        """Send one frame of ``messages`` to the host."""
        with self.lock:
            self.sock.send(self.frame_bytes(messages, **kwargs))

    def send_raw(self, payload: bytes, src: bytes | None = None) -> None:
        """Send ``payload`` (bytes after the Ethernet header) as it is."""
        self.sock.send((self.host_mac or b"\xff" * 6) + (src or self.mac) + hl.ETHERTYPE.to_bytes(2, "big")
                       + payload)

    # -- receiving ---------------------------------------------------------
    def _run(self) -> None:
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(65536)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            if addr[2] == _PACKET_OUTGOING:
                continue
            if self.delay:
                time.sleep(self.delay)
            with self.lock:
                self._take(data)

    def _take(self, data: bytes) -> None:
        f = hl.decode_frame(data[14:])
        if f.flags & hl.FLAG_HELLO:
            self.host_mac = data[6:12]
            self.host_hello = hl.parse_hello(f.messages[0].data)
            self._reset()
            answer = hl._HELLO.pack(hl.HELLO_MAGIC_VALUE, self.spec_hash, self.mtu, self.window,
                                    hl.HOST_WINDOW_BASE, hl.HOST_WINDOW_SIZE, LOCAL_BASE, LOCAL_SIZE)
            self.sock.send(self.frame_bytes([hl.Message(hl.OP_HELLO, 0, answer)], flags=hl.FLAG_HELLO, seq=0,
                                            advance=False))
            return
        self.frames_seen.append(f.frame)
        if f.frame in self.drop_once:
            self.drop_once.discard(f.frame)
            return
        self.newest = f.frame
        if hl.seq_after(f.seq, self.expected):
            # A gap: drop until the expected message comes again, NAK once.
            if not self.nak_sent:
                self.nak_sent = True
                self.sock.send(self.frame_bytes(flags=hl.FLAG_NAK))
            return
        if not f.messages:
            return
        answers = []
        for i, m in enumerate(f.messages):
            if (f.seq + i - self.expected) & 0xFFFF_FFFF >= 1 << 31:
                continue                           # already taken (a resend overlapping)
            self.received.append(m)
            self.expected = (f.seq + i + 1) & 0xFFFF_FFFF
            if m.op == hl.OP_READ:
                words, tag = hl._READ.unpack(m.data)
                data = b"".join(self.local.get(m.addr + 4 * k, 0).to_bytes(4, "little") for k in range(words))
                answers.append(hl.Message(hl.OP_ANSWER, tag, data))
        self.nak_sent = False
        if self.acknowledge or answers:
            self.sock.send(self.frame_bytes(answers))  # acknowledges, grants, answers

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


class Lab:
    """A namespace with a veth pair: ``host_if`` for the port, ``board_if`` for the Board."""

    def __init__(self) -> None:
        self.netns = unique("hlns")
        self.host_if, self.board_if = unique("hlh"), unique("hlb")
        add_netns(self.netns)
        sh("ip", "-n", self.netns, "link", "add", self.host_if, "type", "veth", "peer", "name", self.board_if)
        for name in (self.host_if, self.board_if):
            sh("ip", "-n", self.netns, "link", "set", name, "up")
        self.memory = mmap.mmap(-1, MEM_SIZE)
        self.boards: list[Board] = []
        self.ports: list[HostLinkPort] = []

    def board(self, **kwargs) -> Board:
        b = Board(self.netns, self.board_if, **kwargs)
        self.boards.append(b)
        return b

    def port(self, **kwargs) -> HostLinkPort:
        with inside(self.netns):
            p = HostLinkPort(self.host_if, memoryview(self.memory), MEM_BASE, **kwargs)
        self.ports.append(p)
        return p

    def close(self) -> None:
        for p in self.ports:
            p.close()
        for b in self.boards:
            b.close()
        del_netns(self.netns)


@pytest.fixture
def lab() -> Iterator[Lab]:
    if not sh("id", "-u").stdout.strip() == "0":
        pytest.skip("network namespaces and raw sockets need root")
    lab = Lab()
    yield lab
    lab.close()


@pytest.fixture
def linked(lab: Lab) -> tuple[Lab, Board, HostLinkPort]:
    """A board and a port that said hello."""
    board = lab.board()
    port = lab.port(credit_timeout=1.0)
    port.hello(timeout=2.0)
    return lab, board, port


def test_hello_and_a_write_landing_in_memory(lab: Lab) -> None:
    board = lab.board(window=16)
    port = lab.port()
    info = port.hello(timeout=2.0)
    assert info["board_mac"] == board.mac.hex(":")
    assert (info["window"], info["mtu"], info["local_base"], info["local_size"]) == \
        (16, hl.MTU_STANDARD, LOCAL_BASE, LOCAL_SIZE)
    assert info["spec_hash"] == hl.SPEC_HASH
    assert board.host_hello["host_base"] == MEM_BASE and board.host_hello["host_size"] == MEM_SIZE
    assert board.host_hello["window"] == port.window
    data = bytes(range(60)) + b"\0" * 4
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 0x100, data),
                hl.Message(hl.OP_WRITE, MEM_BASE + 0x200, (0x8000_0001).to_bytes(4, "little") * 4)])
    assert eventually(lambda: lab.memory[0x200:0x204] == (0x8000_0001).to_bytes(4, "little"))
    assert lab.memory[0x100:0x140] == data
    c = port.counters()
    assert set(c) == set(COUNTERS)
    assert (c["frames_in"], c["messages_in"], c["bad_address"], c["malformed"]) == (1, 2, 0, 0)
    assert not port.broken
    port.hello()                                        # reopening restarts the numbering on both sides
    assert board.tx_seq == 0
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, b"\x42" * 4)])
    assert eventually(lambda: lab.memory[:4] == b"\x42" * 4)
    assert port.counters()["gaps"] == 0


def test_a_board_of_another_spec_is_refused_in_one_line(lab: Lab) -> None:
    lab.board(spec_hash=hl.SPEC_HASH ^ 1)
    port = lab.port()
    with pytest.raises(SplitnicError, match=rf"^the board on {lab.host_if} speaks host-link spec "
                       rf"{hl.SPEC_HASH ^ 1:#010x}, this driver {hl.SPEC_HASH:#010x}: rebuild the older side$"):
        port.hello(timeout=2.0)
    with pytest.raises(SplitnicError, match="call hello"):
        port.write32(LOCAL_BASE, 1)


def test_a_read_round_trip_sees_the_writes_before_it(linked) -> None:
    lab, board, port = linked
    board.local.update({LOCAL_BASE + 0x10: 0x1234_5678, LOCAL_BASE + 0x14: 0xDEAD_BEEF})
    port.write32(LOCAL_BASE + 0x40, 7)                  # posted: lands before the read
    assert port.read(LOCAL_BASE + 0x10, 3) == [0x1234_5678, 0xDEAD_BEEF, 0]
    assert [(m.op, m.addr) for m in board.received] == [(hl.OP_WRITE, LOCAL_BASE + 0x40),
                                                          (hl.OP_READ, LOCAL_BASE + 0x10)]
    assert port.read(LOCAL_BASE + 0x14) == [0xDEAD_BEEF]


def test_a_long_write_is_split_and_a_bad_length_refused(linked) -> None:
    lab, board, port = linked
    data = bytes(i & 0xFF for i in range(4000))
    port.write(LOCAL_BASE, data)
    port.flush()
    assert eventually(lambda: sum(len(m.data) for m in board.received) == 4000)
    assert b"".join(m.data for m in board.received) == data
    assert len(board.received) == 3 and board.received[1].addr == LOCAL_BASE + len(board.received[0].data)
    with pytest.raises(SplitnicError, match="not a multiple of 4"):
        port.write(LOCAL_BASE, b"abc")


def test_mirrored_spans_send_whole_words_of_local_memory_and_pass_over_host_memory(linked) -> None:
    lab, board, port = linked
    mirror = bytes(range(256))
    host = (MEM_BASE, MEM_SIZE)
    port.write_mirrored([(LOCAL_BASE + 0x10, 8), (MEM_BASE + 0x40, 64), (LOCAL_BASE + 0x21, 6),
                         (LOCAL_BASE + 0x80, 0)], mirror, LOCAL_BASE, *host)
    port.flush()
    assert eventually(lambda: len(board.received) == 2)
    # The host-memory span and the empty one send nothing; an unaligned span goes as its whole words.
    assert [(m.addr, m.data) for m in board.received] == [(LOCAL_BASE + 0x10, mirror[0x10:0x18]),
                                                          (LOCAL_BASE + 0x20, mirror[0x20:0x28])]
    for spans, why in (([(LOCAL_BASE, 4), (0x1000_0000, 4)], "device address 0x10000000 is in neither"),
                       ([(LOCAL_BASE, 4), (LOCAL_BASE + 252, 8)], rf"span {LOCAL_BASE + 252:#x}\+8 is outside")):
        with pytest.raises(SplitnicError, match=why):
            port.write_mirrored(spans, mirror, LOCAL_BASE, *host)
    port.write32(LOCAL_BASE + 0x300, 1)
    port.flush()
    assert eventually(lambda: len(board.received) == 3)
    assert board.received[2].addr == LOCAL_BASE + 0x300     # the refused calls sent nothing


def test_an_irq_makes_the_irq_socket_readable(linked) -> None:
    lab, board, port = linked
    assert not select.select([port.irq], [], [], 0.05)[0]
    board.send([hl.Message(hl.OP_IRQ, 0, (1).to_bytes(4, "little"))])
    assert select.select([port.irq], [], [], 2.0)[0]
    assert port.irq.recv(16) == b"\1"
    assert port.counters()["irqs"] == 1


def test_a_write_outside_the_registered_memory_is_dropped_and_counted(linked) -> None:
    lab, board, port = linked
    lab.memory[:] = b"\x55" * MEM_SIZE
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE - 4, b"\xaa" * 8),            # starts below
                hl.Message(hl.OP_WRITE, MEM_BASE + MEM_SIZE - 4, b"\xaa" * 8),  # runs past the end
                hl.Message(hl.OP_WRITE, 0x1000, b"\xaa" * 4),                   # outside the window
                hl.Message(hl.OP_WRITE, MEM_BASE + 8, b"\x11" * 4)])            # fine, and after them
    assert eventually(lambda: lab.memory[8:12] == b"\x11" * 4)
    assert port.counters()["bad_address"] == 3
    assert lab.memory[:8] == b"\x55" * 8 and lab.memory[12:] == b"\x55" * (MEM_SIZE - 12)


def test_foreign_and_malformed_frames_are_counted_and_ignored(linked) -> None:
    lab, board, port = linked
    poison = [hl.Message(hl.OP_WRITE, MEM_BASE, b"\xee" * 4)]
    with board.lock:
        board.sock.send(board.frame_bytes(poison, src=FOREIGN_MAC, advance=False))
        good = hl.encode_frame(hl.Frame(board.tx_seq, board.tx_frame, 64, 0, tuple(poison)))
        board.send_raw(bytes([2]) + good[1:])                           # another version
        bad_seq = bytearray(good)
        bad_seq[hl._FRAME.size + 1] ^= 1                                # the message's seq8
        board.send_raw(bytes(bad_seq))
        board.send_raw(good[:hl._FRAME.size + 6])                       # a header that runs past the end
        board.send_raw(good[:8])                                        # shorter than a frame header
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4, b"\x77" * 4)])    # the stream goes on unharmed
    assert eventually(lambda: lab.memory[4:8] == b"\x77" * 4)
    c = port.counters()
    assert (c["foreign"], c["malformed"], c["gaps"]) == (1, 4, 0)
    assert lab.memory[:4] == b"\0" * 4
    assert not port.broken


def test_a_gap_from_the_board_marks_the_link_broken(linked) -> None:
    lab, board, port = linked
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, b"\1\0\0\0")])
    assert eventually(lambda: port.counters()["messages_in"] == 1)
    assert not port.broken
    board.tx_seq += 5                                                   # five messages lost on the cable
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4, b"\2\0\0\0")])
    assert eventually(lambda: port.broken)
    c = port.counters()
    assert (c["gaps"], c["lost_messages"]) == (1, 5)
    assert eventually(lambda: lab.memory[4] == 2)                       # later messages still apply


def test_a_frame_lost_to_the_board_is_resent_after_its_nak(linked) -> None:
    lab, board, port = linked
    board.drop_once = {1}                                               # the host's second frame
    for i in range(6):
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
    assert eventually(lambda: len(board.received) == 6)
    assert [(m.addr, m.data) for m in board.received] == \
        [(LOCAL_BASE + 4 * i, i.to_bytes(4, "little")) for i in range(6)]
    c = port.counters()
    assert c["naks"] >= 1 and c["resent_frames"] >= 1
    assert board.frames_seen[:2] == [0, 1] and len(set(board.frames_seen)) == len(board.frames_seen)


def test_a_lost_last_frame_is_resent_when_nothing_is_acknowledged(linked) -> None:
    lab, board, port = linked
    board.drop_once = {0}                                               # no later frame shows the gap
    port.write32(LOCAL_BASE, 0x600D)
    port.flush()
    assert eventually(lambda: len(board.received) == 1)
    assert board.received[0].data == (0x600D).to_bytes(4, "little")
    c = port.counters()
    assert (c["naks"], c["resent_frames"]) == (0, 1)
    assert board.frames_seen == [0, 1]


def test_frames_acknowledged_while_waiting_to_be_sent_again_are_not_sent_again(lab: Lab) -> None:
    # The board takes every frame but says nothing (a board that acknowledges late), and has
    # granted no credit beyond its window: the resend timer wants to go back, but no frame may
    # leave.  When the acknowledgement and credit come, the frames it covers are done: sending
    # them again would be wrong, and the host used to keep them as unacknowledged forever.
    board = lab.board(window=6, grant=False)
    board.acknowledge = False
    port = lab.port(credit_timeout=1.0)
    port.hello()
    for i in range(6):
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
    assert eventually(lambda: len(board.received) == 6)
    time.sleep(0.02)                                                    # the resend timer fires, blocked
    board.grant = board.acknowledge = True
    board.send()                                                        # acked: all 6, credit: 6 more
    for i in range(6, 20):                                              # more than the replay slots left
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
    assert eventually(lambda: len(board.received) == 20)
    assert [m.data for m in board.received] == [i.to_bytes(4, "little") for i in range(20)]
    time.sleep(0.02)
    assert port.counters()["resent_frames"] == 0
    assert len(set(board.frames_seen)) == len(board.frames_seen) == 20


def test_a_board_slower_than_resend_us_is_measured_and_not_sent_the_same_frames_again(lab: Lab) -> None:
    # The simulated SoC takes milliseconds over a frame, more than RESEND_US: with a fixed timer the
    # host sent each frame again while the board was still taking it (in selftest over eth: more
    # than half of all frames, each a duplicate the board had to drop).  It must learn the round trip.
    board = lab.board()
    port = lab.port()
    port.hello()
    board.delay = 0.005

    def write_and_wait(i: int) -> None:
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
        assert eventually(lambda: len(board.received) == i + 1)

    for i in range(10):                                                 # the host measures the board
        write_and_wait(i)
    resent = port.counters()["resent_frames"]
    for i in range(10, 40):
        write_and_wait(i)
    time.sleep(0.05)
    assert port.counters()["resent_frames"] - resent <= 2               # 30 or more with a fixed timer
    assert [m.data for m in board.received] == [i.to_bytes(4, "little") for i in range(40)]


def test_a_grant_sent_while_frames_wait_for_credit_shows_no_gap(lab: Lab) -> None:
    # The host's frame waits for the board's credit while the board's writes pour in: the host
    # grants the board more (a frame of no messages), whose seq must be the waiting frame's
    # first message.  One past it would look like a lost frame to the board (a NAK, a resend).
    board = lab.board(window=2, grant=False)
    port = lab.port(credit_timeout=30.0)       # the waiting frame must outlast the steps below, however slow
    port.hello()
    for i in range(2):
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
    waiting = threading.Thread(target=lambda: (port.write32(LOCAL_BASE + 8, 2), port.flush()))
    waiting.start()
    time.sleep(0.05)
    for i in range(port.window):                                        # enough for the host to grant
        board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4 * (i % 16), i.to_bytes(4, "little"))])
    # 2 frames, then a grant: one, or two if the host took the board's frames in more than one burst.
    assert eventually(lambda: len(board.frames_seen) >= 3), board.frames_seen
    assert set(board.frames_seen[2:]) == {2}, board.frames_seen         # a grant carries the next number
    board.grant = True
    board.send()
    waiting.join(timeout=30)
    assert eventually(lambda: len(board.received) == 3)
    assert port.counters()["naks"] == 0 and not board.nak_sent


def test_without_credit_the_host_stops_and_writes_fail(lab: Lab) -> None:
    board = lab.board(window=2, grant=False)                            # acknowledges, never grants more
    port = lab.port(credit_timeout=0.5)
    port.hello()
    for i in range(2):
        port.write32(LOCAL_BASE, i)
        port.flush()
    start = time.monotonic()
    with pytest.raises(SplitnicError, match="^the board grants no credit: "):
        port.write32(LOCAL_BASE, 2)
        port.flush()
    assert time.monotonic() - start >= 0.45
    time.sleep(0.05)
    assert board.frames_seen == [0, 1] and len(board.received) == 2
    assert port.counters()["credit_waits"] >= 1


def test_the_receive_path_applies_write_pairs_fast(linked) -> None:
    """A 60-byte frame write plus a 16-byte completion, 15 pairs a frame, through the C receive path."""
    lab, board, port = linked
    pairs_per_frame, nframes = 15, 4000
    frames = []
    for n in range(nframes):
        messages = []
        for k in range(pairs_per_frame):
            slot = (n * pairs_per_frame + k) % 256
            messages += [hl.Message(hl.OP_WRITE, MEM_BASE + 64 * slot, bytes(64)),
                         hl.Message(hl.OP_WRITE, MEM_BASE + 0x8000 + 16 * slot, bytes(16))]
        frames.append(board.frame_bytes(messages))
    elapsed = port.receive_frames(frames)
    c = port.counters()
    assert (c["messages_in"], c["bad_address"], c["gaps"]) == (2 * pairs_per_frame * nframes, 0, 0)
    rate = pairs_per_frame * nframes / elapsed
    assert rate >= 1.5e6, f"{rate / 1e6:.2f} M pairs/s"


def test_no_interface_is_one_clear_line() -> None:
    with pytest.raises(SplitnicError, match=r"^no interface snicnosuch0: cable the board's host-link port "
                       r"to this machine and name that interface \(docs/hardware.md\)$"):
        HostLinkPort("snicnosuch0", memoryview(mmap.mmap(-1, 4096)), MEM_BASE)


def test_without_cap_net_raw_it_says_it_needs_root() -> None:
    code = ("import mmap\nfrom splitnic.hostlink_port import HostLinkPort\n"
            "HostLinkPort('lo', memoryview(mmap.mmap(-1, 4096)), 0xA0000000)\n")
    result = subprocess.run(["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", sys.executable, "-c",
                             code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=30)
    assert result.returncode != 0
    assert "SplitnicError: needs root (CAP_NET_RAW) to open a raw socket on lo" in result.stderr
