"""The NIC's register map and DMA formats: the single source of truth.

Ref: docs/registers.md is generated from this file (``make generate``).

Conventions, for every register and structure below:

* Registers are 32 bits wide, at 32-bit aligned byte offsets of the NIC's CSR
  window.  The CSR bus is word-addressed (bus address = byte offset / 4).
* DMA structures are packed little-endian, every member naturally aligned.
* Ring indices are free-running 16-bit counters; the slot of index ``i`` in a
  ring of ``2**log2`` entries is ``i & (2**log2 - 1)``.  A ring is empty when
  ``HEAD == TAIL`` and full when ``(TAIL - HEAD) & 0xffff == 2**log2``.
* A MAC address is packed byte-for-byte in wire order, little-endian: byte 0
  (the first on the wire) is bits 7..0 of ``*_LO``, byte 4 is bits 7..0 of
  ``*_HI``.
* Frame lengths in descriptors and completions exclude preamble and FCS.
"""

from __future__ import annotations

from .firmware import FIRMWARE_CONSTANTS, FIRMWARE_REGISTERS
from .mii import BCM_CONSTANTS, MII_CONSTANTS
from .model import (Access, Constant, Field, Register, RegisterArray, RegisterMap,
                    Struct, StructField, check_unique, spec_fingerprint)

RW, RO, W1C, RC = Access.RW, Access.RO, Access.W1C, Access.RC

TITLE = "splitnic NIC register map and DMA formats"
#: Prefix of every C name generated from this module.
PREFIX = "SNIC"

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

ID_MAGIC_VALUE = 0x534E4943          # "SNIC" read as a big-endian word
VERSION_MAJOR = 0
VERSION_MINOR = 3
NUM_RX_QUEUES = 8
NUM_TX_QUEUES = 8
NUM_STEER_ENTRIES = 16
INDEX_BITS = 16
#: LINK.SPEED: the speed in Mb/s of each code.
LINK_SPEED_MBPS: dict[int, int] = {0: 10, 1: 100, 2: 1000}

CONSTANTS: tuple[Constant, ...] = (
    Constant("ID_MAGIC", ID_MAGIC_VALUE, "Value of ID_MAGIC: ASCII 'SNIC'."),
    Constant("VERSION_MAJOR", VERSION_MAJOR, "Spec major version; a driver refuses a different major."),
    Constant("VERSION_MINOR", VERSION_MINOR, "Spec minor version; additions only."),
    Constant("NUM_RX_QUEUES", NUM_RX_QUEUES, "RX queues the register map has room for; ID_FEATURES says how "
             "many a build has. Queue 0 feeds the kernel tunnel."),
    Constant("NUM_TX_QUEUES", NUM_TX_QUEUES, "TX queues the register map has room for; ID_FEATURES says how "
             "many a build has. Queue 0 carries the kernel's frames."),
    Constant("NUM_STEER_ENTRIES", NUM_STEER_ENTRIES, "RX steering entries the register map has room for; "
             "ID_FEATURES says how many a build has."),
    Constant("KERNEL_QUEUE", 0, "The RX/TX queue that belongs to the kernel tunnel; unmatched frames land here."),
    Constant("RING_LOG2_MIN", 4, "Smallest ring: 2**4 = 16 entries."),
    Constant("RING_LOG2_MAX", 12, "Largest ring: 2**12 = 4096 entries."),
    Constant("INDEX_BITS", INDEX_BITS, "Width of the free-running HEAD/TAIL/CPL ring indices."),
    Constant("RING_ALIGN", 64, "Byte alignment of descriptor and completion rings."),
    Constant("BUFFER_ALIGN", 4, "Byte alignment of Descriptor.addr (TX frame data and RX buffers); "
             "the DMA engines move whole 32-bit words."),
    Constant("MAX_BURST", 16, "Longest DMA burst the NIC issues, in 32-bit words."),
    Constant("DMA_ADDR_BITS", 32, "Address bits the DMA engines drive; *_HI registers must be 0."),
    Constant("MIN_FRAME", 60, "Shortest frame on the wire without FCS; shorter TX frames are padded."),
    Constant("MAX_FRAME_STD", 1518, "Reset value of MAX_FRAME.LEN (with FCS)."),
    Constant("MAX_FRAME_JUMBO", 9018, "Largest MAX_FRAME.LEN honoured when CTRL.JUMBO is set (with FCS)."),
    Constant("FCS_LEN", 4, "Bytes of Ethernet FCS."),
    Constant("MC_HASH_BITS", 64, "Bits of the multicast hash filter (MC_HASH_HI:MC_HASH_LO)."),
    Constant("RULE_NONE", 0xFF, "Completion.rule when no steering entry matched (and for TX)."),
    *FIRMWARE_CONSTANTS,   # the firmware mailbox (splitnic_spec.firmware)
    *MII_CONSTANTS,        # the PHY registers the firmware and `splitnic phy` use (splitnic_spec.mii)
    *BCM_CONSTANTS,        # the Broadcom shadow registers that set the RGMII delays (splitnic_spec.mii)
)

