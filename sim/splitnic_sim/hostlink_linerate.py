"""``fpga.line_rate_fraction``: NIC frames the board's host-link path moves per second, over the wire's line rate.

Ref: splitnic_spec.hostlink (frames, messages, credit); IEEE Std 802.3-2018
§3.2.1 and §4.4.2 (preamble + SFD 8 bytes, interpacket gap 12 bytes: a frame
of S bytes, FCS included, takes S + 20 byte times); sim/splitnic_sim/tb/
hostlink_linerate.py (the cocotb testbench that measures).

The design simulated (cycle-accurate, Verilator, sys = 40 MHz) is
:class:`HostLinkBench`: the board's two host-link engines as the SoC joins
them (:class:`~splitnic_gateware.hostlink.Encoder` and
:class:`~splitnic_gateware.hostlink.Decoder`: link state, sent frames,
answers, HELLO) plus two models written in Amaranth so that no clock edge of
theirs crosses into Python:

* the host-link MAC's transmit side draining the encoder's ``tx`` at 1 Gb/s:
  one 32-bit word per 32 ns, and after each frame's last word 38 byte times
  (Ethernet header 14, FCS 4, preamble 8, gap 12) of idle; it also shows the
  end (``seq + count``) of the last frame with messages that left, which the
  host acknowledges, so that the encoder's replay ring drains as on a clean
  cable;
* the board bus behind the decoder: every beat acked in its cycle, and a
  count of TX descriptors written (each one NIC frame's worth of host
  messages applied).

The testbench drives the rest in Python, a transaction at a time: the NIC's
DMA writes (RX data in bursts of MAX_BURST words, then the 16-byte completion,
never ahead of the NIC wire; in ``both`` also a 16-byte TX completion per TX
frame applied) into the encoder's ``dma`` port, and the host's frames into
the decoder's ``rx`` at 1 Gb/s (a HELLO that binds the link first, then frames
built with the spec's encode_frame, within the credit the decoder grants, each
acknowledging what the board sent; in ``rx`` the host sends a frame of no
messages for each acknowledgement, as the real host does at the end of a burst).  The NIC's own TX engine is not in the model: a
TX frame counts when its descriptor is written on the board's bus.

Cases (frame size S on the NIC's wire, FCS included; the NIC DMAs S - 4
bytes rounded up to words):

* ``rx``: NIC frames offered back to back at line rate; measured: RX
  completions per second that left the board in the encoder's frames (what
  the host gets; ``rx_taken_fraction`` beside it: those the encoder took,
  which over a run this short runs ahead while its replay ring fills: the
  figure before protocol v2 was that one).
* ``tx``: the host sends, per NIC frame, its bytes (WRITE into NIC-local
  memory), its 16-byte descriptor (WRITE) and every DOORBELL_EVERY frames a
  doorbell (WRITE of TXQ 0's TAIL); measured: descriptors applied per second.
* ``both``: both at once; the encoder also carries a TX completion per TX
  frame.  The figure is the smaller direction's.

Each is compared with its arithmetic bound: the NIC wire's S + 20 byte times
over the host-link bytes one NIC frame needs (:func:`bounds`).  Rates are
taken between two host-link frame boundaries (the encoder's frames leaving
for RX, the decoder committing the host's for TX), so the window holds whole
jumbo frames: both engines move a frame's worth of messages in a burst.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from splitnic_gateware.bus import WishboneSignature
from splitnic_gateware.hostlink import Decoder, DecoderCounters, Encoder, EncoderCounters
from splitnic_gateware.hostlink.layouts import rx_stream
from splitnic_gateware.verilog import write_verilog
from splitnic_sim.runner import build_dir_for, run_cocotb
from splitnic_spec import board, constant, hostlink, nic

log = logging.getLogger(__name__)

__all__ = ["HostLinkBench", "Case", "CASES", "bounds", "host_frames", "measure", "line_rate_fractions",
           "SYS_HZ", "MTU", "LATENCY_CYCLES"]

#: The SoC's system clock and the host link's mtu in this model (jumbo on both sides).
SYS_HZ = 40_000_000
CYCLE_PS = 10**12 // SYS_HZ
MTU = hostlink.MTU_JUMBO
#: The encoder's quiet time before a frame that is not full goes: 1 µs, as the SoC builds it.
LATENCY_CYCLES = SYS_HZ // 1_000_000
#: Frames the decoder buffers (the SoC's Hello.window).
SLOTS = 4
#: The encoder's replay ring, as on the board (targets.hostlink_core.BOARD_REPLAY_SLOTS).
REPLAY_SLOTS = 4
#: 1 Gb/s: one byte every 8 ns, one 32-bit word every 32 ns.
BYTE_PS = 8_000
WORD_PS = 4 * BYTE_PS
#: Byte times a host-link frame costs on the cable beyond its payload: Ethernet header, FCS, preamble + SFD, gap.
HOSTLINK_FRAME_OVERHEAD = 14 + 4 + 8 + 12
#: NIC wire: preamble + SFD and the minimum gap, byte times per frame beyond its S bytes.
WIRE_OVERHEAD = 20
FCS_LEN = constant("FCS_LEN")
MAX_BURST = constant("MAX_BURST")
FH, MH = hostlink.FRAME_HEADER.size, hostlink.MESSAGE_HEADER.size
DESC_SIZE, CPL_SIZE = nic.DESCRIPTOR.size, nic.COMPLETION.size
#: The host rings TXQ 0's doorbell once per this many frames, as the driver does per TX burst.
DOORBELL_EVERY = 32

# NIC-local memory, written by the host (tx): the TX descriptor ring, then TX buffers.
RING_ENTRIES = 256
TX_DESC_RING = board.DMA_RAM_BASE
TX_BUF_BASE = TX_DESC_RING + RING_ENTRIES * DESC_SIZE
TX_BUF_SIZE = 2048
TX_BUFS = (board.DMA_RAM_SIZE - RING_ENTRIES * DESC_SIZE) // TX_BUF_SIZE
TX_DOORBELL = board.NIC_CSR_BASE + nic.CSR_MAP.array("TXQ").offset(0, "TAIL")
# The host window, written by the NIC (rx): the RX and TX completion rings, then RX buffers.
RX_CPL_RING = hostlink.HOST_WINDOW_BASE
TX_CPL_RING = RX_CPL_RING + RING_ENTRIES * CPL_SIZE
RX_BUF_BASE = TX_CPL_RING + RING_ENTRIES * CPL_SIZE
RX_BUF_SIZE = 2048
#: The host's grant to the board: far enough ahead that credit never binds the NIC-to-host direction.
HOST_GRANT = 0x7000
#: The session the host binds with its HELLO.
SESSION = 0x11A7_E001


class HostLinkBench(wiring.Component):
    """Both host-link engines joined as in the SoC, with the host MAC's transmit pacing and the board bus modelled.

    Ports: ``rx`` (host frames to the decoder, from_host and unicast always), ``dma`` (the
    NIC's writes into the host window), ``mtu``/``latency`` (the encoder's);
    ``dec_credit`` (what the decoder grants the host), ``board_end`` (one past
    the last message the board sent), ``rx_cpl_sent`` (RX completions that
    left in the board's frames), ``tx_applied`` (TX
    descriptors written on the bus), ``doorbells``, ``mac_frames`` (host-link
    frames the MAC model took whole), and the engines' counters.
    """

    def __init__(self) -> None:
        self.encoder = Encoder(max_mtu=MTU, rx_mtu=MTU, rx_window=SLOTS, local_base=board.DMA_RAM_BASE,
                               local_size=board.DMA_RAM_SIZE, replay_slots=REPLAY_SLOTS)
        self.decoder = Decoder(slots=SLOTS, max_mtu=MTU)
        super().__init__({
            "rx": In(rx_stream()),
            "dma": In(WishboneSignature(30, burst=True)),
            "mtu": In(16),
            "latency": In(16),
            "dec_credit": Out(16),
            "tx_applied": Out(32),
            "doorbells": Out(32),
            "mac_frames": Out(32),
            "mac_words": Out(32),
            "board_end": Out(32),
            "rx_cpl_sent": Out(32),
            "enc_counters": Out(EncoderCounters),
            "dec_counters": Out(DecoderCounters),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.encoder = enc = self.encoder
        m.submodules.decoder = dec = self.decoder
        connect(m, flipped(self.rx), dec.rx)
        connect(m, flipped(self.dma), enc.dma)
        connect(m, dec.answer, enc.answer)
        m.d.comb += [
            enc.link.eq(dec.link), dec.sent.eq(enc.sent), dec.board_end.eq(enc.sent_end), enc.hello.eq(dec.hello), dec.from_host.eq(1), dec.unicast.eq(1),
            enc.mtu.eq(self.mtu), enc.latency.eq(self.latency), enc.irq.eq(0), enc.reply.eq(dec.reply),
            self.dec_credit.eq(dec.link.credit),
            self.enc_counters.eq(enc.counters), self.dec_counters.eq(dec.counters),
        ]

        # The host-link MAC: ``lead`` is how far (ps) the wire's next free moment is ahead of this
        # rising edge; it takes a word whose transfer would start before the next edge.
        lead = Signal(range(WORD_PS + HOSTLINK_FRAME_OVERHEAD * BYTE_PS + CYCLE_PS + 1))
        take = Signal()
        tx = enc.tx
        m.d.comb += [tx.ready.eq(lead < CYCLE_PS), take.eq(tx.valid & tx.ready)]
        # The FrameHeader's count (word 0) and seq (word 1) of the frame leaving, and its messages: each
        # one that starts an RX completion (a WRITE at a completion's first byte) has left the board.
        word_index = Signal(range(3))
        count, seq = Signal(16), Signal(32)
        fh_left = Signal(range(FH // 4 + 1), init=FH // 4)
        mh_word = Signal(range(3))             # 0: the next word is a MessageHeader's first
        data_left = Signal(16)
        cpl_lo, cpl_hi = RX_CPL_RING, RX_CPL_RING + RING_ENTRIES * CPL_SIZE
        with m.If(take):
            with m.If(fh_left != 0):
                m.d.sync += fh_left.eq(fh_left - 1)
            with m.Elif(mh_word == 0):
                m.d.sync += [data_left.eq(tx.payload.data[18:32]), mh_word.eq(1)]
            with m.Elif(mh_word == 1):
                m.d.sync += mh_word.eq(Mux(data_left == 0, 0, 2))
                with m.If((tx.payload.data >= cpl_lo) & (tx.payload.data < cpl_hi)
                          & (tx.payload.data[:4] == 0)):
                    m.d.sync += self.rx_cpl_sent.eq(self.rx_cpl_sent + 1)
            with m.Else():
                m.d.sync += data_left.eq(data_left - 1)
                with m.If(data_left == 1):
                    m.d.sync += mh_word.eq(0)
            with m.If(tx.payload.last):
                m.d.sync += [fh_left.eq(FH // 4), mh_word.eq(0)]
            m.d.sync += [lead.eq(lead + WORD_PS - CYCLE_PS
                                 + Mux(tx.payload.last, HOSTLINK_FRAME_OVERHEAD * BYTE_PS, 0)),
                         self.mac_words.eq(self.mac_words + 1)]
            with m.If(word_index == 0):
                # A HELLO answer's message is outside the numbering: it acknowledges nothing.
                m.d.sync += count.eq(Mux(tx.payload.data[8 + hostlink.FRAME_HEADER.member("flags").bit("HELLO").lsb],
                                         0, tx.payload.data[16:]))
            with m.If(word_index == 1):
                m.d.sync += seq.eq(tx.payload.data)
            with m.If(word_index != 2):
                m.d.sync += word_index.eq(word_index + 1)
            with m.If(tx.payload.last):
                m.d.sync += [self.mac_frames.eq(self.mac_frames + 1), word_index.eq(0)]
                with m.If(count != 0):
                    m.d.sync += self.board_end.eq(seq + count)
        with m.Else():
            m.d.sync += lead.eq(Mux(lead > CYCLE_PS, lead - CYCLE_PS, 0))

        # The board bus: one cycle per beat; count the descriptors' last words and the doorbells.
        bus = dec.bus
        beat = Signal()
        m.d.comb += [bus.ack.eq(bus.cyc & bus.stb), bus.dat_r.eq(0), beat.eq(bus.cyc & bus.stb & bus.we)]
        desc_words = DESC_SIZE // 4
        ring_lo, ring_hi = TX_DESC_RING >> 2, (TX_DESC_RING + RING_ENTRIES * DESC_SIZE) >> 2
        with m.If(beat & (bus.adr >= ring_lo) & (bus.adr < ring_hi) & (bus.adr[:2] == desc_words - 1)):
            m.d.sync += self.tx_applied.eq(self.tx_applied + 1)
        with m.If(beat & (bus.adr == TX_DOORBELL >> 2)):
            m.d.sync += self.doorbells.eq(self.doorbells + 1)
        return m


@dataclass(frozen=True)
class Case:
    """One measurement: ``mode`` (rx, tx or both), NIC frame size (FCS included), simulated cycles."""
    mode: str
    frame_bytes: int
    cycles: int

    @property
    def key(self) -> str:
        """Value of the figure's key, e.g. ``rx_64B``."""
        return f"{self.mode}_{self.frame_bytes}B"


