"""The kernel/user interface of the stub module splitnic.ko: ioctls, shared area, rings.

Ref: docs/registers.md and hostdrv/kmod/splitnic_tunnel.h are generated from
this file (``make generate``); the module and the Python ``stub`` backend of
``KernelTunnel`` both use them.

One process opens ``/dev/splitnic``; its file handle then owns one network
interface (``snicN``) and one shared area holding two rings:

* **k2u** (kernel to user): frames the kernel transmitted on the interface.
  The module produces, the user-space driver consumes.
* **u2k** (user to kernel): frames the user-space driver delivers to the
  kernel, which receives them on the interface (NAPI).

Order of calls on a fresh handle: ``IOC_INFO`` (check ``spec_hash``), then
``IOC_CREATE`` or ``IOC_ATTACH``, then ``IOC_SETUP_RINGS``, then ``mmap`` of
exactly ``area_size`` bytes at offset 0 (``MAP_SHARED``), then
``IOC_SET_CARRIER``.  Calls out of order fail with ``ENODEV`` (no interface
attached) or ``ENXIO`` (no rings yet); a second interface or second ring set on
the same handle fails with ``EBUSY``.  Every argument is checked: a bad one
fails with ``EINVAL`` and changes nothing.

Shared area layout (offsets are also returned by ``IOC_SETUP_RINGS``):

* offset 0: the control page (``CTRL_SIZE`` bytes) holding the four ring
  indices at the ``CTRL_*`` offsets, each a little-endian 32-bit word on its own
  cache line;
* ``k2u_desc``: 2**k2u_log2 ``Desc`` entries; ``u2k_desc``: 2**u2k_log2 entries
  (each array starts page aligned);
* ``k2u_data`` and ``u2k_data``: one ``slot_size`` byte slot per entry,
  page aligned.  The frame of entry ``i`` starts at byte 0 of slot
  ``i & (entries - 1)``.

Ring protocol: indices are free-running 32-bit counters.  The producer writes
the frame and its ``Desc``, then advances ``PROD``; the consumer reads entries
``CONS .. PROD - 1``, then advances ``CONS``.  Each side keeps its own copy of
the index it owns, so the module never trusts a value it reads back: a user
index more than one ring size away from the module's is reported (rate
limited), counted as an error and ignored.  After producing u2k entries, user
space calls ``IOC_KICK`` (one call per batch) to schedule NAPI.  ``poll()``
reports ``POLLIN`` while k2u holds entries and ``POLLOUT`` while u2k has room;
``poll()`` and ``IOC_KICK`` also restart the interface's transmit queue, which
the module stops while k2u is full.

When the handle is released (the process exits or dies) the interface goes
carrier-down, the rings and their frames are freed and the interface stays,
so a new process can ``IOC_ATTACH`` it by name.  ``rmmod`` removes every
interface.
"""

from __future__ import annotations

from . import nic
from .model import Constant, Struct, StructField, check_unique, spec_fingerprint

TITLE = "splitnic kernel tunnel interface (splitnic.ko uapi)"
#: Prefix of every C name generated from this module.
PREFIX = "SNIC_TUN"
#: Heading of the structure section in docs/registers.md.
STRUCTS_TITLE = "ioctl arguments and ring entries"

VERSION_MAJOR = 0
VERSION_MINOR = 1

# --------------------------------------------------------------------------
# ioctl numbers, computed here so that C, cffi and Python see literals
# --------------------------------------------------------------------------

#: Bit layout of an ioctl request number (asm-generic/ioctl.h, as on x86 and arm64).
_IOC_NRSHIFT, _IOC_TYPESHIFT, _IOC_SIZESHIFT, _IOC_DIRSHIFT = 0, 8, 16, 30
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2
_IOC_SIZEBITS = 14

#: ioctl type byte.  Unused in Documentation/userspace-api/ioctl/ioctl-number.rst (6.1).
IOC_MAGIC = 0xB9


def ioc(direction: int, nr: int, size: int) -> int:
    """The ioctl request number ``_IOC(direction, IOC_MAGIC, nr, size)``."""
    if not 0 <= size < 1 << _IOC_SIZEBITS:
        raise ValueError(f"ioctl argument size must be below {1 << _IOC_SIZEBITS}, not {size}")
    return ((direction << _IOC_DIRSHIFT) | (size << _IOC_SIZESHIFT)
            | (IOC_MAGIC << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT))

# --------------------------------------------------------------------------
# Structures
# --------------------------------------------------------------------------

