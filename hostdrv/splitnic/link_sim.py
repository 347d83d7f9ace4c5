"""The ``sim`` link: CSR accesses over a Unix socket to the simulator, DMA memory shared.

Ref: docs/simulation.md, "The socket protocol" (hello line, 9-byte requests,
ops READ32, WRITE32, READ_BURST, SYNC); the protocol's one definition is
:mod:`splitnic_spec.sim_link`, which the simulator's end imports too.

Writes are posted: they are sent at once and not answered, and the simulator
handles requests strictly in order, so a later read observes them.  The DMA
memory is the simulator's shared-memory file mapped here, so packet views
are the very bytes the simulated NIC's DMA master reads and writes.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import socket
import struct

from splitnic_spec.sim_link import (HELLO_IRQ, MAX_BURST_WORDS, OP_READ32, OP_READ_BURST, OP_SYNC, OP_WRITE32,
                                    PROTO, REQUEST)

from .bus import check_offset
from .dma import DmaAllocator, DmaRegion
from .errors import SplitnicError
from .link import Link
from .link_lock import lock_exclusive

__all__ = ["SimBus", "open_sim"]

log = logging.getLogger(__name__)

#: Seconds to wait for an answer; a Verilator build answers in microseconds.
TIMEOUT = 60.0
#: The lock beside the socket that makes a second driver fail at once (splitnic.link_lock).
LOCK_SUFFIX = ".lock"


class SimBus:
    """Register access over the simulator's socket (docs/simulation.md)."""

    def __init__(self, sock: socket.socket, window: int, where: str) -> None:
        self._sock = sock
        self.window = window
        self.where = where

    def _send(self, op: int, offset: int, arg: int) -> None:
        try:
            self._sock.sendall(REQUEST.pack(op, offset, arg))
        except OSError as err:
            raise SplitnicError(f"{self.where}: the simulator went away ({err.strerror or err}); "
                                "restart it and the driver") from None

    def _recv(self, size: int) -> bytes:
        buf = bytearray()
        try:
            while len(buf) < size:
                chunk = self._sock.recv(size - len(buf))
                if not chunk:
                    raise SplitnicError(f"{self.where}: the simulator closed the connection (its log says why); "
                                        "restart the driver")
                buf += chunk
        except socket.timeout:
            raise SplitnicError(f"{self.where}: no answer from the simulator within {TIMEOUT:.0f} s; "
                                "is it stuck or stopped?") from None
        except OSError as err:
            raise SplitnicError(f"{self.where}: {err.strerror or err}") from None
        return bytes(buf)

    def read32(self, offset: int) -> int:
        """Value of the register at ``offset``."""
        check_offset(offset, self.window)
        self._send(OP_READ32, offset, 0)
        value = int.from_bytes(self._recv(4), "little")
        log.debug("read  %#05x -> %#010x", offset, value)
        return value

    def write32(self, offset: int, value: int) -> None:
        """Write the register at ``offset`` (posted)."""
        check_offset(offset, self.window)
        log.debug("write %#05x <- %#010x", offset, value)
        self._send(OP_WRITE32, offset, value & 0xFFFFFFFF)

    def read_burst(self, offset: int, count: int) -> list[int]:
        """Values of ``count`` consecutive registers (one request per 256)."""
        check_offset(offset, self.window, count)
        out: list[int] = []
        while count > 0:
            n = min(count, MAX_BURST_WORDS)
            self._send(OP_READ_BURST, offset, n)
            out += struct.unpack(f"<{n}I", self._recv(4 * n))
            offset += 4 * n
            count -= n
        return out

    def sync(self) -> int:
        """Wait until every earlier write has completed; simulated clock cycles since start."""
        self._send(OP_SYNC, 0, 0)
        return struct.unpack("<Q", self._recv(8))[0]

    def close(self) -> None:
        """Disconnect (the simulator keeps running and accepts the next driver)."""
        self._sock.close()


