"""cocotb checks of the whole NIC's corner paths: the address filter, the error frames, every
steering entry, every register, and the resets.

Ref: docs/registers.md (CTRL, MC_HASH, STEER, RXQ, the counters, access types);
docs/simulation.md ("Coverage"); IEEE Std 802.3-2018 §3.2 (frame format), §4.2.4.2.2
(FCS, minimum and maximum frame sizes), §35.2.2 (GMII receive: preamble, SFD, RX_ER).

The scoreboard (:mod:`splitnic_sim.tb.nic_scoreboard`) streams random traffic through the
common paths; these tests reach what it does not, each step asserting what the NIC must
do: frames the MAC must drop (runts, bad FCS, RX_ER, oversize, a broken preamble) and the
counter each one bumps; what the address filter takes under each of CTRL's modes and the
multicast hash; all sixteen steering entries and their priority; the RX engine's drops
(no buffer, disabled queue, a queue the build does not have) and truncation; every register's
reset value, write mask and read-back; CTRL.RESET and the domain's reset.

Verilator only (tests/gateware/test_nic_cocotb.py), on the scoreboard's build of the NIC.
"""

from __future__ import annotations

import zlib

import cocotb
from cocotbext.eth import GmiiFrame
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from splitnic_gateware.id_block import id_values
from splitnic_gateware.size import NicSize
from splitnic_sim.native.models import wait_cycles
from splitnic_sim.tb.nic_scoreboard import (CTRL, FEATURES, OWN_MAC, PEER_MAC, QCTRL, STATUS, STEER_CTRL, TB, Driver,
                                           Ring)
from splitnic_spec import COMPLETION, CSR_MAP, Access, constant, ring_used

RULE_NONE = constant("RULE_NONE")
RX_COUNTERS = ("STAT_RX_OK", "STAT_RX_OK_BYTES", "STAT_RX_FCS_ERR", "STAT_RX_RUNT", "STAT_RX_OVERSIZE",
               "STAT_RX_FILTERED", "STAT_RX_FIFO_DROP")
#: Cycles for a short frame to cross the MAC, the packet FIFO and the DMA (with stalls), with room.
SETTLE = 1500
ETHERTYPE_BASE = 0x88B0
UDP_PORT_BASE = 5000
TCP_PORT_BASE = 6000


def _status(name: str) -> int:
    return STATUS.bit(name).mask


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


class Receiver:
    """RX rings on every queue, kept full; :meth:`take` returns what arrived since the last call."""

    def __init__(self, drv: Driver, rings: list[Ring]) -> None:
        self.drv, self.rings = drv, rings

    @classmethod
    async def open(cls, drv: Driver, buf_size: int = 2048) -> "Receiver":
        rx = cls(drv, [await drv.ring("RXQ", q, 3, buf_size) for q in range(drv.rx_queues)])
        for r in rx.rings:
            await rx.fill(r)
        return rx

    async def fill(self, r: Ring, length: int | None = None) -> None:
        while ring_used(r.seen, r.tail) < r.size:
            self.drv.post(r, r.buf_size if length is None else length, cookie=(r.q << 24) | r.tail)
        await self.drv.wr("RXQ.TAIL", r.tail, r.q)

    async def take(self) -> list[tuple[int, bytes, dict]]:
        """(queue, data, completion) of every frame completed since the last call, queue by queue."""
        out = []
        for r in self.rings:
            new = self.drv.completions(r)
            for c, slot in new:
                assert c["cookie"] == r.cookies[slot] and c["queue"] == r.q
                out.append((r.q, self.drv.read(r.bufs[slot], c["length"]), c))
            if new:
                await self.fill(r)
        return out


async def _send(tb: TB, *frames: GmiiFrame) -> None:
    for f in frames:
        await tb.source.send(f)
    await tb.source.wait()
    await wait_cycles(tb.dut, SETTLE)


async def _counters(drv: Driver, names=RX_COUNTERS) -> dict[str, int]:
    return {n: await drv.rd(n) for n in names}


async def _expect_counts(drv: Driver, before: dict[str, int], **delta: int) -> dict[str, int]:
    """The RX counters moved by exactly ``delta`` (the others not at all) since ``before``."""
    now = await _counters(drv)
    moved = {k: now[k] - before[k] for k in now if now[k] != before[k]}
    assert moved == {k: v for k, v in delta.items() if v}, f"counters moved {moved}, expected {delta}"
    return now


