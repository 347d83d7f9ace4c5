"""cocotb module: simulator speed of the whole NIC on the native harness under line-rate traffic both ways.

Ref: docs/simulation.md ("The native harness"); bench/bench_sim.py runs it beside
sim/splitnic_sim/native/bare_main.cpp, which does the same in C without cocotb.

The harness's C sends frames to the NIC back to back (minimum gap) and takes
what the NIC sends; this test is the driver, in Python: RX queue 0 and TX
queue 0 with 256-entry rings, reaped and refilled every POLL_CYCLES cycles
(one wake per batch, as a real driver would poll).  It reports simulated
cycles per wall second over the run after a warm-up, and checks that both
directions kept line rate (frames seen against the cycles they take) and that
no RX frame was lost.  Parameters: SPLITNIC_SPEED, JSON
``{"frame_bytes": 1518, "cycles": 2000000, "out": path}``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import cocotb

from splitnic_sim.hostmem import DEFAULT_DMA_BASE, HostMemory
from splitnic_sim.native import Harness
from splitnic_sim.tb.nic_scoreboard import CTRL, EXP_ETHERTYPE, OWN_MAC, PEER_MAC, Driver, _mac_int
from splitnic_spec import constant

#: Cycles between the driver's polls: a 256-entry ring holds 21 000 cycles of 64-byte frames.
POLL_CYCLES = 2048
RING_LOG2 = 8
BUF_SIZE = 2048
#: Frames kept queued in the harness towards the NIC.
WIRE_QUEUE = 64
WARMUP_CYCLES = 50_000
FCS_LEN = constant("FCS_LEN")


def frame(dst: str, src: str, payload_len: int) -> bytes:
    head = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + EXP_ETHERTYPE.to_bytes(2, "big")
    return head + bytes(i & 0xFF for i in range(payload_len - len(head)))


@cocotb.test()
async def speed(dut) -> None:
    """Line rate both ways for ``cycles`` cycles; cycles per wall second into ``out``."""
    cfg = json.loads(os.environ.get("SPLITNIC_SPEED", "{}"))
    frame_bytes, total = int(cfg.get("frame_bytes", 1518)), int(cfg.get("cycles", 1_000_000))
    payload_len = frame_bytes - FCS_LEN
    h = Harness(dut)
    with tempfile.TemporaryDirectory(prefix="snic-speed-") as tmp:
        mem = HostMemory(Path(tmp) / "hostmem", 4 << 20, DEFAULT_DMA_BASE)
        h.memory(mem.path, mem.size, mem.base)
        h.dma(0.0, 0, 1)
        await h.reset(4)
        drv = Driver(dut, mem, h)
        await drv.wr("MAC_ADDR_LO", _mac_int(OWN_MAC) & 0xFFFF_FFFF)
        await drv.wr("MAC_ADDR_HI", _mac_int(OWN_MAC) >> 32)
        rx = await drv.ring("RXQ", 0, RING_LOG2, BUF_SIZE)
        tx = await drv.ring("TXQ", 0, RING_LOG2, BUF_SIZE)
        out_frame = frame(PEER_MAC, OWN_MAC, payload_len)
        in_frame = frame(OWN_MAC, PEER_MAC, payload_len)
        for slot in range(tx.size):
            drv.write(tx.bufs[slot], out_frame)
        while (rx.tail - rx.seen) & 0xFFFF < rx.size:
            drv.post(rx, BUF_SIZE, cookie=rx.tail)
        while (tx.tail - tx.seen) & 0xFFFF < tx.size:
            drv.post(tx, payload_len, cookie=tx.tail)
        await drv.wr("RXQ.TAIL", rx.tail, 0)
        await drv.wr("TXQ.TAIL", tx.tail, 0)
        await drv.wr("CTRL", CTRL.pack(RX_EN=1, TX_EN=1))
        counts = {"rx": 0, "tx": 0, "wire_out": 0, "bad": 0}
        t0 = c0 = w0 = None
        start = h.cycle
        while h.cycle - start < total + WARMUP_CYCLES:
            for _ in range(WIRE_QUEUE - h.lib.snic_h_rx_pending()):
                h.send_frame(in_frame)
            await h.cycles(POLL_CYCLES)
            got = drv.completions(rx)
            for c, _slot in got:
                assert c["status"] == 0 and c["length"] == payload_len, f"RX completion {c}"
                drv.post(rx, BUF_SIZE, cookie=rx.tail)
            sent = drv.completions(tx)
            for c, _slot in sent:
                assert c["status"] == 0, f"TX completion {c}"
                drv.post(tx, payload_len, cookie=tx.tail)
            if got:
                await drv.wr("RXQ.TAIL", rx.tail, 0)
            if sent:
                await drv.wr("TXQ.TAIL", tx.tail, 0)
            wire = h.received()
            counts["bad"] += sum(1 for _d, _s, _e, flags in wire if flags != 2)
            if t0 is None and h.cycle - start >= WARMUP_CYCLES:
                t0, c0, w0 = time.perf_counter(), h.cycle, dict(counts, wire_out=counts["wire_out"] + len(wire))
            counts["rx"] += len(got)
            counts["tx"] += len(sent)
            counts["wire_out"] += len(wire)
        wall = time.perf_counter() - t0
        cycles = h.cycle - c0
        line = cycles / (frame_bytes + 20)          # frames the window holds at line rate
        stats = {name: await drv.rd(name) for name in ("STAT_RX_OK", "STAT_RX_FIFO_DROP", "STAT_TX_OK")}
        drops = await drv.rd("RXQ.DROPS", 0)
        result = {"frame_bytes": frame_bytes, "cycles": cycles, "wall_s": round(wall, 3),
                  "cycles_per_s": round(cycles / wall),
                  "rx_line_fraction": round((counts["rx"] - w0["rx"]) / line, 3),
                  "tx_line_fraction": round((counts["wire_out"] - w0["wire_out"]) / line, 3),
                  "rx_fifo_drop": stats["STAT_RX_FIFO_DROP"], "rx_queue_drop": drops, "bad_tx": counts["bad"],
                  "harness": h.stats()}
        h.lib.snic_h_reset(4)
        await h.cycles(6)
        mem.close()
    dut._log.info("speed: %s", result)
    if cfg.get("out"):
        Path(cfg["out"]).write_text(json.dumps(result, indent=1))
    assert counts["bad"] == 0, f"{counts['bad']} frames left the NIC damaged"
    assert stats["STAT_RX_FIFO_DROP"] == 0 and drops == 0, f"RX lost frames: {stats}, queue drops {drops}"
