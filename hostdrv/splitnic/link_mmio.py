"""The ``mmio`` link: registers and DMA memory in one memory-mapped file.

Ref: hostdrv/splitnic/_hotpath.c (the volatile accessors and the
memory-barrier reasoning, written once there).

The file's first ``CSR_MAP.size`` bytes are the NIC's register window; the
rest is DMA memory, whose device address is its offset in the file.  Today
the file is shared memory served by the software NIC
(:mod:`splitnic_sim.softnic`); a PCIe BAR mapped the same way takes its place
later.  Register accesses are single volatile 32-bit loads and stores in C
(cffi), never Python slicing, so each is one bus transaction.
"""

from __future__ import annotations

import logging
import mmap
import os

from splitnic_spec import CSR_MAP

from ._cffi import ffi, lib
from .bus import check_offset
from .dma import DmaAllocator, DmaRegion
from .errors import SplitnicError
from .link import Link

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


def open_mmio(path: str) -> Link:
    """Map ``path``: register window, then DMA memory."""
    try:
        fd = os.open(path, os.O_RDWR)
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
    finally:
        os.close(fd)
    base = ffi.cast("uint8_t *", ffi.from_buffer(mm))
    bus = MmioBus(base)
    view = memoryview(mm)
    dma = DmaAllocator(DmaRegion(CSR_WINDOW, view[CSR_WINDOW:]), zero_copy=True)
    link = Link("mmio", bus, dma, f"mmio:{path}", zero_copy=True,
                details={"file": path, "size": size, "dma_base": CSR_WINDOW, "dma_size": size - CSR_WINDOW})

    def _unmap() -> None:
        bus.close()
        try:
            view.release()
            mm.close()
        except BufferError:  # queues still hold views; the mapping goes with them
            log.debug("mmio:%s: mapping still in use, left to the garbage collector", path)
    link._on_close.append(_unmap)
    log.info("mmio:%s: %d bytes, DMA memory %#x..%#x", path, size, CSR_WINDOW, size)
    return link
