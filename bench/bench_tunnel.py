"""The kernel path's figures: the C pump alone, the whole TAP path against a bare C bridge, idle cost, latency.

Ref: hostdrv/splitnic/tunnel_pump.py and _hotpath.c (snic_pump_*), hostdrv/splitnic/kernel_path.py (the
event loop), sim/splitnic_sim/softnic.c (the NIC); C helpers in bench/c/, built here.

* ``pump.mpps_64B.{k2n,n2k}``: the tunnel's user-space half alone on one core: the stub's rings in
  plain memory with a C stand-in for the kernel (bench/c/kernel_standin.c) producing k2u and
  consuming u2k as fast as it can, the software NIC's queue 0 in loopback; frames per second
  each way at 64 B (60 bytes without FCS).  The model and the stand-in have threads of their
  own: three busy threads share the machine's cores.
* ``host.tap.{64B,1500B}``: the whole kernel path with the TAP backend: a C sender
  (bench/c/udp_flood.c, sendmmsg) in namespace H sends through the driver's interface, the
  driver (``splitnic up``) moves each frame to the software NIC (a process), whose wire is a
  TAP in namespace P; and the other way round.  Frames counted by the receiving interface's
  kernel counters.  ``pps`` is the lower of the two directions.
* ``host.tap_reference.*``: the same sender and counters through bench/c/tap_bridge.c, a bare
  loop between two TAPs: the same kernel crossings with no driver.
  ``host.tap_over_reference.*`` = driver / reference.  The driver's path has one runnable
  process more (the software NIC): on a machine short of CPU that alone lowers the ratio, so
  each direction also reports the mover's CPU time per frame (``cpu_us_per_frame``) and the
  software NIC's (``nic_cpu_us_per_frame``: CPU a hardware NIC would not take), and
  ``host.reference_cpu_over_driver_cpu.*`` compares the driver's CPU per frame with the bridge's.
* ``idle.{sim,mmio,packet}``: ``splitnic up`` with no traffic, 10 s: CPU % and wake-ups a second
  (/proc/PID/stat utime+stime, /proc/PID/status context switches).
* ``latency_us.{idle,loaded}``: ping through the driver's interface to P, idle and beside a
  64 B flood: median and 99th percentile round trip; ``latency_us.reference``: the same
  through the bare bridge.
* ``guest_tcg.{stub,tap}``: the whole path of ``host.tap`` inside one QEMU guest (TCG), once
  with ``splitnic up --kernel stub`` (the module's snic0) and once with the TAP backend;
  ``guest_stub_over_tap.*`` = stub / TAP.

``make bench BENCH=tunnel`` runs it; ``python bench/bench_tunnel.py --inner`` is what the guest runs.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from splitnic.tunnel import parse_mac  # noqa: E402
from splitnic_lab.netns import sh, unique  # noqa: E402
from splitnic_sim.softnic import DEFAULT_IDLE_SPINS  # noqa: E402

C_DIR = Path(__file__).resolve().parent / "c"
BUILD = REPO_ROOT / ".cache" / "bench"
PYTHON = Path(sys.executable)
SPLITNIC = PYTHON.parent / "splitnic"
H_IP, P_IP = "198.18.0.1", "198.18.0.2"
NIC_MAC = "02:00:5e:00:53:01"
PEER_MAC = "02:00:5e:00:53:02"
FRAME_SIZES = (64, 1500)
#: The software NIC's idle passes before it sleeps (fewer than its default): it stands for
#: hardware, which takes no host CPU, and here shares 2 cores with the sender and the driver.
NIC_IDLE_SPINS = 20
#: Ethernet + IPv4 + UDP headers; a 64 B frame (FCS included) carries 18 bytes of payload.
HEADERS = 14 + 20 + 8


# ----------------------------------------------------------------------------- helpers

def _build() -> dict[str, Path]:
    """Compile the C helpers (when their source changed); returns name -> path."""
    BUILD.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, shared in (("udp_flood", False), ("tap_bridge", False), ("kernel_standin", True)):
        src = C_DIR / f"{name}.c"
        dst = BUILD / (f"lib{name}.so" if shared else name)
        if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime:
            cmd = ["cc", "-O2", "-Wall", "-o", str(dst), str(src)] + (["-shared", "-fPIC"] if shared else [])
            subprocess.run(cmd, check=True)
        out[name] = dst
    return out


def _netns() -> str:
    ns = unique("bt")
    sh("ip", "netns", "add", ns)
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    return ns


def _rx_packets(ns: str, ifname: str) -> int:
    out = sh("ip", "-n", ns, "-s", "-j", "link", "show", ifname).stdout
    return json.loads(out)[0]["stats64"]["rx"]["packets"]


def _address(ns: str, ifname: str, ip: str, peer_ip: str, peer_mac: str, mac: str | None = None) -> None:
    if mac:
        sh("ip", "-n", ns, "link", "set", ifname, "address", mac)
    sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", ifname)
    sh("ip", "-n", ns, "link", "set", ifname, "up")
    sh("ip", "-n", ns, "neigh", "replace", peer_ip, "lladdr", peer_mac, "nud", "permanent", "dev", ifname)


def _flood(tools: dict, ns: str, src: str, dst: str, frame: int, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", ns, str(tools["udp_flood"]), src, dst, "9",
                             str(frame - HEADERS - 4), str(seconds)], stdout=subprocess.PIPE, text=True)


def _one_way(tools: dict, tx_ns: str, src: str, dst: str, rx_ns: str, rx_if: str, frame: int,
             seconds: float, mover: int, nic: int | None = None) -> dict:
    """Frames/s a sender in tx_ns gets through to rx_if in rx_ns (its kernel counter), and the CPU
    time the process ``mover`` (the driver, or the bare bridge) spent per frame meanwhile; with
    ``nic``, also that of the software NIC's process (CPU a hardware NIC would not take)."""
    before = _rx_packets(rx_ns, rx_if)
    cpu0, _ = _proc_sample(mover)
    nic0 = _proc_sample(nic)[0] if nic else 0.0
    start = time.monotonic()
    sender = _flood(tools, tx_ns, src, dst, frame, seconds)
    offered = int(sender.communicate(timeout=seconds + 30)[0].strip() or 0)
    elapsed = time.monotonic() - start
    time.sleep(0.2)   # what is in flight lands
    got = _rx_packets(rx_ns, rx_if) - before
    cpu1, _ = _proc_sample(mover)
    out = {"offered": offered, "delivered": got, "pps": round(got / elapsed),
           "cpu_us_per_frame": round((cpu1 - cpu0) * 1e6 / max(got, 1), 2)}
    if nic:
        out["nic_cpu_us_per_frame"] = round((_proc_sample(nic)[0] - nic0) * 1e6 / max(got, 1), 2)
    return out


