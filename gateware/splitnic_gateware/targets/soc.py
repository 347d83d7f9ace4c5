"""The SoC both targets share: NIC core, its DMA block RAM, the host link (Etherbone and ``eth``).

Ref: docs/architecture.md, "Boards"; :mod:`splitnic_spec.board` (the address map);
:mod:`splitnic_spec.hostlink` (the ``eth`` host link).

Bus masters: Etherbone (the host; a build option, on by default), the ``eth``
host link's decoder (the host's WRITEs and READs), the NIC's DMA engines and,
with ``firmware_cpu``, the management CPU (firmware/: PHY bring-up, link watch,
host mailbox).  Bus slaves: the NIC's register window, the DMA block RAM, the
host window (``HOST_WINDOW_BASE``: what the NIC's DMA writes there leaves as
messages to the host), LiteX's own CSRs and the CPU's ROM and SRAM.  The NIC
reaches its DMA memory through the SoC interconnect, so a DMA device address is
simply a bus address and the host and the NIC see the same bytes at the same
address; its DMA firewall (:data:`.nic_core.BOARD_DMA_WINDOWS`) keeps it to the
DMA block RAM and the host window.

Etherbone is an unauthenticated master of the whole bus for anyone who can
send it a UDP datagram: the CPU's memories, LiteX's CSRs (the SPI flash's
pins among them), everything.  It stays for bring-up and LiteX's own tools
(``litex_server --udp``, ``splitnic --link etherbone:``), and a board that
only needs the ``eth`` link can leave it out (``add_host_link(etherbone=False)``):
then the host-link port has LiteEth's MAC alone, no IP stack (no ARP, no ping).

A board (:mod:`.colorlight`) or the simulator (:mod:`.sim`) supplies the
platform, the clocks (``self.crg`` with ``cd_sys``) and the two PHYs; this
class adds everything else, so both run the same design.
"""

from __future__ import annotations

from pathlib import Path

from litex.build.generic_platform import ConstraintError
from litex.soc.integration.soc import SoCRegion
from litex.soc.integration.soc_core import SoCMini
from liteeth.common import eth_phy_description
from liteeth.core import LiteEthUDPIPCore
from liteeth.frontend.etherbone import LiteEthEtherbone
from liteeth.mac import LiteEthMAC
from liteeth.phy.model import LiteEthPHYModel

from splitnic_spec import board as amap
from splitnic_spec import hostlink
from . import firmware
from .flash_uid import SpiFlashBitbang
from .gmii_bridge import GmiiRxBridge, GmiiTxBridge
from .host_rx_buffer import HostRxBuffer
from .hostlink_core import HostLinkCore
from .packet_fifo_fix import fix_packet_fifos
from ..size import NicSize
from .nic_core import BOARD_NIC_SIZE, NicCore

__all__ = ["SplitnicSoC", "FIRMWARE_CPUS"]

#: Management CPUs the SoC can carry: LiteX CPU type -> variant.  VexRiscv
#: "minimal" (rv32i, no caches, about 1 000 LUTs) fits beside the NIC on the
#: ECP5-25F and runs a few cycles per instruction, fast enough to bit-bang
#: MDIO in simulation; SERV is smaller but takes ~32 cycles per instruction.
FIRMWARE_CPUS = {"vexriscv": "minimal"}
#: Words in the host link's TX clock-domain crossing (LiteEth's default is 32).  Its read
#: side, in the PHY's 125 MHz domain, was the board's critical path at 32 words: a 32-word
#: LUT RAM needs a multiplexer level and wider pointers that 16 words do not.  16 words
#: (64 bytes) is plenty: ``sys`` writes faster than the PHY reads.
HOST_LINK_TX_CDC_DEPTH = 16


