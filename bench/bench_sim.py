"""Simulator speed: the native harness against a bare Verilator loop, idle cost, TCP through the RTL NIC, the board SoC.

Run: ``make bench BENCH=sim`` (writes bench/sim.json); needs root (namespaces, TAP).
The harness is sim/splitnic_sim/native/ (docs/simulation.md, "The native harness").

1. ``bare_verilator_cycles_per_s`` / ``cocotb_cycles_per_s``: the same
   snic_nic netlist in the same harness (GMII wire, DMA memory, CSR queue in
   C), with line-rate traffic both ways (frames back to back towards the NIC,
   RX queue 0 and TX queue 0 kept full by a driver that polls every 2048
   cycles): once in a plain Verilator main loop with the driver in C
   (``bare_main.cpp``), once under cocotb with the driver in Python
   (``splitnic_sim.tb.nic_native_speed``).  ROUNDS runs each, alternating,
   medians; ``cocotb_over_bare`` is their ratio.  1518-byte frames; the
   64-byte figures are in ``by_frame_size``.
2. ``idle_cpu_percent``: CPU time of the whole ``SimNic`` process group (the
   server and the simulator) over IDLE_SECONDS of wall time with a client
   connected but silent, as a percentage of one core.
3. ``iperf3_tcp_mbit_s`` and ``ping_rtt_ms``: a kernel peer in a network
   namespace on the simulated NIC's TAP wire; ``splitnic up --kernel tap`` in
   another namespace gives the host's kernel ``snic0`` over the RTL NIC.
   iperf3 TCP from the peer for IPERF_SECONDS; ping's median of PINGS.
4. ``board_soc_cycles_per_s``: the LiteX simulated board SoC
   (splitnic_gateware.targets.sim), its NIC's CYCLES counter read over the
   etherbone link SOC_SECONDS apart.

The figures move with whatever else the machine runs; the ratio is measured
in one run, so both sides see the same load.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 3
SPEED_CYCLES = 1_000_000
FRAME_SIZES = (1518, 64)
IDLE_SECONDS = 10.0
IPERF_SECONDS = 10
PINGS = 20
SOC_SECONDS = 5.0
SPLITNIC = Path(sys.executable).parent / "splitnic"


def _nic_verilog(build_dir: Path) -> Path:
    from splitnic_gateware.nic import Nic
    from splitnic_gateware.verilog import write_verilog
    return write_verilog(Nic(), "snic_nic", build_dir)


def _speed() -> dict:
    from splitnic_sim.native import build_bare, run_native
    from splitnic_sim.runner import build_dir_for

    bare_dir, cocotb_dir = build_dir_for("nic_bare", "verilator"), build_dir_for("nic_native", "verilator")
    bare = build_bare(_nic_verilog(bare_dir), bare_dir)
    src = _nic_verilog(cocotb_dir)
    runs: dict[int, dict[str, list[dict]]] = {size: {"bare": [], "cocotb": []} for size in FRAME_SIZES}
    with tempfile.TemporaryDirectory(prefix="snic-bench-sim-") as tmp:
        out = Path(tmp) / "speed.json"
        for size in FRAME_SIZES:
            for _ in range(ROUNDS if size == FRAME_SIZES[0] else 1):
                shm = f"/dev/shm/snic-bare-{os.getpid()}"
                r = subprocess.run([str(bare), str(size), str(SPEED_CYCLES), shm], capture_output=True,
                                   text=True, timeout=600)
                if r.returncode:
                    raise RuntimeError(f"bare_main failed: {r.stdout} {r.stderr}")
                runs[size]["bare"].append(json.loads(r.stdout))
                result = run_native(nic_verilog=src, build_dir=cocotb_dir,
                                    test_module="splitnic_sim.tb.nic_native_speed",
                                    extra_env={"SPLITNIC_SPEED": json.dumps({"frame_bytes": size, "cycles": SPEED_CYCLES,
                                                                             "out": str(out)})})
                if result.failed:
                    raise RuntimeError("native speed run failed: " + "; ".join(result.failures))
                runs[size]["cocotb"].append(json.loads(out.read_text()))
    med = {size: {kind: round(statistics.median(r["cycles_per_s"] for r in rs)) for kind, rs in by.items()}
           for size, by in runs.items()}
    head = FRAME_SIZES[0]
    return {
        "bare_verilator_cycles_per_s": med[head]["bare"],
        "cocotb_cycles_per_s": med[head]["cocotb"],
        "cocotb_over_bare": round(med[head]["cocotb"] / med[head]["bare"], 3),
        "by_frame_size": {f"{size}B": {**med[size], "cocotb_over_bare": round(med[size]["cocotb"] / med[size]["bare"], 3),
                                       "line_fraction_rx_tx": [runs[size]["cocotb"][0]["rx_line_fraction"],
                                                               runs[size]["cocotb"][0]["tx_line_fraction"]]}
                          for size in FRAME_SIZES},
        "speed_unit": "simulated 125 MHz cycles per wall second, line-rate traffic both ways, build excluded",
    }


def _group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) of every live process in process group ``pgid``."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:              # field 5: pgrp
            total += int(fields[11]) + int(fields[12])   # utime, stime
    return total / tick


def _idle() -> dict:
    from splitnic_sim.csr_socket import RawCsrClient
    from splitnic_sim.server import SimNic

    with tempfile.TemporaryDirectory() as tmp, SimNic(socket_path=Path(tmp) / "nic.sock") as sim:
        with RawCsrClient(sim.socket_path) as client:
            c0 = client.sync()
            time.sleep(3.0)          # past the harness's idle threshold (it blocks then)
            pgid = sim._proc.pid
            cpu0, t0 = _group_cpu_s(pgid), time.monotonic()
            time.sleep(IDLE_SECONDS)
            cpu1, t1 = _group_cpu_s(pgid), time.monotonic()
            c1 = client.sync()       # a request: the harness wakes and answers
    return {"idle_cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
            "idle_simulated_cycles": c1 - c0,
            "idle_note": f"a client connected but silent for {IDLE_SECONDS + 3:.0f} s; the simulated cycles "
                         "include the 200 000 quiet ones before the harness blocks"}


def _sh(*args: str, netns: str | None = None, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    cmd = (["ip", "netns", "exec", netns] if netns else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def _tcp_and_ping() -> dict:
    from splitnic_sim.server import SimNic

    tag = f"{os.getpid() % 100000}"
    host_ns, peer_ns, tap, name = f"sbh{tag}", f"sbp{tag}", f"sbw{tag}", "snic0"
    host_ip, peer_ip = "198.18.7.1", "198.18.7.2"
    sim = up = server = None
    for ns in (host_ns, peer_ns):
        _sh("ip", "netns", "add", ns)
    try:
        sim = SimNic(wire=f"tap:{tap}").start()
        _sh("ip", "link", "set", tap, "netns", peer_ns)
        _sh("ip", "-n", peer_ns, "addr", "add", f"{peer_ip}/24", "dev", tap)
        _sh("ip", "-n", peer_ns, "link", "set", tap, "up")
        _sh("ip", "-n", peer_ns, "link", "set", "lo", "up")
        _sh("ip", "-n", host_ns, "link", "set", "lo", "up")
        up = subprocess.Popen(["ip", "netns", "exec", host_ns, str(SPLITNIC), "up", "--link", sim.link,
                               "--kernel", "tap", "--name", name], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            if not line:
                raise RuntimeError("splitnic up exited before its interface was up")
            if line.startswith(f"{name} up:"):
                break
        _sh("ip", "-n", host_ns, "addr", "add", f"{host_ip}/24", "dev", name)
        ping = _sh("ping", "-n", "-c", str(PINGS), "-i", "0.2", "-W", "10", host_ip, netns=peer_ns, timeout=120)
        rtts = [float(m) for m in re.findall(r"time=([\d.]+) ms", ping.stdout)]
        server = subprocess.Popen(["ip", "netns", "exec", host_ns, "iperf3", "-s", "-1", "-B", host_ip],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        client = _sh("iperf3", "-c", host_ip, "-t", str(IPERF_SECONDS), "-J", netns=peer_ns,
                     timeout=IPERF_SECONDS + 120)
        end = json.loads(client.stdout)["end"]
        return {"iperf3_tcp_mbit_s": round(end["sum_received"]["bits_per_second"] / 1e6, 2),
                "iperf3_retransmits": end["sum_sent"].get("retransmits"),
                "ping_rtt_ms": round(statistics.median(rtts), 3), "ping_replies": len(rtts),
                "tcp_note": f"kernel peer -> TAP -> RTL NIC -> splitnic up (TUN/TAP) -> host kernel; "
                            f"iperf3 -t {IPERF_SECONDS}, ping median of {PINGS}"}
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
        if up is not None:
            up.send_signal(signal.SIGTERM)
            try:
                up.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                up.kill()
                up.communicate()
        if sim is not None:
            sim.stop()
        for ns in (host_ns, peer_ns):
            _sh("ip", "netns", "del", ns, check=False)


def _board_soc() -> dict:
    from splitnic.link_etherbone import EtherboneClient
    from splitnic_spec import CSR_MAP
    from splitnic_spec import board as amap
    from splitnic_gateware.targets.sim import SIM_SYS_CLK_FREQ, SOC_IP, SimSoCProcess
    from splitnic_lab.netns import inside

    cycles = amap.NIC_CSR_BASE + CSR_MAP.register("CYCLES").offset
    with SimSoCProcess() as soc, inside(soc.netns_path):
        client = EtherboneClient(SOC_IP)
        client.read([cycles])              # ARP and warm-up
        v0, t0 = client.read([cycles])[0], time.monotonic()
        time.sleep(SOC_SECONDS)
        v1, t1 = client.read([cycles])[0], time.monotonic()
        client.close()
    return {"board_soc_cycles_per_s": round(((v1 - v0) & 0xFFFF_FFFF) / (t1 - t0)),
            "board_soc_note": f"LiteX simulator (Verilator), sys clock nominally {SIM_SYS_CLK_FREQ} Hz; "
                              "the NIC's CYCLES counter over the etherbone link"}


def run() -> dict:
    figures: dict = {}
    figures.update(_speed())
    figures.update(_idle())
    figures.update(_tcp_and_ping())
    try:
        figures.update(_board_soc())
    except Exception as err:      # the board SoC needs LiteX's build; report, keep the other figures
        figures["board_soc_error"] = f"{type(err).__name__}: {err}"
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
