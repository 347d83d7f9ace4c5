"""The whole-NIC scoreboard and the line-rate check on the native harness (sim/splitnic_sim/native).

The same cocotb modules as tests/gateware/test_nic_cocotb.py and
test_nic_linerate.py, with the same assertions; only the toplevel differs
(``snic_harness``: wire, DMA memory and CSR bus in C through DPI-C).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from splitnic_gateware.nic import Nic
from splitnic_gateware.verilog import write_verilog
from splitnic_sim.native import run_native
from splitnic_sim.runner import build_dir_for

BUILD = build_dir_for("nic_native", "verilator")
#: The scoreboard's traffic is random, new each run; a failure names its seed, and
#: SPLITNIC_SEED=N reruns exactly that traffic.
SEED = int(os.environ.get("SPLITNIC_SEED") or random.randrange(1 << 31))


def test_scoreboard_on_the_native_harness() -> None:
    result = run_native(nic_verilog=write_verilog(Nic(), "snic_nic", BUILD), build_dir=BUILD,
                        test_module="splitnic_sim.tb.nic_scoreboard", seed=SEED)
    assert result.failed == 0, f"seed {SEED} (SPLITNIC_SEED={SEED} reruns it):\n" + "\n".join(result.failures)
    assert result.passed == 4


def test_line_rate_both_directions_on_the_native_harness(tmp_path: Path) -> None:
    from tests.gateware.test_nic_linerate import RUNS, TOLERANCE
    out = tmp_path / "linerate.json"
    result = run_native(nic_verilog=write_verilog(Nic(), "snic_nic", BUILD), build_dir=BUILD,
                        test_module="splitnic_sim.tb.nic_linerate",
                        extra_env={"SPLITNIC_LINERATE": json.dumps({"runs": RUNS, "out": str(out)})})
    assert result.failed == 0, "\n".join(result.failures)
    figures = json.loads(out.read_text())
    assert [r["frame_bytes"] for r in figures] == [r[0] for r in RUNS]
    for r in figures:
        where = f"{r['frame_bytes']}-byte frames"
        assert r["rx_lost"] == 0 and r["rx_fifo_drop"] == 0, f"{where}: RX lost frames: {r}"
        assert r["rx_line_fraction"] >= 1 - TOLERANCE, f"{where}: RX below line rate: {r}"
        assert r["tx_line_fraction"] >= 1 - TOLERANCE, f"{where}: TX below line rate: {r}"


def test_an_idle_simulator_blocks_and_a_request_wakes_it(tmp_path: Path) -> None:
    """With a client connected but silent, the harness blocks (no CPU, simulated time stands
    still) once IDLE_AFTER_CYCLES have passed quietly; the next request is answered at once."""
    import os
    import time

    from splitnic_sim.csr_socket import RawCsrClient
    from splitnic_sim.server import SimNic
    from splitnic_sim.tb.nic_native_server import IDLE_AFTER_CYCLES

    def group_cpu_s(pgid: int) -> float:
        """CPU seconds of every process in process group ``pgid`` (the server and the simulator)."""
        total = 0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[2]) == pgid:
                    total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    with SimNic(socket_path=tmp_path / "nic.sock", harness="native") as sim, \
            RawCsrClient(sim.socket_path) as client:
        start = client.sync()
        deadline = time.monotonic() + 120       # the quiet cycles take a while on a loaded machine
        quiet = False
        while not quiet and time.monotonic() < deadline:
            cpu = group_cpu_s(sim._proc.pid)
            time.sleep(2.0)
            quiet = group_cpu_s(sim._proc.pid) - cpu <= 0.05
        assert quiet, "the idle simulator kept using the CPU"
        t0 = time.monotonic()
        cycles = client.sync() - start
        assert time.monotonic() - t0 < 5, "the blocked simulator did not answer a request"
        # Time stood still: the quiet cycles before blocking, and a few per housekeeping tick.
        assert IDLE_AFTER_CYCLES <= cycles < IDLE_AFTER_CYCLES + 50_000, cycles
