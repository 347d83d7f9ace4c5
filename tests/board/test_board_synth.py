"""The Colorlight i9's SoC elaborates and synthesises, with the NIC the i5 has no room for.

The elaboration and yosys run in the background after the i5's bitstream
build, on the same core (tests/board/conftest.py): about 5 minutes of CPU
(LiteX 7 s, yosys 283 s measured), which the foreground tests do not wait
for as long as the i5's build and this one end before they do.  Place and route and the i9's clocks are
``make bitstream BOARD=colorlight_i9`` and ``make bench BENCH=board``'s (docs/hardware.md).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from splitnic_spec import board as amap
from splitnic_gateware.size import RTL_TX_QUEUES
from splitnic_gateware.netlist import stat_cells
from splitnic_gateware.targets.colorlight import COLORLIGHT_BOARDS, ColorlightSoC, SynthResult, _nextpnr_device
from splitnic_gateware.targets.nic_core import BOARD_NIC_SIZE, LARGE_BOARD_NIC_SIZE, LARGE_BOARD_TX_QUEUES, build_id

from .conftest import BUILD_TIMEOUT_S, OUT_I9, SYNTH_TIMEOUT_S

#: The first test to ask for the synthesis waits for it, and for the i5's build before it.
WAIT = pytest.mark.timeout(BUILD_TIMEOUT_S + SYNTH_TIMEOUT_S + 120)

#: The LFE5U-45F's LUT4s (and flip-flops) and 18-kbit block RAMs (Lattice DS1044).
LFE5U_45F_LUTS, LFE5U_45F_DP16KD = 43_848, 108


@WAIT
def test_the_i9_synthesises_with_the_full_register_maps_nic(i9_synthesis: SynthResult) -> None:
    i9 = amap.BOARDS["colorlight_i9"]
    assert i9_synthesis.board == i9.name and i9_synthesis.device == i9.fpga == "LFE5U-45F-6BG381C"
    assert i9_synthesis.build_id == f"{build_id():#010x}"      # this tree's NIC
    size = LARGE_BOARD_NIC_SIZE
    assert i9_synthesis.nic == {"rx_queues": size.rx_queues, "tx_queues": size.tx_queues,
                                "steer_entries": size.steer_entries, "rx_fifo_words": size.rx_fifo_words,
                                "tx_buffer_words": size.tx_buffer_words}
    # What the i5 had to give up: every steering entry of the register map, and more RX queues.
    assert size.steer_entries == 16 > BOARD_NIC_SIZE.steer_entries
    assert size.rx_queues > BOARD_NIC_SIZE.rx_queues
    # yosys's statistics of the whole design, as the summary read them, and they fit the part.
    name = amap.bitstream_name("colorlight_i9")
    cells = stat_cells(OUT_I9 / "gateware" / f"{name}.stat.json", name)
    assert cells == i9_synthesis.cells
    assert 0 < cells["LUT4"] <= LFE5U_45F_LUTS and 0 < cells["TRELLIS_FF"] <= LFE5U_45F_LUTS
    # The DMA RAM alone is DMA_RAM_SIZE / 2 KiB blocks; the NIC's buffers at least as many again.
    assert amap.DMA_RAM_SIZE // 2048 * 2 <= cells["DP16KD"] <= LFE5U_45F_DP16KD


@WAIT
def test_the_i9_has_the_i5s_pins_but_for_its_led(i9_synthesis: SynthResult) -> None:
    lpf = (OUT_I9 / "gateware" / f"{amap.bitstream_name('colorlight_i9')}.lpf").read_text()
    pins = dict(re.findall(r'LOCATE COMP "([^"]+)" SITE "(\w+)"', lpf))
    sites = Counter(pins.values())
    assert sites and max(sites.values()) == 1, [s for s, n in sites.items() if n > 1]
    assert pins["user_led_n0"] == "L2" and "U16" not in sites           # the i5's LED pin
    for pin in ("H2", "L19", "P4", "P5", "N5"):        # RX clocks of both PHYs, shared reset and MDIO
        assert sites[pin] == 1, pin
    # The place and route is for the part LiteX's platform names (its own script says how it would run it).
    script = (OUT_I9 / "gateware" / f"build_{amap.bitstream_name('colorlight_i9')}.sh").read_text()
    assert " ".join(_nextpnr_device(amap.BOARDS["colorlight_i9"].fpga)) in script


def test_the_large_boards_tx_queues_are_what_the_rtl_serves() -> None:
    # One constant to raise once the fair TX arbiter is in; never beyond what the RTL serves.
    assert LARGE_BOARD_NIC_SIZE.tx_queues == LARGE_BOARD_TX_QUEUES <= RTL_TX_QUEUES


def test_an_unknown_board_is_refused(tmp_path) -> None:
    assert set(COLORLIGHT_BOARDS) == set(amap.BOARDS)
    with pytest.raises(ValueError, match="no board 'colorlight_i7'; boards: colorlight_i5, colorlight_i9"):
        ColorlightSoC(tmp_path, board="colorlight_i7")
