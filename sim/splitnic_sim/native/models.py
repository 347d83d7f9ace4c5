"""The native harness behind the cocotb models' interfaces, so a testbench runs on either.

Ref: docs/simulation.md ("The native harness").  :class:`GmiiSource` and
:class:`GmiiSink` answer what the scoreboard and line-rate tests ask of
cocotbext-eth's GmiiSource/GmiiSink (``send``, ``send_nowait``, ``wait``,
``count``, ``idle``, ``recv``) with frames as :class:`cocotbext.eth.GmiiFrame`
(its wire bytes, ``sim_time_sfd``/``sim_time_end``, tx_complete callbacks),
while the bytes move in C.  :class:`DmaTarget` shows the C target's error
count as ``errors``.  :func:`wait_cycles` lets cycles pass on either harness.
"""

from __future__ import annotations

from cocotb.triggers import ClockCycles, Timer
from cocotbext.eth import GmiiFrame

from . import CLOCK_NS, FIRST_EDGE_NS, Harness

__all__ = ["is_native", "wait_cycles", "GmiiSource", "GmiiSink", "DmaTarget"]


def is_native(dut) -> bool:
    """Whether ``dut`` is the native harness (``snic_harness``) rather than the bare NIC."""
    return dut._name == "snic_harness"


async def wait_cycles(dut, n: int) -> None:
    """Let ``n`` clock cycles pass: a simulator timer on the native harness, clock edges otherwise."""
    if is_native(dut):
        await Timer(n * CLOCK_NS, unit="ns")
    else:
        await ClockCycles(dut.clk, n)


def _steps(cycle: int) -> int:
    """Simulator time (ps steps) of the rising edge that ends ``cycle``."""
    return (FIRST_EDGE_NS + CLOCK_NS * (cycle - 1)) * 1000


class GmiiSource:
    """Frames towards the NIC, back to back with the minimum gap (as cocotbext-eth's GmiiSource)."""

    def __init__(self, harness: Harness) -> None:
        import cocotb
        self._h = harness
        self._next_tag = 1
        self._waiting: dict[int, GmiiFrame] = {}
        self._task = None
        self._cocotb = cocotb

    def _push(self, frame: GmiiFrame) -> None:
        tag = 0
        if frame.tx_complete is not None:
            tag = self._next_tag
            self._next_tag = self._next_tag % 0xFFFF_FFFF + 1
            self._waiting[tag] = frame
            if self._task is None:
                self._h.lib.snic_h_rx_notify(1)
                self._task = self._cocotb.start_soon(self._complete())
        self._h.send_frame(bytes(frame.data), raw=True, tag=tag)

    async def _complete(self) -> None:
        while True:
            await self._h.wake()
            for tag, sfd, end in self._h.sent():
                frame = self._waiting.pop(tag, None)
                if frame is not None:
                    frame.sim_time_sfd, frame.sim_time_end = _steps(sfd), _steps(end)
                    frame.handle_tx_complete()

    async def send(self, frame: GmiiFrame) -> None:
        self._push(frame)

    def send_nowait(self, frame: GmiiFrame) -> None:
        self._push(frame)

    def count(self) -> int:
        """Frames queued or on their way onto the wire."""
        return self._h.lib.snic_h_rx_pending()

    def idle(self) -> bool:
        return self.count() == 0

    async def wait(self) -> None:
        """Wait until every queued frame has left."""
        while self.count():
            await Timer(64 * CLOCK_NS, unit="ns")


class GmiiSink:
    """Frames the NIC sends, checked and collected in C (as cocotbext-eth's GmiiSink records them)."""

    def __init__(self, harness: Harness) -> None:
        self._h = harness
        self._frames: list[GmiiFrame] = []
        harness.lib.snic_h_tx_notify(1)

    def _collect(self) -> None:
        for data, sfd, end, flags in self._h.received():
            # GmiiSink opens a frame on the first TX_EN byte without storing it; so does this.
            frame = GmiiFrame(bytearray(data[1:]), [1] * (len(data) - 1) if flags & 1 else None)
            frame.sim_time_sfd, frame.sim_time_end = _steps(sfd), _steps(end)
            self._frames.append(frame)

    def count(self) -> int:
        self._collect()
        return len(self._frames)

    def idle(self) -> bool:
        return not self._h.lib.snic_h_tx_busy()

    async def recv(self) -> GmiiFrame:
        while not self.count():
            await self._h.wake()
        return self._frames.pop(0)


class DmaTarget:
    """The C DMA target's counters where WishboneDmaTarget's are."""

    def __init__(self, harness: Harness) -> None:
        self._h = harness

    @property
    def errors(self) -> int:
        return self._h.stats()["dma_errors"]

    @property
    def reads(self) -> int:
        return self._h.stats()["dma_reads"]

    @property
    def writes(self) -> int:
        return self._h.stats()["dma_writes"]