class SplitnicSoC(SoCMini):
    """NIC + DMA RAM + Etherbone on a LiteX SoC; subclasses add the clocks and PHYs.

    ``firmware_cpu`` is the management CPU, a key of :data:`FIRMWARE_CPUS`,
    or ``None`` for none (then FW_VERSION reads 0 and the driver says there
    is no firmware).  With a CPU the SoC gets its ROM (the firmware, built by
    :meth:`init_mems` when LiteX's Builder runs) and SRAM; the firmware
    bit-bangs MDIO through ``self.ethphy.mdio`` (LiteEth's MDIO CSRs, on the
    board the host-link PHY's, whose pins both PHYs share) and reaches the NIC
    as a bus master at NIC_CSR_BASE.  ``firmware_board`` says what the
    firmware must know of the board's PHYs.
    """

    mem_map = {"csr": amap.LITEX_CSR_BASE, "nic_csr": amap.NIC_CSR_BASE, "nic_dma": amap.DMA_RAM_BASE,
               "rom": amap.FW_ROM_BASE, "sram": amap.FW_SRAM_BASE}
    firmware_board = firmware.BoardConfig()

    def __init__(self, platform, sys_clk_freq: int, out_dir: Path, ident: str,
                 firmware_cpu: str | None = None) -> None:
        if firmware_cpu is not None and firmware_cpu not in FIRMWARE_CPUS:
            raise ValueError(f"firmware_cpu must be None or one of {', '.join(FIRMWARE_CPUS)}, not {firmware_cpu!r}")
        self.out_dir = Path(out_dir)
        #: Where the firmware is built for this SoC (board.h, csr.h, the image).
        self.firmware_dir = self.out_dir.parent / "firmware"
        cpu = {}
        if firmware_cpu is not None:
            cpu = dict(cpu_type=firmware_cpu, cpu_variant=FIRMWARE_CPUS[firmware_cpu],
                       integrated_rom_size=amap.FW_ROM_SIZE, integrated_rom_mode="r",
                       integrated_sram_size=amap.FW_SRAM_SIZE)
        # Bursting: the NIC's DMA engines move up to MAX_BURST words per cycle.
        SoCMini.__init__(self, platform, sys_clk_freq, ident=ident, bus_bursting=True, **cpu)
        if firmware_cpu is not None:
            # The firmware polls and takes no interrupt, but LiteX sizes the CPU's
            # interrupt vector from the IRQs it knows: one unconnected line.
            if self.irq.enabled:
                self.irq.add("firmware_polls", n=0)
            # The SPI flash's unique id, for the MAC address, where the board has a flash.
            try:
                flash_pads = platform.request("spiflash")
            except ConstraintError:
                flash_pads = None
            if flash_pads is not None:
                self.add_flash_uid(flash_pads)

    def add_flash_uid(self, pads) -> None:
        """Give the firmware the SPI flash on ``pads`` (cs_n, mosi, miso; clk or the ECP5's USRMCLK)."""
        setattr(self, firmware.FLASH_UID_CSR, SpiFlashBitbang(pads))

    def build_firmware(self) -> Path:
        """Build the firmware for this (finalized) SoC; the path of its image."""
        firmware.write_board_files(self, self.firmware_dir, self.firmware_board)
        return firmware.build(self.firmware_dir)

    def init_mems(self, **kwargs) -> None:
        """LiteX's Builder hook, after the CSRs are placed: build the firmware and load it into the ROM."""
        if self.cpu_type is None:
            return
        # The ROM keeps its full size (no auto_size): the simulator reloads a new image into the same ROM.
        self.init_rom("rom", firmware.rom_words(self.build_firmware(), amap.FW_ROM_SIZE), auto_size=False)

    def add_nic(self, phy, cd_phy_rx: str, cd_phy_tx: str, size: NicSize = BOARD_NIC_SIZE) -> None:
        """Add the NIC core of ``size`` with ``phy`` (a LiteEth PHY in ``cd_phy_rx``/``cd_phy_tx``) as its wire."""
        self.nic = nic = NicCore(self.platform, self.out_dir, self.sys_clk_freq, size)
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
        self._connect_irq()

    def _connect_irq(self) -> None:
        """The NIC's interrupt to the ``eth`` host link, once both are there (either may come first)."""
        if hasattr(self, "nic") and hasattr(self, firmware.HOSTLINK_CSR):
            self.comb += getattr(self, firmware.HOSTLINK_CSR).irq.eq(self.nic.irq)

    def add_host_link(self, phy, ip_address: str = amap.BOARD_IP, eth_link: bool = True,
                      etherbone: bool = True) -> None:
        """Add the host links on ``phy``: with ``etherbone`` Etherbone, with ``eth_link`` ``eth`` (EtherType ``hostlink.ETHERTYPE``).

        Etherbone is LiteX's ``add_etherbone(data_width=32)`` but for the depth of
        the MAC's TX clock-domain crossing (:data:`HOST_LINK_TX_CDC_DEPTH`, not 32),
        the receive buffer at the end of the MAC's receive path
        (:class:`.host_rx_buffer.HostRxBuffer`, ``host_rx``: the PHY never waits, so
        without it a stalled bus cut frames short) and
        LiteX's packet FIFOs fixed
        (:mod:`.packet_fifo_fix`): either fault put Etherbone out of step for good.
        The ``eth`` link's engines (:class:`.hostlink_core.HostLinkCore`) take the
        same MAC's crossbar port for their EtherType, a bus slave at the host
        window and a bus master beside Etherbone.  Without Etherbone the port has
        the same MAC (crossing, receive buffer) and no IP stack: ``ip_address`` is unused.
        """
        if not (etherbone or eth_link):
            raise ValueError("the host-link port needs Etherbone or the eth link (or both)")
        if etherbone:
            self.ethcore_etherbone = ethcore = LiteEthUDPIPCore(
                phy=phy, mac_address=amap.BOARD_MAC, ip_address=ip_address, clk_freq=self.sys_clk_freq,
                dw=32, with_sys_datapath=True, tx_cdc_depth=HOST_LINK_TX_CDC_DEPTH)
            mac = ethcore.mac
        else:
            # What LiteEthUDPIPCore builds as its MAC (its CDC buffering included), alone.
            self.ethcore_mac = ethcore = mac = LiteEthMAC(
                phy=phy, dw=32, interface="crossbar", hw_mac=amap.BOARD_MAC, with_preamble_crc=True,
                with_sys_datapath=True, tx_cdc_depth=HOST_LINK_TX_CDC_DEPTH, tx_cdc_buffered=True,
                rx_cdc_buffered=True)
        # Into the MAC's receive pipeline, last before its output (LiteEth builds the
        # pipeline at finalization, from this list).
        rx_path = mac.core.rx_datapath.pipeline
        self.host_rx = HostRxBuffer(eth_phy_description(32), amap.HOST_RX_BUFFER_BYTES // 4)
        rx_path.insert(len(rx_path) - 1, self.host_rx)
        # Its counter where the spec says (LiteX would place the block by name).
        if self.csr.paging != amap.LITEX_CSR_PAGING:
            raise ValueError(f"CSR paging {self.csr.paging:#x}, the spec says {amap.LITEX_CSR_PAGING:#x}")
        self.csr.add("host_rx", n=(amap.HOST_RX_DROPPED - amap.LITEX_CSR_BASE) // amap.LITEX_CSR_PAGING)
        # LiteX's PacketFIFOs (Etherbone's records, ICMP's echo, wherever else LiteEth has them) need a fix.
        fix_packet_fifos(ethcore)
        if etherbone:
            self.etherbone = LiteEthEtherbone(ethcore.udp, amap.ETHERBONE_UDP_PORT,
                                              buffer_depth=amap.MAX_BURST_WORDS, cd="sys")
            fix_packet_fifos(self.etherbone)
            self.bus.add_master(name="etherbone", master=self.etherbone.wishbone.bus)
        if eth_link:
            self._add_eth_link(mac)
        if not isinstance(phy, LiteEthPHYModel):
            rx_clk, tx_clk = phy.crg.cd_eth_rx.clk, phy.crg.cd_eth_tx.clk
            self.platform.add_period_constraint(rx_clk, 1e9 / phy.rx_clk_freq)
            self.platform.add_period_constraint(tx_clk, 1e9 / phy.tx_clk_freq)
            self.platform.add_false_path_constraints(self.crg.cd_sys.clk, rx_clk, tx_clk)

    def _add_eth_link(self, mac) -> None:
        link = HostLinkCore(self.platform, self.out_dir, self.sys_clk_freq,
                            mac.crossbar.get_port(hostlink.ETHERTYPE, dw=32), amap.BOARD_MAC)
        # Under the name the firmware's board.h looks for (its source-address CSRs).
        setattr(self, firmware.HOSTLINK_CSR, link)
        self.bus.add_master(name="hostlink", master=link.bus)
        self.bus.add_slave("hostlink", link.dma, SoCRegion(origin=hostlink.HOST_WINDOW_BASE,
                                                           size=hostlink.HOST_WINDOW_SIZE, cached=False))
        self.bus.add_slave("hostlink_counters", link.counters, SoCRegion(origin=hostlink.COUNTERS_BASE,
                                                                         size=hostlink.COUNTERS_SIZE, cached=False))
        self._connect_irq()
