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

Its loop waits for events, it does not poll: one epoll set holds the NIC's
interrupt (:mod:`splitnic.irq`), the kernel side's descriptor (``/dev/splitnic``
or the TAP), the port's descriptor (``packet:``), a netlink socket for the
link state of a ``packet:`` port, and the control sources (the rules socket).
Under load it drains bursts back to back without sleeping, looking at the
control sources every few bursts without waiting; when a pass finds nothing
it re-arms the interrupt, looks once more, and sleeps until an event.  A link
without an interrupt (``etherbone``) is polled at a bounded rate instead.

A board that is reset under the loop (``eth``: the link binds it again by
itself and wakes the loop, :mod:`splitnic.link_eth`) is set up again here from
what the driver holds, as at start-up: queue pair 0 made again with fresh
rings, the interface's MAC, filters, multicast list and frame limit, the
interrupt's coalescing and mask, then whatever else this process set up in
the NIC (:attr:`Tunnel.rearm_also`: the fast path's queues and the whole
steering table, :meth:`splitnic.fastpath.FastPath.rearm`).  The interface
stays up; frames in flight are lost.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import time
import weakref
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from splitnic_spec import constant

from .irq import DEFAULT_COALESCE_USECS, ForwardedCauses, NicInterrupt
from .kernel_config import KernelConfigSync
from .nic import Nic
from .nic import open as open_nic
from .rx_queue import RxQueue
from .stats_control import StatsServer
from .errors import SplitnicError
from .tunnel import KernelTunnel, format_mac, open_tunnel
from .tunnel_pump import FramePort, TunnelPump
from .tx_queue import TxQueue

__all__ = ["Uplink", "NicPort", "open_uplink", "nic_uplink", "open_nic_uplink", "Tunnel", "EventSource",
           "Rearmable"]

log = logging.getLogger(__name__)

#: Seconds between link-state checks while busy or on a link without link events
#: (idle, the interrupt or a netlink message says when the link changed).
LINK_POLL = 0.5
#: Seconds a link without an interrupt (etherbone) sleeps when idle: from the first
#: value, doubling up to the second (at most 1 / the second wake-ups a second).
POLL_MIN, POLL_MAX = 0.001, 0.02
#: Busy passes between two looks at the control sources (the rules socket).
CONTROL_EVERY = 16

_RTMGRP_LINK = 1


class EventSource(Protocol):
    """A control source of the loop: a descriptor and what to do when it is readable."""

    def fileno(self) -> int:
        """The descriptor the loop waits on."""

    def poll(self) -> int:
        """Handle what is ready without blocking; returns the work done."""


class Rearmable(Protocol):
    """Something else that set the NIC up in this process (the fast path)."""

    def rearm(self) -> None:
        """Set it up in the NIC again: the NIC was reset under the driver (its board was reset)."""


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
    #: Readable when the link state may have changed (None: the NIC's interrupt says it, or nothing does).
    link_events: socket.socket | None = None


