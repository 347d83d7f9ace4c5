"""cocotb measurement of the board's host-link path at sys = 40 MHz: NIC frames per second over line rate.

Ref: splitnic_sim.hostlink_linerate (the design: both engines, the host MAC's
transmit pacing and the board bus in Amaranth; the cases and their bounds);
splitnic_spec.hostlink (encode_frame builds the host's frames).

Python sees transactions: the NIC's DMA bursts into the encoder's ``dma``
port, the host's words into the decoder's ``rx`` (skipping the cycles the
1 Gb/s wire leaves idle: a HELLO first, then frames that acknowledge what the
board sent), and a sample of the counters every SAMPLE_CYCLES.

``SPLITNIC_HOSTLINK_LINERATE`` holds JSON ``{"runs": [[mode, frame_bytes,
cycles], ...], "out": path}``; each run is one cocotb test (a fresh reset),
and after each the results so far are written to ``out`` as a JSON list.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cocotb
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly
from cocotb.utils import get_sim_time

from splitnic_gateware.bus import CTI_END, CTI_INCR
from splitnic_gateware.hostlink import DecoderCounters, EncoderCounters, RxWord
from splitnic_sim.hostlink_linerate import (BYTE_PS, CPL_SIZE, CYCLE_PS, HOST_GRANT, HOSTLINK_FRAME_OVERHEAD,
                                            LATENCY_CYCLES, MAX_BURST, MTU, RING_ENTRIES, RX_BUF_BASE, RX_BUF_SIZE,
                                            RX_CPL_RING, SESSION, SLOTS, SYS_HZ, TX_CPL_RING, WIRE_OVERHEAD, WORD_PS,
                                            dma_words, host_frames)
from splitnic_sim.tb.hostlink_common import unpack, words_of
from splitnic_spec import hostlink

log = logging.getLogger(__name__)

SAMPLE_CYCLES = 4
#: Host-link frames (encoder's for RX, decoder's commits for TX) before the measured window opens.
WARMUP_FRAMES = 2
_CONFIG = json.loads(os.environ.get("SPLITNIC_HOSTLINK_LINERATE", '{"runs": [["both", 1518, 20000]], "out": ""}'))
_RESULTS: list[dict] = []
_RX = {name: f.offset for name, f in data.Layout.cast(RxWord)}
_WHOLE = 0b1111 << _RX["keep"]
_LAST = 1 << _RX["last"]


def _now_ps() -> int:
    return int(get_sim_time("ps"))


class LineRateTB:
    """One run: the NIC's DMA writer, the host's frame source and the sampler on one reset DUT."""

    def __init__(self, dut, mode: str, frame_bytes: int) -> None:
        self.dut, self.mode, self.frame_bytes = dut, mode, frame_bytes
        self.rx_done = 0          # RX completions the encoder accepted
        self.txc_done = 0         # TX completions written
        self.rx_backlog_max = 0   # NIC frames off the wire but not yet DMA'd
        # (ps, rx_done, tx_applied, mac_frames, dec_frames, RX completions that left the board)
        self.samples: list[tuple[int, int, int, int, int, int]] = []
        self.host_frames_sent = 0

    async def reset(self) -> None:
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk, CYCLE_PS, unit="ps").start())
        dut.rst.value = 1
        for name, value in {"mtu": MTU, "latency": LATENCY_CYCLES, "rx__valid": 0, "rx__payload": 0,
                            "dma__cyc": 0, "dma__stb": 0, "dma__we": 0, "dma__adr": 0, "dma__dat_w": 0,
                            "dma__sel": 0xF, "dma__cti": 0, "dma__bte": 0}.items():
            getattr(dut, name).value = value
        await ClockCycles(dut.clk, 4)
        await FallingEdge(dut.clk)
        dut.rst.value = 0

    # ---- NIC to host: the NIC's DMA writes ----

    async def _burst(self, word_addr: int, words: int) -> None:
        """One Wishbone burst of ``words`` at ``word_addr``, from a falling edge to the falling edge after it."""
        dut = self.dut
        dut.dma__cyc.value = dut.dma__stb.value = dut.dma__we.value = 1
        for i in range(words):
            dut.dma__adr.value = word_addr + i
            dut.dma__dat_w.value = i
            dut.dma__cti.value = CTI_END if i == words - 1 else CTI_INCR
            while True:
                await ReadOnly()
                acked = bool(dut.dma__ack.value)
                await FallingEdge(dut.clk)
                if acked:
                    break
        dut.dma__cyc.value = dut.dma__stb.value = dut.dma__we.value = 0
        # One cycle with cyc low between bursts, as the NIC's arbiter leaves.
        await FallingEdge(dut.clk)

    async def _tx_completions(self) -> None:
        """The TX engine's completions: one per TX descriptor applied, each one burst (the arbiter interleaves)."""
        if self.mode != "both":
            return
        applied = int(self.dut.tx_applied.value)
        if self.txc_done < applied:
            await self._burst((TX_CPL_RING + (self.txc_done % RING_ENTRIES) * CPL_SIZE) >> 2, CPL_SIZE // 4)
            self.txc_done += 1

    async def nic_rx(self) -> None:
        """Back-to-back wire frames: each DMA'd (data bursts, then its completion) once its last byte is in."""
        dut, size = self.dut, self.frame_bytes
        words = dma_words(size)
        period_ps = (size + WIRE_OVERHEAD) * BYTE_PS
        t0 = _now_ps()
        k = 0
        while True:
            arrived = t0 + k * period_ps + size * BYTE_PS
            now = _now_ps()
            if now < arrived:
                if self.mode == "both" and int(dut.tx_applied.value) > self.txc_done:
                    await self._tx_completions()
                    continue
                await ClockCycles(dut.clk, -(-(arrived - now) // CYCLE_PS), rising=False)
                continue
            self.rx_backlog_max = max(self.rx_backlog_max, (now - t0 - size * BYTE_PS) // period_ps - k)
            buf = (RX_BUF_BASE + (k % RING_ENTRIES) * RX_BUF_SIZE) >> 2
            for first in range(0, words, MAX_BURST):
                await self._burst(buf + first, min(MAX_BURST, words - first))
                await self._tx_completions()
            await self._burst((RX_CPL_RING + (k % RING_ENTRIES) * CPL_SIZE) >> 2, CPL_SIZE // 4)
            self.rx_done += 1
            await self._tx_completions()
            k += 1

    # ---- host to NIC: frames on the decoder's rx at 1 Gb/s ----

    async def _send(self, payload: bytes, cursor: int) -> int:
        """Send one frame's words no faster than the wire; Value of the wire's next free moment (ps)."""
        dut = self.dut
        words = words_of(payload)
        half = CYCLE_PS // 2
        for i, w in enumerate(words):
            edge = _now_ps() + half            # the rising edge this falling edge leads to
            if cursor >= edge + CYCLE_PS:
                dut.rx__valid.value = 0
                await ClockCycles(dut.clk, (cursor - edge - CYCLE_PS) // CYCLE_PS + 1, rising=False)
                edge = _now_ps() + half
            last = i == len(words) - 1
            dut.rx__payload.value = w | _WHOLE | (_LAST if last else 0)
            dut.rx__valid.value = 1
            cursor = max(cursor, edge) + WORD_PS
            await FallingEdge(dut.clk)
        dut.rx__valid.value = 0
        return cursor + HOSTLINK_FRAME_OVERHEAD * BYTE_PS

    async def host_tx(self) -> None:
        """The host's frames: a HELLO that binds the link (its credit the host's grant), then TX traffic (tx,
        both) within the decoder's credit, each frame acknowledging what the board sent, or (rx) a frame of no
        messages for each acknowledgement."""
        dut = self.dut
        await FallingEdge(dut.clk)
        hello = hostlink.hello(MTU, SLOTS, hostlink.HOST_WINDOW_BASE, hostlink.HOST_WINDOW_SIZE)
        cursor = await self._send(hostlink.encode_frame(hostlink.Frame(
            0, 0, HOST_GRANT, 0, (hostlink.Message(hostlink.OP_HELLO, 0, hello),), hostlink.FLAG_HELLO,
            session=SESSION)), 0)
        acked = 0
        if self.mode == "rx":
            while True:
                end = int(dut.board_end.value)
                if end == acked:
                    await ClockCycles(dut.clk, SAMPLE_CYCLES, rising=False)
                    continue
                acked = end
                cursor = await self._send(hostlink.encode_frame(hostlink.Frame(
                    0, 0, HOST_GRANT, acked, session=SESSION)), cursor)
        for payload, number in host_frames(self.frame_bytes):
            # The decoder's grant, as its next frame would carry it: frames numbered below it may go.  Waiting
            # for it, the host acknowledges what the board sent at once, in a frame of no messages (which
            # needs no credit): the board's replay ring drains while the host's own frames wait.
            while not 0 < (int(dut.dec_credit.value) - number) & 0xFFFF < 0x8000:
                end = int(dut.board_end.value)
                if end != acked:
                    acked = end
                    seq = int.from_bytes(payload[4:8], "little")
                    cursor = await self._send(hostlink.encode_frame(hostlink.Frame(
                        seq, number, HOST_GRANT, acked, session=SESSION)), cursor)
                    continue
                await ClockCycles(dut.clk, 1, rising=False)
            # FrameHeader.acked (bytes 12..15): what the board sent so far.
            acked = int(dut.board_end.value)
            payload = payload[:12] + acked.to_bytes(4, "little") + payload[16:]
            cursor = await self._send(payload, cursor)
            self.host_frames_sent += 1

    async def sampler(self) -> None:
        dut = self.dut
        while True:
            await ClockCycles(dut.clk, SAMPLE_CYCLES, rising=False)
            dec = unpack(DecoderCounters, int(dut.dec_counters.value))
            self.samples.append((_now_ps(), self.rx_done, int(dut.tx_applied.value), int(dut.mac_frames.value),
                                 dec["frames"], int(dut.rx_cpl_sent.value)))

    # ---- the figures ----

    def _rate(self, count_at: int, frames_at: int) -> dict:
        """NIC frames per second between the WARMUP_FRAMES-th host-link frame boundary and the last one."""
        s = self.samples
        edges = [i for i in range(1, len(s)) if s[i][frames_at] != s[i - 1][frames_at]
                 and s[i][frames_at] >= WARMUP_FRAMES]
        if len(edges) < 3:
            return {"rate": 0.0, "window_frames": 0, "window_nic_frames": 0, "window_s": 0.0}
        a, b = s[edges[0]], s[edges[-1]]
        seconds = (b[0] - a[0]) * 1e-12
        return {"rate": (b[count_at] - a[count_at]) / seconds, "window_frames": b[frames_at] - a[frames_at],
                "window_nic_frames": b[count_at] - a[count_at], "window_s": seconds}

    def result(self) -> dict:
        line = 1e12 / ((self.frame_bytes + WIRE_OVERHEAD) * BYTE_PS)
        out = {"mode": self.mode, "frame_bytes": self.frame_bytes, "sys_hz": SYS_HZ, "mtu": MTU,
               "latency_cycles": LATENCY_CYCLES, "decoder_slots": SLOTS, "line_rate_fps": line}
        if self.mode in ("rx", "both"):
            # The completions that left the board: what the host gets.
            rx = self._rate(5, 3)
            out.update(rx_rate_fps=rx["rate"], rx_fraction=rx["rate"] / line, rx_window=rx)
            # Beside it, those the encoder took in the same window: its replay ring takes NIC frames ahead of
            # the wire while it fills, so over a run this short this one is higher.
            out["rx_taken_fraction"] = self._rate(1, 3)["rate"] / line
        if self.mode in ("tx", "both"):
            tx = self._rate(2, 4)
            out.update(tx_rate_fps=tx["rate"], tx_fraction=tx["rate"] / line, tx_window=tx)
        out["fraction"] = min(out.get("rx_fraction", 1.0), out.get("tx_fraction", 1.0))
        dut = self.dut
        out["encoder"] = unpack(EncoderCounters, int(dut.enc_counters.value))
        out["decoder"] = unpack(DecoderCounters, int(dut.dec_counters.value))
        out.update(rx_done=self.rx_done, txc_done=self.txc_done, tx_applied=int(dut.tx_applied.value),
                   doorbells=int(dut.doorbells.value), mac_frames=int(dut.mac_frames.value),
                   host_frames_sent=self.host_frames_sent, rx_backlog_max=self.rx_backlog_max)
        return out


@cocotb.test()
@cocotb.parametrize(run=[cocotb.Param(tuple(r), "_".join(map(str, r))) for r in _CONFIG["runs"]])
async def linerate(dut, run: tuple[str, int, int]) -> None:
    """One case: its traffic for ``cycles``; the result appended to ``out``."""
    mode, frame_bytes, cycles = run
    assert mode in ("rx", "tx", "both"), f"mode must be rx, tx or both, not {mode!r}"
    tb = LineRateTB(dut, mode, frame_bytes)
    await tb.reset()
    tasks = [cocotb.start_soon(tb.host_tx()), cocotb.start_soon(tb.sampler())]
    if mode != "tx":
        tasks.append(cocotb.start_soon(tb.nic_rx()))
    await ClockCycles(dut.clk, cycles)
    for t in tasks:
        t.cancel()
    result = tb.result()
    dec = result["decoder"]
    assert dec["malformed"] == dec["gaps"] == dec["overruns"] == dec["bad_address"] == dec["stale"] == 0, \
        f"{mode} {frame_bytes} B: the decoder refused host frames: {dec}"
    assert result["encoder"]["resent_frames"] == 0, f"{mode} {frame_bytes} B: the board resent on a clean cable"
    log.info("host-link line rate: %s", result)
    _RESULTS.append(result)
    if _CONFIG.get("out"):
        Path(_CONFIG["out"]).write_text(json.dumps(_RESULTS, indent=1))
