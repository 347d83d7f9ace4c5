"""open_nic_uplink: queue pair 0 as the frame port of `splitnic up`."""

from __future__ import annotations

import time

from splitnic.kernel_path import open_nic_uplink
from splitnic.tunnel_pump import FramePort
from splitnic_spec import CSR_MAP

from .conftest import frame


def test_uplink_moves_bytes_frames_and_follows_the_link(softnic) -> None:
    link = CSR_MAP.register("LINK")
    uplink = open_nic_uplink(softnic.link)
    try:
        assert isinstance(uplink.port, FramePort)
        assert uplink.mtu == 1500 and len(uplink.mac) == 6 and uplink.mac != bytes(6)
        assert uplink.mac[0] & 0x02 and not uplink.mac[0] & 0x01  # locally administered unicast
        assert uplink.link_up() is False
        softnic.write_reg(link.offset, link.pack(UP=1, SPEED=link.field("SPEED").value("1000"), FULL_DUPLEX=1))
        assert uplink.link_up() is True
        inbound = [frame(dst=uplink.mac, size=100 + i) for i in range(3)]
        for f in inbound:
            softnic.inject(f)
        got: list = []
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            got += uplink.port.rx_burst(8)
        assert got == inbound and all(isinstance(f, bytes) for f in got)
        outbound = [frame(dst=b"\xff" * 6, src=uplink.mac, size=80)]
        assert uplink.port.tx_burst(outbound) == 1
        deadline = time.monotonic() + 10
        sent: list = []
        while not sent and time.monotonic() < deadline:
            sent = softnic.sent()
        assert sent == outbound
    finally:
        uplink.close()
