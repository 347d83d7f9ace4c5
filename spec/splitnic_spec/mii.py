"""The PHY registers and bits that the firmware, ``splitnic phy`` and the simulated PHY use.

Ref: IEEE Std 802.3-2018 §22.2.4 (MII management registers), §28.2.4.1.3
(advertisement and link partner ability), §40.5.1.1 (1000BASE-T control and
status); the names follow Linux's include/uapi/linux/mii.h.  The Broadcom
shadow registers: Linux's include/linux/brcmphy.h and
drivers/net/phy/broadcom.c (bcm54xx_config_clock_delay), which set the RGMII
clock delays of BCM54xx PHYs such as the Colorlight i5's B50612D.

These are IEEE's and Broadcom's numbers, not splitnic's.  They live in the
spec so that the C firmware (firmware/src/phy.c), the host
(hostdrv/splitnic/firmware.py) and the PHY model (targets/mdio_phy_model.py)
read one definition.  :mod:`splitnic_spec.nic` includes them in CONSTANTS.
"""

from __future__ import annotations

from .model import Constant

__all__ = ["MII_CONSTANTS", "MII_REGISTER_NAMES", "BCM_CONSTANTS"]

#: The registers, by the names ``splitnic phy`` accepts (lower-case, without MII_).
MII_REGISTER_NAMES = ("BMCR", "BMSR", "PHYSID1", "PHYSID2", "ANAR", "ANLPAR", "ANER", "CTRL1000", "STAT1000",
                      "ESTATUS")

MII_CONSTANTS: tuple[Constant, ...] = (
    Constant("MII_BMCR", 0x00, "Clause-22 register: basic mode control."),
    Constant("MII_BMSR", 0x01, "Clause-22 register: basic mode status."),
    Constant("MII_PHYSID1", 0x02, "Clause-22 register: PHY identifier, OUI bits 3-18."),
    Constant("MII_PHYSID2", 0x03, "Clause-22 register: PHY identifier, OUI bits 19-24, model and revision."),
    Constant("MII_ANAR", 0x04, "Clause-22 register: autonegotiation advertisement."),
    Constant("MII_ANLPAR", 0x05, "Clause-22 register: link partner ability."),
    Constant("MII_ANER", 0x06, "Clause-22 register: autonegotiation expansion."),
    Constant("MII_CTRL1000", 0x09, "Clause-22 register: 1000BASE-T control."),
    Constant("MII_STAT1000", 0x0A, "Clause-22 register: 1000BASE-T status."),
    Constant("MII_ESTATUS", 0x0F, "Clause-22 register: extended status."),
    Constant("MII_BMCR_RESET", 1 << 15, "BMCR: reset the PHY (self-clearing)."),
    Constant("MII_BMCR_ANENABLE", 1 << 12, "BMCR: autonegotiation enabled."),
    Constant("MII_BMCR_ANRESTART", 1 << 9, "BMCR: restart autonegotiation (self-clearing)."),
    Constant("MII_BMCR_FULLDPLX", 1 << 8, "BMCR: full duplex (without autonegotiation)."),
    Constant("MII_BMCR_SPEED1000", 1 << 6, "BMCR: 1000 Mb/s select, MSB (without autonegotiation)."),
    Constant("MII_BMSR_ANEGCOMPLETE", 1 << 5, "BMSR: autonegotiation complete."),
    Constant("MII_BMSR_LSTATUS", 1 << 2, "BMSR: link up (latches low until read)."),
    Constant("MII_ANAR_CSMA", 1 << 0, "ANAR/ANLPAR selector: IEEE 802.3."),
    Constant("MII_ANAR_10HD", 1 << 5, "ANAR/ANLPAR: 10BASE-T half duplex."),
    Constant("MII_ANAR_10FD", 1 << 6, "ANAR/ANLPAR: 10BASE-T full duplex."),
    Constant("MII_ANAR_100HD", 1 << 7, "ANAR/ANLPAR: 100BASE-TX half duplex."),
    Constant("MII_ANAR_100FD", 1 << 8, "ANAR/ANLPAR: 100BASE-TX full duplex."),
    Constant("MII_CTRL1000_1000HD", 1 << 8, "CTRL1000: advertise 1000BASE-T half duplex."),
    Constant("MII_CTRL1000_1000FD", 1 << 9, "CTRL1000: advertise 1000BASE-T full duplex."),
    Constant("MII_STAT1000_LP_1000HD", 1 << 10, "STAT1000: the link partner can 1000BASE-T half duplex."),
    Constant("MII_STAT1000_LP_1000FD", 1 << 11, "STAT1000: the link partner can 1000BASE-T full duplex."),
)

#: The BCM54xx shadow registers: one register number holds several registers,
#: picked by a selector written first.
BCM_CONSTANTS: tuple[Constant, ...] = (
    Constant("BCM_AUXCTL", 0x18, "Broadcom register: auxiliary control, shadowed (selector in bits 2..0)."),
    Constant("BCM_AUXCTL_SHDW_SEL", 0x0007, "AUXCTL: the shadow register a write addresses."),
    Constant("BCM_AUXCTL_READ_SHIFT", 12, "AUXCTL: bits 14..12 of a write with selector SHDW_MISC pick the "
             "shadow the next read returns."),
    Constant("BCM_AUXCTL_SHDW_MISC", 7, "AUXCTL shadow: miscellaneous control."),
    Constant("BCM_AUXCTL_MISC_WREN", 1 << 15, "AUXCTL misc control: write enable (a write without it selects "
             "the shadow to read)."),
    Constant("BCM_AUXCTL_MISC_DATA", 0x7FF8, "AUXCTL misc control: its value bits 14..3."),
    Constant("BCM_AUXCTL_MISC_RGMII_SKEW", 1 << 8, "AUXCTL misc control: the PHY delays RXC (RGMII RX clock skew)."),
    Constant("BCM_SHD", 0x1C, "Broadcom register: shadow 0x1c (selector in bits 14..10)."),
    Constant("BCM_SHD_WRITE", 1 << 15, "SHD: write the selected shadow (without it: select it for the next read)."),
    Constant("BCM_SHD_SEL_SHIFT", 10, "SHD: the shadow selector's lowest bit (5 bits)."),
    Constant("BCM_SHD_DATA", 0x03FF, "SHD: the selected shadow's value bits 9..0."),
    Constant("BCM_SHD_CLK_CTL", 0x3, "SHD shadow: clock alignment control."),
    Constant("BCM_SHD_CLK_GTXCLK_DELAY", 1 << 9, "SHD clock alignment control: the PHY delays GTXCLK (RGMII TX "
             "clock skew)."),
)
