"""The register bus: 32-bit reads and writes of the NIC's CSR window.

Ref: docs/registers.md (registers are 32 bits at 32-bit aligned byte offsets).

Every link (``sim``, ``mmio``, later ``etherbone``/``pcie``) provides one;
the driver never asks which.  Register accesses are logged at debug level.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Bus", "check_offset"]


@runtime_checkable
class Bus(Protocol):
    """32-bit register access to the NIC's CSR window (byte offsets)."""

    def read32(self, offset: int) -> int:
        """Value of the register at ``offset``."""

    def write32(self, offset: int, value: int) -> None:
        """Write ``value`` to the register at ``offset`` (posted: may complete later, in order)."""

    def read_burst(self, offset: int, count: int) -> list[int]:
        """Values of ``count`` consecutive registers from ``offset``."""

    def close(self) -> None:
        """Release the link."""


def check_offset(offset: int, window: int, count: int = 1) -> None:
    """Raise ValueError unless ``count`` registers from ``offset`` lie aligned inside ``window`` bytes."""
    if offset % 4 or offset < 0 or offset + 4 * count > window:
        raise ValueError(f"register offset must be 32-bit aligned and inside 0..{window:#x}, "
                         f"not {offset:#x} (+{count} registers)")
