"""make coverage's pieces: a Verilator run under SPLITNIC_COVERAGE writes counts, and
bench/bench_coverage.py turns them into per-module figures and an lcov tracefile.

Ref: docs/simulation.md ("Coverage").  The ID block's two cocotb tests are the subject:
the register reads of one of them cover lines the other leaves unrun, so fewer tests
must give fewer points hit.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from splitnic_gateware.id_block import IdBlock
from splitnic_gateware.verilog import write_verilog
from splitnic_sim.runner import build_dir_for, run_cocotb

REPO = Path(__file__).resolve().parents[2]
BUILD_ID = 0x5EED1234


def _bench():
    spec = importlib.util.spec_from_file_location("bench_coverage", REPO / "bench" / "bench_coverage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(counts: Path | None, testcase: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if counts is None:
        monkeypatch.delenv("SPLITNIC_COVERAGE", raising=False)
    else:
        monkeypatch.setenv("SPLITNIC_COVERAGE", str(counts))
    src = write_verilog(IdBlock(build_id=BUILD_ID), "snic_id_block", build_dir_for("id_block", "verilator"))
    result = run_cocotb(name="id_block", sources=[src], toplevel="snic_id_block",
                        test_module="splitnic_sim.tb.id_block", testcase=testcase,
                        extra_env={"SPLITNIC_BUILD_ID": hex(BUILD_ID)})
    assert result.failed == 0 and result.passed >= 1, "\n".join(result.failures)


def test_coverage_counts_per_module_and_fewer_tests_cover_less(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench()
    both, one = tmp_path / "both", tmp_path / "one"
    _run(both, None, monkeypatch)
    _run(one, "scratch_keeps_what_was_written", monkeypatch)
    full = bench.per_module(bench.merge(both.glob("*.dat")))
    part = bench.per_module(bench.merge(one.glob("*.dat")))
    assert list(full) == ["snic_id_block"], list(full)
    f, p = full["snic_id_block"], part["snic_id_block"]
    assert f.lines == p.lines > 20 and f.toggles == p.toggles > 100, (f, p)
    assert p.lines_hit < f.lines_hit <= f.lines, (p, f)
    assert 0 < p.toggles_hit <= p.toggles and 0 < f.toggles_hit <= f.toggles, (p, f)
    # Two runs' counts add up: the union covers what each did (toggles depend on each run's random
    # bus timing and data, so neither run's toggles need contain the other's).
    twice = bench.per_module(bench.merge([*both.glob("*.dat"), *one.glob("*.dat")]))["snic_id_block"]
    assert twice.lines_hit == f.lines_hit
    assert twice.toggles_hit >= max(f.toggles_hit, p.toggles_hit), (twice, f, p)
    # Yosys's never-true guards (one per always @* block) are no line of the design: their taken
    # arm never runs, the other always does, and both are left out of the figures.
    merged = bench.merge(both.glob("*.dat"))
    guards = bench.backend_guards(merged)
    arms = {arm: [merged[g] for g in guards if g[5] == arm] for arm in ("if", "else")}
    assert len(arms["if"]) >= 3 and len(arms["else"]) == len(arms["if"]) == len(guards) // 2, guards
    assert not any(arms["if"]) and all(arms["else"]), arms
    line_points = [p for p in merged if p[3] in bench.LINE_TYPES]
    assert f.lines == len(line_points) - len(guards), (f, len(line_points), len(guards))
    line, = bench.summary_lines(full)
    assert line.startswith("snic_id_block  line ") and f"({f.lines_hit}/{f.lines})" in line, line

    info = tmp_path / "lines.info"
    bench.write_lcov(bench.merge(both.glob("*.dat")), info)
    text = info.read_text()
    assert f"SF:{build_dir_for('id_block', 'verilator') / 'snic_id_block.v'}" in text
    assert text.count("end_of_record") == 1 and "DA:" in text


def test_coverage_is_not_compiled_in_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    _run(None, "scratch_keeps_what_was_written", monkeypatch)
    classes = (build_dir_for("id_block", "verilator") / "Vtop_classes.mk").read_text()
    assert "VM_COVERAGE = 0" in classes
