"""Layouts shared by the host link's encoder and decoder.

Ref: splitnic_spec.hostlink (its module docstring is the protocol); docs/registers.md,
"Frame and message formats", is generated from the same structures.

The wire formats (:data:`FrameHeader`, :data:`MessageHeader`, :data:`ReadRequest`,
:data:`Hello`) are built from the spec's structures, so no bit position is written
twice.  Every structure is little-endian and a whole number of 32-bit words, so
word ``i`` of a header on the 32-bit stream is bits ``32*i ..`` of its layout
(:func:`word`).

Between the engines and the Ethernet side, a frame's bytes after the Ethernet
header travel as 32-bit little-endian words (byte 0 of the frame in bits 7..0 of
the first word):

* :func:`tx_stream`: encoder to the Ethernet TX side, with backpressure; a frame
  is always whole words (every header and every message is), so ``last`` is all
  it needs.
* :func:`rx_stream`: Ethernet RX side to the decoder, which holds ``ready`` high
  (the wire cannot wait; ``ready`` is there for LiteEth's streams, and so that
  the port exists in Verilog).  ``keep`` on the last word says which of its bytes came
  (Ethernet pads a short frame, and a frame cut short ends mid-word); a last
  word that is not whole is padding, never part of a message.  ``error`` on
  the last word: the MAC found the frame bad (its FCS); nothing of it counts.

Between the engines: :class:`LinkState` (decoder to encoder: what to put in the
frame headers, what the host granted, whether to send a frame now),
:class:`LinkSent` (encoder to decoder: a frame left, with which credit),
:class:`ReplyRequest` (decoder to encoder: a HELLO answer or a STALE frame for the
station whose frame just ended) and :func:`answer_stream` (the words a host READ
asked for).
"""

# No "from __future__ import annotations": Amaranth reads layouts at run time.

from amaranth.hdl import Value, unsigned
from amaranth.lib import data, stream

from splitnic_spec import hostlink
from splitnic_spec.model import Struct

__all__ = ["spec_layout", "word", "FrameHeader", "MessageHeader", "ReadRequest", "Hello",
           "FRAME_HEADER_WORDS", "MESSAGE_HEADER_WORDS", "SEQ_BITS", "FRAME_BITS", "MSG_SEQ_BITS",
           "LEN_BITS", "SESSION_BITS", "TAG_BITS", "RxWord", "TxWord", "AnswerWord", "LinkState", "LinkSent",
           "ReplyRequest", "serial_after",
           "rx_stream", "tx_stream", "answer_stream", "serial_before"]


def spec_layout(struct: Struct) -> data.StructLayout:
    """Value of the Amaranth layout of a spec structure.

    Packed little-endian, so a member's bit offset is 8 x its byte offset; a
    member with named bits (FrameHeader.flags) gets them as a layout of its own.
    """
    def member(m):
        if not m.bits:
            return m.width
        return data.FlexibleLayout(m.width, {b.name: data.Field(unsigned(b.width), b.lsb) for b in m.bits})
    return data.StructLayout({m.name: member(m) for m in struct.members})


def word(view, index: int) -> Value:
    """Value of 32-bit word ``index`` of ``view`` as it travels on the word stream."""
    return view.as_value().word_select(index, 32)


FrameHeader = spec_layout(hostlink.FRAME_HEADER)
MessageHeader = spec_layout(hostlink.MESSAGE_HEADER)
ReadRequest = spec_layout(hostlink.READ_REQUEST)
Hello = spec_layout(hostlink.HELLO)
FRAME_HEADER_WORDS = hostlink.FRAME_HEADER.size // 4
MESSAGE_HEADER_WORDS = hostlink.MESSAGE_HEADER.size // 4
SEQ_BITS = hostlink.FRAME_HEADER.member("seq").width
FRAME_BITS = hostlink.FRAME_HEADER.member("frame").width
MSG_SEQ_BITS = hostlink.MESSAGE_HEADER.member("seq").width
LEN_BITS = hostlink.MESSAGE_HEADER.member("len").width
SESSION_BITS = hostlink.FRAME_HEADER.member("session").width
TAG_BITS = hostlink.READ_REQUEST.member("tag").width
#: FrameHeader.count: messages in one frame.
COUNT_BITS = hostlink.FRAME_HEADER.member("count").width
#: ReadRequest.words: words one READ asks for.
READ_WORDS_BITS = hostlink.READ_REQUEST.member("words").width


