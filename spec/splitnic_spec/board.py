"""Where the NIC sits on the board SoC's bus, as seen over Etherbone.

Ref: docs/hardware.md, "Address map".

One definition for the gateware (:mod:`splitnic_gateware.targets.soc`) and
the driver (:mod:`splitnic.link_etherbone`).  Addresses are byte addresses on the
32-bit Wishbone bus of the LiteX SoC; the NIC's DMA master sits on the same
bus, so a DMA device address is the bus address of the block RAM.  Like all of
:mod:`splitnic_spec`, it imports nothing: the driver loads it without LiteX.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Board", "BOARDS", "DEFAULT_BOARD", "bitstream_name", "bitstream_path", "NIC_CSR_BASE", "NIC_CSR_SIZE", "DMA_RAM_BASE", "DMA_RAM_SIZE", "LITEX_CSR_BASE",
           "FW_ROM_BASE", "FW_ROM_SIZE", "FW_SRAM_BASE", "FW_SRAM_SIZE", "NIC_FALLBACK_MAC",
           "ETHERBONE_UDP_PORT", "BOARD_IP", "BOARD_MAC", "MAX_BURST_WORDS", "HOST_RX_BUFFER_BYTES",
           "LITEX_CSR_PAGING", "HOST_RX_DROPPED", "BITSTREAM_NAME", "BITSTREAM_PATH"]

#: LiteX's own CSRs (PHY control and MDIO, identifier): where VexRiscv's LiteX
#: integration puts them, inside its uncached I/O region 0x8000_0000..0xFFFF_FFFF.
LITEX_CSR_BASE = 0xF000_0000
#: The management CPU's memories (firmware/): its ROM at the reset vector
#: (LiteX's VexRiscv maps "rom" at 0) and its SRAM (data, stack).  Each ECP5
#: DP16KD holds 2 KiB: 4 KiB of ROM is two, the SRAM one.
FW_ROM_BASE = 0x0000_0000
FW_ROM_SIZE = 4 * 1024
FW_SRAM_BASE = 0x1000_0000
FW_SRAM_SIZE = 2 * 1024
#: The NIC's MAC address when the firmware finds MAC_ADDR zero and the board
#: gives it no unique id: locally administered (bit 1 of byte 0), "\x02SNIC0".
NIC_FALLBACK_MAC = 0x02_53_4E_49_43_30
#: The NIC's register window (docs/registers.md offsets are added to this).
NIC_CSR_BASE = 0x8000_0000
NIC_CSR_SIZE = 0x1000
#: NIC-local block RAM: the only memory the NIC's DMA engines reach on the board.
DMA_RAM_BASE = 0x4000_0000
DMA_RAM_SIZE = 32 * 1024
#: Etherbone endpoint of the board's host-link port (LiteX's defaults, kept so
#: LiteX's own tools (litex_server --udp) reach the board too).
ETHERBONE_UDP_PORT = 1234
BOARD_IP = "192.168.1.50"
BOARD_MAC = 0x10E2D5000000
#: Longest Etherbone record the SoC accepts: LiteX's Etherbone buffers 16 words
#: (add_etherbone(buffer_depth=16)); a longer record stalls it.
MAX_BURST_WORDS = 16
#: The host-link port's receive buffer, in bytes of frames as the MAC hands them
#: on (Ethernet header onwards, no FCS, in 32-bit words): it holds whole frames
#: while Etherbone waits for the bus and drops a frame that does not fit whole
#: (splitnic_gateware.targets.host_rx_buffer).  The Etherbone client keeps at
#: most half of it in flight, so that nothing it sends is dropped.
HOST_RX_BUFFER_BYTES = 4096
#: LiteX gives each module with CSRs a block of this many bytes (SoCMini's csr_paging).
LITEX_CSR_PAGING = 0x800
#: The receive buffer's drop counter (LiteX CSR ``host_rx_dropped``, 32 bits, read
#: only): frames from the host-link port that did not fit whole.  LiteX places CSR
#: blocks by name, differently in each SoC; the SoCs pin this one to the last block
#: so that the driver reads it (``splitnic info``) without the build's csr.csv.
HOST_RX_DROPPED = LITEX_CSR_BASE + 31 * LITEX_CSR_PAGING


@dataclass(frozen=True)
class Board:
    """A board splitnic builds for: what both the build and ``splitnic flash`` must know of it."""
    #: ``make bitstream BOARD=``'s name; the build writes into ``build/<name>``.
    name: str
    #: For people.
    title: str
    #: The FPGA (Lattice's part number: family, LUTs, speed grade, package).
    fpga: str
    #: The FPGA's JTAG IDCODE, which ecppack writes into the bitstream (Lattice TN1260).
    idcode: int
    #: openFPGALoader's name of the board (``--board``).
    loader_name: str
    #: Bytes of the SPI flash the FPGA configures from.
    flash_bytes: int


#: The boards, by name.  The i9 is the i5's board (same PHYs, same pins) with an
#: LFE5U-45F, its user LED on another pin, and a W25Q64JV for the i5's GD25Q16C.
BOARDS = {board.name: board for board in (
    Board("colorlight_i5", "Colorlight i5", "LFE5U-25F-6BG381C", 0x41111043, "colorlight-i5", 2 * 1024 * 1024),
    Board("colorlight_i9", "Colorlight i9", "LFE5U-45F-6BG381C", 0x41112043, "colorlight-i9", 8 * 1024 * 1024),
)}
#: What ``make bitstream`` and ``splitnic flash`` take when no board is named.
DEFAULT_BOARD = "colorlight_i5"


def bitstream_name(board: str = DEFAULT_BOARD) -> str:
    """The file name (without ``.bit``) of ``board``'s bitstream."""
    return f"splitnic_{board}"


def bitstream_path(board: str = DEFAULT_BOARD) -> str:
    """Where ``make bitstream BOARD=board`` writes the bitstream, relative to the checkout."""
    return f"build/{board}/gateware/{bitstream_name(board)}.bit"


#: The default board's bitstream: its name, and where ``make bitstream`` writes it,
#: relative to the checkout (``splitnic flash`` looks there by default).
BITSTREAM_NAME = bitstream_name()
BITSTREAM_PATH = bitstream_path()
