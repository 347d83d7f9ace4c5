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

Configuration toward user space: the interface's MAC address, MTU, flags
(``UP``, ``PROMISC``, ``ALLMULTI``) and its unicast and multicast address
lists are the kernel's (``ip link set``, IPv6 and IGMP joins).  Each change
bumps the interface's ``Config.generation``; ``poll()`` reports ``POLLPRI``
while the generation differs from the one this handle last read with
``IOC_GET_CONFIG`` (so the first poll after ``IOC_CREATE``/``IOC_ATTACH``
reports it too).  The driver then programs the NIC from what it read.

The NIC's counters toward the kernel's tools: the driver calls
``IOC_PUBLISH`` (about once a second) with every counter of
``NIC_COUNTERS`` (``ethtool -S`` shows them under those names), the link
speed and duplex of the NIC's LINK register (``ethtool``), and the firmware
version and bus info (``ethtool -i``).  ``ip -s link`` never shows the
NIC's totals (they include the fast-path applications' queues and restart
with the NIC): it counts what the interface itself carried, dropped or
refused, and those counters only grow, across driver deaths and re-attaches.

Steering (ethtool -N/-n): the driver owns the NIC's steering table, whichever
front end changes it (``splitnic rules`` or ethtool).  It publishes the table
with ``IOC_PUBLISH_RULES`` after every change; ``ethtool -n`` lists it.
``ethtool -N`` is checked against that table (match fields the NIC has, an
action below ``rx_queues``, room in the table), queued in the module as a
``RuleReq`` and reported with ``POLLPRI``; the driver takes it with
``IOC_TAKE_RULE_REQ``, applies it as ``splitnic rules`` would and publishes
the table again with the request's ``seq`` in ``done``.  Until then
``ethtool -n`` shows the table as the queued requests will leave it.  With
no table published (no driver, or a driver without a NIC) ethtool -N/-n are
refused.

