"""The vocabulary the spec is written in: fields, registers, register arrays,
constants and packed little-endian structures.

Plain Python, no third-party imports: the driver, the generators, the gateware
and the tests all read the same objects.  Everything is immutable so a spec
cannot be changed by accident at run time.
"""

from __future__ import annotations

import hashlib
import struct as _struct
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from typing import Iterable, Iterator, Mapping

__all__ = [
    "Access", "Field", "Register", "RegisterArray", "RegisterMap",
    "Constant", "StructField", "Struct", "SpecError", "abi_text", "spec_fingerprint",
]

#: Metadata of a dataclass field that is prose (a description): the ABI
#: fingerprint leaves it out, so fixing a typo changes no hash.
_PROSE = {"abi": False}


def _doc() -> str:
    return field(metadata=_PROSE)  # type: ignore[return-value]


class SpecError(ValueError):
    """The spec contradicts itself (overlap, misalignment, bad width)."""


class Access(str, Enum):
    """How software may access a register."""
    RW = "rw"    #: read/write
    RO = "ro"    #: read-only; writes are ignored
    WO = "wo"    #: write-only; reads return 0
    W1C = "w1c"  #: read; writing 1 to a bit clears it
    RC = "rc"    #: read-only counter that wraps at 2**32


@dataclass(frozen=True)
class Field:
    """A bit field inside a 32-bit register."""
    name: str
    lsb: int
    width: int
    doc: str = _doc()
    reset: int = 0
    #: A self-clearing strobe: writing 1 starts an action, reads return 0.
    strobe: bool = False
    #: The named values of an enumerated field (LINK.SPEED's codes); the C
    #: header names each ``<REGISTER>_<FIELD>_<value name>``.
    values: tuple[Constant, ...] = ()

    def __post_init__(self) -> None:
        if not (0 <= self.lsb and self.width >= 1 and self.lsb + self.width <= 32):
            raise SpecError(f"field {self.name}: bits {self.lsb}+{self.width} do not fit in 32")
        if self.reset >> self.width:
            raise SpecError(f"field {self.name}: reset {self.reset:#x} wider than {self.width} bits")
        for v in self.values:
            if not 0 <= v.value < 1 << self.width:
                raise SpecError(f"field {self.name}: value {v.name} = {v.value} does not fit in {self.width} bits")
        check_unique((v.name for v in self.values), f"value of field {self.name}")
        check_unique((v.value for v in self.values), f"code of field {self.name}")

    def value(self, name: str) -> int:
        """The code of the named value ``name`` (e.g. ``LINK.SPEED``'s ``"1000"``)."""
        for v in self.values:
            if v.name == name:
                return v.value
        raise KeyError(f"field {self.name} has no value {name!r}; it has "
                       f"{', '.join(v.name for v in self.values) or 'no named values'}")

    @property
    def mask(self) -> int:
        """Value of the field's bits in place (e.g. ``0x0000ff00``)."""
        return ((1 << self.width) - 1) << self.lsb

    def get(self, reg_value: int) -> int:
        """Extract this field from a register value."""
        return (reg_value >> self.lsb) & ((1 << self.width) - 1)

    def put(self, value: int) -> int:
        """Place ``value`` in this field's bits; raises if it does not fit."""
        if value < 0 or value >> self.width:
            raise ValueError(f"{self.name} must fit in {self.width} bits, not {value!r}")
        return value << self.lsb


