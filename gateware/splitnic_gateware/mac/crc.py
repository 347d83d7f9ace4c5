"""CRC-32 of the Ethernet FCS, one byte per cycle.

Ref: IEEE Std 802.3-2018 §3.2.9 (frame check sequence).

The reflected CRC-32 (polynomial 0x04C11DB7, bit-reversed 0xEDB88320) is
linear over GF(2), so each bit of the next state is an XOR of some state bits
and some data bits.  Rather than hand-writing those equations, they are
derived at elaboration time from the reference byte step below, which the
tests check against :func:`zlib.crc32`.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from functools import reduce
from operator import xor

from amaranth.hdl import Cat, Value

__all__ = ["CRC_INIT", "CRC_RESIDUE", "crc32_byte_step", "crc32_next", "fcs_bytes"]

#: Register value at the start of a frame.
CRC_INIT = 0xFFFFFFFF
#: Register value after a frame *and its FCS* went through a good check.
CRC_RESIDUE = 0xDEBB20E3
_POLY_REFLECTED = 0xEDB88320


def crc32_byte_step(crc: int, byte: int) -> int:
    """Reference model: the CRC register after shifting in ``byte`` (LSB first)."""
    crc ^= byte
    for _ in range(8):
        crc = (crc >> 1) ^ (_POLY_REFLECTED if crc & 1 else 0)
    return crc


def fcs_bytes(crc: int) -> bytes:
    """The four FCS bytes to transmit for a CRC register value (first byte first)."""
    return (crc ^ 0xFFFFFFFF).to_bytes(4, "little")


def _taps() -> list[tuple[list[int], list[int]]]:
    # For each output bit: which state bits and which data bits feed it.
    taps = []
    for out_bit in range(32):
        state = [j for j in range(32) if crc32_byte_step(1 << j, 0) >> out_bit & 1]
        data = [k for k in range(8) if crc32_byte_step(0, 1 << k) >> out_bit & 1]
        taps.append((state, data))
    return taps


_TAPS = _taps()


def crc32_next(crc: Value, byte: Value) -> Value:
    """Amaranth expression: the CRC register after shifting in ``byte``."""
    byte = Value.cast(byte)
    if len(byte) < 8:
        byte = byte.as_unsigned()
    bits = []
    for state, data in _TAPS:
        terms = [crc[j] for j in state] + [byte[k] if k < len(byte) else 0 for k in data]
        bits.append(reduce(xor, terms))
    return Cat(*bits)