async def _learn_sizes(drv: Driver) -> None:
    """TX queues and steering entries of this build (ID_FEATURES); the RX queues TB.start learnt."""
    features = await drv.rd("ID_FEATURES")
    drv.tx_queues = FEATURES.field("TX_QUEUES").get(features)
    drv.steer_entries = FEATURES.field("STEER_ENTRIES").get(features)


def _good(frame: bytes) -> GmiiFrame:
    return GmiiFrame.from_payload(frame)


def _frame(dst: str = OWN_MAC, size: int = 80, ethertype: int = 0x88B5, tag: int = 0) -> bytes:
    """A frame of ``size`` bytes (FCS excluded) to ``dst``, its payload starting with ``tag``."""
    head = bytes(Ether(dst=dst, src=PEER_MAC, type=ethertype))
    return head + bytes([tag]) * (size - len(head))


@cocotb.test()
async def mac_filter_errors_and_steering(dut) -> None:
    """The MAC drops and counts what it must, the address filter follows CTRL and MC_HASH, every
    steering entry steers (the lowest one wins), and the RX engine drops or truncates as the rings say."""
    tb = TB(dut)
    drv = await tb.start()
    await _learn_sizes(drv)
    rx = await Receiver.open(drv)
    await drv.wr("CTRL", CTRL.pack(RX_EN=1, BROADCAST=1))
    before = await _counters(drv)

    # -- frames the MAC must drop and count -----------------------------------------------------
    good = _frame(tag=1)
    bad_fcs = _good(good)
    bad_fcs.data[-1] ^= 0x01
    rx_er = _good(good)
    rx_er.error = [0] * len(rx_er.data)
    rx_er.error[30] = 1                                     # GMII RX_ER inside the frame
    runt = GmiiFrame.from_payload(good[:40], min_len=0)      # 44 bytes with its FCS
    oversize = _good(_frame(size=constant("MAX_FRAME_STD") - 4 + 1, tag=2))   # 1519 with its FCS
    limit = _good(_frame(size=constant("MAX_FRAME_STD") - 4, tag=3))          # 1518: the largest taken
    await _send(tb, bad_fcs, rx_er, runt, oversize, limit)
    got = await rx.take()
    assert [(q, d[14], c["status"]) for q, d, c in got] == [(0, 3, 0)], f"delivered {[(q, c) for q, _, c in got]}"
    before = await _expect_counts(drv, before, STAT_RX_FCS_ERR=2, STAT_RX_RUNT=1, STAT_RX_OVERSIZE=1,
                                  STAT_RX_OK=1, STAT_RX_OK_BYTES=constant("MAX_FRAME_STD") - 4)

    # A broken preamble is no frame at all: nothing delivered, nothing counted, and the next
    # frame is received.  (First byte neither preamble nor SFD; a bad byte inside the preamble;
    # RX_DV falling inside the preamble.)  A frame whose preamble a PHY ate entirely (SFD
    # first) is a frame.
    payload = bytes(GmiiFrame.from_payload(good).data[8:])
    await _send(tb, GmiiFrame(b"\x12" + b"\x55" * 6 + b"\xd5" + payload),
                GmiiFrame(b"\x55\x55\x55\x07\x55\x55\x55\xd5" + payload),
                GmiiFrame(b"\x55\x55\x55\x55"), _good(good), GmiiFrame(b"\xd5" + payload))
    got = await rx.take()
    assert [(q, d) for q, d, _ in got] == [(0, good)] * 2, "a broken preamble let a frame through, or lost the next"
    before = await _expect_counts(drv, before, STAT_RX_OK=2, STAT_RX_OK_BYTES=2 * len(good))

    # MAX_FRAME above the standard limit is capped at it without CTRL.JUMBO, and at the jumbo
    # limit with it.
    await drv.wr("MAX_FRAME", 0x3FFF)
    await _send(tb, oversize)
    assert not await rx.take()
    before = await _expect_counts(drv, before, STAT_RX_OVERSIZE=1)
    await drv.wr("CTRL", CTRL.pack(RX_EN=1, BROADCAST=1, JUMBO=1))
    jumbo_over = _good(_frame(size=constant("MAX_FRAME_JUMBO") - 4 + 1, tag=4))
    await _send(tb, oversize, jumbo_over)
    got = await rx.take()
    assert [len(d) for _, d, _ in got] == [len(oversize.data) - 12], "a 1515-byte frame under JUMBO"
    before = await _expect_counts(drv, before, STAT_RX_OK=1, STAT_RX_OK_BYTES=len(oversize.data) - 12,
                                  STAT_RX_OVERSIZE=1)
    await drv.wr("MAX_FRAME", constant("MAX_FRAME_STD"))

    # CTRL.KEEP_ERRORED: errored frames are delivered with their status, still counted as errors.
    await drv.wr("CTRL", CTRL.pack(RX_EN=1, BROADCAST=1, KEEP_ERRORED=1))
    await _send(tb, bad_fcs, runt, oversize)
    got = await rx.take()
    assert [c["status"] for _, _, c in got] == [_status("FCS_ERROR"), _status("RUNT"), _status("OVERSIZE")]
    assert got[0][1] == good and got[1][1] == good[:40]
    before = await _expect_counts(drv, before, STAT_RX_FCS_ERR=1, STAT_RX_RUNT=1, STAT_RX_OVERSIZE=1)

    # CTRL.RX_EN off: the MAC takes nothing and counts nothing.
    await drv.wr("CTRL", CTRL.pack(BROADCAST=1))
    await _send(tb, _good(good), bad_fcs)
    assert not await rx.take()
    before = await _expect_counts(drv, before)

    # -- the address filter --------------------------------------------------------------------
    other = "02:00:00:00:00:42"
    mc_in, mc_out = "01:00:5e:00:00:01", "01:00:5e:00:00:02"
    bit_in, bit_out = (zlib.crc32(_mac_bytes(a)) & 63 for a in (mc_in, mc_out))
    assert bit_in != bit_out
    await drv.wr("MC_HASH_LO" if bit_in < 32 else "MC_HASH_HI", 1 << (bit_in % 32))
    tests = [  # (CTRL bits, destinations sent, destinations that must arrive)
        (dict(BROADCAST=1), ["ff:ff:ff:ff:ff:ff", other, mc_in, mc_out, OWN_MAC],
         ["ff:ff:ff:ff:ff:ff", mc_in, OWN_MAC]),
        (dict(), ["ff:ff:ff:ff:ff:ff", mc_in], [mc_in]),
        (dict(ALLMULTI=1), [mc_out, "ff:ff:ff:ff:ff:ff", other], [mc_out]),
        (dict(PROMISC=1), [other, mc_out, "ff:ff:ff:ff:ff:ff"], [other, mc_out, "ff:ff:ff:ff:ff:ff"]),
    ]
    for bits, sent, taken in tests:
        await drv.wr("CTRL", CTRL.pack(RX_EN=1, **bits))
        await _send(tb, *(_good(_frame(dst=d)) for d in sent))
        got = await rx.take()
        arrived = sorted(d[:6] for _, d, _ in got)
        assert arrived == sorted(_mac_bytes(d) for d in taken), f"CTRL {bits}: {arrived}"
        before = await _expect_counts(drv, before, STAT_RX_OK=len(sent), STAT_RX_OK_BYTES=80 * len(sent),
                                      STAT_RX_FILTERED=len(sent) - len(taken))
    await drv.wr("MC_HASH_LO", 0)
    await drv.wr("MC_HASH_HI", 0)

    # -- every steering entry ------------------------------------------------------------------
    entries = drv.steer_entries
    queue_of = [i % drv.rx_queues for i in range(entries)]
    frames = []
    for i in range(entries):
        kind = i % 4
        ctrl = dict(ENABLE=1, QUEUE=queue_of[i])
        if kind == 0:           # ethertype
            await drv.wr("STEER.ETHERTYPE", ETHERTYPE_BASE + i, i)
            ctrl.update(MATCH_ETHERTYPE=1)
            frames.append(_frame(ethertype=ETHERTYPE_BASE + i, tag=i))
        elif kind == 1:         # destination address and ethertype
            mac = _mac_bytes(f"02:00:00:00:01:{i:02x}")
            value = int.from_bytes(mac, "little")
            await drv.wr("STEER.DMAC_LO", value & 0xFFFF_FFFF, i)
            await drv.wr("STEER.DMAC_HI", value >> 32, i)
            await drv.wr("STEER.ETHERTYPE", 0x88B5, i)
            ctrl.update(MATCH_DMAC=1, MATCH_ETHERTYPE=1)
            frames.append(_frame(dst=f"02:00:00:00:01:{i:02x}", tag=i))
        elif kind == 2:         # IPv4 UDP destination port (IP options on some: the port moves)
            await drv.wr("STEER.IP_PROTO", 17, i)
            await drv.wr("STEER.L4_DPORT", UDP_PORT_BASE + i, i)
            ctrl.update(MATCH_IP_PROTO=1, MATCH_L4_DPORT=1)
            options = [IPOption_NOP()] * (4 * (i % 3))          # IHL 5, 6 or 7
            pkt = Ether(dst=OWN_MAC, src=PEER_MAC) / IP(dst="10.0.0.1", options=options) / UDP(dport=UDP_PORT_BASE + i)
            frames.append(bytes(pkt / Raw(bytes([i]) * 20)))
        else:                   # IPv6 TCP destination port
            await drv.wr("STEER.IP_PROTO", 6, i)
            await drv.wr("STEER.L4_DPORT", TCP_PORT_BASE + i, i)
            ctrl.update(MATCH_IP_PROTO=1, MATCH_L4_DPORT=1)
            pkt = Ether(dst=OWN_MAC, src=PEER_MAC) / IPv6(dst="fd00::1") / TCP(dport=TCP_PORT_BASE + i)
            frames.append(bytes(pkt / Raw(bytes([i]) * 20)))
        await drv.wr("STEER.CTRL", STEER_CTRL.pack(**ctrl), i)
    # PROMISC, so that the entries matching other unicast addresses see their frames.
    await drv.wr("CTRL", CTRL.pack(RX_EN=1, PROMISC=1))
    # Not steered: a first-fragment-less UDP datagram (no port), UDP to a port no entry has.
    fragment = bytes(Ether(dst=OWN_MAC, src=PEER_MAC) / IP(dst="10.0.0.1", frag=10, proto=17) / Raw(
        (UDP_PORT_BASE + 2).to_bytes(2, "big") * 20))
    unknown = bytes(Ether(dst=OWN_MAC, src=PEER_MAC) / IP(dst="10.0.0.1") / UDP(dport=UDP_PORT_BASE + 99)
                    / Raw(b"\x00" * 20))
    await _send(tb, *(_good(f) for f in frames + [fragment, unknown]))
    got = await rx.take()
    by_data = {d: (q, c["rule"]) for q, d, c in got}
    assert len(got) == len(frames) + 2
    for i, f in enumerate(frames):
        assert by_data.get(f) == (queue_of[i], i), f"steering entry {i}: got {by_data.get(f)}"
    assert by_data[fragment] == (0, RULE_NONE) and by_data[unknown] == (0, RULE_NONE)
    for i in range(entries):
        assert await drv.rd("STEER.HITS", i) == 1, f"STEER{i}.HITS"
    # Two entries match: the lower-numbered one steers.  Entry 15 now takes entry 2's port.
    last = entries - 1
    await drv.wr("STEER.IP_PROTO", 17, last)
    await drv.wr("STEER.L4_DPORT", UDP_PORT_BASE + 2, last)
    await drv.wr("STEER.CTRL", STEER_CTRL.pack(ENABLE=1, MATCH_IP_PROTO=1, MATCH_L4_DPORT=1, QUEUE=0), last)
    await _send(tb, _good(frames[2]))
    assert [(q, c["rule"]) for q, _, c in await rx.take()] == [(queue_of[2], 2)]
    assert await drv.rd("STEER.HITS", 2) == 2 and await drv.rd("STEER.HITS", last) == 1

    # -- the RX engine's drops and truncation ----------------------------------------------------
    # An entry naming a queue this build does not have: the frame is steered (HITS) but
    # no queue takes it, and no queue counts a drop.
    if drv.rx_queues < 1 << STEER_CTRL.field("QUEUE").width:
        await drv.wr("STEER.CTRL", STEER_CTRL.pack(ENABLE=1, MATCH_ETHERTYPE=1, QUEUE=drv.rx_queues), 0)
        drops = [await drv.rd("RXQ.DROPS", q) for q in range(drv.rx_queues)]
        await _send(tb, _good(frames[0]))
        assert not await rx.take()
        assert await drv.rd("STEER.HITS", 0) == 2
        assert [await drv.rd("RXQ.DROPS", q) for q in range(drv.rx_queues)] == drops
    # Every queue disabled, then re-enabled (reset) with no buffer posted: a frame for each is
    # dropped and counted on its queue, twice.
    steered = [good] + [frames[q] for q in range(1, min(4, drv.rx_queues))]   # entries 1..3 go to 1..3
    for q in range(len(steered)):
        await drv.wr("RXQ.CTRL", 0, q)
    await _send(tb, *(_good(f) for f in steered))
    for q in range(len(steered)):
        await drv.wr("RXQ.CTRL", QCTRL.pack(ENABLE=1, RESET=1), q)
        _restart(drv, rx.rings[q])
    await _send(tb, *(_good(f) for f in steered))
    assert not await rx.take()
    assert [await drv.rd("RXQ.DROPS", q) for q in range(len(steered))] == [2] * len(steered)
    r0 = rx.rings[0]
    # Buffers shorter than the frame: the frame is cut to them (TRUNCATED); a 0-byte buffer
    # gets a completion and no data.
    for length in (0, 33):
        drv.post(r0, length, cookie=length)
    await drv.wr("RXQ.TAIL", r0.tail, 0)
    await _send(tb, _good(good), _good(good))
    got = [(q, d, c["length"], c["status"]) for q, d, c in await rx.take()]
    assert got == [(0, b"", 0, _status("TRUNCATED")), (0, good[:33], 33, _status("TRUNCATED"))], got
    assert await drv.rd("RXQ.DROPS", 0) == 2 and await drv.rd("STAT_RX_FIFO_DROP") == 0

    # The host bus stops answering: the packet FIFO fills, the frames it cannot take are counted
    # (STAT_RX_FIFO_DROP), and once the bus answers again the frames it kept are delivered in
    # order, as far as the ring has buffers (the rest are the queue's drops).
    for r in rx.rings:
        await rx.fill(r)
    burst = [_frame(size=60, tag=i) for i in range(80)]
    ok_before, q0_drops = await drv.rd("STAT_RX_OK"), await drv.rd("RXQ.DROPS", 0)
    tb.target.stall_prob = 1.0
    await _send(tb, *(_good(f) for f in burst))
    tb.target.stall_prob = tb.stall
    await wait_cycles(dut, 80 * 100)
    got = [d for _, d, _ in await rx.take()]
    fifo_drops = await drv.rd("STAT_RX_FIFO_DROP")
    queue_drops = await drv.rd("RXQ.DROPS", 0) - q0_drops
    assert fifo_drops > 0, "80 frames fitted in the packet FIFO with the bus stalled"
    assert got == burst[:r0.size], "the frames kept through the stall arrived wrong"
    assert len(got) + queue_drops + fifo_drops == len(burst)
    assert await drv.rd("STAT_RX_OK") - ok_before == len(burst)

    # -- CTRL.RESET clears every counter but CYCLES ----------------------------------------------
    counters = [n for n, _, reg in CSR_MAP.all_registers() if reg.access == Access.RC and n != "CYCLES"
                and _present(n, drv)]
    assert any([await drv.rd(*_name(n)) for n in counters])
    cycles = await drv.rd("CYCLES")
    await drv.wr("CTRL", CTRL.pack(RESET=1, RX_EN=1))
    for n in counters:
        assert await drv.rd(*_name(n)) == 0, f"{n} after CTRL.RESET"
    assert await drv.rd("CYCLES") > cycles
    tb.close()


