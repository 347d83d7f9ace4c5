"""Applications in their own processes: what the split costs them, how fast they come and go.

Run: ``make bench BENCH=apps`` (writes bench/apps.json).  Root: it makes network namespaces.

Every figure is taken on the software NIC (splitnic_sim.softnic, mmio link) in
this process, ``splitnic up --kernel tap`` in a namespace (the primary), and
the application (examples/echo.py: ``app.forward(batch, upto=batch.swap_udp())``)
in its own process or inside ``splitnic up`` (``--fast 'udp dport 9000 -> examples.echo:handle'``).

1. ``process_over_inprocess.64B``: 60-byte UDP frames (64 on the wire) that
   the echo forwards per CPU-second of the process it runs in, from its own
   process over inside ``splitnic up``, same run, same ring (256 entries) and
   burst (64).  The NIC's generator keeps the application's RX queue full; the
   count is the NIC's TX counter of the application's queue; the CPU is the
   process's user+system time (/proc/PID/stat), so the other jobs on this
   shared two-core machine do not count.  Medians of five alternating runs
   of each (``each_run``: the ratio of each pair).  Goal >= 0.9.
2. ``echo_mpps_64B``: the same echo in its own process, frames per CPU-second
   of that process (one core), in millions.  Goal >= 1.49 (a gigabit line's
   64-byte frames).  ``echo_wall_mpps_64B``: per second of wall clock, bounded
   here by the NIC model (a spinning thread) on a shared two-core machine
   (``load_average_1min``); ``primary_core_share_while_process_echoes``: what
   ``splitnic up`` spends meanwhile (the frames do not pass through it; it
   wakes for the application's interrupt when the application sleeps).
3. ``attach_ms``: ``splitnic.attach`` called until its first frame received,
   frames arriving every 100 us; ``rule_to_first_frame_ms``: from the attach
   returning (the rule in force) to that frame.  Medians of 20.  Goal <= 50.
4. ``reclaim_ms``: SIGKILL of the application until its rule and both of its
   queues are disabled in the NIC's registers (the primary saw the hangup,
   removed the rule, quiesced and freed the queues).  Median and worst of 10.
   Goal <= 50.
5. ``kernel_path_during_app_churn``: pings lost through snic0 (a kernel peer,
   every 10 ms) while an application attaches and is SIGKILLed 100 times.
   Goal 0.
6. ``eth_carried``: the same echo on the ``eth`` link, the software NIC
   behind the board's stand-in across a veth (the stand-in runs in this
   process).  There the primary carries, for an application in its own process,
   the doorbells and what the NIC reads (descriptors and TX frames, across the
   cable); RX frames land in memory the application maps.  The figures are
   frames per CPU-second of *both* processes (application and primary) over
   frames per CPU-second of ``splitnic up`` with the echo inside it
   (``process_over_inprocess_64B``), and the primary's CPU per frame it
   carries (``primary_us_per_frame``).  Medians of three alternating runs.
"""

from __future__ import annotations

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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))     # examples/ (the applications measured)

FRAME_PORT, ATTACH_PORT, RECLAIM_PORT, CHURN_PORT = 9000, 9100, 9200, 9300
MEASURE_SECONDS = 3.0
#: Runs of each echo (in process, in splitnic up), alternating.
ECHO_RUNS = 5


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _frame(nic_mac: bytes, port: int) -> bytes:
    from splitnic.frames import udp_frame
    return udp_frame(nic_mac, bytes.fromhex("020000000002"), "198.18.29.2", "198.18.29.1", 5000, port,
                     b"x" * 18)   # 14 + 20 + 8 + 18 = 60 bytes, 64 on the wire


def _nic_mac(lab) -> bytes:
    from splitnic_spec import CSR_MAP
    lo = lab.nic.read_reg(CSR_MAP.register("MAC_ADDR_LO").offset)
    hi = lab.nic.read_reg(CSR_MAP.register("MAC_ADDR_HI").offset)
    return lo.to_bytes(4, "little") + (hi & 0xFFFF).to_bytes(2, "little")


def _forwarding(lab, pid: int, tx_queue: int) -> tuple[float, float, float]:
    """(frames per CPU-second of ``pid``, frames per wall second, the primary's share of a core) over
    MEASURE_SECONDS, frames counted on ``tx_queue``."""
    from splitnic_spec import CSR_MAP
    packets = CSR_MAP.array("TXQ").offset(tx_queue, "PACKETS")
    primary = lab.up.proc.pid
    time.sleep(0.5)                                   # warm: rings full, caches warm
    n0, c0, p0, t0 = lab.nic.read_reg(packets), _cpu_seconds(pid), _cpu_seconds(primary), time.monotonic()
    time.sleep(MEASURE_SECONDS)
    n1, c1, p1, t1 = lab.nic.read_reg(packets), _cpu_seconds(pid), _cpu_seconds(primary), time.monotonic()
    frames = (n1 - n0) & 0xFFFFFFFF
    return frames / max(c1 - c0, 1e-9), frames / (t1 - t0), (p1 - p0) / (t1 - t0)


