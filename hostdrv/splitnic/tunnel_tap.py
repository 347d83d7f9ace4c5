"""The ``tap`` kernel tunnel: stock TUN/TAP (``/dev/net/tun``, IFF_TAP | IFF_NO_PI).

Ref: Linux Documentation/networking/tuntap.rst; include/uapi/linux/if_tun.h;
include/uapi/linux/rtnetlink.h and if_link.h (the control side).

For machines without splitnic.ko.  Each frame costs one read() or write()
system call; the interface disappears when the tunnel is closed.

The control side (:class:`TapControl`) follows what the kernel wants of the
NIC behind the interface: address, MTU, promiscuity and allmulti (an
RTM_GETLINK of the interface: IFLA_PROMISCUITY and IFLA_ALLMULTI count
tcpdump, bridges and multicast routing, which the IFF_ flags do not show) and
the multicast list
(``/proc/net/dev_mcast``).  A netlink socket on the link, address and
(Linux 6.8+) multicast groups says when to look again; its sockets and the
proc file are opened with the interface, so they stay in its namespace.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import struct
from typing import Sequence

from .errors import SplitnicError
from .tunnel import KernelTunnel, LinkConfig, format_mac

__all__ = ["TapTunnel", "TapControl"]

log = logging.getLogger(__name__)

TUN_DEVICE = "/dev/net/tun"
# if_tun.h: _IOW('T', 202, int) and _IOW('T', 226, int).
_TUNSETIFF = 0x400454CA
_TUNSETCARRIER = 0x400454E2
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000
# sockios.h
_SIOCSIFMTU = 0x8922
_SIOCSIFHWADDR = 0x8924
_SIOCGIFHWADDR = 0x8927
_ARPHRD_ETHER = 1
#: Largest frame a read() may return: no offloads are enabled, so MTU + header + VLAN tag.
_READ_SIZE = 65536


# rtnetlink.h, netlink.h, if_link.h
_NETLINK_ROUTE = 0
_SOL_NETLINK = 270
_NETLINK_ADD_MEMBERSHIP = 1
_RTMGRP_LINK, _RTMGRP_IPV4_IFADDR, _RTMGRP_IPV6_IFADDR = 0x1, 0x10, 0x100
#: RTNLGRP_IPV4_MCADDR, RTNLGRP_IPV6_MCADDR (Linux 6.8+): multicast joins and leaves.
_RTNLGRP_MCADDR = (37, 38)
_RTM_GETLINK, _NLM_F_REQUEST, _NLMSG_ERROR = 18, 0x1, 2
_IFLA_ADDRESS, _IFLA_MTU, _IFLA_PROMISCUITY = 1, 4, 30
#: Allmulti count (Linux 6.6+; IFLA_TSO_MAX_SEGS + 1): multicast routing sets it without the IFF_ flag.
_IFLA_ALLMULTI = 61
_IFF_PROMISC, _IFF_ALLMULTI = 0x100, 0x200
_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_NLATTR = struct.Struct("=HH")
_SIOCGIFINDEX = 0x8933
_DEV_MCAST = "/proc/self/net/dev_mcast"


class TapControl:
    """The control side of one TAP interface: its wanted state and a change notification.

    Open it in the interface's network namespace; it keeps working from any other.
    """

    def __init__(self, name: str) -> None:
        self._events = self._request = None
        self._mcast = -1
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                ifr = fcntl.ioctl(s, _SIOCGIFINDEX, struct.pack("16s24x", name.encode()))
            self.ifindex: int = struct.unpack_from("i", ifr, 16)[0]
            self._events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK
                                         | socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
            self._events.bind((0, _RTMGRP_LINK | _RTMGRP_IPV4_IFADDR | _RTMGRP_IPV6_IFADDR))
            #: Whether multicast joins and leaves are announced (Linux 6.8+); else only a re-read sees them.
            self.announces_multicast = True
            for group in _RTNLGRP_MCADDR:
                try:
                    self._events.setsockopt(_SOL_NETLINK, _NETLINK_ADD_MEMBERSHIP, group)
                except OSError:
                    self.announces_multicast = False
            self._request = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
            self._request.settimeout(2)
            self._mcast = os.open(_DEV_MCAST, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            self.close()
            raise SplitnicError(f"cannot follow interface {name!r} (netlink, {_DEV_MCAST}): {err.strerror}") from None
        self._name = name
        self._seq = 0

    def fileno(self) -> int:
        """The netlink socket: readable when a link, address or multicast change was announced."""
        return self._events.fileno()

    def changed(self) -> bool:
        """Whether anything was announced since the last call (drains the notifications)."""
        seen = False
        while True:
            try:
                if not self._events.recv(65536):
                    return seen
                seen = True
            except BlockingIOError:
                return seen
            except OSError as err:
                if err.errno != errno.ENOBUFS:   # notifications overflowed: something changed
                    raise
                seen = True

    def read(self) -> LinkConfig:
        """The interface's address, MTU, receive modes and multicast list, now."""
        self._seq += 1
        req = _NLMSGHDR.pack(_NLMSGHDR.size + _IFINFOMSG.size, _RTM_GETLINK, _NLM_F_REQUEST, self._seq, 0)
        self._request.send(req + _IFINFOMSG.pack(socket.AF_UNSPEC, 0, self.ifindex, 0, 0))
        while True:
            reply = self._request.recv(65536)
            length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(reply)
            if seq == self._seq:
                break
        if kind == _NLMSG_ERROR:
            code = -struct.unpack_from("i", reply, _NLMSGHDR.size)[0]
            raise SplitnicError(f"interface {self._name!r} (index {self.ifindex}): {os.strerror(code)}")
        _family, _type, _index, flags, _change = _IFINFOMSG.unpack_from(reply, _NLMSGHDR.size)
        attrs, at = {}, _NLMSGHDR.size + _IFINFOMSG.size
        while at + _NLATTR.size <= length:
            alen, atype = _NLATTR.unpack_from(reply, at)
            if alen < _NLATTR.size:
                break
            attrs[atype & 0x3FFF] = reply[at + _NLATTR.size:at + alen]
            at += (alen + 3) & ~3
        count = lambda attr: struct.unpack("I", attrs[attr][:4])[0] if attr in attrs else 0  # noqa: E731
        return LinkConfig(mac=bytes(attrs[_IFLA_ADDRESS]), mtu=count(_IFLA_MTU),
                          promisc=bool(flags & _IFF_PROMISC or count(_IFLA_PROMISCUITY)),
                          allmulti=bool(flags & _IFF_ALLMULTI or count(_IFLA_ALLMULTI)),
                          multicast=self._multicast())

    def _multicast(self) -> tuple[bytes, ...]:
        # Lines: "ifindex name users global address-in-hex".
        os.lseek(self._mcast, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(self._mcast, 65536):
            chunks.append(chunk)
        out = []
        for line in b"".join(chunks).decode().splitlines():
            fields = line.split()
            if len(fields) == 5 and fields[0] == str(self.ifindex) and len(fields[4]) == 12:
                out.append(bytes.fromhex(fields[4]))
        return tuple(sorted(out))

    def close(self) -> None:
        """Close the sockets and the proc file."""
        for sock in (self._events, self._request):
            if sock is not None:
                sock.close()
        if self._mcast >= 0:
            os.close(self._mcast)
            self._mcast = -1


class TapTunnel(KernelTunnel):
    """A TAP interface; see :class:`splitnic.tunnel.KernelTunnel`."""

    kind = "tap"

    def __init__(self, fd: int, name: str, mac: bytes, mtu: int) -> None:
        super().__init__(name, mac, mtu)
        self._fd = fd
        self._control: TapControl | None = None

    @classmethod
    def open(cls, name: str, mac: bytes | None, mtu: int) -> "TapTunnel":
        """Create TAP interface ``name`` (carrier down) in the caller's network namespace."""
        if len(name.encode()) >= 16:
            raise SplitnicError(f"interface name must be at most 15 bytes, not {name!r}")
        try:
            fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SplitnicError(f"no {TUN_DEVICE}: load the tun module (modprobe tun)") from None
        try:
            ifr = fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH22x", name.encode(), _IFF_TAP | _IFF_NO_PI))
            name = ifr[:16].rstrip(b"\0").decode()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                if mac is not None:
                    fcntl.ioctl(s, _SIOCSIFHWADDR, struct.pack("16sH6s16x", name.encode(), _ARPHRD_ETHER, mac))
                fcntl.ioctl(s, _SIOCSIFMTU, struct.pack("16si20x", name.encode(), mtu))
                got = fcntl.ioctl(s, _SIOCGIFHWADDR, struct.pack("16s24x", name.encode()))
                mac = got[18:24]
            fcntl.ioctl(fd, _TUNSETCARRIER, struct.pack("i", 0))
        except OSError as err:
            os.close(fd)
            raise SplitnicError(f"cannot set up TAP interface {name!r} (mtu {mtu}): {err.strerror}") from None
        log.info("tap tunnel %s: %s mtu %d", name, format_mac(mac), mtu)
        tunnel = cls(fd, name, mac, mtu)
        try:
            tunnel._control = TapControl(name)
        except BaseException:
            tunnel.close()
            raise
        return tunnel

    # The control side (splitnic.kernel_config): see TapControl.
    def read_config(self) -> LinkConfig:
        """What the kernel wants of the NIC now: address, MTU, receive modes, multicast list."""
        return self._control.read()

    def config_changed(self) -> bool:
        """Whether the kernel announced a change since the last call (never blocks)."""
        return self._control.changed()

    def config_fileno(self) -> int:
        """Readable when the kernel announced a change."""
        return self._control.fileno()

    @property
    def config_announced(self) -> bool:
        """Whether every change is announced (else re-read now and then: multicast joins before Linux 6.8)."""
        return self._control.announces_multicast

    def set_carrier(self, up: bool) -> None:
        fcntl.ioctl(self._fd, _TUNSETCARRIER, struct.pack("i", int(up)))

    def recv_burst(self, max_frames: int = 64) -> list[bytes]:
        frames = []
        read = os.read
        try:
            for _ in range(max_frames):
                frames.append(read(self._fd, _READ_SIZE))
        except BlockingIOError:
            pass
        return frames

    def send_burst(self, frames: Sequence[bytes | bytearray | memoryview]) -> int:
        write = os.write
        taken = 0
        for frame in frames:
            try:
                write(self._fd, frame)
            except BlockingIOError:
                break
            except OSError as err:
                # EINVAL: not a frame the kernel accepts; EIO: the interface is down.
                if err.errno not in (errno.EINVAL, errno.EIO):
                    raise
                log.debug("tap %s dropped a %d byte frame: %s", self._name, len(frame), err.strerror)
            taken += 1
        return taken

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