class RxWord(data.Struct):
    """One word of a received frame (after the Ethernet header)."""
    data: 32
    last: 1
    #: On the last word: which of its bytes came (bit i: byte i); a word without all four is padding.
    keep: 4
    #: On the last word: the frame check sequence failed (or the MAC saw another error): the frame is
    #: malformed whatever its words say, even when every message came before the bad word.
    error: 1


class TxWord(data.Struct):
    """One word of a frame to send (after the Ethernet header)."""
    data: 32
    last: 1


class AnswerWord(data.Struct):
    """One word of the data a host READ asked for, decoder to encoder."""
    data: 32
    #: The READ's tag (the ANSWER's addr) and its word count: the same on every word of one answer.
    tag: TAG_BITS
    words: READ_WORDS_BITS
    last: 1


class LinkState(data.Struct):
    """Decoder to encoder: what the board's frames carry, and whether one should go now."""
    #: The board is bound to a host (sends nothing but answers while not).
    bound: 1
    #: The bound session (FrameHeader.session of the board's frames).
    session: SESSION_BITS
    #: Number of the next message the board expects from the host (FrameHeader.acked).
    acked: SEQ_BITS
    #: Frames the board grants the host: it may send frames numbered below this (FrameHeader.credit).
    credit: FRAME_BITS
    #: The host's grant (the newest it sent): the board sends no frame numbered at or beyond it.
    peer_credit: FRAME_BITS
    #: The host's acked (the newest it sent): the board's frames whose messages are all before it are
    #: delivered and leave the replay ring.
    peer_acked: SEQ_BITS
    #: One cycle: a frame of the session came with NAK: the board goes back to the host's acked.
    peer_nak: 1
    #: The board dropped frames after a gap: set NAK on the next frame.
    nak: 1
    #: Send a frame now, with no messages if none are waiting (NAK, or credit grown by half a window).
    #: Registered: it follows the rest of the state one cycle late.
    update: 1


class LinkSent(data.Struct):
    """Encoder to decoder: one-cycle strobe when a frame's header left."""
    frame: 1
    #: It carried NAK.
    nak: 1
    #: The credit it carried.
    credit: FRAME_BITS


class ReplyRequest(data.Struct):
    """Decoder to encoder (one cycle): answer the station whose frame just ended, outside the session.

    A HELLO answer (``stale`` 0: flags HELLO|ANSWER, BOUND if ``bound``) or a frame of no messages with
    STALE (``stale`` 1); either carries ``session``, the one of the frame answered.
    """
    valid: 1
    stale: 1
    bound: 1
    session: SESSION_BITS


def rx_stream() -> stream.Signature:
    """Signature of the decoder's input: received frame words (the decoder is always ready)."""
    return stream.Signature(RxWord)


def tx_stream() -> stream.Signature:
    """Signature of the encoder's output: frame words with backpressure."""
    return stream.Signature(TxWord)


def answer_stream() -> stream.Signature:
    """Signature of the READ answers, decoder to encoder."""
    return stream.Signature(AnswerWord)


def serial_before(a, b, bits: int) -> Value:
    """Value: 1 if number ``a`` comes before ``b`` in ``bits``-bit serial arithmetic (RFC 1982)."""
    diff = (b - a)[:bits]
    return (diff != 0) & ~diff[bits - 1]


def serial_after(a, b, bits: int) -> Value:
    """Value: 1 if number ``a`` comes after ``b`` in ``bits``-bit serial arithmetic: newer."""
    return serial_before(b, a, bits)