def _echo_rates(tmp: Path, in_process: bool) -> tuple[float, float, float]:
    from splitnic_lab.app_lab import AppLab
    from splitnic_spec import CSR_MAP
    extra = ["--fast", f"udp dport {FRAME_PORT} -> examples.echo:handle"] if in_process else []
    lab = AppLab(tmp, extra, wire=False, wire_slots=0, idle_sleep_us=0, dma_size=32 << 20)
    try:
        if in_process:
            features = CSR_MAP.register("ID_FEATURES")
            tx_queues = features.field("TX_QUEUES").get(lab.nic.read_reg(features.offset))
            pid, rx_queue, tx_queue = lab.up.proc.pid, 1, tx_queues - 1   # the in-process fast path's
        else:
            proc, line = lab.start(["examples/echo.py", "--apps", str(lab.apps_path), "--port", str(FRAME_PORT),
                                    "--ring-log2", "8"], "echo: UDP")
            pid = proc.pid
            rx_queue, tx_queue = map(int, re.findall(r"queue (\d+)", line))
        lab.nic.generate(_frame(_nic_mac(lab), FRAME_PORT), queue=rx_queue)
        return _forwarding(lab, pid, tx_queue)
    finally:
        lab.close()


#: Runs of each echo on the eth link (in its own process, in splitnic up), alternating.
ETH_RUNS = 3


def _eth_echo_rates(tmp: Path, in_process: bool) -> tuple[float, float, float]:
    """(frames per CPU-second of the application and the primary together, frames per wall second,
    the primary's CPU microseconds per frame) for the echo on the eth link."""
    from splitnic_lab.app_lab import AppLab
    from splitnic_spec import CSR_MAP
    extra = ["--fast", f"udp dport {FRAME_PORT} -> examples.echo:handle"] if in_process else []
    lab = AppLab(tmp, extra, wire=False, simulator="eth", wire_slots=0, dma_size=4 << 20)
    try:
        primary = lab.up.proc.pid
        if in_process:
            features = CSR_MAP.register("ID_FEATURES")
            tx_queues = features.field("TX_QUEUES").get(lab.nic.read_reg(features.offset))
            pids, rx_queue, tx_queue = [primary], 1, tx_queues - 1
        else:
            proc, line = lab.start(["examples/echo.py", "--apps", str(lab.apps_path), "--port", str(FRAME_PORT),
                                    "--ring-log2", "8"], "echo: UDP")
            pids = [proc.pid, primary]
            rx_queue, tx_queue = map(int, re.findall(r"queue (\d+)", line))
        lab.nic.generate(_frame(_nic_mac(lab), FRAME_PORT), queue=rx_queue)
        packets = CSR_MAP.array("TXQ").offset(tx_queue, "PACKETS")
        time.sleep(0.5)
        n0, c0, p0, t0 = lab.nic.read_reg(packets), sum(map(_cpu_seconds, pids)), _cpu_seconds(primary), \
            time.monotonic()
        time.sleep(MEASURE_SECONDS)
        n1, c1, p1, t1 = lab.nic.read_reg(packets), sum(map(_cpu_seconds, pids)), _cpu_seconds(primary), \
            time.monotonic()
        frames = max((n1 - n0) & 0xFFFFFFFF, 1)
        return frames / max(c1 - c0, 1e-9), frames / (t1 - t0), (p1 - p0) / frames * 1e6
    finally:
        lab.close()


def _attach_times(tmp: Path, rounds: int = 20) -> tuple[list[float], list[float]]:
    import splitnic
    from splitnic_lab.app_lab import AppLab
    lab = AppLab(tmp, wire=False, wire_slots=0)
    stop = threading.Event()
    frame = _frame(_nic_mac(lab), ATTACH_PORT)

    def feed() -> None:                               # a frame for the rule every 100 us
        while not stop.is_set():
            lab.nic.inject(frame)
            time.sleep(0.0001)
    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    whole, after_rule = [], []
    try:
        splitnic.attach(f"udp dport {ATTACH_PORT}", name="warm", path=lab.apps_path).close()   # imports, not timed
        time.sleep(0.05)
        for _ in range(rounds):
            t0 = time.monotonic()
            with splitnic.attach(f"udp dport {ATTACH_PORT}", name="timed", path=lab.apps_path) as app:
                t1 = time.monotonic()
                while not app.pending():
                    pass
                t2 = time.monotonic()
                whole.append((t2 - t0) * 1e3)
                after_rule.append((t2 - t1) * 1e3)
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
        lab.close()
    return whole, after_rule


