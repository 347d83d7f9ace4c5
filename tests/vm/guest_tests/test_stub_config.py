"""The kernel's configuration toward user space and the NIC's state toward the kernel's tools (inside the guest).

Ref: spec/splitnic_spec/tunnel.py (Config, Publish, NIC_COUNTERS);
hostdrv/splitnic/tunnel_stub_control.py; hostdrv/kmod/splitnic.c.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import re
import select
import time
from typing import Iterator

import pytest

from splitnic_spec import tunnel as spec

from splitnic.tunnel import format_mac, parse_mac
from splitnic.tunnel_stub import StubTunnel
from splitnic_lab.veth_lab import inside, link, sh, unique

C = spec.constant


@pytest.fixture
def tun(module: None) -> Iterator[StubTunnel]:
    """A stub interface in a namespace of its own (IPv6 on, as a fresh namespace has it), up, carrier on."""
    ns = unique("snc")
    sh("ip", "netns", "add", ns)
    try:
        with inside(ns):
            t = StubTunnel.open(unique("sc"), parse_mac("02:00:5e:00:53:11"), 1500, mode="create",
                                slot_size=C("SLOT_SIZE_MAX"))
            t.netns = ns
            t.set_admin_up()
        t.set_carrier(True)
        # Settle: with carrier, IPv6 adds a link-local address and joins its solicited-node group.
        deadline = time.monotonic() + 10
        while "33:33:ff:" not in sh("ip", "-n", ns, "maddress", "show", "dev", t.name).stdout:
            assert time.monotonic() < deadline, "IPv6 never joined a solicited-node group"
            time.sleep(0.1)
        yield t
        t.destroy()
    finally:
        sh("ip", "netns", "del", ns, check=False)


def _pri(t: StubTunnel, timeout: float) -> bool:
    poller = select.poll()
    poller.register(t.fileno(), select.POLLPRI)
    return any(ev & select.POLLPRI for _, ev in poller.poll(int(timeout * 1000)))


def _ip(t: StubTunnel, *args: str) -> None:
    sh("ip", "-n", t.netns, "link", "set", t.name, *args)


def test_first_poll_reports_the_configuration_then_reading_clears_it(tun: StubTunnel) -> None:
    assert _pri(tun, 0)
    cfg = tun.read_config()
    assert cfg.mac == parse_mac("02:00:5e:00:53:11") and cfg.mtu == 1500 and cfg.up
    assert not cfg.promisc and not cfg.allmulti and not cfg.truncated
    assert not tun.config_pending()
    assert not _pri(tun, 0.2)


def test_mac_change_wakes_the_driver_and_reads_back(tun: StubTunnel) -> None:
    tun.read_config()
    _ip(tun, "address", "02:00:5e:00:53:77")
    assert _pri(tun, 2.0), "no POLLPRI after the MAC change"
    assert tun.read_config().mac == parse_mac("02:00:5e:00:53:77")


def test_mtu_9000_is_accepted_reported_and_9001_refused(tun: StubTunnel) -> None:
    tun.read_config()
    _ip(tun, "mtu", "9000")
    assert _pri(tun, 2.0)
    assert tun.read_config().mtu == 9000 == link(tun.netns, tun.name)["mtu"]
    assert sh("ip", "-n", tun.netns, "link", "set", tun.name, "mtu", "9001", check=False).returncode != 0
    assert sh("ip", "-n", tun.netns, "link", "set", tun.name, "mtu", "67", check=False).returncode != 0
    assert tun.read_config().mtu == 9000


def test_promisc_and_allmulti_reach_the_driver(tun: StubTunnel) -> None:
    tun.read_config()
    _ip(tun, "promisc", "on")
    assert _pri(tun, 2.0) and tun.read_config().promisc
    _ip(tun, "allmulticast", "on")
    assert _pri(tun, 2.0) and tun.read_config().allmulti
    _ip(tun, "promisc", "off")
    _ip(tun, "allmulticast", "off")
    cfg = tun.read_config()
    assert not cfg.promisc and not cfg.allmulti


def test_multicast_list_has_ipv6_groups_and_added_ones(tun: StubTunnel) -> None:
    cfg = tun.read_config()
    assert parse_mac("33:33:00:00:00:01") in cfg.mc_list, [format_mac(m) for m in cfg.mc_list]
    sh("ip", "-n", tun.netns, "maddress", "add", "01:00:5e:01:02:03", "dev", tun.name)
    assert _pri(tun, 2.0)
    assert parse_mac("01:00:5e:01:02:03") in tun.read_config().mc_list
    sh("ip", "-n", tun.netns, "maddress", "del", "01:00:5e:01:02:03", "dev", tun.name)
    assert _pri(tun, 2.0)
    assert parse_mac("01:00:5e:01:02:03") not in tun.read_config().mc_list


def test_going_down_and_up_is_reported(tun: StubTunnel) -> None:
    tun.read_config()
    _ip(tun, "down")
    assert _pri(tun, 2.0) and not tun.read_config().up
    _ip(tun, "up")
    assert _pri(tun, 2.0) and tun.read_config().up


def test_a_short_address_buffer_is_truncated_not_overrun(tun: StubTunnel) -> None:
    buf = (ctypes.c_uint64 * 3)(0xAA, 0xBB, 0xCC)
    req = bytearray(spec.CONFIG.pack(addrs_max=1, addrs=ctypes.addressof(buf)))
    fcntl.ioctl(tun.fileno(), C("IOC_GET_CONFIG"), req, True)
    got = spec.CONFIG.unpack(req)
    assert got["mc_count"] >= 2
    assert got["flags"] & spec.CONFIG.member("flags").bit("TRUNCATED").mask
    assert buf[0] not in (0xAA, 0) and buf[1] == 0xBB and buf[2] == 0xCC


# --------------------------------------------------------------------------- published NIC state


def _counters() -> dict[str, int]:
    """Distinct known values for every NIC counter."""
    return {name: 1000 * (i + 1) + i for i, name in enumerate(spec.NIC_COUNTERS)}


def test_ethtool_shows_the_published_nic_counters_and_ip_s_link_its_own(tun: StubTunnel) -> None:
    counters = _counters()
    own = link(tun.netns, tun.name)["stats64"]
    tun.publish_stats(counters, link_speed_mbps=1000, duplex="full", fw_version="fw 0.3 build 1a2b3c4d",
                      bus_info="sim:/tmp/snic.sock")
    # ip -s link: the interface's own frames (IPv6 may send a few meanwhile), never the NIC's totals.
    stats = link(tun.netns, tun.name)["stats64"]
    for d in ("rx", "tx"):
        for k in ("packets", "bytes", "errors", "dropped"):
            assert own[d][k] <= stats[d][k] < 1000, (d, k, own, stats)

    out = sh("ethtool", "-S", tun.name, netns=tun.netns).stdout
    shown = dict((k, int(v)) for k, v in re.findall(r"^\s+(\w+): (\d+)$", out, re.M))
    assert {k: shown[k] for k in spec.NIC_COUNTERS} == counters
    assert "tunnel_rx_packets" in shown and "tunnel_tx_dropped" in shown

    info = sh("ethtool", "-i", tun.name, netns=tun.netns).stdout
    assert "driver: splitnic" in info
    assert f"version: uapi {spec.VERSION_MAJOR}.{spec.VERSION_MINOR}" in info
    assert "firmware-version: fw 0.3 build 1a2b3c4d" in info and "bus-info: sim:/tmp/snic.sock" in info

    settings = sh("ethtool", tun.name, netns=tun.netns).stdout
    assert "Speed: 1000Mb/s" in settings and "Duplex: Full" in settings and "Link detected: yes" in settings


def test_link_settings_follow_the_carrier_and_what_was_published(tun: StubTunnel) -> None:
    tun.publish_stats(None, link_speed_mbps=100, duplex="half")
    settings = sh("ethtool", tun.name, netns=tun.netns).stdout
    assert "Speed: 100Mb/s" in settings and "Duplex: Half" in settings
    tun.set_carrier(False)
    settings = sh("ethtool", tun.name, netns=tun.netns, check=False).stdout
    assert "Speed: Unknown!" in settings and "Link detected: no" in settings


def test_counters_stay_until_the_next_publish(tun: StubTunnel) -> None:
    counters = _counters()
    tun.publish_stats(counters)
    tun.publish_stats(None, link_speed_mbps=10)  # only the link: counters kept
    out = sh("ethtool", "-S", tun.name, netns=tun.netns).stdout
    assert f"rx_ok: {counters['rx_ok']}" in out


@pytest.mark.parametrize("case", [
    ("flags", dict(flags=1)),
    ("count not COUNTERS", dict(count=3)),
    ("speed above SPEED_MAX", dict(speed=C("SPEED_MAX") + 1)),
    ("duplex 3", dict(duplex=3)),
    ("fw_version without NUL", {f"fw_version{i}": 0x4141414141414141 for i in range(4)}),
    ("bus_info with a control character", dict(bus_info0=0x0A41)),
    ("garbage after the NUL", dict(fw_version0=0x41, fw_version1=0x42)),
    ("rings without queues", dict(rx_ring=256, tx_ring=256, ring_max=4096)),
    ("a ring above ring_max", dict(rx_ring=512, tx_ring=256, ring_max=256, rx_queues=2, tx_queues=2)),
    ("a ring not a power of two", dict(rx_ring=200, tx_ring=256, ring_max=4096, rx_queues=2, tx_queues=2)),
    ("ring_max above the NIC's", dict(rx_ring=256, tx_ring=256, ring_max=8192, rx_queues=2, tx_queues=2)),
    ("more RX queues than the NIC's map", dict(rx_ring=256, tx_ring=256, ring_max=4096,
                                               rx_queues=C("RX_QUEUES_MAX") + 1, tx_queues=2)),
], ids=lambda c: c[0])
def test_bad_publish_requests_are_einval(tun: StubTunnel, case: tuple) -> None:
    req = bytearray(spec.PUBLISH.pack(**case[1]))
    with pytest.raises(OSError) as e:
        fcntl.ioctl(tun.fileno(), C("IOC_PUBLISH"), req)
    assert e.value.errno == errno.EINVAL


def test_bad_pointers_in_publish_and_get_config_are_efault(tun: StubTunnel) -> None:
    for addr in (0, 0x10, 0xFFFF_FFFF_FFFF_F000):
        req = bytearray(spec.PUBLISH.pack(count=C("COUNTERS"), counters=addr))
        with pytest.raises(OSError) as e:
            fcntl.ioctl(tun.fileno(), C("IOC_PUBLISH"), req)
        assert e.value.errno == errno.EFAULT
        req = bytearray(spec.CONFIG.pack(addrs_max=8, addrs=addr))
        with pytest.raises(OSError) as e:
            fcntl.ioctl(tun.fileno(), C("IOC_GET_CONFIG"), req, True)
        assert e.value.errno == errno.EFAULT
    for bad in (dict(addrs_max=C("ADDR_MAX") + 1), dict(mtu=1500), dict(generation=1), dict(mac=1)):
        with pytest.raises(OSError) as e:
            fcntl.ioctl(tun.fileno(), C("IOC_GET_CONFIG"), bytearray(spec.CONFIG.pack(**bad)), True)
        assert e.value.errno == errno.EINVAL, bad
    assert tun.read_config().mtu == 1500  # nothing broke


def test_config_events_reach_a_handle_without_rings(module: None) -> None:
    """A driver may read the configuration before it sets up its rings; poll() still wakes it."""
    import os
    import threading
    from splitnic import tunnel_stub_control as control
    from splitnic_lab.veth_lab import unique as unique_name
    fd = os.open("/dev/splitnic", os.O_RDWR)
    try:
        name = unique_name("sr").encode().ljust(16, b"\0")
        req = bytearray(spec.IF_REQ.pack(name_lo=int.from_bytes(name[:8], "little"),
                                         name_hi=int.from_bytes(name[8:], "little")))
        fcntl.ioctl(fd, C("IOC_CREATE"), req, True)
        ifname = name.rstrip(b"\0").decode()
        assert control.config_pending(fd)
        assert control.read_config(fd).mtu == C("MTU_DEFAULT")
        assert not control.config_pending(fd)
        timer = threading.Timer(0.3, sh, ("ip", "link", "set", ifname, "mtu", "1400"))
        timer.start()
        poller = select.poll()
        poller.register(fd, select.POLLPRI)
        woke = poller.poll(5000)
        timer.join()
        assert woke and woke[0][1] & select.POLLPRI
        assert control.read_config(fd).mtu == 1400
        fcntl.ioctl(fd, C("IOC_DESTROY"))
    finally:
        os.close(fd)