@dataclass(frozen=True)
class Register:
    """A 32-bit register at a byte offset inside its block."""
    name: str
    offset: int
    access: Access
    doc: str = _doc()
    fields: tuple[Field, ...] = ()

    def __post_init__(self) -> None:
        if self.offset % 4:
            raise SpecError(f"register {self.name}: offset {self.offset:#x} is not 32-bit aligned")
        used = 0
        for f in self.fields:
            if used & f.mask:
                raise SpecError(f"register {self.name}: field {f.name} overlaps another field")
            used |= f.mask

    @property
    def reset(self) -> int:
        """Value of the register after reset."""
        return sum(f.reset << f.lsb for f in self.fields)

    def field(self, name: str) -> Field:
        """The field called ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}; it has "
                       f"{', '.join(f.name for f in self.fields) or 'no fields'}")

    def pack(self, **values: int) -> int:
        """Build a register value from named field values."""
        return sum(self.field(k).put(v) for k, v in values.items())


@dataclass(frozen=True)
class RegisterArray:
    """``count`` copies of a group of registers, ``stride`` bytes apart.

    Used for per-queue blocks and the steering table.  Register offsets are
    relative to the start of one element.
    """
    name: str
    base: int
    count: int
    stride: int
    doc: str = _doc()
    registers: tuple[Register, ...]

    def __post_init__(self) -> None:
        if self.stride % 4 or self.base % 4:
            raise SpecError(f"array {self.name}: base and stride must be 32-bit aligned")
        for r in self.registers:
            if r.offset >= self.stride:
                raise SpecError(f"array {self.name}: {r.name} at {r.offset:#x} is outside the stride {self.stride:#x}")

    @property
    def size(self) -> int:
        """Bytes the whole array spans."""
        return self.count * self.stride

    def register(self, name: str) -> Register:
        """The register called ``name`` inside one element."""
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"array {self.name} has no register {name!r}")

    def offset(self, index: int, name: str) -> int:
        """Byte offset of register ``name`` of element ``index``."""
        if not 0 <= index < self.count:
            raise IndexError(f"{self.name} index must be 0..{self.count - 1}, not {index}")
        return self.base + index * self.stride + self.register(name).offset


@dataclass(frozen=True)
class Constant:
    """A named number that both sides must agree on."""
    name: str
    value: int
    doc: str = _doc()


@dataclass(frozen=True)
class RegisterMap:
    """The whole CSR space: single registers plus register arrays."""
    name: str
    doc: str = _doc()
    registers: tuple[Register, ...]
    arrays: tuple[RegisterArray, ...]
    size: int

    def __post_init__(self) -> None:
        spans = [(r.offset, r.offset + 4, r.name) for r in self.registers]
        spans += [(a.base, a.base + a.size, a.name) for a in self.arrays]
        spans.sort()
        for (s0, e0, n0), (s1, _e1, n1) in zip(spans, spans[1:]):
            if s1 < e0:
                raise SpecError(f"{n1} at {s1:#x} overlaps {n0} ({s0:#x}..{e0:#x})")
        if spans and spans[-1][1] > self.size:
            raise SpecError(f"{spans[-1][2]} ends past the map size {self.size:#x}")

    def register(self, name: str) -> Register:
        """The single (non-array) register called ``name``."""
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"no register {name!r} in {self.name}")

    def array(self, name: str) -> RegisterArray:
        """The register array called ``name``."""
        for a in self.arrays:
            if a.name == name:
                return a
        raise KeyError(f"no register array {name!r} in {self.name}")

    def all_registers(self) -> Iterator[tuple[str, int, Register]]:
        """Yield ``(full_name, absolute_offset, register)`` for every register, in address order."""
        items: list[tuple[str, int, Register]] = [(r.name, r.offset, r) for r in self.registers]
        for a in self.arrays:
            for i in range(a.count):
                for r in a.registers:
                    items.append((f"{a.name}{i}_{r.name}", a.base + i * a.stride + r.offset, r))
        return iter(sorted(items, key=lambda t: t[1]))


_STRUCT_CODES = {8: "B", 16: "H", 32: "I", 64: "Q"}


@dataclass(frozen=True)
class StructField:
    """One naturally aligned little-endian member of a packed structure.

    Members are whole bytes (8/16/32/64 bits); flag bits inside a member are
    described by ``bits``.
    """
    name: str
    width: int
    doc: str = _doc()
    bits: tuple[Field, ...] = ()

    def __post_init__(self) -> None:
        if self.width not in _STRUCT_CODES:
            raise SpecError(f"member {self.name}: width must be 8, 16, 32 or 64, not {self.width}")

    def bit(self, name: str) -> Field:
        """The flag field called ``name`` inside this member."""
        for b in self.bits:
            if b.name == name:
                return b
        raise KeyError(f"member {self.name} has no bit field {name!r}")


@dataclass(frozen=True)
class Struct:
    """A packed, little-endian structure in DMA memory (descriptors, completions)."""
    name: str
    doc: str = _doc()
    members: tuple[StructField, ...]
    #: Natural alignment of the whole struct; also its size.
    size: int = field(default=0)

    def __post_init__(self) -> None:
        offset = 0
        for m in self.members:
            if offset % (m.width // 8):
                raise SpecError(f"{self.name}.{m.name} at byte {offset} is not naturally aligned")
            offset += m.width // 8
        if self.size and self.size != offset:
            raise SpecError(f"{self.name}: members add up to {offset} bytes, declared {self.size}")
        object.__setattr__(self, "size", offset)

    @property
    def format(self) -> str:
        """Value of the :mod:`struct` format string (little-endian, no padding)."""
        return "<" + "".join(_STRUCT_CODES[m.width] for m in self.members)

    def offset_of(self, name: str) -> int:
        """Byte offset of member ``name``."""
        offset = 0
        for m in self.members:
            if m.name == name:
                return offset
            offset += m.width // 8
        raise KeyError(f"{self.name} has no member {name!r}")

    def member(self, name: str) -> StructField:
        """The member called ``name``."""
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(f"{self.name} has no member {name!r}")

    def pack(self, **values: int) -> bytes:
        """Pack named member values (missing members are 0)."""
        unknown = set(values) - {m.name for m in self.members}
        if unknown:
            raise KeyError(f"{self.name} has no member(s) {', '.join(sorted(unknown))}")
        return _struct.pack(self.format, *(values.get(m.name, 0) for m in self.members))

    def unpack(self, data: bytes | memoryview) -> dict[str, int]:
        """Unpack ``size`` bytes into a dict of member values."""
        return dict(zip((m.name for m in self.members), _struct.unpack(self.format, data)))


def abi_text(obj: object) -> str:
    """The canonical text of what a peer depends on in ``obj``: every value but the prose.

    Names, offsets, widths, access, reset values, strobes, struct members
    and constant values are in it; ``doc`` strings are not (fields marked
    prose), nor attributes left at their default, so that giving the model a
    new optional attribute changes no hash.  ``obj`` is a spec object, a
    tuple of them, or a plain number or name.
    """
    if is_dataclass(obj) and not isinstance(obj, type):
        items = (f"{f.name}={abi_text(getattr(obj, f.name))}" for f in fields(obj)
                 if f.metadata.get("abi", True) and getattr(obj, f.name) != f.default)
        return f"{type(obj).__name__}({', '.join(items)})"
    if isinstance(obj, Enum):
        return abi_text(obj.value)
    if isinstance(obj, (tuple, list)):
        return "(" + ", ".join(abi_text(o) for o in obj) + ")"
    if isinstance(obj, (bool, int, str)):
        return repr(obj)
    raise TypeError(f"spec fingerprint: cannot hash a {type(obj).__name__}: {obj!r}")


def spec_fingerprint(parts: Iterable[object]) -> int:
    """A 32-bit hash of the ABI of the spec objects ``parts`` (:func:`abi_text`).

    A change a peer could notice (a name, an offset, a width, a reset value,
    a member, a constant) changes it; a change of wording does not.
    """
    digest = hashlib.sha256("\n".join(abi_text(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def check_unique(names: Mapping[str, object] | Iterable[str | int], what: str) -> None:
    """Raise :class:`SpecError` if ``names`` has duplicates."""
    seen: set[str | int] = set()
    for n in names:
        if n in seen:
            raise SpecError(f"duplicate {what} {n!r}")
        seen.add(n)
