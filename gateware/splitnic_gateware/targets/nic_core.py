"""The Amaranth NIC as a LiteX (Migen) module: its Verilog, instantiated.

Ref: gateware/splitnic_gateware/nic.py (contract A: ``csr`` Wishbone slave,
``dma`` Wishbone burst master, GMII, ``irq``, one clock domain).

The NIC is converted with :func:`splitnic_gateware.verilog.write_verilog` into
the build directory and instantiated as ``splitnic_nic``; LiteX only sees a
black box with two Wishbone interfaces.  The build id is a hash of the NIC's
sources (``splitnic_gateware`` and ``splitnic_spec``), so ``splitnic info``
names the gateware on the board.

The NIC's DMA master is on the SoC's whole bus, so the board's NIC has its DMA
firewall (:mod:`splitnic_gateware.dma.firewall`) with :data:`BOARD_DMA_WINDOWS`:
the engines reach the DMA block RAM and write the host window, nothing else
(not the CPU's memories, LiteX's CSRs, the NIC's own registers); a beat
elsewhere is refused inside the NIC and counted in STAT_DMA_ERR.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import splitnic_spec
from splitnic_spec import board as amap
from splitnic_spec import hostlink

from migen import ClockSignal, Instance, ResetSignal, Signal

from litex.gen import LiteXModule
from litex.soc.interconnect import wishbone

from ..dma.firewall import DmaWindow
from ..id_block import CSR_ADDR_WIDTH
from ..nic import Nic
from ..size import FULL, NicSize
from ..verilog import write_verilog

__all__ = ["NicCore", "NIC_MODULE", "BOARD_NIC_SIZE", "LARGE_BOARD_NIC_SIZE", "LARGE_BOARD_TX_QUEUES",
           "BOARD_DMA_WINDOWS", "build_id"]

#: Verilog module name of the converted NIC.
NIC_MODULE = "splitnic_nic"
#: The board SoC's NIC (the simulated board SoC builds the same): the kernel's queue pair and one
#: fast-path pair, four steering entries, and 8 KiB each of RX FIFO and TX buffer (five standard
#: frames; the board's GMII bridges carry no jumbo frames).  The whole register map (16 entries,
#: 4 RX queues, 48 KiB of buffers) took 80 % of the ECP5-25F's LUTs beside the Etherbone host
#: link and did not route.
BOARD_NIC_SIZE = NicSize(rx_queues=2, tx_queues=2, steer_entries=4, rx_fifo_words=2048, tx_buffer_words=2048)
#: TX queues of the NIC on a board with room (the Colorlight i9).  The RTL serves 8 round-robin;
#: the i9's SoC with 8 + 8 synthesises but was far from routed when stopped (docs/hardware.md):
#: the one number to raise once a build with more routes and meets timing.
LARGE_BOARD_TX_QUEUES = 2
#: The NIC of a board with room (the Colorlight i9's LFE5U-45F): the whole register map's
#: steering entries and the RTL's queues and buffers, as the simulators build it
#: (size.FULL), but for :data:`LARGE_BOARD_TX_QUEUES`.
LARGE_BOARD_NIC_SIZE = NicSize(rx_queues=FULL.rx_queues, tx_queues=LARGE_BOARD_TX_QUEUES,
                               steer_entries=FULL.steer_entries, rx_fifo_words=FULL.rx_fifo_words,
                               tx_buffer_words=FULL.tx_buffer_words)
#: What the board's NIC may reach with its DMA engines: the NIC-local block RAM (rings and
#: buffers the NIC reads, and anything the driver keeps there), and the host window, write
#: only (the NIC never reads across the cable: spec/splitnic_spec/hostlink.py).
BOARD_DMA_WINDOWS = (DmaWindow(amap.DMA_RAM_BASE, amap.DMA_RAM_SIZE),
                     DmaWindow(hostlink.HOST_WINDOW_BASE, hostlink.HOST_WINDOW_SIZE, read=False))


def build_id() -> int:
    """Value of the ID_BUILD this tree's gateware carries: 32 bits of a hash of its sources."""
    digest = hashlib.sha256()
    for package in (Path(__file__).parents[1], Path(splitnic_spec.__file__).parent):
        for path in sorted(package.rglob("*.py")):
            digest.update(path.relative_to(package.parent).as_posix().encode() + b"\0" + path.read_bytes())
    return int.from_bytes(digest.digest()[:4], "big")


class NicCore(LiteXModule):
    """The NIC in the ``sys`` clock domain.

    ``bus`` is the CSR slave (4 KiB window), ``dma`` the DMA master (a LiteX
    Wishbone master with incrementing bursts), ``gmii_*`` the wire side in
    ``sys``: a :mod:`.gmii_bridge` carries it to a PHY's own clocks.
    """

    def __init__(self, platform, out_dir: Path, clock_hz: int, size: NicSize = BOARD_NIC_SIZE,
                 dma_windows: tuple[DmaWindow, ...] = BOARD_DMA_WINDOWS) -> None:
        self.bus = wishbone.Interface(data_width=32, address_width=32, addressing="word")
        self.dma = wishbone.Interface(data_width=32, address_width=32, addressing="word", bursting=True)
        self.gmii_rx_d, self.gmii_rx_dv, self.gmii_rx_er = Signal(8), Signal(), Signal()
        self.gmii_tx_d, self.gmii_tx_en, self.gmii_tx_er = Signal(8), Signal(), Signal()
        self.irq = Signal()

        self.build_id = build_id()
        self.size = size
        path = write_verilog(Nic(build_id=self.build_id, clock_hz=clock_hz, size=size, dma_windows=dma_windows),
                             NIC_MODULE, out_dir)
        platform.add_source(str(path))

        csr, dma = self.bus, self.dma
        self.specials += Instance(NIC_MODULE,
            i_clk=ClockSignal("sys"), i_rst=ResetSignal("sys"),
            # CSR slave: the SoC decoder selects the window, the NIC decodes the offset.
            i_csr__adr=csr.adr[:CSR_ADDR_WIDTH], i_csr__dat_w=csr.dat_w, o_csr__dat_r=csr.dat_r,
            i_csr__sel=csr.sel, i_csr__cyc=csr.cyc, i_csr__stb=csr.stb, i_csr__we=csr.we,
            o_csr__ack=csr.ack,
            # DMA master: 30-bit word addresses, i.e. the whole 32-bit byte space of the SoC bus
            # (behind the NIC's firewall: only ``dma_windows`` ever shows here).
            o_dma__adr=dma.adr, o_dma__dat_w=dma.dat_w, i_dma__dat_r=dma.dat_r, o_dma__sel=dma.sel,
            o_dma__cyc=dma.cyc, o_dma__stb=dma.stb, o_dma__we=dma.we, i_dma__ack=dma.ack,
            o_dma__cti=dma.cti, o_dma__bte=dma.bte,
            i_gmii_rx_d=self.gmii_rx_d, i_gmii_rx_dv=self.gmii_rx_dv, i_gmii_rx_er=self.gmii_rx_er,
            o_gmii_tx_d=self.gmii_tx_d, o_gmii_tx_en=self.gmii_tx_en, o_gmii_tx_er=self.gmii_tx_er,
            o_irq=self.irq,
        )
        # The NIC never signals a bus error.
        self.comb += csr.err.eq(0)
