"""The board's side of the ``eth`` host link: message engines between the NIC and a raw-Ethernet port.

Ref: splitnic_spec.hostlink (the protocol).

* :class:`Encoder` (NIC to host): the NIC's DMA writes into the host window,
  its IRQ and the answers to host READs, as numbered messages batched in frames,
  within the host's credit.
* :class:`Decoder` (host to NIC): checks each frame whole, then carries out its
  WRITEs and READs on the board's bus in order; tells the encoder what to
  acknowledge, what credit to grant and when to NAK.

Both work on the frame after its Ethernet header, as 32-bit little-endian
words (:mod:`.layouts`); adding and stripping the Ethernet header is the SoC's.
"""

from .decoder import Decoder, DecoderCounters
from .encoder import Encoder, EncoderCounters
from .layouts import AnswerWord, LinkSent, LinkState, RxWord, TxWord

__all__ = ["Encoder", "EncoderCounters", "Decoder", "DecoderCounters", "AnswerWord", "LinkSent", "LinkState",
           "RxWord", "TxWord"]
