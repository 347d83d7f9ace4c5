"""The RTL's cocotb tests once more, with every register and memory random at the start.

Amaranth writes an initial value for every register and memory, and a simulator starts
there; the board starts there only when the FPGA is configured, not after a warm reset
(LiteX's soft reset resets ``sys`` without reconfiguring).  Here Verilator starts every
register and memory at a random value (splitnic_sim.runner's ``random_init``), so a design
that needs an initial value instead of its reset fails.  The tests assert what the RTL tests
in tests/gateware assert; the seed is in the failure message.
"""

from __future__ import annotations

import json
from pathlib import Path

from splitnic_gateware.id_block import IdBlock
from splitnic_gateware.nic import Nic
from splitnic_gateware.verilog import write_verilog
from splitnic_sim.mac_top import MacLoopTop
from splitnic_sim.runner import NIC_BUILD, build_dir_for, run_cocotb

from tests.gateware.test_nic_linerate import RUNS, TOLERANCE
from tests.netlist.board_bus import write_board_bus_wrapper

BUILD_ID = 0x5EED1234
#: The NIC inside the board's bus, which ignores the DMA master during reset (board_bus.py).
WRAPPER = "snic_nic_on_board_bus"


def _nic_sources() -> list[Path]:
    out = build_dir_for(NIC_BUILD, "verilator")
    src = write_verilog(Nic(), "snic_nic", out)
    return [src, write_board_bus_wrapper(src, "snic_nic", WRAPPER, out, public_ports=False)]


def test_nic_scoreboard_from_a_random_state() -> None:
    result = run_cocotb(name=NIC_BUILD, sources=_nic_sources(), toplevel=WRAPPER,
                        test_module="splitnic_sim.tb.nic_scoreboard", random_init=True)
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == 4


def test_line_rate_from_a_random_state(tmp_path: Path) -> None:
    out = tmp_path / "linerate.json"
    # The scoreboard's build (same Verilog, same flags): one Verilator build for both.
    result = run_cocotb(name=NIC_BUILD, sources=_nic_sources(), toplevel=WRAPPER,
                        test_module="splitnic_sim.tb.nic_linerate", random_init=True,
                        extra_env={"SPLITNIC_LINERATE": json.dumps({"runs": RUNS, "out": str(out)})})
    assert result.failed == 0, "\n".join(result.failures)
    figures = json.loads(out.read_text())
    assert [r["frame_bytes"] for r in figures] == [r[0] for r in RUNS]
    for r in figures:
        where = f"{r['frame_bytes']}-byte frames"
        assert r["rx_lost"] == 0 and r["rx_fifo_drop"] == 0, f"{where}: RX lost frames: {r}"
        assert r["rx_line_fraction"] >= 1 - TOLERANCE, f"{where}: RX below line rate: {r}"
        assert r["tx_line_fraction"] >= 1 - TOLERANCE, f"{where}: TX below line rate: {r}"


def test_mac_from_a_random_state() -> None:
    src = write_verilog(MacLoopTop(), "snic_mac_loop", build_dir_for("mac_loop", "verilator"))
    result = run_cocotb(name="mac_loop", sources=[src], toplevel="snic_mac_loop",
                        test_module="splitnic_sim.tb.mac_loop", random_init=True)
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == 2


def test_id_block_from_a_random_state() -> None:
    src = write_verilog(IdBlock(build_id=BUILD_ID), "snic_id_block", build_dir_for("id_block", "verilator"))
    result = run_cocotb(name="id_block", sources=[src], toplevel="snic_id_block",
                        test_module="splitnic_sim.tb.id_block", random_init=True,
                        extra_env={"SPLITNIC_BUILD_ID": hex(BUILD_ID)})
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == 3