#: A host-link frame holds ~97 NIC frames' messages at 64 bytes, ~6 at 1518: each run spans about eight.
CASES = tuple(Case(mode, size, cycles) for size, cycles in ((64, 27_000), (1518, 24_000))
              for mode in ("rx", "tx", "both"))


def dma_words(frame_bytes: int) -> int:
    """Words the RX engine writes for a wire frame of ``frame_bytes`` (FCS included): its bytes, rounded up."""
    return math.ceil((frame_bytes - FCS_LEN) / 4)


def tx_messages(frame_bytes: int, index: int) -> list[hostlink.Message]:
    """The host's messages for TX frame ``index``: its bytes, its descriptor, and now and then the doorbell."""
    nbytes = frame_bytes - FCS_LEN
    buf = TX_BUF_BASE + (index % TX_BUFS) * TX_BUF_SIZE
    out = [hostlink.Message(hostlink.OP_WRITE, buf, bytes(4 * dma_words(frame_bytes))),
           hostlink.Message(hostlink.OP_WRITE, TX_DESC_RING + (index % RING_ENTRIES) * DESC_SIZE,
                            nic.DESCRIPTOR.pack(addr=buf, length=nbytes, flags=0, cookie=index))]
    if (index + 1) % DOORBELL_EVERY == 0:
        tail = (index + 1) & nic.INDEX_MASK
        out.append(hostlink.Message(hostlink.OP_WRITE, TX_DOORBELL, tail.to_bytes(4, "little")))
    return out


