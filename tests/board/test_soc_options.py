"""The board SoC's build options that bound what a station on the cable can reach.

* Etherbone (an unauthenticated master of the whole bus) is a build option, on by default
  (tests/board/test_board_soc.py): without it the host-link port carries the ``eth`` link
  alone, on LiteEth's MAC with no IP stack.
* The board's NIC carries its DMA firewall (the firewall itself, with the board's windows:
  tests/gateware/test_dma_firewall.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from litex.soc.integration.builder import Builder

from splitnic_spec import board as amap
from splitnic_gateware.targets.colorlight import BITSTREAM_NAME, ColorlightSoC
from splitnic_gateware.targets.hostlink_core import HOSTLINK_MODULE
from splitnic_gateware.targets.nic_core import NIC_MODULE
from splitnic_gateware.targets.soc import SplitnicSoC

REPO = Path(__file__).resolve().parents[2]


def _build(name: str, **options) -> tuple[ColorlightSoC, Path]:
    out = REPO / "build" / name   # inside the repo, like the real build
    soc = ColorlightSoC(out, **options)
    Builder(soc, output_dir=str(out), compile_software=False).build(build_name=BITSTREAM_NAME, run=False)
    return soc, out


def test_without_etherbone_the_host_link_is_the_eth_link_alone() -> None:
    soc, out = _build("test-board-soc-no-etherbone", etherbone=False)
    assert "etherbone" not in soc.bus.masters and "hostlink" in soc.bus.masters, list(soc.bus.masters)
    assert not hasattr(soc, "etherbone") and not hasattr(soc, "ethcore_etherbone")
    top = (out / "gateware" / f"{BITSTREAM_NAME}.v").read_text()
    assert re.search(rf"^{HOSTLINK_MODULE} \w+\s*\(", top, re.M), "the eth link's engines are not instantiated"
    # No UDP/IP stack at all: nothing on the port answers ARP, ping or Etherbone.
    assert not re.search(r"etherbone|icmp|udp|_arp_", top, re.I)
    # The rest of the map the driver relies on is unchanged.
    regions = soc.bus.regions
    assert (regions["nic_dma"].origin, regions["nic_dma"].size) == (amap.DMA_RAM_BASE, amap.DMA_RAM_SIZE)
    csrs = dict(re.findall(r"^csr_register,(\w+),(0x[0-9a-f]+),", (out / "csr.csv").read_text(), re.M))
    assert int(csrs["host_rx_dropped"], 16) == amap.HOST_RX_DROPPED, csrs
    # The board's NIC, with or without Etherbone, carries its DMA firewall.
    nic_v = (out / "nic" / f"{NIC_MODULE}.v").read_text()
    assert re.search(r"^module \S*dma_firewall", nic_v, re.M), "the board's NIC has no DMA firewall"


def test_a_port_needs_one_host_link() -> None:
    with pytest.raises(ValueError, match="Etherbone or the eth link"):
        SplitnicSoC.add_host_link(None, None, eth_link=False, etherbone=False)
