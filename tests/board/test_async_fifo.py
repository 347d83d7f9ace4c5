"""The clock-crossing FIFO with the registered read side (targets/async_fifo.py), in Migen simulation.

Its pointers wrap many times here (a short FIFO, thousands of words), both
sides stall at random and the clocks run at several ratios: every word comes
out once, in order, and a reader that always reads gets a word on every clock
once the FIFO holds some (the wire PHY's frames are back to back).
"""

from __future__ import annotations

import random

import pytest
from migen import ClockDomainsRenamer, Module
from migen.sim import run_simulation

from splitnic_gateware.targets.async_fifo import AsyncFifoFastRead


class _Dut(Module):
    def __init__(self, depth: int) -> None:
        self.submodules.fifo = ClockDomainsRenamer({"write": "w", "read": "r"})(AsyncFifoFastRead(16, depth))


def _run(seed: int, depth: int, words: int, clocks: dict, write_p: float, read_p: float) -> list[int]:
    rng = random.Random(seed)
    dut = _Dut(depth)
    fifo = dut.fifo
    data = [rng.getrandbits(16) for _ in range(words)]
    got: list[int] = []

    # Each clock, a side reads what the FIFO sees at this edge (its own strobe as written on the last
    # clock, the FIFO's flags and data) and counts a transfer when both are high, then sets its strobe.
    def writer():
        i = 0
        while i < len(data):
            if (yield fifo.we) and (yield fifo.writable):
                i += 1
            if i < len(data):
                yield fifo.din.eq(data[i])
            yield fifo.we.eq(i < len(data) and rng.random() < write_p)
            yield
        yield fifo.we.eq(0)

    def reader():
        for _ in range(words * 60 + 2000):
            if (yield fifo.re) and (yield fifo.readable):
                got.append((yield fifo.dout))
                if len(got) == len(data):
                    return
            yield fifo.re.eq(rng.random() < read_p)
            yield

    run_simulation(dut, {"w": [writer()], "r": [reader()]}, clocks=clocks)
    assert got == data, f"seed {seed}: {len(got)} of {len(data)} words, first difference at " \
        f"{next((i for i, (a, b) in enumerate(zip(got, data)) if a != b), min(len(got), len(data)))}"
    return got


_CLOCKS = [{"w": 12, "r": 4}, {"w": 4, "r": 12}, {"w": 6, "r": 7}, {"w": 10, "r": 10}]


@pytest.mark.parametrize("seed", range(8))
def test_every_word_crosses_once_in_order_as_the_pointers_wrap(seed: int) -> None:
    """Each clock ratio with the FIFO mostly empty (the reader keeps up: the pointers wrap while they are
    equal) and mostly full (the writer waits on ``writable``)."""
    clocks = _CLOCKS[seed % 4]
    write_p, read_p = (0.6, 1.0) if seed < 4 else (1.0, 0.4)
    _run(seed, depth=8, words=2000, clocks=clocks, write_p=write_p, read_p=read_p)


def test_a_full_fifo_drains_one_word_per_read_clock() -> None:
    """The wire PHY reads a frame's bytes on consecutive clocks: no bubble once the words are in."""
    dut = _Dut(16)
    fifo = dut.fifo
    gaps: list[int] = []

    def writer():
        for i in range(16):
            yield fifo.we.eq(1)
            yield fifo.din.eq(i)
            yield
        yield fifo.we.eq(0)

    def reader():
        for _ in range(40):           # the 16 words are in and have crossed
            yield
        yield fifo.re.eq(1)
        last, out = None, []
        for cycle in range(40):
            yield
            if (yield fifo.readable):
                value = yield fifo.dout
                if value != last:
                    out.append((cycle, value))
                    last = value
        for (c0, _), (c1, _) in zip(out, out[1:]):
            gaps.append(c1 - c0)
        assert [v for _, v in out] == list(range(16))

    run_simulation(dut, {"w": [writer()], "r": [reader()]}, clocks={"w": 12, "r": 4})
    assert gaps and set(gaps) == {1}