def host_frames(frame_bytes: int, mtu: int = MTU) -> Iterator[tuple[bytes, int]]:
    """The host's host-link frames for TX traffic, without end: (payload after the Ethernet header, its frame number).

    Messages are packed whole, in order, into frames of at most ``mtu`` bytes
    (a message never splits; the next frame takes the one that does not fit).
    """
    seq = number = index = 0
    pending: list[hostlink.Message] = []
    while True:
        msgs, size = [], FH
        while True:
            if not pending:
                pending = tx_messages(frame_bytes, index)
                index += 1
            nxt = MH + len(pending[0].data)
            if size + nxt > mtu:
                break
            msgs.append(pending.pop(0))
            size += nxt
        yield hostlink.encode_frame(hostlink.Frame(seq, number, HOST_GRANT, 0, tuple(msgs), session=SESSION)), number
        seq += len(msgs)
        number += 1


def _tx_link_bytes_per_frame(frame_bytes: int, mtu: int = MTU) -> float:
    """Host-link byte times per TX NIC frame, from the frames :func:`host_frames` makes (a long run's average)."""
    frames = host_frames(frame_bytes, mtu)
    total = nic_frames = 0
    while nic_frames < 64 * DOORBELL_EVERY:
        payload, _ = next(frames)
        total += len(payload) + HOSTLINK_FRAME_OVERHEAD
        nic_frames += sum(1 for m in hostlink.decode_frame(payload).messages
                          if TX_DESC_RING <= m.addr < TX_BUF_BASE)
    return total / nic_frames