def _read_hello(sock: socket.socket, where: str) -> dict:
    line = bytearray()
    try:
        while not line.endswith(b"\n"):
            chunk = sock.recv(1)
            if not chunk:
                raise SplitnicError(f"{where}: the simulator closed the connection before its hello; "
                                    "is another driver attached? (one client at a time)")
            line += chunk
            if len(line) > 65536:
                raise SplitnicError(f"{where}: no hello line from the peer; is this a splitnic simulator socket?")
    except socket.timeout:
        raise SplitnicError(f"{where}: no hello from the simulator within {TIMEOUT:.0f} s; is another driver "
                            "attached? (one client at a time)") from None
    try:
        hello = json.loads(line)
    except ValueError:
        raise SplitnicError(f"{where}: the hello is not JSON ({bytes(line[:60])!r}); "
                            "is this a splitnic simulator socket?") from None
    if hello.get("proto") != PROTO:
        raise SplitnicError(f"{where}: simulator speaks link protocol {hello.get('proto')!r}, this driver "
                            f"protocol {PROTO}; use a driver and simulator from the same tree")
    return hello


def _unlock(lock: int) -> None:
    if lock >= 0:
        os.close(lock)


def _connect_irq(hello: dict, where: str) -> socket.socket | None:
    """The simulator's interrupt socket (hello ``irq``), or None when it has none."""
    path = hello.get(HELLO_IRQ)
    if not path:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as err:
        sock.close()
        log.warning("%s: no interrupt (%s: %s); polling", where, path, err.strerror)
        return None
    sock.setblocking(False)
    return sock


def open_sim(path: str) -> Link:
    """Connect to the simulator listening on ``path`` and map its DMA memory (one driver at a time)."""
    from splitnic_spec import CSR_MAP
    where = f"sim:{path}"
    if not os.path.exists(path):
        raise SplitnicError(f"{where}: no simulator listening; start one with "
                            f"`splitnic sim --socket {path}` (it prints the --link to use)")
    # The simulator serves one client and makes a second one wait: fail at once instead.
    try:
        lock = lock_exclusive(path + LOCK_SUFFIX, where, create=True)
    except PermissionError:   # the socket's folder is not ours: the simulator's own queue decides
        lock = -1
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        _unlock(lock)
        sock.close()
        raise SplitnicError(f"{where}: no simulator listening; start one with "
                            f"`splitnic sim --socket {path}` (it prints the --link to use)") from None
    except PermissionError:
        _unlock(lock)
        sock.close()
        raise SplitnicError(f"{where}: permission denied; run as the simulator's user or root") from None
    try:
        hello = _read_hello(sock, where)
        shm, base, size = hello["shm"], int(hello["dma_base"]), int(hello["dma_size"])
        try:
            fd = os.open(shm, os.O_RDWR)
        except OSError as err:
            raise SplitnicError(f"{where}: cannot open the simulator's DMA memory {shm}: {err.strerror}; "
                                "the driver must run on the simulator's machine, as its user or root") from None
        try:
            mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
    except BaseException:
        _unlock(lock)
        sock.close()
        raise
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    bus = SimBus(sock, CSR_MAP.size, where)
    view = memoryview(mm)
    dma = DmaAllocator(DmaRegion(base, view), zero_copy=True)
    desc = f"{where} ({hello.get('simulator', '?')}, design {hello.get('design', '?')}, wire {hello.get('wire', '?')})"
    link = Link("sim", bus, dma, desc, zero_copy=True, details=dict(hello), irq=_connect_irq(hello, where))

    def _close() -> None:
        bus.close()
        if link.irq is not None:
            link.irq.close()
        _unlock(lock)
        try:
            view.release()
            mm.close()
        except BufferError:
            log.debug("%s: DMA mapping still in use, left to the garbage collector", where)
    link._on_close.append(_close)
    log.info("%s: %s", where, desc)
    return link
