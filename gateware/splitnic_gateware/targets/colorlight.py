"""The Colorlight i5 and i9 (Lattice ECP5-25F / -45F, two gigabit RGMII PHYs): SoC and bitstream build.

Ref: docs/hardware.md; litex_boards/platforms/colorlight_i5.py (pins of both:
the i9 is the i5's board with a larger FPGA, its LED on another pin);
liteeth/phy/ecp5rgmii.py (the PHYs).

* One design for both boards; ``board`` (a key of :data:`COLORLIGHT_BOARDS`)
  picks the platform, the FPGA and the NIC's size: the i5 builds the smaller
  :data:`.nic_core.BOARD_NIC_SIZE`, the i9 :data:`.nic_core.LARGE_BOARD_NIC_SIZE`.

* LiteX PHY ``eth`` 0 is the **host link** (Etherbone and the ``eth`` link's
  engines, on LiteEth's 32-bit path in ``sys``); ``eth`` 1 is the **NIC's
  wire**.  The two PHYs share reset and MDIO pins; the host-link PHY owns them.
* ``sys`` (the NIC, Etherbone, the bus) comes from the 25 MHz oscillator
  through the PLL at :data:`SYS_CLK_FREQ`; the PHYs run from their own
  125 MHz receive clocks.
* ``python -m splitnic_gateware.targets.colorlight --board colorlight_i5`` (``make
  bitstream BOARD=colorlight_i5``) builds with YoWASP's yosys, nextpnr-ecp5 and ecppack,
  refuses a design that misses timing, and writes ``summary.json`` and
  ``summary.txt`` (utilisation, each clock's Fmax) next to the bitstream.
  ``--synth-only`` stops after yosys (the suite's check of the i9).
  ``--no-etherbone`` leaves Etherbone (an unauthenticated master of the whole
  bus, :mod:`.soc`) out: the host link is then the ``eth`` link alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from migen import ClockDomain, ClockDomainsRenamer, Instance, Signal
from migen.genlib.resetsync import AsyncResetSynchronizer

from litex.build.generic_platform import Subsignal
from litex.gen import LiteXModule
from litex.soc.cores.clock import ECP5PLL
from litex.soc.cores.led import LedChaser
from litex.soc.integration.builder import Builder
from litex_boards.platforms import colorlight_i5
from liteeth.phy.ecp5rgmii import LiteEthPHYRGMII

from splitnic_spec.board import BOARDS, DEFAULT_BOARD, bitstream_name

from ..netlist import stat_cells
from ..size import NicSize
from .nic_core import BOARD_NIC_SIZE, LARGE_BOARD_NIC_SIZE
from .soc import SplitnicSoC

__all__ = ["ColorlightSoC", "ColorlightBoard", "COLORLIGHT_BOARDS", "BuildResult", "SynthResult", "TimingError",
           "build_bitstream", "synthesise", "check_timing", "default_out", "SYS_CLK_FREQ", "BITSTREAM_NAME",
           "DEFAULT_BOARD", "DEFAULT_OUT"]

log = logging.getLogger(__name__)

#: System clock.  LiteEth's 32-bit path writes a frame into the host-link PHY's TX clock
#: crossing at 32 bits per ``sys`` cycle while the PHY reads 1 Gb/s, with nothing buffered
#: ahead: below 31.25 MHz it would run dry inside longer frames.  40 MHz (1.28 Gb/s) keeps
#: ahead; the NIC core reaches 45-50 MHz on the ECP5-25F (speed 6).
SYS_CLK_FREQ = 40_000_000


@dataclass(frozen=True)
class ColorlightBoard:
    """What the build needs of one board beyond :data:`splitnic_spec.board.BOARDS`."""
    #: litex_boards' ``Platform(board=..., revision=...)``.
    litex_board: str
    litex_revision: str
    #: The NIC this board's FPGA has room for.
    nic_size: NicSize


#: The boards this target builds, by :data:`splitnic_spec.board.BOARDS` name.
COLORLIGHT_BOARDS = {
    "colorlight_i5": ColorlightBoard("i5", "7.0", BOARD_NIC_SIZE),
    "colorlight_i9": ColorlightBoard("i9", "7.2", LARGE_BOARD_NIC_SIZE),
}
#: The default board's bitstream name (``splitnic_spec.board``).
BITSTREAM_NAME = bitstream_name(DEFAULT_BOARD)


def default_out(board: str = DEFAULT_BOARD) -> Path:
    """Where `make bitstream BOARD=board` builds (inside the repo: YoWASP's tools see their own /tmp)."""
    return Path(__file__).resolve().parents[3] / "build" / board


DEFAULT_OUT = default_out()
#: nextpnr's placer and router are deterministic for a given seed, but which seed closes timing
#: changes with any change to the netlist (any change to the gateware's Python changes
#: ID_BUILD).  The build tries these in turn and keeps the first that meets every clock.  With
#: the eth link's engines (close to 90 % of the LUTs) a seed places in about 4 minutes and
#: routes in 5 to 7; PNR_TIMEOUT_S only stops a run gone wrong.
SEEDS = (1, 2, 3)
PNR_TIMEOUT_S = 20 * 60
#: The analytic "static" placer leaves this design (most of the LUTs, both PHYs on
#: opposite edges) about 9 % less wire than the default "heap" placer.
PNR_OPTIONS = ("--placer", "static", "--router", "router1")


class TimingError(RuntimeError):
    """nextpnr could not close timing: some clock's Fmax is below its target."""


class _CRG(LiteXModule):
    def __init__(self, platform, sys_clk_freq: int) -> None:
        self.rst = Signal()
        self.cd_sys = ClockDomain()
        clk25 = platform.request("clk25")
        rst_n = platform.request("cpu_reset_n")
        self.pll = pll = ECP5PLL()
        self.comb += pll.reset.eq(~rst_n | self.rst)
        pll.register_clkin(clk25, 25e6)
        pll.create_clkout(self.cd_sys, sys_clk_freq, with_reset=False)
        # sys's reset reaches some 2 200 flip-flops all over the chip.  On fabric routing it was
        # the one net nextpnr's router1 could not afford to move (each rip-up re-searched it for
        # minutes); on a global network, through a DCCA like the clocks, it costs the router nothing.
        self.cd_sys_rst = ClockDomain()     # only clocks the reset synchroniser
        self.comb += self.cd_sys_rst.clk.eq(self.cd_sys.clk)
        self.specials += [
            AsyncResetSynchronizer(self.cd_sys_rst, ~pll.locked),
            Instance("DCCA", i_CLKI=self.cd_sys_rst.rst, i_CE=1, o_CLKO=self.cd_sys.rst),
        ]


def _wire_port_pads(platform) -> None:
    """Add ``nic_eth``: PHY 1's data pins without the reset/MDIO pins PHY 0 already drives."""
    shared = {"rst_n", "mdio", "mdc"}
    # The i9's pins are the i5's (litex_boards copies _io_v7_0 and moves the LED).
    for name, number, *items in colorlight_i5._io_v7_0:
        if (name, number) == ("eth", 1):
            keep = [i for i in items if not (isinstance(i, Subsignal) and i.name in shared)]
            platform.add_extension([("nic_eth", 0, *keep)])
            return
    raise LookupError("litex_boards' colorlight_i5 platform has no ('eth', 1); is litex-boards the pinned version?")


def _board(name: str) -> ColorlightBoard:
    if name not in COLORLIGHT_BOARDS:
        raise ValueError(f"no board {name!r}; boards: {', '.join(COLORLIGHT_BOARDS)}")
    return COLORLIGHT_BOARDS[name]


class ColorlightSoC(SplitnicSoC):
    """The splitnic board SoC for the Colorlight i5 v7.0 or i9 v7.2 (``board``)."""

    def __init__(self, out_dir: Path, sys_clk_freq: int = SYS_CLK_FREQ, firmware_cpu: str | None = "vexriscv",
                 etherbone: bool = True, board: str = DEFAULT_BOARD) -> None:
        spec = _board(board)
        self.board = BOARDS[board]
        platform = colorlight_i5.Platform(board=spec.litex_board, revision=spec.litex_revision, toolchain="trellis")
        _wire_port_pads(platform)
        super().__init__(platform, sys_clk_freq, Path(out_dir) / "nic", f"splitnic on {self.board.title}",
                         firmware_cpu=firmware_cpu)
        self.crg = _CRG(platform, sys_clk_freq)
        # Heartbeat: the LED chases once the bitstream runs and the PLL locks.
        self.leds = LedChaser(pads=platform.request_all("user_led_n"), sys_clk_freq=sys_clk_freq)

        # Host link: Etherbone (unless left out) and the eth link's engines on one port; the
        # board's PHYs delay TX themselves (tx_delay=0).
        self.ethphy = LiteEthPHYRGMII(clock_pads=platform.request("eth_clocks", 0),
                                      pads=platform.request("eth", 0), tx_delay=0)
        self.add_host_link(self.ethphy, etherbone=etherbone)

        # The NIC's wire: PHY 1 in its own clock domains.
        self.nicphy = ClockDomainsRenamer({"eth_rx": "nic_rx", "eth_tx": "nic_tx"})(
            LiteEthPHYRGMII(clock_pads=platform.request("eth_clocks", 1), pads=platform.request("nic_eth", 0),
                            tx_delay=0, with_hw_init_reset=False))
        self.add_nic(self.nicphy, "nic_rx", "nic_tx", spec.nic_size)


@dataclass
class BuildResult:
    """What a bitstream build produced and measured."""
    bitstream: str
    seconds: dict[str, float]
    utilisation: dict[str, dict[str, int]]
    #: Clock name -> achieved and target Fmax in MHz.
    fmax: dict[str, dict[str, float]]
    sys_clk_hz: int
    build_id: str
    device: str = "LFE5U-25F-6BG381C"
    timing_met: bool = True
    failures: list[str] = field(default_factory=list)
    #: The nextpnr seed of this result, and what each seed tried before it gave.
    seed: int = 0
    attempts: list[str] = field(default_factory=list)
    #: Whether the bitstream carries Etherbone (``--no-etherbone``: not).
    etherbone: bool = True
    #: The board (:data:`COLORLIGHT_BOARDS`) and the NIC's queues and steering entries on it.
    board: str = DEFAULT_BOARD
    nic: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for people: build time, utilisation, clocks."""
        lines = [f"bitstream {self.bitstream}" + ("" if self.etherbone else " (no Etherbone)"),
                 f"device    {self.device} ({self.board}), build id {self.build_id}",
                 "nic       " + ", ".join(f"{k} {v}" for k, v in self.nic.items()),
                 "time      " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items()),
                 f"seed      {self.seed}" + (f" (after: {'; '.join(self.attempts)})" if self.attempts else "")]
        for kind in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "TRELLIS_IO", "EHXPLLL"):
            if kind in self.utilisation:
                u = self.utilisation[kind]
                lines.append(f"{kind:<13} {u['used']:>6} / {u['available']:<6} ({100 * u['used'] / u['available']:.0f} %)")
        for clock, f in sorted(self.fmax.items()):
            verdict = "ok" if f["achieved"] >= f["constraint"] else "FAIL"
            lines.append(f"clock {clock}: {f['achieved']:.1f} MHz achieved, {f['constraint']:.1f} MHz target ({verdict})")
        return "\n".join(lines)


def _run(cmd: list[str], cwd: Path, logfile: Path, timeout: float | None = None) -> float:
    log.info("%s", shlex.join(cmd))
    start = time.monotonic()
    with logfile.open("w") as out:
        try:
            rc = subprocess.call(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{Path(cmd[0]).name} did not finish within {timeout:.0f} s; see {logfile}") from None
    seconds = time.monotonic() - start
    if rc != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-15:]
        errors = [line for line in tail if "ERROR" in line or "error" in line.lower()] or tail[-3:]
        raise RuntimeError(f"{cmd[0]} failed (exit {rc}) after {seconds:.0f} s; see {logfile}: " + " | ".join(errors))
    return seconds


#: A path under the host's /tmp in a yosys script (alone, or after ``-I``).
_HOST_TMP_PATH = re.compile(r"(^|\s|-I)(/tmp/\S+)", re.M)


def _paths_yowasp_can_reach(script: Path) -> None:
    """Rewrite the paths under /tmp in the yosys ``script`` relative to its directory.

    YoWASP's yosys sees a /tmp of its own (the runtime mounts a fresh directory there), so a
    checkout or a venv under the host's /tmp is out of its reach by absolute path; relative to
    the working directory it is within reach (the runtime opens "." and every ".." up to /).
    """
    text = script.read_text()
    fixed = _HOST_TMP_PATH.sub(lambda m: m.group(1) + os.path.relpath(m.group(2), script.parent), text)
    if fixed != text:
        script.write_text(fixed)


def _tool(name: str) -> str:
    # The YoWASP commands live next to the venv's python.
    path = Path(sys.executable).parent / f"yowasp-{name}"
    return str(path) if path.exists() else f"yowasp-{name}"


def _clock_label(net: str) -> str:
    """A readable name for a nextpnr clock net (``crg_pll_clkout`` -> ``sys`` ...)."""
    for pattern, label in ((r"eth_clocks1_rx|nic_rx", "nic_rx (wire PHY RX, 125 MHz)"),
                           (r"eth_clocks0_rx|eth_rx", "eth_rx (host-link PHY RX, 125 MHz)"),
                           (r"sys|crg|pll", "sys"), (r"clk25", "clk25")):
        if re.search(pattern, net):
            return label
    return net


def _nic_counts(soc: ColorlightSoC) -> dict[str, int]:
    size = soc.nic.size
    return {"rx_queues": size.rx_queues, "tx_queues": size.tx_queues, "steer_entries": size.steer_entries,
            "rx_fifo_words": size.rx_fifo_words, "tx_buffer_words": size.tx_buffer_words}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _elaborate_and_synthesise(out_dir: Path, sys_clk_freq: int, etherbone: bool, board: str,
                              seconds: dict[str, float], cpu: dict[str, float] | None = None) -> ColorlightSoC:
    """LiteX writes the Verilog, the yosys script and the constraints; yosys synthesises (into ``gateware/``).

    ``seconds`` gets each step's wall-clock time, ``cpu`` (if given) its CPU time: the cost on a loaded machine.
    """
    cpu = {} if cpu is None else cpu
    gw = out_dir / "gateware"
    start, start_cpu = time.monotonic(), time.process_time() + _children_cpu()
    soc = ColorlightSoC(out_dir, sys_clk_freq, etherbone=etherbone, board=board)
    builder = Builder(soc, output_dir=str(out_dir), compile_software=False,
                      csr_json=str(out_dir / "csr.json"), csr_csv=str(out_dir / "csr.csv"))
    name = bitstream_name(board)
    builder.build(build_name=name, run=False, abc9=True)
    seconds["litex"] = time.monotonic() - start
    cpu["litex"] = time.process_time() + _children_cpu() - start_cpu   # the firmware's make included
    script = gw / f"{name}.ys"
    _paths_yowasp_can_reach(script)
    # The synthesised design's cell counts, for --synth-only's summary (stat takes a second).
    script.write_text(script.read_text().rstrip("\n") + f"\ntee -q -o {name}.stat.json stat -json\n")
    before = _children_cpu()
    seconds["yosys"] = _run([_tool("yosys"), "-q", "-l", f"{name}.yosys.log", f"{name}.ys"], gw, gw / "yosys.out")
    cpu["yosys"] = _children_cpu() - before
    return soc


@dataclass
class SynthResult:
    """What yosys alone made of a board's SoC (``--synth-only``): no placement, so no clocks."""
    netlist: str
    seconds: dict[str, float]
    #: Cell type -> count in the synthesised netlist (yosys's last statistics).
    cells: dict[str, int]
    build_id: str
    device: str
    board: str
    nic: dict[str, int] = field(default_factory=dict)
    #: CPU seconds of each step (on a loaded machine, what it really costs).
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for people."""
        lines = [f"netlist   {self.netlist} (synthesis only: no place and route, no clocks)",
                 f"device    {self.device} ({self.board}), build id {self.build_id}",
                 "nic       " + ", ".join(f"{k} {v}" for k, v in self.nic.items()),
                 "time      " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items()),
                 "cpu time  " + ", ".join(f"{k} {v:.0f} s" for k, v in self.cpu_seconds.items())]
        lines += [f"{kind:<13} {self.cells[kind]:>6}" for kind in ("LUT4", "TRELLIS_FF", "CCU2C", "DP16KD")
                  if kind in self.cells]
        return "\n".join(lines)


def synthesise(out_dir: Path, board: str = DEFAULT_BOARD, sys_clk_freq: int = SYS_CLK_FREQ,
               etherbone: bool = True) -> SynthResult:
    """Elaborate ``board``'s SoC and synthesise it with yosys, no further; writes ``summary.json``/``.txt``."""
    out_dir = Path(out_dir).resolve()
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    start = time.monotonic()
    soc = _elaborate_and_synthesise(out_dir, sys_clk_freq, etherbone, board, seconds, cpu)
    seconds["total"] = time.monotonic() - start
    name = bitstream_name(board)
    gw = out_dir / "gateware"
    result = SynthResult(netlist=str(gw / f"{name}.json"), seconds={k: round(v, 1) for k, v in seconds.items()},
                         cells=stat_cells(gw / f"{name}.stat.json", name),
                         build_id=f"{soc.nic.build_id:#010x}", device=BOARDS[board].fpga, board=board,
                         nic=_nic_counts(soc), cpu_seconds={k: round(v, 1) for k, v in cpu.items()})
    (out_dir / "summary.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    (out_dir / "summary.txt").write_text(result.summary() + "\n")
    return result


def build_bitstream(out_dir: Path | None = None, sys_clk_freq: int = SYS_CLK_FREQ,
                    seeds: tuple[int, ...] = SEEDS, pnr_timeout: float | None = PNR_TIMEOUT_S,
                    etherbone: bool = True, board: str = DEFAULT_BOARD) -> BuildResult:
    """Build ``board``'s bitstream into ``out_dir``; raise :class:`TimingError` if timing fails.

    Places and routes with each of ``seeds`` in turn until one meets every
    clock's target; ``pnr_timeout`` bounds each nextpnr run in seconds (None:
    no bound).  ``etherbone``: the SoC carries Etherbone.  ``out_dir``
    defaults to :func:`default_out`.  Writes ``summary.json`` and
    ``summary.txt`` whatever the verdict, so a failed build still says by how
    much it missed.
    """
    _board(board)
    out_dir = Path(out_dir or default_out(board)).resolve()
    gw = out_dir / "gateware"
    seconds: dict[str, float] = {}
    start = time.monotonic()
    soc = _elaborate_and_synthesise(out_dir, sys_clk_freq, etherbone, board, seconds)
    name = bitstream_name(board)
    attempts: list[str] = []
    seconds["nextpnr"] = 0.0
    for seed in seeds:
        result = _place_and_route(soc, gw, seed, pnr_timeout, seconds, sys_clk_freq)
        if result.timing_met:
            break
        verdict = "; ".join(result.failures) if result.failures else "no report"
        attempts.append(f"seed {seed}: {verdict}")
        log.warning("seed %d did not close timing (%s)%s", seed, verdict,
                    "; trying the next seed" if seed != seeds[-1] else "")
    result.attempts = attempts[:-1] if not result.timing_met else attempts
    result.etherbone = etherbone
    if result.timing_met:
        seconds["ecppack"] = _run([_tool("ecppack"), "--compress", "--bootaddr", "0", f"{name}.config",
                                   f"{name}.bit"], gw, gw / "ecppack.out")
    seconds["total"] = time.monotonic() - start
    result.seconds = {k: round(v, 1) for k, v in seconds.items()}
    (out_dir / "summary.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    (out_dir / "summary.txt").write_text(result.summary() + "\n")
    check_timing(result, out_dir / "summary.txt")
    return result


def _place_and_route(soc, gw: Path, seed: int, timeout: float | None, seconds: dict[str, float],
                     sys_clk_freq: int) -> BuildResult:
    """Run nextpnr with ``seed``; the result says whether every clock met its target."""
    name = bitstream_name(soc.board.name)
    report = gw / f"{name}.report.json"
    pnr = [_tool("nextpnr-ecp5"), "--json", f"{name}.json", "--lpf", f"{name}.lpf", "--textcfg", f"{name}.config",
           *_nextpnr_device(soc.board.fpga), "--seed", str(seed), "--report", report.name,
           *PNR_OPTIONS, "--log", f"{name}.seed{seed}.nextpnr.log"]   # one log per seed: each says why
    report.unlink(missing_ok=True)  # a report left by an earlier run must not pass for this one
    start = time.monotonic()
    pnr_error: RuntimeError | None = None
    try:
        _run(pnr, gw, gw / f"nextpnr.seed{seed}.out", timeout)
    except RuntimeError as err:
        # Without --timing-allow-fail nextpnr stops on a timing failure; the report says why.
        pnr_error = err
    seconds["nextpnr"] += time.monotonic() - start
    if pnr_error is not None and not report.exists():
        # No report: nextpnr failed to route within the time (or crashed); another seed may do.
        log.warning("seed %d: %s", seed, pnr_error)
        return BuildResult(bitstream="", seconds=seconds, utilisation={}, fmax={}, sys_clk_hz=sys_clk_freq,
                           build_id=f"{soc.nic.build_id:#010x}", timing_met=False, failures=[str(pnr_error)],
                           seed=seed, device=soc.board.fpga, board=soc.board.name, nic=_nic_counts(soc))
    result = _summarise(soc, gw, report, seconds, sys_clk_freq)
    result.seed = seed
    if pnr_error is not None and result.timing_met:
        raise pnr_error
    return result


def _nextpnr_device(fpga: str) -> list[str]:
    """nextpnr-ecp5's device options for a Lattice part number (``LFE5U-45F-6BG381C``)."""
    m = re.fullmatch(r"LFE5U-(\d+)F-(\d)BG381C", fpga)
    if m is None:
        raise ValueError(f"no nextpnr options known for {fpga}")
    return [f"--{m[1]}k", "--package", "CABGA381", "--speed", m[2]]


def check_timing(result: BuildResult, summary: Path | str = "summary.txt") -> None:
    """Raise :class:`TimingError` unless every clock met its target."""
    if not result.timing_met:
        raise TimingError(f"timing not met: {'; '.join(result.failures)} (see {summary}); "
                          "lower --sys-clk-freq or shorten the failing paths")


def _summarise(soc, gw: Path, report: Path, seconds: dict[str, float], sys_clk_freq: int) -> BuildResult:
    if not report.exists():
        raise RuntimeError(f"nextpnr wrote no report {report}; see its log in {gw}")
    data = json.loads(report.read_text())
    fmax = {_clock_label(net): {"achieved": round(v["achieved"], 2), "constraint": round(v["constraint"], 2)}
            for net, v in data.get("fmax", {}).items()}
    failures = [f"{clock} {f['achieved']:.1f} MHz < {f['constraint']:.1f} MHz" for clock, f in fmax.items()
                if f["achieved"] < f["constraint"]]
    board = getattr(soc, "board", BOARDS[DEFAULT_BOARD])
    return BuildResult(bitstream=str(gw / f"{bitstream_name(board.name)}.bit"), seconds=seconds,
                       utilisation=data.get("utilization", {}), fmax=fmax, sys_clk_hz=sys_clk_freq,
                       build_id=f"{soc.nic.build_id:#010x}", timing_met=not failures, failures=failures,
                       device=board.fpga, board=board.name,
                       nic=_nic_counts(soc) if hasattr(soc.nic, "size") else {})


def main(argv: list[str] | None = None) -> int:
    """``make bitstream BOARD=colorlight_i5`` (or ``colorlight_i9``)."""
    parser = argparse.ArgumentParser(prog="python -m splitnic_gateware.targets.colorlight",
                                     description="Build the splitnic bitstream for a Colorlight i5 or i9.")
    parser.add_argument("--board", choices=tuple(COLORLIGHT_BOARDS), default=DEFAULT_BOARD,
                        help="the board (default %(default)s)")
    parser.add_argument("--out", type=Path, help="build directory (default build/BOARD)")
    parser.add_argument("--synth-only", action="store_true",
                        help="elaborate and synthesise (yosys) only: no place and route, no bitstream")
    parser.add_argument("--sys-clk-freq", type=float, default=SYS_CLK_FREQ, help="system clock in Hz")
    parser.add_argument("--seed", type=int, action="append", dest="seeds",
                        help=f"nextpnr seed to try (repeatable; default {', '.join(map(str, SEEDS))} in turn)")
    parser.add_argument("--no-etherbone", dest="etherbone", action="store_false",
                        help="leave Etherbone out: an unauthenticated master of the whole bus, kept by default "
                             "for bring-up and LiteX's tools; the host link is then the eth link alone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    os.environ.setdefault("YOWASP_CACHE_DIR", str(Path(__file__).resolve().parents[3] / ".cache" / "yowasp"))
    out = args.out or default_out(args.board)
    try:
        if args.synth_only:
            result = synthesise(out, args.board, int(args.sys_clk_freq), etherbone=args.etherbone)
        else:
            result = build_bitstream(out, int(args.sys_clk_freq), tuple(args.seeds or SEEDS),
                                     etherbone=args.etherbone, board=args.board)
    except (TimingError, RuntimeError) as err:
        print(f"bitstream: error: {err}", file=sys.stderr)
        summary = Path(out) / "summary.txt"
        if summary.exists():
            print(summary.read_text(), file=sys.stderr)
        return 1
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
