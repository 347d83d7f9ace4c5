"""A fix for LiteX 2024.12's ``PacketFIFO``, applied to every instance in a SoC before it is finalized.

Ref: litex/soc/interconnect/packet.py (``PacketFIFO``); later LiteX releases
carry the same fix ("Qualify with payload_fifo.sink.ready").

``PacketFIFO`` stores a packet's words in one FIFO and its parameters in
another, written at the packet's last word.  In LiteX 2024.12 the
parameters are written whenever the last word is offered, also while the
payload FIFO is full and does not take it: the last word is offered again
the next cycle, and the parameters go in twice.  The extra entry later comes
out as a phantom packet of stale words.  In LiteEth's Etherbone (whose
record receiver, sender and probe are PacketFIFOs) that happens whenever
records queue up behind a bus access that waits, such as a DMA burst of the
NIC or a read of an unmapped address: from then on every record is read one
word out of step and the board stops answering until it is reset.

The fix writes the parameters only when the payload FIFO takes the last word
too.  Migen keeps the last of several assignments to a signal in one
module, so the corrected assignment is appended to each instance's own
combinational statements, after LiteX's.
"""

from __future__ import annotations

from migen import Module

from litex.soc.interconnect.packet import PacketFIFO

__all__ = ["fix_packet_fifos"]


def _modules(module: Module):
    yield module
    for _, sub in getattr(module, "_submodules", []):
        yield from _modules(sub)


def fix_packet_fifos(module: Module) -> int:
    """Correct every :class:`PacketFIFO` in ``module``'s tree (not yet finalized); how many there were."""
    fixed = 0
    for sub in _modules(module):
        if isinstance(sub, PacketFIFO) and not getattr(sub, "_splitnic_fixed", False):
            sink, params, payload = sub.sink, sub.param_fifo.sink, sub.payload_fifo.sink
            sub.comb += params.valid.eq(sink.valid & sink.last & payload.ready)
            sub._splitnic_fixed = True
            fixed += 1
    return fixed
