"""``make bitstream BOARD=colorlight_i5``: the board build closes timing and reports what it used.

(The i9's: tests/board/test_board_synth.py synthesises it; its full build is ``make bench BENCH=board``'s.)

The real flow (LiteX, YoWASP yosys/nextpnr-ecp5/ecppack) runs once per
session, in the background beside the other tests (tests/board/conftest.py);
these tests run last and read that build's results.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from splitnic_spec import board as amap
from splitnic.flasher import bitstream_idcode
from splitnic_gateware.targets.colorlight import (BITSTREAM_NAME, SYS_CLK_FREQ, BuildResult, TimingError,
                                                  _summarise, check_timing)
from splitnic_gateware.targets.nic_core import BOARD_NIC_SIZE, build_id

from .conftest import OUT

#: The ECP5 bitstream preamble (Lattice TN1260) that ecppack writes after its comment header.
ECP5_PREAMBLE = bytes.fromhex("ffffbdb3")


@pytest.fixture(scope="module")
def build(bitstream_build: BuildResult) -> BuildResult:
    return bitstream_build


@pytest.mark.timeout(4000)
def test_bitstream_builds_and_meets_timing(build: BuildResult) -> None:
    assert build.timing_met and not build.failures
    bit = Path(build.bitstream)
    assert bit.stat().st_size > 100_000 and ECP5_PREAMBLE in bit.read_bytes()[:1024]
    # The FPGA it is for, as splitnic flash reads it to refuse an i5 bitstream on an i9 (and the reverse).
    assert bitstream_idcode(bit.read_bytes()) == amap.BOARDS["colorlight_i5"].idcode
    assert build.board == "colorlight_i5" and build.device == amap.BOARDS["colorlight_i5"].fpga
    sys_clock = [f for name, f in build.fmax.items() if name == "sys"]
    assert sys_clock and sys_clock[0]["constraint"] == pytest.approx(SYS_CLK_FREQ / 1e6, rel=0.01)
    assert all(f["achieved"] >= f["constraint"] for f in build.fmax.values())
    assert {"sys", "eth_rx (host-link PHY RX, 125 MHz)", "nic_rx (wire PHY RX, 125 MHz)"} <= set(build.fmax)
    assert build.build_id == f"{build_id():#010x}"     # the bitstream carries this tree's NIC
    # Every seed tried before the one kept missed some clock, and says which.
    assert build.seed and all("MHz <" in a or "did not finish" in a for a in build.attempts)


def test_summary_is_saved_with_utilisation_and_clocks(build: BuildResult) -> None:
    saved = json.loads((OUT / "summary.json").read_text())
    assert saved == json.loads(json.dumps(asdict(build)))
    for kind in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD"):
        used, available = saved["utilisation"][kind]["used"], saved["utilisation"][kind]["available"]
        assert 0 < used <= available
    # The DMA block RAM alone needs DMA_RAM_SIZE / 2 KiB of 18-kbit blocks.
    assert saved["utilisation"]["DP16KD"]["used"] >= amap.DMA_RAM_SIZE // 2048
    # The i5's NIC, the smaller one (the i9's is test_board_synth.py's).
    assert saved["nic"]["steer_entries"] == BOARD_NIC_SIZE.steer_entries
    assert saved["nic"]["rx_queues"] == BOARD_NIC_SIZE.rx_queues
    text = (OUT / "summary.txt").read_text()
    assert "clock sys:" in text and "TRELLIS_COMB" in text and "(FAIL)" not in text


def test_a_missed_clock_fails_the_build(build: BuildResult, tmp_path: Path) -> None:
    # The real report, with the system clock's target raised beyond what was achieved.
    gw = OUT / "gateware"
    report = json.loads((gw / f"{BITSTREAM_NAME}.report.json").read_text())
    for net, clock in report["fmax"].items():
        if "crg" in net or "sys" in net:
            clock["constraint"] = clock["achieved"] + 10
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))

    class _Soc:  # only the build id is read from the SoC
        class nic:
            build_id = 0
    result = _summarise(_Soc, gw, path, {}, SYS_CLK_FREQ)
    assert not result.timing_met and result.failures and result.failures[0].startswith("sys ")
    assert "(FAIL)" in result.summary()
    with pytest.raises(TimingError, match="timing not met: sys "):
        check_timing(result)
    check_timing(build)  # the real build passes the same check