def bounds(frame_bytes: int, mtu: int = MTU) -> dict[str, dict[str, float]]:
    """The arithmetic bound of each case at ``frame_bytes``: {mode: {link_bytes, wire_bytes, fraction[, ...]}}.

    RX: per NIC frame one WRITE of its data and one of its completion, each
    with a MessageHeader; each host-link frame adds its FrameHeader, 38 byte
    times of Ethernet, and one more MessageHeader where the encoder splits the
    message that did not fit.  TX: the host's frames as :func:`host_frames`
    packs them.  Both: TX as alone; RX gets what the TX completions (one
    16-byte WRITE per TX frame) leave of the link.  A fraction is capped at 1:
    the NIC's wire offers no more.
    """
    wire = frame_bytes + WIRE_OVERHEAD
    room = mtu - FH
    per_frame = (room + FH + HOSTLINK_FRAME_OVERHEAD) / (room - MH)     # frame overhead, spread over its bytes
    rx_msgs = (4 * dma_words(frame_bytes) + MH) + (CPL_SIZE + MH)
    rx_link = rx_msgs * per_frame
    txc_link = (CPL_SIZE + MH) * per_frame
    tx_link = _tx_link_bytes_per_frame(frame_bytes, mtu)
    tx = min(1.0, wire / tx_link)
    both_rx = min(1.0, (wire - tx * txc_link) / rx_link)
    return {
        "rx": {"link_bytes": rx_msgs, "link_bytes_framed": rx_link, "wire_bytes": wire,
               "fraction": min(1.0, wire / rx_link)},
        "tx": {"link_bytes": tx_link, "wire_bytes": wire, "fraction": tx},
        "both": {"rx_link_bytes": rx_link, "txc_link_bytes": txc_link, "tx_link_bytes": tx_link, "wire_bytes": wire,
                 "rx_fraction": both_rx, "tx_fraction": tx, "fraction": min(both_rx, tx)},
    }