def _packet_uplink(ifname: str) -> Uplink:
    from .packet_port import PacketPort
    port = PacketPort(ifname)
    # rtnetlink's link group: a message whenever an interface's state changes.
    events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK,
                           socket.NETLINK_ROUTE)
    events.bind((0, _RTMGRP_LINK))

    def close() -> None:
        events.close()
        port.close()
    return Uplink(port, None, port.mtu, lambda: port.link_up, close, f"packet:{ifname}", link_events=events)


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
                 burst: int = 64, coalesce_usecs: int = DEFAULT_COALESCE_USECS, max_mtu: int | None = None) -> None:
        # An Uplink may be passed in when the NIC is already open (its fast-path
        # applications share it); a link string is opened here.
        self.link, self.kernel, self.name, self.mac, self.burst = link, kernel, name, mac, burst
        self.coalesce_usecs = coalesce_usecs
        self.max_mtu = max_mtu     #: largest MTU the interface may take later (the stub's slots)
        self.uplink: Uplink | None = link if isinstance(link, Uplink) else None
        self.tunnel: KernelTunnel | None = None
        self.pump: TunnelPump | None = None
        self.irq: NicInterrupt | None = None
        self._carrier: bool | None = None
        self._board_epoch: int | None = None   # the link's re-attaches seen (eth: EthBus.epoch)
        self.rearms = 0            #: times the NIC was set up again after its board was reset
        self._next_link_check = 0.0
        self.wakeups = 0           #: times the loop slept and woke up
        # stop() writes here so that a sleeping loop wakes (a signal alone does not end epoll_wait:
        # Python retries it after the handler).
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        #: Follows the interface's MAC, MTU, receive modes and multicast list into the NIC and
        #: publishes its counters (splitnic.kernel_config, issue 17); an event source of run().
        self.config: KernelConfigSync | None = None
        #: Answers `splitnic stats --link ...` for the NIC this process holds (splitnic.stats_control).
        self.stats_server: StatsServer | None = None
        #: The RX queues granted to application processes, whose interrupt causes go to their
        #: eventfds (splitnic.app_server); None: no application process.
        self.forwarded: ForwardedCauses | None = None
        #: Whatever else set the NIC up in this process (the fast path, ``splitnic up`` adds it):
        #: set up again, in order, after queue pair 0 when the NIC's board was reset.
        self.rearm_also: list[Rearmable] = []

    def start(self) -> "Tunnel":
        """Attach the NIC, open the kernel interface with its MAC/MTU, bring it up."""
        if self.uplink is None:
            self.uplink = open_uplink(self.link)
        try:
            self.tunnel = open_tunnel(self.kernel, self.name, self.mac or self.uplink.mac, self.uplink.mtu,
                                      self.max_mtu)
            self.tunnel.set_admin_up()
            self.pump = TunnelPump(self.uplink.port, self.tunnel, burst=self.burst)
            nic = self.uplink.nic
            if nic is not None and nic.link.irq is not None:
                self.irq = NicInterrupt(nic, self.coalesce_usecs)
                # Every RX queue (the kernel's and the applications'), and link changes.
                self.irq.enable(rx_queues=(1 << nic.num_rx_queues) - 1)
            if nic is not None:
                self._board_epoch = getattr(nic.bus, "epoch", None)
                # eth: a pulled cable makes the link's writes and reads wait for the board (it reports
                # and counts) instead of failing and ending the interface; a stop still ends them.
                hostlink = getattr(nic.bus, "port", None)
                if hasattr(hostlink, "patient"):
                    # A weak reference: a cycle through the link's memoryviews would leave them to the
                    # garbage collector, which crashes on views that cffi still exports.
                    me = weakref.ref(self)
                    hostlink.patient = lambda: (t := me()) is not None and t.pump is not None and not t.pump.stopped
                self.config = KernelConfigSync(nic, self.tunnel, self.uplink.port, self._requeued, self.irq)
                link = self.link if isinstance(self.link, str) else nic.link.description.split(" ", 1)[0]
                try:
                    self.stats_server = StatsServer(nic, link, lambda: {"tunnel": vars(self.pump.stats)})
                except (OSError, SplitnicError) as err:   # counters stay readable here, not elsewhere
                    log.warning("splitnic stats --link %s will not reach this process: %s", link, err)
            self.watch_link()
        except BaseException:
            self.close()
            raise
        return self

    def follow_board(self) -> None:
        """Set the NIC up again if its board was reset since the last look (the link's epoch grew)."""
        nic = self.uplink.nic if self.uplink else None
        epoch = getattr(nic.bus, "epoch", None) if nic is not None else None
        if epoch is None or epoch == self._board_epoch:
            return
        self._board_epoch = epoch
        log.warning("%s: the NIC's board was reset: setting up its queues, MAC, filters, steering table and "
                    "interrupt again", self.tunnel.name)
        try:
            self._rearm(nic)
        except SplitnicError as err:
            # The board went away again meanwhile: the interface stays, the next look tries again.
            log.error("%s: setting the NIC up again failed (%s); trying again", self.tunnel.name, err)
            self._board_epoch = -1
            return
        self.rearms += 1
        self._carrier = None
        self.watch_link()

    def _rearm(self, nic: Nic) -> None:
        # Everything the NIC held is gone; the driver's side is the truth.  Queues first (fresh rings
        # of the same shape), then the registers, then the steering table that points at the queues.
        nic.restarted()
        port = self.uplink.port
        if isinstance(port, NicPort):
            port.rxq = nic.remade(port.rxq)
            port.txq = nic.remade(port.txq)
        nic.mac = self.tunnel.mac
        if self.config is not None:
            # What the sync had programmed went with the NIC's registers: program all of it again.
            self.config.forget_applied()
            self.config.sync()
        if self.irq is not None:
            # The same object (the kernel config's ethtool -C goes through it) and descriptor.
            self.irq.restarted()
            self.irq.enable(rx_queues=(1 << nic.num_rx_queues) - 1)
        for other in self.rearm_also:
            other.rearm()
        self._requeued()

    def watch_link(self) -> None:
        """Copy the NIC's link state to the interface's carrier (when it changed)."""
        self.follow_board()
        up = self.uplink.link_up()
        if up != self._carrier:
            self.tunnel.set_carrier(up)
            self._carrier = up
            log.info("%s carrier %s", self.tunnel.name, "up" if up else "down")

    def _requeued(self) -> None:
        # kernel_config re-made queue pair 0 with larger buffers for a larger MTU; the pump
        # binds to the queues' rings, so it is made again (its counters carry on).
        old = self.pump
        self.pump = TunnelPump(self.uplink.port, self.tunnel, burst=self.burst)
        self.pump.stats = old.stats
        if old.stopped:
            self.pump.stop()

    def status(self) -> str:
        """One line: interface, backend, address, MTU, link, counters."""
        t = self.tunnel
        return (f"{t.name} up: {t.kind} tunnel, MAC {format_mac(t.mac)}, MTU {t.mtu}, "
                f"link {self.uplink.description} {'up' if self._carrier else 'down'}; {self.pump.stats.line()}")

    def run(self, also: Sequence[Callable[[], int]] = (), sources: Sequence[EventSource] = ()) -> None:
        """Move frames until :meth:`stop`, calling each of ``also`` (fast-path apps) in the same loop
        and each source's ``poll()`` when its descriptor is readable; sleeps only when idle."""
        ep = select.epoll()
        sources = (*sources, *(s for s in (self.config, self.stats_server) if s is not None))
        try:
            self._loop(ep, also, sources)
        finally:
            ep.close()

    def _loop(self, ep: "select.epoll", also: Sequence[Callable[[], int]], sources: Sequence[EventSource]) -> None:
        kernel_fd = self.tunnel.fileno()
        kernel_events = select.EPOLLIN
        ep.register(kernel_fd, kernel_events)
        ep.register(self._wake_r, select.EPOLLIN)
        port_fd = getattr(self.uplink.port, "fileno", None)
        if callable(port_fd):
            ep.register(port_fd(), select.EPOLLIN)
        irq_fd = self.irq.fileno() if self.irq else -1
        if self.irq:
            ep.register(irq_fd, select.EPOLLIN)
        link_fd = self.uplink.link_events.fileno() if self.uplink.link_events else -1
        if link_fd >= 0:
            ep.register(link_fd, select.EPOLLIN)
        handlers = {}
        for src in sources:
            ep.register(src.fileno(), select.EPOLLIN)
            handlers[src.fileno()] = src.poll
        # Without an interrupt the NIC's rings can only be polled: a bounded rate, backing off.
        polled = self.uplink.nic is not None and self.irq is None
        poll_wait = POLL_MIN
        busy = 0
        while not self.pump.stopped:
            if self.step(also):
                busy += 1
                poll_wait = POLL_MIN
                if handlers and busy % CONTROL_EVERY == 0:
                    events = ep.poll(0)
                    self._check_hangup(events, kernel_fd)
                    self._dispatch(events, handlers, irq_fd, link_fd)
                    # While this loop is busy the line stays up and rises no more: an application
                    # that sleeps learns of its frames from here.
                    if self.irq and self.forwarded and self.forwarded.armed:
                        self.forwarded.forward(self.irq.status())
                continue
            # Idle: re-arm the interrupt, then look once more (a frame may have landed meanwhile).
            if self.irq:
                every = (1 << self.uplink.nic.num_rx_queues) - 1
                fw = self.forwarded
                self.irq.enable(rx_queues=fw.rx_mask(every) if fw else every,
                                tx_queues=1 if self.pump.tx_blocked else 0)
                self.irq.arm(fw.own_causes() if fw else 0xFFFFFFFF)
                if fw:
                    fw.rearmed(self.irq)
                if self.step(also):
                    continue
            # The kernel side: wait for its frames unless the NIC cannot take them now (then
            # the TX completion interrupt wakes us), and for room when it was full.
            timeout = poll_wait if polled else -1
            if self.pump.in_c:
                want = (0 if self.pump.tx_blocked else select.EPOLLIN) | \
                    (select.EPOLLOUT if self.pump.rx_blocked else 0)
                if want != kernel_events:
                    ep.modify(kernel_fd, want)
                    kernel_events = want
            elif self.pump.rx_blocked or self.pump.tx_blocked:
                timeout = POLL_MIN   # a backlog the Python pump retries (and drops after its stall timeout)
            events = ep.poll(timeout)
            self.wakeups += 1
            self._check_hangup(events, kernel_fd)
            if polled:
                poll_wait = min(poll_wait * 2, POLL_MAX) if not events else POLL_MIN
                if time.monotonic() >= self._next_link_check:
                    self.watch_link()
                    self._next_link_check = time.monotonic() + LINK_POLL
            self._dispatch(events, handlers, irq_fd, link_fd)

    def _check_hangup(self, events, kernel_fd: int) -> None:
        # epoll reports POLLHUP/POLLERR whatever was asked: left alone, every wait returns at
        # once and the loop spins. The stub hangs up when its interface is deleted.
        for fd, mask in events:
            if fd == kernel_fd and mask & (select.EPOLLHUP | select.EPOLLERR):
                raise SplitnicError(f"{self.tunnel.name} was deleted (ip link del, or the end of its network "
                                    "namespace): nothing left to drive")

    def _dispatch(self, events, handlers, irq_fd: int, link_fd: int) -> None:
        for fd, _mask in events:
            if fd == self._wake_r:
                try:
                    os.read(self._wake_r, 64)
                except BlockingIOError:
                    pass
            elif fd == irq_fd:
                self.follow_board()       # the eth link wakes the loop this way when it re-attached
                if self.irq.take():
                    status = self.irq.status()
                    if self.forwarded:
                        self.forwarded.forward(status)
                    if self.irq.link_changed(status):
                        self.watch_link()
            elif fd == link_fd:
                try:
                    while self.uplink.link_events.recv(65536):
                        pass
                except BlockingIOError:
                    pass
                self.watch_link()
            elif fd in handlers:
                handlers[fd]()

    def step(self, also: Sequence[Callable[[], int]] = ()) -> int:
        """Move frames once each way and call each of ``also``; returns the work done (frames
        and whatever ``also`` counts).  While busy, follows the link every LINK_POLL seconds."""
        work = self.pump.step() + sum(poll() for poll in also)
        if work:
            now = time.monotonic()
            if now >= self._next_link_check:
                self.watch_link()
                self._next_link_check = now + LINK_POLL
        return work

    def stop(self) -> None:
        """Make :meth:`run` return (signal-safe)."""
        if self.pump:
            self.pump.stop()
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        """Release the interface (carrier down) and the NIC."""
        if self._wake_r >= 0:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
        if self.config:
            self.config.close()
            self.config = None
        if self.stats_server:
            self.stats_server.close()
            self.stats_server = None
        if self.irq:
            try:
                self.irq.disable()
            except SplitnicError as err:   # the simulator went away first
                log.debug("interrupt: %s", err)
            self.irq = None
        if self.tunnel:
            self.tunnel.close()
            self.tunnel = None
        if self.uplink:
            self.uplink.close()
            self.uplink = None


