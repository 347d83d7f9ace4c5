"""snic0 as a complete Linux interface, with TAP on the host: IPv6, MAC and MTU changes, stats.

Ref: hostdrv/splitnic/kernel_config.py (the kernel's wanted state -> the NIC),
hostdrv/splitnic/tunnel_tap.py (TapControl), docs/registers.md (MC_HASH_*,
CTRL, MAX_FRAME).

Each test runs ``splitnic up --kernel tap`` in a host namespace H against a
NIC whose wire is a TAP interface in a peer namespace P, with IPv6 on in
both: the RTL NIC (SimNic, Verilator) and the software NIC (in this process).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Iterator

import pytest

from splitnic_lab.netns import add_netns, del_netns, inside, sh, unique
from splitnic_lab.sim_lab import HOST_IP, PEER_IP, PREFIX, start_wired_nic
from splitnic_lab.veth_lab import UpProcess, start_up
from splitnic_spec import CSR_MAP

SPLITNIC = Path(sys.executable).parent / "splitnic"
#: Unique local IPv6 addresses, only inside the test's namespaces.
HOST_IP6, PEER_IP6, PREFIX6 = "fd00:198:18::1", "fd00:198:18::2", 64


class Wire:
    """A NIC whose wire is TAP ``tap`` in namespace P (IPv4 and IPv6 addresses), and a host namespace H
    where ``splitnic up --kernel KERNEL`` runs (``stub`` in the QEMU guest: tests/vm/guest_tests)."""

    def __init__(self, kind: str, kernel: str = "tap") -> None:
        self.kernel = kernel
        self.host_ns, self.peer_ns, self.tap = unique("lh"), unique("lp"), unique("lw")
        add_netns(self.host_ns)
        add_netns(self.peer_ns)
        self.sim, self._end = start_wired_nic("verilator" if kind == "rtl" else "software", self.tap)
        self.link = self.sim.link
        sh("ip", "link", "set", self.tap, "netns", self.peer_ns)
        sh("ip", "-n", self.peer_ns, "addr", "add", f"{PEER_IP}/{PREFIX}", "dev", self.tap)
        sh("ip", "-n", self.peer_ns, "addr", "add", f"{PEER_IP6}/{PREFIX6}", "dev", self.tap)
        sh("ip", "-n", self.peer_ns, "link", "set", self.tap, "up")

    def up(self, name: str, *extra: str, timeout: float = 120) -> UpProcess:
        cmd = ["ip", "netns", "exec", self.host_ns, str(SPLITNIC), "up", "--link", self.link,
               "--kernel", self.kernel, "--name", name, *extra]
        up = start_up(cmd, name, timeout)
        sh("ip", "-n", self.host_ns, "addr", "add", f"{HOST_IP}/{PREFIX}", "dev", name)
        sh("ip", "-n", self.host_ns, "addr", "add", f"{HOST_IP6}/{PREFIX6}", "dev", name)
        return up

    def close(self) -> None:
        self._end()
        del_netns(self.host_ns)
        del_netns(self.peer_ns)


@pytest.fixture(params=["rtl", "soft"])
def wire(request: pytest.FixtureRequest) -> Iterator[Wire]:
    w = Wire(request.param)
    try:
        yield w
    finally:
        w.close()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def _ipv6_ready(netns: str, dev: str) -> bool:
    """Both the link-local (SLAAC) and the ULA address passed duplicate address detection."""
    out = sh("ip", "-n", netns, "-6", "addr", "show", "dev", dev).stdout
    return "fe80::" in out and HOST_IP6.rsplit(":", 1)[0] in out and "tentative" not in out


def _link_local(netns: str, dev: str) -> str:
    out = sh("ip", "-n", netns, "-6", "addr", "show", "dev", dev, "scope", "link").stdout
    return re.search(r"inet6 (fe80::[0-9a-f:]+)/64", out).group(1)


def _ping(netns: str, *args: str, count: int = 3, interval: float = 0.3,
          deadline: int = 60) -> subprocess.CompletedProcess:
    return sh("ping", "-n", "-c", str(count), "-i", str(interval), "-w", str(deadline), *args, netns=netns,
              check=False, timeout=deadline + 30)


def _mac(netns: str, dev: str) -> str:
    return re.search(r"link/ether ([0-9a-f:]{17})", sh("ip", "-n", netns, "link", "show", dev).stdout).group(1)


def _tcp6(wire: Wire, nbytes: int = 64 << 10) -> bytes:
    """``nbytes`` from the peer to H's kernel over TCP/IPv6 and back; returns what came back."""
    data = os.urandom(nbytes)
    with inside(wire.host_ns):
        server = socket.create_server((HOST_IP6, 0), family=socket.AF_INET6)
    server.settimeout(60)
    port = server.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(60)
                while chunk := conn.recv(65536):
                    conn.sendall(chunk)
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        with inside(wire.peer_ns):
            client = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        client.settimeout(60)
        with client:
            client.connect((HOST_IP6, port))
            client.sendall(data)
            client.shutdown(socket.SHUT_WR)
            back = bytearray()
            while chunk := client.recv(65536):
                back += chunk
    finally:
        server.close()
    assert bytes(back) == data, f"sent {nbytes} bytes over TCP/IPv6, got {len(back)} back"
    return bytes(back)


