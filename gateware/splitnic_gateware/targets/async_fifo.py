"""A clock-crossing FIFO whose read side keeps its pointer logic off its critical path.

Ref: migen/genlib/fifo.py (AsyncFIFO, AsyncFIFOBuffered: the same Gray-coded
pointers, each crossing through a two-flop synchroniser); C. E. Cummings,
"Simulation and Synthesis Techniques for Asynchronous FIFO Design" (SNUG 2002).

Why: the wire PHY's transmit FIFO is 2 KiB deep and read at 125 MHz.  In
migen's AsyncFIFO a read goes pointer -> 12-bit "not empty" compare -> read
enable -> increment -> Gray code -> pointer in one clock; on the i5 that loop
was ``nic_rx``'s slowest path (7.85 ns of its 8).  Here the read side keeps
the pointer and the pointer plus one in registers (binary and Gray), and
"not empty" is a register too, computed from both: a read only picks between
values that are already there.  "Not empty" sees the write pointer a clock
late, which can only make it say empty a clock longer, never the reverse.
The output is registered as in AsyncFIFOBuffered (``buffered=True``), so the
block RAM's read is not on a path either.  The write side is migen's.
"""

from __future__ import annotations

from migen import ClockDomainsRenamer, If, Memory, Module, Mux, Signal
from migen.genlib.cdc import GrayCounter, MultiReg
from migen.genlib.fifo import _FIFOInterface

from litex.soc.interconnect.stream import _FIFOWrapper

__all__ = ["AsyncFifoFastRead", "StreamAsyncFifoFastRead"]


def _gray(value: Signal) -> object:
    """Gray code of ``value`` (a Signal, so that a carry out of an addition cannot leak into the top bit)."""
    return value ^ value[1:]


class AsyncFifoFastRead(Module, _FIFOInterface):
    """migen's FIFO interface; domains ``write`` and ``read``; output registered (one more clock of latency)."""

    def __init__(self, width: int, depth: int) -> None:
        _FIFOInterface.__init__(self, width, depth)
        if depth < 4 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two of at least 4, not {depth}")
        bits = depth.bit_length() - 1          # address bits; the pointers have one more (full vs empty)

        # Write side: migen's.
        self.submodules.produce = produce = ClockDomainsRenamer("write")(GrayCounter(bits + 1))
        consume_gray = Signal(bits + 1)        # the read pointer, Gray-coded, registered in ``read``
        consume_wdomain = Signal(bits + 1)
        produce_rdomain = Signal(bits + 1)
        produce.q.attr.add("no_retiming")
        consume_gray.attr.add("no_retiming")
        self.specials += [MultiReg(produce.q, produce_rdomain, "read"),
                          MultiReg(consume_gray, consume_wdomain, "write")]
        self.comb += [
            produce.ce.eq(self.writable & self.we),
            self.writable.eq((produce.q[-1] == consume_wdomain[-1])
                             | (produce.q[-2] == consume_wdomain[-2])
                             | (produce.q[:-2] != consume_wdomain[:-2])),
        ]

        storage = Memory(self.width, depth)
        self.specials += storage
        wrport = storage.get_port(write_capable=True, clock_domain="write")
        rdport = storage.get_port(clock_domain="read")
        self.specials += wrport, rdport
        self.comb += [wrport.adr.eq(produce.q_binary[:-1]), wrport.dat_w.eq(self.din), wrport.we.eq(produce.ce)]

        # Read side: every value a read needs is a register.
        consume = Signal(bits + 1)             # binary read pointer
        consume_inc = Signal(bits + 1, reset=1)    # consume + 1
        consume_inc_gray = Signal(bits + 1, reset=1)  # Gray code of consume + 1
        consume_inc2 = Signal(bits + 1)        # consume + 2, for the register above
        nonempty = Signal()                    # the FIFO holds a word at ``consume`` (a clock late)
        take = Signal()                        # fill the output register (it is empty or being read)
        ce = Signal()                          # advance the read pointer this clock
        # Both candidates of "not empty" are compared with the write pointer in parallel, and the
        # read enable only picks one: kept apart, or yosys's opt_share folds the two compares into
        # one behind a mux of their inputs, and the enable runs through the whole compare again.
        empty_if_read, empty_if_kept = Signal(), Signal()
        empty_if_read.attr.add("keep")
        empty_if_kept.attr.add("keep")
        self.comb += [
            empty_if_read.eq(consume_inc_gray == produce_rdomain),
            empty_if_kept.eq(consume_gray == produce_rdomain),
            take.eq(self.re | ~self.readable),
            ce.eq(nonempty & take),
            # The memory reads the word the pointer has next clock.
            rdport.adr.eq(Mux(ce, consume_inc, consume)[:-1]),
            consume_inc2.eq(consume_inc + 1),
        ]
        self.sync.read += [
            If(ce,
                consume.eq(consume_inc),
                consume_inc.eq(consume_inc2),
                consume_gray.eq(consume_inc_gray),
                consume_inc_gray.eq(_gray(consume_inc2)),
            ),
            nonempty.eq(~Mux(ce, empty_if_read, empty_if_kept)),
            If(take,
                self.dout.eq(rdport.dat_r),
                self.readable.eq(nonempty),
            ),
        ]


class StreamAsyncFifoFastRead(_FIFOWrapper):
    """A LiteX stream over :class:`AsyncFifoFastRead`, like ``stream.AsyncFIFO(layout, depth, buffered=True)``."""

    def __init__(self, layout: list, depth: int) -> None:
        _FIFOWrapper.__init__(self, fifo_class=AsyncFifoFastRead, layout=layout, depth=depth)