# --------------------------------------------------------------------------
# Single registers
# --------------------------------------------------------------------------

_MAC_LO_DOC = "Bytes 0..3 of the MAC address in wire order (byte 0 in bits 7..0)."
_MAC_HI_DOC = "Bytes 4..5 of the MAC address in wire order (byte 4 in bits 7..0)."

REGISTERS: tuple[Register, ...] = (
    # ID block: what the driver and the stub module check first.
    Register("ID_MAGIC", 0x000, RO, "Identifies a splitnic NIC: always ID_MAGIC."),
    Register("ID_VERSION", 0x004, RO, "Spec version the gateware implements.", (
        Field("MINOR", 0, 16, "Spec minor version.", VERSION_MINOR),
        Field("MAJOR", 16, 16, "Spec major version.", VERSION_MAJOR),
    )),
    Register("ID_SPEC_HASH", 0x008, RO, "SPEC_HASH of the spec the gateware was built from; "
             "the driver refuses a mismatch. It covers what the driver depends on (names, offsets, widths, "
             "access, reset values, structures, constants), not the descriptions."),
    Register("ID_BUILD", 0x00C, RO, "Build id of the gateware (hash of its sources), for bug reports."),
    Register("ID_FEATURES", 0x010, RO, "Sizes of this build. A small FPGA builds fewer queues and steering "
             "entries than the register map has room for; the registers of the missing ones read 0 and "
             "ignore writes. Reset values: the whole map.", (
        Field("RX_QUEUES", 0, 8, "Number of RX queues (1..NUM_RX_QUEUES).", NUM_RX_QUEUES),
        Field("TX_QUEUES", 8, 8, "Number of TX queues (1..NUM_TX_QUEUES).", NUM_TX_QUEUES),
        Field("STEER_ENTRIES", 16, 8, "Steering table entries (0..NUM_STEER_ENTRIES).", NUM_STEER_ENTRIES),
        Field("DMA_ADDR_BITS", 24, 8, "DMA address width.", 32),
    )),
    Register("SCRATCH", 0x014, RW, "Free for software; used by bus self-tests."),
    Register("CYCLES", 0x018, RC, "Free-running core clock cycle counter (completion timestamps use it)."),
    Register("CLOCK_HZ", 0x01C, RO, "Core clock frequency in Hz, to turn cycles into time."),

    # Control.
    Register("CTRL", 0x040, RW, "Global control.", (
        Field("RESET", 0, 1, "Write 1: reset every queue, the steering table, counters and IRQ state.",
              strobe=True),
        Field("RX_EN", 1, 1, "Accept frames from the wire."),
        Field("TX_EN", 2, 1, "Transmit frames from the TX queues."),
        Field("LOOPBACK", 3, 1, "Internal loopback: transmitted frames are received instead of sent."),
        Field("PROMISC", 4, 1, "Accept every destination address."),
        Field("ALLMULTI", 5, 1, "Accept every multicast destination address (otherwise MC_HASH picks them)."),
        Field("BROADCAST", 6, 1, "Accept the broadcast address.", 1),
        Field("JUMBO", 7, 1, "Honour MAX_FRAME.LEN up to MAX_FRAME_JUMBO; otherwise the limit is MAX_FRAME_STD."),
        Field("KEEP_ERRORED", 8, 1, "Deliver frames with FCS/length errors (flagged in the completion) "
              "instead of dropping them; for capture."),
    )),
    Register("MAC_ADDR_LO", 0x044, RW, _MAC_LO_DOC),
    Register("MAC_ADDR_HI", 0x048, RW, _MAC_HI_DOC, (
        Field("BYTES", 0, 16, "Bytes 4 and 5."),
    )),
    Register("MAX_FRAME", 0x04C, RW, "Longest frame accepted, FCS included; longer ones are counted as oversize.", (
        Field("LEN", 0, 14, "Length in bytes.", 1518),
    )),
    Register("LINK", 0x050, RW, "Link state, written by the management firmware (board) or the "
             "simulation harness; read by the driver.", (
        Field("UP", 0, 1, "Link is up."),
        Field("SPEED", 1, 2, "Speed, one of the codes below.", values=tuple(
            Constant(str(mbps), code, f"{mbps} Mb/s.") for code, mbps in LINK_SPEED_MBPS.items())),
        Field("FULL_DUPLEX", 3, 1, "Full duplex."),
    )),
    Register("IRQ_STATUS", 0x054, W1C, "Pending interrupt causes; write 1 to clear.", (
        Field("RX", 0, 8, "Bit q: RX queue q wrote a completion."),
        Field("TX", 8, 8, "Bit q: TX queue q wrote a completion."),
        Field("LINK", 16, 1, "LINK changed."),
    )),
    Register("IRQ_MASK", 0x058, RW, "Interrupt enables, same layout as IRQ_STATUS.", (
        Field("RX", 0, 8, "Enable per RX queue."),
        Field("TX", 8, 8, "Enable per TX queue."),
        Field("LINK", 16, 1, "Enable link change."),
    )),
    Register("IRQ_COALESCE", 0x05C, RW, "Interrupt coalescing: the interrupt line rises at most once per "
             "CYCLES core cycles, merging the completions written meanwhile.", (
        Field("CYCLES", 0, 24, "Hold-off time in core cycles; 0 raises at once."),
    )),
    *FIRMWARE_REGISTERS,   # 0x060..0x0FC: the management firmware and its mailbox (splitnic_spec.firmware)

    Register("MC_HASH_LO", 0x500, RW, "Multicast hash filter, bits 31..0. A multicast destination (I/G bit "
             "set, not broadcast) is accepted when bit i of MC_HASH_HI:MC_HASH_LO is set, i being the low "
             "6 bits of the CRC-32 of its 6 bytes (the FCS algorithm: zlib.crc32(address) & 63). Lets IPv6 "
             "neighbour discovery and mDNS in without ALLMULTI; CTRL.RESET leaves it alone."),
    Register("MC_HASH_HI", 0x504, RW, "Multicast hash filter, bits 63..32 (see MC_HASH_LO)."),

    # MAC statistics: free-running 32-bit counters; the driver widens them.
    Register("STAT_RX_OK", 0xA00, RC, "Frames received with good FCS and length, before address filtering."),
    Register("STAT_RX_OK_BYTES", 0xA04, RC, "Bytes (FCS excluded) of STAT_RX_OK frames."),
    Register("STAT_RX_FCS_ERR", 0xA08, RC, "Frames dropped for a bad FCS (also counted if kept)."),
    Register("STAT_RX_RUNT", 0xA0C, RC, "Frames shorter than 64 bytes with FCS."),
    Register("STAT_RX_OVERSIZE", 0xA10, RC, "Frames longer than the MAX_FRAME limit."),
    Register("STAT_RX_FILTERED", 0xA14, RC, "Good frames dropped by the address filter."),
    Register("STAT_RX_FIFO_DROP", 0xA18, RC, "Frames dropped because the RX FIFO was full."),
    Register("STAT_TX_OK", 0xA1C, RC, "Frames transmitted."),
    Register("STAT_TX_OK_BYTES", 0xA20, RC, "Bytes (FCS and padding excluded) of STAT_TX_OK frames."),
    # DMA statistics.
    Register("STAT_DMA_ERR", 0xA24, RC, "DMA accesses refused because their address lies outside the memory "
             "the NIC may reach (on the board: NIC-local memory, and the host window for writes). A refused "
             "write goes nowhere and a refused read returns 0; the queue carries on, its frame or completion "
             "lost. The board's NIC counts each bus cycle (one burst of at most MAX_BURST words) with a word "
             "refused, the software NIC each descriptor, buffer or completion access. Not 0: a ring or buffer "
             "address is wrong (a driver bug, or someone writing the register window)."),
)

