"""LiteX's PacketFIFO with and without targets/packet_fifo_fix.py, in migen's simulator.

The failing case is Etherbone's: packets queue behind a consumer that waits
(the bus), and a packet's last word is offered while the payload FIFO is
full.  Every packet must come out once, whole; LiteX 2024.12's PacketFIFO
makes a phantom one.
"""

from __future__ import annotations

from migen import run_simulation

from litex.soc.interconnect import stream
from litex.soc.interconnect.packet import PacketFIFO
from splitnic_gateware.targets.packet_fifo_fix import fix_packet_fifos

_LAYOUT = [("data", 32), ("tag", 8)]          # a payload word and a per-packet parameter
DEPTH = 4


def _through(fifo: PacketFIFO, packets: list[list[int]], stall: int) -> list[tuple[int, list[int]]]:
    """Offer ``packets`` (tag i for packet i) while the far side waits ``stall`` clocks, then drain."""
    out: list[tuple[int, list[int]]] = []

    def producer():
        for tag, words in enumerate(packets):
            for i, word in enumerate(words):
                yield fifo.sink.valid.eq(1)
                yield fifo.sink.data.eq(word)
                yield fifo.sink.tag.eq(tag)
                yield fifo.sink.last.eq(i == len(words) - 1)
                yield
                while not (yield fifo.sink.ready):
                    yield
        yield fifo.sink.valid.eq(0)

    def consumer():
        current: list[int] = []
        for cycle in range(stall + 40 * sum(len(p) for p in packets)):
            ready = cycle >= stall
            yield fifo.source.ready.eq(ready)
            yield
            if ready and (yield fifo.source.valid):
                current.append((yield fifo.source.data))
                if (yield fifo.source.last):
                    out.append(((yield fifo.source.tag), current))
                    current = []

    run_simulation(fifo, [producer(), consumer()])
    return out


def _packets() -> list[list[int]]:
    # The second packet's last word meets the payload FIFO full (DEPTH words, +1 buffered).
    return [[0x100 + i for i in range(3)], [0x200 + i for i in range(3)], [0x300 + i for i in range(2)]]


def _fifo() -> PacketFIFO:
    return PacketFIFO(stream.EndpointDescription(payload_layout=[_LAYOUT[0]], param_layout=[_LAYOUT[1]]),
                      payload_depth=DEPTH, param_depth=1, buffered=True)


def test_litex_2024_12_packet_fifo_replays_a_phantom_packet() -> None:
    # The bug the fix is for, so that this file fails once LiteX no longer has it.
    packets = _packets()
    out = _through(_fifo(), packets, stall=30)
    assert out != list(enumerate(packets)), "LiteX's PacketFIFO no longer needs packet_fifo_fix.py"


def test_the_fixed_packet_fifo_passes_every_packet_once_and_whole() -> None:
    packets = _packets()
    fifo = _fifo()
    assert fix_packet_fifos(fifo) == 1
    assert _through(fifo, packets, stall=30) == list(enumerate(packets))
    assert fix_packet_fifos(fifo) == 0         # once only


def test_the_fixed_packet_fifo_without_stalls() -> None:
    packets = [[i * 16 + k for k in range(1 + i % 4)] for i in range(12)]
    fifo = _fifo()
    fix_packet_fifos(fifo)
    assert _through(fifo, packets, stall=0) == list(enumerate(packets))