def measure(cases: tuple[Case, ...] = CASES) -> list[dict]:
    """Run ``cases`` on Verilator; one dict per case: measured fractions, bounds, counters (see the testbench)."""
    name = "hostlink_linerate"
    src = write_verilog(HostLinkBench(), f"snic_{name}", build_dir_for(name, "verilator"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "linerate.json"
        config = {"runs": [[c.mode, c.frame_bytes, c.cycles] for c in cases], "out": str(out)}
        result = run_cocotb(name=name, sources=[src], toplevel=f"snic_{name}",
                            test_module=f"splitnic_sim.tb.{name}", simulator="verilator",
                            extra_env={"SPLITNIC_HOSTLINK_LINERATE": json.dumps(config)})
        if result.failed:
            raise RuntimeError("host-link line-rate runs failed:\n" + "\n".join(result.failures))
        runs = json.loads(out.read_text()) if out.exists() else []
    if len(runs) != len(cases):
        raise RuntimeError(f"expected {len(cases)} results, the testbench wrote {len(runs)}")
    for run in runs:
        b = bounds(run["frame_bytes"])[run["mode"]]
        run["bound"] = b["fraction"]
        run["bound_detail"] = b
        if run["mode"] == "both":
            run["rx_bound"], run["tx_bound"] = b["rx_fraction"], b["tx_fraction"]
    return runs


def report(runs: list[dict]) -> str:
    """The runs as a table: measured fraction next to its arithmetic bound."""
    lines = [f"fpga.line_rate_fraction: sys {SYS_HZ / 1e6:g} MHz, host link 1 Gb/s, mtu {MTU} (jumbo), "
             f"encoder latency {LATENCY_CYCLES} cycles; the NIC's TX engine is not modelled (a TX frame counts "
             f"when its descriptor lands)"]
    for r in runs:
        key = f"{r['mode']}_{r['frame_bytes']}B"
        b = r["bound_detail"]
        if r["mode"] == "rx":
            why = (f"{b['link_bytes']} B of messages per NIC frame ({b['link_bytes_framed']:.1f} with frame "
                   f"overheads) vs {b['wire_bytes']} byte times on the wire")
        elif r["mode"] == "tx":
            why = f"{b['link_bytes']:.1f} B on the link per NIC frame vs {b['wire_bytes']} byte times on the wire"
        else:
            why = (f"rx {r['rx_fraction']:.4f} (bound {b['rx_fraction']:.4f}: ({b['wire_bytes']} - tx x "
                   f"{b['txc_link_bytes']:.1f} B TX completion) / {b['rx_link_bytes']:.1f} B), "
                   f"tx {r['tx_fraction']:.4f} (bound {b['tx_fraction']:.4f})")
        if "rx_taken_fraction" in r:
            why += f"; the encoder took {r['rx_taken_fraction']:.4f}"
        lines.append(f"  {key:11s} measured {r['fraction']:.4f}  bound {r['bound']:.4f}  ({why})")
    return "\n".join(lines)


def line_rate_fractions() -> dict[str, float]:
    """Value of the figure: measured fraction of line rate per case (``both``: the smaller direction)."""
    runs = measure()
    log.info("%s", report(runs))
    return {f"{r['mode']}_{r['frame_bytes']}B": r["fraction"] for r in runs}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO if os.environ.get("VERBOSE") else logging.WARNING)
    print(report(measure()))
