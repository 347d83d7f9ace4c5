"""How big one NIC build is: its queues, steering entries and packet buffers.

Ref: docs/registers.md, ID_FEATURES (generated from splitnic_spec.nic).

The spec's register map has room for NUM_RX_QUEUES, NUM_TX_QUEUES and
NUM_STEER_ENTRIES; a build may have fewer, and says how many in ID_FEATURES.
Registers of the instances a build leaves out read 0 and ignore writes, so one
driver serves every build.  The simulations build :data:`FULL`: the whole map,
every steering entry and :data:`RTL_RX_QUEUES` RX and :data:`RTL_TX_QUEUES` TX
queues (8 and 8, as the software NIC; the TX engine serves its queues
round-robin, one frame each in turn).  A small FPGA builds less (the
Colorlight i5 target picks its own size), because each steering entry and each
queue costs registers, counters and comparators that would not fit beside the
host link and the management CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from splitnic_spec import CSR_MAP, NUM_RX_QUEUES, NUM_STEER_ENTRIES, NUM_TX_QUEUES

__all__ = ["NicSize", "FULL", "RTL_RX_QUEUES", "RTL_TX_QUEUES"]

_FEATURES = CSR_MAP.register("ID_FEATURES")
#: Queues the gateware builds by default: all the register map has room for.
RTL_RX_QUEUES, RTL_TX_QUEUES = NUM_RX_QUEUES, NUM_TX_QUEUES


@dataclass(frozen=True)
class NicSize:
    """Counts of one build (each at most what the register map has room for) and its buffer sizes.

    ``rx_fifo_words`` sizes the RX packet FIFO and ``tx_buffer_words`` the TX
    frame buffer, both in 32-bit words and powers of two; the defaults hold
    three and one jumbo frames.
    """
    rx_queues: int = RTL_RX_QUEUES
    tx_queues: int = RTL_TX_QUEUES
    steer_entries: int = NUM_STEER_ENTRIES
    rx_fifo_words: int = 8192
    tx_buffer_words: int = 4096

    def __post_init__(self) -> None:
        # Queue 0 of each direction is the kernel's; a build without it is no NIC.
        for name, value, most in (("rx_queues", self.rx_queues, NUM_RX_QUEUES),
                                  ("tx_queues", self.tx_queues, NUM_TX_QUEUES),
                                  ("steer_entries", self.steer_entries, NUM_STEER_ENTRIES)):
            least = 0 if name == "steer_entries" else 1
            if not least <= value <= most:
                raise ValueError(f"{name} must be {least}..{most} (the register map's room), not {value}")
        for name in ("rx_fifo_words", "tx_buffer_words"):
            words = getattr(self, name)
            if words < 16 or words & (words - 1):
                raise ValueError(f"{name} must be a power of two >= 16, not {words}")

    def count(self, array: str) -> int:
        """Instances of register array ``array`` (``RXQ``, ``TXQ``, ``STEER``) this build has."""
        return {"RXQ": self.rx_queues, "TXQ": self.tx_queues, "STEER": self.steer_entries}[array]

    def features(self) -> int:
        """The value ID_FEATURES reads on this build."""
        f = _FEATURES
        value = f.reset
        for field, count in (("RX_QUEUES", self.rx_queues), ("TX_QUEUES", self.tx_queues),
                             ("STEER_ENTRIES", self.steer_entries)):
            value = (value & ~f.field(field).mask) | f.field(field).put(count)
        return value


#: What the simulators build: every steering entry, RTL_RX_QUEUES and RTL_TX_QUEUES queues.
FULL = NicSize()
