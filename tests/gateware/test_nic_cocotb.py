"""The whole NIC on real simulators: cocotbext-eth GMII models as the wire, the shared host
memory with random DMA stalls, and a scoreboard (sim/splitnic_sim/tb/nic_scoreboard.py)."""

from __future__ import annotations

import pytest

from splitnic_gateware.nic import Nic
from splitnic_gateware.verilog import write_verilog
from splitnic_sim.runner import NIC_BUILD, SIMULATORS, build_dir_for, run_cocotb

#: Icarus is several times slower than Verilator: fewer frames keep its run short.
SCALE = {"verilator": "1.0", "icarus": "0.3"}


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_nic_scoreboard(simulator: str) -> None:
    src = write_verilog(Nic(), "snic_nic", build_dir_for(NIC_BUILD, simulator))
    result = run_cocotb(name=NIC_BUILD, sources=[src], toplevel="snic_nic",
                        test_module="splitnic_sim.tb.nic_scoreboard", simulator=simulator,
                        extra_env={"SPLITNIC_TEST_SCALE": SCALE[simulator]})
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == 4


def test_nic_corner_paths() -> None:
    """The MAC's drops and address filter, every steering entry, the RX engine's drops and
    truncation, every register and both resets (sim/splitnic_sim/tb/nic_checks.py): Verilator
    only, on the scoreboard's build."""
    src = write_verilog(Nic(), "snic_nic", build_dir_for(NIC_BUILD, "verilator"))
    result = run_cocotb(name=NIC_BUILD, sources=[src], toplevel="snic_nic",
                        test_module="splitnic_sim.tb.nic_checks", simulator="verilator")
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == 2
