"""The ``mmio`` link: registers and DMA memory in one memory-mapped file.

Ref: hostdrv/splitnic/_hotpath.c (the volatile accessors and the
memory-barrier reasoning, written once there).

The file's first ``CSR_MAP.size`` bytes are the NIC's register window; the
rest is DMA memory, whose device address is its offset in the file.  Today
the file is shared memory served by the software NIC
(:mod:`splitnic_sim.softnic`); a PCIe BAR mapped the same way takes its place
later.  Register accesses are single volatile 32-bit loads and stores in C
(cffi), never Python slicing, so each is one bus transaction.

The file cannot be shared: opening it takes an exclusive lock
(:mod:`splitnic.link_lock`).  The interrupt: when ``PATH.irq`` exists it is
a Unix socket where the NIC's side (the software NIC) writes one byte per rise
of the interrupt line (``Link.irq``, :mod:`splitnic.irq`); a PCIe device will
hand an eventfd (VFIO) to the same place.
"""

from __future__ import annotations

import logging
import mmap
import os
import socket

from splitnic_spec import CSR_MAP

from ._cffi import ffi, lib
from .bus import check_offset
from .dma import DmaAllocator, DmaRegion
from .errors import SplitnicError
from .link import Link
from .link_lock import lock_exclusive

__all__ = ["MmioBus", "open_mmio", "CSR_WINDOW"]

log = logging.getLogger(__name__)

#: Bytes of the register window at the start of the file.
CSR_WINDOW = CSR_MAP.size


class MmioBus:
    """Volatile 32-bit accesses to a mapped register window."""

    def __init__(self, base: "ffi.CData", window: int = CSR_WINDOW) -> None:
        self._base = base
        self.window = window

    def read32(self, offset: int) -> int:
        """Value of the register at ``offset``."""
        check_offset(offset, self.window)
        value = lib.snic_mmio_read32(self._base, offset)
        log.debug("read  %#05x -> %#010x", offset, value)
        return value

    def write32(self, offset: int, value: int) -> None:
        """Write the register at ``offset``."""
        check_offset(offset, self.window)
        log.debug("write %#05x <- %#010x", offset, value)
        lib.snic_mmio_write32(self._base, offset, value & 0xFFFFFFFF)

    def read_burst(self, offset: int, count: int) -> list[int]:
        """Values of ``count`` consecutive registers."""
        check_offset(offset, self.window, count)
        out = ffi.new("uint32_t[]", count)
        lib.snic_mmio_read_burst(self._base, offset, out, count)
        return list(out)

    def register_pointer(self, offset: int) -> "ffi.CData":
        """A ``volatile uint32_t *`` to the register: the hot path rings doorbells through it."""
        check_offset(offset, self.window)
        return ffi.cast("uint32_t *", self._base + offset)

    def close(self) -> None:
        """Forget the mapping (the link unmaps it)."""
        self._base = ffi.NULL


#: Suffix of the interrupt socket beside the mmio file.
IRQ_SUFFIX = ".irq"


def _connect_irq(path: str) -> socket.socket | None:
    """The interrupt socket ``PATH.irq`` if the NIC's side serves one."""
    irq_path = path + IRQ_SUFFIX
    if not os.path.exists(irq_path):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(irq_path)
    except OSError as err:
        sock.close()
        log.warning("mmio:%s: no interrupt (%s: %s); polling", path, irq_path, err.strerror)
        return None
    sock.setblocking(False)
    return sock


def open_mmio(path: str) -> Link:
    """Map ``path``: register window, then DMA memory (exclusively: one driver per NIC)."""
    try:
        # The lock has an open of its own: mmap keeps a duplicate of the mapping's descriptor
        # (the same open file, so the same flock) for as long as views of the mapping live.
        lock = lock_exclusive(path, f"mmio:{path}")
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SplitnicError(f"mmio:{path}: no such file; start the software NIC "
                            f"(.venv/bin/python -m splitnic_sim.softnic {path}) or name the right file") from None
    except PermissionError:
        raise SplitnicError(f"mmio:{path}: permission denied; run as root or make the file read/writable") from None
    try:
        size = os.fstat(fd).st_size
        if size < CSR_WINDOW + 4096:
            raise SplitnicError(f"mmio:{path}: {size} bytes is too small: expected the {CSR_WINDOW:#x}-byte register "
                                "window followed by DMA memory; is this a splitnic mmio file?")
        mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    except BaseException:
        os.close(lock)
        raise
    finally:
        os.close(fd)
    base = ffi.cast("uint8_t *", ffi.from_buffer(mm))
    bus = MmioBus(base)
    view = memoryview(mm)
    dma = DmaAllocator(DmaRegion(CSR_WINDOW, view[CSR_WINDOW:]), zero_copy=True)
    link = Link("mmio", bus, dma, f"mmio:{path}", zero_copy=True,
                details={"file": path, "size": size, "dma_base": CSR_WINDOW, "dma_size": size - CSR_WINDOW},
                irq=_connect_irq(path))

    def _unmap() -> None:
        bus.close()
        if link.irq is not None:
            link.irq.close()
        os.close(lock)
        try:
            view.release()
            mm.close()
        except BufferError:  # queues still hold views; the mapping goes with them
            log.debug("mmio:%s: mapping still in use, left to the garbage collector", path)
    link._on_close.append(_unmap)
    log.info("mmio:%s: %d bytes, DMA memory %#x..%#x", path, size, CSR_WINDOW, size)
    return link
