"""The kernel path as a library: the NIC side of the tunnel, and the loop that joins it to snic0.

Ref: docs/architecture.md, "The kernel path" (RX queue 0 feeds the kernel,
TX queue 0 carries its frames).

:class:`Uplink` is what the tunnel needs from the NIC side: queue pair 0 as a
:class:`~splitnic.tunnel_pump.FramePort`, the MAC address, the MTU and the
link state.  :func:`open_uplink` attaches the NIC named by a ``--link`` (or a
host interface with ``packet:IFNAME``); :func:`nic_uplink` takes queue pair 0
of a NIC that is already open (its fast-path applications share it).

:class:`Tunnel` holds the NIC, the kernel interface (stub module or TAP) and
the pump between them for one process: ``splitnic up`` and the demo's lab
both run it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from splitnic_spec import constant

from .nic import Nic
from .nic import open as open_nic
from .rx_queue import RxQueue
from .tunnel import KernelTunnel, format_mac, open_tunnel
from .tunnel_pump import FramePort, TunnelPump
from .tx_queue import TxQueue

__all__ = ["Uplink", "NicPort", "open_uplink", "nic_uplink", "open_nic_uplink", "Tunnel"]

log = logging.getLogger(__name__)

#: Seconds between link-state checks (the carrier follows the NIC's link).
LINK_POLL = 0.5
#: Seconds the loop sleeps when neither the pump nor an application had work
#: (a NIC's rings can only be polled).
IDLE_WAIT = 0.0005


@dataclass
class Uplink:
    """What ``splitnic up`` needs from the NIC side."""
    port: FramePort                 #: queue pair 0 (RX -> kernel, kernel -> TX)
    mac: bytes | None               #: the NIC's MAC address, None: let the tunnel pick
    mtu: int
    link_up: Callable[[], bool]
    close: Callable[[], None]
    description: str
    nic: Nic | None = None        #: the NIC behind it (None for packet:IFNAME)


def _packet_uplink(ifname: str) -> Uplink:
    from .packet_port import PacketPort
    port = PacketPort(ifname)
    return Uplink(port, None, port.mtu, lambda: port.link_up, port.close, f"packet:{ifname}")


def open_uplink(link: str) -> Uplink:
    """Attach the NIC named by ``--link`` (or a host interface with ``packet:IFNAME``)."""
    if link.startswith("packet:"):
        return _packet_uplink(link.split(":", 1)[1])
    return open_nic_uplink(link)


class Tunnel:
    """The NIC, the kernel interface and the pump between them, for one process.

    ``start()`` opens both ends and brings the interface up; ``run()`` pumps
    until ``stop()``; ``close()`` leaves the interface carrier-down.  The demo
    uses it in the same process as fast-path applications.
    """

    def __init__(self, link: "str | Uplink", kernel: str = "auto", name: str = "snic0", mac: bytes | None = None,
                 burst: int = 64) -> None:
        # An Uplink may be passed in when the NIC is already open (its fast-path
        # applications share it); a link string is opened here.
        self.link, self.kernel, self.name, self.mac, self.burst = link, kernel, name, mac, burst
        self.uplink: Uplink | None = link if isinstance(link, Uplink) else None
        self.tunnel: KernelTunnel | None = None
        self.pump: TunnelPump | None = None
        self._carrier: bool | None = None
        self._next_link_check = 0.0

    def start(self) -> "Tunnel":
        """Attach the NIC, open the kernel interface with its MAC/MTU, bring it up."""
        if self.uplink is None:
            self.uplink = open_uplink(self.link)
        try:
            self.tunnel = open_tunnel(self.kernel, self.name, self.mac or self.uplink.mac, self.uplink.mtu)
            self.tunnel.set_admin_up()
            self.pump = TunnelPump(self.uplink.port, self.tunnel, burst=self.burst)
            self.watch_link()
        except BaseException:
            self.close()
            raise
        return self

    def watch_link(self) -> None:
        """Copy the NIC's link state to the interface's carrier (when it changed)."""
        up = self.uplink.link_up()
        if up != self._carrier:
            self.tunnel.set_carrier(up)
            self._carrier = up
            log.info("%s carrier %s", self.tunnel.name, "up" if up else "down")

    def status(self) -> str:
        """One line: interface, backend, address, MTU, link, counters."""
        t = self.tunnel
        return (f"{t.name} up: {t.kind} tunnel, MAC {format_mac(t.mac)}, MTU {t.mtu}, "
                f"link {self.uplink.description} {'up' if self._carrier else 'down'}; {self.pump.stats.line()}")

    def run(self, also: Sequence[Callable[[], int]] = ()) -> None:
        """Pump frames until :meth:`stop`, calling each of ``also`` (fast-path apps, rule
        changes) in the same loop; each returns the work it did."""
        if not also:
            while not self.pump.stopped:
                self.pump.run(duration=LINK_POLL)
                self.watch_link()
            return
        while not self.pump.stopped:
            if not self.step(also):
                time.sleep(IDLE_WAIT)

    def step(self, also: Sequence[Callable[[], int]] = ()) -> int:
        """Move frames once each way, call each of ``also``, and follow the link every
        LINK_POLL seconds; returns the work done (frames and whatever ``also`` counts)."""
        work = self.pump.step() + sum(poll() for poll in also)
        now = time.monotonic()
        if now >= self._next_link_check:
            self.watch_link()
            self._next_link_check = now + LINK_POLL
        return work

    def stop(self) -> None:
        """Make :meth:`run` return (signal-safe)."""
        if self.pump:
            self.pump.stop()

    def close(self) -> None:
        """Release the interface (carrier down) and the NIC."""
        if self.tunnel:
            self.tunnel.close()
            self.tunnel = None
        if self.uplink:
            self.uplink.close()
            self.uplink = None


class NicPort:
    """RX queue 0 + TX queue 0 as a :class:`splitnic.tunnel_pump.FramePort` (frames as bytes)."""

    def __init__(self, rxq: RxQueue, txq: TxQueue) -> None:
        self.rxq, self.txq = rxq, txq

    def rx_burst(self, max_frames: int) -> list[bytes]:
        packets = self.rxq.rx_burst(max_frames)
        frames = [bytes(p.data) for p in packets]
        self.rxq.release(packets)
        return frames

    def tx_burst(self, frames) -> int:
        return self.txq.tx_burst(frames)


def nic_uplink(nic: Nic, *, owns_nic: bool = False) -> Uplink:
    """Queue pair 0 of an open ``nic`` for the kernel tunnel: MAC, MTU 1500, link state.

    Closing the uplink releases queue pair 0, and closes ``nic`` too when
    ``owns_nic`` (``splitnic up`` alone); fast-path applications that share
    the NIC keep it open otherwise.
    """
    kernel = constant("KERNEL_QUEUE")
    rxq, txq = nic.rx_queue(kernel), nic.tx_queue(kernel)
    try:
        mac = nic.mac
        if mac == bytes(6):  # no address programmed: a random locally administered one
            mac = bytes([0x02]) + os.urandom(5)
            nic.mac = mac
    except BaseException:
        rxq.close()
        txq.close()
        raise

    def close() -> None:
        if owns_nic:
            nic.close()
        else:
            rxq.close()
            txq.close()

    return Uplink(port=NicPort(rxq, txq), mac=mac, mtu=1500, link_up=lambda: nic.link_state()[0],
                  close=close, description=nic.link.description, nic=nic)


def open_nic_uplink(link: str) -> Uplink:
    """Attach the NIC at ``link`` and give its queue pair 0 to ``splitnic up`` (closing it closes the NIC)."""
    nic = open_nic(link)
    try:
        return nic_uplink(nic, owns_nic=True)
    except BaseException:
        nic.close()
        raise
