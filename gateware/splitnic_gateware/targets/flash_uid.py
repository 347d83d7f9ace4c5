"""The SPI flash's unique id for the firmware's MAC address: a bit-bang SPI master, and a flash model for simulation.

Ref: GigaDevice GD25Q16C datasheet, "Read Unique ID (4BH)": command 0x4B,
three address bytes (0) and one dummy byte, then the 128-bit unique id,
SPI mode 0 (the flash samples on SCK's rising edge and shifts out on the
falling edge).  The Colorlight i5 v7.0 carries a GD25Q16CSIG; its SCK pin is
the ECP5's configuration clock, reached after configuration only through the
USRMCLK primitive (litex/soc/cores/spi_flash.py does the same).

:class:`SpiFlashBitbang` has two CSRs, ``w`` (clk, mosi, cs_n) and ``r``
(miso); firmware/src/flash.c drives them.  It costs a handful of LUTs, so
the board reads its flash id rather than sharing one fixed address.
:class:`SpiFlashUidModel` answers 0x4B with a fixed id for the simulated SoC.
"""

from __future__ import annotations

from migen import Cat, If, Instance, Signal

from litex.gen import LiteXModule
from litex.soc.interconnect.csr import CSRField, CSRStatus, CSRStorage

__all__ = ["SpiFlashBitbang", "SpiFlashUidModel", "mac_from_uid", "NIC_MAC_FIRST", "HOST_LINK_MAC_FIRST", "CMD_READ_UID", "UID_BYTES", "SIM_UID"]

CMD_READ_UID = 0x4B
#: Bytes of the unique id the firmware reads (the GD25Q16C's 128 bits).
UID_BYTES = 16
#: The simulated flash's unique id.
SIM_UID = bytes.fromhex("c84015" "0123456789abcdef" "fedcba9876")


#: First byte of the NIC's address (MAC_ADDR) and of the eth host link's source address: both
#: locally administered unicast, so that a board's two addresses differ.
NIC_MAC_FIRST, HOST_LINK_MAC_FIRST = 0x02, 0x06


def mac_from_uid(uid: bytes, first: int = NIC_MAC_FIRST) -> bytes:
    """An address the firmware derives from a flash id (firmware/src/main.c, mac_from_uid).

    ``first`` (02 for the NIC's MAC_ADDR, 06 for the host link's source), then
    the id XOR-folded into 5 bytes: byte i goes into byte 1 + i % 5.
    """
    mac = bytearray(bytes([first]) + bytes(5))
    for i, b in enumerate(uid):
        mac[1 + i % 5] ^= b
    return bytes(mac)


class SpiFlashBitbang(LiteXModule):
    """CSRs ``w`` (bit 0 clk, 1 mosi, 2 cs_n) and ``r`` (bit 0 miso) on ``pads`` (cs_n, mosi, miso, maybe clk).

    Without ``pads.clk`` the clock goes out through the ECP5's USRMCLK.
    """

    def __init__(self, pads) -> None:
        self._w = CSRStorage(name="w", reset=0b100, fields=[
            CSRField("clk", size=1), CSRField("mosi", size=1), CSRField("cs_n", size=1, reset=1)])
        self._r = CSRStatus(name="r", fields=[CSRField("miso", size=1)])

        # # #

        clk = Signal()
        miso_1 = Signal()
        self.comb += [clk.eq(self._w.storage[0]), pads.mosi.eq(self._w.storage[1]), pads.cs_n.eq(self._w.storage[2])]
        self.sync += [miso_1.eq(pads.miso), self._r.status[0].eq(miso_1)]
        if hasattr(pads, "clk"):
            self.comb += pads.clk.eq(clk)
        else:
            self.specials += Instance("USRMCLK", i_USRMCLKI=clk, i_USRMCLKTS=0)


class SpiFlashUidModel(LiteXModule):
    """A flash that answers Read Unique ID (0x4B, 3 address bytes, 1 dummy) with ``uid``; pads cs_n/clk/mosi in, miso out."""

    def __init__(self, uid: bytes = SIM_UID) -> None:
        if len(uid) != UID_BYTES:
            raise ValueError(f"uid must be {UID_BYTES} bytes, not {len(uid)}")
        self.cs_n = Signal(reset=1)
        self.clk = Signal()
        self.mosi = Signal()
        self.miso = Signal()

        # # #

        header_bits = 8 * (1 + 3 + 1)
        total = header_bits + 8 * UID_BYTES
        count = Signal(max=total + 2)
        cmd = Signal(8)
        out = Signal(8 * UID_BYTES, reset=int.from_bytes(uid, "big"))
        clk_d = Signal()
        rise, fall = Signal(), Signal()
        self.sync += clk_d.eq(self.clk)
        self.comb += [rise.eq(self.clk & ~clk_d), fall.eq(~self.clk & clk_d)]
        self.sync += [
            If(self.cs_n,
                count.eq(0), out.eq(int.from_bytes(uid, "big")), self.miso.eq(0),
            ).Else(
                If(rise & (count != total + 1), count.eq(count + 1),
                   If(count < 8, cmd.eq(Cat(self.mosi, cmd[:7])))),
                # Shift the id out on falling edges, MSB first, once the header is in.
                If(fall & (count >= header_bits) & (cmd == CMD_READ_UID),
                   self.miso.eq(out[-1]), out.eq(out << 1)),
            ),
        ]
