"""The board's GMII bridges as yosys synthesizes them, and as LiteX writes them, from a random state.

The cocotb tests (sim/splitnic_sim/tb/gmii_bridge.py) run the bridges in the board's clocks
(sys at 40 MHz, the PHY's at 125 MHz); the same tests run on the Verilog LiteX writes and on
its ECP5 netlist (splitnic_gateware.netlist), both with every register and memory random at
the start, so only the resets bring them to a known state.
"""

from __future__ import annotations

from splitnic_gateware.netlist import cell_library, synthesize
from splitnic_sim.gmii_bridge_top import write_gmii_bridge_verilog
from splitnic_sim.runner import build_dir_for, run_cocotb

TOP = "snic_gmii_bridges"
TB = "splitnic_sim.tb.gmii_bridge"
TESTS = 3


def test_gmii_bridges_rtl_from_a_random_state() -> None:
    src = write_gmii_bridge_verilog(build_dir_for("gmii_bridges", "verilator"), TOP)
    result = run_cocotb(name="gmii_bridges", sources=[src], toplevel=TOP, test_module=TB, random_init=True)
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == TESTS


def test_gmii_bridges_netlist() -> None:
    src = write_gmii_bridge_verilog(build_dir_for("gmii_bridges", "verilator"), TOP)
    netlist = synthesize(src, TOP, "gmii_bridges")
    assert netlist.cells.get("DP16KD", 0) >= 1, f"the frame store is no block RAM: {netlist.cells}"
    result = run_cocotb(name="gmii_bridges_netlist", sources=[cell_library(random_init=True), netlist.path],
                        toplevel=TOP, test_module=TB, random_init=True, build_args=netlist.verilator_args())
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == TESTS
