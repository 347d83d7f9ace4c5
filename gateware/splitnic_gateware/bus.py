"""Bus signatures shared by the NIC's blocks.

Ref: Wishbone B4 (OpenCores), §3.2 classic cycles and §4.3 incrementing bursts.

The NIC's host side is two Wishbone buses, 32 data bits, word addressed, as
LiteX uses them: a CSR slave (the driver's registers) and a DMA master (host or
NIC-local memory).  amaranth-soc has no release on PyPI, so the signature is
declared here, once.
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WishboneSignature", "CTI_CLASSIC", "CTI_INCR", "CTI_END"]

#: Cycle type identifiers (Wishbone B4 §4.3.1).
CTI_CLASSIC = 0b000
CTI_INCR = 0b010
CTI_END = 0b111


class WishboneSignature(wiring.Signature):
    """A 32-bit, word-addressed Wishbone bus, seen from the initiator.

    ``burst`` adds ``cti``/``bte`` for incrementing bursts (the DMA master uses
    them; the CSR slave does not need them).
    """

    def __init__(self, addr_width: int, *, burst: bool = False) -> None:
        if not isinstance(addr_width, int) or addr_width < 1:
            raise TypeError(f"addr_width must be a positive integer, not {addr_width!r}")
        self.addr_width = addr_width
        self.burst = burst
        members = {
            "adr": Out(addr_width),
            "dat_w": Out(32),
            "dat_r": In(32),
            "sel": Out(4),
            "cyc": Out(1),
            "stb": Out(1),
            "we": Out(1),
            "ack": In(1),
        }
        if burst:
            members["cti"] = Out(3)
            members["bte"] = Out(2)
        super().__init__(members)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, WishboneSignature) and other.addr_width == self.addr_width
                and other.burst == self.burst)

    def __repr__(self) -> str:
        return f"WishboneSignature({self.addr_width}, burst={self.burst})"