# --------------------------------------------------------------------------
# Queues and steering table
# --------------------------------------------------------------------------

def _queue_registers(direction: str) -> tuple[Register, ...]:
    rx = direction == "RX"
    return (
        Register("CTRL", 0x00, RW, f"{direction} queue control.", (
            Field("ENABLE", 0, 1, "The NIC processes this queue."
                  + (" Frames steered to a disabled queue are dropped and counted." if rx else "")),
            Field("RESET", 1, 1, "Write 1: HEAD, TAIL, CPL and the phase return to 0; counters keep counting.",
                  strobe=True),
        )),
        Register("DESC_LO", 0x04, RW, "Device address of the descriptor ring, bits 31..0 (RING_ALIGN aligned)."),
        Register("DESC_HI", 0x08, RW, "Device address of the descriptor ring, bits 63..32."),
        Register("CPL_LO", 0x0C, RW, "Device address of the completion ring, bits 31..0 (RING_ALIGN aligned)."),
        Register("CPL_HI", 0x10, RW, "Device address of the completion ring, bits 63..32."),
        Register("SIZE", 0x14, RW, "Ring size; both rings have 2**LOG2 entries.", (
            Field("LOG2", 0, 4, "log2 of the entry count, RING_LOG2_MIN..RING_LOG2_MAX.", 4),
        )),
        Register("TAIL", 0x18, RW, "Producer index, written by the driver: descriptors "
                 + ("posted (empty buffers)." if rx else "posted (frames to send)."), (
            Field("INDEX", 0, 16, "Free-running index."),
        )),
        Register("HEAD", 0x1C, RO, "Consumer index, advanced by the NIC as it takes descriptors.", (
            Field("INDEX", 0, 16, "Free-running index."),
        )),
        Register("CPL", 0x20, RO, "Completions written so far (free-running); the driver normally "
                 "polls the phase bit in memory instead.", (
            Field("INDEX", 0, 16, "Free-running index."),
        )),
        Register("PACKETS", 0x24, RC, "Frames " + ("delivered to this queue." if rx else "sent from this queue.")),
        Register("BYTES", 0x28, RC, "Bytes (FCS excluded) of those frames."),
        Register("DROPS", 0x2C, RC, "Frames steered here and dropped: no buffer posted or queue disabled."
                 if rx else "Descriptors completed with an error status."),
    )


