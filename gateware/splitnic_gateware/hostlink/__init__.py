"""The board's side of the ``eth`` host link: message engines between the NIC and a raw-Ethernet port.

Ref: splitnic_spec.hostlink (the protocol, v2).

* :class:`Encoder` (NIC to host): the NIC's DMA writes into the host window,
  its IRQ and the answers to host READs, as numbered messages batched in frames,
  within the host's credit; each frame kept in a replay ring until the host
  acknowledges it, sent again (go-back-N) on NAK or the resend timer.
* :class:`Decoder` (host to NIC): checks each frame whole, binds the board to
  one host's session and answers discovery, strangers and stale sessions, then
  carries out the session's WRITEs and READs on the board's bus in order; tells
  the encoder what to acknowledge, what credit to grant, when to NAK and what
  the host acknowledged.
* :class:`~.link.HostLink`: both, and the host's address.

Both work on the frame after its Ethernet header, as 32-bit little-endian
words (:mod:`.layouts`); adding and stripping the Ethernet header is the SoC's.
"""

from .decoder import Decoder, DecoderCounters
from .encoder import Encoder, EncoderCounters
from .layouts import AnswerWord, LinkSent, LinkState, ReplyRequest, RxWord, TxWord

__all__ = ["Encoder", "EncoderCounters", "Decoder", "DecoderCounters", "AnswerWord", "LinkSent", "LinkState",
           "ReplyRequest", "RxWord", "TxWord"]
