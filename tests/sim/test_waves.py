"""WAVES=1 on a cocotb test: an FST next to the build, read back here; a failure names it.

Ref: docs/simulation.md ("Waveforms").  Without WAVES the build has no tracing at
all (its own build tree, Verilator's VM_TRACE off), so the usual runs pay nothing.
"""

from __future__ import annotations

import pytest

from splitnic_gateware.id_block import IdBlock
from splitnic_gateware.nic import Nic
from splitnic_gateware.verilog import write_verilog
from splitnic_sim.runner import NIC_BUILD, SIMULATORS, build_dir_for, run_cocotb
from tests.sim.fst import Trace

PREAMBLE_SFD = [0x55] * 7 + [0xD5]


def gmii_frames(trace: Trace, clk: str, en: str, data: str) -> list[tuple[int, list[int]]]:
    """(time of the first byte in ps, bytes) of each frame on GMII data signal ``data`` while
    ``en`` is high, sampled as the rising edges of ``clk`` see them."""
    edges = [t for t, v in trace.changes(clk) if v == 1]
    en_changes, d_changes = trace.changes(en), trace.changes(data)
    frames: list[tuple[int, list[int]]] = []
    inside = False
    ie = id_ = en_v = d_v = 0
    for t in edges:
        # The values just before the edge: what a flip-flop on that edge samples.
        while ie < len(en_changes) and en_changes[ie][0] < t:
            en_v = en_changes[ie][1]
            ie += 1
        while id_ < len(d_changes) and d_changes[id_][0] < t:
            d_v = d_changes[id_][1]
            id_ += 1
        if en_v == 1:
            if not inside:
                frames.append((t, []))
                inside = True
            frames[-1][1].append(int(d_v))
        else:
            inside = False
    return frames


def test_waves_on_a_nic_test_records_its_clock_and_gmii(monkeypatch: pytest.MonkeyPatch) -> None:
    """WAVES=1 on the NIC's tx_to_wire test (Verilator): the FST has the NIC's clock at 125 MHz and
    the frames the test saw leave on gmii_tx_*, preamble and SFD first."""
    monkeypatch.setenv("WAVES", "1")
    build = build_dir_for(NIC_BUILD + "-waves", "verilator")
    src = write_verilog(Nic(), "snic_nic", build)
    result = run_cocotb(name=NIC_BUILD, sources=[src], toplevel="snic_nic",
                        test_module="splitnic_sim.tb.nic_scoreboard", testcase="tx_to_wire",
                        extra_env={"SPLITNIC_TEST_SCALE": "0.1"})
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == 1
    assert result.waves == build / "nic_scoreboard.fst" and result.waves.exists()
    trace = Trace(result.waves)
    assert "snic_nic.clk" in trace.names and "snic_nic.gmii_tx_en" in trace.names, sorted(trace.names)[:20]
    rising = [t for t, v in trace.changes("snic_nic.clk") if v == 1]
    assert len(rising) > 1000
    assert {b - a for a, b in zip(rising[100:200], rising[101:201])} == {8000}, "clock period is not 8 ns"
    frames = gmii_frames(trace, "snic_nic.clk", "snic_nic.gmii_tx_en", "snic_nic.gmii_tx_d")
    # tx_to_wire posts 2 frames on each of the 8 TX queues at this scale (a bad descriptor sends nothing).
    assert len(frames) >= 6, f"{len(frames)} frames on gmii_tx_en"
    for _, frame in frames:
        assert frame[:8] == PREAMBLE_SFD, f"frame starts {bytes(frame[:8]).hex()}"
        assert len(frame) >= 8 + 64, f"a {len(frame)}-byte frame on the wire is shorter than the minimum"


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_a_failing_test_names_its_waves(simulator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cocotb test that fails under WAVES=1 says where its FST is, on both simulators, and the
    file holds the design's clock; without WAVES the same test has no FST and no tracing built in."""
    def run(waves: str):
        monkeypatch.setenv("WAVES", waves)
        name = "id_block" + ("-waves" if waves == "1" else "")
        src = write_verilog(IdBlock(build_id=0x1234), "snic_id_block", build_dir_for(name, simulator))
        # The testbench expects another build ID than the design's: its first test fails.
        return run_cocotb(name="id_block", sources=[src], toplevel="snic_id_block",
                          test_module="splitnic_sim.tb.id_block", simulator=simulator,
                          testcase="id_registers_match_the_spec", extra_env={"SPLITNIC_BUILD_ID": "0x4321"})

    result = run("1")
    assert result.failed == 1
    fst = build_dir_for("id_block-waves", simulator) / "id_block.fst"
    assert f"[waves: {fst}]" in result.failures[0], result.failures[0]
    trace = Trace(fst)
    clk = trace.find("snic_id_block.clk")
    assert clk, sorted(trace.names)[:20]
    assert sum(1 for _, v in trace.changes(clk[0]) if v == 1) > 10

    plain = run("0")
    assert plain.failed == 1 and plain.waves is None and "waves" not in plain.failures[0]
    if simulator == "verilator":
        classes = (build_dir_for("id_block", simulator) / "Vtop_classes.mk").read_text()
        assert "VM_TRACE = 0" in classes, "tracing compiled into the build without WAVES"
