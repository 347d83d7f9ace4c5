"""The Colorlight i5 SoC elaborates: LiteX writes its Verilog and constraints (no place and route).

The full build (yosys, nextpnr, ecppack) is ``make bitstream BOARD=colorlight_i5``.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from litex.soc.integration.builder import Builder

from splitnic_spec import board as amap
from splitnic_spec import hostlink
from splitnic_gateware.targets.colorlight import BITSTREAM_NAME, ColorlightSoC
from splitnic_gateware.targets.hostlink_core import HOSTLINK_MODULE
from splitnic_gateware.targets.nic_core import NIC_MODULE

REPO = Path(__file__).resolve().parents[2]


def test_board_soc_writes_verilog_and_constraints() -> None:
    out = REPO / "build" / "test-board-soc"   # inside the repo, like the real build
    soc = ColorlightSoC(out)
    Builder(soc, output_dir=str(out), compile_software=False).build(build_name=BITSTREAM_NAME, run=False)
    gw = out / "gateware"
    top = (gw / f"{BITSTREAM_NAME}.v").read_text()
    assert re.search(rf"^{NIC_MODULE} \w+\s*\(", top, re.M), "the NIC core is not instantiated"
    assert re.search(rf"^{HOSTLINK_MODULE} \w+\s*\(", top, re.M), "the eth link's engines are not instantiated"
    nic_v = (out / "nic" / f"{NIC_MODULE}.v").read_text()
    assert f"module {NIC_MODULE}(" in nic_v
    # Both PHYs are pinned, each pin once (the PHYs share reset and MDIO pins; only PHY 0 drives them).
    lpf = (gw / f"{BITSTREAM_NAME}.lpf").read_text()
    sites = Counter(re.findall(r'LOCATE COMP "[^"]+" SITE "(\w+)"', lpf))
    assert sites and max(sites.values()) == 1, [s for s, n in sites.items() if n > 1]
    for pin in ("H2", "L19", "P4", "P5", "N5"):        # RX clocks of both PHYs, shared reset and MDIO
        assert sites[pin] == 1, pin
    # The bus map the driver relies on.
    regions = soc.bus.regions
    assert (regions["nic_csr"].origin, regions["nic_csr"].size) == (amap.NIC_CSR_BASE, amap.NIC_CSR_SIZE)
    assert (regions["nic_dma"].origin, regions["nic_dma"].size) == (amap.DMA_RAM_BASE, amap.DMA_RAM_SIZE)
    assert "nic_dma" in soc.bus.masters and "etherbone" in soc.bus.masters
    _assert_eth_link_map(regions, soc.bus.masters)
    # The host-link port's receive buffer is there, its drop counter where the driver reads it.
    csrs = dict(re.findall(r"^csr_register,(\w+),(0x[0-9a-f]+),", (out / "csr.csv").read_text(), re.M))
    assert int(csrs["host_rx_dropped"], 16) == amap.HOST_RX_DROPPED, csrs


def _assert_eth_link_map(regions, masters) -> None:
    """The eth link's place on the bus: the host window and the counters as slaves, the engines a master."""
    # The NIC's DMA writes into the host window leave as messages; the host's reach the bus.
    assert (regions["hostlink"].origin, regions["hostlink"].size) == (hostlink.HOST_WINDOW_BASE,
                                                                      hostlink.HOST_WINDOW_SIZE)
    assert (regions["hostlink_counters"].origin, regions["hostlink_counters"].size) == (hostlink.COUNTERS_BASE,
                                                                                        hostlink.COUNTERS_SIZE)
    assert not regions["hostlink"].cached and "hostlink" in masters


def test_the_simulated_soc_carries_the_eth_link() -> None:
    from splitnic_gateware.targets.sim import SimBoardSoC
    soc = SimBoardSoC(REPO / "build" / "test-sim-soc-map")
    _assert_eth_link_map(soc.bus.regions, soc.bus.masters)
