"""Round-robin Wishbone arbiter: several burst-capable masters onto one bus.

Ref: Wishbone B4 (OpenCores) §3.2 (classic cycles), §4.3 (incrementing bursts).

:func:`round_robin_pick` is the rotation itself, shared with the TX engine,
which picks its next TX queue the same way.

A master keeps the bus for as long as it holds CYC, so a burst (or any run of
cycles a master wants to keep together) is never split.  When the owner drops
CYC the grant moves to the next requesting master after it, in index order,
so no master can starve another.  Signals are muxed combinationally from the
registered grant: switching owners costs one idle cycle.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..bus import WishboneSignature

__all__ = ["WishboneArbiter", "round_robin_pick"]


def round_robin_pick(m: Module, last: Value, requests: Value) -> Signal:
    """The requester to serve next: the first one set in ``requests`` after ``last``, walking up
    and wrapping round to ``last`` itself (combinational; ``last`` if nothing requests).

    Served in turn, every requester waits for at most ``len(requests) - 1`` others between two
    grants, whatever the others ask: work-conserving (an idle requester's turn goes to the next)
    and starvation-free.
    """
    n = len(requests)
    pick = Signal(range(max(n, 2)))
    m.d.comb += pick.eq(last)
    with m.Switch(last):
        for i in range(n):
            with m.Case(i):
                # Walk from the requester after i round to i; the first one found wins,
                # so assign in reverse and let the nearest one land last.
                for k in reversed(range(1, n + 1)):
                    j = (i + k) % n
                    with m.If(requests[j]):
                        m.d.comb += pick.eq(j)
    return pick


class WishboneArbiter(wiring.Component):
    """``masters`` Wishbone initiators (ports ``m0``, ``m1``, ...) share the target port ``bus``."""

    def __init__(self, masters: int, *, addr_width: int = 30, burst: bool = True) -> None:
        if not isinstance(masters, int) or masters < 1:
            raise TypeError(f"masters must be a positive integer, not {masters!r}")
        self._n = masters
        sig = WishboneSignature(addr_width, burst=burst)
        members = {f"m{i}": In(sig) for i in range(masters)}
        members["bus"] = Out(sig)
        super().__init__(members)

    @property
    def masters(self) -> list:
        """The initiator-facing ports, in priority-rotation order."""
        return [getattr(self, f"m{i}") for i in range(self._n)]

    def elaborate(self, platform) -> Module:
        m = Module()
        masters = self.masters
        n = self._n
        grant = Signal(range(max(n, 2)))
        requests = Signal(n)
        m.d.comb += requests.eq(sum((mst.cyc << i) for i, mst in enumerate(masters)))

        # Re-arbitrate only while the owner is idle: hold the grant for a whole cycle/burst.
        owner_busy = Signal()
        with m.Switch(grant):
            for i, mst in enumerate(masters):
                with m.Case(i):
                    m.d.comb += owner_busy.eq(mst.cyc)
        pick = round_robin_pick(m, grant, requests)
        with m.If(~owner_busy & requests.any()):
            m.d.sync += grant.eq(pick)

        bus = self.bus
        fields_out = [name for name in ("adr", "dat_w", "sel", "we", "cti", "bte") if hasattr(bus, name)]
        with m.Switch(grant):
            for i, mst in enumerate(masters):
                with m.Case(i):
                    m.d.comb += [getattr(bus, f).eq(getattr(mst, f)) for f in fields_out]
                    m.d.comb += [bus.cyc.eq(mst.cyc), bus.stb.eq(mst.stb), mst.ack.eq(bus.ack)]
        for mst in masters:
            m.d.comb += mst.dat_r.eq(bus.dat_r)
        return m
