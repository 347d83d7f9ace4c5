"""Build the management firmware (firmware/) for one SoC and put it into that SoC's ROM.

Ref: firmware/README.md; firmware/Makefile.

The firmware is compiled per SoC, after LiteX has placed that SoC's CSRs:
:func:`write_board_files` writes, into the SoC's firmware build folder,
``csr.h`` (LiteX's generated CSR addresses and field offsets), ``board.h``
(the NIC's bus address, the MDIO and flash CSRs and their fields, the
board's PHY addresses, the fallback MAC) and
``regions.ld`` (ROM and SRAM); :func:`build` runs ``make -C firmware``, which
rebuilds only when a source or one of those files changed.
:meth:`SplitnicSoC.init_mems <.soc.SplitnicSoC.init_mems>` does both from
LiteX's Builder, so the simulated SoC and the bitstream always carry the
firmware of their sources.

``python -m splitnic_gateware.targets.firmware`` (``make firmware``) builds it
for the simulated SoC (or ``--target colorlight_i5``, ``colorlight_i9``) and prints its size.
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
from pathlib import Path

from litex.soc.integration.common import get_mem_data
from litex.soc.integration.export import get_csr_header

from splitnic_spec import board as amap

__all__ = ["FIRMWARE_SRC", "IMAGE_NAME", "FLASH_UID_CSR", "HOSTLINK_CSR", "BoardConfig", "write_board_files", "build", "rom_words"]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
FIRMWARE_SRC = REPO / "firmware"
#: The raw image (what the ROM holds), in the SoC's firmware build folder.
IMAGE_NAME = "splitnic-fw.bin"
#: LiteX name of the SPI flash bit-bang block (:class:`.flash_uid.SpiFlashBitbang`) in a SoC that has one.
FLASH_UID_CSR = "flash_uid"
#: LiteX name of the eth host link's engines (:class:`.hostlink_core.HostLinkCore`): their CSRs
#: ``mac_hi``/``mac_lo`` hold the board's source address on the host link.
HOSTLINK_CSR = "hostlink"
#: The CSR fields the firmware drives, by block: LiteEth's LiteEthPHYMDIO (and
#: :class:`.mdio_phy_model.SimMdioMaster`) and :class:`.flash_uid.SpiFlashBitbang`.
#: board.h names them ``BOARD_<block>_<CSR>_<FIELD>_OFFSET``/``_SIZE``, from the
#: ``CSR_<name>_<CSR>_<FIELD>_*`` that LiteX's csr.h derives from the CSRFields.
MDIO_FIELDS = {"W": ("MDC", "OE", "W"), "R": ("R",)}
FLASH_FIELDS = {"W": ("CLK", "MOSI", "CS_N"), "R": ("MISO",)}


def _csr_aliases(csr_h: str, block: str, name: str, fields: dict[str, tuple[str, ...]]) -> list[str]:
    """board.h lines naming the CSRs of LiteX block ``name`` and their fields ``BOARD_<block>_*``."""
    lines = []
    for csr, names in fields.items():
        wanted = [f"{csr}_ADDR"] + [f"{csr}_{f}_{what}" for f in names for what in ("OFFSET", "SIZE")]
        for item in wanted:
            litex = f"CSR_{name.upper()}_{item}"
            if not re.search(rf"^#define {litex} ", csr_h, re.M):
                raise RuntimeError(f"the SoC's csr.h has no {litex}: the firmware needs the CSR fields "
                                   f"{', '.join(names)} of {name}_{csr.lower()}")
            lines.append(f"#define BOARD_{block}_{item} {litex}")
    return lines


class BoardConfig:
    """What the firmware must know of a board: its PHYs' MDIO addresses and whether to set RGMII delays."""

    def __init__(self, wire_phy_addr: int = 1, host_phy_addr: int = 0, rgmii_delays: bool = True) -> None:
        for name, value in (("wire_phy_addr", wire_phy_addr), ("host_phy_addr", host_phy_addr)):
            if not 0 <= value < 32:
                raise ValueError(f"{name} must be an MDIO address 0..31, not {value!r}")
        self.wire_phy_addr, self.host_phy_addr, self.rgmii_delays = wire_phy_addr, host_phy_addr, rgmii_delays


