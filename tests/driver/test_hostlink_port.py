"""The host side of the eth host link (protocol v2) against a Python board on a veth pair in a network namespace.

Ref: hostdrv/splitnic/hostlink_port.py, hostdrv/splitnic/_hostlink.c; spec/splitnic_spec/hostlink.py
(the protocol; its reference codec is the board's side here).

Each test gets a namespace with a veth pair: the host port opens one end, one
or more ``Board`` objects below speak the protocol on the other with raw
sockets, each under its own MAC address (answer discovery, bind in a session,
acknowledge and grant credit by the spec's rule, answer READs and PROBEs, send
WRITEs and IRQs from a replay buffer that NAK sends again, forget the session
when "reset" and answer STALE), and drop or misnumber frames on demand.  The
tests never use the board's stand-in, so they follow the spec alone.  Nothing
touches the root namespace.
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
BROADCAST = b"\xff" * 6
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


def after16(a: int, b: int) -> bool:
    return 0 < ((a - b) & 0xFFFF) < 0x8000


def mac_text(mac: bytes) -> str:
    return mac.hex(":")


class Board:
    """The board's side of protocol v2, in Python with the spec's codec, on a raw socket.

    ``mac``: the address it answers to and sends from (default: the interface's), so that
    several boards can share one veth end.
    """

    def __init__(self, netns: str, ifname: str, *, window: int = 16, mtu: int = hl.MTU_STANDARD,
                 grant: bool = True, spec_hash: int = hl.SPEC_HASH, mac: bytes | None = None,
                 hello_fields: dict[str, int] | None = None) -> None:
        with inside(netns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(hl.ETHERTYPE))
            self.sock.bind((ifname, hl.ETHERTYPE))
        self.sock.settimeout(0.05)
        self.mac: bytes = mac or self.sock.getsockname()[4]
        self.window, self.mtu, self.grant, self.spec_hash = window, mtu, grant, spec_hash
        self.hello_fields = dict(mtu=mtu, window=window, host_base=hl.HOST_WINDOW_BASE,
                                 host_size=hl.HOST_WINDOW_SIZE, local_base=LOCAL_BASE, local_size=LOCAL_SIZE)
        self.hello_fields.update(hello_fields or {})
        #: Send a frame (acked, credit) for every frame with messages taken; off: only answers.
        self.acknowledge = True
        #: Answer PROBEs (off: a board that hears but says nothing).
        self.answer_probes = True
        #: Take no frame at all (a board gone silent).
        self.mute = False
        #: Send the frames the host has not acknowledged again on its NAK (off: a board that cannot).
        self.replays = True
        #: Ignore binding HELLOs (a board slow to come back).
        self.hold_binding = False
        #: The first answer to a binding HELLO carries another session (a stale answer), then the right one.
        self.stale_answer_first = False
        self.host_mac: bytes | None = None
        self.session = 0
        self.host_hello: dict[str, int] | None = None
        self.hellos: list[tuple[bytes, int, int]] = []  # (destination, flags, session) of every HELLO request
        self.local: dict[int, int] = {}             # NIC-local words the READs see
        self.read_words_short = 0                   # answer READs with this many words fewer
        self.received: list[hl.Message] = []        # host->NIC messages taken, in order
        self.frames_seen: list[int] = []            # frame numbers of every numbered host frame
        self.empty_frames: list[hl.Frame] = []      # every host frame of no messages (acks, grants, probes)
        self.drop_once: set[int] = set()            # host frame numbers lost on the cable (once)
        self.delay = 0.0                            # seconds the board takes over each frame (a slow board)
        self.foreign = self.stale = self.naks_in = 0
        self.lock = threading.Lock()
        self._reset()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _reset(self) -> None:
        self.tx_seq = self.tx_frame = 0             # NIC->host numbering
        self.replay: list[tuple[int, tuple[hl.Message, ...]]] = []   # (seq, messages) not yet acked
        self.host_acked = 0                         # the host's acked: next NIC->host message it expects
        self.host_credit = 0
        self.expected = 0                           # next host->NIC message
        self.rx_next = 0                            # next_frame (spec) of the host's frames
        self.nak_sent = False

    def forget(self) -> None:
        """A board reset: unbound, no session, nothing numbered (it answers STALE from now on)."""
        with self.lock:
            self.host_mac, self.session = None, 0
            self._reset()

    # -- sending -----------------------------------------------------------
    def credit(self) -> int:
        return (self.rx_next + self.window) & 0xFFFF if self.grant else self.window

    def frame_bytes(self, messages: list[hl.Message] = (), *, flags: int = 0, seq: int | None = None,
                    src: bytes | None = None, advance: bool = True, session: int | None = None,
                    frame: int | None = None, credit: int | None = None) -> bytes:
        """An Ethernet frame to the host with the board's next numbers (``advance``: take them, and keep
        a frame of messages for replay)."""
        numbered = bool(messages)
        f = hl.Frame(seq=self.tx_seq if seq is None else seq,
                     frame=self.tx_frame if frame is None else frame,
                     credit=self.credit() if credit is None else credit, acked=self.expected,
                     messages=tuple(messages), flags=flags,
                     session=self.session if session is None else session)
        if advance:
            if numbered and seq is None:
                self.replay.append((f.seq, f.messages))
                self.tx_seq = f.seq + len(messages)
            if numbered:
                self.tx_frame = (self.tx_frame + 1) & 0xFFFF
        eth = (self.host_mac or BROADCAST) + (src or self.mac) + hl.ETHERTYPE.to_bytes(2, "big")
        return eth + hl.encode_frame(f)

    def send(self, messages: list[hl.Message] = (), *, lost: bool = False, **kwargs) -> None:
        """Send one frame of ``messages`` to the host (``lost``: numbered and kept, but the cable loses it)."""
        with self.lock:
            data = self.frame_bytes(messages, **kwargs)
            if not lost:
                self.sock.send(data)

    def send_raw(self, payload: bytes, src: bytes | None = None) -> None:
        """Send ``payload`` (bytes after the Ethernet header) as it is."""
        self.sock.send((self.host_mac or BROADCAST) + (src or self.mac) + hl.ETHERTYPE.to_bytes(2, "big")
                       + payload)

    def resend(self) -> None:
        """Go-back-N: every frame the host has not acknowledged, again (new frame numbers, same messages)."""
        with self.lock:
            self._resend()

    def _resend(self) -> None:
        if not self.replays:
            return
        for seq, messages in list(self.replay):
            self.sock.send(self.frame_bytes(list(messages), seq=seq))

    def _answer_hello(self, dst: bytes, session: int, flags: int) -> None:
        f = self.hello_fields
        data = hl._HELLO.pack(hl.HELLO_MAGIC_VALUE, self.spec_hash, f["mtu"], f["window"], f["host_base"],
                              f["host_size"], f["local_base"], f["local_size"])
        frame = hl.Frame(seq=0, frame=0, credit=self.window, acked=0, messages=(hl.Message(hl.OP_HELLO, 0, data),),
                         flags=hl.FLAG_HELLO | hl.FLAG_ANSWER | flags, session=session)
        self.sock.send(dst + self.mac + hl.ETHERTYPE.to_bytes(2, "big") + hl.encode_frame(frame))

    # -- receiving ---------------------------------------------------------
    def _run(self) -> None:
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(65536)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            if addr[2] == _PACKET_OUTGOING or data[:6] not in (self.mac, BROADCAST):
                continue
            if self.delay:
                time.sleep(self.delay)
            with self.lock:
                self._take(data)

    def _take(self, data: bytes) -> None:
        f = hl.decode_frame(data[14:])
        dst, src = data[:6], data[6:12]
        if self.mute:
            return
        if f.flags & hl.FLAG_HELLO:
            self.hellos.append((dst, f.flags, f.session))
            request = hl.parse_hello(f.messages[0].data)
            elsewhere = self.host_mac is not None and self.host_mac != src
            if f.flags & hl.FLAG_PROBE:                       # discovery: answer, bind nothing
                self._answer_hello(src, f.session, hl.FLAG_BOUND if elsewhere else 0)
                return
            if elsewhere and not f.flags & hl.FLAG_TAKEOVER:
                self.foreign += 1
                return
            if self.hold_binding:
                return
            self.host_mac, self.session, self.host_hello = src, f.session, request
            self._reset()
            self.host_credit = request["window"]
            if self.stale_answer_first:
                self.stale_answer_first = False
                self._answer_hello(src, f.session ^ 0x5A5A, 0)
            self._answer_hello(src, f.session, 0)
            return
        if self.host_mac is None:                              # reset: no session with anyone
            self.stale += 1
            stale = hl.Frame(seq=0, frame=0, credit=0, acked=0, flags=hl.FLAG_STALE, session=f.session)
            self.sock.send(src + self.mac + hl.ETHERTYPE.to_bytes(2, "big") + hl.encode_frame(stale))
            return
        if src != self.host_mac or f.session != self.session:
            self.foreign += 1
            return
        if f.messages:
            self.frames_seen.append(f.frame)
            if f.frame in self.drop_once:
                self.drop_once.discard(f.frame)
                return
        else:
            self.empty_frames.append(f)
        nxt = (f.frame + 1) & 0xFFFF if f.messages else f.frame
        if after16(nxt, self.rx_next):
            self.rx_next = nxt
        if after16(f.credit, self.host_credit):
            self.host_credit = f.credit
        if hl.seq_after(f.acked, self.host_acked) or f.acked == self.host_acked:
            self.host_acked = f.acked
            self.replay = [(s, m) for s, m in self.replay if hl.seq_after(s + len(m), f.acked)]
        if f.flags & hl.FLAG_NAK:
            self.naks_in += 1
            self._resend()
        answers = []
        if f.messages:
            if hl.seq_after(f.seq, self.expected):
                # A gap: drop until the expected message comes again, NAK once.
                if not self.nak_sent:
                    self.nak_sent = True
                    self.sock.send(self.frame_bytes(flags=hl.FLAG_NAK))
                elif f.flags & hl.FLAG_PROBE and self.answer_probes:
                    self.sock.send(self.frame_bytes())     # a PROBE is answered on any frame (spec)
                return
            for i, m in enumerate(f.messages):
                if (f.seq + i - self.expected) & 0xFFFF_FFFF >= 1 << 31:
                    continue                           # already taken (a resend overlapping)
                self.received.append(m)
                self.expected = (f.seq + i + 1) & 0xFFFF_FFFF
                if m.op == hl.OP_READ:
                    words, tag = hl._READ.unpack(m.data)
                    data = b"".join(self.local.get(m.addr + 4 * k, 0).to_bytes(4, "little")
                                    for k in range(words - self.read_words_short))
                    answers.append(hl.Message(hl.OP_ANSWER, tag, data))
            self.nak_sent = False
        probe = f.flags & hl.FLAG_PROBE and self.answer_probes
        if (f.messages and self.acknowledge) or answers or probe:
            self.sock.send(self.frame_bytes(answers))  # acknowledges, grants, answers

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


class Lab:
    """A namespace with a veth pair: ``host_if`` for the port, ``board_if`` for the Boards."""

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


def word(value: int) -> bytes:
    return (value & 0xFFFF_FFFF).to_bytes(4, "little")


# -- sessions -------------------------------------------------------------------------------------------

def test_hello_discovers_then_binds_in_a_session_every_frame_carries(lab: Lab) -> None:
    board = lab.board(window=16)
    port = lab.port()
    info = port.hello(timeout=2.0)
    assert info["board_mac"] == mac_text(board.mac)
    assert (info["window"], info["mtu"], info["local_base"], info["local_size"]) == \
        (16, hl.MTU_STANDARD, LOCAL_BASE, LOCAL_SIZE)
    assert info["spec_hash"] == hl.SPEC_HASH
    assert board.host_hello["host_base"] == MEM_BASE and board.host_hello["host_size"] == MEM_SIZE
    assert board.host_hello["window"] == port.window
    # Discovery: broadcast, flag PROBE; binding: unicast to the board, no PROBE, a session of its own.
    (d_dst, d_flags, d_session), (b_dst, b_flags, b_session) = board.hellos[0], board.hellos[-1]
    assert d_dst == BROADCAST and d_flags & hl.FLAG_PROBE
    assert b_dst == board.mac and not b_flags & (hl.FLAG_PROBE | hl.FLAG_TAKEOVER)
    assert 0 not in (d_session, b_session) and d_session != b_session
    assert port.session == b_session == board.session == info["session"]
    data = bytes(range(60)) + b"\0" * 4
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 0x100, data),
                hl.Message(hl.OP_WRITE, MEM_BASE + 0x200, word(0x8000_0001) * 4)])
    assert eventually(lambda: lab.memory[0x200:0x204] == word(0x8000_0001))
    assert lab.memory[0x100:0x140] == data
    c = port.counters()
    assert set(c) == set(COUNTERS)
    assert (c["frames_in"], c["messages_in"], c["bad_address"], c["malformed"], c["foreign"]) == (1, 2, 0, 0, 0)
    port.write32(LOCAL_BASE, 1)
    port.flush()
    assert eventually(lambda: len(board.received) == 1)     # the board took it: it carried the session
    first = port.session
    port.hello()                                        # reopening: a new session, numbering from 0 both ways
    assert port.session not in (0, first) and board.session == port.session and board.tx_seq == 0
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, b"\x42" * 4)])
    assert eventually(lambda: lab.memory[:4] == b"\x42" * 4)
    assert port.counters()["gaps"] == 0


def test_several_boards_answering_is_one_line_naming_them_unless_one_is_named(lab: Lab) -> None:
    one = lab.board(mac=bytes.fromhex("020000000a01"))
    two = lab.board(mac=bytes.fromhex("020000000a02"))
    port = lab.port()
    with pytest.raises(SplitnicError, match=rf"^2 boards answered on {lab.host_if} \(02:00:00:00:0a:0[12], "
                       rf"02:00:00:00:0a:0[12]\): name the one to use, e\.g\. --link eth:{lab.host_if}@"):
        port.hello(timeout=2.0)
    assert one.host_mac is None and two.host_mac is None   # discovery binds nobody
    info = port.hello(timeout=2.0, board_mac=two.mac)
    assert info["board_mac"] == mac_text(two.mac) and two.session == port.session and one.host_mac is None
    two.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(2))])
    one.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4, word(1))], session=port.session)  # a stranger's frame
    assert eventually(lambda: lab.memory[:4] == word(2))
    assert eventually(lambda: port.counters()["foreign"] >= 1)
    assert lab.memory[4:8] == bytes(4)


def test_a_board_bound_to_another_host_is_refused_unless_taken_over(lab: Lab) -> None:
    board = lab.board()
    board.host_mac, board.session = FOREIGN_MAC, 0x1234         # bound elsewhere
    port = lab.port()
    with pytest.raises(SplitnicError, match=rf"^the board {mac_text(board.mac)} on {lab.host_if} is bound to "
                       rf"another host .*--link eth:{lab.host_if}@{mac_text(board.mac)},takeover$"):
        port.hello(timeout=2.0)
    assert board.host_mac == FOREIGN_MAC
    port.hello(timeout=2.0, takeover=True)
    assert board.host_mac != FOREIGN_MAC and board.session == port.session
    assert board.hellos[-1][1] & hl.FLAG_TAKEOVER


def test_only_an_answer_with_our_session_binds(lab: Lab) -> None:
    board = lab.board()
    board.stale_answer_first = True                      # an answer of another session comes first
    port = lab.port()
    port.hello(timeout=2.0)
    assert port.session == board.session
    assert port.counters()["foreign"] >= 1
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(7))])
    assert eventually(lambda: lab.memory[:4] == word(7))


def test_no_answer_is_one_clear_line(lab: Lab) -> None:
    board = lab.board()
    board.mute = True
    port = lab.port()
    with pytest.raises(SplitnicError, match=rf"^no answer from the board over eth:{lab.host_if} within 0\.6 s "
                       r"\(HELLO sent \d times\); is it powered, flashed and cabled\?$"):
        port.hello(timeout=0.6)


@pytest.mark.parametrize("fields, why", [
    ({"mtu": 1000}, r"offers mtu 1000; the host link needs 1500\.\.9000"),
    ({"mtu": 9001}, r"offers mtu 9001"),
    ({"window": 1}, r"offers window 1; the host link needs 2\.\."),
    ({"host_base": hl.HOST_WINDOW_BASE + 0x1000}, r"puts the host window at 0xa0001000"),
    ({"host_size": 0x1000}, r"puts the host window at 0xa0000000\.\.\+0x1000"),
    ({"local_size": 0}, r"offers NIC-local memory at 0x40000000\.\.\+0x0"),
    ({"local_base": hl.HOST_WINDOW_BASE - 0x100}, r"offers NIC-local memory at 0x9fffff00"),
    ({"local_base": 0x4000_0002}, r"offers NIC-local memory at 0x40000002"),
    ({"local_base": 0xFFFF_F000, "local_size": 0x2000}, r"offers NIC-local memory at 0xfffff000"),
])
def test_every_field_of_the_boards_hello_is_checked(lab: Lab, fields: dict[str, int], why: str) -> None:
    lab.board(hello_fields=fields)
    port = lab.port()
    with pytest.raises(SplitnicError, match=rf"^the board [0-9a-f:]+ on {lab.host_if} {why}"):
        port.hello(timeout=2.0)


def test_a_board_of_another_spec_is_refused_in_one_line(lab: Lab) -> None:
    board = lab.board(spec_hash=hl.SPEC_HASH ^ 1)
    port = lab.port()
    with pytest.raises(SplitnicError, match=rf"^the board {mac_text(board.mac)} on {lab.host_if} speaks host-link "
                       rf"spec {hl.SPEC_HASH ^ 1:#010x}, this driver {hl.SPEC_HASH:#010x}: rebuild the older side$"):
        port.hello(timeout=2.0)
    with pytest.raises(SplitnicError, match="call hello"):
        port.write32(LOCAL_BASE, 1)


def test_frames_of_another_session_or_station_are_dropped_and_counted(linked) -> None:
    lab, board, port = linked
    poison = [hl.Message(hl.OP_WRITE, MEM_BASE, b"\xee" * 4)]
    board.send(poison, session=port.session ^ 1, advance=False)          # the board's MAC, another session
    board.send(poison, src=FOREIGN_MAC, advance=False)                   # our session, another station
    board.send(poison, flags=hl.FLAG_HELLO, advance=False)               # a HELLO that answers nothing
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4, b"\x77" * 4)])     # the stream goes on unharmed
    assert eventually(lambda: lab.memory[4:8] == b"\x77" * 4)
    c = port.counters()
    assert (c["foreign"], c["malformed"], c["gaps"]) == (3, 0, 0)
    assert lab.memory[:4] == b"\0" * 4


def test_malformed_frames_are_counted_and_ignored(linked) -> None:
    lab, board, port = linked
    poison = [hl.Message(hl.OP_WRITE, MEM_BASE, b"\xee" * 4)]
    with board.lock:
        good = hl.encode_frame(hl.Frame(board.tx_seq, board.tx_frame, 64, 0, tuple(poison), session=port.session))
        board.send_raw(bytes([3]) + good[1:])                           # another version
        bad_seq = bytearray(good)
        bad_seq[hl._FRAME.size + 1] ^= 1                                # the message's seq8
        board.send_raw(bytes(bad_seq))
        board.send_raw(good[:hl._FRAME.size + 6])                       # a header that runs past the end
        board.send_raw(good[:8])                                        # shorter than a frame header
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4, b"\x77" * 4)])
    assert eventually(lambda: lab.memory[4:8] == b"\x77" * 4)
    c = port.counters()
    assert (c["foreign"], c["malformed"], c["gaps"]) == (0, 4, 0)
    assert lab.memory[:4] == b"\0" * 4


# -- board -> host: applied in order, exactly once -------------------------------------------------------

def test_a_gap_from_the_board_drops_until_the_replay_and_naks_once(linked) -> None:
    lab, board, port = linked
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(1))])
    assert eventually(lambda: port.counters()["messages_in"] == 1)
    # The frame data is lost, its completion and a later write arrive: neither may land before the data.
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 0x100, b"\xda" * 64)], lost=True)
    board.acknowledge = False                          # the NAK alone must bring the replay
    with board.lock:
        board.naks_in = 0
        replay_before = list(board.replay)
        board.sock.send(board.frame_bytes([hl.Message(hl.OP_WRITE, MEM_BASE + 8, word(0xC0))]))
        board.sock.send(board.frame_bytes([hl.Message(hl.OP_WRITE, MEM_BASE + 12, word(0xC1))]))
    assert len(replay_before) == 1
    # The board's NAK handler resends from the host's acked: the lost frame, then the two after it.
    assert eventually(lambda: lab.memory[12:16] == word(0xC1))
    assert lab.memory[0x100:0x140] == b"\xda" * 64 and lab.memory[8:12] == word(0xC0)
    c = port.counters()
    assert c["gaps"] == 2 and c["naks_sent"] == 1 and board.naks_in == 1
    assert c["messages_in"] == 4 and c["duplicates"] == 0


def test_a_memory_write_is_never_applied_after_a_gap_even_without_a_replay(linked) -> None:
    lab, board, port = linked
    board.acknowledge = False
    board.replays = False                              # nothing comes again: nothing after the gap may land
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(1))], lost=True)
    for i in range(5):
        board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4 + 4 * i, word(0xAA))])
    assert eventually(lambda: port.counters()["gaps"] == 5)
    time.sleep(0.05)
    assert lab.memory[:24] == bytes(24) and port.counters()["messages_in"] == 0
    assert port.counters()["naks_sent"] == 1            # once per gap, not per frame


def test_a_frame_of_no_messages_at_the_expected_message_ends_a_gap(linked) -> None:
    # The board went back (its frame of no messages says its next message is the one we expect): the
    # gap is being filled.  If the replay is lost too, the next frame shows a new gap, NAKed again at
    # once rather than after the board's resend period.
    lab, board, port = linked
    board.acknowledge = False
    board.replays = False
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(1))], lost=True)         # message 0 lost
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4, word(2))])                # message 1: a gap
    assert eventually(lambda: port.counters()["naks_sent"] == 1)
    board.send(seq=0, advance=False)                   # the board's next message is 0 again: it went back
    assert eventually(lambda: port.counters()["frames_in"] >= 1)
    time.sleep(0.05)
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4, word(2))], seq=1)        # the replay of 0 lost again
    assert eventually(lambda: port.counters()["naks_sent"] == 2, timeout=2.0)
    assert lab.memory[:8] == bytes(8) and port.counters()["messages_in"] == 0


def test_a_replayed_frame_is_skipped_and_acknowledged_again_at_once(linked) -> None:
    lab, board, port = linked
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(1)), hl.Message(hl.OP_WRITE, MEM_BASE + 4, word(2))])
    assert eventually(lambda: lab.memory[4:8] == word(2))
    assert eventually(lambda: board.host_acked == 2)
    lab.memory[:8] = bytes(8)                          # had the host applied a message twice, it shows
    acks = len(board.empty_frames)
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(1)), hl.Message(hl.OP_WRITE, MEM_BASE + 4, word(2))],
               seq=0)                                  # the same messages again (a replay)
    assert eventually(lambda: port.counters()["duplicates"] == 1)
    # Acknowledged again though nothing was new, at once (not by the next keepalive, a PROBE).
    assert eventually(lambda: any(f.acked == 2 and not f.flags & hl.FLAG_PROBE for f in board.empty_frames[acks:]))
    # A replay overlapping the expected message: the old part skipped, the new part applied.
    with board.lock:
        board.tx_seq = 3
        board.replay.clear()
        frame = board.frame_bytes([hl.Message(hl.OP_WRITE, MEM_BASE, word(9)),
                                   hl.Message(hl.OP_WRITE, MEM_BASE + 16, word(3))], seq=1)
        board.sock.send(frame)
    assert eventually(lambda: lab.memory[16:20] == word(3))
    assert lab.memory[:8] == bytes(8)
    c = port.counters()
    assert (c["duplicates"], c["messages_in"], c["gaps"]) == (2, 3, 0)


def test_every_burst_that_took_messages_is_acknowledged_at_once(linked) -> None:
    # The board's replay buffer is a few frames: the host may not wait until its grant grew by half its window.
    lab, board, port = linked
    board.acknowledge = False
    for i in range(3):
        board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4 * i, word(i))])
        # An acknowledgement, not the next keepalive (a PROBE) that would carry acked too.
        assert eventually(lambda: any(f.acked == i + 1 and not f.flags & hl.FLAG_PROBE
                                      for f in board.empty_frames), timeout=2.0), (i, board.empty_frames)
    assert not board.replay


def test_the_grant_is_next_frame_plus_the_window_and_counts_frames_of_no_messages(linked) -> None:
    lab, board, port = linked
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(1))])        # frame 0: next_frame 1
    assert eventually(lambda: board.empty_frames and board.empty_frames[-1].acked == 1)
    assert board.empty_frames[-1].credit == (1 + port.window) & 0xFFFF
    # A frame of no messages numbered 40 (frames 1..39 lost, no messages in them): next_frame is 40, not 41.
    board.send(frame=40, advance=False, flags=hl.FLAG_PROBE)
    assert eventually(lambda: board.empty_frames[-1].credit == (40 + port.window) & 0xFFFF)


def test_a_frame_number_past_our_grant_does_not_move_the_grant(linked) -> None:
    # The board may number frames only below our grant.  A frame numbered far past it (a board bug, a
    # frame the FCS let through) taken as next_frame would grant the board thousands of frames beyond
    # our ring, and every later grant would look older than that one until the numbers caught up.
    lab, board, port = linked
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(1))])
    assert eventually(lambda: board.empty_frames and board.empty_frames[-1].acked == 1)
    grant = board.empty_frames[-1].credit
    board.send(frame=(board.tx_frame + 20000) & 0xFFFF, advance=False, flags=hl.FLAG_PROBE)
    assert eventually(lambda: port.counters()["probes_in"] == 1)
    board.send(flags=hl.FLAG_PROBE, advance=False)
    assert eventually(lambda: port.counters()["probes_in"] == 2)
    assert eventually(lambda: len(board.empty_frames) >= 3)
    assert all(f.credit == grant for f in board.empty_frames[-2:]), (grant, board.empty_frames[-2:])
    # A board that overshoots our grant by a frame (numbered at it) is taken, not left waiting for ever.
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4, word(2))], frame=grant)
    assert eventually(lambda: lab.memory[4:8] == word(2))
    assert eventually(lambda: board.empty_frames[-1].credit == (grant + 1 + port.window) & 0xFFFF)


def test_a_probe_from_the_board_is_answered_at_once(linked) -> None:
    lab, board, port = linked
    before = len(board.empty_frames)
    board.send(flags=hl.FLAG_PROBE, advance=False)
    # The answer: a frame of no messages that is not itself a PROBE (the host's keepalives are).
    assert eventually(lambda: any(not f.flags & hl.FLAG_PROBE for f in board.empty_frames[before:]))
    assert port.counters()["probes_in"] == 1


def test_an_acknowledgement_whose_send_failed_is_sent_again(linked) -> None:
    lab, board, port = linked
    board.acknowledge = False
    port.fail_sends(1)                                  # the acknowledgement of the next frame fails locally
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(5))])
    # Sent again as an acknowledgement (a keepalive PROBE would carry acked too, much later).
    assert eventually(lambda: any(f.acked == 1 and not f.flags & hl.FLAG_PROBE for f in board.empty_frames))
    assert port.counters()["send_errors"] == 1


# -- host -> board: resends, credit, probes ------------------------------------------------------------

def test_a_read_round_trip_sees_the_writes_before_it(linked) -> None:
    lab, board, port = linked
    board.local.update({LOCAL_BASE + 0x10: 0x1234_5678, LOCAL_BASE + 0x14: 0xDEAD_BEEF})
    port.write32(LOCAL_BASE + 0x40, 7)                  # posted: lands before the read
    assert port.read(LOCAL_BASE + 0x10, 3) == [0x1234_5678, 0xDEAD_BEEF, 0]
    assert [(m.op, m.addr) for m in board.received] == [(hl.OP_WRITE, LOCAL_BASE + 0x40),
                                                          (hl.OP_READ, LOCAL_BASE + 0x10)]
    assert port.read(LOCAL_BASE + 0x14) == [0xDEAD_BEEF]


def test_a_short_read_answer_fails_the_read_and_is_counted(linked) -> None:
    lab, board, port = linked
    board.local[LOCAL_BASE] = 0x1111_1111
    board.read_words_short = 1
    with pytest.raises(SplitnicError, match=rf"^the board answered a read of 3 words at {LOCAL_BASE:#x} over "
                       rf"eth:{lab.host_if} with 2 words; nothing of it is used$"):
        port.read(LOCAL_BASE, 3)
    assert port.counters()["short_answers"] == 1
    board.read_words_short = 0
    assert port.read(LOCAL_BASE, 3) == [0x1111_1111, 0, 0]


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
    board.send([hl.Message(hl.OP_IRQ, 0, word(1))])
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


def test_a_frame_lost_to_the_board_is_resent_after_its_nak(linked) -> None:
    lab, board, port = linked
    board.drop_once = {1}                                               # the host's second frame
    for i in range(6):
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
    assert eventually(lambda: len(board.received) == 6)
    assert [(m.addr, m.data) for m in board.received] == [(LOCAL_BASE + 4 * i, word(i)) for i in range(6)]
    c = port.counters()
    assert c["naks"] >= 1 and c["resent_frames"] >= 1
    assert board.frames_seen[:2] == [0, 1] and len(set(board.frames_seen)) == len(board.frames_seen)


def test_a_lost_last_frame_is_resent_when_nothing_is_acknowledged(linked) -> None:
    lab, board, port = linked
    board.drop_once = {0}                                               # no later frame shows the gap
    port.write32(LOCAL_BASE, 0x600D)
    port.flush()
    assert eventually(lambda: len(board.received) == 1)
    assert board.received[0].data == word(0x600D)
    c = port.counters()
    assert (c["naks"], c["resent_frames"]) == (0, 1)
    assert board.frames_seen == [0, 1]


def test_the_lost_tail_of_a_full_window_is_probed_for_and_resent(lab: Lab) -> None:
    # Both frames of a 2-frame window are lost: no acknowledgement, no credit, no later frame shows a
    # gap.  A resend needs credit the loss consumed: the host probes, the board's answer grants room
    # past every frame numbered, and the frames go again (v1 waited for credit until the write failed).
    board = lab.board(window=2)
    port = lab.port(credit_timeout=5.0)
    port.hello()
    board.drop_once = {0, 1}
    for i in range(2):
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
    port.write32(LOCAL_BASE + 8, 2)                                     # waits for credit meanwhile
    port.flush()
    assert eventually(lambda: len(board.received) == 3)
    assert [m.data for m in board.received] == [word(i) for i in range(3)]
    c = port.counters()
    assert c["probes_sent"] >= 1 and c["resent_frames"] >= 2
    assert any(f.flags & hl.FLAG_PROBE for f in board.empty_frames)


def test_lost_acknowledgements_of_a_full_window_cost_one_probe(lab: Lab) -> None:
    # The board takes both frames but its acknowledgements are lost: the host probes, and the answer
    # (acked 2, credit past frame 1) frees the window without sending anything twice.
    board = lab.board(window=2)
    port = lab.port(credit_timeout=5.0)
    port.hello()
    board.acknowledge = False
    for i in range(2):
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
    assert eventually(lambda: len(board.received) == 2)
    port.write32(LOCAL_BASE + 8, 2)
    port.flush()
    assert eventually(lambda: len(board.received) == 3)
    assert [m.data for m in board.received] == [word(i) for i in range(3)]
    assert port.counters()["probes_sent"] >= 1


def test_credit_is_taken_only_when_newer(lab: Lab) -> None:
    board = lab.board(window=2, grant=False)
    port = lab.port(credit_timeout=0.5)
    port.hello()
    board.answer_probes = False                         # its acknowledgements carry credit 2: older still
    board.send(credit=6, advance=False)                                 # frames 0..5 may go
    board.send(credit=3, advance=False)                                 # a late, older grant
    time.sleep(0.05)
    for i in range(6):
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()                                                    # raises if the older grant was taken
    assert eventually(lambda: len(board.received) == 6)
    assert board.frames_seen[:6] == list(range(6))


def test_frames_acknowledged_while_waiting_to_be_sent_again_are_not_sent_again(lab: Lab) -> None:
    # The board takes every frame but says nothing (a board that acknowledges late), and has
    # granted no credit beyond its window: the resend timer wants to go back, but no frame may
    # leave.  When the acknowledgement and credit come, the frames it covers are done: sending
    # them again would be wrong, and the host used to keep them as unacknowledged forever.
    board = lab.board(window=6, grant=False)
    board.acknowledge = board.answer_probes = False
    port = lab.port(credit_timeout=1.0)
    port.hello()
    for i in range(6):
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
    assert eventually(lambda: len(board.received) == 6)
    time.sleep(0.02)                                                    # the resend timer fires, blocked
    board.grant = board.acknowledge = board.answer_probes = True
    board.send()                                                        # acked: all 6, credit: 6 more
    for i in range(6, 20):                                              # more than the replay slots left
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
    assert eventually(lambda: len(board.received) == 20)
    assert [m.data for m in board.received] == [word(i) for i in range(20)]
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
    assert port.counters()["resent_frames"] - resent <= 5               # 30 or more with a fixed timer
    assert [m.data for m in board.received] == [word(i) for i in range(40)]


def test_a_grant_sent_while_frames_wait_for_credit_shows_no_gap(lab: Lab) -> None:
    # The host's frame waits for the board's credit while the board's writes pour in: the host
    # acknowledges them (frames of no messages), whose seq must be the waiting frame's first
    # message.  One past it would look like a lost frame to the board (a NAK, a resend).
    board = lab.board(window=2, grant=False)
    board.answer_probes = False
    port = lab.port(credit_timeout=30.0)       # the waiting frame must outlast the steps below, however slow
    port.hello()
    for i in range(2):
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
    waiting = threading.Thread(target=lambda: (port.write32(LOCAL_BASE + 8, 2), port.flush()))
    waiting.start()
    time.sleep(0.05)
    for i in range(4):
        board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4 * i, word(i))])
    assert eventually(lambda: len([f for f in board.empty_frames if f.acked == 4]) >= 1)
    assert {f.seq for f in board.empty_frames} == {2}, board.empty_frames   # the waiting frame's message
    assert not any(f.frame != 2 for f in board.empty_frames)                # and the next frame number
    board.grant = True
    board.send()
    waiting.join(timeout=30)
    assert eventually(lambda: len(board.received) == 3)
    assert port.counters()["naks"] == 0 and not board.nak_sent


def test_a_frame_waiting_for_credit_with_none_in_flight_is_probed_for_within_a_resend_period(lab: Lab) -> None:
    # Every frame acknowledged, the credit used up, the board's next grant lost: the waiting frame is
    # probed for after a resend period.  The receive thread slept until the next keepalive instead
    # (KEEPALIVE_MS: a lost grant cost half a second, and a write with a shorter timeout failed).
    board = lab.board(window=2, grant=False)
    port = lab.port(credit_timeout=5.0)
    port.hello()
    for i in range(2):
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
    assert eventually(lambda: len(board.received) == 2 and not board.replay and board.host_acked == 0)
    time.sleep(0.02)                                    # the receive thread is asleep until the keepalive
    before = len(board.empty_frames)
    start = time.monotonic()
    writer = threading.Thread(target=lambda: (port.write32(LOCAL_BASE + 8, 2), port.flush()), daemon=True)
    writer.start()
    assert eventually(lambda: any(f.flags & hl.FLAG_PROBE for f in board.empty_frames[before:]),
                      timeout=hl.KEEPALIVE_MS / 1000 * 2)
    assert time.monotonic() - start < hl.KEEPALIVE_MS / 1000 / 2
    board.grant = True
    board.send()
    writer.join(timeout=5.0)
    assert eventually(lambda: len(board.received) == 3)


def test_a_board_that_grants_nothing_is_probed_and_writes_fail_in_one_line(lab: Lab) -> None:
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
    assert port.counters()["credit_waits"] >= 1 and port.counters()["probes_sent"] >= 1



def test_an_acked_past_every_message_sent_is_not_taken(linked) -> None:
    # A board frame whose acked runs past what the host ever sent (a board bug, a frame the FCS let
    # through): taken, it would free frames not yet sent (lost without a trace) and put the host's acked
    # ahead of every later acknowledgement, so no replay slot would ever be freed again.
    lab, board, port = linked
    port.write32(LOCAL_BASE, 1)
    port.flush()
    assert eventually(lambda: len(board.received) == 1)
    with board.lock:
        bogus = hl.Frame(seq=board.tx_seq, frame=board.tx_frame, credit=board.credit(),
                         acked=board.expected + 1000, session=board.session)
        board.sock.send(board.host_mac + board.mac + hl.ETHERTYPE.to_bytes(2, "big") + hl.encode_frame(bogus))
    time.sleep(0.05)
    for i in range(1, 40):                              # more frames than the host's replay slots
        port.write32(LOCAL_BASE + 4 * i, i)
        port.flush()
    board.local[LOCAL_BASE] = 0x600D
    assert port.read(LOCAL_BASE, 1) == [0x600D]
    assert [m.data for m in board.received[:40]] == [word(max(i, 1)) for i in range(40)]
    assert port.counters()["malformed"] == 1


def test_a_board_that_acknowledges_nothing_is_named_so_in_one_line(lab: Lab) -> None:
    # Frames sent and never acknowledged: the error says so (it said "the board grants no credit",
    # which sent the user after the wrong cause).
    board = lab.board(window=64)
    board.acknowledge = board.answer_probes = False
    port = lab.port(credit_timeout=0.5)
    port.hello()
    with pytest.raises(SplitnicError, match=r"^no acknowledgement from the board over eth:\S+ within 500 ms "
                       r"\(\d+ frames unacknowledged or waiting\)(, and it answers no probe)?; is the board "
                       r"still running and cabled\?$"):
        for i in range(200):
            port.write32(LOCAL_BASE + 4 * (i % 64), i)
            port.flush()
    assert board.frames_seen and len(board.received) >= 64


# -- keepalive, silence, re-attach ---------------------------------------------------------------------

def test_an_idle_link_probes_and_a_silent_board_is_reported_while_probing_goes_on(linked) -> None:
    lab, board, port = linked
    time.sleep(hl.KEEPALIVE_MS / 1000 * 2.5)
    probes = [f for f in board.empty_frames if f.flags & hl.FLAG_PROBE]
    assert 1 <= len(probes) <= 4, len(probes)
    assert not port.silent and port.counters()["silences"] == 0
    board.mute = True
    assert eventually(lambda: port.silent, timeout=hl.LINK_TIMEOUT_MS / 1000 * 3)
    assert port.counters()["silences"] == 1
    sent = port.counters()["probes_sent"]
    assert eventually(lambda: port.counters()["probes_sent"] > sent, timeout=1.0)   # still asking
    board.mute = False
    assert eventually(lambda: not port.silent, timeout=2.0)
    assert port.session == board.session


def test_a_board_reset_is_answered_stale_and_the_host_binds_again_by_itself(linked) -> None:
    lab, board, port = linked
    board.local[LOCAL_BASE] = 0xABCD
    port.write32(LOCAL_BASE, 1)
    port.flush()
    assert eventually(lambda: len(board.received) == 1)
    old = port.session
    while select.select([port.irq], [], [], 0)[0]:
        port.irq.recv(64)
    board.forget()                                      # power cycle: unbound, nothing numbered
    hellos = len(board.hellos)
    # The next keepalive (or write) meets STALE; the host binds again, unicast, in a new session.
    assert eventually(lambda: port.reattaches == 1, timeout=3.0)
    assert board.stale >= 1 and port.counters()["stale"] == 1
    dst, flags, session = board.hellos[hellos]
    assert dst == board.mac and not flags & (hl.FLAG_PROBE | hl.FLAG_TAKEOVER)
    assert port.session == session == board.session and session not in (0, old)
    assert not port.reattaching
    assert select.select([port.irq], [], [], 1.0)[0]    # the driver is woken to re-arm the NIC
    # Both directions work, numbered from 0 in the new session.
    received = len(board.received)
    port.write32(LOCAL_BASE + 4, 2)
    assert port.read(LOCAL_BASE, 1) == [0xABCD]
    assert [(m.addr, m.seq) for m in board.received[received:]] == [(LOCAL_BASE + 4, 0), (LOCAL_BASE, 1)]
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(0x5E55))])
    assert eventually(lambda: lab.memory[:4] == word(0x5E55))
    c = port.counters()
    assert c["gaps"] == 0


def test_writes_queued_while_the_board_is_reset_go_in_the_new_session(linked) -> None:
    lab, board, port = linked
    board.forget()
    board.hold_binding = True                           # STALE now, the new HELLO's answer later
    assert eventually(lambda: port.reattaching, timeout=3.0)
    done = threading.Event()

    def writer() -> None:
        for i in range(3):
            port.write32(LOCAL_BASE + 4 * i, 0x100 + i)
            port.flush()
        done.set()
    threading.Thread(target=writer, daemon=True).start()
    time.sleep(0.1)
    assert not done.is_set() and not board.received     # nothing leaves before the board is bound again
    board.hold_binding = False
    assert done.wait(5.0)
    assert eventually(lambda: len(board.received) == 3)
    # Built before the new session existed, sent in it, numbered from 0.
    assert [(m.data, m.seq) for m in board.received] == [(word(0x100 + i), i) for i in range(3)]
    assert port.reattaches == 1 and port.counters()["foreign"] == 0


def test_a_read_in_flight_across_a_reset_is_sent_again_in_the_new_session(linked) -> None:
    lab, board, port = linked
    board.local[LOCAL_BASE] = 0x77
    board.forget()
    board.mute = True
    threading.Timer(0.2, lambda: setattr(board, "mute", False)).start()
    assert port.read(LOCAL_BASE, 1, timeout=5.0) == [0x77]
    assert port.reattaches == 1



@pytest.mark.parametrize("direction", ["both", "board_to_host"])
def test_a_board_whose_numbering_restarted_in_our_session_is_bound_again(linked, direction: str) -> None:
    # A board reset while a copy of our HELLO is still on its way (the host sent it again, the cable
    # duplicated or held it): the reset board binds again in our very session and numbers from 0, so
    # no STALE ever comes.  Its frames then all lie behind what we know (acked behind ours, messages we
    # have) and ours all lie past what it expects: every frame is a gap or a duplicate for ever.  The
    # host must notice (for LINK_TIMEOUT_MS the board talks and never agrees) and bind again.
    lab, board, port = linked
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(1)), hl.Message(hl.OP_WRITE, MEM_BASE, word(1))])
    assert eventually(lambda: lab.memory[:4] == word(1))
    if direction == "both":
        port.write32(LOCAL_BASE, 1)
        port.flush()
        assert eventually(lambda: len(board.received) == 1)
    assert eventually(lambda: board.host_acked == 2)
    session = port.session
    with board.lock:
        board._reset()                                  # same station, same session, numbered from 0
    board.local[LOCAL_BASE] = 0xF00D
    if direction == "board_to_host":
        board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 4, word(2))])    # seq 0: a "duplicate" for the host
        assert eventually(lambda: port.counters()["duplicates"] == 1)
        assert eventually(lambda: port.reattaches == 1, timeout=hl.LINK_TIMEOUT_MS / 1000 * 3)
    assert port.read(LOCAL_BASE, 1, timeout=hl.LINK_TIMEOUT_MS / 1000 * 3) == [0xF00D]
    assert port.reattaches == 1 and port.session not in (0, session) and port.session == board.session
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 8, word(3))])
    assert eventually(lambda: lab.memory[8:12] == word(3))
    assert port.counters()["stale"] == 0


def test_a_board_that_cannot_hear_us_for_a_while_is_not_bound_again(linked) -> None:
    # Host to board lost for longer than LINK_TIMEOUT_MS, board to host working: the board sends its
    # unacknowledged frames again and again (we have them: each is a duplicate, our acknowledgement
    # lost too).  That is a cable fault to wait out in the same session, not a board that lost our
    # numbering: nothing it sends is behind what we told it or an answer from behind us.
    lab, board, port = linked
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE, word(1)), hl.Message(hl.OP_WRITE, MEM_BASE + 4, word(2))])
    assert eventually(lambda: lab.memory[4:8] == word(2) and board.host_acked == 2)
    session = port.session
    with board.lock:
        board.host_acked = 0                            # the board never heard that acknowledgement...
        board.replay = [(0, (hl.Message(hl.OP_WRITE, MEM_BASE, word(1)),
                             hl.Message(hl.OP_WRITE, MEM_BASE + 4, word(2))))]
    board.mute = True                                   # ...nor anything else from us for a while
    end = time.monotonic() + hl.LINK_TIMEOUT_MS / 1000 * 2
    while time.monotonic() < end:
        board.resend()                                  # its resend timer
        time.sleep(0.02)
    assert port.reattaches == 0 and not port.reattaching and port.session == session
    board.mute = False
    assert eventually(lambda: board.host_acked == 2)
    board.send([hl.Message(hl.OP_WRITE, MEM_BASE + 8, word(3))])
    assert eventually(lambda: lab.memory[8:12] == word(3))
    assert port.reattaches == 0 and port.counters()["messages_in"] == 3


def test_a_patient_writer_waits_out_a_board_that_lost_our_numbering(linked) -> None:
    # splitnic up's writes (patient) must not fail while the host finds out that the board lost our
    # numbering: no acknowledgement comes, the replay slots fill, and the credit timeout (1 s here) runs
    # out before LINK_TIMEOUT_MS does.  They wait as for a silent board, and go in the new session.
    lab, board, port = linked
    port.write32(LOCAL_BASE, 1)
    port.flush()
    assert eventually(lambda: board.host_acked == 0 and len(board.received) == 1)
    with board.lock:
        board._reset()                                  # same station, same session, numbered from 0
    port.patient = lambda: True
    for i in range(40):                                 # more frames than the replay slots
        port.write32(LOCAL_BASE + 4 * i, 0x100 + i)
        port.flush()
    assert port.reattaches == 1
    assert eventually(lambda: [m.data for m in board.received[-3:]] == [word(0x100 + i) for i in range(37, 40)])


def test_a_read_queued_while_the_board_is_reset_is_sent_once(linked) -> None:
    # A read that waits for the new session goes in it, once: sent again, a read-to-clear register
    # (the NIC's RC statistics) would lose what the first read took.
    lab, board, port = linked
    board.local[LOCAL_BASE] = 0x88
    board.forget()
    board.hold_binding = True                           # STALE now, the new HELLO's answer later
    assert eventually(lambda: port.reattaching, timeout=3.0)
    result: list[list[int]] = []
    reader = threading.Thread(target=lambda: result.append(port.read(LOCAL_BASE, 1, timeout=5.0)), daemon=True)
    reader.start()
    time.sleep(0.1)
    board.hold_binding = False
    reader.join(timeout=10.0)
    assert result == [[0x88]]
    time.sleep(0.1)
    assert [m.op for m in board.received].count(hl.OP_READ) == 1, board.received


def test_a_patient_read_across_a_silent_board_is_sent_once(linked) -> None:
    # The cable is pulled under splitnic up's read: the read times out, the board is silent, the read is
    # tried again.  Its READ is still queued (resent until acknowledged), so trying again must wait for
    # that one's answer: a second READ would reach the board too, and the answer to the first, from a
    # read-to-clear register, would be thrown away with what it cleared.
    lab, board, port = linked
    board.local[LOCAL_BASE] = 0x5EE
    board.mute = True
    port.patient = lambda: True
    threading.Timer(hl.LINK_TIMEOUT_MS / 1000 + 1.0, lambda: setattr(board, "mute", False)).start()
    assert port.read(LOCAL_BASE, 1, timeout=hl.LINK_TIMEOUT_MS / 1000 + 0.5) == [0x5EE]
    time.sleep(0.1)
    assert [m.op for m in board.received].count(hl.OP_READ) == 1, board.received
    assert port.read(LOCAL_BASE, 1) == [0x5EE]          # and the next read is a read of its own
    assert [m.op for m in board.received].count(hl.OP_READ) == 2


# -- speed and errors ----------------------------------------------------------------------------------

def test_the_receive_path_applies_write_pairs_fast(linked) -> None:
    """A 60-byte frame write plus a 16-byte completion, 15 pairs a frame, through the C receive path."""
    lab, board, port = linked
    board.acknowledge = False
    pairs_per_frame, nframes = 15, 4000
    frames = []
    with board.lock:
        for n in range(nframes):
            messages = []
            for k in range(pairs_per_frame):
                slot = (n * pairs_per_frame + k) % 256
                messages += [hl.Message(hl.OP_WRITE, MEM_BASE + 64 * slot, bytes(64)),
                             hl.Message(hl.OP_WRITE, MEM_BASE + 0x8000 + 16 * slot, bytes(16))]
            frames.append(board.frame_bytes(messages))
        board.replay.clear()
    elapsed = port.receive_frames(frames)
    c = port.counters()
    assert (c["messages_in"], c["bad_address"], c["gaps"]) == (2 * pairs_per_frame * nframes, 0, 0)
    rate = pairs_per_frame * nframes / elapsed
    assert rate >= 1.5e6, f"{rate / 1e6:.2f} M pairs/s"


def test_a_huge_receive_ring_offers_a_window_the_board_can_compare(lab: Lab) -> None:
    # Credit compares frame numbers modulo 2**16: a window of 2**15 or more makes the board's first
    # credit (our window, from frame 0) look older than frame 0, and it would never send.  The host
    # takes at most 0x4000 from the board; its own offer must stay as small.
    board = lab.board()
    port = lab.port(ring_frames=2 * 0x8000 + 8)
    port.hello(timeout=2.0)
    assert board.host_hello is not None
    assert port.window == board.host_hello["window"] <= 0x4000
    assert after16(board.host_hello["window"], 0)


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
