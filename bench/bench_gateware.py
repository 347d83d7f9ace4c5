"""Gateware line rate: RX and TX at once through the real Nic Verilog, its DMA latency tolerance, simulator speed.

Run: ``.venv/bin/python bench/run.py gateware`` or ``make bench BENCH=gateware``
(writes bench/gateware.json).  The cocotb side is
sim/splitnic_sim/tb/nic_linerate.py; its docstring says how a run is measured.

1. ``line_rate``: sustained RX and TX throughput, both directions at once,
   as a fraction of 1 Gb/s line rate (frame + 20 byte times of preamble, SFD
   and IFG at 125 MHz) at 64, 512 and 1518-byte frames, DMA target without
   stalls or latency, measured from simulated time over a window after warm-up.
2. ``dma_latency_sweep``: the same at 64 and 1518 bytes for a range of
   WishboneDmaTarget ``latency`` (idle cycles before the first beat of every
   access); ``max_latency_at_line_rate`` is the largest latency at which both
   directions still reach LINE_RATE_OK, found by bisecting between the
   sweep's last good and first bad point.
3. ``sim_speed``: simulated cycles per wall second of the full core on
   Verilator and Icarus, under the line-rate load (wire models, DMA target
   and the driver in Python; median over the runs) and with the clock alone
   (the simulator's own ceiling).  Build time is not counted; the figures
   move with whatever else the machine runs.

Runs are sized (``_window``) to keep the bench near two minutes once both
simulators' builds are cached (.cache/sim/nic-*, shared with the NIC's tests).
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

#: Both directions at this fraction of line rate or better count as line rate.  The TX
#: figure is exact (SFD times on the wire); RX is seen through 16-cycle polling, which
#: the least-squares fit over the window brings well below this margin.
LINE_RATE_OK = 0.995
SIZES = (64, 512, 1518)
LATENCIES = (0, 4, 8, 16, 32, 64)
SWEEP_SIZES = (64, 1518)
TOPLEVEL = "snic_nic"
BARE_CYCLES = {"verilator": 100_000, "icarus": 20_000}


def _window(frame_bytes: int, latency: int) -> tuple[int, int]:
    """(warm-up, window) frames for a run: enough for a stable figure, few enough to keep the bench short.

    Past the knee the core is DMA-bound and steady from the start, so fewer frames do."""
    if frame_bytes <= 64:
        return (20, 150) if latency <= 8 else (20, 60)
    if frame_bytes <= 512:
        return (8, 48) if latency <= 8 else (8, 24)
    return (4, 16) if latency <= 16 else (4, 10)


def _spec(frame_bytes: int, latency: int) -> list[int]:
    return [frame_bytes, latency, *_window(frame_bytes, latency)]


def _simulate(simulator: str, runs: list[list[int]]) -> list[dict]:
    """Results of ``runs`` (nic_linerate's run lists) on ``simulator``."""
    from splitnic_gateware.nic import Nic
    from splitnic_gateware.verilog import write_verilog
    from splitnic_sim.runner import NIC_BUILD, build_dir_for, run_cocotb

    with tempfile.TemporaryDirectory(prefix="snic-bench-") as tmp:
        out = Path(tmp) / "linerate.json"
        src = write_verilog(Nic(), TOPLEVEL, build_dir_for(NIC_BUILD, simulator))
        result = run_cocotb(name=NIC_BUILD, sources=[src], toplevel=TOPLEVEL, simulator=simulator,
                            test_module="splitnic_sim.tb.nic_linerate",
                            extra_env={"SPLITNIC_LINERATE": json.dumps({"runs": runs, "out": str(out)})})
        figures = json.loads(out.read_text()) if out.exists() else []
    if result.failed:
        raise RuntimeError(f"line-rate runs failed on {simulator}: " + "; ".join(result.failures))
    return figures


def _at_line_rate(r: dict) -> bool:
    return r["rx_line_fraction"] >= LINE_RATE_OK and r["tx_line_fraction"] >= LINE_RATE_OK


def _summary(r: dict) -> dict:
    line_pps = 125e6 / (r["frame_bytes"] + 20)
    return {"rx": r["rx_line_fraction"], "tx": r["tx_line_fraction"],
            "rx_mpps": round(r["rx_line_fraction"] * line_pps / 1e6, 4),
            "tx_mpps": round(r["tx_line_fraction"] * line_pps / 1e6, 4),
            "rx_lost": r["rx_lost"], "rx_delay_cycles_median": r["rx_delay_cycles"]["median"],
            "window_cycles": r["window_cycles"]}


def run() -> dict:
    runs = [[0, 0, 1, BARE_CYCLES["verilator"]]]
    runs += [_spec(size, 0) for size in SIZES]
    runs += [_spec(size, lat) for size in SWEEP_SIZES for lat in LATENCIES if lat]
    results = _simulate("verilator", runs)
    bare = next(r for r in results if r["frame_bytes"] == 0)
    loaded = [r for r in results if r["frame_bytes"]]
    by_point = {(r["frame_bytes"], r["latency"]): r for r in loaded}

    # Bisect between the sweep's last latency at line rate and the first one below it.
    bounds = {}
    for size in SWEEP_SIZES:
        good = [lat for lat in LATENCIES if _at_line_rate(by_point[(size, lat)])]
        bad = [lat for lat in LATENCIES if lat not in good]
        lo = max(good) if good else None
        hi = min((lat for lat in bad if lo is None or lat > lo), default=None)
        bounds[size] = [lo, hi]
    while True:
        mids = {size: (lo + hi) // 2 for size, (lo, hi) in bounds.items()
                if lo is not None and hi is not None and hi - lo > 1}
        if not mids:
            break
        extra = _simulate("verilator", [_spec(size, lat) for size, lat in mids.items()])
        for r in extra:
            by_point[(r["frame_bytes"], r["latency"])] = r
            loaded.append(r)
            bounds[r["frame_bytes"]][0 if _at_line_rate(r) else 1] = r["latency"]

    icarus = _simulate("icarus", [[0, 0, 1, BARE_CYCLES["icarus"]], [1518, 0, 2, 3]])
    icarus_bare = next(r for r in icarus if r["frame_bytes"] == 0)
    icarus_loaded = [r for r in icarus if r["frame_bytes"]]

    return {
        "line_rate": {
            "unit": "fraction of 1 Gb/s line rate, RX and TX at once; DMA latency 0, no stalls",
            **{f"{size}B": _summary(by_point[(size, 0)]) for size in SIZES},
        },
        "dma_latency_sweep": {
            "unit": "fraction of line rate (rx, tx) per WishboneDmaTarget latency in cycles",
            **{f"{size}B": {str(lat): [r["rx_line_fraction"], r["tx_line_fraction"]]
                            for (s, lat), r in sorted(by_point.items()) if s == size}
               for size in SWEEP_SIZES},
        },
        "max_latency_at_line_rate": {
            "unit": f"DMA latency cycles with rx and tx >= {LINE_RATE_OK} of line rate",
            **{f"{size}B": bounds[size][0] for size in SWEEP_SIZES},
        },
        "sim_speed": {
            "unit": "simulated cycles per wall second (125 MHz clock), build excluded",
            "verilator_loaded": round(statistics.median(r["cycles_per_s"] for r in loaded)),
            "verilator_bare_clock": bare["cycles_per_s"],
            "icarus_loaded": round(statistics.median(r["cycles_per_s"] for r in icarus_loaded)),
            "icarus_bare_clock": icarus_bare["cycles_per_s"],
            "note": "loaded = line-rate traffic both ways with the Python GMII models, DMA target and "
                    "driver waking every cycle; bare clock = no Python model awake",
        },
        "runs": loaded,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