def test_ipv6_slaac_nd_ping6_and_tcp_through_snic0(wire: Wire) -> None:
    name = unique("v6")
    up = wire.up(name)
    try:
        # DAD and neighbour discovery need the NIC to take the solicited-node and all-nodes groups.
        _wait(lambda: _ipv6_ready(wire.host_ns, name), 30, f"IPv6 addresses on {name}")
        _wait(lambda: _ipv6_ready(wire.peer_ns, wire.tap), 30, f"IPv6 addresses on {wire.tap}")
        r = _ping(wire.peer_ns, "-6", HOST_IP6)
        assert r.returncode == 0, r.stdout + r.stderr
        r = _ping(wire.peer_ns, "-6", f"{_link_local(wire.host_ns, name)}%{wire.tap}")
        assert r.returncode == 0, r.stdout + r.stderr
        r = _ping(wire.host_ns, "-6", f"{_link_local(wire.peer_ns, wire.tap)}%{name}")
        assert r.returncode == 0, r.stdout + r.stderr
        _tcp6(wire)
    finally:
        status, out = up.stop(signal.SIGTERM)
    assert status == 0, out


def test_mac_change_then_unicast_receive(wire: Wire) -> None:
    name = unique("mc")
    up = wire.up(name)
    try:
        r = _ping(wire.peer_ns, HOST_IP)
        assert r.returncode == 0, r.stdout + r.stderr
        sh("ip", "-n", wire.host_ns, "link", "set", name, "address", "02:00:5e:00:53:77")
        sh("ip", "-n", wire.peer_ns, "neigh", "flush", "dev", wire.tap)
        # The peer learns the new address by ARP and sends unicast to it: the NIC must take it.
        r = _ping(wire.peer_ns, HOST_IP)
        assert r.returncode == 0, r.stdout + r.stderr
        neigh = sh("ip", "-n", wire.peer_ns, "neigh", "show", HOST_IP, "dev", wire.tap).stdout
        assert "02:00:5e:00:53:77" in neigh, neigh
    finally:
        status, out = up.stop(signal.SIGTERM)
    assert status == 0, out


def test_mtu_9000_and_8000_byte_frames_both_ways(wire: Wire) -> None:
    name = unique("jb")
    up = wire.up(name)
    try:
        sh("ip", "-n", wire.host_ns, "link", "set", name, "mtu", "9000")
        sh("ip", "-n", wire.peer_ns, "link", "set", wire.tap, "mtu", "9000")
        # 8000 bytes of ICMP payload: 8042-byte frames, not fragmented (-M do), each way.  Slowly,
        # and with static neighbours: the RTL simulator may take seconds per jumbo round trip, longer
        # than neighbour discovery waits, on a busy machine.
        sh("ip", "-n", wire.host_ns, "neigh", "replace", PEER_IP, "lladdr", _mac(wire.peer_ns, wire.tap),
           "dev", name, "nud", "permanent")
        sh("ip", "-n", wire.peer_ns, "neigh", "replace", HOST_IP, "lladdr", _mac(wire.host_ns, name),
           "dev", wire.tap, "nud", "permanent")
        r = _ping(wire.peer_ns, "-M", "do", "-s", "8000", HOST_IP, count=2, interval=3, deadline=120)
        assert r.returncode == 0, r.stdout + r.stderr
        r = _ping(wire.host_ns, "-M", "do", "-s", "8000", PEER_IP, count=2, interval=3, deadline=120)
        assert r.returncode == 0, r.stdout + r.stderr
        # And back to a standard MTU: ordinary frames still pass.
        sh("ip", "-n", wire.host_ns, "link", "set", name, "mtu", "1500")
        sh("ip", "-n", wire.peer_ns, "link", "set", wire.tap, "mtu", "1500")
        r = _ping(wire.peer_ns, "-s", "1400", HOST_IP)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        status, out = up.stop(signal.SIGTERM)
    assert status == 0, out


