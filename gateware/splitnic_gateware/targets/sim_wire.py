"""The simulated SoC's NIC wire: a loopback plug, or a TAP interface with a peer's kernel behind it.

Ref: IEEE Std 802.3-2018 §35.2 (GMII: TX_EN/RX_DV framing, one octet per
clock); litex/build/sim/core/modules/gmii_ethernet (LiteX's GMII-to-TAP
bridge: it strips and checks the preamble and FCS of what the design sends,
pads what the TAP delivers to 60 bytes and adds preamble and FCS, frames up to
9000 bytes, and it never waits).

The NIC's side is the 8-bit PHY stream its GMII bridges expect (the
``sink``/``source`` of a LiteEth PHY, in ``sys``).  Which end the wire has is
the sim-only CSR ``wire_tap`` (0: loopback plug, the default; 1: LiteX's GMII
bridge on the ``gmii_eth`` pads), and ``plugged`` (the PHY model's cable)
gates both: with the cable pulled nothing reaches the NIC and what it sends is
lost.

LiteX's byte-stream ``ethernet`` bridge, which the host link uses, cannot
serve a second TAP in the same simulator: its sessions share one clock-edge
detector, so only one of them ever sees a clock.  The GMII bridge keeps its
edge state per session.
"""

from __future__ import annotations

from migen import If, Signal

from litex.gen import LiteXModule
from litex.soc.interconnect import stream
from litex.soc.interconnect.csr import CSRStorage
from liteeth.common import eth_phy_description

__all__ = ["SimWire"]


class SimWire(LiteXModule):
    """The NIC's wire in the simulated SoC: ``sink``/``source`` face the NIC's GMII bridges.

    ``gmii`` are the pads of LiteX's ``gmii_eth`` bridge (``tx_data``,
    ``tx_en``, ``tx_er`` towards the TAP; ``rx_data``, ``rx_dv``, ``rx_er``
    from it).
    """

    def __init__(self, gmii) -> None:
        self.plugged = Signal(reset=1)
        self.sink = stream.Endpoint(eth_phy_description(8))       # what the NIC transmits
        self.source = stream.Endpoint(eth_phy_description(8))     # what the NIC receives
        self.tap = CSRStorage(1, description="Sim only: 0 = the NIC's wire has a loopback plug, "
                                             "1 = it goes to the simulator's wire TAP interface.")
        tap_mode = Signal()
        self.comb += [tap_mode.eq(self.tap.storage[0]), self.sink.ready.eq(1)]

        # Towards the TAP: the PHY stream's bytes are GMII's, back to back per frame.
        self.comb += [
            gmii.tx_en.eq(self.sink.valid & self.plugged & tap_mode),
            gmii.tx_data.eq(self.sink.data),
            gmii.tx_er.eq(0),
        ]

        # Towards the NIC: one clock late, so that a byte knows whether it is its frame's last.
        # The plug's bytes are the NIC's own; the TAP's come from the GMII bridge (which never
        # sets RX_ER).
        valid, data = Signal(), Signal(8)
        self.comb += [
            If(tap_mode,
                valid.eq(gmii.rx_dv), data.eq(gmii.rx_data),
            ).Else(
                valid.eq(self.sink.valid), data.eq(self.sink.data),
            ),
        ]
        self.sync += [
            self.source.valid.eq(valid & self.plugged),
            self.source.data.eq(data),
        ]
        self.comb += self.source.last.eq(self.source.valid & ~(valid & self.plugged))
