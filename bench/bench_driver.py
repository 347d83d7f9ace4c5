"""Driver cost: packets/s per core through rx_burst + tx_burst, and one frame's round trip through the RTL.

Run: ``.venv/bin/python bench/run.py driver`` (writes bench/driver.json).

1. ``forward_per_core``: the forwarding loop ``rx_burst(B)`` -> ``tx_burst``
   -> ``release`` against the software NIC (splitnic_sim.softnic) on
   shared-memory rings (mmio link), 60-byte frames.  The model is stepped in
   the same thread between rounds and only the driver's time is counted, as
   thread CPU time (so other jobs on this shared machine do not inflate it):
   the driver's cost per packet on one core.  (The model's writes leave the
   rings warm in this core's cache, as DDIO would on a PCIe NIC.)
2. ``forward_two_threads``: the same loop with the model spinning in its own
   thread, wall-clock rate; on this shared 2-core machine it is bounded by
   the other jobs and by cache-line traffic between the cores.
3. ``sim_round_trip``: one frame TX queue 0 -> CTRL.LOOPBACK -> RX queue 0
   through the simulated RTL (splitnic_sim.server.SimNic), wall time and
   simulated cycles (SYNC) per round trip.

For comparison, ixy.py (ixy's Python driver, bidirectional forwarding on an
82599 at 3.3 GHz) reaches 0.08 Mpps at batch 1 and 0.14 Mpps at batches
32-64 (github.com/ixy-languages/ixy-languages, img/batches-3.3.tex, commit
0f33a0a, "Python" series, values given there as 0.04*2 .. 0.07*2).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

GOAL_MPPS = 1.49
BATCHES = (1, 8, 32, 64)
FRAME = bytes.fromhex("020000000001" "020000000002" "88b5") + bytes(46)   # 60 bytes, 64 on the wire
IXY_PY_MPPS = {"batch_1": 0.08, "batch_32": 0.14, "batch_64": 0.14,
               "source": "github.com/ixy-languages/ixy-languages img/batches-3.3.tex @0f33a0a (Python series)"}


def _setup(model, ring_log2: int = 10):
    import splitnic
    nic = splitnic.open(model.link)
    # Reset by hand: the model is stepped, not running.
    from splitnic_spec import CSR_MAP
    ctrl = CSR_MAP.register("CTRL")
    nic.bus.write32(ctrl.offset, nic.bus.read32(ctrl.offset) | ctrl.field("RESET").mask)
    model.step()
    nic.mac = FRAME[:6]
    done = threading.Event()
    queues: list = []

    def make() -> None:
        try:
            queues.extend([nic.rx_queue(0, ring_log2=ring_log2), nic.tx_queue(0, ring_log2=ring_log2)])
        finally:
            done.set()
    t = threading.Thread(target=make)
    t.start()
    while not done.is_set():   # queue resets wait for the model to act on the strobe
        model.step()
    t.join()
    return nic, queues[0], queues[1]


def forward_per_core(batch: int, frames: int = 300_000) -> float:
    """Mpps of the driver alone (model stepped in between, not timed)."""
    from splitnic_sim.softnic import SoftNic
    model = SoftNic(wire_slots=0, idle_sleep_us=0, dma_size=16 << 20)
    nic, rxq, txq = _setup(model)
    try:
        model.generate(FRAME)
        rx_burst, tx_burst, release = rxq.rx_burst, txq.tx_burst, rxq.release
        perf = time.thread_time
        driver = 0.0
        n = 0
        while n < frames:
            while model.step():
                pass
            t0 = perf()
            while True:
                packets = rx_burst(batch)
                if not packets:
                    break
                tx_burst(packets)
                release(packets)
                n += len(packets)
            driver += perf() - t0
        return n / driver / 1e6
    finally:
        nic.close()
        model.close()


def forward_two_threads(batch: int, seconds: float = 2.0) -> float:
    """Mpps wall clock with the model spinning in its own thread."""
    from splitnic_sim.softnic import SoftNic
    import splitnic
    with SoftNic(wire_slots=0, idle_sleep_us=0, dma_size=16 << 20) as model:
        nic = splitnic.open(model.link)
        nic.reset()
        nic.mac = FRAME[:6]
        rxq, txq = nic.rx_queue(0, ring_log2=10), nic.tx_queue(0, ring_log2=10)
        model.generate(FRAME)
        rx_burst, tx_burst, release = rxq.rx_burst, txq.tx_burst, rxq.release
        n = 0
        t0 = time.perf_counter()
        end = t0 + seconds
        while True:
            for _ in range(64):
                packets = rx_burst(batch)
                if packets:
                    tx_burst(packets)
                    release(packets)
                    n += len(packets)
            if time.perf_counter() >= end:
                break
        rate = n / (time.perf_counter() - t0) / 1e6
        nic.close()
        return rate


def sim_round_trip(rounds: int = 20) -> dict:
    """Wall time and simulated cycles of one frame through the RTL's loopback."""
    try:
        from splitnic_sim.server import SimNic
    except ImportError as err:
        return {"unavailable": f"no simulator server in this tree ({err})"}
    import splitnic
    with tempfile.TemporaryDirectory() as tmp, SimNic(socket_path=Path(tmp) / "nic.sock") as sim:
        nic = splitnic.open(sim.link)
        try:
            nic.reset()
            nic.mac = FRAME[:6]
            nic.set_loopback(True)
            rxq, txq = nic.rx_queue(0, ring_log2=4), nic.tx_queue(0, ring_log2=4)
            sync = nic.bus.sync
            walls, cycles = [], []
            for _ in range(rounds):
                c0, t0 = sync(), time.perf_counter()
                txq.tx_burst([FRAME])
                while not (packets := rxq.rx_burst(1)):
                    pass
                t1, c1 = time.perf_counter(), sync()
                rxq.release(packets)
                walls.append(t1 - t0)
                cycles.append(c1 - c0)
            return {"rounds": rounds, "frame_bytes": len(FRAME),
                    "wall_ms_median": round(statistics.median(walls) * 1e3, 3),
                    "sim_cycles_median": statistics.median(cycles),
                    "sim_us_median_at_clock": round(statistics.median(cycles) / nic.clock_hz * 1e6, 3),
                    "note": "cycles include the SYNC round trips and the driver's polling, in simulated time"}
        finally:
            nic.close()


def run() -> dict:
    per_core = {f"batch_{b}": round(forward_per_core(b), 3) for b in BATCHES}
    threads = {f"batch_{b}": round(forward_two_threads(b), 3) for b in BATCHES}
    return {
        "forward_per_core_mpps": per_core,
        "forward_two_threads_mpps": threads,
        "goal_mpps": GOAL_MPPS,
        "goal_met_at_batch_64": per_core["batch_64"] >= GOAL_MPPS,
        "ixy_py_published_mpps": IXY_PY_MPPS,
        "frame_bytes": len(FRAME),
        "sim_round_trip": sim_round_trip(),
    }


if __name__ == "__main__":
    import json
    print(json.dumps(run(), indent=2))
