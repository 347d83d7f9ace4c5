"""The NIC's management firmware, seen from the host: FW_* registers and the mailbox.

Ref: spec/splitnic_spec/firmware.py (the registers and the protocol);
firmware/src/mailbox.c (the other end).

A command: write MBOX_ARG, then MBOX_CMD with the op and a SEQ one past
MBOX_STATUS.SEQ; the firmware answers by writing MBOX_DATA and then
MBOX_STATUS with that SEQ and a result code.  A command still pending when
another is posted (its poster died) is waited for first, so its answer is
not taken for the new one's.  One process at a time should
use the mailbox (``splitnic phy``, ``splitnic info``): two posting at once
would take each other's answers.

A NIC without firmware (the software NIC, the cocotb RTL, a SoC built without
a CPU) reads FW_VERSION as 0; every command then fails at once with
:class:`NoFirmwareError` instead of waiting for an answer that cannot come.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from splitnic_spec import CSR_MAP, constant
from splitnic_spec.mii import MII_REGISTER_NAMES

from .errors import SplitnicError

__all__ = ["Firmware", "FirmwareStatus", "NoFirmwareError", "MailboxError", "PHY_REGISTERS", "SELFTEST_CHECKS",
           "MAC_SOURCES"]

log = logging.getLogger(__name__)

_FW_VERSION = CSR_MAP.register("FW_VERSION")
_FW_STATUS = CSR_MAP.register("FW_STATUS")
_FW_LINK_CYCLES = CSR_MAP.register("FW_LINK_CYCLES")
_CMD = CSR_MAP.register("MBOX_CMD")
_ARG = CSR_MAP.register("MBOX_ARG")
_STATUS = CSR_MAP.register("MBOX_STATUS")
_DATA = CSR_MAP.register("MBOX_DATA")

_RESULTS = {constant(n): n for n in ("MBOX_OK", "MBOX_ERR_OP", "MBOX_ERR_ARG", "MBOX_ERR_NO_PHY", "MBOX_ERR_FAILED")}
_RESULT_TEXT = {
    "MBOX_ERR_OP": "the firmware does not know this command (older firmware?)",
    "MBOX_ERR_ARG": "the firmware refused the argument",
    "MBOX_ERR_NO_PHY": "no PHY answered at that MDIO address",
    "MBOX_ERR_FAILED": "the command failed",
}
#: MBOX_SELFTEST_* bit -> check name.
SELFTEST_CHECKS = {constant(f"MBOX_SELFTEST_{n}"): n.lower() for n in ("SRAM", "NIC_ID", "CYCLES", "PHY")}
#: FW_STATUS.MAC_SOURCE values.
MAC_SOURCES = {0: "left as set", 1: "SPI flash unique id", 2: "fallback locally administered address"}
#: Clause-22 register names ``splitnic phy`` accepts (IEEE Std 802.3-2018 §22.2.4).
PHY_REGISTERS = {name.lower(): constant(f"MII_{name}") for name in MII_REGISTER_NAMES}


class NoFirmwareError(SplitnicError):
    """The NIC has no management firmware (FW_VERSION reads 0)."""


class MailboxError(SplitnicError):
    """The firmware answered a mailbox command with an error."""


@dataclass(frozen=True)
class FirmwareStatus:
    """What the FW_* registers say."""
    #: (major, minor, patch); None when no firmware runs.
    version: tuple[int, int, int] | None
    phy_ok: bool
    phy_addr: int
    mac_source: str
    #: CYCLES when the firmware first saw the wire link up (0: not yet).
    link_up_cycles: int

    @property
    def version_text(self) -> str:
        """``0.1.0``, or ``none``."""
        return ".".join(map(str, self.version)) if self.version else "none"


class Firmware:
    """The management firmware of the NIC on ``bus`` (a link's Bus)."""

    def __init__(self, bus, timeout: float = 10.0) -> None:
        self.bus = bus
        #: Seconds to wait for an answer (the simulated SoC runs far slower than the board).
        self.timeout = timeout

    def status(self) -> FirmwareStatus:
        """Value of the FW_* registers."""
        v = self.bus.read32(_FW_VERSION.offset)
        s = self.bus.read32(_FW_STATUS.offset)
        version = None
        if v:
            version = tuple(_FW_VERSION.field(n).get(v) for n in ("MAJOR", "MINOR", "PATCH"))
        return FirmwareStatus(version=version, phy_ok=bool(_FW_STATUS.field("PHY_OK").get(s)),
                              phy_addr=_FW_STATUS.field("PHY_ADDR").get(s),
                              mac_source=MAC_SOURCES.get(_FW_STATUS.field("MAC_SOURCE").get(s), "unknown"),
                              link_up_cycles=self.bus.read32(_FW_LINK_CYCLES.offset))

    def present(self) -> bool:
        """True when firmware runs (FW_VERSION is not 0)."""
        return self.bus.read32(_FW_VERSION.offset) != 0

    def command(self, op: str, arg: int = 0) -> int:
        """Run mailbox op ``op`` (``"PHY_READ"`` for MBOX_OP_PHY_READ ...) with ``arg``; MBOX_DATA."""
        code = constant(f"MBOX_OP_{op}")
        if not self.present():
            raise NoFirmwareError("the NIC reports no management firmware (FW_VERSION reads 0): it is a "
                                  "software or cocotb NIC, or a SoC built without a CPU; PHY access and "
                                  "firmware commands need the board or the simulated board SoC")
        # A command still running (its poster died?) finishes first, so its answer is not taken for ours.
        pending = _CMD.field("SEQ").get(self.bus.read32(_CMD.offset))
        status = self._wait_seq(pending, f"the command posted before {op}")
        seq = (_STATUS.field("SEQ").get(status) + 1) & 0xFF
        self.bus.write32(_ARG.offset, arg)
        self.bus.write32(_CMD.offset, _CMD.pack(OP=code, SEQ=seq))
        log.debug("mailbox: op %s arg %#010x seq %d", op, arg, seq)
        status = self._wait_seq(seq, f"mailbox command {op}")
        data = self.bus.read32(_DATA.offset)
        result = _RESULTS.get(_STATUS.field("RESULT").get(status), "unknown")
        log.debug("mailbox: op %s -> %s data %#010x", op, result, data)
        if result != "MBOX_OK" and not (op == "SELFTEST" and result == "MBOX_ERR_FAILED"):
            raise MailboxError(f"mailbox command {op} (argument {arg:#x}): "
                               f"{_RESULT_TEXT.get(result, f'result {status & 0xFF}')}")
        return data

    def _wait_seq(self, seq: int, what: str) -> int:
        """MBOX_STATUS once its SEQ is ``seq``."""
        deadline = time.monotonic() + self.timeout
        while True:
            status = self.bus.read32(_STATUS.offset)
            if _STATUS.field("SEQ").get(status) == seq:
                return status
            if time.monotonic() > deadline:
                raise SplitnicError(f"the firmware did not answer {what} within {self.timeout:g} s "
                                    f"(MBOX_STATUS {status:#010x}, waiting for SEQ {seq}); is the CPU running?")
            time.sleep(0.002)

    def build_id(self) -> int:
        """The firmware's build id (hash of its sources), MBOX_OP_VERSION."""
        return self.command("VERSION")

    @staticmethod
    def _phy_arg(phy: int, reg: int, value: int = 0) -> int:
        if not 0 <= phy < 32:
            raise SplitnicError(f"PHY address must be 0..31, not {phy}")
        if not 0 <= reg < 32:
            raise SplitnicError(f"PHY register must be 0..31 (clause 22), not {reg}")
        if not 0 <= value <= 0xFFFF:
            raise SplitnicError(f"a PHY register holds 16 bits: value must be 0..0xffff, not {value:#x}")
        return _ARG.pack(PHY=phy, REG=reg, VALUE=value)

    def phy_read(self, phy: int, reg: int) -> int:
        """Register ``reg`` of the PHY at MDIO address ``phy``."""
        return self.command("PHY_READ", self._phy_arg(phy, reg)) & 0xFFFF

    def phy_write(self, phy: int, reg: int, value: int) -> None:
        """Write ``value`` to register ``reg`` of the PHY at MDIO address ``phy``."""
        self.command("PHY_WRITE", self._phy_arg(phy, reg, value))

    def selftest(self) -> list[str]:
        """Run the firmware's self-test; the names of the checks that failed (empty: all passed)."""
        failed = self.command("SELFTEST")
        return [name for bit, name in SELFTEST_CHECKS.items() if failed & bit]
