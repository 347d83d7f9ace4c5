"""The ``eth`` host link on a bad cable: the impairment relay the fault tests put between host and board.

Ref: lab/splitnic_lab/impair.py (the relay); spec/splitnic_spec/hostlink.py
(the frames its scripted drops look at).

The random fates are seeded: ``SPLITNIC_FAULT_SEED=N`` replays a run, and
each test prints its seed (pytest shows it when the test fails).
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

import pytest

from splitnic_lab.impair import (BOARD_IF, HOLD_S, HOST_IF, Impairment, ImpairRelay, Rates, ScriptedDrop,
                                 impaired_segment)
from splitnic_lab.netns import add_netns, del_netns, inside, unique
from splitnic_spec import hostlink as hl


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
