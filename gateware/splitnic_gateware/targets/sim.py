"""The board SoC on LiteX's Verilator simulator, its Etherbone host link on a TAP interface.

Ref: :mod:`.soc` (the design, shared with :mod:`.colorlight`);
litex/build/sim/core/modules/ethernet (LiteX's TAP bridge, which feeds a
LiteEth PHY model byte by byte).

What differs from the board is only what a simulator cannot have: the clock
comes from the simulator, the host-link PHY is LiteEth's model PHY whose
frames go to and come from the TAP interface :data:`TAP`, the NIC's wire
port is :class:`~.sim_wire.SimWire`: a loopback plug (what the NIC transmits
comes back to it through both GMII bridges, while the cable is plugged) or,
with ``wire="tap"``, the TAP interface :data:`WIRE_TAP`, which the owner
moves into a peer's namespace (``wire_netns``) so that a kernel is on the
far end of the NIC's cable, and the wire PHY's management side
is :class:`~.mdio_phy_model.MdioPhyModel` on a bit-bang MDIO master with
LiteEth's CSRs, so the management CPU runs the board's firmware.  The sim-only
CSR ``simphy_cable`` (see :func:`csr_address`) pulls and plugs the cable.  The host side of the TAP gets :data:`HOST_IP`; the SoC answers
Etherbone at :data:`SOC_IP` -- its own subnet, so that it cannot clash with
a board on 192.168.1.0/24.

:class:`SimSoCProcess` builds the simulator once (``.cache/sim/board-soc``)
and runs it in a network namespace of its own (``unshare --net``), so neither
the TAP nor its address ever appears in the machine's root namespace, two
simulated SoCs can run side by side, and the namespace goes when the
simulator does.  The simulator dies with its owner (the parent-death signal):
it never runs on after the process that started it.  Inside the namespace
(``nsenter --net=/proc/PID/ns/net``, :attr:`SimSoCProcess.netns_path`),
``splitnic --link etherbone:172.31.250.50`` talks to it exactly as to the
board.  LiteX's TAP bridge needs root (it creates the TAP).

``--trace FILE.fst`` (:class:`SimSoCProcess` ``trace=``) records the SoC into
an FST, bounded as ``splitnic sim --trace`` is: ``trace_cycles`` cycles of the
1 MHz system clock from cycle ``trace_start``, the file closed, complete, when
the window ends or the simulator is stopped.  The one build serves both: LiteX
compiles tracing into every simulator, and the tracer here records only when
the environment names a file (docs/simulation.md, "Waveforms").
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import splitnic_spec

from migen.genlib.io import CRG

from litex.build.generic_platform import Pins, Subsignal
from litex.build.sim import SimPlatform
from litex.build.sim.config import SimConfig
from litex.soc.integration.builder import Builder
from liteeth.phy.model import LiteEthPHYModel

from splitnic_spec import board as amap
from . import firmware
from .flash_uid import SpiFlashUidModel
from .mdio_phy_model import MdioPhyModel, SimMdioMaster
from .sim_wire import SimWire
from .soc import SplitnicSoC

__all__ = ["SimBoardSoC", "SimSoCProcess", "build_sim", "csr_address", "TAP", "WIRE_TAP", "HOST_IP", "SOC_IP",
           "SIM_SYS_CLK_FREQ", "WIRES", "DEFAULT_TRACE_CYCLES"]

log = logging.getLogger(__name__)

TAP = "snebtap0"
#: The NIC wire's TAP interface (used with ``wire="tap"``; see :mod:`.sim_wire`).
WIRE_TAP = "snwire0"
#: What the NIC's wire can have at its far end.
WIRES = ("loopback", "tap")
#: A link-local address for the wire TAP until it is moved (LiteX's TAP bridge requires one).
_WIRE_TAP_PLACEHOLDER_IP = "169.254.250.1"
HOST_IP = "172.31.250.1"
SOC_IP = "172.31.250.50"
#: The simulated clock's nominal frequency: what CLOCK_HZ reports and LiteEth's timers count in.
SIM_SYS_CLK_FREQ = 1_000_000
REPO = Path(__file__).resolve().parents[3]
DEFAULT_DIR = REPO / ".cache" / "sim" / "board-soc"
#: Cycles a trace records unless told otherwise: 1 s of the SoC's 1 MHz clock.
DEFAULT_TRACE_CYCLES = 1_000_000
_PS_PER_CYCLE = 10**12 // SIM_SYS_CLK_FREQ

_IO = [
    ("sys_clk", 0, Pins(1)),
    ("sys_rst", 0, Pins(1)),
    # The pads LiteX's "ethernet" sim module drives (a byte stream each way).
    ("eth", 0,
        Subsignal("source_valid", Pins(1)), Subsignal("source_ready", Pins(1)), Subsignal("source_data", Pins(8)),
        Subsignal("sink_valid", Pins(1)), Subsignal("sink_ready", Pins(1)), Subsignal("sink_data", Pins(8))),
    # The pads LiteX's "gmii_ethernet" sim module drives: the NIC wire's TAP (see sim_wire.py).
    ("gmii_eth", 0,
        Subsignal("tx_data", Pins(8)), Subsignal("tx_en", Pins(1)), Subsignal("tx_er", Pins(1)),
        Subsignal("rx_data", Pins(8)), Subsignal("rx_dv", Pins(1)), Subsignal("rx_er", Pins(1))),
]


class SimBoardSoC(SplitnicSoC):
    """:class:`~.soc.SplitnicSoC` with the simulator's clock, a model host-link PHY, the NIC's wire
    (:class:`~.sim_wire.SimWire`) and the wire PHY's model."""

    def __init__(self, out_dir: Path, sys_clk_freq: int = SIM_SYS_CLK_FREQ,
                 firmware_cpu: str | None = "vexriscv") -> None:
        platform = SimPlatform("SIM", list(_IO))
        super().__init__(platform, sys_clk_freq, Path(out_dir) / "nic", "splitnic simulated board SoC",
                         firmware_cpu=firmware_cpu)
        self.crg = CRG(platform.request("sys_clk"))
        self.ethphy = LiteEthPHYModel(platform.request("eth", 0))
        self.add_host_link(self.ethphy, ip_address=SOC_IP)
        self.wire = SimWire(platform.request("gmii_eth"))
        self.add_nic(self.wire, "sys", "sys")
        # The wire PHY's management side, at the board's address, on the MDIO CSRs the board has.
        self.simphy = MdioPhyModel(phy_addr=self.firmware_board.wire_phy_addr)
        self.ethphy.mdio = SimMdioMaster(self.simphy)
        self.comb += self.wire.plugged.eq(self.simphy.cable.storage[0])
        if firmware_cpu is not None:
            # A flash with a fixed unique id, so the firmware derives its MAC address as on the board.
            self.flash = SpiFlashUidModel()
            self.add_flash_uid(self.flash)


