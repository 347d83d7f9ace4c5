"""The MAC on real simulators, with cocotbext-eth's GMII source and sink as the wire."""

from __future__ import annotations

import pytest

from splitnic_gateware.verilog import write_verilog
from splitnic_sim.mac_top import MacLoopTop
from splitnic_sim.runner import SIMULATORS, build_dir_for, run_cocotb


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_mac_with_gmii_models(simulator: str) -> None:
    src = write_verilog(MacLoopTop(), "snic_mac_loop", build_dir_for("mac_loop", simulator))
    result = run_cocotb(name="mac_loop", sources=[src], toplevel="snic_mac_loop",
                        test_module="splitnic_sim.tb.mac_loop", simulator=simulator)
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == 2
