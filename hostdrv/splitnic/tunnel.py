"""The kernel tunnel: the kernel's ``snicN`` interface as seen from the user-space driver.

Ref: spec/splitnic_spec/tunnel.py (the stub module's interface) and
Linux Documentation/networking/tuntap.rst (the TAP fallback).

:class:`KernelTunnel` is one interface with two backends:

* ``stub`` (:mod:`splitnic.tunnel_stub`): the splitnic.ko module's
  ``/dev/splitnic``, with mmap'd rings, batching and NAPI;
* ``tap`` (:mod:`splitnic.tunnel_tap`): stock TUN/TAP, for machines where the
  module is not loaded.

:func:`open_tunnel` picks one (``auto``: the stub when ``/dev/splitnic``
exists, else TAP).  Frames are whole Ethernet frames without FCS.
"""

from __future__ import annotations

import abc
import fcntl
import logging
import os
import select
import socket
import struct
from dataclasses import dataclass
from typing import ClassVar, Sequence

from .errors import SplitnicError

__all__ = ["KernelTunnel", "KINDS", "STUB_DEVICE", "LinkConfig", "open_tunnel", "parse_mac", "format_mac",
           "set_admin_up"]

log = logging.getLogger(__name__)

#: Backends :func:`open_tunnel` accepts.
KINDS = ("auto", "stub", "tap")
#: The stub module's misc device (its name is the module's KBUILD_MODNAME).
STUB_DEVICE = "/dev/splitnic"

# Socket ioctls on a struct ifreq (linux/sockios.h, linux/if.h).
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16s24s"


def parse_mac(text: str) -> bytes:
    """The 6 bytes of a MAC address written ``aa:bb:cc:dd:ee:ff``."""
    parts = text.split(":")
    try:
        mac = bytes(int(p, 16) for p in parts)
    except ValueError:
        mac = b""
    if len(parts) != 6 or len(mac) != 6 or any(len(p) > 2 for p in parts):
        raise SplitnicError(f"a MAC address must look like 02:00:00:00:00:01, not {text!r}")
    return mac


def format_mac(mac: bytes) -> str:
    """``aa:bb:cc:dd:ee:ff`` for 6 bytes."""
    return ":".join(f"{b:02x}" for b in mac)


def set_admin_up(name: str, up: bool = True) -> None:
    """Set or clear IFF_UP on interface ``name`` in the caller's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack(_IFREQ, name.encode(), b"")
        flags = struct.unpack_from("H", fcntl.ioctl(s, _SIOCGIFFLAGS, req), 16)[0]
        flags = flags | _IFF_UP if up else flags & ~_IFF_UP
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH22x", name.encode(), flags))


@dataclass(frozen=True)
class LinkConfig:
    """What the kernel wants of the NIC for its interface (splitnic.kernel_config programs it).

    A backend that follows the interface offers ``read_config() -> LinkConfig``
    and ``config_changed() -> bool`` (non-blocking: did anything change since
    the last call?), optionally ``config_fileno()`` (readable on a change).
    """
    mac: bytes                          #: the interface's address
    mtu: int
    promisc: bool                       #: IFF_PROMISC
    allmulti: bool                      #: IFF_ALLMULTI
    multicast: tuple[bytes, ...] = ()   #: link-layer multicast addresses joined (dev_mc list)
    rx_usecs: int | None = None         #: interrupt moderation ethtool -C asked for (stub only); None: not asked


class KernelTunnel(abc.ABC):
    """A network interface of the kernel whose frames the user-space driver moves.

    ``recv_burst`` returns the frames the kernel transmitted on the interface;
    ``send_burst`` hands frames to the kernel, which receives them on it.
    Both never block.  ``fileno()`` becomes readable when frames wait in
    ``recv_burst``.  Use as a context manager or call ``close()``.
    """

    #: Backend name, as :func:`open_tunnel` takes it.
    kind: ClassVar[str]

    def __init__(self, name: str, mac: bytes, mtu: int) -> None:
        self._name = name
        self._mac = mac
        self._mtu = mtu

    @property
    def name(self) -> str:
        """Value of the interface name (as the kernel chose it)."""
        return self._name

    @property
    def mac(self) -> bytes:
        """Value of the interface's MAC address (6 bytes)."""
        return self._mac

    @property
    def mtu(self) -> int:
        """Value of the interface MTU at open time."""
        return self._mtu

    @abc.abstractmethod
    def set_carrier(self, up: bool) -> None:
        """Report the link (carrier) up or down to the kernel."""

    @abc.abstractmethod
    def recv_burst(self, max_frames: int = 64) -> list[bytes]:
        """Take up to ``max_frames`` frames the kernel transmitted; ``[]`` if none wait."""

    @abc.abstractmethod
    def send_burst(self, frames: Sequence[bytes | bytearray | memoryview]) -> int:
        """Hand frames to the kernel in order; returns how many were taken.

        Fewer than ``len(frames)`` means the kernel side is full: offer the rest
        again later.  A frame the kernel must refuse (shorter than an Ethernet
        header, longer than MTU plus header and VLAN tag) is taken and dropped:
        the stub module counts it in the interface's rx errors, TAP in rx
        dropped.
        """

    @abc.abstractmethod
    def fileno(self) -> int:
        """File descriptor to poll: readable while ``recv_burst`` has frames."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the interface: it goes carrier-down (the stub keeps it for a re-attach)."""

    def set_admin_up(self, up: bool = True) -> None:
        """Bring the interface administratively up (``ip link set NAME up``)."""
        set_admin_up(self._name, up)

    def wait(self, timeout: float | None) -> bool:
        """Wait until ``recv_burst`` has frames or ``timeout`` seconds pass; True if it has."""
        poller = select.poll()
        poller.register(self.fileno(), select.POLLIN)
        return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))

    def __enter__(self) -> "KernelTunnel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name} {format_mac(self._mac)} mtu {self._mtu}>"


def open_tunnel(kind: str = "auto", name: str = "snic0", mac: bytes | None = None,
                mtu: int = 1500, max_mtu: int | None = None) -> KernelTunnel:
    """Open the kernel interface ``name`` with backend ``kind`` (``auto``, ``stub`` or ``tap``).

    ``auto`` uses the stub module when ``/dev/splitnic`` exists, else TAP.
    ``mac=None`` keeps an existing stub interface's address or picks a random
    one.  ``max_mtu``: the largest MTU the interface may be given later (the
    stub sizes its ring slots for it and refuses larger ones; TAP takes any).
    The interface starts carrier-down; call ``set_carrier(True)``.
    Raises :class:`SplitnicError` when the backend cannot be used.
    """
    if kind not in KINDS:
        raise SplitnicError(f"--kernel must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "auto":
        kind = "stub" if os.path.exists(STUB_DEVICE) else "tap"
        log.info("kernel tunnel: auto picked %s", kind)
    if kind == "stub":
        from .tunnel_stub import StubTunnel
        return StubTunnel.open(name, mac, mtu, slot_size=None if max_mtu is None else stub_slot_size(max_mtu))
    from .tunnel_tap import TapTunnel
    return TapTunnel.open(name, mac, mtu)


def stub_slot_size(mtu: int) -> int:
    """The stub's ring slot for frames of ``mtu``: the smallest power of two from SLOT_SIZE_MIN
    that holds MTU + FRAME_OVERHEAD (spec/splitnic_spec/tunnel.py, RingReq.slot_size)."""
    from splitnic_spec import tunnel as tspec
    size = tspec.constant("SLOT_SIZE_MIN")
    while size < mtu + tspec.constant("FRAME_OVERHEAD"):
        size *= 2
    return size
