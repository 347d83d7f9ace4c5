"""splitnic's register map and DMA formats, defined once (plain Python).

Everything else is derived from here: the Amaranth CSR block, the driver's
accessors, the C headers for the stub module and the firmware, and
docs/registers.md (see :mod:`splitnic_spec.generate`).
"""

from .model import (Access, Constant, Field, Register, RegisterArray, RegisterMap,
                    SpecError, Struct, StructField)
from .nic import (COMPLETION, CONSTANTS, CSR_MAP, DESCRIPTOR, ID_MAGIC_VALUE, INDEX_MASK, LINK_SPEED_MBPS,
                  NUM_RX_QUEUES, NUM_STEER_ENTRIES, NUM_TX_QUEUES, SPEC_HASH, STRUCTS, VERSION_MAJOR,
                  VERSION_MINOR, completion_phase, ring_next, ring_slot, ring_used)


def constant(name: str) -> int:
    """Value of the NIC spec constant called ``name``."""
    for c in CONSTANTS:
        if c.name == name:
            return c.value
    raise KeyError(f"no spec constant {name!r}")


__all__ = [
    "Access", "Constant", "Field", "Register", "RegisterArray", "RegisterMap", "SpecError",
    "Struct", "StructField", "COMPLETION", "CONSTANTS", "CSR_MAP", "DESCRIPTOR",
    "ID_MAGIC_VALUE", "INDEX_MASK", "LINK_SPEED_MBPS", "NUM_RX_QUEUES", "NUM_STEER_ENTRIES", "NUM_TX_QUEUES",
    "SPEC_HASH", "STRUCTS", "VERSION_MAJOR", "VERSION_MINOR", "completion_phase", "constant", "ring_next",
    "ring_slot", "ring_used",
]