def _wait_line(proc: subprocess.Popen, prefix: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(prefix):
            return line.strip()
    proc.kill()
    raise RuntimeError(f"no {prefix!r} line:\n" + "".join(lines) + (proc.communicate()[0] or ""))


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=30)[0] or ""
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0] or ""


class _SoftNicProcess:
    """The software NIC as a process (mmio file), optionally with a TAP as its wire, MAC NIC_MAC, link up."""

    def __init__(self, wire: str = "none", idle_sleep_us: int = 50, idle_spins: int = DEFAULT_IDLE_SPINS) -> None:
        self.path = Path(tempfile.mktemp(prefix="splitnic-bench-", dir="/dev/shm"))
        self.proc = subprocess.Popen([str(PYTHON), "-m", "splitnic_sim.softnic", str(self.path), "--link-up",
                                      "--wire", wire, "--idle-sleep-us", str(idle_sleep_us),
                                      "--idle-spins", str(idle_spins)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _wait_line(self.proc, "softnic ready")
        self._set_mac()
        self.link = f"mmio:{self.path}"

    def _set_mac(self) -> None:
        import mmap
        import struct
        from splitnic_spec import CSR_MAP
        mac = parse_mac(NIC_MAC)
        with open(self.path, "r+b") as f, mmap.mmap(f.fileno(), CSR_MAP.size) as mm:
            struct.pack_into("<I", mm, CSR_MAP.register("MAC_ADDR_LO").offset, int.from_bytes(mac[:4], "little"))
            struct.pack_into("<I", mm, CSR_MAP.register("MAC_ADDR_HI").offset, int.from_bytes(mac[4:], "little"))

    def close(self) -> None:
        _stop(self.proc)
        self.path.unlink(missing_ok=True)


def _up(ns: str, link: str, name: str, *extra: str, kernel: str = "tap") -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, str(SPLITNIC), "up", "--link", link, "--kernel", kernel,
                             "--name", name, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_line(proc, f"{name} up:")
    return proc


# ----------------------------------------------------------------------------- the pump alone

class _Standin(ctypes.Structure):
    _fields_ = [("area", ctypes.c_void_p)] + [(n, ctypes.c_uint32) for n in (
        "k2u_prod", "k2u_cons", "u2k_prod", "u2k_cons", "k2u_desc", "k2u_data", "u2k_desc", "u2k_data",
        "k2u_log2", "u2k_log2", "slot_size", "frame_len")] + [
        ("frame", ctypes.c_char_p), ("stop", ctypes.POINTER(ctypes.c_int32)),
        ("produced", ctypes.c_uint64), ("consumed", ctypes.c_uint64)]


def bench_pump(tools: dict, seconds: float = 3.0) -> dict:
    """Frames per second of pump time each way through the C pump, the kernel played by kernel_standin.c.

    The stand-in, the pump and the model take turns in this one thread, and only the time
    spent in ``TunnelPump.step`` counts: the figure is what one core running the pump alone
    would move, not what three busy threads get of a shared machine.
    """
    import splitnic
    from splitnic.kernel_path import nic_uplink
    from splitnic.tunnel_pump import TunnelPump
    from splitnic.tunnel_stub import StubTunnel
    from splitnic_sim.softnic import SoftNic
    from splitnic_spec import tunnel as tspec
    model = SoftNic(idle_sleep_us=0, wire_slots=0)
    # Not started: its passes run in this thread (softnic_step), between the pump's.
    helper = threading.Thread(target=_model_until_ready, args=(model,), daemon=True)
    helper.start()
    nic = splitnic.open(model.link)
    stub = StubTunnel.in_memory(k2u_log2=10, u2k_log2=10)
    try:
        nic.reset()
        uplink = nic_uplink(nic, owns_nic=True)
        nic.set_loopback(True)
        model.s.stop = 1
        helper.join()
        pump = TunnelPump(uplink.port, stub, burst=64)
        assert pump.in_c
        lib = ctypes.CDLL(str(tools["kernel_standin"]))
        area = ctypes.c_char.from_buffer(stub.area)
        stop = ctypes.c_int32(0)
        frame = nic.mac + bytes.fromhex("02005e005399") + b"\x88\xb5" + bytes(46)
        r = stub.rings
        s = _Standin(ctypes.addressof(area), *(tspec.constant(c) for c in (
            "CTRL_K2U_PROD", "CTRL_K2U_CONS", "CTRL_U2K_PROD", "CTRL_U2K_CONS")),
            r["k2u_desc"], r["k2u_data"], r["u2k_desc"], r["u2k_data"], 10, 10, stub.slot_size, len(frame),
            frame, ctypes.pointer(stop), 0, 0)
        standin, ref = lib.standin_step, ctypes.byref(s)
        model_step, step, clock = model.lib.softnic_step, pump.step, time.perf_counter
        in_pump = 0.0
        k0, n0 = pump.stats.to_port, pump.stats.to_kernel
        wall = clock()
        while clock() - wall < seconds:
            for _ in range(256):
                standin(ref)
                t = clock()
                step()
                in_pump += clock() - t
                model_step(model.s)
                model_step(model.s)
        k2n, n2k = pump.stats.to_port - k0, pump.stats.to_kernel - n0
        del area
    finally:
        stub.close()
        nic.close()
        model.close()
    return {"k2n": round(k2n / in_pump / 1e6, 3), "n2k": round(n2k / in_pump / 1e6, 3),
            "unit": "million 64 B frames (60 B without FCS) per second of time in TunnelPump.step",
            "pump_seconds": round(in_pump, 2), "frames_each_way": [k2n, n2k]}


def _model_until_ready(model) -> None:
    # The model answers the set-up's strobes (reset, queue resets) until told to stop.
    model.lib.softnic_run(model.s)


# ----------------------------------------------------------------------------- the whole TAP path

def bench_driver_path(tools: dict, kernel: str = "tap", seconds: float = 3.0) -> dict:
    """The whole kernel path through ``splitnic up --kernel KERNEL`` and the software NIC with a TAP wire.

    H -- sb0 (the driver's interface: a TAP, or snic0 of the stub module) -- driver -- software
    NIC -- wire TAP -- P; a C sender each way, the receiving interface's kernel counter.
    """
    results: dict = {}
    h, p = _netns(), _netns()
    wire = unique("bw")
    name = "sb0" if kernel == "tap" else "snic0"
    nic = up = None
    try:
        nic = _SoftNicProcess(wire=f"tap:{wire}", idle_spins=NIC_IDLE_SPINS)
        sh("ip", "link", "set", wire, "netns", p)
        up = _up(h, nic.link, name, kernel=kernel)
        _address(h, name, H_IP, P_IP, PEER_MAC)
        _address(p, wire, P_IP, H_IP, NIC_MAC, mac=PEER_MAC)
        time.sleep(0.5)
        for frame in FRAME_SIZES:
            k2n = _one_way(tools, h, H_IP, P_IP, p, wire, frame, seconds, up.pid, nic.proc.pid)
            n2k = _one_way(tools, p, P_IP, H_IP, h, name, frame, seconds, up.pid, nic.proc.pid)
            results[f"{frame}B"] = {"pps": min(k2n["pps"], n2k["pps"]), "k2n": k2n, "n2k": n2k}
        results["up_exit"] = _stop(up).strip().splitlines()[-1:]
        up = None
    finally:
        if up is not None:
            _stop(up)
        if nic is not None:
            nic.close()
        sh("ip", "netns", "del", h, check=False)
        sh("ip", "netns", "del", p, check=False)
    return results


def bench_host_tap(tools: dict, seconds: float = 3.0) -> dict:
    """Driver (splitnic up + software NIC with a TAP wire) against the bare TAP bridge, same sender and counters."""
    results: dict = {"tap": bench_driver_path(tools, "tap", seconds), "tap_reference": {}}
    # The reference: H2 -- rA -- tap_bridge -- rB -- P2.
    h, p = _netns(), _netns()
    a, b = unique("ra"), unique("rb")
    bridge = subprocess.Popen([str(tools["tap_bridge"]), a, b], stdout=subprocess.PIPE, text=True)
    try:
        _wait_line(bridge, "ready")
        sh("ip", "link", "set", a, "netns", h)
        sh("ip", "link", "set", b, "netns", p)
        _address(h, a, H_IP, P_IP, PEER_MAC, mac=NIC_MAC)
        _address(p, b, P_IP, H_IP, NIC_MAC, mac=PEER_MAC)
        time.sleep(0.5)
        for frame in FRAME_SIZES:
            k2n = _one_way(tools, h, H_IP, P_IP, p, b, frame, seconds, bridge.pid)
            n2k = _one_way(tools, p, P_IP, H_IP, h, a, frame, seconds, bridge.pid)
            results["tap_reference"][f"{frame}B"] = {"pps": min(k2n["pps"], n2k["pps"]), "k2n": k2n, "n2k": n2k}
    finally:
        _stop(bridge)
        sh("ip", "netns", "del", h, check=False)
        sh("ip", "netns", "del", p, check=False)
    results["tap_over_reference"] = {
        f"{f}B": round(results["tap"][f"{f}B"]["pps"] / max(results["tap_reference"][f"{f}B"]["pps"], 1), 2)
        for f in FRAME_SIZES}
    # What the rates hide on a machine short of cores: the driver's own CPU per frame against the
    # bridge's (above 1: the driver spends less), the worse of the two directions.
    results["reference_cpu_over_driver_cpu"] = {
        f"{f}B": round(min(results["tap_reference"][f"{f}B"][d]["cpu_us_per_frame"]
                           / max(results["tap"][f"{f}B"][d]["cpu_us_per_frame"], 0.01) for d in ("k2n", "n2k")), 2)
        for f in FRAME_SIZES}
    results["unit"] = ("frames/s delivered (receiving interface's rx_packets), the lower of the two directions; "
                       "cpu_us_per_frame: CPU time of the driver (splitnic up) or of the bare bridge per frame "
                       "delivered, which a machine short of CPU does not distort as much as the rates")
    return results


# ----------------------------------------------------------------------------- latency

def _ping_rtts(ns: str, count: int, interval: float) -> list[float]:
    out = sh("ping", "-n", "-c", str(count), "-i", str(interval), "-W", "1", P_IP, netns=ns, check=False,
             timeout=count * interval + 60).stdout
    return [float(m) * 1000 for m in re.findall(r"time=([\d.]+) ms", out)]


def _summary(rtts: list[float]) -> dict:
    if not rtts:
        return {"median": None, "p99": None, "replies": 0}
    rtts = sorted(rtts)
    return {"median": round(statistics.median(rtts), 1), "p99": round(rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))], 1),
            "replies": len(rtts)}