INFO = Struct("Info", "IOC_INFO result: what the loaded module implements.", (
    StructField("version", 32, "uapi version: major in bits 31..16, minor in bits 15..0."),
    StructField("spec_hash", 32, "SPEC_HASH of this interface spec the module was built from; "
                "user space refuses a mismatch."),
    StructField("nic_spec_hash", 32, "SNIC_SPEC_HASH of the NIC spec the module was built beside; for "
                "bug reports only: the module touches no NIC register, so user space does not check it."),
    StructField("features", 32, "Reserved, 0."),
))

IF_REQ = Struct("IfReq", "IOC_CREATE / IOC_ATTACH argument (in/out).", (
    StructField("name_lo", 64, "Interface name bytes 0..7, byte 0 in bits 7..0, NUL padded. "
                "CREATE: the requested name, or empty for 'snic%d'; a '%d' is replaced by the "
                "first free number. ATTACH: the name of an existing splitnic interface. "
                "Out: the interface's name."),
    StructField("name_hi", 64, "Interface name bytes 8..15; byte 15 must be NUL."),
    StructField("mac", 64, "MAC address, byte 0 (first on the wire) in bits 7..0, bits 63..48 zero. "
                "0: CREATE picks a random address, ATTACH keeps the current one. "
                "Multicast or broadcast addresses are refused. Out: the address."),
    StructField("mtu", 32, "MTU, MTU_MIN..MTU_MAX; 0: CREATE uses MTU_DEFAULT, ATTACH keeps it. "
                "Out: the MTU."),
    StructField("ifindex", 32, "Out: the interface index."),
    StructField("flags", 32, "Reserved, must be 0."),
    StructField("reserved", 32, "Must be 0."),
))

RING_REQ = Struct("RingReq", "IOC_SETUP_RINGS argument (in/out).", (
    StructField("k2u_log2", 32, "In: log2 of the k2u entry count, RING_LOG2_MIN..RING_LOG2_MAX."),
    StructField("u2k_log2", 32, "In: log2 of the u2k entry count, RING_LOG2_MIN..RING_LOG2_MAX."),
    StructField("slot_size", 32, "In: bytes per frame slot, a power of two SLOT_SIZE_MIN..SLOT_SIZE_MAX "
                "that holds MTU + FRAME_OVERHEAD bytes."),
    StructField("flags", 32, "Reserved, must be 0."),
    StructField("area_size", 64, "Out: bytes to mmap at offset 0 (at most AREA_MAX)."),
    StructField("k2u_desc", 32, "Out: offset of the k2u Desc array."),
    StructField("u2k_desc", 32, "Out: offset of the u2k Desc array."),
    StructField("k2u_data", 32, "Out: offset of the k2u frame slots."),
    StructField("u2k_data", 32, "Out: offset of the u2k frame slots."),
))

DESC = Struct("Desc", "A ring entry: the frame in the entry's slot.", (
    StructField("len", 32, "Frame length in bytes, FRAME_MIN..min(slot_size, MTU + FRAME_OVERHEAD), "
                "no FCS. The module drops (and counts as rx_length_errors) a u2k entry outside it."),
    StructField("flags", 32, "Reserved, must be 0; the module drops a u2k entry with flags set."),
))

STRUCTS: tuple[Struct, ...] = (INFO, IF_REQ, RING_REQ, DESC)

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

_ETH_HLEN = 14
_VLAN_HLEN = 4
_U32 = 4
_PAGE = 4096

#: Largest MTU: the NIC's jumbo frame limit less the Ethernet header and FCS.
MTU_MAX = next(c.value for c in nic.CONSTANTS if c.name == "MAX_FRAME_JUMBO") - _ETH_HLEN - \
    next(c.value for c in nic.CONSTANTS if c.name == "FCS_LEN")

