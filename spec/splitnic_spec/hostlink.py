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
  ``Hello``.  See "Sessions" below.

Order: messages take effect in sequence order, so a doorbell written after
descriptors lands after them, and a completion the NIC writes after a frame's
data lands after it.

Sessions.  Every frame carries the ``session`` it belongs to: a random,
non-zero 32-bit number the host draws for each HELLO it sends (a new one
each time it opens or reopens the link).

* Discovery: the host sends a HELLO with flag ``PROBE`` to the broadcast
  address.  Every board that hears it answers (flags ``HELLO|ANSWER``, the
  request's ``session``, its own ``Hello``; ``BOUND`` if it is bound to
  another station) and changes nothing.  Each board has its own MAC address
  (from its flash's unique id), so the host names the one it wants when
  several answer.
* Binding: the host sends a HELLO without ``PROBE`` to that board's address
  (unicast).  An unbound board, or one bound to the same station, binds to
  the sender and its ``session``, restarts the numbering both ways (each
  side's next frame and message are number 0, nothing received yet) and
  answers (``HELLO|ANSWER``, the same ``session``).  A repeat of the request
  that bound it (same station, same session: the host resends its HELLO
  until answered, and the cable may duplicate it) is answered again and
  restarts nothing.  A board bound to another
  station ignores the request (counted as foreign) unless it has flag
  ``TAKEOVER`` (the host machine was replaced or rebooted with another
  address: an explicit choice of its user).  A request (``TAKEOVER`` too)
  that was not sent to the board's own address is dropped as malformed: a
  broadcast one would bind every board on the segment.
* The host takes only an answer with flag ``ANSWER`` and its own
  ``session``; any other HELLO (another host's request, a stale answer) is
  ignored and counted.  A board binds only for a request with a good magic
  and its own spec hash; it answers a discovery whatever the request's spec
  hash, so that the host can say which side to rebuild.
* A bound board takes frames only from its host's address with its
  ``session``; from anyone else it drops them (counted as foreign) without
  an answer.  A frame from its host's address with another session (the host
  restarted and its old frames are late) is dropped and answered with
  ``STALE`` as below, which the host ignores since it is not its session.
* A board that lost its session (reset or power cycle: it starts unbound) and
  gets a frame that is not a HELLO answers it with a frame of no messages and
  flag ``STALE``, carrying the frame's ``session``.  The host takes a
  ``STALE`` with its session from its board's address as "the board forgot
  us": it binds again (a new HELLO, unicast) and the driver re-arms the
  NIC's queues; frames in flight are lost, the link and the interface on
  top of it are not.  A board that was reset while a copy of the host's
  HELLO was still on the cable may bind again in the same session, numbered
  from 0: the host, hearing for ``LINK_TIMEOUT_MS`` a board whose ``acked``
  is behind its own or who answers only from behind what it already has,
  binds again too.  A host that hears nothing for ``LINK_TIMEOUT_MS``
  (a keepalive every ``KEEPALIVE_MS`` asks for an answer) reports the board
  silent and keeps asking; it never gives up on its own.

Sequence numbers and loss.  Each direction numbers its messages from 0
(``FrameHeader.seq`` is the number of the frame's first message, each message
carries the low 8 bits of its own number); each frame carries ``acked``, the
number of the next message the sender expects from the other side.  Both
directions recover the same way (go-back-N): the sender keeps each frame with
messages until the other side's ``acked`` passes it (the board in a replay
buffer of a few frames, bounded by its block RAM), and sends it again from
the first unacknowledged message when it sees ``NAK`` or when ``acked`` did
not move for a resend period (at least ``RESEND_US``; a side whose peer
answers more slowly waits twice the round trip it measures).  A resent frame
keeps its messages' numbers and takes a new frame number.

* A receiver carries out a frame only when it starts at or before the next
  expected message and all its bytes arrived (the frame check sequence is
  good and it is well-formed); messages before the expected one (a resend of
  what it already has) are skipped, the frame is counted as a duplicate, and
  the receiver answers with ``acked`` at once, so that a lost acknowledgement
  costs one resend.  The host carries out the rest of such a frame (the
  board's replay resends whole frames); the board may drop it whole, since
  the host trims a frame it sends again to start at the board's ``acked``.
* A frame that starts after the expected message is a gap: the receiver
  drops it and every later one until the expected message comes again,
  counts it, and sets ``NAK`` (once per gap) on its next frame.  So nothing
  is carried out out of order or twice, and a completion never lands before
  the frame data it describes.
* A side that took messages and has no frame of its own to send acknowledges
  them at once (at the latest at the end of a burst) with a frame of no
  messages, so that the other side's resend timer fires only on a loss and
  its replay buffer drains.

Nothing is silently missing: every gap is counted by the side that saw it,
and every message is carried out exactly once.

Flow control.  Each frame's ``credit`` lets the other side send frames
numbered (``FrameHeader.frame``, which counts every frame sent, a frame sent
again included) below it.  A frame of no messages (``count`` 0: an
acknowledgement, a grant, a NAK, a probe) is not numbered: its ``frame`` is
the sender's next number, which it does not take, and it needs no credit, so
that it gets through when both sides have used their credit.  Its ``seq`` is
the number of the next message the sender will send, so it shows a gap only
when one happened.

* The receiver's grant is ``next_frame + free``: ``next_frame`` is the newest
  of (one past a numbered frame's number, a frame of no messages' ``frame``)
  over every well-formed frame of the session it received, and ``free`` the
  frames it still has room for (``Hello.window`` to start with).  A frame lost
  on the cable costs no credit for long: the sender's next frame of no
  messages moves ``next_frame`` past it.
* Grants only grow: a side takes a ``credit`` only if it is newer (modulo
  2**16) than the one it has, so a late or duplicated frame cannot take
  credit back.  A window is below 2**14 frames (the host offers and takes
  at most 0x4000), so that serial comparison of frame numbers is never
  ambiguous.
* Nonsense is ignored, not believed: an ``acked`` past every message the
  side sent is not taken (counted as malformed), nor does a frame number far
  past the side's own grant move its ``next_frame``.
* A side whose grant grew by half its window since it last sent one sends a
  frame of no messages.  A side that has frames to send (new or again) and
  no credit, or unacknowledged frames and no progress, for a resend period
  sets flag ``PROBE`` on the first frame it sends again, or sends a frame of
  no messages with ``PROBE`` when its credit lets none go; the other side
  answers a ``PROBE`` (on any frame) at once with a frame carrying its
  ``acked`` and ``credit``.
  With the rule above that answer grants room past every frame the prober
  has numbered, so credit can never stay at zero while work is pending:
  a lost frame, a lost acknowledgement, a lost grant and a grant that could
  not be sent all end with the next probe (docs/hardware.md, "Why the link
  cannot deadlock").
* A side that has used its credit stops (the board stalls its DMA writes into
  the host window, so the NIC's receive FIFO fills and drops, counted, as on
  any NIC).  A frame that arrives with no free buffer (beyond the credit) is
  dropped, counted as an overrun and NAKed like a gap.

Foreign frames (another EtherType never reaches either side; this EtherType
from another source address or session, another version, a header that runs
past the frame) are dropped and counted.
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

VERSION_MAJOR = 2
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
MAX_MESSAGE_DATA = (MTU_JUMBO - 20 - 8) & ~3     # FrameHeader and MessageHeader sizes below (a test checks)
RESEND_US = 1000
#: Idle host: a PROBE this often; silence this long: the board is reported silent.
KEEPALIVE_MS = 500
LINK_TIMEOUT_MS = 1500

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
    Constant("RESEND_US", RESEND_US, "Microseconds without progress of acked (or without credit) before "
             "a side sends its unacknowledged frames again (or a PROBE)."),
    Constant("KEEPALIVE_MS", KEEPALIVE_MS, "Host: an idle link sends a PROBE this often, so that a board "
             "that lost the session is found without traffic."),
    Constant("LINK_TIMEOUT_MS", LINK_TIMEOUT_MS, "Host: no frame from the board for this long: the board is "
             "reported silent (the host keeps probing and binds again when it answers)."),
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
        Field("NAK", 1, 1, "The sender saw a gap (or an overrun) and dropped frames: send again from acked."),
        Field("ANSWER", 2, 1, "With HELLO: the board's answer to the host's request of the same session."),
        Field("PROBE", 3, 1, "Answer at once with acked and credit. With HELLO: discovery only, the board "
              "answers and binds nothing."),
        Field("TAKEOVER", 4, 1, "With HELLO: bind even if bound to another station."),
        Field("STALE", 5, 1, "Board to host: the frame's session is not the board's (it was reset): "
              "open the link again."),
        Field("BOUND", 6, 1, "With HELLO|ANSWER: the board is bound to another station."),
    )),
    StructField("count", 16, "Messages that follow (0: the frame only carries acked and credit)."),
    StructField("seq", 32, "Number of the first message (free-running per direction)."),
    StructField("frame", 16, "Number of this frame (free-running per direction, every frame counts)."),
    StructField("credit", 16, "The other side may send frames numbered below this (modulo 2**16)."),
    StructField("acked", 32, "Number of the next message the sender expects from the other side."),
    StructField("session", 32, "The session the frame belongs to: drawn by the host for its HELLO, "
                "echoed by the board; never 0."),
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
                "number or length, a message past the frame's end, too long, a bad frame check sequence; a "
                "HELLO request without the magic, or one that would bind with another spec hash, unusable "
                "sizes or not sent to the board's own address."),
    StructField("gaps", 32, "Well-formed frames dropped because they did not start at the next expected "
                "message (a frame before them was lost): each one NAKed."),
    StructField("bad_address", 32, "Messages skipped: a span outside the windows the host may reach, a "
                "READ of a bad size, an op the host may not send."),
    StructField("duplicates", 32, "Frames that came again, wholly or partly before the next expected "
                "message (a resend): dropped, and acked again at once."),
    StructField("overruns", 32, "In-sequence frames dropped for want of a free buffer (the host sent "
                "beyond its credit)."),
    StructField("tx_frames", 32, "Board-to-host frames sent."),
    StructField("tx_messages", 32, "Messages in those frames."),
    StructField("credit_stalls", 32, "Times a finished frame had to wait for the host's credit."),
    StructField("foreign", 32, "Frames dropped from another station or another session (HELLO requests "
                "of another station while bound included)."),
    StructField("resent_frames", 32, "Board-to-host frames sent again (NAK or resend timer)."),
    StructField("stale", 32, "Frames answered with STALE: the board had no session with their sender."),
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
FLAG_ANSWER = 1 << FRAME_HEADER.member("flags").bit("ANSWER").lsb
FLAG_PROBE = 1 << FRAME_HEADER.member("flags").bit("PROBE").lsb
FLAG_TAKEOVER = 1 << FRAME_HEADER.member("flags").bit("TAKEOVER").lsb
FLAG_STALE = 1 << FRAME_HEADER.member("flags").bit("STALE").lsb
FLAG_BOUND = 1 << FRAME_HEADER.member("flags").bit("BOUND").lsb


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
    session: int = 0


def encode_frame(f: Frame) -> bytes:
    """The bytes of ``f`` after the Ethernet header; message ``i`` gets sequence number ``f.seq + i``."""
    out = [_FRAME.pack(f.version, f.flags, len(f.messages), f.seq & 0xFFFF_FFFF, f.frame & 0xFFFF,
                       f.credit & 0xFFFF, f.acked & 0xFFFF_FFFF, f.session & 0xFFFF_FFFF)]
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
    version, flags, count, seq, frame, credit, acked, session = _FRAME.unpack_from(payload)
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
    return Frame(seq, frame, credit, acked, tuple(messages), flags, version, session)


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
