"""The ``eth`` host link: posted writes both ways in Ethernet frames, nothing waits across the cable.

Ref: docs/registers.md and hostdrv/splitnic/hostlink_spec.h are generated from
this file (``make generate``); docs/hardware.md, "The eth host link", says how
to cable and use it.

The board's host-link port carries, beside LiteX's Etherbone (UDP, for
LiteX's tools and management), frames of EtherType ``ETHERTYPE`` (IEEE 802
Local Experimental EtherType 1).  Each frame is an Ethernet header, a
``FrameHeader``, then ``count`` messages, each a ``MessageHeader`` followed by
``len`` bytes of data (``len`` a multiple of 4).  Every multi-byte number is
little-endian, like the NIC's DMA structures.  A frame is at most the
receiver's ``Hello.mtu`` bytes after the Ethernet header.

Address spaces.  An address in a message is a device address of the NIC's
DMA engines, which is also the board's bus address: NIC-local memory (the
board's DMA RAM, ``splitnic_spec.board``) and the NIC's registers live on the
board; host memory is the window ``HOST_WINDOW_BASE .. + HOST_WINDOW_SIZE``.
The NIC's DMA writes into the host window leave the board as ``WRITE``
messages; its reads reach only NIC-local memory.  So the driver keeps every
ring and buffer the NIC *writes* (RX buffers, both completion rings) in host
memory, and every one the NIC *reads* (both descriptor rings, TX buffers) in
NIC-local memory, which it fills with ``WRITE`` messages.

Messages (``OP_*``):

* ``WRITE`` (both ways): write the data at ``addr``.  Host to NIC: NIC-local
  memory or a NIC register (a doorbell); NIC to host: the host window.  The
  receiver checks the whole span against what it owns (the host: the DMA memory
  it registered in its ``Hello``; the board: its DMA RAM and the NIC's register
  window) and drops, and counts, a write that leaves it: the board can never
  write outside the driver's DMA memory.
* ``READ`` (host to NIC): read ``words`` 32-bit words from ``addr`` (data: one
  ``ReadRequest``).  The board answers with ``ANSWER``.  Only for probing and
  statistics: nothing on the data path reads across the cable.
* ``ANSWER`` (NIC to host): ``addr`` is the request's ``tag``, the data the
  words read.  It travels in the same ordered stream as the NIC's writes, so
  an answer shows every DMA write the NIC made before it.
* ``IRQ`` (NIC to host): the NIC's interrupt line rose (data: one word, the
  number of rises so far).  The host wakes the driver, which reads
  IRQ_STATUS.
* ``HELLO`` (both ways, alone in a frame with flag ``HELLO``): data: one
  ``Hello``.  The host sends it to open (or reopen) the link, to the broadcast
  address; the board answers with its own and from then on talks only to that
  host MAC address.  A HELLO frame is not numbered (its ``seq``, ``frame`` and
  ``acked`` are 0, its ``credit`` is the sender's window); after it, each
  side's first frame is number 0 and its first message number 0.

Order: messages take effect in sequence order, so a doorbell written after
descriptors lands after them, and a completion the NIC writes after a frame's
data lands after it.

Sequence numbers and loss.  Each direction numbers its messages from 0
(``FrameHeader.seq`` is the number of the frame's first message, each message
carries the low 8 bits of its own number); each frame carries ``acked``, the
number of the next message the sender expects from the other side.  A frame
whose ``seq`` is not the next expected is a gap: the receiver counts it and
the lost messages.

A side that took messages and has no frame of its own to send acknowledges
them at once with a frame of no messages, so that the other side's resend
timer fires only on a loss.

* Host to NIC: the board drops every frame after a gap until the expected
  message comes again, and sets ``NAK`` on its next frame; the host keeps each
  frame until ``acked`` passes it and sends again from ``acked`` when it sees
  ``NAK`` or nothing is acknowledged for ``RESEND_US`` (go-back-N).  ``RESEND_US``
  is the least wait: where the board answers more slowly (a simulated SoC),
  the host waits twice the round trip it measures.
* NIC to host: the board keeps no copy (its DMA writes are gone once sent),
  so the host counts the gap and reports the link broken: the driver resets
  the NIC's queues and says so.  Credits below keep the host's socket from
  overrunning, so only a frame lost on the cable (a CRC error) does this.

Nothing is silently missing: every gap is counted by the side that saw it.

Flow control.  Each frame's ``credit`` lets the other side send frames
numbered (``FrameHeader.frame``, which counts every frame sent, a frame sent
again included) below it: the receiver grants one past the newest frame number
it received plus the frames it still has room for (``Hello.window`` to start
with), so a frame lost on the cable costs no credit.
A frame of no messages (``count`` 0: an acknowledgement, a grant, a NAK) is
not numbered: its ``frame`` is the sender's next number, which it does not
take, it needs no credit and the receiver's grant ignores it, so that a grant
gets through when both sides have used their credit.  Its ``seq`` is the
number of the next message the sender will send (the first of a frame still
waiting for credit), so it shows a gap only when one happened.
A side that has used its credit stops (the board stalls its DMA writes into
the host window, so the NIC's receive FIFO fills and drops, counted, as on
any NIC); a side whose receive buffer drained by half a window sends a frame
with no messages (``count`` 0) to grant more.

Foreign frames (another EtherType never reaches either side; this EtherType
from another source address, another version, a header that runs past the
frame) are dropped and counted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .model import Constant, Field, Struct, StructField, check_unique, spec_fingerprint

TITLE = "splitnic eth host link (posted-write messages)"
#: Prefix of every C name generated from this module.
PREFIX = "SNIC_HL"
#: Heading of the structure section in docs/registers.md.
STRUCTS_TITLE = "Frame and message formats"

VERSION_MAJOR = 1
VERSION_MINOR = 0

ETHERTYPE = 0x88B5
OP_WRITE, OP_READ, OP_ANSWER, OP_IRQ, OP_HELLO = 1, 2, 3, 4, 5
HELLO_MAGIC_VALUE = 0x4C48_4E53          # "SNHL" as bytes on the wire, little-endian
HOST_WINDOW_BASE = 0xA000_0000
HOST_WINDOW_SIZE = 0x1000_0000
#: The board's link counters (BoardCounters), just past the NIC's register window.
COUNTERS_BASE = 0x8000_1000
COUNTERS_SIZE = 0x40
#: Largest frame (after the Ethernet header) on a standard 1500-byte MTU and on a jumbo one.
MTU_STANDARD = 1500
MTU_JUMBO = 9000
#: Largest data of one message: a jumbo frame's room after the two headers, in words.
MAX_MESSAGE_DATA = (MTU_JUMBO - 16 - 8) & ~3     # FrameHeader and MessageHeader sizes below
RESEND_US = 1000

CONSTANTS: tuple[Constant, ...] = (
    Constant("ETHERTYPE", ETHERTYPE, "EtherType of host-link frames (IEEE 802 Local Experimental 1)."),
    Constant("VERSION", VERSION_MAJOR, "FrameHeader.version of this protocol."),
    Constant("OP_WRITE", OP_WRITE, "Write the message's data at addr (both ways)."),
    Constant("OP_READ", OP_READ, "Host to NIC: read words at addr; data is one ReadRequest."),
    Constant("OP_ANSWER", OP_ANSWER, "NIC to host: the words a READ asked for; addr is its tag."),
    Constant("OP_IRQ", OP_IRQ, "NIC to host: the interrupt line rose; data is one word, the rises so far."),
    Constant("OP_HELLO", OP_HELLO, "Open the link (alone in a frame with flag HELLO); data is one Hello."),
    Constant("HELLO_MAGIC", HELLO_MAGIC_VALUE, "Hello.magic: 'SNHL' in wire order."),
    Constant("HOST_WINDOW_BASE", HOST_WINDOW_BASE, "First device address of host memory: the NIC's DMA "
             "writes at HOST_WINDOW_BASE.. leave the board as WRITE messages."),
    Constant("HOST_WINDOW_SIZE", HOST_WINDOW_SIZE, "Bytes of the host window."),
    Constant("MTU_STANDARD", MTU_STANDARD, "Hello.mtu on a standard Ethernet host port."),
    Constant("MTU_JUMBO", MTU_JUMBO, "Hello.mtu on a jumbo-frame host port: fewer headers per byte."),
    Constant("MAX_MESSAGE_DATA", MAX_MESSAGE_DATA, "Largest len of one message; a longer write is split."),
    Constant("RESEND_US", RESEND_US, "Host to NIC: microseconds without progress of acked before the "
             "host sends its unacknowledged frames again."),
    Constant("MIN_WINDOW", 2, "Smallest Hello.window: a side must buffer a frame while it takes the next."),
    Constant("COUNTERS_BASE", COUNTERS_BASE, "Bus address of the board's BoardCounters: the host READs them "
             "like any register; writes there are ignored."),
    Constant("COUNTERS_SIZE", COUNTERS_SIZE, "Bytes of the counters window (words past BoardCounters read 0)."),
)

FRAME_HEADER = Struct("FrameHeader", "Follows the Ethernet header of every host-link frame.", (
    StructField("version", 8, "VERSION; a frame of another version is dropped and counted."),
    StructField("flags", 8, "Frame flags.", (
        Field("HELLO", 0, 1, "The frame opens the link: one HELLO message; sequence and frame numbers "
              "restart at 0 on both sides."),
        Field("NAK", 1, 1, "NIC to host: the board saw a gap and dropped frames; send again from acked."),
    )),
    StructField("count", 16, "Messages that follow (0: the frame only carries acked and credit)."),
    StructField("seq", 32, "Number of the first message (free-running per direction)."),
    StructField("frame", 16, "Number of this frame (free-running per direction, every frame counts)."),
    StructField("credit", 16, "The other side may send frames numbered below this (modulo 2**16)."),
    StructField("acked", 32, "Number of the next message the sender expects from the other side."),
))

MESSAGE_HEADER = Struct("MessageHeader", "Starts every message; len bytes of data follow.", (
    StructField("op", 8, "OP_*."),
    StructField("seq", 8, "Low 8 bits of this message's number; must match its place in the frame."),
    StructField("len", 16, "Data bytes after this header: a multiple of 4, at most MAX_MESSAGE_DATA."),
    StructField("addr", 32, "WRITE/READ: device (bus) address; ANSWER: the READ's tag; IRQ, HELLO: 0."),
))

READ_REQUEST = Struct("ReadRequest", "Data of a READ message.", (
    StructField("words", 16, "Words to read from addr (1..MAX_MESSAGE_DATA / 4)."),
    StructField("tag", 16, "Echoed in the ANSWER's addr."),
))

HELLO = Struct("Hello", "Data of a HELLO message: what the sender is and can take.", (
    StructField("magic", 32, "HELLO_MAGIC."),
    StructField("spec_hash", 32, "SPEC_HASH of this protocol as the sender was built; a mismatch is refused."),
    StructField("mtu", 16, "Largest frame after the Ethernet header the sender receives (>= MTU_STANDARD)."),
    StructField("window", 16, "Frames the sender buffers: the other side's first credit (>= MIN_WINDOW)."),
    StructField("host_base", 32, "Host: device address of its DMA memory (in the host window). Board: "
                "HOST_WINDOW_BASE."),
    StructField("host_size", 32, "Host: bytes of its DMA memory. Board: HOST_WINDOW_SIZE."),
    StructField("local_base", 32, "Board: bus address of NIC-local memory. Host: 0."),
    StructField("local_size", 32, "Board: bytes of NIC-local memory. Host: 0."),
))

BOARD_COUNTERS = Struct("BoardCounters", "The board's link counters at COUNTERS_BASE, one 32-bit word "
                        "each, free-running (they wrap); a HELLO does not clear them.", (
    StructField("rx_frames", 32, "Host-to-board frames taken: in sequence, well-formed, from the host."),
    StructField("rx_messages", 32, "Messages in those frames."),
    StructField("malformed", 32, "Frames dropped as not this protocol's: another version, a bad message "
                "number or length, a message past the frame's end, too long, or from another source."),
    StructField("gaps", 32, "Well-formed frames dropped because they did not start at the next expected "
                "message (a frame before them was lost): each one NAKed."),
    StructField("bad_address", 32, "Messages skipped: a span outside the windows the host may reach, a "
                "READ of a bad size, an op the host may not send."),
    StructField("duplicates", 32, "Frames that came again, wholly or partly before the next expected "
                "message (a resend): dropped."),
    StructField("overruns", 32, "In-sequence frames dropped for want of a free buffer (the host sent "
                "beyond its credit)."),
    StructField("tx_frames", 32, "Board-to-host frames sent."),
    StructField("tx_messages", 32, "Messages in those frames."),
    StructField("credit_stalls", 32, "Times a finished frame had to wait for the host's credit."),
))

STRUCTS: tuple[Struct, ...] = (FRAME_HEADER, MESSAGE_HEADER, READ_REQUEST, HELLO, BOARD_COUNTERS)

check_unique((c.name for c in CONSTANTS), "constant")

#: 32-bit fingerprint of the protocol above (not its prose); exchanged in Hello.spec_hash.
SPEC_HASH: int = spec_fingerprint((CONSTANTS, STRUCTS))


def message_size(data_len: int) -> int:
    """Bytes a message with ``data_len`` bytes of data takes in a frame."""
    return MESSAGE_HEADER.size + data_len


def seq_after(a: int, b: int) -> bool:
    """True if message number ``a`` comes after ``b`` (32-bit serial arithmetic)."""
    return 0 < ((a - b) & 0xFFFF_FFFF) < 1 << 31


# --------------------------------------------------------------------------
# A reference codec for the Python sides (tests, benches, the gateware's
# scoreboards); the C sides use hostlink_spec.h.
# --------------------------------------------------------------------------

_FRAME = struct.Struct(FRAME_HEADER.format)
_MESSAGE = struct.Struct(MESSAGE_HEADER.format)
_READ = struct.Struct(READ_REQUEST.format)
_HELLO = struct.Struct(HELLO.format)
FLAG_HELLO = 1 << FRAME_HEADER.member("flags").bit("HELLO").lsb
FLAG_NAK = 1 << FRAME_HEADER.member("flags").bit("NAK").lsb


class ProtocolError(ValueError):
    """Bytes that are not a well-formed host-link frame (the receiver drops and counts them)."""


@dataclass(frozen=True)
class Message:
    """One message: ``op``, ``addr`` and its data (``seq`` is its 8-bit number; encode fills it in)."""
    op: int
    addr: int = 0
    data: bytes = b""
    seq: int = 0


@dataclass(frozen=True)
class Frame:
    """A host-link frame after the Ethernet header."""
    seq: int
    frame: int
    credit: int
    acked: int
    messages: tuple[Message, ...] = ()
    flags: int = 0
    version: int = VERSION_MAJOR


def encode_frame(f: Frame) -> bytes:
    """The bytes of ``f`` after the Ethernet header; message ``i`` gets sequence number ``f.seq + i``."""
    out = [_FRAME.pack(f.version, f.flags, len(f.messages), f.seq & 0xFFFF_FFFF, f.frame & 0xFFFF,
                       f.credit & 0xFFFF, f.acked & 0xFFFF_FFFF)]
    for i, m in enumerate(f.messages):
        if len(m.data) % 4 or len(m.data) > MAX_MESSAGE_DATA:
            raise ValueError(f"message data must be whole words, at most {MAX_MESSAGE_DATA} bytes, "
                             f"not {len(m.data)}")
        out.append(_MESSAGE.pack(m.op, (f.seq + i) & 0xFF, len(m.data), m.addr & 0xFFFF_FFFF))
        out.append(bytes(m.data))
    return b"".join(out)


def decode_frame(payload: bytes) -> Frame:
    """The frame in ``payload`` (the bytes after the Ethernet header; trailing padding is ignored)."""
    if len(payload) < _FRAME.size:
        raise ProtocolError(f"{len(payload)} bytes is shorter than a frame header")
    version, flags, count, seq, frame, credit, acked = _FRAME.unpack_from(payload)
    if version != VERSION_MAJOR:
        raise ProtocolError(f"version {version}, not {VERSION_MAJOR}")
    pos, messages = _FRAME.size, []
    for i in range(count):
        if pos + _MESSAGE.size > len(payload):
            raise ProtocolError(f"message {i} of {count} starts past the frame's end")
        op, mseq, length, addr = _MESSAGE.unpack_from(payload, pos)
        pos += _MESSAGE.size
        if length % 4 or length > MAX_MESSAGE_DATA or pos + length > len(payload):
            raise ProtocolError(f"message {i} has a bad length {length}")
        if mseq != (seq + i) & 0xFF:
            raise ProtocolError(f"message {i} is numbered {mseq}, not {(seq + i) & 0xFF}")
        messages.append(Message(op, addr, bytes(payload[pos:pos + length]), mseq))
        pos += length
    return Frame(seq, frame, credit, acked, tuple(messages), flags, version)


def read_request(words: int, tag: int) -> bytes:
    """Data of a READ message."""
    return _READ.pack(words, tag)


def hello(mtu: int, window: int, host_base: int, host_size: int, local_base: int = 0,
          local_size: int = 0) -> bytes:
    """Data of a HELLO message."""
    return _HELLO.pack(HELLO_MAGIC_VALUE, SPEC_HASH, mtu, window, host_base, host_size, local_base, local_size)


def parse_hello(data: bytes) -> dict[str, int]:
    """The fields of a HELLO message's data; ProtocolError if it is not this protocol's."""
    if len(data) < _HELLO.size:
        raise ProtocolError(f"a Hello is {_HELLO.size} bytes, not {len(data)}")
    values = dict(zip((m.name for m in HELLO.members), _HELLO.unpack_from(data)))
    if values["magic"] != HELLO_MAGIC_VALUE:
        raise ProtocolError(f"Hello magic {values['magic']:#x}, not {HELLO_MAGIC_VALUE:#x}")
    if values["spec_hash"] != SPEC_HASH:
        raise ProtocolError(f"the peer speaks host-link spec {values['spec_hash']:#010x}, this side "
                            f"{SPEC_HASH:#010x}: rebuild the older side")
    return values
