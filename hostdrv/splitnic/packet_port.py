"""A host network interface as a frame port (AF_PACKET), for running the tunnel without a NIC.

Ref: Linux Documentation/networking/packet_mmap.rst (packet sockets), packet(7).

``splitnic up --link packet:IFNAME`` puts an existing interface (a veth end,
say) where the NIC would be: the kernel tunnel's frames leave on it and its
frames enter the tunnel.  Tests and benchmarks use it to exercise the kernel
path end to end with a network namespace as the far end.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Sequence

from .errors import SplitnicError

__all__ = ["PacketPort"]

_ETH_P_ALL = 0x0003
_SOL_PACKET = 263
_PACKET_IGNORE_OUTGOING = 23


class PacketPort:
    """Frames in and out of interface ``ifname`` (a :class:`splitnic.tunnel_pump.FramePort`).

    Create it in the network namespace that holds ``ifname``; the socket
    stays there.  Frames the interface sends itself are not received back.
    """

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        except PermissionError:
            raise SplitnicError("a packet socket needs CAP_NET_RAW: run as root") from None
        try:
            sock.setsockopt(_SOL_PACKET, _PACKET_IGNORE_OUTGOING, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind((ifname, 0))
        except OSError as err:
            sock.close()
            raise SplitnicError(f"cannot attach to interface {ifname!r}: {err.strerror}") from None
        sock.setblocking(False)
        self._sock = sock

    @property
    def mtu(self) -> int:
        """Value of the interface's MTU."""
        return int(Path(f"/sys/class/net/{self.ifname}/mtu").read_text())

    @property
    def link_up(self) -> bool:
        """Whether the interface has carrier."""
        try:
            return Path(f"/sys/class/net/{self.ifname}/carrier").read_text().strip() == "1"
        except OSError:  # reading carrier of a down interface fails with EINVAL
            return False

    def rx_burst(self, max_frames: int) -> list[bytes]:
        """Frames received on the interface, at most ``max_frames``; never blocks."""
        frames = []
        recv = self._sock.recv
        try:
            for _ in range(max_frames):
                frames.append(recv(65536))
        except BlockingIOError:
            pass
        return frames

    def tx_burst(self, frames: Sequence[bytes | bytearray | memoryview]) -> int:
        """Send frames on the interface; returns how many were taken (a refused frame is dropped)."""
        send = self._sock.send
        taken = 0
        for frame in frames:
            try:
                send(frame)
            except BlockingIOError:
                break
            except OSError:
                pass  # too long or too short for the interface: dropped, as a wire would
            taken += 1
        return taken

    def fileno(self) -> int:
        """The socket, readable when frames wait."""
        return self._sock.fileno()

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()