def _reclaim_times(tmp: Path, rounds: int = 10) -> list[float]:
    from splitnic_lab.app_lab import AppLab
    from splitnic_spec import CSR_MAP
    lab = AppLab(tmp, wire=False, wire_slots=0)
    steer_ctrl = [CSR_MAP.array("STEER").offset(e, "CTRL") for e in range(CSR_MAP.array("STEER").count)]
    rxq, txq = CSR_MAP.array("RXQ"), CSR_MAP.array("TXQ")
    times = []
    try:
        for _ in range(rounds):
            proc, line = lab.start(["examples/echo.py", "--apps", str(lab.apps_path), "--port", str(RECLAIM_PORT)],
                                   "echo: UDP")
            rx_queue, tx_queue = map(int, re.findall(r"queue (\d+)", line))
            time.sleep(0.2)
            lab.nic.generate(_frame(_nic_mac(lab), RECLAIM_PORT), queue=rx_queue)
            time.sleep(0.2)
            regs = [*steer_ctrl, rxq.offset(rx_queue, "CTRL"), txq.offset(tx_queue, "CTRL")]
            t0 = time.monotonic()
            proc.kill()
            while any(lab.nic.read_reg(r) & 1 for r in regs):
                time.sleep(0.0001)
            times.append((time.monotonic() - t0) * 1e3)
            proc.wait()
            lab.nic.s.gen_remaining = 0                 # the generator stops
    finally:
        lab.close()
    return times


def _churn(tmp: Path, rounds: int = 100) -> dict:
    from splitnic_lab.app_lab import HOST_IP, AppLab
    lab = AppLab(tmp)
    try:
        ping = subprocess.Popen(["ip", "netns", "exec", lab.peer, "ping", "-i", "0.01", "-W", "1", HOST_IP],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1.0)
        for _ in range(rounds):
            proc, _ = lab.start(["examples/echo.py", "--apps", str(lab.apps_path), "--port", str(CHURN_PORT)],
                                "echo: UDP")
            proc.kill()
            proc.wait()
            lab.procs.remove(proc)
        time.sleep(1.0)
        ping.send_signal(signal.SIGINT)
        out = ping.communicate(timeout=10)[0]
        sent, got = map(int, re.search(r"(\d+) packets transmitted, (\d+) received", out).groups())
        return {"pings": sent, "lost": sent - got, "attach_and_kill": rounds}
    finally:
        lab.close()


def run() -> dict:
    if os.geteuid() != 0:
        raise SystemExit("bench apps: run as root (it makes network namespaces)")
    with tempfile.TemporaryDirectory(prefix="bench-apps-") as tmp:
        tmp = Path(tmp)
        # Alternating runs, medians: the machine's other jobs move single runs by a third.
        runs = [(_echo_rates(tmp, in_process=True), _echo_rates(tmp, in_process=False)) for _ in range(ECHO_RUNS)]
        inproc_cpu, inproc_wall = (statistics.median(r[0][i] for r in runs) for i in (0, 1))
        proc_cpu, proc_wall, primary_share = (statistics.median(r[1][i] for r in runs) for i in (0, 1, 2))
        ratios = sorted(round(r[1][0] / r[0][0], 3) for r in runs)
        eth = [(_eth_echo_rates(tmp, in_process=True), _eth_echo_rates(tmp, in_process=False))
               for _ in range(ETH_RUNS)]
        whole, after_rule = _attach_times(tmp)
        reclaim = _reclaim_times(tmp)
        churn = _churn(tmp)
    return {
        "process_over_inprocess": {"64B": round(proc_cpu / inproc_cpu, 3), "goal": 0.9, "each_run": ratios,
                                   "inprocess_mpps_per_cpu_second": round(inproc_cpu / 1e6, 3),
                                   "process_mpps_per_cpu_second": round(proc_cpu / 1e6, 3)},
        "echo_mpps_64B": round(proc_cpu / 1e6, 3), "echo_mpps_goal": 1.49,
        "echo_wall_mpps_64B": round(proc_wall / 1e6, 3), "inprocess_wall_mpps_64B": round(inproc_wall / 1e6, 3),
        "primary_core_share_while_process_echoes": round(primary_share, 3),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "attach_ms": round(statistics.median(whole), 2), "attach_ms_worst": round(max(whole), 2),
        "rule_to_first_frame_ms": round(statistics.median(after_rule), 3),
        "reclaim_ms": round(statistics.median(reclaim), 2), "reclaim_ms_worst": round(max(reclaim), 2),
        "ms_goal": 50,
        "kernel_path_during_app_churn": churn, "kernel_path_during_app_churn_goal_lost": 0,
        "eth_carried": {
            "process_over_inprocess_64B": round(statistics.median(p[0] / i[0] for i, p in eth), 3),
            "each_run": sorted(round(p[0] / i[0], 3) for i, p in eth),
            "inprocess_mpps_per_cpu_second": round(statistics.median(i[0] for i, _ in eth) / 1e6, 3),
            "process_mpps_per_cpu_second": round(statistics.median(p[0] for _, p in eth) / 1e6, 3),
            "process_wall_mpps": round(statistics.median(p[1] for _, p in eth) / 1e6, 3),
            "inprocess_wall_mpps": round(statistics.median(i[1] for i, _ in eth) / 1e6, 3),
            "primary_us_per_frame": round(statistics.median(p[2] for _, p in eth), 3),
            "primary_us_per_frame_inprocess": round(statistics.median(i[2] for i, _ in eth), 3),
        },
    }


if __name__ == "__main__":
    import json
    print(json.dumps(run(), indent=2))
