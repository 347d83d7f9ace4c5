"""The ``tap`` kernel tunnel: stock TUN/TAP (``/dev/net/tun``, IFF_TAP | IFF_NO_PI).

Ref: Linux Documentation/networking/tuntap.rst; include/uapi/linux/if_tun.h.

For machines without splitnic.ko.  Each frame costs one read() or write()
system call; the interface disappears when the tunnel is closed.
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
from .tunnel import KernelTunnel, format_mac

__all__ = ["TapTunnel"]

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


class TapTunnel(KernelTunnel):
    """A TAP interface; see :class:`splitnic.tunnel.KernelTunnel`."""

    kind = "tap"

    def __init__(self, fd: int, name: str, mac: bytes, mtu: int) -> None:
        super().__init__(name, mac, mtu)
        self._fd = fd

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
        return cls(fd, name, mac, mtu)

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
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