When the handle is released (the process exits or dies) the interface goes
carrier-down, the rings and their frames are freed and the interface stays,
so a new process can ``IOC_ATTACH`` it by name.  ``ip link del`` removes an
interface (its handle gets ``POLLHUP`` and ``ENODEV``), and so does the
deletion of its network namespace: an interface never moves to another
namespace when its own dies.  ``ip link add type splitnic`` is refused
(interfaces come from ``IOC_CREATE``).  ``rmmod`` removes every interface.
"""

from __future__ import annotations

import fnmatch

from . import nic
from .model import Access, Constant, Field, Struct, StructField, check_unique, spec_fingerprint

TITLE = "splitnic kernel tunnel interface (splitnic.ko uapi)"
#: Prefix of every C name generated from this module.
PREFIX = "SNIC_TUN"
#: Heading of the structure section in docs/registers.md.
STRUCTS_TITLE = "ioctl arguments and ring entries"

VERSION_MAJOR = 0
VERSION_MINOR = 4

# --------------------------------------------------------------------------
# ioctl numbers, computed here so that C, cffi and Python see literals
# --------------------------------------------------------------------------

#: Bit layout of an ioctl request number (asm-generic/ioctl.h, as on x86 and arm64).
_IOC_NRSHIFT, _IOC_TYPESHIFT, _IOC_SIZESHIFT, _IOC_DIRSHIFT = 0, 8, 16, 30
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2
_IOC_SIZEBITS = 14

#: ioctl type byte.  Unused in Documentation/userspace-api/ioctl/ioctl-number.rst (6.1).
IOC_MAGIC = 0xB9


#: ioctl directions as linux/ioctl.h's macros name them.
IOC_MACROS = {_IOC_NONE: "_IO", _IOC_WRITE: "_IOW", _IOC_READ: "_IOR", _IOC_READ | _IOC_WRITE: "_IOWR"}


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

#: Bytes of each string of Publish (ethtool's ETHTOOL_FWVERS_LEN and ETHTOOL_BUSINFO_LEN).
TEXT_LEN = 32


def _text_members(name: str, what: str) -> tuple[StructField, ...]:
    words = TEXT_LEN // 8
    first = StructField(f"{name}0", 64, f"{what}: bytes 0..7 of a NUL-terminated printable ASCII string of at "
                        f"most {TEXT_LEN - 1} characters, byte 0 in bits 7..0, NUL padded; {name}1..{words - 1} "
                        "hold the following bytes. Empty: not known.")
    return (first,) + tuple(StructField(f"{name}{i}", 64, f"{what}: bytes {8 * i}..{8 * i + 7}.")
                            for i in range(1, words))


_CONFIG_FLAGS = (
    Field("UP", 0, 1, "The interface is administratively up (IFF_UP)."),
    Field("PROMISC", 1, 1, "Receive every frame (IFF_PROMISC; also set while secondary unicast addresses exist)."),
    Field("ALLMULTI", 2, 1, "Receive every multicast frame (IFF_ALLMULTI)."),
    Field("TRUNCATED", 3, 1, "More addresses than addrs_max: only the first addrs_max were written; "
          "receive every multicast frame or ask again with a larger buffer."),
)

CONFIG = Struct("Config", "IOC_GET_CONFIG argument (in/out): the interface as the kernel configured it.", (
    StructField("generation", 32, "Out: the interface's configuration generation; it changes with every change "
                "of the MAC address, MTU, flags or address lists. poll() reports POLLPRI while it differs from "
                "the one this handle last read."),
    StructField("flags", 32, "Out: Config flags.", _CONFIG_FLAGS),
    StructField("mtu", 32, "Out: the MTU."),
    StructField("addrs_max", 32, "In: entries of the buffer at addrs, 0..ADDR_MAX."),
    StructField("uc_count", 32, "Out: secondary unicast addresses (written first at addrs)."),
    StructField("mc_count", 32, "Out: multicast addresses (written after the unicast ones)."),
    StructField("mac", 64, "Out: the MAC address, encoded as in IfReq.mac."),
    StructField("addrs", 64, "In: user address of addrs_max 64-bit words, each a MAC address encoded as in "
                "IfReq.mac (0 with addrs_max 0: counts only)."),
    StructField("rx_usecs", 32, "Out: the receive interrupt moderation `ethtool -C rx-usecs` asked for, in us, "
                "0..RX_USECS_MAX; RX_USECS_NONE: never asked (the driver keeps its own). The driver programs the "
                "NIC's IRQ_COALESCE from it and publishes what it set (Publish.rx_usecs)."),
    StructField("reserved", 32, "Must be 0."),
))

_DUPLEX_DOC = "0: not known, 1: half, 2: full."

PUBLISH = Struct("Publish", "IOC_PUBLISH argument (in): the NIC as user space sees it, for ip, ethtool.", (
    StructField("flags", 32, "Reserved, must be 0."),
    StructField("count", 32, "Words at counters: COUNTERS (the NIC's counters, in NIC_COUNTERS order) or 0 "
                "(keep the counters published before)."),
    StructField("counters", 64, "In: user address of count 64-bit counters."),
    StructField("speed", 32, "Link speed in Mb/s from the NIC's LINK register, 0: not known; at most SPEED_MAX."),
    StructField("duplex", 32, f"Link duplex from the NIC's LINK register: {_DUPLEX_DOC}"),
    StructField("rx_usecs", 32, "The NIC's receive interrupt moderation now, in us (ethtool -c), "
                "0..RX_USECS_MAX; RX_USECS_NONE: not known (ethtool -c then shows what -C asked for)."),
    StructField("rx_ring", 32, "Entries of the NIC's RX queue 0 ring, the one snic0's frames arrive in "
                "(ethtool -g): a power of two, the NIC spec's 2**RING_LOG2_MIN..ring_max; 0: not known (ethtool -g then shows "
                "the tunnel's rings)."),
    StructField("tx_ring", 32, "Entries of the NIC's TX queue 0 ring (ethtool -g), as rx_ring."),
    StructField("ring_max", 32, "The NIC's largest ring, a power of two up to the NIC spec's 2**RING_LOG2_MAX; 0 with "
                "rx_ring and tx_ring 0."),
    StructField("rx_queues", 32, "The NIC's RX queues, 1..RX_QUEUES_MAX (ethtool -l; queue 0 is snic0's, "
                "the others the fast-path applications'); 0: not known."),
    StructField("tx_queues", 32, "The NIC's TX queues, 1..TX_QUEUES_MAX, as rx_queues; 0 with rx_queues 0."),
) + _text_members("fw_version", "Firmware version (ethtool -i)") + _text_members("bus_info", "Bus info (ethtool -i)"))

_RULE_FLAGS = (
    Field("MATCH_DMAC", 0, 1, "dmac is compared."),
    Field("MATCH_ETHERTYPE", 1, 1, "ethertype is compared."),
    Field("MATCH_IP_PROTO", 2, 1, "ip_proto is compared (IPv4 protocol or IPv6 next header)."),
    Field("MATCH_L4_DPORT", 3, 1, "dport is compared (TCP and UDP only)."),
)


def _rule_members(what: str) -> tuple[StructField, ...]:
    """A steering rule as the NIC's STEER entry holds it (docs/registers.md, STEER)."""
    return (
        StructField("location", 32, f"{what} in the NIC's steering table, 0..RULES_MAX-1; "
                    "the lowest matching entry wins, and removing a rule moves every later one up an entry "
                    "(as `splitnic rules remove`)."),
        StructField("flags", 32, "Which match values are compared (Rule flags); none: every frame.", _RULE_FLAGS),
        StructField("queue", 32, "The NIC's RX queue the frames go to (ethtool's action): 0 the kernel's "
                    "(this interface), 1.. a fast-path application's."),
        StructField("ethertype", 32, "Ethertype, 0..0xFFFF."),
        StructField("ip_proto", 32, "IP protocol, 0..255."),
        StructField("dport", 32, "TCP/UDP destination port, 0..0xFFFF."),
        StructField("dmac", 64, "Destination MAC address, encoded as in IfReq.mac."),
    )