class NicPort:
    """RX queue 0 + TX queue 0 as a :class:`splitnic.tunnel_pump.FramePort` (frames as bytes).

    The pump moves frames in C when it can (:meth:`queues`); these methods are
    the Python path (copying links).  A frame longer than a TX buffer is dropped
    and counted in :attr:`too_long`, never an error: it is the kernel's frame.
    """

    def __init__(self, rxq: RxQueue, txq: TxQueue) -> None:
        self.rxq, self.txq = rxq, txq
        self.too_long = 0      #: frames tx_burst dropped for not fitting a TX buffer

    def queues(self) -> tuple[RxQueue, TxQueue]:
        """The queue pair (the C pump works on it directly)."""
        return self.rxq, self.txq

    def rx_burst(self, max_frames: int) -> list[bytes]:
        with self.rxq.rx_batch(max_frames) as batch:
            return [bytes(view) for view in batch]

    def tx_burst(self, frames) -> int:
        limit = self.txq.buf_size
        if any(len(f) > limit for f in frames):
            fits = [f for f in frames if len(f) <= limit]
            taken = self.txq.tx_burst(fits)
            if taken < len(fits):   # ring full: report how far into ``frames`` we got
                last = fits[taken - 1] if taken else None
                upto = next(i for i, f in enumerate(frames) if f is last) + 1 if last is not None else 0
                self.too_long += sum(1 for f in frames[:upto] if len(f) > limit)
                return upto
            self.too_long += len(frames) - len(fits)
            return len(frames)
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