def _idle_and_loaded(tools: dict, h: str, count: int) -> dict:
    idle = _summary(_ping_rtts(h, count, 0.01))
    flood = _flood(tools, h, H_IP, P_IP, 64, count * 0.01 + 3)
    time.sleep(0.5)
    loaded = _summary(_ping_rtts(h, count, 0.01))
    flood.communicate(timeout=60)
    return {"idle": idle, "loaded": loaded}


def bench_latency(tools: dict, count: int = 300, model_sleep_us: int = 50) -> dict:
    """Ping through the driver's interface to the NIC's wire, idle and beside a 64 B flood; the same
    through the bare bridge of two TAPs."""
    h, p = _netns(), _netns()
    wire = unique("bl")
    nic = up = None
    try:
        nic = _SoftNicProcess(wire=f"tap:{wire}", idle_sleep_us=model_sleep_us)
        sh("ip", "link", "set", wire, "netns", p)
        up = _up(h, nic.link, "sl0")
        _address(h, "sl0", H_IP, P_IP, PEER_MAC)
        _address(p, wire, P_IP, H_IP, NIC_MAC, mac=PEER_MAC)
        time.sleep(0.5)
        out = _idle_and_loaded(tools, h, count)
    finally:
        if up is not None:
            _stop(up)
        if nic is not None:
            nic.close()
        sh("ip", "netns", "del", h, check=False)
        sh("ip", "netns", "del", p, check=False)
    h, p = _netns(), _netns()
    a, b = unique("la"), unique("lb")
    bridge = subprocess.Popen([str(tools["tap_bridge"]), a, b], stdout=subprocess.PIPE, text=True)
    try:
        _wait_line(bridge, "ready")
        sh("ip", "link", "set", a, "netns", h)
        sh("ip", "link", "set", b, "netns", p)
        _address(h, a, H_IP, P_IP, PEER_MAC, mac=NIC_MAC)
        _address(p, b, P_IP, H_IP, NIC_MAC, mac=PEER_MAC)
        time.sleep(0.5)
        out["reference"] = _idle_and_loaded(tools, h, count)
    finally:
        _stop(bridge)
        sh("ip", "netns", "del", h, check=False)
        sh("ip", "netns", "del", p, check=False)
    out["unit"] = ("µs round trip, ping -i 0.01 through the TAP tunnel, the driver and the software NIC (a "
                   "process that sleeps 50 µs when idle); reference: through the bare bridge of two TAPs. "
                   "Loaded: beside a 64 B flood in the same direction (the interface's queue fills)")
    return out


