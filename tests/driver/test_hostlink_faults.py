"""The ``eth`` host link on a bad cable: loss, duplicates, reordering, chosen drops, strangers and resets.

Ref: spec/splitnic_spec/hostlink.py (the protocol's recovery: go-back-N both
ways, PROBE, sessions, STALE); lab/splitnic_lab/impair.py (the impairment
relay); sim/splitnic_sim/hostlink_standin.py (the board's stand-in);
docs/hardware.md, "The eth host link".

First the relay by itself (its fates follow the seed, its counts add up).
Then the host side against the board's stand-in with the relay between them
(``eth:snhost``), in a namespace of the test's own, with random faults both
ways, scripted drops (the tail of a full window, the board's acks, a grant,
the board's frames of messages), failed local sends, a stranger on the
segment, a host restart and a board reset; last ``splitnic selftest`` and
``splitnic up`` (ping, TCP checked by hash) over the impaired link, and its
fast path (an echo and a rule added with ``splitnic rules``) set up again
after a board reset.  The
random ones are seeded: ``SPLITNIC_FAULT_SEED=N`` replays a run, and each
test prints its seed (pytest shows it when the test fails).  What they hold
the link to:

* every host -> board message is carried out exactly once and in order: a
  counter pattern written into NIC-local memory reads back, the board's
  ``rx_messages`` moved exactly as far as the host's message numbers did on
  the wire, and the frames the driver queued leave the NIC's wire once each,
  in order, byte for byte;
* every frame the driver delivers is byte-identical to one put on the NIC's
  wire, in order, and any frame missing is counted as dropped by the NIC;
* the session survives: no exception, no new session, ``splitnic up`` keeps
  running (a board reset or a host restart costs exactly one new session).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

import splitnic
from splitnic.selftest import loopback_selftest
from splitnic_lab.impair import (BOARD_IF, HOLD_S, HOST_IF, RELAY_BOARD_IF, RELAY_HOST_IF, Impairment, ImpairRelay,
                                 Rates, RelayProcess, ScriptedDrop, impaired_segment)
from splitnic_lab.netns import add_netns, del_netns, inside, sh, unique
from splitnic_lab import veth_lab
from splitnic_lab.veth_lab import UpProcess, start_up
from splitnic_sim.hostlink_standin import HostLinkStandIn
from splitnic_spec import CSR_MAP
from splitnic_spec import hostlink as hl
from splitnic_spec.board import NIC_CSR_BASE

from .conftest import NIC_MAC, frame, receive, reset_nic

SPLITNIC = Path(sys.executable).parent / "splitnic"
#: The board's own credit (splitnic_gateware.targets.hostlink_core.BOARD_SLOTS): small windows fill.
BOARD_WINDOW = 4
HOST_IP, PEER_IP = "198.18.9.1", "198.18.9.2"
PEER_MAC = bytes.fromhex("02005e0053a2")
#: Another station on the segment (the relay injects its frames).
STRANGER_MAC = bytes.fromhex("02005e0053ff")


@pytest.fixture
def seed() -> int:
    """The run's seed: SPLITNIC_FAULT_SEED, or a new one, printed so that a failure names it."""
    value = int(os.environ.get("SPLITNIC_FAULT_SEED") or random.randrange(1 << 32))
    print(f"SPLITNIC_FAULT_SEED={value}")
    return value


# ---------------------------------------------------------------------------------------------------
# The relay by itself
# ---------------------------------------------------------------------------------------------------

def _numbered(i: int, size: int = 64) -> bytes:
    return bytes(6) + bytes.fromhex("020000000002") + b"\x88\xb5" + i.to_bytes(4, "big") + bytes(size - 18)


def _fates(seed: int, rates: Rates, n: int | list[bytes], direction: str = "h2b") -> list[bytes]:
    """What the impairment lets through of ``n`` numbered frames (or of the frames ``n``), in order."""
    way = Impairment(seed, direction, rates)
    out: list[bytes] = []
    for f in ([_numbered(i) for i in range(n)] if isinstance(n, int) else n):
        out += way.admit(f, 0.0)
    return out + way.due(1.0)


def test_the_impairment_is_a_function_of_the_seed_and_counts_every_fate(seed: int) -> None:
    rates = Rates(loss=0.05, dup=0.05, reorder=0.05, reorder_depth=3)
    first, again, other = _fates(seed, rates, 4000), _fates(seed, rates, 4000), _fates(seed + 1, rates, 4000)
    assert first == again and first != other
    way = Impairment(seed, "h2b", rates)
    out: list[bytes] = []
    for i in range(4000):
        out += way.admit(_numbered(i), 0.0)
    out += way.due(1.0)
    c = way.counts
    assert c["frames"] == 4000 and c["forwarded"] == len(out) == 4000 - c["lost"] + c["duplicated"]
    for name in ("lost", "duplicated", "reordered"):
        assert 120 < c[name] < 290, (name, c)      # 5 % of 4000 is 200; 7 sigma either way
    seen = Counter(out)
    assert sum(1 for n in seen.values() if n == 2) == c["duplicated"]
    # A reordered frame goes after reorder_depth later frames, never sooner (the copy of a duplicate with it).
    numbers = [int.from_bytes(f[14:18], "big") for f in out]
    late = [(pos, n) for pos, n in enumerate(numbers) if any(m > n for m in numbers[max(0, pos - 3):pos])]
    assert late and len({n for _, n in late}) <= c["reordered"]
    # The directions draw from streams of their own.
    assert _fates(seed, rates, 500) != _fates(seed, rates, 500, "b2h")


