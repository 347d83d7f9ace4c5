"""The ``stub`` KernelTunnel on splitnic.ko (runs inside the guest).

Ref: spec/splitnic_spec/tunnel.py; hostdrv/kmod/splitnic.c.
"""

from __future__ import annotations

import socket
import subprocess
import time

import splitnic_spec as nic_spec
from splitnic_spec import tunnel as spec

from splitnic.tunnel import open_tunnel, parse_mac
from splitnic.tunnel_stub import StubTunnel, _open_device, stub_info
from splitnic_lab.veth_lab import KERNEL_IP, Lab, carrier, inside, link, ping, sh, tcp_transfer, udp_frame, unique

PEER_MAC = parse_mac("02:00:5e:00:53:02")
FAKE_IP = "198.18.0.9"


def _stub_in(lab: Lab, **kw) -> StubTunnel:
    """A stub tunnel in K: created, up, carrier on, with K's address."""
    with inside(lab.k):
        tun = StubTunnel.open(unique("sn"), kw.pop("mac", None), kw.pop("mtu", 1500), mode="create", **kw)
        tun.set_admin_up()
    tun.set_carrier(True)
    lab.address_kernel_side(tun.name)
    sh("ip", "-n", lab.k, "neigh", "replace", FAKE_IP, "lladdr", "02:00:5e:00:53:02", "dev", tun.name)
    return tun


def _udp_socket(lab: Lab) -> socket.socket:
    with inside(lab.k):
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def _dmesg() -> str:
    return subprocess.run(["dmesg"], capture_output=True, text=True).stdout


def test_info_matches_this_spec(module: None) -> None:
    import os
    fd = _open_device()
    try:
        info = stub_info(fd)
    finally:
        os.close(fd)
    assert info["spec_hash"] == spec.SPEC_HASH
    assert info["version"] == spec.constant("VERSION")
    assert info["nic_spec_hash"] == nic_spec.SPEC_HASH     # for bug reports; nobody checks it


def test_auto_picks_the_stub_and_create_sets_name_mac_mtu(lab: Lab) -> None:
    name = unique("sn")
    with inside(lab.k):
        tun = open_tunnel("auto", name, parse_mac("02:00:5e:00:53:01"), mtu=1400)
    try:
        assert tun.kind == "stub" and tun.created and tun.name == name
        info = link(lab.k, name)
        assert info["address"] == "02:00:5e:00:53:01" and info["mtu"] == 1400
        assert "LOWER_UP" not in info["flags"]
        summary = [line for line in _dmesg().splitlines() if f"{name}: splitnic tunnel interface" in line]
        assert len(summary) == 1 and "02:00:5e:00:53:01" in summary[0] and "MTU 1400" in summary[0]
        drvinfo = sh("ethtool", "-i", name, netns=lab.k).stdout
        assert "driver: splitnic" in drvinfo
        assert f"version: uapi {spec.VERSION_MAJOR}.{spec.VERSION_MINOR}" in drvinfo
    finally:
        tun.destroy()
    assert sh("ip", "-n", lab.k, "link", "show", name, check=False).returncode != 0


def test_template_name_and_random_mac(lab: Lab) -> None:
    with inside(lab.k):
        tun = StubTunnel.open("snt%d", None, 0, mode="create")
    try:
        assert tun.name.startswith("snt") and tun.name[3:].isdigit()
        assert tun.mtu == spec.constant("MTU_DEFAULT")
        assert tun.mac[0] & 0x02 and not tun.mac[0] & 0x01  # locally administered unicast
    finally:
        tun.destroy()


def test_carrier_follows_set_carrier(lab: Lab) -> None:
    tun = _stub_in(lab)
    try:
        assert carrier(lab.k, tun.name)
        tun.set_carrier(False)
        assert not carrier(lab.k, tun.name)
    finally:
        tun.destroy()


def test_recv_burst_gets_kernel_frames_and_poll_wakes(lab: Lab) -> None:
    tun = _stub_in(lab)
    try:
        # Without IPv6 the kernel sends nothing on its own (router solicitations, MLD reports and
        # DAD come on timers of up to seconds, and one arriving in the quiet check below looked
        # like a spurious wake-up); then drain what it sent already.
        sh("ip", "netns", "exec", lab.k, "sysctl", "-qw", f"net.ipv6.conf.{tun.name}.disable_ipv6=1")
        time.sleep(0.3)
        tun.recv_burst(256)
        assert not tun.wait(0.05)
        with _udp_socket(lab) as s:
            for i in range(20):
                s.sendto(b"to-the-wire-%d" % i, (FAKE_IP, 4242))
        assert tun.wait(2.0)
        seen = []
        deadline = time.monotonic() + 5
        while len(seen) < 20 and time.monotonic() < deadline:
            tun.wait(0.05)
            for frame in tun.recv_burst(8):
                if frame[:6] == PEER_MAC and frame[23] == 17:
                    assert frame[6:12] == tun.mac
                    seen.append(frame[42:])
        assert seen == [b"to-the-wire-%d" % i for i in range(20)]
        assert link(lab.k, tun.name)["stats64"]["tx"]["packets"] >= 20
    finally:
        tun.destroy()


