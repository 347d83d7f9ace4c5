"""`splitnic sim --trace`: the simulated NIC recorded while a driver uses it, within its window.

Ref: docs/simulation.md ("Waveforms").  The simulator is started as a user starts it,
`splitnic selftest` loops frames through it, and the FST is read back: the selftest's
frames are on the MAC's GMII transmitter (CTRL.LOOPBACK feeds it back to the receiver),
the file starts at the window's first cycle and ends at its last, and a second selftest
after the window leaves nothing in it.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import splitnic_sim.native

from splitnic_sim.csr_socket import RawCsrClient
from tests.sim.fst import Trace
from tests.sim.test_waves import PREAMBLE_SFD, gmii_frames

SPLITNIC = Path(sys.executable).parent / "splitnic"
#: The window: START is past the simulator's first moments, CYCLES covers one selftest
#: (about 100 000 cycles of 8 frames, reset and ring setup included, on a quiet machine; the
#: simulator runs free while the driver waits, so a loaded machine spends more) with room to spare.
START, CYCLES = 50_000, 1_000_000
PS_PER_CYCLE = 8000
ETHERTYPE = bytes.fromhex("88b5")    # the selftest's frames (hostdrv/splitnic/selftest.py)
#: The board SoC's window: past its reset and the firmware's start, a few thousand cycles.
SOC_START, SOC_CYCLES = 2000, 5000
#: GTKWave's save file with the NIC's interesting signals, for this very trace.
SAVE_FILE = Path(splitnic_sim.native.__file__).parent / "snic_nic.gtkw"


def _wait_for_cycle(sock: Path, cycle: int, timeout: float = 120) -> int:
    """SYNC until the simulator has passed ``cycle`` (requests keep it running); the cycle reached."""
    client = RawCsrClient(sock)
    try:
        deadline = time.monotonic() + timeout
        while (now := client.sync()) < cycle:
            assert time.monotonic() < deadline, f"simulator stuck at cycle {now}, waiting for {cycle}"
            time.sleep(0.02)
        return now
    finally:
        client.close()


def _selftest(sock: Path, seed: int) -> None:
    result = subprocess.run([str(SPLITNIC), "selftest", "--link", f"sim:{sock}", "--count", "8",
                             "--max-size", "300", "--seed", str(seed)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("PASS: 8 frames"), result.stdout + result.stderr


def test_trace_records_a_selftest_within_its_window(tmp_path: Path) -> None:
    sock, fst = tmp_path / "nic.sock", tmp_path / "nic.fst"
    proc = subprocess.Popen([str(SPLITNIC), "sim", "--socket", str(sock), "--trace", str(fst),
                             "--trace-start", str(START), "--trace-cycles", str(CYCLES)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()   # once the simulator listens (building the traced one first)
        assert f"attach with --link sim:{sock} " in line, line + proc.stderr.read()
        line = proc.stdout.readline()
        assert f"recording cycles {START}..{START + CYCLES - 1} into {fst}" in line, line
        _wait_for_cycle(sock, START)
        _selftest(sock, seed=1)
        after = _wait_for_cycle(sock, 0)
        assert after < START + CYCLES, f"the selftest ran past the window (cycle {after}); widen it"
        # A second selftest once the window has passed: the file is closed, nothing of it is recorded.
        _wait_for_cycle(sock, START + CYCLES + 1000)
        _selftest(sock, seed=2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    trace = Trace(fst)
    clk = [t for t, _ in trace.changes("snic_harness.clk")]
    assert clk[0] == START * PS_PER_CYCLE, f"the file starts at {clk[0]} ps, not at cycle {START}"
    end = (START + CYCLES) * PS_PER_CYCLE
    assert end - PS_PER_CYCLE <= clk[-1] < end, f"the file ends at {clk[-1]} ps; the window at {end} ps"
    frames = gmii_frames(trace, "snic_harness.clk", "snic_harness.nic.mac_tx.gmii_tx_en",
                         "snic_harness.nic.mac_tx.gmii_tx_d")
    assert len(frames) == 8, f"{len(frames)} frames on the MAC's GMII in the window, not the first selftest's 8"
    for when, frame in frames:
        assert START * PS_PER_CYCLE <= when < end
        assert frame[:8] == PREAMBLE_SFD and bytes(frame[8 + 12:8 + 14]) == ETHERTYPE, bytes(frame[:24]).hex()
        assert 8 + 60 + 4 <= len(frame) <= 8 + 300 + 4
    _check_save_file(trace)
    # The window's bound holds for every signal, not only the clock.
    for name in ("snic_harness.nic.mac_rx.gmii_rx_dv", "snic_harness.nic.dma__cyc", "snic_harness.nic.csr__ack"):
        times = [t for t, _ in trace.changes(name)]
        assert times and START * PS_PER_CYCLE <= times[0] and times[-1] < end, name


def test_trace_refuses_what_it_cannot_record(tmp_path: Path) -> None:
    """One clear line and exit status 1 (2 for argparse's own), before anything is built."""
    cases = [(["--trace", str(tmp_path / "nic.vcd")], "must end in .fst"),
             (["--trace", str(tmp_path / "missing" / "nic.fst")], "does not exist"),
             (["--trace", str(tmp_path / "nic.fst"), "--harness", "python"], "records the native harness"),
             (["--trace", str(tmp_path / "nic.fst"), "--trace-cycles", "0"], "cycles >= 1")]
    for args, message in cases:
        result = subprocess.run([str(SPLITNIC), "sim", "--socket", str(tmp_path / "nic.sock"), *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode in (1, 2) and message in result.stderr, (args, result.stderr)
        assert not (tmp_path / "nic.fst").exists()


def _check_save_file(trace: Trace) -> None:
    """Every signal of the GTKWave save file is in the trace, with the width the file gives it,
    and its groups are GMII, each DMA engine and the CSR bus."""
    lines = SAVE_FILE.read_text().splitlines()
    groups = [line[1:] for line in lines[1:] if line.startswith("-")]
    for want in ("GMII RX", "GMII TX", "CSR bus", "RX DMA engine", "TX DMA engine", "DMA bus"):
        assert any(g.startswith(want) for g in groups), f"{SAVE_FILE.name} has no {want} group: {groups}"
    signals = [line for line in lines if line.startswith("snic_harness.")]
    assert len(signals) > 40
    for line in signals:
        m = re.fullmatch(r"([\w.$]+)(?:\[(\d+):0\])?", line)
        assert m, f"{SAVE_FILE.name}: {line!r}"
        name, msb = m[1], m[2]
        assert name in trace.names, f"{SAVE_FILE.name}: {name} is not in the trace"
        assert trace.width(name) == (int(msb) + 1 if msb else 1), f"{SAVE_FILE.name}: {line} has another width"


@pytest.mark.timeout(3000)
def test_the_board_socs_trace_records_a_selftest_and_keeps_to_its_window(tmp_path: Path) -> None:
    """`python -m splitnic_gateware.targets.sim --run --trace` (SimSoCProcess): the simulated board
    SoC recorded while a selftest runs over Etherbone, its frames found on the NIC's GMII inside
    it, the file whole when the simulator is stopped; and a short window that ends while the SoC
    runs on: the file holds that window's cycles of the 1 MHz clock and no more."""
    from splitnic_gateware.targets.sim import SimSoCProcess
    from splitnic_lab.netns import inside

    period = 10**6     # ps per cycle of the SoC's 1 MHz clock
    whole = tmp_path / "selftest.fst"
    # The SoC's usual build (minutes the first time); until stopped (a window longer than the test).
    with SimSoCProcess(trace=whole, trace_cycles=10**9) as soc, inside(soc.netns_path):
        result = subprocess.run([str(SPLITNIC), "selftest", "--link", soc.link, "--count", "2", "--max-size", "100",
                                 "--timeout", "240"], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0 and result.stdout.startswith("PASS: 2 frames"), result.stdout + result.stderr
    trace = Trace(whole)
    nic = "TOP.sim.splitnic_nic.mac_tx"
    frames = gmii_frames(trace, "TOP.sys_clk", f"{nic}.gmii_tx_en", f"{nic}.gmii_tx_d")
    assert len(frames) == 2, f"{len(frames)} frames on the SoC's NIC GMII"
    for _, frame in frames:
        assert frame[:8] == PREAMBLE_SFD and bytes(frame[8 + 12:8 + 14]) == ETHERTYPE, bytes(frame[:24]).hex()

    windowed = tmp_path / "windowed.fst"
    with SimSoCProcess(trace=windowed, trace_start=SOC_START, trace_cycles=SOC_CYCLES) as soc:
        log = soc.out_dir / "gateware" / "sim.log"
        deadline = time.monotonic() + 600
        while "(end of the window)" not in log.read_text(errors="replace"):
            assert soc._proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.5)
        closed_size = windowed.stat().st_size
        time.sleep(2)     # the simulator runs on: the file stays as it was
        assert windowed.stat().st_size == closed_size
    ticks = [t for t, _ in Trace(windowed).changes("TOP.sys_clk")]
    assert ticks[0] == SOC_START * period
    assert (SOC_START + SOC_CYCLES - 1) * period <= ticks[-1] < (SOC_START + SOC_CYCLES) * period, ticks[-3:]