RULE = Struct("Rule", "An entry of IOC_PUBLISH_RULES' table: a steering rule in force on the NIC.",
              _rule_members("The rule's entry"))

RULE_TABLE = Struct("RuleTable", "IOC_PUBLISH_RULES argument (in): the NIC's steering table as the driver "
                    "holds it, whichever front end (`splitnic rules`, ethtool -N) changed it.", (
    StructField("flags", 32, "Reserved, must be 0."),
    StructField("count", 32, "Rules at rules, 0..capacity; rule i has location i."),
    StructField("capacity", 32, "Entries of the NIC's steering table, 0..RULES_MAX; 0: no steering table "
                "(ethtool -N is refused)."),
    StructField("rx_queues", 32, "The NIC's RX queues, 1..RX_QUEUES_MAX: an ethtool action must be below."),
    StructField("done", 32, "RuleReq.seq of the last request the driver has handled (applied or refused); "
                "the module forgets the requests up to it."),
    StructField("reserved", 32, "Must be 0."),
    StructField("rules", 64, "In: user address of count Rule entries."),
))

RULE_REQ = Struct("RuleReq", "IOC_TAKE_RULE_REQ result: a change of the steering table ethtool asked for.", (
    StructField("seq", 32, "The request's number, from 1, growing; the driver reports it in "
                "RuleTable.done once handled."),
    StructField("op", 32, "RULE_ADD: append the rule (its location is the table's length with the "
                "requests before it applied); RULE_DEL: remove the rule at location (the rule it "
                "had when ethtool asked: the driver refuses if the table changed)."),
) + _rule_members("RULE_ADD: the entry ethtool was told; RULE_DEL: the entry to remove"))