CONSTANTS: tuple[Constant, ...] = (
    Constant("VERSION", (VERSION_MAJOR << 16) | VERSION_MINOR, "Info.version of this spec."),
    Constant("IOC_MAGIC", IOC_MAGIC, "ioctl type byte."),
    Constant("IOC_INFO", ioc(_IOC_READ, 0, INFO.size), "_IOR: read struct Info. Any handle."),
    Constant("IOC_CREATE", ioc(_IOC_READ | _IOC_WRITE, 1, IF_REQ.size),
             "_IOWR struct IfReq: create an interface (carrier down) and attach it to this handle. "
             "EEXIST: the name is taken; EBUSY: the handle already has an interface."),
    Constant("IOC_ATTACH", ioc(_IOC_READ | _IOC_WRITE, 2, IF_REQ.size),
             "_IOWR struct IfReq: attach an existing splitnic interface by name, optionally setting "
             "MAC and MTU. ENODEV: no splitnic interface of that name; EBUSY: another handle has it."),
    Constant("IOC_DESTROY", ioc(_IOC_NONE, 3, 0), "_IO: remove this handle's interface."),
    Constant("IOC_SETUP_RINGS", ioc(_IOC_READ | _IOC_WRITE, 4, RING_REQ.size),
             "_IOWR struct RingReq: allocate the shared area and connect it to the interface."),
    Constant("IOC_SET_CARRIER", ioc(_IOC_WRITE, 5, _U32),
             "_IOW u32: 1 carrier up (needs rings), 0 carrier down; anything else is EINVAL."),
    Constant("IOC_KICK", ioc(_IOC_NONE, 6, 0),
             "_IO: u2k has new entries (schedule NAPI); also restarts a stopped transmit queue."),
    Constant("RING_LOG2_MIN", 4, "Smallest ring: 16 entries."),
    Constant("RING_LOG2_MAX", 12, "Largest ring: 4096 entries."),
    Constant("SLOT_SIZE_MIN", 2048, "Smallest frame slot."),
    Constant("SLOT_SIZE_MAX", 16384, "Largest frame slot."),
    Constant("AREA_MAX", 64 << 20, "Largest shared area; a ring request needing more is EINVAL."),
    Constant("CTRL_SIZE", _PAGE, "Bytes of the control page at the start of the area."),
    Constant("CTRL_K2U_PROD", 0, "Control page offset of the k2u producer index (written by the module)."),
    Constant("CTRL_K2U_CONS", 64, "Control page offset of the k2u consumer index (written by user space)."),
    Constant("CTRL_U2K_PROD", 128, "Control page offset of the u2k producer index (written by user space)."),
    Constant("CTRL_U2K_CONS", 192, "Control page offset of the u2k consumer index (written by the module)."),
    Constant("AREA_ALIGN", _PAGE, "Alignment of each descriptor array and slot array in the area."),
    Constant("FRAME_MIN", _ETH_HLEN, "Shortest frame user space may deliver: an Ethernet header."),
    Constant("FRAME_OVERHEAD", _ETH_HLEN + _VLAN_HLEN, "Bytes a frame may carry beyond the MTU: "
             "Ethernet header and one VLAN tag."),
    Constant("MTU_MIN", 68, "Smallest MTU (IPv4 minimum)."),
    Constant("MTU_DEFAULT", 1500, "MTU of a new interface when IfReq.mtu is 0."),
    Constant("MTU_MAX", MTU_MAX, "Largest MTU: the NIC's MAX_FRAME_JUMBO less header and FCS."),
)

check_unique((c.name for c in CONSTANTS), "constant")


def constant(name: str) -> int:
    """Value of the tunnel constant called ``name``."""
    for c in CONSTANTS:
        if c.name == name:
            return c.value
    raise KeyError(f"no tunnel constant {name!r}")


def _align(value: int) -> int:
    return (value + _PAGE - 1) & ~(_PAGE - 1)


def area_layout(k2u_log2: int, u2k_log2: int, slot_size: int) -> dict[str, int]:
    """Offsets and size of the shared area for a ring request, as the module computes them.

    Returns a dict with the ``RingReq`` out members (``area_size``,
    ``k2u_desc``, ``u2k_desc``, ``k2u_data``, ``u2k_data``).
    """
    k2u_desc = _PAGE
    u2k_desc = k2u_desc + _align((1 << k2u_log2) * DESC.size)
    k2u_data = u2k_desc + _align((1 << u2k_log2) * DESC.size)
    u2k_data = k2u_data + (1 << k2u_log2) * slot_size
    area_size = u2k_data + (1 << u2k_log2) * slot_size
    return {"area_size": area_size, "k2u_desc": k2u_desc, "u2k_desc": u2k_desc,
            "k2u_data": k2u_data, "u2k_data": u2k_data}


#: 32-bit fingerprint of this interface's ABI: its constants and structures, not
#: their prose, and not the NIC's register map (the module touches no NIC
#: register, so a NIC change must not make user space refuse a loaded module).
SPEC_HASH: int = spec_fingerprint((CONSTANTS, STRUCTS))