def _restart(drv: Driver, r: Ring) -> None:
    """The driver's side of a queue reset: an empty completion ring, indexes back to 0."""
    drv.write(r.cpl, bytes(COMPLETION.size * r.size))
    r.tail = r.seen = 0


def _name(full: str) -> tuple[str, int | None]:
    """``RXQ2_DROPS`` -> (``RXQ.DROPS``, 2); ``CTRL`` -> (``CTRL``, None): :meth:`Driver.rd`'s arguments."""
    for array in CSR_MAP.arrays:
        rest = full[len(array.name):]
        if full.startswith(array.name) and rest[:1].isdigit():
            index, reg = rest.split("_", 1)
            return f"{array.name}.{reg}", int(index)
    return full, None


def _present(full: str, drv: Driver) -> bool:
    name, index = _name(full)
    if index is None:
        return True
    return index < {"RXQ": drv.rx_queues, "TXQ": drv.tx_queues, "STEER": drv.steer_entries}[name.split(".")[0]]


def _writable(reg) -> int:
    """The bits of ``reg`` that hold what is written (strobe fields read 0)."""
    if not reg.fields:
        return 0xFFFF_FFFF
    return sum(f.mask for f in reg.fields if not f.strobe)


@cocotb.test()
async def every_register_reset_write_and_resets(dut) -> None:
    """Every register reads its reset value; RW registers keep exactly their writable bits (byte
    enables honoured); registers of instances the build lacks read 0; IRQ_STATUS is write-1-to-
    clear; CTRL.RESET clears the queues, steering and IRQ state only; the domain's reset clears all."""
    tb = TB(dut)
    drv = await tb.start()
    await _learn_sizes(drv)
    ids = id_values(size=NicSize(rx_queues=drv.rx_queues, tx_queues=drv.tx_queues,
                                 steer_entries=drv.steer_entries))
    regs = list(CSR_MAP.all_registers())

    async def read_all() -> dict[str, int]:
        return {n: await drv.rd(*_name(n)) for n, _, _ in regs}

    def reset_values(written: dict[str, int]) -> dict[str, int]:
        out = {}
        for n, _, reg in regs:
            if not _present(n, drv):
                out[n] = 0
            elif n in ids:
                out[n] = ids[n]
            elif n in written:
                out[n] = written[n]
            elif reg.access == Access.RW:
                out[n] = reg.reset & _writable(reg)
            else:
                out[n] = 0
        return out

    mac = {"MAC_ADDR_LO": await drv.rd("MAC_ADDR_LO"), "MAC_ADDR_HI": await drv.rd("MAC_ADDR_HI")}
    values = await read_all()
    assert values.pop("CYCLES") > 0
    assert values == {k: v for k, v in reset_values(mac).items() if k != "CYCLES"}

    # A random value in every RW register (queues left disabled, no strobes), read back through
    # the writable bits; LINK's change sets IRQ_STATUS.LINK.
    rng = tb.rng
    queue_enable = [QCTRL.field("ENABLE").mask, QCTRL.field("RESET").mask]
    written: dict[str, int] = {}
    for n, _, reg in regs:
        if reg.access != Access.RW:
            continue
        value = rng.getrandbits(32)
        if n == "CTRL":
            value &= ~(CTRL.field("RESET").mask | CTRL.field("RX_EN").mask | CTRL.field("TX_EN").mask)
        elif n.endswith("_CTRL") and n[:3] in ("RXQ", "TXQ"):
            value &= ~sum(queue_enable)
        elif n == "LINK":
            value |= CSR_MAP.register("LINK").field("UP").mask
        await drv.csr.write(_offset(n), value)
        written[n] = value & _writable(reg) if _present(n, drv) else 0
    # Byte enables: only the selected bytes of SCRATCH change.
    await drv.csr.write(_offset("SCRATCH"), 0xA5A5_A5A5, sel=0b0101)
    written["SCRATCH"] = (written["SCRATCH"] & 0xFF00_FF00) | 0x00A5_00A5
    expect = reset_values(written)
    link_bit = CSR_MAP.register("IRQ_STATUS").field("LINK").mask
    expect["IRQ_STATUS"] = link_bit
    values = await read_all()
    del values["CYCLES"], expect["CYCLES"]
    wrong = {n: (hex(values[n]), hex(expect[n])) for n in values if values[n] != expect[n]}
    assert not wrong, f"registers (read, expected): {wrong}"
    # IRQ_STATUS: writing 0 leaves it, writing the bit clears it.
    await drv.wr("IRQ_STATUS", 0)
    assert await drv.rd("IRQ_STATUS") == link_bit
    await drv.wr("IRQ_STATUS", link_bit)
    assert await drv.rd("IRQ_STATUS") == 0

    # A queue's CTRL.RESET zeroes its TAIL and nothing else.
    for array, count in (("RXQ", drv.rx_queues), ("TXQ", drv.tx_queues)):
        for q in range(count):
            ctrl = f"{array}{q}_CTRL"
            await drv.wr(f"{array}.CTRL", written[ctrl] | QCTRL.field("RESET").mask, q)
            written[f"{array}{q}_TAIL"] = 0
    expect = reset_values(written)
    values = await read_all()
    del values["CYCLES"], expect["CYCLES"]
    wrong = {n: (hex(values[n]), hex(expect[n])) for n in values if values[n] != expect[n]}
    assert not wrong, f"after the queues' CTRL.RESET (read, expected): {wrong}"

    # CTRL.RESET: queues, steering entries, IRQ_STATUS and IRQ_MASK back to reset; the rest kept.
    await drv.wr("CTRL", written["CTRL"] | CTRL.field("RESET").mask)
    cleared = {n for n, _, _ in regs if _name(n)[1] is not None or n in ("IRQ_STATUS", "IRQ_MASK")}
    expect = reset_values({n: v for n, v in written.items() if n not in cleared})
    values = await read_all()
    del values["CYCLES"], expect["CYCLES"]
    wrong = {n: (hex(values[n]), hex(expect[n])) for n in values if values[n] != expect[n]}
    assert not wrong, f"after CTRL.RESET (read, expected): {wrong}"

    # IRQ_COALESCE: the line rises at once, then not again before the hold-off has run out.
    await _irq_holdoff(tb, drv, written["LINK"])

    # The domain's reset (a warm reset of the FPGA): everything back to its reset value, CYCLES too.
    await wait_cycles(dut, 20)
    dut.rst.value = 1
    await wait_cycles(dut, 4)
    dut.rst.value = 0
    await wait_cycles(dut, 2)
    values = await read_all()
    assert values.pop("CYCLES") < 200
    expect = reset_values({})
    del expect["CYCLES"]
    wrong = {n: (hex(values[n]), hex(expect[n])) for n in values if values[n] != expect[n]}
    assert not wrong, f"after the domain's reset (read, expected): {wrong}"
    tb.close()