# ----------------------------------------------------------------------------- idle

def _proc_sample(pid: int) -> tuple[float, int]:
    """(CPU seconds, context switches) of a process, all its threads.

    CPU time from each task's schedstat (nanoseconds on a CPU), finer than stat's utime+stime
    (clock ticks of 10 ms); the two agree to within a tick.
    """
    cpu = 0.0
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        cpu += int((task / "schedstat").read_text().split()[0]) / 1e9
        for line in (task / "status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                switches += int(line.split()[1])
    return cpu, switches


def _idle_of(proc: subprocess.Popen, seconds: float) -> dict:
    time.sleep(3.0)   # settle: addresses, IPv6 off, the first link check
    cpu0, sw0 = _proc_sample(proc.pid)
    time.sleep(seconds)
    cpu1, sw1 = _proc_sample(proc.pid)
    syscall = Path(f"/proc/{proc.pid}/syscall").read_text().split()[0]
    return {"cpu_percent": round(100 * (cpu1 - cpu0) / seconds, 3), "wakeups_per_s": round((sw1 - sw0) / seconds, 1),
            "sleeping_in_syscall": int(syscall) if syscall.isdigit() else syscall}


def bench_idle(seconds: float = 10.0) -> dict:
    """CPU and wake-ups of an idle ``splitnic up`` on the mmio, sim and packet links."""
    out = {}
    ns = _netns()
    try:
        nic = _SoftNicProcess()
        try:
            up = _up(ns, nic.link, "si0")
            try:
                out["mmio"] = _idle_of(up, seconds)
            finally:
                _stop(up)
        finally:
            nic.close()
        from splitnic_sim.server import SimNic
        with SimNic() as sim:
            up = _up(ns, sim.link, "si1")
            try:
                out["sim"] = _idle_of(up, seconds)
            finally:
                _stop(up)
        sh("ip", "-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "vb")
        sh("ip", "-n", ns, "link", "set", "va", "up")
        sh("ip", "-n", ns, "link", "set", "vb", "up")
        up = _up(ns, "packet:va", "si2")
        try:
            out["packet"] = _idle_of(up, seconds)
        finally:
            _stop(up)
    finally:
        sh("ip", "netns", "del", ns, check=False)
    out["unit"] = (f"splitnic up with no traffic over {seconds:.0f} s: % of one core (schedstat), context "
                   "switches per second (status), the system call it sleeps in (232: epoll_wait)")
    return out


# ----------------------------------------------------------------------------- the guest (stub vs TAP)

def _inner(kinds: list[str], seconds: float) -> dict:
    tools = _build()
    return {kind: bench_driver_path(tools, kind, seconds) for kind in kinds}


def bench_guest() -> dict:
    """The whole kernel path with the stub module against the TAP backend inside one QEMU guest (TCG).

    The same path and counters as ``host.tap`` (bench_driver_path), once with ``--kernel stub``:
    the ratio carries over, the absolute figures (under emulation) do not."""
    from tests.vm import guest
    _build()     # the guest sees the checkout read-only: the C helpers are built here
    ver = guest.kernel_version()
    guest.build_module(ver, extra=())
    run_ = guest.run_in_guest(
        f"insmod build/kmod/{ver}/splitnic.ko\nmodprobe tun\n"
        ".venv/bin/python bench/bench_tunnel.py --inner stub tap --seconds 3 > $SPLITNIC_SHARE/bench.json",
        name="bench-tunnel", timeout=400)
    bench_file = run_.share / "bench.json"
    if run_.returncode != 0 or not bench_file.exists():
        raise RuntimeError(f"guest benchmark failed ({run_.returncode}):\n{run_.output[-2000:]}")
    out = {"guest_tcg": json.loads(bench_file.read_text()), "guest_console_problems": run_.problems()}
    stub, tap = out["guest_tcg"]["stub"], out["guest_tcg"]["tap"]
    out["guest_stub_over_tap"] = {f"{f}B": round(stub[f"{f}B"]["pps"] / max(tap[f"{f}B"]["pps"], 1), 2)
                                  for f in FRAME_SIZES}
    return out


# ----------------------------------------------------------------------------- all of it

def run() -> dict:
    """The figures for ``make bench BENCH=tunnel``."""
    tools = _build()
    results: dict = {"pump": {"mpps_64B": bench_pump(tools)}}
    host = bench_host_tap(tools)
    results["host"] = host
    results["latency_us"] = bench_latency(tools)
    results["idle"] = bench_idle()
    if os.environ.get("BENCH_TUNNEL_GUEST", "1") != "0":
        try:
            results.update(bench_guest())
        except Exception as err:   # the guest is the slowest, most fragile part: keep the host figures
            results["guest_error"] = str(err)[-500:]
    results["note"] = ("2 cores shared by every process (the model, the driver, the sender, other work on the "
                       "machine): figures are ratios within one run; guest figures are under TCG emulation")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inner", nargs="+", metavar="KIND", help="measure these backends here, print JSON")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--only", choices=("pump", "host", "latency", "idle", "guest"),
                        help="one part only (development)")
    args = parser.parse_args(argv)
    if args.inner:
        print(json.dumps(_inner(args.inner, args.seconds), indent=2))
        return 0
    if args.only:
        tools = _build()
        part = {"pump": lambda: bench_pump(tools), "host": lambda: bench_host_tap(tools),
                "latency": lambda: bench_latency(tools), "idle": bench_idle, "guest": bench_guest}[args.only]()
        print(json.dumps(part, indent=2))
        return 0
    print(json.dumps(run(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