def test_a_reordered_tail_frame_is_late_not_lost() -> None:
    way = Impairment(1, "h2b", Rates(reorder=1.0, reorder_depth=5))
    assert way.admit(_numbered(0), 10.0) == []
    assert way.due(10.0) == [] and way.next_deadline() == pytest.approx(10.0 + HOLD_S)
    assert way.due(10.0 + HOLD_S) == [_numbered(0)]


def test_a_scripted_drop_takes_the_nth_matching_host_link_frame_and_those_after_it() -> None:
    def hl_frame(count: int, flags: int = 0) -> bytes:
        messages = tuple(hl.Message(hl.OP_WRITE, 0x1000, bytes(4)) for _ in range(count))
        return bytes(6) + bytes(6) + b"\x88\xb5" + hl.encode_frame(hl.Frame(0, 0, 0, 0, messages, flags, session=7))

    way = Impairment(1, "b2h")
    script = way.add_script(ScriptedDrop(lambda f: bool(f.messages), nth=2, count=2))
    empty, full = hl_frame(0), hl_frame(3)
    sent = [way.admit(f, 0.0) for f in (empty, full, b"\xff" * 64, full, empty, full, full)]
    assert sent == [[empty], [full], [b"\xff" * 64], [], [empty], [], [full]]
    assert script.done.is_set() and [len(f.messages) for f in script.dropped] == [3, 3]
    assert way.counts["scripted_drops"] == 2 and way.next_message == {7: 3}


def test_the_relay_refuses_the_root_namespace() -> None:
    with pytest.raises(RuntimeError, match="root namespace"):
        ImpairRelay("lo", "lo", seed=1)


@contextmanager
def _segment(mtu: int = hl.MTU_STANDARD) -> Iterator[str]:
    ns = unique("snimp")
    add_netns(ns)
    try:
        with impaired_segment(ns, mtu):
            yield ns
    finally:
        del_netns(ns)


def _packet_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(hl.ETHERTYPE))
    sock.bind((ifname, hl.ETHERTYPE))
    sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)     # SO_RCVBUFFORCE: a burst and its copies, whole
    sock.settimeout(0.2)
    return sock


def test_the_relay_over_veth_does_what_its_seed_says_and_stops_by_itself(seed: int) -> None:
    rates = Rates(loss=0.1, dup=0.1, reorder=0.1)
    frames = [_numbered(i, 60 + i % 1400) for i in range(600)]
    with _segment() as ns, inside(ns):
        host, board = _packet_socket(HOST_IF), _packet_socket(BOARD_IF)
        with host, board, ImpairRelay(seed=seed, h2b=rates, max_seconds=30) as relay:
            got: list[bytes] = []
            for first in range(0, len(frames), 50):     # bursts the sockets hold whole
                for f in frames[first:first + 50]:
                    host.send(f)
                try:
                    while True:
                        got.append(board.recv(65536))
                except socket.timeout:
                    pass
            # The other way is clean; a stranger's frame passes no impairment.
            board.send(frames[0])
            relay.inject("b2h", frames[1])
            back = [host.recv(65536), host.recv(65536)]
            counters = relay.counters()
        assert sorted(back) == sorted(frames[:2])
    # What went through is what the pure impairment with the same seed lets through (timing may
    # only change where a reordered frame lands).
    assert Counter(got) == Counter(_fates(seed, rates, frames))
    h2b = counters["h2b"]
    assert h2b["frames"] == 600 and h2b["kernel_drops"] == h2b["send_errors"] == 0
    assert h2b["forwarded"] == len(got) and h2b["lost"] and h2b["duplicated"] and h2b["reordered"]
    assert counters["b2h"]["injected"] == 1
    with _segment() as ns, inside(ns):
        relay = ImpairRelay(seed=seed, max_seconds=0.3).start()
        time.sleep(1.0)
        assert relay.stopped_by_deadline
        relay.stop()


