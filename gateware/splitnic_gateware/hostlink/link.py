"""The board's whole ``eth`` host link between an Ethernet port and the SoC bus: both engines and the host's address.

Ref: splitnic_spec.hostlink (the protocol: sessions, binding, foreign frames,
STALE); :mod:`.encoder`, :mod:`.decoder`.

:class:`HostLink` joins the :class:`~.decoder.Decoder` and the
:class:`~.encoder.Encoder` (link state, answers, sent frames, the binding,
the answers outside the session and the host's mtu) and adds what the engines
leave to the Ethernet side:

* the addresses: each received frame comes with its source address
  (``rx_src``, steady over the frame) and ``rx_unicast``, whether it was sent
  to this board's own address (the decoder binds only on such a HELLO).  When the decoder binds the board
  (a HELLO request it takes), that frame's source becomes the host, and from
  then on ``from_host`` tells the decoder whether a frame came from it (the
  decoder checks the session).  A frame the decoder answers outside the
  session (a HELLO answer, a STALE frame) goes back to the frame's source;
  every other frame to the host (``tx_dst``).
* the NIC's interrupt: ``irq`` is the NIC's level; each rise is one IRQ message.
* the link's counters: ``counters`` is a Wishbone target for the SoC bus at
  ``hostlink.COUNTERS_BASE``; word *i* is field *i* of the spec's
  BoardCounters (the engines' free-running counts), so the host reads them
  with READ messages like any register, and Etherbone or the firmware can too.

``dma`` (a Wishbone target: the NIC's DMA writes into the host window) and
``bus`` (a Wishbone burst master: the host's writes and reads on the board)
are the encoder's and the decoder's, unchanged.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from splitnic_spec import board, hostlink

from ..bus import WishboneSignature
from .decoder import DEFAULT_WINDOWS, Decoder
from .encoder import DEFAULT_REPLAY_SLOTS, DEFAULT_RESEND_CYCLES, Encoder
from .layouts import rx_stream, tx_stream

__all__ = ["HostLink", "BROADCAST_MAC", "COUNTER_SOURCES", "MAC_BITS"]

MAC_BITS = 48
BROADCAST_MAC = (1 << MAC_BITS) - 1
#: Each BoardCounters field (splitnic_spec.hostlink, in word order) and the engine counter behind it.
COUNTER_SOURCES = {
    "rx_frames": ("decoder", "frames"), "rx_messages": ("decoder", "messages"),
    "malformed": ("decoder", "malformed"), "gaps": ("decoder", "gaps"), "bad_address": ("decoder", "bad_address"),
    "duplicates": ("decoder", "duplicates"), "overruns": ("decoder", "overruns"),
    "tx_frames": ("encoder", "frames"), "tx_messages": ("encoder", "messages"),
    "credit_stalls": ("encoder", "credit_stalls"), "foreign": ("decoder", "foreign"),
    "resent_frames": ("encoder", "resent_frames"), "stale": ("decoder", "stale"),
}
#: Word-address bits that pick a word of the counters window.
_COUNTER_INDEX_BITS = (hostlink.COUNTERS_SIZE // 4 - 1).bit_length()


class HostLink(wiring.Component):
    """The board's side of the ``eth`` host link, from frame words to bus cycles and back.

    ``slots`` and ``max_mtu`` size the decoder (its Hello.window and
    Hello.mtu); ``tx_mtu`` is the largest frame the encoder builds;
    ``latency`` the quiet cycles after which a frame that is not full goes;
    ``replay_slots`` the encoder's replay ring (frames) and ``resend_cycles``
    its resend period (RESEND_US in cycles of the clock).
    """

    def __init__(self, *, slots: int = 4, max_mtu: int = hostlink.MTU_STANDARD, tx_mtu: int = hostlink.MTU_STANDARD,
                 latency: int = 40, windows=DEFAULT_WINDOWS, local_base: int = board.DMA_RAM_BASE,
                 local_size: int = board.DMA_RAM_SIZE, replay_slots: int = DEFAULT_REPLAY_SLOTS,
                 resend_cycles: int = DEFAULT_RESEND_CYCLES) -> None:
        if not 1 <= latency < 1 << 16:
            raise ValueError(f"latency must be 1..65535 cycles, not {latency}")
        self.latency = latency
        self.decoder = Decoder(slots=slots, max_mtu=max_mtu, windows=windows)
        self.encoder = Encoder(max_mtu=tx_mtu, rx_mtu=max_mtu, rx_window=slots, local_base=local_base,
                               local_size=local_size, replay_slots=replay_slots, resend_cycles=resend_cycles)
        super().__init__({
            "rx": In(rx_stream()),
            "rx_src": In(MAC_BITS),
            "rx_unicast": In(1),
            "tx": Out(tx_stream()),
            "tx_dst": Out(MAC_BITS),
            "dma": In(WishboneSignature(30, burst=True)),
            "bus": Out(WishboneSignature(30, burst=True)),
            "irq": In(1),
            "counters": In(WishboneSignature(30)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.decoder = dec = self.decoder
        m.submodules.encoder = enc = self.encoder
        connect(m, flipped(self.rx), dec.rx)
        connect(m, enc.tx, flipped(self.tx))
        connect(m, flipped(self.dma), enc.dma)
        connect(m, dec.bus, flipped(self.bus))
        connect(m, dec.answer, enc.answer)
        m.d.comb += [
            enc.link.eq(dec.link),
            dec.sent.eq(enc.sent),
            dec.board_end.eq(enc.sent_end),
            enc.hello.eq(dec.hello),
            enc.reply.eq(dec.reply),
            enc.mtu.eq(dec.host_mtu),
            enc.latency.eq(self.latency),
        ]

        # The addresses: the source of the frame the decoder's verdict is about (it comes the cycle after
        # the frame's last word, so the address is kept from that word) becomes the host when the decoder
        # binds, and the answer's destination when the decoder answers outside the session.
        host_mac = Signal(MAC_BITS, init=BROADCAST_MAC)
        reply_mac = Signal(MAC_BITS)
        frame_src = Signal(MAC_BITS)
        with m.If(self.rx.valid & self.rx.payload.last):
            m.d.sync += frame_src.eq(self.rx_src)
        with m.If(dec.hello):
            m.d.sync += host_mac.eq(frame_src)
        with m.If(dec.reply.valid & enc.reply_free):
            m.d.sync += reply_mac.eq(frame_src)
        m.d.comb += [
            dec.from_host.eq(self.rx_src == host_mac),
            dec.unicast.eq(self.rx_unicast),
            self.tx_dst.eq(Mux(enc.tx_reply, reply_mac, host_mac)),
        ]

        # One IRQ message per rise of the NIC's interrupt line.
        irq_was = Signal()
        m.d.sync += irq_was.eq(self.irq)
        m.d.comb += enc.irq.eq(self.irq & ~irq_was)

        # The counters window: one word per BoardCounters field, in the spec's order; the rest reads 0.
        # Single cycles (no bursts), acknowledged the cycle after they start; writes change nothing.
        engines = {"decoder": dec.counters, "encoder": enc.counters}
        words: list[Value] = [getattr(engines[engine], name)
                              for engine, name in (COUNTER_SOURCES[f.name] for f in hostlink.BOARD_COUNTERS.members)]
        cbus = self.counters
        ack = Signal()
        m.d.sync += ack.eq(cbus.cyc & cbus.stb & ~ack)
        m.d.comb += cbus.ack.eq(ack)
        with m.Switch(cbus.adr[:_COUNTER_INDEX_BITS]):
            for i, value in enumerate(words):
                with m.Case(i):
                    m.d.sync += cbus.dat_r.eq(value)
            with m.Default():
                m.d.sync += cbus.dat_r.eq(0)
        return m
