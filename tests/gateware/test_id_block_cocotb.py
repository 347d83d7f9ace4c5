"""The simulation stack end to end: Amaranth -> Verilog -> cocotb on both simulators."""

from __future__ import annotations

import pytest

from splitnic_gateware.id_block import IdBlock
from splitnic_gateware.verilog import write_verilog
from splitnic_sim.runner import SIMULATORS, build_dir_for, run_cocotb

BUILD_ID = 0x5EED1234


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_id_block_on_simulator(simulator: str) -> None:
    src = write_verilog(IdBlock(build_id=BUILD_ID), "snic_id_block", build_dir_for("id_block", simulator))
    result = run_cocotb(name="id_block", sources=[src], toplevel="snic_id_block",
                        test_module="splitnic_sim.tb.id_block", simulator=simulator,
                        extra_env={"SPLITNIC_BUILD_ID": hex(BUILD_ID)})
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == 3
