"""Simulated host memory: a shared-memory file and the Wishbone target that serves the NIC's DMA from it.

Ref: docs/simulation.md, "DMA memory"; Wishbone B4 §3.2
(classic cycles) and §4.3 (incrementing bursts, CTI_INCR .. CTI_END).

The simulator maps the file and answers the NIC's ``dma__*`` port from it; the
driver maps the same file (its path travels in the socket hello), so DMA
buffers are plain memory on both sides.  Device address ``base`` is byte 0 of
the file.
"""

from __future__ import annotations

import logging
import mmap
import os
import random
import struct
from pathlib import Path

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from splitnic_gateware.bus import CTI_INCR

__all__ = ["DEFAULT_DMA_BASE", "HostMemory", "WishboneDmaTarget"]

log = logging.getLogger(__name__)

#: Device address of the first byte of simulated host memory.
DEFAULT_DMA_BASE = 0x1000_0000

_WORD = struct.Struct("<I")
# Byte enables -> mask of the bytes they select, for read-modify-write.
_SEL_MASK = [sum(0xFF << (8 * b) for b in range(4) if sel >> b & 1) for sel in range(16)]


class HostMemory:
    """A shared-memory file of ``size`` bytes seen by the device at ``base``.

    ``create=True`` makes (or truncates) the file and zero-fills it;
    ``create=False`` maps an existing one, which must hold at least ``size`` bytes.
    """

    def __init__(self, path: Path, size: int, base: int = DEFAULT_DMA_BASE, create: bool = True) -> None:
        if size <= 0 or size % 4096:
            raise ValueError(f"size must be a positive multiple of 4096 bytes, not {size!r}")
        if base % 4:
            raise ValueError(f"base must be 32-bit aligned, not {base:#x}")
        self.path = Path(path)
        self.size = size
        self.base = base
        flags = os.O_RDWR | (os.O_CREAT | os.O_TRUNC if create else 0)
        fd = os.open(self.path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            elif os.fstat(fd).st_size < size:
                raise ValueError(f"{self.path} holds {os.fstat(fd).st_size} bytes, expected at least {size}")
            self._mmap = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self.view = memoryview(self._mmap)

    def close(self) -> None:
        """Unmap the file (the file itself stays; its creator removes it)."""
        self.view.release()
        try:
            self._mmap.close()
        except BufferError:
            # Someone still holds a slice of the view; the mapping goes with it.
            log.warning("host memory %s still has exported views; left mapped", self.path)

    def __enter__(self) -> "HostMemory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _int(signal) -> int:
    """Value of ``signal``, X/Z read as 0 (Icarus starts with X before reset)."""
    try:
        return int(signal.value)
    except ValueError:
        return 0


class WishboneDmaTarget:
    """cocotb model of host memory on a 32-bit word-addressed Wishbone bus (``<prefix>__adr`` ...).

    It acknowledges like an asynchronous slave: the beat presented in a cycle
    is acknowledged in that same cycle unless it is held back, by ``latency``
    idle cycles before the first beat of each access (classic cycle or burst),
    or by a random stall on each beat with probability ``stall_prob``.  The
    beats of an incrementing burst (CTI_INCR) after the first see no latency.

    Speed: while the bus is idle it sleeps on the strobe's rising edge; while
    active it runs once per clock, at the falling edge, where it samples the
    initiator (settled since the rising edge) and drives ack/dat_r for the
    next rising edge.  The initiator's outputs must therefore not depend
    combinationally on ack, which Wishbone requires anyway.

    Out-of-range accesses are counted in ``errors``, logged, read as 0 and
    acknowledged (so the NIC does not hang); nothing raises into the simulator.
    """

    def __init__(self, dut, prefix: str, clock, mem: HostMemory, *, stall_prob: float = 0.0,
                 latency: int = 0, rng: random.Random | None = None) -> None:
        if not 0.0 <= stall_prob < 1.0:
            raise ValueError(f"stall_prob must be in [0, 1), not {stall_prob!r}")
        if latency < 0:
            raise ValueError(f"latency must be >= 0, not {latency!r}")
        self._sig = {n: getattr(dut, f"{prefix}__{n}") for n in
                     ("adr", "dat_w", "dat_r", "sel", "cyc", "stb", "we", "ack")}
        self._cti = getattr(dut, f"{prefix}__cti", None)
        self._clock = clock
        self.mem = mem
        self.stall_prob = stall_prob
        self.latency = latency
        self._rng = rng or random.Random(1)
        self.errors = 0
        self.reads = 0
        self.writes = 0
        self._sig["ack"].value = 0
        self._sig["dat_r"].value = 0

        self._task = cocotb.start_soon(self._run())

    def _offset(self, adr: int) -> int | None:
        offset = (adr << 2) - self.mem.base
        if 0 <= offset <= self.mem.size - 4:
            return offset
        return None

    def _error(self, adr: int, write: bool) -> None:
        self.errors += 1
        if self.errors <= 20:
            log.error("DMA %s outside host memory: byte address %#010x (memory is %#010x..%#010x)",
                      "write" if write else "read", adr << 2, self.mem.base, self.mem.base + self.mem.size)

    def _transfer(self, adr: int, write: bool) -> int:
        """Perform one beat; returns the read data (0 for writes)."""
        buf = self.mem._mmap
        offset = self._offset(adr)
        if write:
            self.writes += 1
            if offset is None:
                self._error(adr, True)
                return 0
            sel = _int(self._sig["sel"]) & 0xF
            data = _int(self._sig["dat_w"])
            if sel == 0xF:
                _WORD.pack_into(buf, offset, data)
            elif sel:
                mask = _SEL_MASK[sel]
                old = _WORD.unpack_from(buf, offset)[0]
                _WORD.pack_into(buf, offset, (old & ~mask) | (data & mask))
            return 0
        self.reads += 1
        if offset is None:
            self._error(adr, False)
            return 0
        return _WORD.unpack_from(buf, offset)[0]

    async def _run(self) -> None:
        sig = self._sig
        cyc, stb, we, adr_sig, ack, dat_r = sig["cyc"], sig["stb"], sig["we"], sig["adr"], sig["ack"], sig["dat_r"]
        falling = FallingEdge(self._clock)
        stb_rise = RisingEdge(stb)
        acking = False
        in_burst = False      # the last beat acknowledged was CTI_INCR, so the next one streams
        wait = 0              # latency cycles left before the current access may be acknowledged
        waiting = False
        while True:
            try:
                await falling
                if not (_int(cyc) and _int(stb)):
                    if acking:
                        ack.value = 0
                        acking = False
                    if not _int(cyc):
                        in_burst = False
                    waiting = False
                    if not _int(stb):
                        await stb_rise
                    continue
                if not in_burst and not waiting and self.latency:
                    wait, waiting = self.latency, True
                if wait:
                    wait -= 1
                    go = False
                else:
                    go = not (self.stall_prob and self._rng.random() < self.stall_prob)
                if go:
                    waiting = False
                    dat_r.value = self._transfer(_int(adr_sig), bool(_int(we)))
                    in_burst = self._cti is not None and _int(self._cti) == CTI_INCR
                if go != acking:
                    ack.value = int(go)
                    acking = go
            except Exception:   # a model bug must not kill the simulation; count and go on
                self.errors += 1
                log.exception("DMA target failed on a beat; continuing")