async def _irq_holdoff(tb: TB, drv: Driver, link: int) -> None:
    """A LINK change raises the interrupt (IRQ_MASK.LINK) at once; after IRQ_STATUS is cleared, a
    second change inside IRQ_COALESCE.CYCLES is held back until the hold-off has run out."""
    dut = tb.dut
    holdoff = 200
    link_bit = CSR_MAP.register("IRQ_STATUS").field("LINK").mask
    up = CSR_MAP.register("LINK").field("UP").mask
    rises: list[int] = []

    async def watch() -> None:
        cycle, last = 0, int(dut.irq.value)
        while True:
            await wait_cycles(dut, 1)
            cycle += 1
            now = int(dut.irq.value)
            if now and not last:
                rises.append(cycle)
            last = now

    watcher = cocotb.start_soon(watch())
    await drv.wr("IRQ_COALESCE", holdoff)
    await drv.wr("IRQ_MASK", link_bit)
    assert not int(dut.irq.value)
    await drv.wr("LINK", link ^ up)
    await wait_cycles(dut, 5)
    assert len(rises) == 1 and int(dut.irq.value), "the interrupt did not rise on a LINK change"
    await drv.wr("IRQ_STATUS", link_bit)
    await wait_cycles(dut, 2)
    assert not int(dut.irq.value), "the interrupt stayed up with IRQ_STATUS cleared"
    await drv.wr("LINK", link)
    assert await drv.rd("IRQ_STATUS") == link_bit and not int(dut.irq.value), "no hold-off"
    await wait_cycles(dut, holdoff)
    watcher.cancel()
    assert len(rises) == 2, f"the interrupt rose {len(rises)} times"
    assert rises[1] - rises[0] >= holdoff, f"rose again {rises[1] - rises[0]} cycles after the first"
    assert rises[1] - rises[0] <= holdoff + 3, f"held back {rises[1] - rises[0]} cycles, not {holdoff}"
    await drv.wr("IRQ_MASK", 0)
    await drv.wr("IRQ_STATUS", link_bit)


def _offset(full: str) -> int:
    return next(off for n, off, _ in CSR_MAP.all_registers() if n == full)
