"""The NIC: MAC, DMA queue engines and register file behind one CSR slave and one DMA master.

Ref: docs/registers.md (generated from splitnic_spec.nic); contract A of the
NIC top level: ports ``csr`` (Wishbone slave), ``dma`` (Wishbone burst
master), GMII receive and transmit, ``irq``; one clock domain ``sync``.

Data paths:

* RX: GMII -> :class:`~.mac.MacRx` -> :class:`~.dma.rx_engine.RxEngine` -> DMA;
* TX: DMA -> :class:`~.dma.tx_engine.TxEngine` -> :class:`~.mac.MacTx` -> GMII;
* the engines' DMA masters share the ``dma`` port through a round-robin
  :class:`~.dma.arbiter.WishboneArbiter`; with ``dma_windows`` (the board) a
  :class:`~.dma.firewall.DmaFirewall` after it lets only those windows out and
  counts what it refuses in STAT_DMA_ERR (without, the port reaches every
  address: the simulations' memory models, and STAT_DMA_ERR reads 0);
* CTRL.LOOPBACK feeds MacTx's GMII output into MacRx's GMII input; nothing
  leaves on ``gmii_tx_*`` then, and the wire's RX input is ignored.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from splitnic_spec import constant

from .bus import WishboneSignature
from .csr import Csr
from .dma.arbiter import WishboneArbiter
from .dma.firewall import DmaFirewall, DmaWindow
from .dma.rx_engine import RxEngine
from .dma.tx_engine import TxEngine
from .id_block import CSR_ADDR_WIDTH
from .mac import MacRx, MacTx
from .size import FULL, NicSize

__all__ = ["Nic"]


class Nic(wiring.Component):
    """The whole NIC core (contract A), of ``size`` (:mod:`.size`; default the whole register map).

    ``dma_windows`` (:class:`~.dma.firewall.DmaWindow`): where the DMA engines may reach;
    ``None``, everywhere.
    """

    csr: In(WishboneSignature(CSR_ADDR_WIDTH))
    dma: Out(WishboneSignature(30, burst=True))
    gmii_rx_d: In(8)
    gmii_rx_dv: In(1)
    gmii_rx_er: In(1)
    gmii_tx_d: Out(8)
    gmii_tx_en: Out(1)
    gmii_tx_er: Out(1)
    irq: Out(1)

    def __init__(self, *, build_id: int = 0, clock_hz: int = 125_000_000, size: NicSize = FULL,
                 dma_windows: "tuple[DmaWindow, ...] | None" = None) -> None:
        self._build_id = build_id
        self._dma_windows = None if dma_windows is None else tuple(dma_windows)
        self._clock_hz = clock_hz
        self._size = size
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        size = self._size
        m.submodules.regs = regs = Csr(build_id=self._build_id, clock_hz=self._clock_hz, size=size)
        m.submodules.mac_rx = mac_rx = MacRx(steer_entries=size.steer_entries)
        m.submodules.mac_tx = mac_tx = MacTx()
        m.submodules.rx_engine = rx = RxEngine(queues=size.rx_queues, fifo_words=size.rx_fifo_words)
        m.submodules.tx_engine = tx = TxEngine(queues=size.tx_queues, buffer_words=size.tx_buffer_words)
        m.submodules.dma_arbiter = arbiter = WishboneArbiter(2)

        wiring.connect(m, wiring.flipped(self.csr), regs.bus)
        wiring.connect(m, rx.dma, arbiter.m0)
        wiring.connect(m, tx.dma, arbiter.m1)
        if self._dma_windows is None:
            wiring.connect(m, arbiter.bus, wiring.flipped(self.dma))
        else:
            m.submodules.dma_firewall = firewall = DmaFirewall(self._dma_windows)
            wiring.connect(m, arbiter.bus, firewall.dma)
            wiring.connect(m, firewall.bus, wiring.flipped(self.dma))
            m.d.comb += regs.dma_error.eq(firewall.error)

        # Configuration out of the register file.
        m.d.comb += [mac_rx.config.eq(regs.mac_config), mac_tx.config.eq(regs.mac_config),
                     mac_rx.steer.eq(regs.steer), tx.config.eq(regs.mac_config),
                     rx.queues.eq(regs.rxq), rx.queue_reset.eq(regs.rxq_reset), rx.cycles.eq(regs.cycles),
                     tx.queues.eq(regs.txq), tx.queue_reset.eq(regs.txq_reset), tx.cycles.eq(regs.cycles)]
        # Status and events back into it.
        meta = mac_rx.frames.payload.meta
        m.d.comb += [regs.rxq_status.eq(rx.status), regs.txq_status.eq(tx.status),
                     regs.rxq_events.eq(rx.events), regs.txq_events.eq(tx.events),
                     regs.rx_events.eq(mac_rx.events), regs.tx_events.eq(mac_tx.events),
                     regs.rx_fifo_drop.eq(rx.fifo_drop),
                     regs.steer_hit.eq(mac_rx.frames.valid & mac_rx.frames.payload.last & meta.deliver
                                       & (meta.rule != constant("RULE_NONE"))),
                     regs.steer_rule.eq(meta.rule),
                     tx.sent.eq(mac_tx.events),
                     self.irq.eq(regs.irq)]

        # Frames between the MAC and the engines.
        wiring.connect(m, mac_rx.frames, rx.frames)
        wiring.connect(m, tx.frames, mac_tx.frames)

        # GMII, with the internal loopback.
        loop = regs.loopback
        m.d.comb += [
            mac_rx.gmii_rx_d.eq(Mux(loop, mac_tx.gmii_tx_d, self.gmii_rx_d)),
            mac_rx.gmii_rx_dv.eq(Mux(loop, mac_tx.gmii_tx_en, self.gmii_rx_dv)),
            mac_rx.gmii_rx_er.eq(Mux(loop, mac_tx.gmii_tx_er, self.gmii_rx_er)),
            self.gmii_tx_d.eq(Mux(loop, 0, mac_tx.gmii_tx_d)),
            self.gmii_tx_en.eq(mac_tx.gmii_tx_en & ~loop),
            self.gmii_tx_er.eq(mac_tx.gmii_tx_er & ~loop),
        ]
        return m
