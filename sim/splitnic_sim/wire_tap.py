"""The simulated NIC's Ethernet wire as a TAP interface: frames the NIC sends appear on it, frames sent to it reach the NIC.

Ref: docs/simulation.md, "The wire" (``wire = "tap:IFNAME"``); Linux
Documentation/networking/tuntap.rst.

The TUN ioctls live in :mod:`splitnic.tunnel_tap` (the driver's kernel
tunnel); this module reuses them and adds what a wire needs: carrier on and
the interface up, non-blocking reads and writes.  Opening a name that exists
attaches to it (a persistent TAP made with ``ip tuntap add``); otherwise the
interface is created and disappears with the simulator.  The fd stays bound if
someone moves the interface into another network namespace afterwards.
"""

from __future__ import annotations

import logging
from typing import Sequence

from splitnic.errors import SplitnicError
from splitnic.tunnel_tap import TapTunnel

__all__ = ["TapWire", "parse_wire"]

log = logging.getLogger(__name__)

#: Standard MTU: the NIC takes 1518-byte frames with FCS unless CTRL.JUMBO is set.
WIRE_MTU = 1500


def parse_wire(spec: str) -> str | None:
    """TAP interface name of a ``wire`` spec (``"tap:IFNAME"``), or None for ``"none"``."""
    if spec == "none":
        return None
    kind, _, name = spec.partition(":")
    if kind != "tap" or not name:
        raise SplitnicError(f"wire must be 'none' or 'tap:IFNAME', not {spec!r}")
    if len(name.encode()) >= 16:
        raise SplitnicError(f"TAP interface name must be at most 15 bytes, not {name!r}")
    return name


class TapWire:
    """A TAP interface, up with carrier, read and written without blocking."""

    def __init__(self, name: str) -> None:
        self._tap = TapTunnel.open(name, None, WIRE_MTU)
        self.name = self._tap.name
        try:
            self._tap.set_carrier(True)
            self._tap.set_admin_up(True)
        except OSError as err:
            self._tap.close()
            raise SplitnicError(f"cannot bring TAP interface {self.name!r} up: {err.strerror}") from None
        log.info("wire: TAP interface %s", self.name)

    def read_frames(self, max_frames: int) -> list[bytes]:
        """Frames waiting on the interface (without FCS), at most ``max_frames``; never blocks."""
        return self._tap.recv_burst(max_frames)

    def write_frames(self, frames: Sequence[bytes]) -> int:
        """Hand frames (without FCS) to the kernel; returns how many it took (the rest would block)."""
        return self._tap.send_burst(frames)

    def fileno(self) -> int:
        return self._tap.fileno()

    def close(self) -> None:
        self._tap.close()
