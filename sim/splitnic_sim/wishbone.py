"""A cocotb Wishbone (classic, 32-bit, word-addressed) initiator for CSR access.

Ref: Wishbone B4 §3.2.  Matches splitnic_gateware.bus.WishboneSignature; the
port names are Amaranth's flattening of it (``<prefix>__adr`` and so on).
"""

from __future__ import annotations

import logging
import random

from cocotb.triggers import FallingEdge, Lock, ReadOnly, RisingEdge

__all__ = ["WishboneInitiator"]

log = logging.getLogger(__name__)


class WishboneInitiator:
    """Drive single read/write cycles on a Wishbone target.

    ``idle_max`` inserts 0..idle_max random idle cycles before each access, so
    the target sees irregular traffic.  Accesses from several coroutines (a
    test body and a ring-refilling task, say) take turns: without the lock
    their cycles would overwrite each other's address and data lines.
    """

    def __init__(self, dut, prefix: str, clock, *, idle_max: int = 0, rng: random.Random | None = None) -> None:
        self._sig = {n: getattr(dut, f"{prefix}__{n}") for n in
                     ("adr", "dat_w", "dat_r", "sel", "cyc", "stb", "we", "ack")}
        self._clock = clock
        self._idle_max = idle_max
        self._rng = rng or random.Random(1)
        for n in ("cyc", "stb", "we", "adr", "dat_w", "sel"):
            self._sig[n].value = 0
        self._lock = Lock()

    async def _cycle(self, byte_offset: int, write: bool, data: int = 0, sel: int = 0xF) -> int:
        if byte_offset % 4:
            raise ValueError(f"CSR offsets are 32-bit aligned, not {byte_offset:#x}")
        s = self._sig
        for _ in range(self._rng.randint(0, self._idle_max) if self._idle_max else 0):
            await RisingEdge(self._clock)
        s["adr"].value = byte_offset // 4
        s["we"].value = int(write)
        s["dat_w"].value = data
        s["sel"].value = sel
        s["cyc"].value = 1
        s["stb"].value = 1
        while True:
            await RisingEdge(self._clock)
            await ReadOnly()
            if s["ack"].value:
                value = int(s["dat_r"].value)
                break
        # Drop the strobe between edges so the target never sees a second cycle.
        await FallingEdge(self._clock)
        s["cyc"].value = 0
        s["stb"].value = 0
        s["we"].value = 0
        return value

    async def read(self, byte_offset: int) -> int:
        """Value of the 32-bit register at ``byte_offset``."""
        async with self._lock:
            value = await self._cycle(byte_offset, False)
        log.debug("csr read  %#05x -> %#010x", byte_offset, value)
        return value

    async def write(self, byte_offset: int, value: int, sel: int = 0xF) -> None:
        """Write ``value`` to the register at ``byte_offset``."""
        log.debug("csr write %#05x <- %#010x", byte_offset, value)
        async with self._lock:
            await self._cycle(byte_offset, True, value, sel)