STRUCTS: tuple[Struct, ...] = (INFO, IF_REQ, RING_REQ, DESC, CONFIG, PUBLISH, RULE, RULE_TABLE, RULE_REQ)

# --------------------------------------------------------------------------
# The NIC's counters as the kernel's tools show them
# --------------------------------------------------------------------------


def _nic_counters() -> tuple[str, ...]:
    """Every counter of the NIC's register map, named as ``splitnic stats`` names them, in address order.

    MAC statistics (``STAT_RX_OK`` -> ``rx_ok``), then per-queue
    ``rxq<n>_packets``/``_bytes``/``_drops``, ``txq<n>_...`` and steering
    ``steer<n>_hits``, for every instance the register map has room for.
    """
    regs = [(r.name.removeprefix("STAT_").lower(), r.offset) for r in nic.CSR_MAP.registers
            if r.name.startswith("STAT_") and r.access is Access.RC]
    for arr in nic.CSR_MAP.arrays:
        for q in range(arr.count):
            for r in arr.registers:
                if r.access is Access.RC:
                    regs.append((f"{arr.name.lower()}{q}_{r.name.lower()}", arr.base + q * arr.stride + r.offset))
    return tuple(name for name, _ in sorted(regs, key=lambda t: t[1]))


#: The NIC's counters, in IOC_PUBLISH order; ``ethtool -S`` shows them under these names.
NIC_COUNTERS: tuple[str, ...] = _nic_counters()
check_unique(NIC_COUNTERS, "NIC counter")


def _matching(*patterns: str) -> tuple[str, ...]:
    found = tuple(c for c in NIC_COUNTERS if any(fnmatch.fnmatchcase(c, p) for p in patterns))
    if not found:
        raise ValueError(f"no NIC counter matches {patterns}")
    return found


# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

#: Every ioctl: (constant name, direction, number, argument: a Struct, "u32" or None).
IOCTLS: tuple[tuple[str, int, int, Struct | str | None], ...] = (
    ("IOC_INFO", _IOC_READ, 0, INFO),
    ("IOC_CREATE", _IOC_READ | _IOC_WRITE, 1, IF_REQ),
    ("IOC_ATTACH", _IOC_READ | _IOC_WRITE, 2, IF_REQ),
    ("IOC_DESTROY", _IOC_NONE, 3, None),
    ("IOC_SETUP_RINGS", _IOC_READ | _IOC_WRITE, 4, RING_REQ),
    ("IOC_SET_CARRIER", _IOC_WRITE, 5, "u32"),
    ("IOC_KICK", _IOC_NONE, 6, None),
    ("IOC_GET_CONFIG", _IOC_READ | _IOC_WRITE, 7, CONFIG),
    ("IOC_PUBLISH", _IOC_WRITE, 8, PUBLISH),
    ("IOC_PUBLISH_RULES", _IOC_WRITE, 9, RULE_TABLE),
    ("IOC_TAKE_RULE_REQ", _IOC_READ, 10, RULE_REQ),
)