def test_the_relay_process_takes_rates_and_refuses_bad_input_in_one_line(seed: int) -> None:
    with _segment() as ns:
        with RelayProcess(ns, seed=seed, max_seconds=30) as relay:
            relay.set_rates("b2h", Rates(loss=0.5))
            assert relay.counters()["b2h"]["frames"] == 0
            with pytest.raises(ValueError, match="direction must be one of h2b, b2h"):
                relay.set_rates("sideways", Rates(loss=0.1))
        command = (sys.executable, "-m", "splitnic_lab.impair", RELAY_HOST_IF, RELAY_BOARD_IF, "--seed", "1")
        bad = sh(*command, netns=ns, check=False, input='rates sideways {"loss": 0.1}\n')
        # Its parent silent, its stdin open: it ends by itself all the same.
        start = time.monotonic()
        forgotten = subprocess.Popen(["ip", "netns", "exec", ns, *command, "--max-seconds", "0.2"],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert forgotten.wait(30) == 0 and time.monotonic() - start < 10
        missing = sh(*command[:3], "nosuch0", *command[4:], netns=ns, check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "direction must be one of" in bad.stderr
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no interface 'nosuch0'" in missing.stderr


# ---------------------------------------------------------------------------------------------------
# The host side against the stand-in, through the relay
# ---------------------------------------------------------------------------------------------------

@dataclass
class Rig:
    """The stand-in, the relay and the link to the board, in namespace ``ns``."""
    ns: str
    stand_in: HostLinkStandIn
    relay: ImpairRelay
    link: str = f"eth:{HOST_IF}"


@contextmanager
def impaired_standin(seed: int, h2b: Rates = Rates(), b2h: Rates = Rates(), **options) -> Iterator[Rig]:
    """The board's stand-in behind the relay; the caller is inside the namespace until the block ends."""
    ns = unique("snimp")
    add_netns(ns)
    try:
        with impaired_segment(ns), inside(ns), HostLinkStandIn(BOARD_IF, **options) as stand_in, \
                ImpairRelay(seed=seed, h2b=h2b, b2h=b2h, max_seconds=300) as relay:
            yield Rig(ns, stand_in, relay)
    finally:
        del_netns(ns)


class Exactly:
    """Checks that the board carried out each host message exactly once, in order (module docstring)."""

    PATTERN_WORDS = 61          # prime: each word is written again and again, the last write must win

    def __init__(self, nic, rig: Rig) -> None:
        self.nic, self.rig = nic, rig
        self.port = nic.link.bus.port
        self.region = nic.link.dma.alloc(4 * self.PATTERN_WORDS)      # NIC-local: the board holds it
        self.written = 0
        self.mark()

    def mark(self) -> None:
        """Note where the board's count and the host's numbering are (both after a READ came back)."""
        # The READ alone in its frame: the board counts a frame's messages once it carried them all out,
        # so a snapshot taken amid a frame would miss the writes before the READ in it.
        self.port.flush()
        self.board_at = self.nic.link.board_counters()["rx_messages"]
        way = self.rig.relay.ways["h2b"]
        self.session, self.host_at = way.session, way.next_message.get(way.session, 0)

    def write_pattern(self, writes: int, per_frame: int = 3) -> None:
        """``writes`` counter words into the pattern, ``per_frame`` messages a frame."""
        base = self.region.device_addr
        for _ in range(writes):
            k = self.written
            self.port.write(base + 4 * (k % self.PATTERN_WORDS), k.to_bytes(4, "little"))
            self.written += 1
            if self.written % per_frame == 0:
                self.port.flush()
        self.port.flush()

    def check(self) -> None:
        """The pattern reads back whole and the board took exactly the messages the host numbered."""
        expect = [0] * self.PATTERN_WORDS
        for k in range(max(0, self.written - self.PATTERN_WORDS), self.written):
            expect[k % self.PATTERN_WORDS] = k
        got = self.port.read(self.region.device_addr, self.PATTERN_WORDS, timeout=10)
        assert got == expect, "NIC-local memory lacks a write or took them out of order"
        before_board, before_host, session = self.board_at, self.host_at, self.session
        self.mark()
        assert self.session == session, "the host opened another session"
        board, host = (self.board_at - before_board) & 0xFFFF_FFFF, (self.host_at - before_host) & 0xFFFF_FFFF
        assert board == host, f"the board took {board} messages, the host numbered {host}"


def _rx_drops(nic) -> int:
    """Frames the NIC dropped on receive, counted (its FIFO, each queue's want of buffers)."""
    return sum(v for k, v in nic.stats().items() if k.startswith("rx") and "drop" in k)


class Traffic:
    """Frames both ways through the NIC, checked: TX once each, in order, intact on the NIC's wire; RX
    intact, in order, or counted as dropped by the NIC."""

    def __init__(self, nic, rig: Rig, seed: int) -> None:
        self.nic, self.rig, self.rng = nic, rig, random.Random(seed)
        self.rxq, self.txq = nic.rx_queue(0), nic.tx_queue(0)
        self.serial = 0

    def _frames(self, tag: bytes, count: int) -> list[bytes]:
        out = [frame(size=self.rng.randint(60, 1514), payload=tag + (self.serial + i).to_bytes(4, "big"))
               for i in range(count)]
        self.serial += count
        return out

    def run(self, rounds: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        stand_in, rxq, txq = self.rig.stand_in, self.rxq, self.txq
        drops_before = _rx_drops(self.nic)
        queued: list[bytes] = []
        on_wire: list[bytes] = []
        injected: list[bytes] = []
        delivered: list[bytes] = []
        for _ in range(rounds):
            burst = self._frames(b"tx", self.rng.randint(1, 24))
            left = burst
            while left:
                assert time.monotonic() < deadline, f"TX stuck: {len(queued) - len(on_wire)} frames not on the wire"
                left = left[txq.tx_burst(left):]
                if left:
                    on_wire += stand_in.nic.sent()
                    time.sleep(0.001)
            queued += burst
            arriving = self._frames(b"rx", self.rng.randint(1, 16))
            for f in arriving:
                while not stand_in.inject(f):
                    assert time.monotonic() < deadline, "the NIC's inbox stays full"
                    time.sleep(0.001)
            injected += arriving
            got = receive(rxq, len(arriving), timeout=max(0.1, min(10.0, deadline - time.monotonic())))
            delivered += [bytes(p.data) for p in got]
            rxq.release(got)
            on_wire += stand_in.nic.sent()
        while len(on_wire) < len(queued) and time.monotonic() < deadline:
            time.sleep(0.005)
            on_wire += stand_in.nic.sent()
        late = receive(rxq, len(injected) - len(delivered), timeout=1.0)
        delivered += [bytes(p.data) for p in late]
        rxq.release(late)
        assert on_wire == queued, "the NIC sent frames the driver queued out of order, twice, changed or never"
        it = iter(injected)
        assert all(any(d == i for i in it) for d in delivered), "a delivered frame differs from the wire's or is late"
        missing = len(injected) - len(delivered)
        assert missing == _rx_drops(self.nic) - drops_before, \
            f"{missing} frames neither delivered nor counted as dropped"


@pytest.mark.parametrize("loss,dup,reorder", [(0.02, 0.0, 0.0), (0.02, 0.02, 0.02), (0.05, 0.01, 0.03)],
                         ids=["loss2pct", "mixed2pct", "loss5pct"])
def test_random_faults_both_ways_lose_nothing_and_repeat_nothing(seed: int, loss: float, dup: float,
                                                                 reorder: float) -> None:
    rates = Rates(loss=loss, dup=dup, reorder=reorder)
    with impaired_standin(seed, rates, rates, local_size=1 << 20) as rig, reset_nic(rig.link) as nic:
        check = Exactly(nic, rig)
        check.write_pattern(1500)
        check.check()
        Traffic(nic, rig, seed).run(rounds=60)
        check.write_pattern(300, per_frame=1)
        check.check()
        counters = rig.relay.counters()
    for d in ("h2b", "b2h"):
        assert counters[d]["lost"] > 0, counters     # the run met the faults it is about
        assert counters[d]["sessions"] <= 1 and counters[d]["kernel_drops"] == 0, counters


def _scripted(seed: int, direction: str, predicate, count: int, **options) -> None:
    """Arm a scripted drop, then traffic both ways on a board-sized window: the link must carry on by itself."""
    with impaired_standin(seed, window=BOARD_WINDOW, local_size=1 << 20, **options) as rig, \
            reset_nic(rig.link) as nic:
        check = Exactly(nic, rig)
        traffic = Traffic(nic, rig, seed)
        script = rig.relay.drop(direction, predicate, count=count)
        start = time.monotonic()
        check.write_pattern(200, per_frame=2)
        check.check()
        traffic.run(rounds=8)
        assert script.done.is_set(), f"the scripted drop matched only {len(script.dropped)} of {count} frames"
        check.write_pattern(50)
        check.check()
        assert time.monotonic() - start < 20, "recovery took longer than 20 s"


def test_tail_loss_of_a_full_window_is_sent_again(seed: int) -> None:
    # Every frame of a burst that used the board's whole credit: the board sees nothing to NAK.
    _scripted(seed, "h2b", lambda f: bool(f.messages), count=BOARD_WINDOW)


def test_the_boards_lost_acknowledgements_cost_one_resend(seed: int) -> None:
    # The board's frames of no messages (its acks and grants) for a whole window.
    _scripted(seed, "b2h", lambda f: not f.messages and not f.flags & hl.FLAG_HELLO, count=BOARD_WINDOW)


@pytest.mark.parametrize("direction", ["b2h", "h2b"], ids=["the_boards", "the_hosts"])
def test_a_lost_grant_is_probed_for(seed: int, direction: str) -> None:
    newest = [None]

    def grant(f: hl.Frame) -> bool:
        # A frame of no messages whose credit is newer than any its sender sent before.
        grew = newest[0] is not None and 0 < (f.credit - newest[0]) & 0xFFFF < 0x8000
        if newest[0] is None or grew:
            newest[0] = f.credit
        return grew and not f.messages and not f.flags & hl.FLAG_HELLO
    _scripted(seed, direction, grant, count=1)


def test_lost_answers_to_reads_and_board_writes_are_sent_again(seed: int) -> None:
    # Frames from the board with messages: completions, frame bytes, ANSWERs: three in a row.
    _scripted(seed, "b2h", lambda f: bool(f.messages), count=3)


def test_the_hosts_lost_acknowledgements_make_the_board_replay(seed: int) -> None:
    # The host's frames of no messages (its acks and grants for the board's frames) for a whole replay buffer.
    _scripted(seed, "h2b", lambda f: not f.messages and not f.flags & hl.FLAG_HELLO, count=BOARD_WINDOW)


@pytest.mark.parametrize("lost", [1, 2])
def test_lost_hello_answers_delay_the_open_and_nothing_else(seed: int, lost: int) -> None:
    # The board's answers to discovery and binding: the host asks again within its open's timeout.
    with impaired_standin(seed, local_size=1 << 20) as rig:
        script = rig.relay.drop("b2h", lambda f: bool(f.flags & hl.FLAG_HELLO and f.flags & hl.FLAG_ANSWER),
                                count=lost)
        with reset_nic(rig.link) as nic:
            assert script.done.is_set()
            check = Exactly(nic, rig)
            check.write_pattern(50)
            check.check()
        assert rig.relay.ways["h2b"].counts["sessions"] == 1


def test_a_failed_local_send_is_sent_again(seed: int) -> None:
    # The host's next frames fail in send() (a full socket): acknowledgements and grants for the board's
    # frames among them.  Recorded as sent, a grant would be lost for good.
    with impaired_standin(seed, window=BOARD_WINDOW, local_size=1 << 20) as rig, reset_nic(rig.link) as nic:
        check = Exactly(nic, rig)
        traffic = Traffic(nic, rig, seed)
        for count in (1, 2, BOARD_WINDOW):
            nic.link.bus.port.fail_sends(count)
            traffic.run(rounds=3)
            check.write_pattern(20, per_frame=2)
            check.check()


def test_the_hosts_interface_going_down_and_up_costs_no_message(seed: int) -> None:
    # The host's interface goes down under it again and again: its sends fail (ENETDOWN), its socket
    # reports the error, frames in flight both ways are lost.
    with impaired_standin(seed, window=BOARD_WINDOW, local_size=1 << 20) as rig, reset_nic(rig.link) as nic:
        check = Exactly(nic, rig)
        stop = threading.Event()

        def flap() -> None:
            while not stop.wait(0.05):
                sh("ip", "link", "set", HOST_IF, "down", netns=rig.ns)
                time.sleep(0.02)
                sh("ip", "link", "set", HOST_IF, "up", netns=rig.ns)
        traffic = Traffic(nic, rig, seed)
        flapper = threading.Thread(target=flap, daemon=True)
        flapper.start()
        try:
            for _ in range(10):
                check.write_pattern(30, per_frame=2)
                traffic.run(rounds=2)
        finally:
            stop.set()
            flapper.join(5)
        check.check()


def _hello(session: int, flags: int, dst: bytes, src: bytes = STRANGER_MAC) -> bytes:
    data = hl.hello(hl.MTU_STANDARD, 64, hl.HOST_WINDOW_BASE, 1 << 20)
    body = hl.encode_frame(hl.Frame(0, 0, 64, 0, (hl.Message(hl.OP_HELLO, 0, data),), hl.FLAG_HELLO | flags,
                                    session=session))
    return dst + src + hl.ETHERTYPE.to_bytes(2, "big") + body


def test_a_stranger_on_the_segment_neither_hijacks_nor_ends_the_session(seed: int) -> None:
    with impaired_standin(seed, local_size=1 << 20) as rig, reset_nic(rig.link) as nic:
        check = Exactly(nic, rig)
        host_mac = rig.stand_in.host_mac
        board_mac = rig.stand_in.mac
        foreign_before = nic.link.board_counters()["foreign"]
        check.write_pattern(100)
        # Another host binds (unicast and broadcast), probes, and answers our host as a board would.
        for f in (_hello(0x5EED, 0, board_mac), _hello(0x5EED, 0, b"\xff" * 6),
                  _hello(0x5EED, hl.FLAG_PROBE, b"\xff" * 6)):
            rig.relay.inject("h2b", f)
        rig.relay.inject("b2h", _hello(0x5EED, hl.FLAG_ANSWER, host_mac, board_mac))
        rig.relay.inject("b2h", _hello(0xBAD, hl.FLAG_ANSWER, host_mac))
        check.write_pattern(100)
        Traffic(nic, rig, seed).run(rounds=6)
        check.check()
        assert rig.stand_in.host_mac == host_mac, "the board rebound to the stranger"
        assert nic.link.board_counters()["foreign"] - foreign_before >= 2


def test_a_host_restart_reattaches_to_the_running_board(seed: int) -> None:
    rates = Rates(loss=0.01)
    with impaired_standin(seed, rates, rates, local_size=1 << 20) as rig:
        with reset_nic(rig.link) as nic:
            check = Exactly(nic, rig)
            check.write_pattern(100)
            # The host goes away mid-traffic: writes posted, nothing flushed, no goodbye.
            for k in range(20):
                nic.link.bus.port.write(check.region.device_addr, k.to_bytes(4, "little"))
        sessions = rig.relay.ways["h2b"].counts["sessions"]
        with reset_nic(rig.link) as nic:
            check = Exactly(nic, rig)
            check.write_pattern(200)
            check.check()
            Traffic(nic, rig, seed).run(rounds=6)
        assert rig.relay.ways["h2b"].counts["sessions"] == sessions + 1


def _forget(stand_in: HostLinkStandIn) -> None:
    """The stand-in loses its session (and its NIC's state) as a board does when it is reset or power-cycled."""
    stand_in.reset_board()


def test_a_board_reset_mid_traffic_is_detected_and_the_link_reattached(seed: int) -> None:
    with impaired_standin(seed, local_size=1 << 20) as rig, reset_nic(rig.link) as nic:
        port = nic.link.bus.port
        check = Exactly(nic, rig)
        check.write_pattern(100)
        session, reattaches = port.session, port.reattaches
        _forget(rig.stand_in)
        # The host finds out by itself (its next frame, or its keepalive, draws a STALE) and binds again.
        deadline = time.monotonic() + 5
        while port.reattaches == reattaches or port.reattaching:
            assert time.monotonic() < deadline, "the host did not re-attach within 5 s of the board's reset"
            time.sleep(0.01)
        assert port.session not in (0, session) and rig.stand_in.session == port.session
        # The new session carries messages exactly once, like the first.
        check = Exactly(nic, rig)
        check.write_pattern(100)
        check.check()
        assert rig.relay.ways["h2b"].counts["sessions"] == 2


# ---------------------------------------------------------------------------------------------------
# The commands over the impaired link
# ---------------------------------------------------------------------------------------------------

class UpRig:
    """``splitnic up`` on the stand-in behind a relay process; the NIC's wire is a TAP in peer namespace P."""

    def __init__(self, seed: int, rates: Rates) -> None:
        self.ns, self.peer_ns = unique("snimp"), unique("snimpp")
        self.stand_in = None
        self.relay = None
        add_netns(self.ns)
        add_netns(self.peer_ns)
        try:
            self._segment = impaired_segment(self.ns)
            self._segment.__enter__()
            with inside(self.ns):
                self.stand_in = HostLinkStandIn(BOARD_IF, local_size=1 << 20, wire="tap:snimpwire").start()
            sh("ip", "link", "set", "snimpwire", "netns", self.peer_ns, netns=self.ns)
            sh("ip", "-n", self.peer_ns, "link", "set", "snimpwire", "address", PEER_MAC.hex(":"), "up")
            sh("ip", "-n", self.peer_ns, "addr", "add", f"{PEER_IP}/24", "dev", "snimpwire")
            sh("ip", "netns", "exec", self.peer_ns, "sysctl", "-qw", "net.ipv6.conf.snimpwire.disable_ipv6=1")
            nic = self.stand_in.nic
            link = CSR_MAP.register("LINK")
            nic.write_reg(link.offset, link.pack(UP=1, SPEED=link.field("SPEED").value("1000"), FULL_DUPLEX=1))
            nic.write_reg(CSR_MAP.register("MAC_ADDR_LO").offset, int.from_bytes(NIC_MAC[:4], "little"))
            nic.write_reg(CSR_MAP.register("MAC_ADDR_HI").offset, int.from_bytes(NIC_MAC[4:], "little"))
            self.relay = RelayProcess(self.ns, seed=seed, max_seconds=600)
            for d in ("h2b", "b2h"):
                self.relay.set_rates(d, rates)
        except BaseException:
            self.close()
            raise

    def up(self, name: str, timeout: float = 60, extra: tuple[str, ...] = ()) -> UpProcess:
        cmd = ["ip", "netns", "exec", self.ns, str(SPLITNIC), "up", "--link", f"eth:{HOST_IF}", "--kernel", "tap",
               "--name", name, *extra]
        up = start_up(cmd, name, timeout)
        sh("sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1", netns=self.ns)
        sh("ip", "-n", self.ns, "addr", "replace", f"{HOST_IP}/24", "dev", name)
        return up

    def ping(self, count: int = 5) -> subprocess.CompletedProcess:
        return sh("ping", "-n", "-c", str(count), "-i", "0.2", "-W", "5", HOST_IP, netns=self.peer_ns,
                  check=False, timeout=60)

    def close(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        if self.stand_in is not None:
            self.stand_in.close()
        del_netns(self.ns)
        del_netns(self.peer_ns)


def tcp_by_hash(rig: UpRig, nbytes: int, timeout: float = 120) -> tuple[str, str, float]:
    """``nbytes`` random bytes over TCP from the peer to snic's kernel; (sha256 sent, sha256 received, seconds)."""
    return veth_lab.tcp_by_hash(rig.ns, rig.peer_ns, HOST_IP, nbytes, timeout)


@contextmanager
def up_rig(seed: int, rates: Rates) -> Iterator[UpRig]:
    rig = UpRig(seed, rates)
    try:
        yield rig
    finally:
        rig.close()


def test_selftest_loses_no_frame_when_the_boards_rx_buffers_come_late(seed: int) -> None:
    # The host's frames that give RX queue 0 its buffers back (a WRITE of its TAIL) are lost, each once:
    # the board takes them a resend period after the TX doorbell before them and loops what that posted
    # meanwhile.  A selftest that posted TX beyond the RX buffers it had given back lost those frames
    # (counted in rxq0_drops, "differ" for every frame after); it must never post beyond them.
    rx_tail = NIC_CSR_BASE + CSR_MAP.array("RXQ").offset(0, "TAIL")
    seen: set[bytes] = set()

    def refill(f: hl.Frame) -> bool:
        tails = {m.data for m in f.messages if m.op == hl.OP_WRITE and m.addr == rx_tail}
        fresh = tails - seen            # a resend carries the same TAIL again: it passes
        seen.update(tails)
        return bool(fresh)
    with impaired_standin(seed, local_size=1 << 20) as rig:
        script = rig.relay.drop("h2b", refill, nth=2, count=12)     # the 1st posts the queue's first buffers
        with splitnic.open(rig.link) as nic:
            # The frames' sizes decide most of whether a loop that posts TX first outruns the late refills:
            # with these (selftest seed 1194343252) the old loop lost frames for 2 of 3 rig seeds tried
            # (3417605544 not), with the sizes random seeds drew for about half.
            result = loopback_selftest(nic, count=200, seed=1194343252, timeout=20)
    assert result.ok, result.line()
    assert result.seconds < 10, result.line()
    assert len(script.dropped) >= 6, f"only {len(script.dropped)} of the host's RX refills were lost"


def test_selftest_passes_over_five_percent_loss_both_ways(seed: int) -> None:
    rates = Rates(loss=0.05, dup=0.01, reorder=0.02)
    with up_rig(seed, rates) as rig:
        # 200 frames: some 400 host-link frames to the board and 200 back, so that neither way goes without
        # a loss (0.95 ** 200 < 4e-5; with 60 frames seed 3464020300 lost nothing board to host).
        result = sh(str(SPLITNIC), "selftest", "--link", f"eth:{HOST_IF}", "--count", "200", netns=rig.ns,
                    check=False, timeout=120)
        counters = rig.relay.counters()
    assert result.returncode == 0 and "PASS" in result.stdout, result.stdout + result.stderr
    assert counters["h2b"]["lost"] and counters["b2h"]["lost"], counters


def test_up_carries_ping_and_tcp_intact_over_an_impaired_link(seed: int) -> None:
    rates = Rates(loss=0.01, dup=0.01, reorder=0.01)
    with up_rig(seed, rates) as rig:
        up = rig.up("snicf0")
        try:
            r = rig.ping()
            assert r.returncode == 0, r.stdout + r.stderr
            sent, got, seconds = tcp_by_hash(rig, 4 << 20)
            assert got == sent, "the TCP transfer through snicf0 arrived changed or short"
            assert up.proc.poll() is None, "splitnic up exited on the cable's faults"
        finally:
            status, out = up.stop(signal.SIGTERM)
        counters = rig.relay.counters()
    assert status == 0, out
    assert counters["h2b"]["sessions"] == 1, counters          # one session from start to end
    assert counters["h2b"]["lost"] and counters["b2h"]["lost"], counters


def test_up_survives_a_board_reset_and_a_host_restart_mid_traffic(seed: int) -> None:
    with up_rig(seed, Rates(loss=0.005)) as rig:
        up = rig.up("snicf1")
        try:
            pinger = subprocess.Popen(["ip", "netns", "exec", rig.peer_ns, "ping", "-n", "-i", "0.05", "-c", "80",
                                       HOST_IP], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(1.0)
            _forget(rig.stand_in)                  # the board resets under traffic
            out, _ = pinger.communicate(timeout=60)
            assert up.proc.poll() is None, "splitnic up exited when the board was reset"
            assert rig.ping().returncode == 0, "no ping through snicf1 after the board's reset:\n" + out
            sent, got, _ = tcp_by_hash(rig, 1 << 20)
            assert got == sent
        finally:
            status, out = up.stop(signal.SIGKILL)  # the host dies: no goodbye to the board
        up = rig.up("snicf1")                       # ... and comes back to the board still running
        try:
            r = rig.ping()
            assert r.returncode == 0, r.stdout + r.stderr
            sent, got, _ = tcp_by_hash(rig, 1 << 20)
            assert got == sent
        finally:
            status, out = up.stop(signal.SIGTERM)
        assert status == 0, out


def _echoed(rig: UpRig, port: int, payload: bytes, timeout: float) -> bool:
    """Whether the fast path's echo answers ``payload`` sent from the peer to HOST_IP:``port`` within
    ``timeout`` seconds (a datagram every 0.1 s until then)."""
    with inside(rig.peer_ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(0.1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.sendto(payload, (HOST_IP, port))
            try:
                while True:
                    data, source = sock.recvfrom(2048)
                    if data == payload and source == (HOST_IP, port):
                        return True
            except (TimeoutError, ConnectionRefusedError):   # refused: the kernel got it (ICMP unreachable)
                pass
    return False


def _rules(rig: UpRig, control: Path, *words: str) -> str:
    return sh(str(SPLITNIC), "rules", *words, "--control", str(control), netns=rig.ns, timeout=30).stdout


def _configured(nic) -> dict[str, int]:
    """What the driver sets up in the NIC (the stand-in's model): control, address, filters, frame limit,
    interrupt, every queue's control and size, every steering entry (not what moves on its own: ring
    indices, counters, the pending causes, the TX bits of the mask that follow a full ring)."""
    names = ("CTRL", "MAC_ADDR_LO", "MAC_ADDR_HI", "MAX_FRAME", "IRQ_COALESCE", "MC_HASH_LO", "MC_HASH_HI")
    regs = {name: nic.read_reg(CSR_MAP.register(name).offset) for name in names}
    mask = CSR_MAP.register("IRQ_MASK")
    regs["IRQ_MASK"] = nic.read_reg(mask.offset) & ~mask.field("TX").mask
    for array, fields in (("RXQ", ("CTRL", "SIZE")), ("TXQ", ("CTRL", "SIZE")),
                          ("STEER", ("CTRL", "DMAC_LO", "DMAC_HI", "ETHERTYPE", "IP_PROTO", "L4_DPORT"))):
        regs_of = CSR_MAP.array(array)
        for index in range(regs_of.count):
            for field in fields:
                regs[f"{array}{index}.{field}"] = nic.read_reg(regs_of.offset(index, field))
    return regs


def test_up_rearms_the_fast_path_and_its_rules_after_a_board_reset(seed: int, tmp_path: Path) -> None:
    # The fast path's own queues and the NIC's steering table go with the board's reset: the driver sets
    # them up again from what it holds (its rule set is the truth), like the kernel's queue pair, and
    # everything else it had configured (coalescing, a multicast group).
    control = tmp_path / "rules.sock"
    rng = random.Random(seed)
    group = bytes.fromhex("01005e010203")
    group_bit = 1 << (zlib.crc32(group) % 64)
    with up_rig(seed, Rates()) as rig:
        up = rig.up("snicf2", extra=("--fast", "udp dport 9000 -> echo", "--control", str(control),
                                     "--coalesce-usecs", str(rng.randrange(1, 500))))
        try:
            assert "added rule 1" in _rules(rig, control, "add", "udp dport 9001 -> echo")
            nic = rig.stand_in.nic
            mc_hash = lambda: nic.read_reg(CSR_MAP.register("MC_HASH_LO").offset) | \
                nic.read_reg(CSR_MAP.register("MC_HASH_HI").offset) << 32  # noqa: E731
            # An IPv4 group (239.1.2.3: 01:00:5e:01:02:03), whose join the kernel announces at once.
            assert not mc_hash() & group_bit
            sh("ip", "-n", rig.ns, "addr", "add", "239.1.2.3/32", "dev", "snicf2", "autojoin")
            deadline = time.monotonic() + 15
            while not mc_hash() & group_bit:
                assert time.monotonic() < deadline, "the multicast group did not reach MC_HASH"
                time.sleep(0.05)
            assert _echoed(rig, 9000, b"before %d" % rng.randrange(1 << 30), 10), "no echo before the reset"
            assert _echoed(rig, 9001, b"rule %d" % rng.randrange(1 << 30), 5), "the added rule did not steer"
            # Traffic on both rules while the board resets.
            stop = threading.Event()

            def traffic() -> None:
                with inside(rig.peer_ns):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                with sock:
                    while not stop.is_set():
                        for port in (9000, 9001):
                            sock.sendto(rng.randbytes(rng.randrange(1, 200)), (HOST_IP, port))
                        time.sleep(0.005)
            before = _configured(nic)
            sender = threading.Thread(target=traffic, daemon=True)
            sender.start()
            try:
                time.sleep(0.3)
                _forget(rig.stand_in)
                time.sleep(0.3)
            finally:
                stop.set()
                sender.join(5)
            assert _echoed(rig, 9000, b"after %d" % rng.randrange(1 << 30), 5), \
                "the fast path's echo did not answer again after the board's reset"
            assert _echoed(rig, 9001, b"rule after %d" % rng.randrange(1 << 30), 5), \
                "the rule added with splitnic rules no longer steers after the board's reset"
            after = _configured(nic)
            assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}
            listing = _rules(rig, control, "list")
            assert "udp dport 9001 -> echo" in listing, listing
            hits = [int(line.split()[-2]) for line in listing.splitlines() if "9001" in line]
            assert hits and hits[0] > 0, listing      # the NIC's counters restarted: these hits are new
            r = rig.ping(3)
            assert r.returncode == 0, "no ping through snicf2 after the board's reset:\n" + r.stdout + r.stderr
            assert up.proc.poll() is None, "splitnic up exited when the board was reset"
        finally:
            status, out = up.stop(signal.SIGTERM)
        assert status == 0, out
        assert rig.relay.counters()["h2b"]["sessions"] == 2, out     # the reset cost one new session