def write_board_files(soc, build_dir: Path, board: BoardConfig, mdio: str = "ethphy_mdio") -> None:
    """Write ``csr.h``, ``board.h`` and ``regions.ld`` for the finalized ``soc`` into ``build_dir``.

    ``mdio`` is the LiteX name of the MDIO block the firmware bit-bangs (the
    CSRs ``w`` and ``r`` of LiteEth's LiteEthPHYMDIO).  Each file is rewritten
    only when its text changes, so make rebuilds only then.
    """
    build_dir.mkdir(parents=True, exist_ok=True)
    csr_base = soc.mem_regions["csr"].origin
    prefix = mdio.upper()
    csr_h = get_csr_header(soc.csr_regions, soc.constants, csr_base=csr_base, with_access_functions=False)
    if f"CSR_{prefix}_W_ADDR" not in csr_h or f"CSR_{prefix}_R_ADDR" not in csr_h:
        raise RuntimeError(f"the SoC has no MDIO master {mdio} (CSRs {mdio}_w and {mdio}_r); "
                           "the firmware needs one to reach the PHYs")
    mac = amap.NIC_FALLBACK_MAC.to_bytes(6, "big")
    mac_lo = int.from_bytes(mac[:4], "little")
    mac_hi = int.from_bytes(mac[4:], "little")
    rom, sram = soc.mem_regions["rom"], soc.mem_regions["sram"]
    # The SPI flash's unique id (the MAC address), where the SoC has the bit-bang block.
    flash = f"CSR_{FLASH_UID_CSR.upper()}_W_ADDR" in csr_h
    # The eth host link's source address, where the SoC has the link.
    host_link = f"CSR_{HOSTLINK_CSR.upper()}_MAC_LO_ADDR" in csr_h
    files = {
        "csr.h": csr_h,
        "board.h": "\n".join([
            "/* Generated by splitnic_gateware.targets.firmware for this SoC: do not edit. */",
            "#ifndef SPLITNIC_FW_BOARD_H", "#define SPLITNIC_FW_BOARD_H", "",
            "#include \"csr.h\"", "",
            f"#define BOARD_NIC_CSR_BASE 0x{amap.NIC_CSR_BASE:08x}u",
            *_csr_aliases(csr_h, "MDIO", mdio, MDIO_FIELDS),
            f"#define BOARD_WIRE_PHY_ADDR {board.wire_phy_addr}",
            f"#define BOARD_HOST_PHY_ADDR {board.host_phy_addr}",
            f"#define BOARD_RGMII_DELAYS {int(board.rgmii_delays)}",
            f"#define BOARD_FALLBACK_MAC_LO 0x{mac_lo:08x}u",
            f"#define BOARD_FALLBACK_MAC_HI 0x{mac_hi:04x}u",
            f"#define BOARD_FLASH_UID {int(flash)}",
            *(_csr_aliases(csr_h, "FLASH", FLASH_UID_CSR, FLASH_FIELDS) if flash else []),
            f"#define BOARD_HOST_LINK_MAC {int(host_link)}",
            *([f"#define BOARD_HOST_LINK_MAC_{w}_ADDR CSR_{HOSTLINK_CSR.upper()}_MAC_{w}_ADDR" for w in ("HI", "LO")]
              if host_link else []), "",
            "#endif", ""]),
        "regions.ld": "MEMORY {\n"
                      f"\trom : ORIGIN = 0x{rom.origin:08x}, LENGTH = 0x{rom.size:x}\n"
                      f"\tsram : ORIGIN = 0x{sram.origin:08x}, LENGTH = 0x{sram.size:x}\n"
                      "}\n",
    }
    for name, text in files.items():
        path = build_dir / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def build(build_dir: Path) -> Path:
    """``make -C firmware BUILD=build_dir`` (a no-op when up to date); the path of the image."""
    build_dir = Path(build_dir).resolve()
    result = subprocess.run(["make", "-s", "-C", str(FIRMWARE_SRC), f"BUILD={build_dir}"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-10:]
        raise RuntimeError(f"building the firmware failed (make -C firmware BUILD={build_dir}, exit "
                           f"{result.returncode}): " + " | ".join(tail))
    for line in result.stdout.splitlines():
        log.info("%s", line)
    return build_dir / IMAGE_NAME


def rom_words(image: Path, rom_size: int) -> list[int]:
    """The image as 32-bit little-endian ROM words; an image larger than the ROM is an error."""
    size = Path(image).stat().st_size
    if size > rom_size:
        raise RuntimeError(f"the firmware image {image} is {size} bytes; the ROM holds {rom_size} "
                           "(amap.FW_ROM_SIZE)")
    return get_mem_data(str(image), data_width=32, endianness="little")


def main(argv: list[str] | None = None) -> int:
    """``make firmware``: build the firmware for a SoC and print its size."""
    parser = argparse.ArgumentParser(prog="python -m splitnic_gateware.targets.firmware",
                                     description="Build the management firmware for one SoC.")
    parser.add_argument("--target", choices=("sim", "colorlight_i5", "colorlight_i9"), default="sim",
                        help="the SoC whose CSR addresses it is built for (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if args.target == "sim":
        from .sim import DEFAULT_DIR, SimBoardSoC
        soc = SimBoardSoC(DEFAULT_DIR)
    else:
        from .colorlight import ColorlightSoC, default_out
        soc = ColorlightSoC(default_out(args.target), board=args.target)
    soc.finalize()
    image = soc.build_firmware()
    print(f"firmware: {image} ({image.stat().st_size} bytes, ROM {amap.FW_ROM_SIZE} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
