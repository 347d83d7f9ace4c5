"""The whole NIC keeps up with 1 Gb/s line rate in both directions at once (Verilator).

A correctness check, not a timing of the host: throughput comes from simulated
time (sim/splitnic_sim/tb/nic_linerate.py), so it does not depend on how busy
the machine is.  bench/bench_gateware.py runs the full sweep.
"""

from __future__ import annotations

import json
from pathlib import Path

from splitnic_gateware.nic import Nic
from splitnic_gateware.verilog import write_verilog
from splitnic_sim.runner import NIC_BUILD, build_dir_for, run_cocotb

#: TX is measured exactly on the wire; RX through 16-cycle completion polling, whose error
#: over these windows is below 0.1 %.  A core one bus cycle per frame short at 64 bytes
#: would show about 1 % lower.
TOLERANCE = 0.005
#: (frame bytes with FCS, DMA latency cycles, warm-up frames, window frames): the largest
#: frames, which stress the bus the longest, and the smallest, which stress per-frame overhead.
RUNS = [[1518, 0, 4, 12], [64, 0, 20, 100]]


def test_line_rate_both_directions(tmp_path: Path) -> None:
    out = tmp_path / "linerate.json"
    src = write_verilog(Nic(), "snic_nic", build_dir_for(NIC_BUILD, "verilator"))
    result = run_cocotb(name=NIC_BUILD, sources=[src], toplevel="snic_nic",
                        test_module="splitnic_sim.tb.nic_linerate", simulator="verilator",
                        extra_env={"SPLITNIC_LINERATE": json.dumps({"runs": RUNS, "out": str(out)})})
    assert result.failed == 0, "\n".join(result.failures)
    figures = json.loads(out.read_text())
    assert [r["frame_bytes"] for r in figures] == [r[0] for r in RUNS]
    for r in figures:
        where = f"{r['frame_bytes']}-byte frames"
        assert r["rx_lost"] == 0 and r["rx_fifo_drop"] == 0, f"{where}: RX lost frames: {r}"
        assert r["rx_line_fraction"] >= 1 - TOLERANCE, f"{where}: RX below line rate: {r}"
        assert r["tx_line_fraction"] >= 1 - TOLERANCE, f"{where}: TX below line rate: {r}"
