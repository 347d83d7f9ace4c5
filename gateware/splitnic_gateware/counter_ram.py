"""Event counters kept in a block RAM: 32-bit totals in memory, narrow pending counts in flip-flops.

Ref: docs/registers.md (generated from splitnic_spec.nic): the RC counters.

Why: as flip-flops, each 32-bit counter costs 32 flip-flops, a 32-bit adder and
32 inputs of the register file's read multiplexer.  On the Colorlight i5 the
NIC's 25 counters were some 1 400 of its 7 900 LUTs (yosys alone), room the
``eth`` host link's engines need.  Here each counter is one word of a block
RAM and a pending count a few bits wide; only one 32-bit adder serves them
all.  Measured on the board's NIC: 264 fewer carry cells and 475 fewer
flip-flops; the pending counts' load and pick multiplexers take back about
as many LUTs as the read multiplexer gave up.

How:

* every cycle, each source's strobe adds its amount to its pending count;
* a two-stage flusher folds one pending count into its word: stage 1 reads
  the word and takes the pending count (which restarts from this cycle's
  event), stage 2 writes word + taken count.  It visits the counters in
  turn, so no pending count goes more than a round without being folded;
* a read (``read_request`` with ``read_index``, one cycle) jumps the turn:
  the flusher folds that counter at once and stage 2 presents the total on
  ``read_value`` with ``read_done``.  The total is exact at the cycle of the
  request, so a reader sees each counter grow and never lose an event;
* ``clear`` (one cycle) zeroes every counter at once: the pending counts
  restart, a flag per counter says "its word is 0" until the flusher next
  writes it, and a fold already under way is dropped.  The domain's reset
  does the same, whatever the block RAM held.

The pending counts never overflow: a read takes stage 1 for one cycle and
the register file takes at least three cycles per read, so a round of ``n``
counters ends within ``2 * n + 4`` cycles; a pending count is wide enough for
that many events of the largest amount its source can add.
"""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module, Mux, Signal, Value
from amaranth.lib.memory import Memory

__all__ = ["CounterRam"]

COUNTER_BITS = 32


class CounterRam(Elaboratable):
    """``len(sources)`` 32-bit event counters; counter ``i`` adds ``amount`` in each cycle its ``strobe`` is high.

    ``sources``: a list of ``(strobe, amount)`` values.  Ports (plain signals):
    ``clear`` in; ``read_request`` and ``read_index`` in; ``read_done`` and
    ``read_value`` out, two cycles after the request.
    """

    def __init__(self, sources: list[tuple[Value, Value]]) -> None:
        if not sources:
            raise ValueError("a counter RAM needs at least one counter")
        self.sources = [(Value.cast(strobe), Value.cast(amount)) for strobe, amount in sources]
        self.count = len(self.sources)
        self.clear = Signal()
        self.read_request = Signal()
        self.read_index = Signal(range(self.count))
        self.read_done = Signal()
        self.read_value = Signal(COUNTER_BITS)

    def pending_bits(self, index: int) -> int:
        """Width of counter ``index``'s pending count: a whole round's events at the largest amount."""
        _, amount = self.sources[index]
        most = ((1 << len(amount)) - 1) * (2 * self.count + 4)
        return min(COUNTER_BITS, most.bit_length())

    def elaborate(self, platform) -> Module:
        m = Module()
        n = self.count
        # ram_style: these are a few dozen words; left to itself yosys may build them of LUTs.
        m.submodules.words = words = Memory(shape=COUNTER_BITS, depth=n, init=[], attrs={"ram_style": "block"})
        wr = words.write_port()
        rd = words.read_port(transparent_for=(wr,))   # a fold of the counter written this very cycle

        pending = [Signal(self.pending_bits(i), name=f"pending{i}") for i in range(n)]
        # Bit i: counter i's word is stale, its total is 0.  All set at reset too: the block RAM keeps
        # what it held across a warm reset (or, in the netlist's simulation, starts random).
        is_zero = Signal(n, init=(1 << n) - 1)
        turn = Signal(range(n))             # the counter the flusher visits next when no read jumps in

        # Stage 1: pick a counter, read its word, take its pending count.
        pick = Signal(range(n))
        m.d.comb += pick.eq(Mux(self.read_request, self.read_index, turn))
        with m.If(~self.read_request):
            m.d.sync += turn.eq(Mux(turn == n - 1, 0, turn + 1))
        m.d.comb += rd.addr.eq(pick)
        taken = Signal(max(len(p) for p in pending))
        with m.Switch(pick):
            for i in range(n):
                with m.Case(i):
                    m.d.comb += taken.eq(pending[i])
        s2_valid = Signal()
        s2_read = Signal()
        s2_index = Signal(range(n))
        s2_taken = Signal.like(taken)
        m.d.sync += [s2_valid.eq(~self.clear), s2_read.eq(self.read_request), s2_index.eq(pick),
                     s2_taken.eq(taken)]

        for i, (strobe, amount) in enumerate(self.sources):
            added = Mux(strobe, amount, 0)
            with m.If(self.clear):
                m.d.sync += pending[i].eq(0)
            with m.Elif(pick == i):
                m.d.sync += pending[i].eq(added)
            with m.Else():
                m.d.sync += pending[i].eq(pending[i] + added)

        # Stage 2: write the word back with the taken count folded in.
        total = Signal(COUNTER_BITS)
        m.d.comb += total.eq(Mux(is_zero.bit_select(s2_index, 1), 0, rd.data) + s2_taken)
        with m.If(s2_valid & ~self.clear):
            m.d.comb += [wr.en.eq(1), wr.addr.eq(s2_index), wr.data.eq(total)]
        m.d.comb += [self.read_done.eq(s2_read), self.read_value.eq(total)]

        with m.If(self.clear):
            m.d.sync += is_zero.eq((1 << n) - 1)
        with m.Elif(s2_valid):
            m.d.sync += is_zero.bit_select(s2_index, 1).eq(0)
        return m
