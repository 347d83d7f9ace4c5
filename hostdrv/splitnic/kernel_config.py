"""The kernel interface's wanted state, programmed into the NIC: addresses, receive modes, MTU.

Ref: docs/registers.md (CTRL.PROMISC/ALLMULTI/JUMBO, MAC_ADDR_*, MC_HASH_*,
MAX_FRAME); Linux Documentation/networking/netdevices.rst (ndo_set_rx_mode,
ndo_set_mac_address, ndo_change_mtu: what a NIC driver does for each).

``ip link set snic0 address|mtu|promisc|allmulti …`` and multicast joins
(IPv6 neighbour discovery, mDNS) change the kernel's interface; the backend
reports its state (TAP: a :class:`~splitnic.tunnel.LinkConfig` from netlink
and ``/proc/net/dev_mcast``, woken by netlink; stub: what the module
publishes, woken by POLLPRI on the handle).  :class:`KernelConfigSync`
compares it with what it last programmed and writes only what changed:

* MAC address -> MAC_ADDR_LO/HI (unicast receive follows the kernel's address);
* PROMISC / ALLMULTI -> CTRL;
* the multicast list -> MC_HASH_LO/HI (a 64-bit hash: a few unwanted groups
  may get in, the kernel drops them);
* MTU -> MAX_FRAME.LEN = MTU + Ethernet header + one VLAN tag + FCS, never
  below MAX_FRAME_STD (larger frames than the MTU are harmless: the kernel
  drops what it cannot take), capped at MAX_FRAME_JUMBO, with CTRL.JUMBO set
  when it exceeds MAX_FRAME_STD (already at MTU 1500: 1522 bytes, a full
  frame with a VLAN tag).  MTUs above MTU_MAX (9000) are left at the cap.  Queue pair 0's buffers (2048 bytes) are
  re-made larger when a frame of the new MTU would not fit them; they only
  grow.  If the DMA memory cannot hold larger buffers the old ones stay and
  a longer frame is dropped and counted (RX: the NIC truncates it; TX: the
  pump counts it ``too long``), never fatal.

It also hands the NIC's counters and link to the kernel side once per
:data:`PUBLISH_EVERY` seconds when the backend can show them (the stub's
``publish_stats``; TAP cannot: ``ip -s link`` on a TAP counts what crossed
the TAP, ``ethtool`` shows the tun driver).
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from splitnic_spec import CSR_MAP, constant

from .errors import SplitnicError
from .ring import BUFFER_STRIDE_ALIGN
from .tunnel import KernelTunnel, LinkConfig, format_mac

if TYPE_CHECKING:
    from .nic import Nic

__all__ = ["KernelConfigSync", "frame_limit", "buffer_size", "ETH_OVERHEAD", "MTU_MIN", "MTU_MAX"]

log = logging.getLogger(__name__)

#: Bytes a frame carries beyond its MTU, FCS excluded: Ethernet header (14) and one VLAN tag (4).
ETH_OVERHEAD = 14 + 4
_FCS = constant("FCS_LEN")
_STD, _JUMBO = constant("MAX_FRAME_STD"), constant("MAX_FRAME_JUMBO")
#: MTUs the kernel path takes (IPv4's minimum; MAX_FRAME_JUMBO with header and FCS).
MTU_MIN, MTU_MAX = 68, _JUMBO - 14 - _FCS
#: Seconds between unconditional re-reads of the kernel's state when a change may go unannounced
#: (multicast joins before Linux 6.8's RTNLGRP_IPV*_MCADDR) and between counter publications (stub).
REREAD_EVERY = 1.0
PUBLISH_EVERY = 1.0
#: Seconds between re-reads when every change is announced and nothing is published: a safety net
#: (a lost notification) that costs an idle driver one wake-up per period.
REREAD_ANNOUNCED = 10.0
_CTRL = CSR_MAP.register("CTRL")


def frame_limit(mtu: int) -> tuple[int, bool]:
    """``(MAX_FRAME.LEN, CTRL.JUMBO)`` for an interface MTU."""
    limit = min(max(mtu + ETH_OVERHEAD + _FCS, _STD), _JUMBO)
    return limit, limit > _STD


def buffer_size(mtu: int) -> int:
    """Bytes a queue pair 0 buffer needs for the longest frame of ``mtu`` (FCS excluded), aligned."""
    need = mtu + ETH_OVERHEAD
    return -(-need // BUFFER_STRIDE_ALIGN) * BUFFER_STRIDE_ALIGN


@dataclass
class _Applied:
    mac: bytes | None = None
    promisc: bool | None = None
    allmulti: bool | None = None
    multicast: frozenset[bytes] | None = None
    limit: tuple[int, bool] | None = None


class KernelConfigSync:
    """Keeps the NIC's address filter, MAC and frame limit in step with the kernel interface.

    ``port`` is queue pair 0 (:class:`splitnic.kernel_path.NicPort`); its
    queues are re-made with larger buffers when the MTU needs them, then
    ``requeued()`` is called (the pump binds to the queues' rings and must be
    re-made too).

    It is an event source of the driver's loop (``fileno()`` and ``poll()``,
    :class:`splitnic.kernel_path.EventSource`): its descriptor becomes
    readable when the backend announces a change (TAP: netlink; stub: the
    handle's event) and on a timer (re-read the state, publish the NIC's
    counters): once per REREAD_EVERY seconds for the stub (it publishes) and
    for a TAP whose kernel does not announce multicast joins, else once per
    REREAD_ANNOUNCED seconds, so an idle loop wakes once per period.
    """

    def __init__(self, nic: "Nic", tunnel: KernelTunnel, port=None,
                 requeued: Callable[[], None] | None = None, irq=None) -> None:
        self.nic, self.tunnel, self.port, self.requeued = nic, tunnel, port, requeued
        #: The NIC's interrupt (splitnic.irq.NicInterrupt): ethtool -C rx-usecs sets its moderation.
        self.irq = irq
        self._applied = _Applied()
        self._next_publish = 0.0
        self.changes = 0          #: times the NIC was reprogrammed
        self.current: LinkConfig | None = None
        self._ep = select.epoll()
        quiet = getattr(tunnel, "config_announced", False) and not hasattr(tunnel, "publish_stats")
        self._timer = _Timer(REREAD_ANNOUNCED if quiet else REREAD_EVERY)
        self._ep.register(self._timer.fileno(), select.EPOLLIN)
        # TAP: a netlink socket, readable on a change; stub: the handle itself, POLLPRI on a change.
        if hasattr(tunnel, "config_fileno"):
            self._ep.register(tunnel.config_fileno(), select.EPOLLIN)
            self._announced = tunnel.config_changed
        elif hasattr(tunnel, "config_pending"):
            self._ep.register(tunnel.fileno(), select.EPOLLPRI)
            self._announced = tunnel.config_pending
        else:
            self._announced = lambda: False
        self._publish_args: dict | None = None
        #: ethtool -N's requests, taken after each read of the configuration (the same POLLPRI
        #: announces both): a splitnic.rule_ethtool.EthtoolRules, or None.
        self.steering = None

    # ---------------------------------------------------------------- loop
    def fileno(self) -> int:
        """Readable when the kernel announced a change or the periodic re-read is due."""
        return self._ep.fileno()

    def poll(self) -> int:
        """Re-program the NIC if the kernel's state changed; publish counters when due.

        Never blocks; returns 1 if anything was re-programmed, else 0.
        """
        due = self._timer.expired()
        changed = self.sync() if self._announced() or due else False
        now = time.monotonic()
        if now >= self._next_publish:
            self._next_publish = now + PUBLISH_EVERY
            self.publish()
        return int(changed)

    def close(self) -> None:
        """Release the timer and the epoll set (not the tunnel or the NIC)."""
        self._ep.close()
        self._timer.close()

    def forget_applied(self) -> None:
        """The NIC was reset under the driver: what was programmed is gone, the next :meth:`sync`
        programs all of it again."""
        self._applied = _Applied()

    def sync(self) -> bool:
        """Read the kernel's state now and program what differs; returns whether anything did."""
        read = getattr(self.tunnel, "read_config", None)
        if read is None:
            return False
        wanted = read()
        if self.steering is not None:
            self.steering.poll()
        if wanted is None:
            return False
        if not isinstance(wanted, LinkConfig):
            # The stub's splitnic.tunnel_stub_control.KernelConfig: secondary unicast addresses
            # already show as promisc, a multicast list too long for it as accept_all_multicast.
            wanted = LinkConfig(mac=wanted.mac, mtu=wanted.mtu, promisc=wanted.promisc,
                                allmulti=wanted.accept_all_multicast, multicast=tuple(wanted.mc_list),
                                rx_usecs=wanted.rx_usecs)
        self.current = wanted
        return self.apply(wanted)

    # ---------------------------------------------------------------- programming
    def apply(self, wanted: LinkConfig) -> bool:
        """Program the NIC for ``wanted``; only registers whose value changes are written."""
        nic, done = self.nic, self._applied
        changed = []
        if wanted.mac != done.mac:
            nic.mac = wanted.mac
            done.mac = wanted.mac
            changed.append(f"MAC {format_mac(wanted.mac)}")
        if (wanted.promisc, wanted.allmulti) != (done.promisc, done.allmulti):
            nic.set_filters(promisc=wanted.promisc, allmulti=wanted.allmulti)
            done.promisc, done.allmulti = wanted.promisc, wanted.allmulti
            changed.append(f"promisc {'on' if wanted.promisc else 'off'}, allmulti {'on' if wanted.allmulti else 'off'}")
        groups = frozenset(wanted.multicast)
        if groups != done.multicast:
            nic.set_multicast(sorted(groups))
            done.multicast = groups
            changed.append(f"{len(groups)} multicast groups")
        if not MTU_MIN <= wanted.mtu <= MTU_MAX:
            # The backends refuse these; a stub of another version might not.
            log.warning("%s: MTU %d is outside %d..%d; the NIC keeps %s", self.tunnel.name, wanted.mtu,
                        MTU_MIN, MTU_MAX, done.limit)
        else:
            limit = frame_limit(wanted.mtu)
            if limit != done.limit:
                self._set_limit(*limit)
                done.limit = limit
                changed.append(f"MTU {wanted.mtu} (MAX_FRAME {limit[0]}{', jumbo' if limit[1] else ''})")
            self._fit_buffers(wanted.mtu)
        if wanted.rx_usecs is not None and self.irq is not None and wanted.rx_usecs != self.irq.coalesce_usecs:
            self.irq.set_coalesce(wanted.rx_usecs)
            changed.append(f"interrupt moderation {wanted.rx_usecs} µs")
            self._next_publish = 0.0    # ethtool -c shows it at the next look, not a second later
        if changed:
            self.changes += 1
            log.info("%s -> NIC: %s", self.tunnel.name, "; ".join(changed))
        return bool(changed)

    def _set_limit(self, max_len: int, jumbo: bool) -> None:
        bus = self.nic.bus
        max_frame = CSR_MAP.register("MAX_FRAME")
        # Lower JUMBO before a smaller limit and raise it after a larger one, so the NIC never
        # honours a limit the buffers were not made for.
        value = bus.read32(_CTRL.offset)
        jumbo_bit = _CTRL.field("JUMBO").mask
        if not jumbo:
            bus.write32(_CTRL.offset, value & ~jumbo_bit)
        bus.write32(max_frame.offset, max_frame.pack(LEN=max_len))
        if jumbo:
            bus.write32(_CTRL.offset, value | jumbo_bit)

    def _fit_buffers(self, mtu: int) -> None:
        """Re-make queue pair 0 with larger buffers when a frame of ``mtu`` does not fit them."""
        port = self.port
        if port is None or not hasattr(port, "rxq"):
            return
        need = buffer_size(mtu)
        if port.rxq.buf_size >= need and port.txq.buf_size >= need:
            return
        nic, kernel = self.nic, constant("KERNEL_QUEUE")
        rx_size = max(need, port.rxq.buf_size)
        old_rx, old_tx = port.rxq, port.txq
        old_rx.close()
        old_tx.close()
        try:
            rxq = nic.rx_queue(kernel, buf_size=rx_size)
            try:
                txq = nic.tx_queue(kernel, buf_size=rx_size)
            except BaseException:
                rxq.close()
                raise
        except SplitnicError as err:
            # Not enough DMA memory for larger buffers: keep the old sizes, longer frames are dropped.
            log.error("%s: cannot make %d-byte buffers for MTU %d (%s); frames longer than %d bytes are dropped",
                      self.tunnel.name, rx_size, mtu, err, old_rx.buf_size)
            port.rxq = nic.rx_queue(kernel, buf_size=old_rx.buf_size)
            port.txq = nic.tx_queue(kernel, buf_size=old_tx.buf_size)
        else:
            port.rxq, port.txq = rxq, txq
            log.info("%s: queue pair 0 re-made with %d-byte buffers for MTU %d", self.tunnel.name, rx_size, mtu)
        if self.requeued:
            self.requeued()

    # ---------------------------------------------------------------- counters
    def publish(self) -> None:
        """Hand the NIC's counters, link, firmware and bus to the kernel side (the stub's
        ``publish_stats``: ``ethtool -S/-i``, ``ethtool``). TAP cannot show them."""
        publish = getattr(self.tunnel, "publish_stats", None)
        if publish is None:
            return
        try:
            if self._publish_args is None:
                self._publish_args = self._identity()
            up, speed, full = self.nic.link_state()
            stats = self.nic.stats()
            publish({k: v for k, v in stats.items() if k in self._publish_args["names"]},
                    link_speed_mbps=speed if up else 0, duplex=("full" if full else "half") if up else None,
                    fw_version=self._publish_args["fw"], bus_info=self._publish_args["bus"],
                    **({"rx_usecs": self.irq.coalesce_usecs} if self.irq is not None else {}),
                    **({"shape": shape} if (shape := self._shape()) is not None else {}))
        except (OSError, ValueError, SplitnicError) as err:
            log.warning("%s: cannot publish the NIC's counters: %s", self.tunnel.name, err)

    def _shape(self):
        """The NIC's queue 0 rings and its queue counts (ethtool -g/-l), when queue pair 0 is the NIC's."""
        port = self.port
        if port is None or not hasattr(port, "rxq"):
            return None
        from .tunnel_stub_control import NicShape
        return NicShape(rx_ring=port.rxq.ring.entries, tx_ring=port.txq.ring.entries,
                        ring_max=1 << constant("RING_LOG2_MAX"), rx_queues=self.nic.num_rx_queues,
                        tx_queues=self.nic.num_tx_queues)

    def _identity(self) -> dict:
        """What ``ethtool -i`` shows, read once: firmware version, the link as bus info."""
        from splitnic_spec.tunnel import NIC_COUNTERS, constant as tunnel_constant
        from .firmware import Firmware
        most = tunnel_constant("TEXT_LEN") - 1
        try:
            fw = Firmware(self.nic.bus).status().version_text
        except SplitnicError:
            fw = "none"
        bus = self.nic.link.description.split(" ", 1)[0]
        if len(bus) > most:     # a long socket path: keep its end, which names it
            bus = "..." + bus[-(most - 3):]
        return {"names": set(NIC_COUNTERS), "fw": f"{fw} (gateware {self.nic.build_id:08x})"[:most], "bus": bus}


class _Timer:
    """A periodic timerfd (Python 3.11 has no os.timerfd_create): readable once per ``period`` seconds."""

    _CLOCK_MONOTONIC, _TFD_NONBLOCK, _TFD_CLOEXEC = 1, os.O_NONBLOCK, os.O_CLOEXEC

    class _Spec(ctypes.Structure):
        _fields_ = [("interval_s", ctypes.c_long), ("interval_ns", ctypes.c_long),
                    ("value_s", ctypes.c_long), ("value_ns", ctypes.c_long)]

    def __init__(self, period: float) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.timerfd_create(self._CLOCK_MONOTONIC, self._TFD_NONBLOCK | self._TFD_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create")
        sec, nsec = int(period), int(period % 1 * 1e9)
        # First expiry at once: the NIC is programmed on the loop's first look.
        spec = self._Spec(sec, nsec, 0, 1)
        if libc.timerfd_settime(self._fd, 0, ctypes.byref(spec), None):
            err = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(err, "timerfd_settime")

    def fileno(self) -> int:
        return self._fd

    def expired(self) -> bool:
        """Whether the timer expired since the last call (clears it)."""
        try:
            return os.read(self._fd, 8) != b""
        except BlockingIOError:
            return False

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