def test_send_burst_delivers_to_a_socket_and_counts(lab: Lab) -> None:
    tun = _stub_in(lab)
    try:
        with _udp_socket(lab) as s:
            s.bind((KERNEL_IP, 0))
            s.settimeout(5)
            port = s.getsockname()[1]
            before = link(lab.k, tun.name)["stats64"]["rx"]
            frames = [udp_frame(tun.mac, PEER_MAC, FAKE_IP, KERNEL_IP, 999, port, b"from-the-wire-%03d" % i)
                      for i in range(100)]
            frames.insert(50, b"\x01" * 10)  # shorter than an Ethernet header: dropped by the module
            taken = 0
            while taken < len(frames):
                taken += tun.send_burst(frames[taken:])
            got = sorted(s.recv(100) for _ in range(100))
        assert got == sorted(b"from-the-wire-%03d" % i for i in range(100))
        after = link(lab.k, tun.name)["stats64"]["rx"]
        assert after["packets"] - before["packets"] == 100
        assert after["errors"] - before["errors"] == 1
        assert after["bytes"] - before["bytes"] == sum(len(f) for f in frames) - 10
    finally:
        tun.destroy()


def test_full_ring_stops_the_queue_and_consuming_restarts_it(lab: Lab) -> None:
    tun = _stub_in(lab, k2u_log2=4)  # 16 entries
    try:
        time.sleep(0.3)
        tun.recv_burst(64)
        with _udp_socket(lab) as s:
            s.setblocking(False)
            sent = 0
            for i in range(400):
                try:
                    s.sendto(b"x%d" % i, (FAKE_IP, 4242))
                    sent += 1
                except BlockingIOError:
                    break
        time.sleep(0.3)
        first = tun.recv_burst(1000)
        assert len(first) == 16, "the ring holds 16 frames; the rest wait in the qdisc"
        total = len(first)
        deadline = time.monotonic() + 10
        while total < min(sent, 400) - 5 and time.monotonic() < deadline:
            tun.wait(0.05)  # poll() restarts the stopped queue
            total += len(tun.recv_burst(1000))
        assert total > 16 * 4, f"only {total} of {sent} frames came through after the ring filled"
    finally:
        tun.destroy()


def test_mtu_must_fit_the_ring_slots(lab: Lab) -> None:
    tun = _stub_in(lab, slot_size=2048)
    try:
        largest = 2048 - spec.constant("FRAME_OVERHEAD")    # 2026: header and two VLAN tags
        assert sh("ip", "-n", lab.k, "link", "set", tun.name, "mtu", str(largest)).returncode == 0
        bad = sh("ip", "-n", lab.k, "link", "set", tun.name, "mtu", str(largest + 1), check=False)
        assert bad.returncode != 0
        assert link(lab.k, tun.name)["mtu"] == largest
    finally:
        tun.destroy()


def test_jumbo_mtu_with_big_slots(lab: Lab) -> None:
    tun = _stub_in(lab, mtu=9000)
    try:
        assert tun._slot == 16384
        assert link(lab.k, tun.name)["mtu"] == 9000
        with _udp_socket(lab) as s:
            s.bind((KERNEL_IP, 0))
            s.settimeout(5)
            payload = bytes(range(256)) * 34  # 8704 bytes
            frame = udp_frame(tun.mac, PEER_MAC, FAKE_IP, KERNEL_IP, 1, s.getsockname()[1], payload)
            assert tun.send_burst([frame]) == 1
            assert s.recv(9000) == payload
    finally:
        tun.destroy()


def test_ping_and_tcp_through_the_stub_bridge(lab: Lab) -> None:
    bridge = lab.start_bridge("stub", unique("sb"))
    lab.address_kernel_side(bridge.ifname)
    result = ping(lab, count=3)
    assert result.returncode == 0, result.stdout + result.stderr
    sent, received = tcp_transfer(lab, 256 << 10)
    assert received == sent
    stats = link(lab.k, bridge.ifname)["stats64"]
    assert stats["rx"]["bytes"] > 256 << 10 and stats["rx"]["errors"] == 0
    assert bridge.stop() == 0
    assert bridge.stats["to_kernel"] >= 180


def test_splitnic_up_with_the_stub_module(module: None) -> None:
    """The real ``splitnic up`` CLI on the stub backend, a veth end in the NIC's place."""
    import signal
    with Lab(wire_in_k=True) as lab:
        name = unique("su")
        up = lab.start_up("auto", name)
        assert up.status.startswith(f"{name} up: stub tunnel, MAC ")
        lab.address_kernel_side(name)
        result = ping(lab, count=3)
        assert result.returncode == 0, result.stdout + result.stderr
        status, out = up.stop(signal.SIGTERM)
        assert status == 0 and out.startswith(f"{name} down: to kernel ")
        assert not carrier(lab.k, name)  # the stub keeps the interface, carrier down
        with inside(lab.k):
            StubTunnel.open(name, None, 0, mode="attach").destroy()
