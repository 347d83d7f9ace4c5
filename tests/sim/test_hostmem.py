"""Simulated host memory: HostMemory sharing, and WishboneDmaTarget under a real burst master on Verilator."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from splitnic_gateware.verilog import write_verilog
from splitnic_sim.dma_test_master import DmaTestMaster
from splitnic_sim.hostmem import DEFAULT_DMA_BASE, HostMemory
from splitnic_sim.runner import build_dir_for, run_cocotb


def test_two_mappings_share_bytes(tmp_path: Path) -> None:
    path = Path("/dev/shm") / f"snic-test-hostmem-{os.getpid()}"
    try:
        a = HostMemory(path, 8192)
        b = HostMemory(path, 8192, create=False)
        assert a.base == b.base == DEFAULT_DMA_BASE and len(a.view) == 8192
        a.view[100:104] = b"\x01\x02\x03\x04"
        assert bytes(b.view[100:104]) == b"\x01\x02\x03\x04"
        a.close()
        b.close()
        with pytest.raises(ValueError, match="at least 16384"):
            HostMemory(path, 16384, create=False)
    finally:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("stall,latency", [(0.0, 0), (0.4, 3)], ids=["zero-wait", "stalling"])
def test_dma_target_on_verilator(stall: float, latency: int) -> None:
    src = write_verilog(DmaTestMaster(), "snic_dma_test_master", build_dir_for("dma_target", "verilator"))
    result = run_cocotb(name="dma_target", sources=[src], toplevel="snic_dma_test_master",
                        test_module="splitnic_sim.tb.dma_target", simulator="verilator",
                        extra_env={"SPLITNIC_TEST_STALL": str(stall), "SPLITNIC_TEST_LATENCY": str(latency)})
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == 4
