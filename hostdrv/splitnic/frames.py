"""Building test frames without a packet library: Ethernet, IPv4 and UDP headers.

Ref: RFC 791 §3.1 (IPv4 header, checksum), RFC 768 (UDP, pseudo-header checksum).

``splitnic send`` and the lab build their frames here, so the driver's light
install needs no packet library.
"""

from __future__ import annotations

import socket
import struct

__all__ = ["ETHERTYPE_IPV4", "IP_PROTO_UDP", "ether_header", "inet_checksum", "udp_frame", "udp_payload",
           "udp_reply"]

ETHERTYPE_IPV4 = 0x0800
IP_PROTO_UDP = 17
#: TTL of the frames built here (Linux's default).
_TTL = 64


def inet_checksum(data: bytes) -> int:
    """The Internet checksum (one's complement of the one's-complement sum of 16-bit words)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ether_header(dst_mac: bytes, src_mac: bytes, ethertype: int) -> bytes:
    """14 bytes: destination, source, EtherType."""
    return dst_mac + src_mac + ethertype.to_bytes(2, "big")


def udp_frame(dst_mac: bytes, src_mac: bytes, src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """An Ethernet/IPv4/UDP frame with both checksums computed (no FCS)."""
    udp_len = 8 + len(payload)
    src_ip, dst_ip = socket.inet_aton(src), socket.inet_aton(dst)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 1, 0, _TTL, IP_PROTO_UDP, 0, src_ip, dst_ip)
    ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, IP_PROTO_UDP, udp_len)
    csum = inet_checksum(pseudo + udp) or 0xFFFF  # 0 means "no checksum": send its equal, 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    return ether_header(dst_mac, src_mac, ETHERTYPE_IPV4) + ip + udp


def _udp_at(frame: bytes | memoryview) -> int | None:
    # Offset of the UDP header of an Ethernet/IPv4/UDP frame (first fragment), or None.
    if len(frame) < 42 or frame[12] != 0x08 or frame[13] != 0x00 or frame[14] >> 4 != 4 or frame[23] != IP_PROTO_UDP:
        return None
    l4 = 14 + (frame[14] & 0x0F) * 4
    return l4 if l4 >= 34 and len(frame) >= l4 + 8 else None


def udp_payload(frame: bytes | memoryview) -> bytes | None:
    """The payload of an Ethernet/IPv4/UDP frame (by the UDP length, without Ethernet padding), or None."""
    l4 = _udp_at(frame)
    if l4 is None:
        return None
    length = int.from_bytes(frame[l4 + 4:l4 + 6], "big")
    if length < 8 or l4 + length > len(frame):
        return None
    return bytes(frame[l4 + 8:l4 + length])


def udp_reply(frame: bytes | memoryview, payload: bytes) -> bytes | None:
    """The answer to the Ethernet/IPv4/UDP ``frame``: addresses and ports swapped, ``payload`` in it
    (checksums computed), or None when ``frame`` is not one."""
    l4 = _udp_at(frame)
    if l4 is None:
        return None
    sport, dport = struct.unpack_from("!HH", frame, l4)
    return udp_frame(bytes(frame[6:12]), bytes(frame[0:6]), socket.inet_ntoa(bytes(frame[30:34])),
                     socket.inet_ntoa(bytes(frame[26:30])), dport, sport, payload)
