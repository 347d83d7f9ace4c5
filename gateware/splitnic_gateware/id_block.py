"""The ID block: the first registers a driver reads.

Ref: docs/registers.md, ID_MAGIC .. CLOCK_HZ (generated from splitnic_spec.nic).

A self-contained CSR slave that answers the ID registers and SCRATCH; the full
CSR block reuses its values.  It is also the simulation stack's smoke test.
"""

# No "from __future__ import annotations": Amaranth reads the port annotations.

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

import splitnic_spec as spec
from splitnic_spec import CSR_MAP

from .bus import WishboneSignature
from .size import FULL, NicSize

__all__ = ["IdBlock", "id_values", "CSR_ADDR_WIDTH"]

#: Word address bits of the CSR window.
CSR_ADDR_WIDTH = (CSR_MAP.size // 4 - 1).bit_length()


def id_values(build_id: int = 0, clock_hz: int = 125_000_000, size: NicSize = FULL) -> dict[str, int]:
    """Value of each read-only ID register, by register name, for a build of ``size``."""
    return {
        "ID_MAGIC": spec.ID_MAGIC_VALUE,
        "ID_VERSION": CSR_MAP.register("ID_VERSION").reset,
        "ID_SPEC_HASH": spec.SPEC_HASH,
        "ID_BUILD": build_id,
        "ID_FEATURES": size.features(),
        "CLOCK_HZ": clock_hz,
    }


class IdBlock(wiring.Component):
    """CSR slave with the ID registers, SCRATCH and CYCLES; other addresses read 0."""

    csr: In(WishboneSignature(CSR_ADDR_WIDTH))

    def __init__(self, build_id: int = 0, clock_hz: int = 125_000_000) -> None:
        self._values = id_values(build_id, clock_hz)
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        scratch = Signal(32)
        cycles = Signal(32)
        m.d.sync += cycles.eq(cycles + 1)

        bus = self.csr
        # Classic single cycles: acknowledge one cycle after the strobe.
        m.d.sync += bus.ack.eq(bus.cyc & bus.stb & ~bus.ack)
        with m.If(bus.cyc & bus.stb & ~bus.ack):
            with m.Switch(bus.adr):
                for name, value in self._values.items():
                    with m.Case(CSR_MAP.register(name).offset // 4):
                        m.d.sync += bus.dat_r.eq(value)
                with m.Case(CSR_MAP.register("SCRATCH").offset // 4):
                    m.d.sync += bus.dat_r.eq(scratch)
                    with m.If(bus.we):
                        for byte in range(4):
                            with m.If(bus.sel[byte]):
                                m.d.sync += scratch[8 * byte:8 * byte + 8].eq(bus.dat_w[8 * byte:8 * byte + 8])
                with m.Case(CSR_MAP.register("CYCLES").offset // 4):
                    m.d.sync += bus.dat_r.eq(cycles)
                with m.Default():
                    m.d.sync += bus.dat_r.eq(0)
        return m
