"""snic0 on the stub backend as a complete Linux interface: the host's TAP checks again, on splitnic.ko.

IPv6, the NIC's counters in ``ethtool`` (``ip -s link``: snic0's own), ``ethtool -C rx-usecs`` into
the NIC's interrupt moderation, ``ethtool -N/-n`` on the steering table ``splitnic rules`` edits, a MAC change, MTU 9000 (``splitnic up
--max-mtu 9000`` sizes the stub's ring slots for it).

Ref: tests/kernel/test_linux_interface.py (the same checks with TAP, on the host);
hostdrv/splitnic/kernel_config.py (the stub's configuration events -> the NIC, the NIC's counters ->
the stub); spec/splitnic_spec/tunnel.py (NIC_COUNTERS).

``splitnic up --kernel stub`` drives the software NIC (in this process), whose wire is a TAP in a
peer namespace.  One ``splitnic up`` serves every check: under TCG each process start costs
tens of seconds.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from typing import Iterator

import pytest

from splitnic_lab.netns import inside, sh, unique
from splitnic.rule_control import default_path, request
from splitnic_spec import CSR_MAP, NUM_RX_QUEUES, NUM_TX_QUEUES
from splitnic_spec import tunnel as spec

from tests.kernel import test_linux_interface as host


@pytest.fixture
def wire(module: None) -> Iterator[host.Wire]:
    w = host.Wire("soft", kernel="stub")
    try:
        yield w
    finally:
        w.close()


def _offset(counter: str) -> int:
    """The register of a NIC counter as Nic.stats() names it (rx_ok, rxq0_packets, steer3_hits ...)."""
    for prefix, array in (("rxq", "RXQ"), ("txq", "TXQ"), ("steer", "STEER")):
        m = re.fullmatch(prefix + r"(\d+)_(\w+)", counter)
        if m:
            return CSR_MAP.array(array).offset(int(m.group(1)), m.group(2).upper())
    return CSR_MAP.register("STAT_" + counter.upper()).offset


def _nic_counters(wire: host.Wire) -> dict[str, int]:
    # The software NIC started at 0 in this test and counts less than 2**32: its registers are
    # what splitnic stats would show (the driver only widens them).
    return {name: wire.sim.read_reg(_offset(name)) for name in spec.NIC_COUNTERS}


@pytest.mark.timeout(400)
def test_ipv6_counters_mac_change_and_jumbo_frames_on_the_stub(wire: host.Wire) -> None:
    name = unique("sb")
    up = wire.up(name, "--max-mtu", "9000")     # ring slots for jumbo frames
    try:
        # IPv6: SLAAC link-local, DAD and neighbour discovery through the multicast hash filter.
        host._wait(lambda: host._ipv6_ready(wire.host_ns, name), 60, f"IPv6 addresses on {name}")
        host._wait(lambda: host._ipv6_ready(wire.peer_ns, wire.tap), 60, f"IPv6 addresses on {wire.tap}")
        r = host._ping(wire.peer_ns, "-6", host.HOST_IP6)
        assert r.returncode == 0, r.stdout + r.stderr
        r = host._ping(wire.host_ns, "-6", f"{host._link_local(wire.peer_ns, wire.tap)}%{name}")
        assert r.returncode == 0, r.stdout + r.stderr
        host._tcp6(wire, 16 << 10)

        # The NIC's counters, published about once a second: what ethtool shows is a snapshot taken
        # between two reads of the registers. A loaded TCG guest can hold the driver's publisher
        # back past any fixed sleep, so wait (bounded) for a publication newer than the first read.
        time.sleep(2)
        before = _nic_counters(wire)
        deadline = time.monotonic() + 30
        while True:
            out = sh("ethtool", "-S", name, netns=wire.host_ns).stdout
            stats64 = json.loads(sh("ip", "-s", "-j", "link", "show", name, netns=wire.host_ns).stdout)[0]["stats64"]
            after = _nic_counters(wire)
            shown = {k: int(v) for k, v in re.findall(r"^\s+(\w+): (\d+)$", out, re.M)}
            if all(shown.get(c, -1) >= before[c] for c in spec.NIC_COUNTERS) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for counter in spec.NIC_COUNTERS:
            assert before[counter] <= shown[counter] <= after[counter], (counter, before[counter], after[counter], out)
        assert shown["rxq0_packets"] >= 6 and shown["tx_ok"] >= 6, out
        # ip -s link counts snic0's own frames: the ones of queue 0 (the kernel's), no more.
        assert 6 <= stats64["rx"]["packets"] <= after["rxq0_packets"], (stats64, after)
        info = sh("ethtool", "-i", name, netns=wire.host_ns).stdout
        assert "driver: splitnic" in info and "firmware-version: none (gateware " in info, info
        assert "bus-info: mmio:" in info or "bus-info: ..." in info, info
        settings = sh("ethtool", name, netns=wire.host_ns).stdout
        assert "Speed: 1000Mb/s" in settings and "Duplex: Full" in settings, settings

        # ethtool -C rx-usecs reaches the NIC's interrupt moderation (IRQ_COALESCE, in core cycles);
        # ethtool -c shows what the driver set. splitnic up started at its default of 50 us.
        coalesce = CSR_MAP.register("IRQ_COALESCE").offset
        default = wire.sim.read_reg(coalesce)
        assert default and "rx-usecs: 50" in sh("ethtool", "-c", name, netns=wire.host_ns).stdout
        sh("ethtool", "-C", name, "rx-usecs", "120", netns=wire.host_ns)
        deadline = time.monotonic() + 30
        while wire.sim.read_reg(coalesce) != default * 120 // 50 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert wire.sim.read_reg(coalesce) == default * 120 // 50, (default, wire.sim.read_reg(coalesce))
        while "rx-usecs: 120" not in sh("ethtool", "-c", name, netns=wire.host_ns).stdout:
            assert time.monotonic() < deadline, "ethtool -c never showed what the driver set"
            time.sleep(0.2)

        # ethtool -l: the NIC's queues as the driver published them (the software NIC has the map's all).
        channels = sh("ethtool", "-l", name, netns=wire.host_ns).stdout
        maxima, current = channels.split("Current hardware settings:")
        assert f"RX:\t\t{NUM_RX_QUEUES}\n" in maxima and f"TX:\t\t{NUM_TX_QUEUES}\n" in maxima, channels
        assert "RX:\t\t1\n" in current, channels
        _ethtool_steering(wire, name)

        # A MAC change reaches the NIC: unicast to the new address is received.
        sh("ip", "-n", wire.host_ns, "link", "set", name, "address", "02:00:5e:00:53:78")
        sh("ip", "-n", wire.peer_ns, "neigh", "flush", "dev", wire.tap)
        r = host._ping(wire.peer_ns, host.HOST_IP)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "02:00:5e:00:53:78" in sh("ip", "-n", wire.peer_ns, "neigh", "show", host.HOST_IP).stdout

        # MTU 9000 on the stub's interface reaches the NIC: 8042-byte frames each way.
        for netns, dev in ((wire.host_ns, name), (wire.peer_ns, wire.tap)):
            sh("ip", "-n", netns, "link", "set", dev, "mtu", "9000")
        r = host._ping(wire.peer_ns, "-M", "do", "-s", "8000", host.HOST_IP, count=2, interval=1)
        assert r.returncode == 0, r.stdout + r.stderr
        r = host._ping(wire.host_ns, "-M", "do", "-s", "8000", host.PEER_IP, count=2, interval=1)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        status, out = up.stop(signal.SIGTERM)
    assert status == 0, out


def _udp_to_kernel(wire: host.Wire, port: int, count: int) -> None:
    with inside(wire.peer_ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        for i in range(count):
            s.sendto(b"steer %d" % i, (host.HOST_IP, port))
            time.sleep(0.01)


def _ethtool_steering(wire: host.Wire, name: str) -> None:
    """ethtool -N adds to the table splitnic rules shows, frames follow it, -n lists both front ends'
    rules, delete removes it (splitnic.rule_ethtool, the module's RuleTable/RuleReq)."""
    def rules(op: str, **args) -> dict:
        # What `splitnic rules` sends (splitnic.rule_control), without a process start (seconds under TCG).
        return request(default_path(name), {"op": op, **args}, timeout=30)

    def listed() -> str:
        return "\n".join(rule for _i, rule, _q, _h in rules("list")["rules"])

    def wait(predicate, what: str) -> None:
        deadline = time.monotonic() + 30
        while not predicate():
            assert time.monotonic() < deadline, what
            time.sleep(0.2)

    rxq1 = CSR_MAP.array("RXQ").offset(1, "PACKETS")
    with inside(wire.host_ns):
        listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind((host.HOST_IP, 9000))
    listener.settimeout(0.5)
    with listener:
        added = sh("ethtool", "-N", name, "flow-type", "udp4", "dst-port", "9000", "action", "1",
                   netns=wire.host_ns).stdout
        assert "Added rule with ID 0" in added, added
        wait(lambda: "udp dport 9000 ethertype 0x0800 -> queue1" in listed(), "splitnic rules never showed it")
        before = wire.sim.read_reg(rxq1)
        _udp_to_kernel(wire, 9000, 20)
        wait(lambda: wire.sim.read_reg(rxq1) - before >= 20, "the frames did not go to RX queue 1")
        with pytest.raises(socket.timeout):
            listener.recv(100)                                  # ... and not to the kernel

        # A rule of the other front end is in ethtool -n too (app0 gets the next free queue, 2).
        rules("add", rule="ethertype 0x88b5 -> app0")
        listing = sh("ethtool", "-n", name, netns=wire.host_ns).stdout
        assert "Total 2 rules" in listing and "Ethertype: 0x88B5" in listing.split("Filter: 1")[1], listing
        assert "Direct to queue 2" in listing.split("Filter: 1")[1], listing

        sh("ethtool", "-N", name, "delete", "0", netns=wire.host_ns)
        wait(lambda: "dport 9000" not in listed(), "ethtool -N delete did not remove the rule")
        assert "Total 1 rules" in sh("ethtool", "-n", name, netns=wire.host_ns).stdout
        _udp_to_kernel(wire, 9000, 3)
        assert listener.recv(100).startswith(b"steer ")       # the kernel has port 9000 again
        # queue1 went with its last rule: RX queue 1 is the next application's.
        rules("add", rule="ethertype 0x88b6 -> app1")
        listing = sh("ethtool", "-n", name, netns=wire.host_ns).stdout
        assert "Direct to queue 1" in listing.split("Filter: 1")[1], listing
        rules("remove", index=1)
    rules("remove", index=0)
