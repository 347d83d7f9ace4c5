"""A flat-port wrapper around MacRx and MacTx for cocotb tests of the MAC alone.

cocotb sees plain signals; the configuration that tests don't vary is tied
off (own address 02:00:00:00:00:01, broadcast on, standard frame limit,
steering table empty, so every frame goes to the kernel queue).
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from splitnic_gateware.mac import MacRx, MacTx
from splitnic_spec import constant

__all__ = ["MacLoopTop", "OWN_MAC"]

OWN_MAC = bytes.fromhex("020000000001")


class MacLoopTop(wiring.Component):
    gmii_rx_d: In(8)
    gmii_rx_dv: In(1)
    gmii_rx_er: In(1)
    gmii_tx_d: Out(8)
    gmii_tx_en: Out(1)
    gmii_tx_er: Out(1)
    promisc: In(1)
    tx_valid: In(1)
    tx_ready: Out(1)
    tx_data: In(8)
    tx_last: In(1)
    rx_valid: Out(1)
    rx_data: Out(8)
    rx_last: Out(1)
    rx_deliver: Out(1)
    rx_status: Out(8)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.rx = rx = MacRx()
        m.submodules.tx = tx = MacTx()
        for cfg in (rx.config, tx.config):
            m.d.comb += [cfg.rx_en.eq(1), cfg.tx_en.eq(1), cfg.broadcast.eq(1), cfg.promisc.eq(self.promisc),
                         cfg.max_len.eq(constant("MAX_FRAME_STD")),
                         cfg.mac_addr.eq(int.from_bytes(OWN_MAC, "little"))]
        m.d.comb += [
            rx.gmii_rx_d.eq(self.gmii_rx_d), rx.gmii_rx_dv.eq(self.gmii_rx_dv), rx.gmii_rx_er.eq(self.gmii_rx_er),
            self.gmii_tx_d.eq(tx.gmii_tx_d), self.gmii_tx_en.eq(tx.gmii_tx_en), self.gmii_tx_er.eq(tx.gmii_tx_er),
            tx.frames.valid.eq(self.tx_valid), tx.frames.payload.data.eq(self.tx_data),
            tx.frames.payload.last.eq(self.tx_last), self.tx_ready.eq(tx.frames.ready),
            self.rx_valid.eq(rx.frames.valid), self.rx_data.eq(rx.frames.payload.data),
            self.rx_last.eq(rx.frames.payload.last), self.rx_deliver.eq(rx.frames.payload.meta.deliver),
            self.rx_status.eq(rx.frames.payload.meta.status),
        ]
        return m
