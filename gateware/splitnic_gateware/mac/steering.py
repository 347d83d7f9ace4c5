"""Header parser and steering match: which RX queue a frame goes to.

Ref: docs/registers.md, STEER (generated from splitnic_spec.nic);
IEEE Std 802.3-2018 §3.1.1 (frame layout); RFC 791 §3.1 (IPv4 header);
RFC 8200 §3 (IPv6 header); RFC 768 / RFC 9293 (UDP/TCP ports at L4 bytes 2..3).

The parser watches the received bytes go by (``index`` counts from the first
destination MAC byte) and latches the few fields the table can match.  The
match is pipelined in two registered stages — per-entry compare, then a
priority encoder — because the verdict is only needed at the frame's last
byte, at least five cycles after the last header byte (the FCS still has to
arrive), so no long combinational chain sits between the table and a flop.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from splitnic_spec import constant

from ..interfaces import LEN_BITS, QUEUE_BITS, steer_table

__all__ = ["FrameFields", "HeaderParser", "SteeringMatch", "ETHERTYPE_IPV4", "ETHERTYPE_IPV6"]

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
_TCP, _UDP = 6, 17
_L2_LEN = 14
_IPV6_L4_OFFSET = _L2_LEN + 40


class FrameFields(data.Struct):
    """What the steering table can match, as latched from one frame."""
    dmac: 48
    ethertype: 16
    #: An IPv4 or IPv6 header was seen, so ``ip_proto`` is meaningful.
    ip_valid: 1
    ip_proto: 8
    #: A TCP/UDP destination port was seen (unfragmented or first fragment).
    l4_valid: 1
    l4_dport: 16


class HeaderParser(wiring.Component):
    """Latch :class:`FrameFields` from a byte stream.

    ``start`` clears the fields (one cycle before or with the first byte);
    each ``valid`` byte at position ``index`` may be latched.
    """

    start: In(1)
    valid: In(1)
    index: In(LEN_BITS)
    byte: In(8)
    fields: Out(FrameFields)

    def elaborate(self, platform) -> Module:
        m = Module()
        f = self.fields
        ihl = Signal(4)
        frag_offset_nonzero = Signal()
        proto = Signal(8)
        # Offset of the L4 destination port's first byte for IPv4 (depends on IHL).
        dport_at = Signal(LEN_BITS)
        dport_hi = Signal(8)
        is_ipv4 = Signal()
        is_ipv6 = Signal()
        m.d.comb += [is_ipv4.eq(f.ethertype == ETHERTYPE_IPV4), is_ipv6.eq(f.ethertype == ETHERTYPE_IPV6)]

        with m.If(self.start):
            m.d.sync += [f.ip_valid.eq(0), f.l4_valid.eq(0), f.ethertype.eq(0), frag_offset_nonzero.eq(0)]
        with m.Elif(self.valid):
            idx, byte = self.index, self.byte
            for i in range(6):
                with m.If(idx == i):
                    m.d.sync += f.dmac[8 * i:8 * i + 8].eq(byte)
            with m.If(idx == 12):
                m.d.sync += f.ethertype[8:16].eq(byte)
            with m.If(idx == 13):
                m.d.sync += f.ethertype[0:8].eq(byte)
            # IPv4: version/IHL at 14, flags+fragment offset at 20..21, protocol at 23.
            with m.If(is_ipv4 & (idx == 14)):
                m.d.sync += [ihl.eq(byte[0:4]), dport_at.eq(_L2_LEN + 4 * byte[0:4] + 2)]
            with m.If(is_ipv4 & (idx == 20)):
                m.d.sync += frag_offset_nonzero.eq(byte[0:5] != 0)
            with m.If(is_ipv4 & (idx == 21)):
                m.d.sync += frag_offset_nonzero.eq(frag_offset_nonzero | (byte != 0))
            with m.If(is_ipv4 & (idx == 23) & (ihl >= 5)):
                m.d.sync += [proto.eq(byte), f.ip_proto.eq(byte), f.ip_valid.eq(1)]
            # IPv6: next header at 20, fixed 40-byte header.
            with m.If(is_ipv6 & (idx == 20)):
                m.d.sync += [proto.eq(byte), f.ip_proto.eq(byte), f.ip_valid.eq(1),
                             dport_at.eq(_IPV6_L4_OFFSET + 2), frag_offset_nonzero.eq(0)]
            l4_ok = f.ip_valid & ((proto == _TCP) | (proto == _UDP)) & ~frag_offset_nonzero
            with m.If(l4_ok & (idx == dport_at)):
                m.d.sync += dport_hi.eq(byte)
            with m.If(l4_ok & (idx == dport_at + 1)):
                m.d.sync += [f.l4_dport.eq((dport_hi << 8) | byte), f.l4_valid.eq(1)]
        return m


class SteeringMatch(wiring.Component):
    """Two-stage pipelined lookup in a table of ``entries``: ``queue``/``rule`` follow ``fields`` two cycles later."""

    def __init__(self, entries: int) -> None:
        self._entries = entries
        super().__init__({"fields": In(FrameFields), "table": In(steer_table(entries)),
                          "queue": Out(QUEUE_BITS), "rule": Out(8)})

    def elaborate(self, platform) -> Module:
        m = Module()
        f = self.fields
        hits = Signal(max(self._entries, 1))
        for i in range(self._entries):
            e = self.table[i]
            ok = (e.enable
                  & (~e.match_dmac | (f.dmac == e.dmac))
                  & (~e.match_ethertype | (f.ethertype == e.ethertype))
                  & (~e.match_ip_proto | (f.ip_valid & (f.ip_proto == e.ip_proto)))
                  & (~e.match_l4_dport | (f.l4_valid & (f.l4_dport == e.l4_dport))))
            m.d.sync += hits[i].eq(ok)
        # Lowest-numbered hit wins: walk from the highest so the lowest assignment lands last.
        queue = Signal(QUEUE_BITS)
        rule = Signal(8)
        m.d.comb += [queue.eq(constant("KERNEL_QUEUE")), rule.eq(constant("RULE_NONE"))]
        for i in reversed(range(self._entries)):
            with m.If(hits[i]):
                m.d.comb += [queue.eq(self.table[i].queue), rule.eq(i)]
        m.d.sync += [self.queue.eq(queue), self.rule.eq(rule)]
        return m
