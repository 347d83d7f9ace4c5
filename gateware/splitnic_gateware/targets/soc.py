"""The SoC both targets share: NIC core, its DMA block RAM, the Etherbone host link.

Ref: /work/shared/ARCHITECTURE.md, "Boards"; :mod:`.address_map`.

Bus masters: Etherbone (the host) and the NIC's DMA engines.  Bus slaves: the
NIC's register window, the DMA block RAM and LiteX's own CSRs.  The NIC reaches
its DMA memory through the SoC interconnect, so a DMA device address is simply
a bus address and the host and the NIC see the same bytes at the same address.

A board (:mod:`.colorlight_i5`) or the simulator (:mod:`.sim`) supplies the
platform, the clocks (``self.crg`` with ``cd_sys``) and the two PHYs; this
class adds everything else, so both run the same design.
"""

from __future__ import annotations

from pathlib import Path

from litex.soc.integration.soc import SoCRegion
from litex.soc.integration.soc_core import SoCMini

from . import address_map as amap
from .gmii_bridge import GmiiRxBridge, GmiiTxBridge
from .nic_core import NicCore

__all__ = ["SplitnicSoC"]


class SplitnicSoC(SoCMini):
    """NIC + DMA RAM + Etherbone on a LiteX SoC; subclasses add the clocks and PHYs.

    ``firmware_cpu`` is the slot for the management CPU of a later issue:
    ``None`` (the only value today) builds without one, and the address map
    keeps room for its memories.
    """

    mem_map = {"csr": amap.LITEX_CSR_BASE, "nic_csr": amap.NIC_CSR_BASE, "nic_dma": amap.DMA_RAM_BASE}

    def __init__(self, platform, sys_clk_freq: int, out_dir: Path, ident: str,
                 firmware_cpu: str | None = None) -> None:
        if firmware_cpu is not None:
            raise ValueError(f"firmware_cpu must be None (the management CPU is not there yet), not {firmware_cpu!r}")
        self.out_dir = Path(out_dir)
        # Bursting: the NIC's DMA engines move up to MAX_BURST words per cycle.
        SoCMini.__init__(self, platform, sys_clk_freq, ident=ident, bus_bursting=True)

    def add_nic(self, phy, cd_phy_rx: str, cd_phy_tx: str) -> None:
        """Add the NIC core with ``phy`` (a LiteEth PHY in ``cd_phy_rx``/``cd_phy_tx``) as its wire."""
        self.nic = nic = NicCore(self.platform, self.out_dir, self.sys_clk_freq)
        self.nic_rx = rx = GmiiRxBridge(phy.source, cd_phy_rx)
        self.nic_tx = tx = GmiiTxBridge(phy.sink, cd_phy_tx)
        self.comb += [
            nic.gmii_rx_d.eq(rx.rx_d), nic.gmii_rx_dv.eq(rx.rx_dv), nic.gmii_rx_er.eq(rx.rx_er),
            tx.tx_d.eq(nic.gmii_tx_d), tx.tx_en.eq(nic.gmii_tx_en), tx.tx_er.eq(nic.gmii_tx_er),
        ]
        self.bus.add_slave("nic_csr", nic.bus, SoCRegion(origin=amap.NIC_CSR_BASE, size=amap.NIC_CSR_SIZE,
                                                        cached=False))
        self.bus.add_master("nic_dma", nic.dma)
        self.add_ram("nic_dma", origin=amap.DMA_RAM_BASE, size=amap.DMA_RAM_SIZE)

    def add_host_link(self, phy, phy_cd: str = "eth", ip_address: str = amap.BOARD_IP) -> None:
        """Add Etherbone on ``phy``: the 32-bit LiteEth path, which runs in ``sys``."""
        self.add_etherbone(phy=phy, phy_cd=phy_cd, data_width=32, mac_address=amap.BOARD_MAC,
                           ip_address=ip_address, udp_port=amap.ETHERBONE_UDP_PORT,
                           buffer_depth=amap.MAX_BURST_WORDS)