def _sim_config() -> SimConfig:
    config = SimConfig()
    config.add_clocker("sys_clk", freq_hz=SIM_SYS_CLK_FREQ)
    config.add_module("ethernet", "eth", args={"interface": TAP, "ip": HOST_IP})
    # LiteX's bridge insists on an address; the wire's TAP moves to the peer's namespace,
    # which drops it, before it is used.
    config.add_module("gmii_ethernet", "gmii_eth", args={"interface": WIRE_TAP, "ip": _WIRE_TAP_PLACEHOLDER_IP})
    return config


def _sources_hash() -> str:
    digest = hashlib.sha256()
    for package in (Path(__file__).parents[1], Path(splitnic_spec.__file__).parent):
        for path in sorted(package.rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


#: The ROM's contents file, which the simulator reads ($readmemh) each time it starts.
_ROM_INIT = "sim_rom.init"


def _refresh_firmware(out_dir: Path, gw: Path) -> None:
    """Rebuild the firmware if its sources changed and give the built simulator the new ROM contents.

    The gateware (and so the CSR addresses in board.h) is the one the stamp
    vouches for; only the ROM's contents file changes, no re-verilating.
    """
    words = firmware.rom_words(firmware.build(out_dir / "firmware"), amap.FW_ROM_SIZE)
    words += [0] * (amap.FW_ROM_SIZE // 4 - len(words))
    text = "".join(f"{w:08x}\n" for w in words)
    init = gw / _ROM_INIT
    if not init.exists() or init.read_text() != text:
        init.write_text(text)


def csr_address(name: str, out_dir: Path = DEFAULT_DIR) -> int:
    """Bus address of LiteX CSR ``name`` (e.g. ``simphy_cable``) in the built simulated SoC."""
    csrs = json.loads((Path(out_dir) / "csr.json").read_text())["csr_registers"]
    if name not in csrs:
        raise KeyError(f"the simulated SoC has no CSR {name!r}; it has {', '.join(sorted(csrs))}")
    return csrs[name]["addr"]


# LiteX compiles tracing into every simulator; its generated sim_init.cpp opens a tracer with
# the window fixed at build time, its simulator flushes it every cycle (with FST, a block per
# cycle: a few hundred cycles a second) and never closes the file unless the design calls
# $finish (a killed one leaves an unreadable FST).  This sim_init.cpp leaves LiteX's tracer
# unopened (its flush costs nothing) and records with a tracer of its own, only when
# SPLITNIC_SIM_TRACE names a file: the window from the environment, the file opened when the
# window starts and closed when it ends, or on SIGTERM or SIGINT before that (and the simulator
# exits).  Without SPLITNIC_SIM_TRACE each cycle costs one call that returns at once.
_TRACE_INIT = """\
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <verilated_fst_c.h>
extern VerilatedFstC *tfp;
extern uint64_t main_time;
static VerilatedFstC *splitnic_tfp;
static Vsim *splitnic_sim;
static const char *splitnic_path;
static uint64_t splitnic_from, splitnic_until;
static volatile std::sig_atomic_t splitnic_stop = 0;
static bool splitnic_done = false;
static void splitnic_on_signal(int) { splitnic_stop = 1; }
static uint64_t splitnic_env(const char *name, uint64_t otherwise) {
    const char *value = getenv(name);
    return value && *value ? strtoull(value, nullptr, 0) : otherwise;
}
static void splitnic_close(const char *why) {
    if (splitnic_tfp && !splitnic_done) {
        splitnic_tfp->close();
        fprintf(stderr, "sim: trace %s closed at %llu ps (%s)\\n", splitnic_path, (unsigned long long)main_time,
                why);
    }
    splitnic_done = true;
}
static void splitnic_init_tracer(Vsim *sim) {
    Verilated::traceEverOn(true);
    tfp = new VerilatedFstC;    // LiteX's, never opened: its flush and close do nothing
    splitnic_path = getenv("SPLITNIC_SIM_TRACE");
    if (!splitnic_path || !*splitnic_path) {
        splitnic_done = true;   // no trace asked for
        return;
    }
    splitnic_from = splitnic_env("SPLITNIC_SIM_TRACE_FROM_PS", 0);
    splitnic_until = splitnic_env("SPLITNIC_SIM_TRACE_UNTIL_PS", UINT64_MAX);
    splitnic_sim = sim;
    signal(SIGTERM, splitnic_on_signal);
    signal(SIGINT, splitnic_on_signal);
}
"""
_TRACE_DUMP = """\
    if (splitnic_stop) {        // only with a trace: the handlers are installed then
        splitnic_close("stopped");
        exit(0);
    }
    if (splitnic_done || main_time < splitnic_from) return;
    if (main_time >= splitnic_until) {
        splitnic_close("end of the window");
        return;
    }
    if (!splitnic_tfp) {
        // The first dump after open() is a full one: the file starts with every signal's value.
        splitnic_tfp = new VerilatedFstC;
        splitnic_sim->trace(splitnic_tfp, 99);
        splitnic_tfp->set_time_unit("1ps");
        splitnic_tfp->set_time_resolution("1ps");
        splitnic_tfp->open(splitnic_path);
        fprintf(stderr, "sim: tracing to %s from %llu ps\\n", splitnic_path, (unsigned long long)main_time);
    }
    splitnic_tfp->dump(main_time);
"""


def _window_the_tracer(gw: Path) -> None:
    """Give LiteX's sim_init.cpp the tracer of _TRACE_INIT (file and window from the environment)."""
    path = gw / "sim_init.cpp"
    text = path.read_text()
    for old in ('    litex_sim_tracer_dump();\n', "    litex_sim_init_tracer(sim, 0, -1);\n",
                'extern "C" void litex_sim_dump()\n'):
        if text.count(old) != 1:
            raise RuntimeError(f"LiteX's sim_init.cpp is not as expected (no single {old.strip()!r}); "
                               "the trace window cannot be added")
    text = text.replace('    litex_sim_tracer_dump();\n', _TRACE_DUMP)
    text = text.replace("    litex_sim_init_tracer(sim, 0, -1);\n", "    splitnic_init_tracer(sim);\n")
    text = text.replace('extern "C" void litex_sim_dump()\n', _TRACE_INIT + 'extern "C" void litex_sim_dump()\n')
    path.write_text(text)


def build_sim(out_dir: Path = DEFAULT_DIR, jobs: int = 2) -> Path:
    """Build the simulator into ``out_dir`` unless it is up to date; the path of its gateware folder.

    The firmware is rebuilt (make) whenever its sources changed, also when the
    simulator itself is up to date.  The simulator records an FST when
    :class:`SimSoCProcess` asks it to (``trace``), without a build of its own.
    """
    out_dir = Path(out_dir).resolve()
    gw = out_dir / "gateware"
    stamp = out_dir / "built-from"
    exe = gw / "obj_dir" / "Vsim"
    sources = _sources_hash()   # before building: an edit made meanwhile must not pass for built
    if exe.exists() and stamp.exists() and stamp.read_text() == sources and (gw / _ROM_INIT).exists():
        _refresh_firmware(out_dir, gw)
        return gw
    soc = SimBoardSoC(out_dir)
    builder = Builder(soc, output_dir=str(out_dir), compile_software=False, csr_json=str(out_dir / "csr.json"))
    # LiteX writes the Verilog, the C++ harness and the build script; the compile runs here.
    builder.build(sim_config=_sim_config(), run=False, jobs=jobs, opt_level="O1", interactive=False,
                  trace=True, trace_fst=True)
    _window_the_tracer(gw)
    start = time.monotonic()
    with (gw / "verilator.log").open("w") as out:
        rc = subprocess.call(["bash", "build_sim.sh"], cwd=gw, stdout=out, stderr=subprocess.STDOUT,
                             env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    if rc != 0 or not exe.exists():
        tail = (gw / "verilator.log").read_text(errors="replace").splitlines()[-8:]
        raise RuntimeError(f"building the simulated SoC failed (exit {rc}); see {gw / 'verilator.log'}: "
                           + " | ".join(tail))
    log.info("simulated SoC built in %.0f s", time.monotonic() - start)
    _refresh_firmware(out_dir, gw)
    stamp.write_text(sources)
    return gw


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: the kernel kills it when the process that started it dies."""
    if _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


class SimSoCProcess:
    """The simulated board SoC, running: ``with SimSoCProcess() as soc: ... soc.link ...``.

    The simulator runs in a network namespace of its own, ``netns_path`` (for
    ``nsenter --net=...``, or ``splitnic_lab.netns.inside``, which puts the calling thread
    there: sockets it opens and processes it starts reach the SoC).
    """

    def __init__(self, out_dir: Path = DEFAULT_DIR, wire: str = "loopback", wire_netns: str | None = None,
                 trace: Path | None = None, trace_start: int = 0,
                 trace_cycles: int = DEFAULT_TRACE_CYCLES) -> None:
        """``wire``: the far end of the NIC's cable, one of :data:`WIRES`; with ``"tap"`` and
        ``wire_netns`` (a named namespace, ``ip netns add``), the wire's TAP moves there.
        ``trace``: record ``trace_cycles`` cycles from cycle ``trace_start`` into this FST."""
        if wire not in WIRES:
            raise ValueError(f"wire must be one of {', '.join(WIRES)}, not {wire!r}")
        if wire_netns is not None and wire != "tap":
            raise ValueError("wire_netns needs wire='tap'")
        if trace is not None:
            trace = Path(trace).absolute()
            if trace.suffix != ".fst":
                raise ValueError(f"trace file {trace} must end in .fst (the simulator writes FST)")
            if not trace.parent.is_dir():
                raise ValueError(f"trace directory {trace.parent} does not exist")
            if trace_start < 0 or trace_cycles < 1:
                raise ValueError(f"trace window must start at a cycle >= 0 and last >= 1 cycle, "
                                 f"not {trace_start} and {trace_cycles}")
        self.trace, self.trace_start, self.trace_cycles = trace, trace_start, trace_cycles
        self.out_dir = Path(out_dir)
        self.wire, self.wire_netns = wire, wire_netns
        self.link = f"etherbone:{SOC_IP}"
        self._proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        """Process ID of the simulator (``obj_dir/Vsim``)."""
        if self._proc is None:
            raise RuntimeError("the simulated SoC is not running")
        return self._proc.pid

    @property
    def netns_path(self) -> str:
        """The simulator's network namespace, for ``nsenter --net=PATH`` or setns(2)."""
        return f"/proc/{self.pid}/ns/net"

    def start(self, timeout: float = 60.0) -> "SimSoCProcess":
        """Build if needed, start the simulator in a namespace of its own and wait until its TAP is up."""
        if os.geteuid() != 0:
            raise PermissionError("the simulated SoC's TAP interface needs root (LiteX's ethernet sim module)")
        gw = build_sim(self.out_dir)
        self._log = (gw / "sim.log").open("w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITNIC_SIM_TRACE")}
        if self.trace is not None:
            env.update(SPLITNIC_SIM_TRACE=str(self.trace),
                       SPLITNIC_SIM_TRACE_FROM_PS=str(self.trace_start * _PS_PER_CYCLE),
                       SPLITNIC_SIM_TRACE_UNTIL_PS=str((self.trace_start + self.trace_cycles) * _PS_PER_CYCLE))
        # unshare execs Vsim in place (same PID), so the parent-death signal and the PID are Vsim's.
        self._proc = subprocess.Popen(["unshare", "--net", "obj_dir/Vsim"], cwd=gw, stdout=self._log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                      preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while not self._tap_up():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"the simulated SoC did not bring up {TAP} and {WIRE_TAP}; see {gw / 'sim.log'}")
            time.sleep(0.1)
        if self.wire == "tap":
            self._wire_to_tap()
        log.info("simulated SoC running (pid %d), Etherbone at %s via %s in its namespace %s",
                 self.pid, SOC_IP, TAP, self.netns_path)
        return self

    def _wire_to_tap(self) -> None:
        """Move the wire's TAP to ``wire_netns`` (if given) and switch the NIC's wire to it."""
        ns = ["nsenter", f"--net={self.netns_path}"]
        if self.wire_netns is not None:
            moved = subprocess.run([*ns, "ip", "link", "set", WIRE_TAP, "netns", self.wire_netns],
                                   capture_output=True, text=True)
            if moved.returncode != 0:
                self.close()
                raise RuntimeError(f"could not move {WIRE_TAP} to namespace {self.wire_netns!r}: "
                                   f"{moved.stderr.strip()}")
        # Etherbone, with LiteX's own client (the driver is a layer above this package).
        script = ("import sys; from litex.tools.remote.comm_udp import CommUDP; "
                  "c = CommUDP(sys.argv[1], int(sys.argv[2]), timeout=30.0); c.open(); "
                  "c.write(int(sys.argv[3]), 1); assert c.read(int(sys.argv[3])) == 1; c.close()")
        wrote = subprocess.run([*ns, sys.executable, "-c", script, SOC_IP, str(amap.ETHERBONE_UDP_PORT),
                                str(csr_address("wire_tap", self.out_dir))], capture_output=True, text=True,
                               timeout=120)
        if wrote.returncode != 0:
            self.close()
            tail = (wrote.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"could not switch the simulated SoC's wire to {WIRE_TAP}: {tail}")

    def _tap_up(self) -> bool:
        # LiteX's modules make their TAPs one after the other: the wire's comes after
        # Etherbone's, so both must be there (and each with its address) before either is used.
        probe = subprocess.run(["nsenter", f"--net={self.netns_path}", "ip", "-o", "addr", "show"],
                               capture_output=True, text=True)
        return probe.returncode == 0 and all(
            any(line.split()[1:2] == [dev] and f" {ip}/" in line for line in probe.stdout.splitlines())
            for dev, ip in ((TAP, HOST_IP), (WIRE_TAP, _WIRE_TAP_PLACEHOLDER_IP)))

    def close(self) -> None:
        """Stop the simulator (its TAP interface and namespace go with it)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> "SimSoCProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Build (and with ``--run``, run) the simulated board SoC."""
    parser = argparse.ArgumentParser(prog="python -m splitnic_gateware.targets.sim", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="build directory (default %(default)s)")
    parser.add_argument("--run", action="store_true", help="run it until interrupted (as root)")
    parser.add_argument("--wire", choices=WIRES, default="loopback",
                        help=f"the far end of the NIC's cable: a loopback plug, or the TAP {WIRE_TAP} "
                             "(default %(default)s)")
    parser.add_argument("--wire-netns", default=None, metavar="NAME",
                        help=f"with --wire tap: move {WIRE_TAP} into this namespace (ip netns add NAME first)")
    parser.add_argument("--trace", type=Path, default=None, metavar="FILE.fst",
                        help="with --run: record the SoC into this FST file (open it with gtkwave)")
    parser.add_argument("--trace-start", type=int, default=0, metavar="CYCLE",
                        help="first system clock cycle to record (default %(default)s)")
    parser.add_argument("--trace-cycles", type=int, default=DEFAULT_TRACE_CYCLES, metavar="N",
                        help="record this many cycles, then close the file (default %(default)s: 1 s of the 1 MHz clock)")
    args = parser.parse_args(argv)
    if args.wire_netns and args.wire != "tap":
        parser.error("--wire-netns needs --wire tap")
    if args.trace is not None and not args.run:
        parser.error("--trace needs --run")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if not args.run:
        print(build_sim(args.out))
        return 0
    # SIGTERM ends this process like Ctrl-C, through close(); a SIGKILL'ed owner takes the
    # simulator with it all the same (its parent-death signal).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        soc = SimSoCProcess(args.out, args.wire, args.wire_netns, trace=args.trace, trace_start=args.trace_start,
                            trace_cycles=args.trace_cycles)
    except ValueError as err:
        parser.error(str(err))
    with soc:
        print(f"simulated SoC up (pid {soc.pid}): nsenter --net={soc.netns_path} "
              f"splitnic info --link {soc.link}", flush=True)
        if args.wire == "tap":
            where = f"namespace {args.wire_netns}" if args.wire_netns else f"the SoC's namespace ({soc.netns_path})"
            print(f"the NIC's wire is {WIRE_TAP} in {where}", flush=True)
        if soc.trace is not None:
            print(f"recording cycles {soc.trace_start}..{soc.trace_start + soc.trace_cycles - 1} into {soc.trace} "
                  "(complete once the window has passed or the simulator stops)", flush=True)
        try:
            soc._proc.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
