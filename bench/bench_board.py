"""The boards: bitstream build time, utilisation, Fmax per clock; Etherbone in simulation.

``make bench BENCH=board``.  Builds the bitstream of each board (as ``make
bitstream BOARD=...`` does: the Colorlight i5, then the i9 with its larger NIC)
and reads its summary into ``bitstream.<board>.*``; then runs the simulated board SoC
(as root: it needs a TAP interface) and measures the ``etherbone`` link:
single CSR reads per second and burst throughput to and from the NIC-local
DMA RAM (records of 16 words, four in flight), and what the writes' pacing
costs against the same writes unpaced.  The simulated figures are the
simulator's speed, not the board's: they show what the link costs, not line
rate.
"""

from __future__ import annotations

import time

from splitnic.link_etherbone import EtherboneClient
from splitnic_spec import board as amap
from splitnic_gateware.targets.colorlight import COLORLIGHT_BOARDS, build_bitstream
from splitnic_gateware.targets.sim import SOC_IP, SimSoCProcess
from splitnic_lab.netns import inside

#: Seconds each link figure is measured for.
SECONDS = 5.0
BURST_BYTES = 4096


def _bitstream(board: str) -> dict:
    start = time.monotonic()
    try:
        result = build_bitstream(board=board)   # into build/<board>, its own seeds and per-seed bound
    except (RuntimeError, OSError) as err:  # TimingError is a RuntimeError: report it, keep the link figures
        return {"error": str(err), "seconds": round(time.monotonic() - start)}
    util = {kind: {"used": u["used"], "available": u["available"]}
            for kind, u in result.utilisation.items() if kind in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "TRELLIS_IO")}
    return {"build_seconds": result.seconds, "utilisation": util,
            "fmax_mhz": {clock: {"achieved": f["achieved"], "target": f["constraint"]} for clock, f in result.fmax.items()},
            "timing_met": result.timing_met, "device": result.device, "seed": result.seed,
            "seeds_tried_before": result.attempts, "nic": result.nic}


def _rate(step, seconds: float = SECONDS) -> float:
    count, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        count += step()
    return count / (time.monotonic() - start)


def _link() -> dict:
    with SimSoCProcess() as soc, inside(soc.netns_path):
        client = EtherboneClient(SOC_IP)
        magic = amap.NIC_CSR_BASE
        client.read([magic])  # ARP and warm-up
        csr_reads = _rate(lambda: len(client.read([magic])))
        words = BURST_BYTES // 4
        addrs = list(range(amap.DMA_RAM_BASE, amap.DMA_RAM_BASE + BURST_BYTES, 4))
        read_bps = _rate(lambda: 4 * len(client.read(addrs)))

        def write(through: EtherboneClient) -> int:
            through.write(amap.DMA_RAM_BASE, range(words))
            through.read([amap.DMA_RAM_BASE])  # writes are posted: wait until they landed
            return BURST_BYTES
        write_bps = _rate(lambda: write(client))
        client.close()
        # The reference: the same writes without the reads that keep them within the board's
        # receive buffer (safe here only because nothing else holds the simulated SoC's bus).
        unpaced = EtherboneClient(SOC_IP, write_bytes=1 << 30)
        unpaced_bps = _rate(lambda: write(unpaced))
        unpaced.close()
    return {"csr_reads_per_s": round(csr_reads, 1), "burst_read_bytes_per_s": round(read_bps),
            "burst_write_bytes_per_s": round(write_bps), "burst_write_unpaced_bytes_per_s": round(unpaced_bps),
            "burst_write_paced_over_unpaced": round(write_bps / unpaced_bps, 3), "burst_bytes": BURST_BYTES,
            "record_words": amap.MAX_BURST_WORDS, "where": "simulated SoC (Verilator) over a TAP interface"}


def run() -> dict:
    """Figures of the board build and of the etherbone link to the simulated SoC."""
    return {"bitstream": {board: _bitstream(board) for board in COLORLIGHT_BOARDS}, "etherbone_sim": _link()}
