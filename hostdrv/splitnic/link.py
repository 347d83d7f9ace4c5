"""Links: how the driver reaches a NIC's registers (a :class:`Bus`) and DMA memory.

Ref: docs/architecture.md, "Host links";
docs/simulation.md (the ``sim`` link).

``open_link("sim:/path/sock")`` attaches to a running simulator,
``open_link("mmio:/path/file")`` maps a register window plus DMA memory
(the software NIC's shared-memory file now, the PCIe BAR later),
``open_link("etherbone:192.168.1.50")`` reaches the board (or its simulated
SoC) over UDP, ``open_link("eth:enp3s0")`` reaches it over raw Ethernet with
posted writes both ways (the fast host link, :mod:`splitnic.link_eth`).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import Callable

from .bus import Bus
from .dma import DmaMemory
from .errors import SplitnicError

__all__ = ["Link", "open_link", "KINDS"]

log = logging.getLogger(__name__)

#: Link kinds this driver can open, with the form of their argument.
KINDS = {"sim": "sim:/path/to/socket (a simulator started with `splitnic sim`)",
         "mmio": "mmio:/path/to/file (a register window + DMA memory file, e.g. the software NIC's)",
         "etherbone": "etherbone:HOST[:PORT] (a Colorlight i5 or i9 board or its simulated SoC, over UDP)",
         "eth": "eth:IFNAME[@MAC][,takeover] (the board cabled to interface IFNAME: raw Ethernet, posted writes both "
                "ways; @MAC names one board of several, takeover binds a board bound to another host)"}


@dataclass
class Link:
    """An attached NIC: its register bus and its DMA memory."""
    kind: str
    bus: Bus
    dma: DmaMemory
    description: str
    zero_copy: bool
    #: What the link told about itself (the simulator's hello, file sizes, ...).
    details: dict[str, object] = field(default_factory=dict)
    #: Readable (one byte per rise) when the NIC raises its interrupt; None: the link has
    #: no interrupt path and must be polled (splitnic.irq).
    irq: socket.socket | None = None
    #: What the board counts beside the NIC (``splitnic info``), read when called; None:
    #: nothing of the kind on this link.
    board_counters: Callable[[], dict[str, int]] | None = None
    _on_close: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Detach: close the bus and unmap the DMA memory."""
        while self._on_close:
            self._on_close.pop()()


def open_link(spec: str) -> Link:
    """Attach the NIC named by ``spec`` (``sim:PATH``, ``mmio:PATH``, ``etherbone:HOST[:PORT]`` or ``eth:IFNAME``)."""
    kind, sep, arg = spec.partition(":")
    if not sep or not arg:
        raise SplitnicError(f"--link must be KIND:ARG ({'; '.join(KINDS.values())}), not {spec!r}")
    if kind == "sim":
        from .link_sim import open_sim
        return open_sim(arg)
    if kind == "mmio":
        from .link_mmio import open_mmio
        return open_mmio(arg)
    if kind == "etherbone":
        from .link_etherbone import open_etherbone
        return open_etherbone(arg)
    if kind == "eth":
        from .link_eth import open_eth
        return open_eth(arg)
    raise SplitnicError(f"unknown link kind {kind!r} in {spec!r}; use one of: {'; '.join(KINDS.values())}")
