"""Reference models for the MAC tests: GMII framing and the steering table.

Plain Python, written from the spec's words (docs/registers.md, STEER) and
IEEE 802.3, independent of the gateware they check.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

from splitnic_spec import NUM_STEER_ENTRIES, constant

RULE_NONE = constant("RULE_NONE")
KERNEL_QUEUE = constant("KERNEL_QUEUE")


def with_fcs(frame: bytes) -> bytes:
    """``frame`` followed by its Ethernet FCS."""
    return frame + zlib.crc32(frame).to_bytes(4, "little")


def gmii_bytes(frame_with_fcs: bytes, preamble: int = 7) -> bytes:
    """What a PHY presents on RXD while RX_DV is high."""
    return b"\x55" * preamble + b"\xd5" + frame_with_fcs


@dataclass
class Entry:
    """One steering entry, field names as in interfaces.SteerEntry."""
    enable: int = 0
    match_dmac: int = 0
    match_ethertype: int = 0
    match_ip_proto: int = 0
    match_l4_dport: int = 0
    queue: int = 0
    dmac: int = 0
    ethertype: int = 0
    ip_proto: int = 0
    l4_dport: int = 0


def frame_fields(frame: bytes) -> dict:
    """The fields the table matches, parsed the way the spec describes."""
    dmac = int.from_bytes(frame[0:6], "little")
    ethertype = int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else None
    ip_proto = dport = None
    if ethertype == 0x0800 and len(frame) >= 24:
        ihl = frame[14] & 0xF
        if ihl >= 5:
            ip_proto = frame[23]
            frag = int.from_bytes(frame[20:22], "big") & 0x1FFF
            at = 14 + 4 * ihl + 2
            if ip_proto in (6, 17) and frag == 0 and len(frame) >= at + 2:
                dport = int.from_bytes(frame[at:at + 2], "big")
    elif ethertype == 0x86DD and len(frame) >= 21:
        ip_proto = frame[20]
        if ip_proto in (6, 17) and len(frame) >= 58:
            dport = int.from_bytes(frame[56:58], "big")
    return {"dmac": dmac, "ethertype": ethertype, "ip_proto": ip_proto, "l4_dport": dport}


def steer(frame: bytes, entries: list[Entry]) -> tuple[int, int]:
    """(queue, rule) the spec says the table picks for ``frame``."""
    f = frame_fields(frame)
    for i, e in enumerate(entries):
        if not e.enable:
            continue
        if e.match_dmac and f["dmac"] != e.dmac:
            continue
        if e.match_ethertype and f["ethertype"] != e.ethertype:
            continue
        if e.match_ip_proto and f["ip_proto"] != e.ip_proto:
            continue
        if e.match_l4_dport and f["l4_dport"] != e.l4_dport:
            continue
        return e.queue, i
    return KERNEL_QUEUE, RULE_NONE


def random_entries(rng: random.Random, frames: list[bytes]) -> list[Entry]:
    """A table whose entries often match some of ``frames`` (values taken from them)."""
    entries = []
    for _ in range(NUM_STEER_ENTRIES):
        f = frame_fields(rng.choice(frames))
        e = Entry(enable=int(rng.random() < 0.8), queue=rng.randrange(1, 4))
        if rng.random() < 0.3:
            e.match_dmac, e.dmac = 1, f["dmac"]
        if rng.random() < 0.4:
            e.match_ethertype, e.ethertype = 1, f["ethertype"] or 0
        if rng.random() < 0.5:
            e.match_ip_proto, e.ip_proto = 1, f["ip_proto"] if f["ip_proto"] is not None else rng.randrange(256)
        if rng.random() < 0.5:
            e.match_l4_dport, e.l4_dport = 1, f["l4_dport"] if f["l4_dport"] is not None else rng.randrange(65536)
        if not (e.match_dmac or e.match_ethertype or e.match_ip_proto or e.match_l4_dport) and rng.random() < 0.7:
            e.enable = 0  # a catch-all entry would hide every later one; keep a few
        entries.append(e)
    return entries


def random_packets(rng: random.Random, count: int) -> list[bytes]:
    """Scapy-built frames: UDP/TCP/ICMP over IPv4 (with options and fragments), IPv6, ARP, others."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, Ether

    macs = ["02:00:00:00:00:01", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:fb", "02:00:00:00:00:02"]
    ports = [53, 80, 9000, 9001, 4791]
    out = []
    for _ in range(count):
        eth = Ether(dst=rng.choice(macs), src="02:00:00:00:00:99")
        kind = rng.randrange(7)
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        if kind == 0:
            pkt = eth / IP(dst="10.0.0.1") / UDP(dport=rng.choice(ports), sport=1234) / payload
        elif kind == 1:
            pkt = eth / IP(dst="10.0.0.1", options=b"\x01" * 4 * rng.randrange(1, 4)) / TCP(dport=rng.choice(ports))
        elif kind == 2:
            pkt = eth / IP(dst="10.0.0.1", frag=rng.choice([0, 185]), proto=17) / UDP(dport=rng.choice(ports))
        elif kind == 3:
            pkt = eth / IPv6(dst="fd00::1") / UDP(dport=rng.choice(ports)) / payload
        elif kind == 4:
            pkt = eth / IP(dst="10.0.0.1") / ICMP() / payload
        elif kind == 5:
            pkt = eth / ARP(pdst="10.0.0.1")
        else:
            pkt = Ether(dst=rng.choice(macs), src="02:00:00:00:00:99", type=0x88B5) / payload
        raw = bytes(pkt)
        out.append(raw + bytes(max(0, 60 - len(raw))))
    return out
