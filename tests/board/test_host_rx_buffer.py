"""The host-link port's receive buffer (targets/host_rx_buffer.py), cycle by cycle in migen's simulator.

The PHY side never waits, as a PHY does not; the far side stalls as Etherbone
does when the bus is busy.  Every frame must come out whole and in order or
not at all, and every frame that does not come out must be counted.
"""

from __future__ import annotations

import random
import re
import subprocess

import pytest
from migen import run_simulation
from migen.fhdl.verilog import convert

from liteeth.common import eth_phy_description
from splitnic_gateware.targets.colorlight import _tool
from splitnic_gateware.targets.host_rx_buffer import HostRxBuffer
from splitnic_spec.board import HOST_RX_BUFFER_BYTES

from tests.conftest import REPO_ROOT

DEPTH = 64


def _frames(rng: random.Random, count: int, longest: int) -> list[list[int]]:
    return [[rng.getrandbits(32) for _ in range(rng.randint(1, longest))] for _ in range(count)]


def _run(frames: list[list[int]], ready_pattern, gap: int = 1) -> tuple[list[list[int]], int, int]:
    """Push ``frames`` (words) into the buffer; ``ready_pattern(cycle)`` drives the far side's
    ready.  Returns the frames that came out, the ``dropped`` counter and the drop pulses."""
    dut = HostRxBuffer(eth_phy_description(32), DEPTH)
    out: list[list[int]] = []
    pulses = [0]
    cycles = sum(len(f) + gap for f in frames) * 10 + 500
    state = {"sent": False}

    def phy():
        for frame in frames:
            for i, word in enumerate(frame):
                yield dut.sink.valid.eq(1)
                yield dut.sink.data.eq(word)
                yield dut.sink.last_be.eq(0b1000 if i == len(frame) - 1 else 0)
                yield dut.sink.last.eq(i == len(frame) - 1)
                yield
                assert (yield dut.sink.ready), "the buffer made the PHY wait"
                pulses[0] += (yield dut.drop)
            yield dut.sink.valid.eq(0)
            for _ in range(gap):
                yield
        state["sent"] = True

    def far_side():
        current: list[int] = []
        for cycle in range(cycles):
            ready = ready_pattern(cycle) or state["sent"]
            yield dut.source.ready.eq(ready)
            yield
            if ready and (yield dut.source.valid):
                current.append((yield dut.source.data))
                if (yield dut.source.last):
                    assert (yield dut.source.last_be) == 0b1000
                    out.append(current)
                    current = []
                else:
                    assert (yield dut.source.last_be) == 0
        assert not current, "a frame came out without its last word"

    counter = []

    def read_counter():
        for _ in range(cycles + 5):
            yield
        counter.append((yield dut.dropped.status))

    run_simulation(dut, [phy(), far_side(), read_counter()])
    return out, counter[0], pulses[0]


def _is_whole_subsequence(out: list[list[int]], frames: list[list[int]]) -> bool:
    it = iter(frames)
    return all(any(frame == candidate for candidate in it) for frame in out)


def test_frames_pass_whole_and_in_order_when_the_far_side_keeps_up() -> None:
    frames = _frames(random.Random(1), 40, DEPTH // 2)
    # The far side misses one clock in seven; the PHY leaves eight idle between frames.
    out, dropped, pulses = _run(frames, lambda cycle: cycle % 7 != 0, gap=8)
    assert out == frames
    assert dropped == pulses == 0


def test_a_stalled_far_side_costs_whole_frames_each_counted() -> None:
    rng = random.Random(2)
    frames = _frames(rng, 60, 20)
    # Stalls far longer than the buffer holds, between short spells of reading.
    out, dropped, pulses = _run(frames, lambda cycle: (cycle // 50) % 8 == 0, gap=1)
    assert dropped > 0, "the test never filled the buffer"
    assert len(out) + dropped == len(frames), (len(out), dropped)
    assert pulses == dropped
    assert _is_whole_subsequence(out, frames), "a frame came out cut, merged or out of order"


def test_a_frame_longer_than_the_buffer_is_dropped_and_the_next_one_passes() -> None:
    rng = random.Random(3)
    too_long, after = [rng.getrandbits(32) for _ in range(DEPTH + 5)], [7, 8, 9]
    out, dropped, _ = _run([[1, 2], too_long, after], lambda cycle: True)
    assert out == [[1, 2], after]
    assert dropped == 1


def test_back_to_back_frames_without_a_gap() -> None:
    frames = _frames(random.Random(4), 30, 8)
    out, dropped, _ = _run(frames, lambda cycle: True, gap=0)
    assert out == frames and dropped == 0


@pytest.mark.yowasp
def test_the_buffer_maps_to_block_ram_and_only_its_counter_is_on_the_csr_bus() -> None:
    # LiteX's AutoCSR once put the memory on the CSR bus too: a third, writing port that no
    # block RAM has, so yosys built 41 kbit of flip-flops and the bitstream build died.
    depth = HOST_RX_BUFFER_BYTES // 4
    dut = HostRxBuffer(eth_phy_description(32), depth)
    assert dut.get_memories() == [] and [c.name for c in dut.get_csrs()] == ["dropped"]
    ios = {dut.sink.valid, dut.sink.last, dut.sink.data, dut.sink.last_be, dut.sink.error, dut.source.valid,
           dut.source.ready, dut.source.last, dut.source.data, dut.source.last_be, dut.source.error,
           dut.dropped.status}
    # YoWASP's yosys sees a /tmp of its own: the Verilog goes under the repository.
    work = REPO_ROOT / ".cache" / "test-host-rx-buffer"
    work.mkdir(parents=True, exist_ok=True)
    convert(dut, ios=ios, name="host_rx_buffer").write(str(work / "host_rx_buffer.v"))
    run = subprocess.run([_tool("yosys"), "-q", "-p", "read_verilog host_rx_buffer.v; "
                          "synth_ecp5 -top host_rx_buffer -run begin:map_luts; tee -o stat.txt stat"],
                         cwd=work, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    cells = dict((name, int(n)) for n, name in re.findall(r"^\s+(\d+)\s+(\S+)$", (work / "stat.txt").read_text(), re.M))
    # 41 bits (data, last_be, error, last) x 1024 words: three 18-bit-wide DP16KD, and no memory left over.
    assert cells.get("DP16KD") == 3, cells
    assert not any(name.startswith("$mem") for name in cells), cells
    assert cells.get("TRELLIS_FF", 0) < 200, cells