def test_stats_while_up_runs(wire: Wire) -> None:
    name = unique("st")
    up = wire.up(name)
    try:
        r = _ping(wire.peer_ns, HOST_IP)
        assert r.returncode == 0, r.stdout + r.stderr
        # The sim: link takes one client: splitnic stats asks the running splitnic up instead.
        got = subprocess.run([SPLITNIC, "stats", "--link", wire.link, "--json"], capture_output=True, text=True,
                             timeout=60)
        assert got.returncode == 0, got.stderr
        stats = json.loads(got.stdout)
        assert stats["rxq0_packets"] >= 3 and stats["tx_ok"] >= 3, stats
        table = subprocess.run([SPLITNIC, "stats", "--link", wire.link], capture_output=True, text=True, timeout=60)
        assert table.returncode == 0 and "rxq0_packets" in table.stdout, table.stderr
    finally:
        status, out = up.stop(signal.SIGTERM)
    assert status == 0, out
    # Once up has gone, stats attaches by itself again.
    alone = subprocess.run([SPLITNIC, "stats", "--link", wire.link, "--json"], capture_output=True, text=True,
                           timeout=60)
    assert alone.returncode == 0, alone.stderr


def test_receive_modes_follow_the_interface() -> None:
    """PROMISC, ALLMULTI, a multicast join and an MTU reach the software NIC's registers."""
    w = Wire("soft")
    name = unique("rm")
    ctrl, max_frame = CSR_MAP.register("CTRL"), CSR_MAP.register("MAX_FRAME")
    read = lambda reg: w.sim.read_reg(CSR_MAP.register(reg).offset)  # noqa: E731
    bit = lambda address: 1 << (zlib.crc32(bytes.fromhex(address.replace(":", ""))) & 63)  # noqa: E731
    mc_hash = lambda: read("MC_HASH_LO") | read("MC_HASH_HI") << 32  # noqa: E731
    up = w.up(name)
    try:
        _wait(lambda: mc_hash() & bit("33:33:00:00:00:01"), 10, "the all-nodes group in MC_HASH")
        sh("ip", "-n", w.host_ns, "link", "set", name, "promisc", "on")
        _wait(lambda: ctrl.field("PROMISC").get(read("CTRL")), 10, "CTRL.PROMISC")
        sh("ip", "-n", w.host_ns, "link", "set", name, "promisc", "off", "allmulticast", "on")
        _wait(lambda: not ctrl.field("PROMISC").get(read("CTRL")) and ctrl.field("ALLMULTI").get(read("CTRL")),
              10, "CTRL.ALLMULTI without PROMISC")
        sh("ip", "-n", w.host_ns, "maddr", "add", "01:00:5e:01:02:03", "dev", name)
        _wait(lambda: mc_hash() & bit("01:00:5e:01:02:03"), 10, "a joined group in MC_HASH")
        sh("ip", "-n", w.host_ns, "link", "set", name, "mtu", "4000")
        _wait(lambda: max_frame.field("LEN").get(read("MAX_FRAME")) == 4000 + 18 + 4
              and ctrl.field("JUMBO").get(read("CTRL")), 10, "MAX_FRAME for MTU 4000 with CTRL.JUMBO")
    finally:
        status, out = up.stop(signal.SIGTERM)
        w.close()
    assert status == 0, out


def test_a_frame_that_fits_nowhere_is_dropped_and_counted_not_fatal() -> None:
    """MTU 9100 on both ends: above what the NIC takes (MAX_FRAME_JUMBO); such frames are counted."""
    from splitnic.stats_control import query
    w = Wire("soft")
    name = unique("tl")
    up = w.up(name)
    try:
        for netns, dev in ((w.host_ns, name), (w.peer_ns, w.tap)):
            sh("ip", "-n", netns, "link", "set", dev, "mtu", "9100")
        big = ["-M", "do", "-s", "9050"]      # 9092-byte frames
        assert _ping(w.host_ns, *big, PEER_IP, count=2, deadline=4).returncode != 0
        assert _ping(w.peer_ns, *big, HOST_IP, count=2, deadline=4).returncode != 0
        assert up.proc.poll() is None, "splitnic up died"
        reply = query(w.link)
        assert reply["tunnel"]["too_long_to_port"] >= 2, reply["tunnel"]
        assert reply["stats"]["rx_oversize"] >= 2, reply["stats"]
        r = _ping(w.peer_ns, "-s", "1400", HOST_IP)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        status, out = up.stop(signal.SIGTERM)
        w.close()
    assert status == 0, out
