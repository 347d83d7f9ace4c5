"""The simulated NIC as a process: SimNic starts it, waits until its CSR socket listens, and tears it down.

Ref: docs/simulation.md ("Running it", "The socket protocol").

``python -m splitnic_sim.server`` (what SimNic runs, in its own process
group) writes the Nic's Verilog, builds it if needed and runs the cocotb
module :mod:`splitnic_sim.tb.nic_native_server` in the native harness
(:func:`splitnic_sim.native.run_native`, Verilator) or
:mod:`splitnic_sim.tb.nic_server` with the Python models
(:func:`splitnic_sim.runner.run_cocotb`); parameters travel in SPLITNIC_SIM_*
environment variables.  The cocotb module creates the socket and the
shared-memory file; SimNic removes both when it stops.

``trace=PATH`` records a window of cycles of the NIC into an FST
(:class:`splitnic_sim.native.TraceWindow`; docs/simulation.md, "Waveforms").
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from splitnic.errors import SplitnicError

from .hostmem import DEFAULT_DMA_BASE
from .native import TOPLEVEL as NATIVE_TOPLEVEL
from .native import DEFAULT_TRACE_CYCLES, TraceWindow, traced_build_dir
from .runner import SIM_CACHE, SIMULATORS, build_dir_for
from .wire_tap import parse_wire

__all__ = ["SimNic", "DESIGN", "BUILD_NAME", "NATIVE_BUILD_NAME", "HARNESSES", "DEFAULT_DMA_SIZE",
           "DEFAULT_TRACE_CYCLES"]

log = logging.getLogger(__name__)

#: Verilog module name of the simulated NIC, and the name of its build tree under .cache/sim.
DESIGN = "snic_nic"
BUILD_NAME = "nic_server"
#: Build tree of the native harness (splitnic_sim.native): Verilator only.
NATIVE_BUILD_NAME = "nic_native"
#: Who does the per-cycle work: "native" (C through DPI-C, Verilator) or "python" (cocotb models).
HARNESSES = ("native", "python")
_LOG_DIR = SIM_CACHE / "logs"
#: DMA memory of a simulated NIC: room for every queue at the driver's default ring sizes
#: (a queue pair takes about 1 MiB: 256 buffers of 2 KiB each way).  The shared-memory file
#: is sparse, so untouched memory costs nothing.
DEFAULT_DMA_SIZE = 16 << 20
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _socket_in_use(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
    return True


class SimNic:
    """The simulated NIC in a child process; use as a context manager, or start() and stop().

    ``harness`` picks who does the per-cycle work: ``"native"`` (the default on
    Verilator: C through DPI-C, :mod:`splitnic_sim.native`) or ``"python"`` (cocotb
    models, the only choice on Icarus); SPLITNIC_SIM_HARNESS sets the default.
    ``trace`` (native harness) records ``trace_cycles`` cycles from cycle ``trace_start``
    into that FST file; the traced simulator is a build of its own.
    """

    def __init__(self, *, socket_path: Path | None = None, simulator: str = "verilator",
                 wire: str = "none", dma_size: int = DEFAULT_DMA_SIZE, build_id: int = 0,
                 stall_prob: float = 0.0, seed: int = 1, harness: str | None = None,
                 trace: Path | None = None, trace_start: int = 0,
                 trace_cycles: int = DEFAULT_TRACE_CYCLES) -> None:
        if simulator not in SIMULATORS:
            raise SplitnicError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
        if harness is None:
            harness = os.environ.get("SPLITNIC_SIM_HARNESS") or ("native" if simulator == "verilator" else "python")
        if harness not in HARNESSES:
            raise SplitnicError(f"harness must be one of {', '.join(HARNESSES)}, not {harness!r}")
        if harness == "native" and simulator != "verilator":
            raise SplitnicError(f"the native harness runs on Verilator only, not {simulator}; use harness='python'")
        self.harness = harness
        if dma_size <= 0 or dma_size % 4096:
            raise SplitnicError(f"dma_size must be a positive multiple of 4096, not {dma_size!r}")
        self.trace: TraceWindow | None = None
        if trace is not None:
            if harness != "native":
                raise SplitnicError(f"--trace records the native harness (Verilator), not the {harness} harness "
                                    f"on {simulator}; run the test under WAVES=1 instead")
            trace = Path(trace).absolute()
            if trace.suffix != ".fst":
                raise SplitnicError(f"trace file {trace} must end in .fst (the simulator writes FST)")
            if not trace.parent.is_dir():
                raise SplitnicError(f"trace directory {trace.parent} does not exist; create it or pick another")
            try:
                self.trace = TraceWindow(trace, trace_start, trace_cycles)
            except ValueError as err:
                raise SplitnicError(str(err)) from None
        self._tap = parse_wire(wire)
        self.simulator = simulator
        self.wire = wire
        self.dma_size = dma_size
        self.build_id = build_id
        self.stall_prob = stall_prob
        self.seed = seed
        self._tmpdir: Path | None = None
        if socket_path is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="splitnic-sim-"))
            socket_path = self._tmpdir / "csr.sock"
        self.socket_path = Path(socket_path).absolute()
        tag = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.shm_path = Path("/dev/shm") / f"splitnic-sim-{tag}"
        self.log_path = _LOG_DIR / f"server-{tag}.log"
        self._status_path = _LOG_DIR / f"server-{tag}.status"
        self._proc: subprocess.Popen | None = None

    @property
    def link(self) -> str:
        """Link spec for the driver: ``sim:/path/to/socket``."""
        return f"sim:{self.socket_path}"

    @property
    def build_dir(self) -> Path:
        if self.harness != "native":
            return build_dir_for(BUILD_NAME, self.simulator)
        native = build_dir_for(NATIVE_BUILD_NAME, self.simulator)
        return native if self.trace is None else traced_build_dir(native)

    @property
    def _binary(self) -> Path:
        return self.build_dir / (NATIVE_TOPLEVEL if self.harness == "native" else DESIGN)

    def _check_free(self) -> None:
        path = self.socket_path
        if not path.parent.is_dir():
            raise SplitnicError(f"socket directory {path.parent} does not exist; create it or pick another --socket")
        if len(str(path).encode()) > 107:
            raise SplitnicError(f"socket path {path} is longer than 107 bytes (a Unix socket limit); pick a shorter one")
        if not path.exists() and not path.is_symlink():
            return
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise SplitnicError(f"socket path {path} is taken by a file that is not a socket; remove it or pick another")
        if _socket_in_use(path):
            raise SplitnicError(f"socket path {path} is taken: another simulator listens there; stop it or pick another")
        log.info("removing stale socket %s", path)
        path.unlink()

    def start(self, timeout: float = 600) -> "SimNic":
        """Start the simulator (building the NIC first if needed) and wait until its socket listens."""
        if self._proc is not None:
            raise RuntimeError("SimNic already started")
        self._check_free()
        if self._tap is not None and not os.path.exists("/dev/net/tun"):
            raise SplitnicError("no /dev/net/tun for the TAP wire: load the tun module (modprobe tun)")
        _LOG_DIR.mkdir(parents=True, exist_ok=True)
        self._status_path.unlink(missing_ok=True)
        if not self._binary.exists():
            log.warning("building the simulated NIC (first time takes a minute)... log: %s", self.log_path)
        else:
            log.info("starting the simulated NIC (%s); log: %s", self.simulator, self.log_path)
        env = dict(os.environ)
        env.update({
            "SPLITNIC_SIM_SOCKET": str(self.socket_path), "SPLITNIC_SIM_SHM": str(self.shm_path),
            "SPLITNIC_SIM_DMA_BASE": hex(DEFAULT_DMA_BASE), "SPLITNIC_SIM_DMA_SIZE": str(self.dma_size),
            "SPLITNIC_SIM_STATUS": str(self._status_path), "SPLITNIC_SIM_WIRE": self.wire,
            "SPLITNIC_SIM_STALL": repr(self.stall_prob), "SPLITNIC_SIM_SEED": str(self.seed),
            "SPLITNIC_SIM_SIMULATOR": self.simulator, "SPLITNIC_SIM_DESIGN": DESIGN,
            "SPLITNIC_SIM_BUILD_ID": str(self.build_id), "SPLITNIC_SIM_HARNESS": self.harness,
            # The simulator stops when this process is gone, however it died.
            "SPLITNIC_SIM_OWNER": str(os.getpid()),
        })
        # Tracing is --trace's alone: a WAVES=1 left in the shell would build a traced simulator.
        env.pop("WAVES", None)
        if self.trace is not None:
            env.update({"SPLITNIC_SIM_TRACE": str(self.trace.path), "SPLITNIC_SIM_TRACE_START": str(self.trace.start),
                        "SPLITNIC_SIM_TRACE_CYCLES": str(self.trace.cycles)})
        with open(self.log_path, "wb") as logf:
            # Own process group: stop() signals the server and the simulator it runs together.
            self._proc = subprocess.Popen([sys.executable, "-m", "splitnic_sim.server"], env=env,
                                          stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                          start_new_session=True, cwd=_REPO_ROOT)
        try:
            self._wait_listening(timeout)
        except BaseException:
            self.stop()
            raise
        log.info("simulated NIC ready: %s", self.link)
        return self

    def _status(self) -> str:
        try:
            return self._status_path.read_text().strip()
        except FileNotFoundError:
            return ""

    def _wait_listening(self, timeout: float) -> None:
        start = time.monotonic()
        next_note = start + 20
        while True:
            status = self._status()
            if status == "ready" and self.socket_path.exists():
                return
            code = self._proc.poll()
            if code is not None or status.startswith("error:"):
                raise SplitnicError(self._failure(code, status))
            now = time.monotonic()
            if now - start > timeout:
                raise SplitnicError(f"simulated NIC not listening after {timeout:.0f} s; see {self.log_path}")
            if now > next_note:
                log.warning("still building/starting the simulated NIC (%.0f s)...", now - start)
                next_note = now + 20
            time.sleep(0.05)

    def _failure(self, code: int | None, status: str) -> str:
        if status.startswith("error:"):
            return f"simulated NIC failed to start: {status[6:].strip()} (log: {self.log_path})"
        build_log = self.build_dir / "build.log"
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        if "Error" in text and ("build" in text.lower() or "verilator" in text.lower()) \
                and not self._binary.exists():
            return f"building the simulated NIC failed; see {build_log} and {self.log_path}"
        return (f"simulator exited (status {code}) before listening; see {self.log_path} "
                f"and {self.build_dir / 'test.log'}")

    def stop(self) -> None:
        """Stop the simulator (SIGTERM, then SIGKILL after 15 s) and remove its socket and shared memory."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                log.warning("simulated NIC did not stop on SIGTERM; killing it")
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        if proc is not None:
            # The simulator may outlive the server process for a moment; the group goes with it.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.killpg(proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if proc is not None or self._tmpdir is not None:
            self.socket_path.unlink(missing_ok=True)
        self.shm_path.unlink(missing_ok=True)
        self._status_path.unlink(missing_ok=True)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> "SimNic":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve() -> int:
    """Body of the server process: build the NIC's Verilog and run the cocotb service on it."""
    from splitnic_gateware.nic import Nic
    from splitnic_gateware.verilog import write_verilog

    from .runner import run_cocotb

    simulator = os.environ.get("SPLITNIC_SIM_SIMULATOR", "verilator")
    build_id = int(os.environ.get("SPLITNIC_SIM_BUILD_ID", "0"), 0)
    native = os.environ.get("SPLITNIC_SIM_HARNESS", "python") == "native"
    build_dir = build_dir_for(NATIVE_BUILD_NAME if native else BUILD_NAME, simulator)
    trace = None
    if os.environ.get("SPLITNIC_SIM_TRACE"):
        trace = TraceWindow(Path(os.environ["SPLITNIC_SIM_TRACE"]), int(os.environ["SPLITNIC_SIM_TRACE_START"]),
                            int(os.environ["SPLITNIC_SIM_TRACE_CYCLES"]))
    # SIGTERM goes to the whole group: the simulator stops itself; this process waits for it.
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    log.info("writing %s Verilog and building it with %s in %s%s", DESIGN, simulator, build_dir,
             "" if trace is None else f" (traced: {trace})")
    src = write_verilog(Nic(build_id=build_id), DESIGN, build_dir)
    t0 = time.monotonic()
    if native:
        from .native import run_native
        result = run_native(nic_verilog=src, build_dir=build_dir, test_module="splitnic_sim.tb.nic_native_server",
                            trace=trace, waves=False)
    else:
        result = run_cocotb(name=BUILD_NAME, sources=[src], toplevel=DESIGN,
                            test_module="splitnic_sim.tb.nic_server", simulator=simulator, waves=False)
    log.info("simulator exited after %.1f s: %s", time.monotonic() - t0, result)
    if result.failed:
        print("\n".join(result.failures), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description="Run the simulated NIC service (started by SimNic; parameters in "
                                        "SPLITNIC_SIM_* environment variables).").parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return _serve()


if __name__ == "__main__":
    sys.exit(main())