def _ioc(name: str) -> int:
    for n, direction, nr, arg in IOCTLS:
        if n == name:
            size = arg.size if isinstance(arg, Struct) else 4 if arg == "u32" else 0
            return ioc(direction, nr, size)
    raise KeyError(name)


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
    Constant("IOC_INFO", _ioc("IOC_INFO"), "_IOR: read struct Info. Any handle."),
    Constant("IOC_CREATE", _ioc("IOC_CREATE"),
             "_IOWR struct IfReq: create an interface (carrier down) and attach it to this handle. "
             "EEXIST: the name is taken; EBUSY: the handle already has an interface."),
    Constant("IOC_ATTACH", _ioc("IOC_ATTACH"),
             "_IOWR struct IfReq: attach an existing splitnic interface by name, optionally setting "
             "MAC and MTU. ENODEV: no splitnic interface of that name; EBUSY: another handle has it."),
    Constant("IOC_DESTROY", _ioc("IOC_DESTROY"), "_IO: remove this handle's interface."),
    Constant("IOC_SETUP_RINGS", _ioc("IOC_SETUP_RINGS"),
             "_IOWR struct RingReq: allocate the shared area and connect it to the interface."),
    Constant("IOC_SET_CARRIER", _ioc("IOC_SET_CARRIER"),
             "_IOW u32: 1 carrier up (needs rings), 0 carrier down; anything else is EINVAL."),
    Constant("IOC_KICK", _ioc("IOC_KICK"),
             "_IO: u2k has new entries (schedule NAPI); also restarts a stopped transmit queue."),
    Constant("IOC_GET_CONFIG", _ioc("IOC_GET_CONFIG"),
             "_IOWR struct Config: read the interface's MAC, MTU, flags and address lists; clears POLLPRI "
             "until the next change. ENODEV: no interface."),
    Constant("IOC_PUBLISH", _ioc("IOC_PUBLISH"),
             "_IOW struct Publish: the NIC's counters, link speed and duplex, firmware version and bus info "
             "for ip -s link and ethtool. ENODEV: no interface."),
    Constant("IOC_PUBLISH_RULES", _ioc("IOC_PUBLISH_RULES"),
             "_IOW struct RuleTable: the NIC's steering table for ethtool -n, after every change and after "
             "each request taken with IOC_TAKE_RULE_REQ. ENODEV: no interface."),
    Constant("IOC_TAKE_RULE_REQ", _ioc("IOC_TAKE_RULE_REQ"),
             "_IOR struct RuleReq: the oldest ethtool -N request not yet taken (poll() reports POLLPRI when "
             "one arrives). EAGAIN: none; ENODEV: no interface."),
    Constant("RULES_MAX", nic.NUM_STEER_ENTRIES, "Largest RuleTable.capacity: the steering entries the NIC's "
             "register map has room for."),
    Constant("RX_QUEUES_MAX", nic.NUM_RX_QUEUES, "Largest RuleTable.rx_queues and Publish.rx_queues."),
    Constant("TX_QUEUES_MAX", nic.NUM_TX_QUEUES, "Largest Publish.tx_queues."),
    Constant("RULE_REQS_MAX", 16, "ethtool -N requests the module holds until the driver handled them; one "
             "more is EBUSY."),
    Constant("RULE_ADD", 1, "RuleReq.op: add a rule."),
    Constant("RULE_DEL", 2, "RuleReq.op: remove a rule."),
    Constant("ADDR_MAX", 256, "Largest Config.addrs_max."),
    Constant("COUNTERS", len(NIC_COUNTERS), "NIC counters in Publish (NIC_COUNTERS)."),
    Constant("SPEED_MAX", 400000, "Largest Publish.speed in Mb/s."),
    Constant("RX_USECS_MAX", 100000, "Largest interrupt moderation in us (the NIC's IRQ_COALESCE holds 134 ms "
             "at 125 MHz)."),
    Constant("RX_USECS_NONE", 0xFFFFFFFF, "Config.rx_usecs / Publish.rx_usecs: no value."),
    Constant("TEXT_LEN", TEXT_LEN, "Bytes of each string in Publish, NUL included."),
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
    Constant("FRAME_OVERHEAD", _ETH_HLEN + 2 * _VLAN_HLEN, "Bytes a frame may carry beyond the MTU: "
             "Ethernet header and two VLAN tags (802.1ad QinQ)."),
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


#: 32-bit fingerprint of this interface's ABI: its constants, structures and the
#: NIC counter list IOC_PUBLISH carries, not their prose, and not the rest of the
#: NIC's register map (the module touches no NIC register, so a NIC change that
#: leaves the counters alone must not make user space refuse a loaded module).
SPEC_HASH: int = spec_fingerprint((CONSTANTS, STRUCTS, NIC_COUNTERS))
