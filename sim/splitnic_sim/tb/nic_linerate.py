"""cocotb line-rate measurement of the whole NIC: RX and TX at once, from simulated time.

Ref: IEEE Std 802.3-2018 §4.4.2 (interpacket gap 96 bit times) and §3.2.1
(preamble and SFD, 8 bytes): a frame of N bytes (FCS included) takes N + 20
byte times of GMII's 125 MHz byte clock, so line rate at 64 bytes is
125e6 / 84 = 1.488 Mpps; docs/registers.md (RXQ, TXQ, Descriptor, Completion).

The wire models (cocotbext-eth) offer frames back to back with the minimum
gap; the test, acting as the driver, keeps every RX buffer posted and the TX
ring full, polling completions in host memory every ``POLL_CYCLES`` cycles.
TX starts TX_LEAD frames ahead of RX, so TxEngine's initial prefetch (its
frames in flight, fetched as fast as the bus goes) is over before RX traffic
arrives and leaves no RX backlog to drain inside the window.  A run is then
measured over a window after RX's warm-up frames, during which both
directions stay loaded: RX counts frames whose completion the driver saw, TX
frames whose SFD crossed the wire, and the rate is the least-squares slope of
those events against simulated time.  ``rx_delay_cycles`` (last byte off the
wire to completion seen) shows whether the window is steady: constant when
the core keeps up, growing when the RX FIFO fills.  Every frame is checked
(RX: sequence, length, data; TX: FCS, data), so a fast but wrong core fails.

The runs come from the environment, so the bench and the test choose them:
``SPLITNIC_LINERATE`` holds JSON ``{"runs": [[frame_bytes, latency, warmup,
window], ...], "out": path}``; each run is one cocotb test (a fresh reset and
its own host memory), and after each the results so far are written to
``out`` as JSON: a list of :func:`measure`'s dicts.  A run with frame size 0
instead times the bare simulator: clock only, no Python model active.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, Timer
from cocotb.utils import get_sim_steps, get_sim_time
from cocotbext.eth import GmiiFrame

from splitnic_sim.native import CLOCK_NS
from splitnic_sim.native.models import is_native, wait_cycles
from splitnic_sim.tb.nic_scoreboard import CTRL, EXP_ETHERTYPE, OWN_MAC, PEER_MAC, QCTRL, TB, Driver, Ring
from splitnic_spec import constant, ring_used

log = logging.getLogger(__name__)

#: Preamble + SFD (8) and the minimum interframe gap (12), in byte times.
WIRE_OVERHEAD = 20
FCS_LEN = constant("FCS_LEN")
#: RX buffer and TX slot size: any standard frame fits.
BUF_SIZE = 1536
#: 256 entries: the driver reaps every POLL_CYCLES, so the rings never run dry between polls.
RING_LOG2 = 8
POLL_CYCLES = 16
#: The TX queue used (see the Icarus note in measure()).
TX_QUEUE = 1
#: TX frames on the wire before RX traffic starts (see measure()).
TX_LEAD = 4
#: Frames kept queued in the GMII source, so it never idles between frames.
SOURCE_DEPTH = 4
#: Give up when a run takes this many times its line-rate duration (a stalled core).
TIMEOUT_FACTOR = 20

_CONFIG = json.loads(os.environ.get("SPLITNIC_LINERATE", '{"runs": [[1518, 0, 8, 16]], "out": ""}'))
_RESULTS: list[dict] = []


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _frame(dst: str, src: str, seq: int, payload_len: int, fill: bytes) -> bytes:
    """A frame of ``payload_len`` bytes (FCS excluded) carrying ``seq`` right after the header."""
    head = _mac(dst) + _mac(src) + EXP_ETHERTYPE.to_bytes(2, "big") + seq.to_bytes(4, "little")
    return head + fill[:payload_len - len(head)]


def _quiet_wire_models(dut) -> None:
    # cocotbext-eth logs every frame at INFO; thousands of frames would swamp the log.
    if is_native(dut):
        return          # the native harness's wire logs nothing
    for sig in (dut.gmii_rx_d, dut.gmii_tx_d):
        logging.getLogger(f"cocotb.{sig._path}").setLevel(logging.WARNING)


def _window_rate(times: list[int], start: int, end: int) -> tuple[float, int]:
    """Events per step inside (start, end], and how many: the least-squares slope of index
    against time, so the jitter of single events (DMA arbitration, polling) averages out."""
    inside = [t for t in times if start < t <= end]
    n = len(inside)
    if n < 2 or inside[-1] == inside[0]:
        return 0.0, n
    mean_t = sum(inside) / n
    mean_i = (n - 1) / 2
    var = sum((t - mean_t) ** 2 for t in inside)
    cov = sum((t - mean_t) * (i - mean_i) for i, t in enumerate(inside))
    return cov / var, n


async def _clock_period(dut) -> int:
    """Value of the clock period in simulator steps, measured (TB owns the clock)."""
    if is_native(dut):
        return get_sim_steps(CLOCK_NS, "ns")     # the harness's own free-running clock
    await RisingEdge(dut.clk)        # from an edge: a part cycle would shorten the period
    t0 = get_sim_time()
    await ClockCycles(dut.clk, 10)
    return (get_sim_time() - t0) // 10


async def measure(dut, frame_bytes: int, latency: int, warmup: int, window: int) -> dict:
    """Run RX and TX at once at ``frame_bytes`` (FCS included) with DMA ``latency``; the figures."""
    _quiet_wire_models(dut)
    tb = TB(dut, stall=0.0, latency=latency, seed=1)
    drv: Driver = await tb.start()
    period = await _clock_period(dut)
    payload_len = frame_bytes - FCS_LEN
    fill = tb.rng.randbytes(BUF_SIZE)
    total = warmup + window

    rx: Ring = await drv.ring("RXQ", 0, RING_LOG2, BUF_SIZE)
    tx: Ring = await drv.ring("TXQ", TX_QUEUE, RING_LOG2, BUF_SIZE)
    # Icarus: yosys writes some comb copies as bare `always @* x = y;` blocks that run only
    # when y changes, and the time-0 kick in splitnic_sim.runner misses them.  TX queue 0 with
    # generation 0 would never change TxEngine's cur_q/cur_gen, leaving the queue and
    # generation of every TX completion X: the engine then waits in CPL without a bus cycle.
    # Queue 1 after one reset (generation 1) changes both, so Icarus runs like Verilator.
    await drv.wr("TXQ.CTRL", QCTRL.pack(ENABLE=1, RESET=1), TX_QUEUE)
    # Each TX slot holds its frame for good; reposting the slot sends it again.
    tx_frames = [_frame(PEER_MAC, OWN_MAC, slot, payload_len, fill) for slot in range(tx.size)]
    for slot, frame in enumerate(tx_frames):
        drv.write(tx.bufs[slot], frame)
    while ring_used(rx.seen, rx.tail) < rx.size:
        drv.post(rx, BUF_SIZE, cookie=rx.tail)
    await drv.wr("RXQ.TAIL", rx.tail, 0)
    tx_posted = 0
    while tx_posted < tx.size:
        drv.post(tx, payload_len, cookie=tx_posted)
        tx_posted += 1
    await drv.wr("TXQ.TAIL", tx.tail, TX_QUEUE)

    rx_times: list[int] = []     # when the driver saw each RX completion
    rx_delays: list[int] = []    # ... less when the frame's last byte left the wire model
    tx_times: list[int] = []     # when each TX frame's SFD crossed the wire
    wire_end: dict[int, int] = {}  # RX sequence number -> when its last byte left the source
    rx_seq = 0                   # next sequence number the source sends
    rx_expect = 0                # next one the driver expects; a gap is a lost frame
    rx_lost = 0
    tx_bad = 0

    def rx_frame(seq: int) -> bytes:
        return _frame(OWN_MAC, PEER_MAC, seq, payload_len, fill)

    async def feed_source() -> None:
        nonlocal rx_seq
        while True:
            while tb.source.count() < SOURCE_DEPTH:
                # The source sends a copy; its completion callback reports the end time.
                done = lambda g, seq=rx_seq: wire_end.__setitem__(seq, g.sim_time_end)  # noqa: E731
                tb.source.send_nowait(GmiiFrame.from_payload(rx_frame(rx_seq), tx_complete=done))
                rx_seq += 1
            await wait_cycles(dut, 8)

    async def watch_wire() -> None:
        nonlocal tx_bad
        n = 0
        while True:
            g = await tb.sink.recv()
            if not (g.check_fcs() and g.error is None and bytes(g.get_payload()) == tx_frames[n % tx.size]):
                tx_bad += 1
            tx_times.append(g.sim_time_sfd)
            n += 1

    def reap_rx(now: int) -> bool:
        nonlocal rx_expect, rx_lost
        got = drv.completions(rx)
        for c, slot in got:
            data = drv.read(rx.bufs[slot], c["length"])
            seq = int.from_bytes(data[14:18], "little")
            assert c["status"] == 0 and c["length"] == payload_len, f"RX completion {c}"
            assert seq >= rx_expect, f"RX frame {seq} after {rx_expect - 1}: reordered or repeated"
            assert data == rx_frame(seq), f"RX frame {seq}: data differs"
            for missing in range(rx_expect, seq):
                del wire_end[missing]
            rx_lost += seq - rx_expect
            rx_expect = seq + 1
            rx_times.append(now)
            rx_delays.append(now - wire_end.pop(seq))
            drv.post(rx, BUF_SIZE, cookie=rx.tail)
        return bool(got)

    def reap_tx() -> bool:
        nonlocal tx_posted
        sent = drv.completions(tx)
        for c, _slot in sent:
            assert c["status"] == 0 and c["length"] == payload_len, f"TX completion {c}"
            drv.post(tx, payload_len, cookie=tx_posted)
            tx_posted += 1
        return bool(sent)

    t_start = get_sim_time()
    wall_start = time.perf_counter()
    deadline = t_start + TIMEOUT_FACTOR * (total + TX_LEAD) * (frame_bytes + WIRE_OVERHEAD) * period
    await drv.wr("CTRL", CTRL.pack(RX_EN=1, TX_EN=1))
    cocotb.start_soon(watch_wire())
    rx_started = False
    while len(rx_times) < total or len(tx_times) < TX_LEAD + total:
        await wait_cycles(dut, POLL_CYCLES)
        now = get_sim_time()
        if not rx_started and len(tx_times) >= TX_LEAD:
            # TX first: its prefetch burst (frames_in_flight frames as fast as the bus goes)
            # is over before RX starts, so it does not leave an RX backlog in the window.
            cocotb.start_soon(feed_source())
            rx_started = True
        if reap_rx(now):
            await drv.wr("RXQ.TAIL", rx.tail, 0)
        if reap_tx():
            await drv.wr("TXQ.TAIL", tx.tail, TX_QUEUE)
        if now >= deadline:
            state = {name: await drv.rd(name) for name in ("STAT_RX_OK", "STAT_RX_FIFO_DROP", "STAT_TX_OK")}
            state.update({f"{kind}.{reg}": await drv.rd(f"{kind}.{reg}", q)
                          for kind, q in (("RXQ", 0), ("TXQ", TX_QUEUE)) for reg in ("TAIL", "HEAD", "CPL", "DROPS")})
            raise AssertionError(f"{frame_bytes}-byte frames, latency {latency}: after "
                                 f"{(now - t_start) // period} cycles only {len(rx_times)} RX and "
                                 f"{len(tx_times)} TX frames of {total}; NIC state {state}")
    t_end = get_sim_time()
    wall = time.perf_counter() - wall_start

    # The window: from RX's warm-up frame to the end, both directions loaded throughout
    # (the loop keeps both fed until the slower one has its count).
    t0 = rx_times[warmup - 1]
    rx_rate, rx_n = _window_rate(rx_times, t0, t_end)
    tx_rate, tx_n = _window_rate(tx_times, t0, t_end)
    delays = sorted(d for t, d in zip(rx_times, rx_delays) if t > t0)
    line = frame_bytes + WIRE_OVERHEAD             # cycles per frame at line rate
    fifo_drop = await drv.rd("STAT_RX_FIFO_DROP")
    queue_drop = await drv.rd("RXQ.DROPS", 0)
    tb.close()
    assert tx_bad == 0, f"{tx_bad} TX frames left the wire damaged"
    cycles = (t_end - t_start) / period
    return {
        "frame_bytes": frame_bytes, "latency": latency,
        "rx_line_fraction": round(rx_rate * period * line, 4),
        "tx_line_fraction": round(tx_rate * period * line, 4),
        "rx_frames_in_window": rx_n, "tx_frames_in_window": tx_n,
        "window_cycles": round((t_end - t0) / period),
        "rx_delay_cycles": {"min": delays[0] // period, "median": delays[len(delays) // 2] // period,
                            "max": delays[-1] // period},
        "rx_lost": rx_lost, "rx_fifo_drop": fifo_drop, "rx_queue_drop": queue_drop,
        "cycles": round(cycles), "wall_s": round(wall, 3), "cycles_per_s": round(cycles / wall),
    }


async def bare_clock(dut, cycles: int) -> dict:
    """Simulator speed with the clock alone: no wire, DMA or driver model wakes per cycle."""
    if is_native(dut):
        wall_start = time.perf_counter()
        await Timer(CLOCK_NS * cycles, unit="ns")     # the harness's clock; its C models idle along
        wall = time.perf_counter() - wall_start
        return {"frame_bytes": 0, "cycles": cycles, "wall_s": round(wall, 3), "cycles_per_s": round(cycles / wall)}
    cocotb.start_soon(Clock(dut.clk, 8, unit="ns").start())      # TB's 125 MHz clock
    dut.rst.value = 1
    await ClockCycles(dut.clk, 5)
    dut.rst.value = 0
    wall_start = time.perf_counter()
    await Timer(8 * cycles, unit="ns")
    wall = time.perf_counter() - wall_start
    return {"frame_bytes": 0, "cycles": cycles, "wall_s": round(wall, 3), "cycles_per_s": round(cycles / wall)}


@cocotb.test()
@cocotb.parametrize(run=[cocotb.Param(tuple(r), "_".join(map(str, r))) for r in _CONFIG["runs"]])
async def linerate(dut, run: tuple[int, int, int, int]) -> None:
    """Both directions at once at one frame size and DMA latency; results appended to ``out``."""
    frame_bytes, latency, warmup, window = run
    assert warmup >= 1 and window >= 2, f"run {run}: need warmup >= 1 and window >= 2 frames"
    if frame_bytes == 0:
        result = await bare_clock(dut, window)
    else:
        result = await measure(dut, frame_bytes, latency, warmup, window)
    log.info("line rate: %s", result)
    _RESULTS.append(result)
    if _CONFIG.get("out"):
        Path(_CONFIG["out"]).write_text(json.dumps(_RESULTS, indent=1))
