"""Receive modes on every link: the multicast hash filter, ALLMULTI, PROMISC and MAC changes.

Ref: docs/registers.md, CTRL and MC_HASH_LO/HI.  Frames go through the
NIC's loopback, so the RTL's filter and the software NIC's are held to the
same expectations.
"""

from __future__ import annotations

import random
import zlib

from .conftest import NIC_MAC, frame, receive

#: IPv6 all-nodes, a solicited-node address, mDNS over IPv6 and IPv4.
WANTED = [bytes.fromhex(a) for a in ("333300000001", "3333ff000001", "3333000000fb", "01005e0000fb")]


def _bit(address: bytes) -> int:
    return zlib.crc32(address) & 63


def _others(count: int) -> list[bytes]:
    """Multicast addresses whose hash bits no WANTED address uses."""
    rng = random.Random(17)
    used = {_bit(a) for a in WANTED}
    out: list[bytes] = []
    while len(out) < count:
        a = bytes([rng.randrange(256) | 1]) + rng.randbytes(5)
        if _bit(a) not in used and a != b"\xff" * 6:
            out.append(a)
    return out


def _loopback_queues(nic):
    """Queue pair 0 through the loopback, the filter as after power-up (CTRL.RESET keeps it: the
    session's RTL simulator carries it over from earlier tests)."""
    nic.set_loopback(True)
    nic.set_filters(promisc=False, allmulti=False, broadcast=True)
    nic.set_multicast([])
    return nic.rx_queue(0, ring_log2=5), nic.tx_queue(0, ring_log2=5)


def _through_loopback(nic, rxq, txq, dests: list[bytes]) -> list[bytes]:
    """Send one frame to each of ``dests``; the destinations of those received, in order."""
    frames = [frame(dst=d, size=64, payload=bytes([i])) for i, d in enumerate(dests)]
    assert txq.tx_burst(frames) == len(frames)
    assert txq.flush()
    got = receive(rxq, len(frames), timeout=3)
    out = [bytes(p.data[:6]) for p in got]
    rxq.release(got)
    return out


def test_multicast_hash_allmulti_and_promisc(any_nic) -> None:
    nic = any_nic
    rxq, txq = _loopback_queues(nic)
    others = _others(8)
    before = nic.stats()["rx_filtered"]
    assert _through_loopback(nic, rxq, txq, WANTED + others) == []       # reset: no multicast
    nic.set_multicast(WANTED)
    assert _through_loopback(nic, rxq, txq, others + WANTED) == WANTED
    assert nic.stats()["rx_filtered"] - before == 2 * len(others) + len(WANTED)
    nic.set_filters(allmulti=True)
    assert _through_loopback(nic, rxq, txq, others) == others
    nic.set_filters(allmulti=False)
    nic.set_multicast([])
    stranger = bytes.fromhex("020000000099")
    assert _through_loopback(nic, rxq, txq, [stranger, WANTED[0]]) == []
    nic.set_filters(promisc=True)
    assert _through_loopback(nic, rxq, txq, [stranger, WANTED[0]]) == [stranger, WANTED[0]]
    nic.set_filters(promisc=False)


def test_mac_change_moves_unicast_receive(any_nic) -> None:
    nic = any_nic
    rxq, txq = _loopback_queues(nic)
    new = bytes.fromhex("02aabbccddee")
    assert _through_loopback(nic, rxq, txq, [NIC_MAC, new]) == [NIC_MAC]
    nic.mac = new
    assert nic.mac == new
    assert _through_loopback(nic, rxq, txq, [NIC_MAC, new]) == [new]
