"""RX and TX queues over the etherbone link, against the simulated board SoC.

The board's DMA memory is 32 KiB of NIC-local block RAM and the driver works
on a copy of it (not zero-copy): these tests need the queue code's syncs
(splitnic.dma, "Syncing") and queue sizes that fit.  The simulated SoC is
started as in test_sim_soc.py (root, /dev/net/tun; built on first use).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

import splitnic
from splitnic_spec import board as amap
from splitnic_gateware.targets.sim import SimSoCProcess
from splitnic_lab.netns import inside

SPLITNIC = Path(sys.executable).parent / "splitnic"


@pytest.fixture(scope="module")
def soc() -> Iterator[SimSoCProcess]:
    # Builds the simulator the first time (minutes); this thread joins its namespace.
    with SimSoCProcess() as running, inside(running.netns_path):
        yield running


@pytest.mark.timeout(1800)
def test_selftest_over_etherbone(soc: SimSoCProcess) -> None:
    result = subprocess.run([SPLITNIC, "selftest", "--link", soc.link, "--count", "24", "--timeout", "240"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS: 24 frames"), result.stdout


def test_default_queues_fit_the_block_ram_and_loop_frames(soc: SimSoCProcess) -> None:
    with splitnic.open(soc.link) as nic:
        nic.reset()
        nic.mac = bytes.fromhex("020000000042")
        nic.set_loopback(True)
        rxq, txq = nic.rx_queue(0), nic.tx_queue(0)      # the defaults (256 entries) shrink to fit 32 KiB
        for q in (rxq, txq):
            assert q.ring.nbufs * q.ring.stride + 2 * q.ring.entries * 16 <= amap.DMA_RAM_SIZE // 2
        frames = [nic.mac * 2 + b"\x88\xb5" + bytes([i]) * (50 + 40 * i) for i in range(3)]
        zc = txq.buffer()
        assert zc is not None
        last = nic.mac * 2 + b"\x88\xb5" + b"Z" * 50
        zc.view[:64] = last
        zc.length = 64
        assert txq.tx_burst(frames) == 3 and txq.tx_burst([zc]) == 1
        got: list[bytes] = []
        deadline = time.monotonic() + 120
        while len(got) < 4 and time.monotonic() < deadline:
            packets = rxq.rx_burst()
            got += [bytes(p.data) for p in packets]
            rxq.release(packets)
        assert got == frames + [last]
        assert txq.flush(60)
        assert rxq.check()["lent"] == 0 and txq.check()["free"] == txq.ring.nbufs
        nic.set_loopback(False)


def test_an_application_process_is_refused_on_etherbone_in_one_line_saying_why(
        soc: SimSoCProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import threading

    from splitnic.app_server import AppServer
    from splitnic.errors import SplitnicError
    from splitnic.fastpath import FastPath
    with splitnic.open(soc.link) as nic:
        fast = FastPath(nic, [])
        server = AppServer(fast, tmp_path / "apps.sock")
        stop = threading.Event()

        def serve() -> None:            # the primary's loop, as splitnic up runs it
            while not stop.is_set():
                server.poll()
                time.sleep(0.005)
        primary = threading.Thread(target=serve, daemon=True)
        caplog.set_level(logging.INFO, logger="splitnic")
        primary.start()
        try:
            with pytest.raises(SplitnicError) as refused:
                splitnic.attach("udp dport 9000", name="kv", path=tmp_path / "apps.sock")
        finally:
            stop.set()
            primary.join()
        granted = [r.getMessage() for r in caplog.records if "granted" in r.getMessage()]
        server.close()
        message = str(refused.value)
        assert "\n" not in message and message.startswith("etherbone:") and "eth link" in message, message
        assert "--fast 'RULE -> package.module:handler'" in message
        assert not granted, f"queues were granted before the refusal: {granted}"
