"""The NIC core as yosys synthesizes it for the board passes the RTL's whole-NIC tests.

The netlist (splitnic_gateware.netlist: the bitstream's ``synth_ecp5 -abc9``, written back
as Verilog and simulated with yosys's ECP5 cell models) runs the scoreboard
(sim/splitnic_sim/tb/nic_scoreboard.py) and the line-rate test (tb/nic_linerate.py) on
Verilator, asserting what the RTL tests assert (tests/gateware/test_nic_cocotb.py,
test_nic_linerate.py).  Every flip-flop and memory starts random: the NIC must reach a known
state through its reset alone, as on the board after a warm reset.

Both run on the board's own NIC (BOARD_NIC_SIZE), one synthesis and one Verilator build: the
scoreboard fits the NIC it finds (two RX queues, so the steering rules share queue 1) and sends
jumbo frames as long as the board's packet buffers hold (:data:`JUMBO_BYTES`).  The netlist
has a fixed build id, so that a change to the sources that leaves the logic alone reuses the
cached netlist.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from splitnic_gateware.netlist import NETLIST_COMPILE_ARGS, Netlist, cell_library, synthesize
from splitnic_gateware.nic import Nic
from splitnic_gateware.targets.colorlight import SYS_CLK_FREQ
from splitnic_gateware.targets.nic_core import BOARD_NIC_SIZE
from splitnic_gateware.verilog import write_verilog
from splitnic_sim.runner import build_dir_for, run_cocotb

from tests.gateware.test_nic_linerate import RUNS, TOLERANCE
from tests.netlist.board_bus import write_board_bus_wrapper

#: A synthesis (about a minute, several on a busy machine) and a Verilator build of the netlist
#: come before the first test when the sources changed.
pytestmark = pytest.mark.timeout(1800)

TOP = "snic_nic"
#: The netlist inside the board's bus, which ignores the DMA master during reset (board_bus.py).
WRAPPER = "snic_nic_on_board_bus"
BUILD_ID = 0x5EED0018
NAME = "nic_board"
#: The jumbo frames the scoreboard sends: half the board's smaller packet buffer (4 KiB),
#: so that a frame and the next ones fit; the RTL tests send the spec's 9014 bytes.
JUMBO_BYTES = min(BOARD_NIC_SIZE.rx_fifo_words, BOARD_NIC_SIZE.tx_buffer_words) * 4 // 2


@functools.cache
def _netlist() -> tuple[Netlist, list[Path]]:
    """The board NIC's netlist and the sources that simulate it (cells, netlist, wrapper)."""
    src = write_verilog(Nic(build_id=BUILD_ID, clock_hz=SYS_CLK_FREQ, size=BOARD_NIC_SIZE), TOP,
                        build_dir_for(f"{NAME}_rtl", "verilator"))
    netlist = synthesize(src, TOP, NAME)
    wrapper = write_board_bus_wrapper(netlist.path, TOP, WRAPPER, build_dir_for(f"{NAME}_rtl", "verilator"),
                                      public_ports=True)
    return netlist, [cell_library(random_init=True), netlist.path, wrapper]


def test_nic_netlist_scoreboard() -> None:
    netlist, sources = _netlist()
    assert netlist.cells.get("DP16KD", 0) >= 1 and netlist.cells.get("TRELLIS_FF", 0) >= 1000, netlist.cells
    # Only the wrapper's ports are visible to cocotb (see Netlist.verilator_args).
    result = run_cocotb(name=f"{NAME}_netlist", sources=sources, toplevel=WRAPPER,
                        test_module="splitnic_sim.tb.nic_scoreboard", random_init=True,
                        build_args=["--no-public-flat-rw", *NETLIST_COMPILE_ARGS],
                        extra_env={"SPLITNIC_TEST_JUMBO_BYTES": str(JUMBO_BYTES)})
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == 4


def test_nic_netlist_line_rate(tmp_path: Path) -> None:
    _, sources = _netlist()
    out = tmp_path / "linerate.json"
    result = run_cocotb(name=f"{NAME}_netlist", sources=sources, toplevel=WRAPPER,
                        test_module="splitnic_sim.tb.nic_linerate", random_init=True,
                        build_args=["--no-public-flat-rw", *NETLIST_COMPILE_ARGS],
                        extra_env={"SPLITNIC_LINERATE": json.dumps({"runs": RUNS, "out": str(out)})})
    assert result.failed == 0, "\n".join(result.failures)
    figures = json.loads(out.read_text())
    assert [r["frame_bytes"] for r in figures] == [r[0] for r in RUNS]
    for r in figures:
        where = f"{r['frame_bytes']}-byte frames"
        assert r["rx_lost"] == 0 and r["rx_fifo_drop"] == 0, f"{where}: RX lost frames: {r}"
        assert r["rx_line_fraction"] >= 1 - TOLERANCE, f"{where}: RX below line rate: {r}"
        assert r["tx_line_fraction"] >= 1 - TOLERANCE, f"{where}: TX below line rate: {r}"