ARRAYS: tuple[RegisterArray, ...] = (
    RegisterArray("RXQ", 0x100, NUM_RX_QUEUES, 0x40, "RX queues: the driver posts empty buffers, the NIC "
                  "fills them and writes one completion per frame.", _queue_registers("RX")),
    RegisterArray("TXQ", 0x300, NUM_TX_QUEUES, 0x40, "TX queues: the driver posts frames, the NIC sends "
                  "them and writes one completion per descriptor.", _queue_registers("TX")),
    RegisterArray("STEER", 0x800, NUM_STEER_ENTRIES, 0x20, "RX steering table. The lowest-numbered enabled "
                  "entry whose enabled matches all hold picks the RX queue; no match picks KERNEL_QUEUE. "
                  "An entry with no MATCH_* bit set matches every frame.", (
        Register("CTRL", 0x00, RW, "Entry control. Disable an entry before changing its match values.", (
            Field("ENABLE", 0, 1, "The entry takes part in matching."),
            Field("MATCH_DMAC", 1, 1, "Compare the destination MAC with DMAC_LO/DMAC_HI."),
            Field("MATCH_ETHERTYPE", 2, 1, "Compare the ethertype (bytes 12..13, no VLAN parsing)."),
            Field("MATCH_IP_PROTO", 3, 1, "Compare the IPv4 protocol / IPv6 next header (IPv6: no extension headers)."),
            Field("MATCH_L4_DPORT", 4, 1, "Compare the TCP/UDP destination port (IPv4 of any IHL, unfragmented "
                  "or first fragment; IPv6 with next header TCP/UDP)."),
            Field("QUEUE", 8, 4, "RX queue for matching frames."),
        )),
        Register("DMAC_LO", 0x04, RW, _MAC_LO_DOC),
        Register("DMAC_HI", 0x08, RW, _MAC_HI_DOC, (Field("BYTES", 0, 16, "Bytes 4 and 5."),)),
        Register("ETHERTYPE", 0x0C, RW, "Ethertype to match, as a number (0x0800 for IPv4).", (
            Field("VALUE", 0, 16, "Ethertype."),
        )),
        Register("IP_PROTO", 0x10, RW, "IP protocol to match (17 for UDP).", (
            Field("VALUE", 0, 8, "Protocol number."),
        )),
        Register("L4_DPORT", 0x14, RW, "TCP/UDP destination port to match, as a number.", (
            Field("VALUE", 0, 16, "Port."),
        )),
        Register("HITS", 0x18, RC, "Frames this entry steered."),
    )),
)

