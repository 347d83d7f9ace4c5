"""The management firmware's registers and host mailbox (offsets 0x060..0x0FC of the NIC's CSR window).

Ref: firmware/README.md (the firmware), hostdrv/splitnic/firmware.py (the host side).

These are plain RW registers of the NIC's register file, each with one
writer: the firmware writes FW_* and MBOX_STATUS/MBOX_DATA, the host writes
MBOX_CMD/MBOX_ARG.  A command: the host writes MBOX_ARG, then MBOX_CMD with
OP and a SEQ different from MBOX_STATUS.SEQ; the firmware, which polls
MBOX_CMD, runs it, writes MBOX_DATA and then MBOX_STATUS with that SEQ and a
RESULT.  The host polls MBOX_STATUS until its SEQ comes back.  Bus writes
from one master land in order, so DATA is valid once STATUS.SEQ matches.

A NIC without firmware (the software NIC, the cocotb RTL, a board built with
``firmware_cpu=None``) reads FW_VERSION as 0: the host must not post commands
then.  :mod:`splitnic_spec.nic` includes the tuples below.
"""

from __future__ import annotations

from .model import Access, Constant, Field, Register

__all__ = ["FIRMWARE_CONSTANTS", "FIRMWARE_REGISTERS"]

RW = Access.RW

FIRMWARE_CONSTANTS: tuple[Constant, ...] = (
    Constant("MBOX_OP_VERSION", 1, "Mailbox op: MBOX_DATA = the firmware's build id (hash of its sources)."),
    Constant("MBOX_OP_PHY_READ", 2, "Mailbox op: read PHY register MBOX_ARG.REG of PHY MBOX_ARG.PHY into MBOX_DATA."),
    Constant("MBOX_OP_PHY_WRITE", 3, "Mailbox op: write MBOX_ARG.VALUE to PHY register MBOX_ARG.REG of PHY MBOX_ARG.PHY."),
    Constant("MBOX_OP_SELFTEST", 4, "Mailbox op: run the firmware self-test; MBOX_DATA = bit mask of failed "
             "checks (MBOX_SELFTEST_*)."),
    Constant("MBOX_OK", 0, "MBOX_STATUS.RESULT: done."),
    Constant("MBOX_ERR_OP", 1, "MBOX_STATUS.RESULT: unknown OP."),
    Constant("MBOX_ERR_ARG", 2, "MBOX_STATUS.RESULT: MBOX_ARG out of range."),
    Constant("MBOX_ERR_NO_PHY", 3, "MBOX_STATUS.RESULT: no PHY answered at MBOX_ARG.PHY (MDIO turnaround not driven)."),
    Constant("MBOX_ERR_FAILED", 4, "MBOX_STATUS.RESULT: the command ran and failed (self-test: see MBOX_DATA)."),
    Constant("MBOX_SELFTEST_SRAM", 1 << 0, "Self-test bit: the CPU's SRAM did not keep a pattern."),
    Constant("MBOX_SELFTEST_NIC_ID", 1 << 1, "Self-test bit: the CPU read a wrong ID_MAGIC from the NIC."),
    Constant("MBOX_SELFTEST_CYCLES", 1 << 2, "Self-test bit: the NIC's CYCLES counter did not advance."),
    Constant("MBOX_SELFTEST_PHY", 1 << 3, "Self-test bit: the wire PHY did not answer on MDIO, or its PHY id read all zeros or all ones."),
)

FIRMWARE_REGISTERS: tuple[Register, ...] = (
    Register("FW_VERSION", 0x060, RW, "Written by the firmware at boot; 0: no firmware is running.", (
        Field("PATCH", 0, 8, "Firmware patch version."),
        Field("MINOR", 8, 8, "Firmware minor version."),
        Field("MAJOR", 16, 8, "Firmware major version."),
    )),
    Register("FW_STATUS", 0x064, RW, "Written by the firmware: what it found.", (
        Field("PHY_OK", 0, 1, "The wire PHY answered and was configured."),
        Field("MAC_SOURCE", 4, 2, "Where MAC_ADDR came from: 0: left as it was, 1: SPI flash unique id, "
              "2: the firmware's stable locally administered address."),
        Field("PHY_ADDR", 8, 5, "MDIO address of the wire PHY."),
    )),
    Register("FW_LINK_CYCLES", 0x068, RW, "Written by the firmware: CYCLES when it first saw the wire link up "
             "after reset (0: not yet); the reset-to-link-up time."),
    Register("MBOX_CMD", 0x070, RW, "Mailbox command, written by the host (after MBOX_ARG).", (
        Field("OP", 0, 8, "MBOX_OP_*."),
        Field("SEQ", 8, 8, "Any value other than MBOX_STATUS.SEQ posts the command."),
    )),
    Register("MBOX_ARG", 0x074, RW, "Mailbox argument, written by the host before MBOX_CMD.", (
        Field("REG", 0, 5, "PHY ops: clause-22 register number."),
        Field("PHY", 8, 5, "PHY ops: MDIO address of the PHY."),
        Field("VALUE", 16, 16, "MBOX_OP_PHY_WRITE: the value."),
    )),
    Register("MBOX_STATUS", 0x078, RW, "Mailbox status, written by the firmware (after MBOX_DATA).", (
        Field("RESULT", 0, 8, "MBOX_OK or MBOX_ERR_*."),
        Field("SEQ", 8, 8, "SEQ of the last command finished."),
    )),
    Register("MBOX_DATA", 0x07C, RW, "Mailbox result data, written by the firmware."),
)
