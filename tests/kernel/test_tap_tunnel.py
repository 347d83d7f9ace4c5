"""The ``tap`` KernelTunnel against the host's real kernel, with network namespaces as peers.

Ref: hostdrv/splitnic/tunnel.py (the interface), tunnel_tap.py.
"""

from __future__ import annotations

import socket
import time

import pytest

from splitnic.errors import SplitnicError
from splitnic.tunnel import KernelTunnel, open_tunnel, parse_mac
from splitnic.tunnel_pump import TunnelPump

from splitnic_lab.veth_lab import KERNEL_IP, PREFIX, Lab, carrier, inside, link, ping, sh, tcp_transfer, udp_frame, unique

PEER_MAC = parse_mac("02:00:5e:00:53:02")
FAKE_IP = "198.18.0.9"


def _open_in(lab: Lab, **kw) -> KernelTunnel:
    """A TAP tunnel in K, up, carrier on, with K's address."""
    with inside(lab.k):
        tun = open_tunnel("tap", unique("tp"), **kw)
        tun.set_admin_up()
    tun.set_carrier(True)
    lab.address_kernel_side(tun.name)
    return tun


def test_open_tunnel_rejects_an_unknown_kind() -> None:
    with pytest.raises(SplitnicError, match="--kernel must be one of auto, stub, tap, not 'tunnel'"):
        open_tunnel("tunnel")


def test_stub_without_the_module_is_a_clear_error() -> None:
    # The host kernel has no module support, so /dev/splitnic cannot exist here.
    with pytest.raises(SplitnicError, match="no /dev/splitnic: load the stub module"):
        open_tunnel("stub", "snicx")


def test_auto_picks_tap_without_the_module(lab: Lab) -> None:
    with inside(lab.k):
        tun = open_tunnel("auto", unique("ta"), parse_mac("02:00:5e:00:53:01"), mtu=1400)
    with tun:
        assert tun.kind == "tap"
        info = link(lab.k, tun.name)
        assert info["address"] == "02:00:5e:00:53:01"
        assert info["mtu"] == 1400
        assert "LOWER_UP" not in info["flags"]


def test_carrier_follows_set_carrier(lab: Lab) -> None:
    with _open_in(lab) as tun:
        assert carrier(lab.k, tun.name)
        tun.set_carrier(False)
        assert not carrier(lab.k, tun.name)
        tun.set_carrier(True)
        assert carrier(lab.k, tun.name)


def test_recv_burst_returns_the_frames_the_kernel_sent(lab: Lab) -> None:
    with _open_in(lab) as tun:
        sh("ip", "-n", lab.k, "neigh", "replace", FAKE_IP, "lladdr", "02:00:5e:00:53:02", "dev", tun.name)
        with inside(lab.k):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            for i in range(5):
                s.sendto(b"to-the-wire-%d" % i, (FAKE_IP, 4242))
        seen = set()
        deadline = time.monotonic() + 5
        while len(seen) < 5 and time.monotonic() < deadline:
            tun.wait(0.05)
            for frame in tun.recv_burst(64):
                if frame[:6] == PEER_MAC and frame[12:14] == b"\x08\x00" and frame[23] == 17:
                    assert frame[6:12] == tun.mac
                    seen.add(bytes(frame[42:]))
        assert seen == {b"to-the-wire-%d" % i for i in range(5)}


def test_send_burst_frames_reach_a_socket(lab: Lab) -> None:
    with _open_in(lab) as tun:
        with inside(lab.k):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            s.bind((KERNEL_IP, 0))
            s.settimeout(5)
            port = s.getsockname()[1]
            frames = [udp_frame(tun.mac, PEER_MAC, FAKE_IP, KERNEL_IP, 999, port, b"from-the-wire-%d" % i)
                      for i in range(8)]
            frames.insert(3, b"\x01" * 10)  # shorter than an Ethernet header: taken and dropped
            assert tun.send_burst(frames) == 9
            got = {s.recv(100) for _ in range(8)}
        assert got == {b"from-the-wire-%d" % i for i in range(8)}


def test_pump_moves_frames_both_ways_between_two_tunnels(lab: Lab) -> None:
    """A tunnel can be a pump's port: two TAP interfaces in K and P joined by one pump."""
    with _open_in(lab) as k_side:
        with inside(lab.p):
            p_side = open_tunnel("tap", unique("tq"))
            p_side.set_admin_up()
        with p_side:
            p_side.set_carrier(True)
            sh("ip", "-n", lab.p, "addr", "add", f"198.18.1.2/{PREFIX}", "dev", p_side.name)
            sh("ip", "-n", lab.k, "addr", "add", f"198.18.1.1/{PREFIX}", "dev", k_side.name)

            class Port:  # p_side as a FramePort
                rx_burst = p_side.recv_burst
                tx_burst = p_side.send_burst
                fileno = p_side.fileno

            pump = TunnelPump(Port(), k_side)
            thread = pump.run_in_thread()
            try:
                result = sh("ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", "198.18.1.1", netns=lab.p,
                            check=False, timeout=20)
            finally:
                pump.stop()
                thread.join(5)
            assert not thread.is_alive()
            assert result.returncode == 0, result.stdout
            assert pump.stats.to_kernel >= 3 and pump.stats.to_port >= 3


def test_ping_and_tcp_through_the_user_space_bridge(lab: Lab) -> None:
    bridge = lab.start_bridge("tap", unique("tb"))
    lab.address_kernel_side(bridge.ifname)
    result = ping(lab, count=3)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 received" in result.stdout
    sent, received = tcp_transfer(lab, 1 << 20)
    assert received == sent
    stats = link(lab.k, bridge.ifname)["stats64"]
    assert stats["rx"]["bytes"] > 1 << 20 and stats["tx"]["packets"] > 3
    assert bridge.stop() == 0
    assert bridge.stats["to_kernel"] >= stats["rx"]["packets"] - 10


def test_bridge_reports_a_bad_backend_in_one_line(lab: Lab) -> None:
    with pytest.raises(RuntimeError, match="bridge: error: no /dev/splitnic"):
        lab.start_bridge("stub", unique("tb"))