CSR_MAP = RegisterMap("splitnic", "The NIC's CSR window.", REGISTERS, ARRAYS, size=0x1000)

# --------------------------------------------------------------------------
# DMA structures
# --------------------------------------------------------------------------

DESCRIPTOR = Struct("Descriptor", "A TX or RX ring entry, written by the driver, read by the NIC. "
                    "TX: a frame to send. RX: an empty buffer to fill.", (
    StructField("addr", 64, "Device address of the frame data / buffer."),
    StructField("length", 16, "TX: frame length, 14..limit (FCS excluded; padded to MIN_FRAME by the NIC). "
                "RX: buffer size in bytes."),
    StructField("flags", 16, "Reserved, write 0."),
    StructField("cookie", 32, "Opaque to the NIC; copied into the completion so the driver finds its buffer."),
))

COMPLETION = Struct("Completion", "A completion ring entry, written by the NIC in ascending address order, "
                    "so the word holding PHASE lands last: an entry is valid once its PHASE equals the "
                    "ring lap's phase (1 on the first lap after a queue reset, then alternating). "
                    "The driver zero-fills the ring before enabling the queue.", (
    StructField("cookie", 32, "Copied from the descriptor."),
    StructField("length", 16, "RX: bytes written to the buffer. TX: bytes sent. FCS excluded."),
    StructField("queue", 8, "Queue number."),
    StructField("status", 8, "0: good. Otherwise error bits.", (
        Field("FCS_ERROR", 0, 1, "RX: bad FCS (only seen with CTRL.KEEP_ERRORED)."),
        Field("RUNT", 1, 1, "RX: frame shorter than 64 bytes (only with KEEP_ERRORED)."),
        Field("OVERSIZE", 2, 1, "RX: frame longer than the limit (only with KEEP_ERRORED)."),
        Field("TRUNCATED", 3, 1, "RX: the frame was longer than the buffer; length bytes were kept."),
        Field("LEN_ERROR", 4, 1, "TX: descriptor length outside 14..limit; nothing was sent."),
    )),
    StructField("timestamp", 32, "CYCLES when the frame's last byte crossed the MAC."),
    StructField("rule", 8, "RX: steering entry that matched, or RULE_NONE. TX: RULE_NONE."),
    StructField("reserved0", 8, "0."),
    StructField("reserved1", 8, "0."),
    StructField("flags", 8, "Written last.", (
        Field("PHASE", 0, 1, "Lap phase; see above."),
    )),
))

STRUCTS: tuple[Struct, ...] = (DESCRIPTOR, COMPLETION)

check_unique((c.name for c in CONSTANTS), "constant")
check_unique((r.name for r in REGISTERS), "register")
check_unique((a.name for a in ARRAYS), "register array")

# --------------------------------------------------------------------------
# The ring index rules (see the top of this module), for the Python sides
# --------------------------------------------------------------------------

#: Mask of the free-running ring indices (HEAD, TAIL, CPL).
INDEX_MASK = (1 << INDEX_BITS) - 1


def ring_slot(index: int, log2: int) -> int:
    """Slot (entry number) of free-running index ``index`` in a ring of ``2**log2`` entries."""
    return index & ((1 << log2) - 1)


def ring_next(index: int, count: int = 1) -> int:
    """The free-running index ``count`` entries after ``index``."""
    return (index + count) & INDEX_MASK


def ring_used(head: int, tail: int) -> int:
    """Entries between the consumer index ``head`` and the producer index ``tail``."""
    return (tail - head) & INDEX_MASK


def completion_phase(index: int, log2: int) -> int:
    """PHASE of a valid completion at free-running index ``index``: 1 on the first lap, then alternating."""
    return 1 - ((index >> log2) & 1)


#: 32-bit fingerprint of the ABI above (not its prose); the gateware reports it in ID_SPEC_HASH.
SPEC_HASH: int = spec_fingerprint((CONSTANTS, CSR_MAP, STRUCTS))
