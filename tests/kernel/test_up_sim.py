"""``splitnic up`` on the simulated RTL NIC: a peer namespace on the NIC's wire talks to the host's kernel.

Ref: hostdrv/splitnic/kernel_path.py, hostdrv/splitnic/commands/up.py; sim/splitnic_sim/server.py (SimNic).

The path of every frame: peer kernel -> TAP -> GMII -> RTL NIC (steering to
RX queue 0, DMA into shared memory) -> driver -> pump -> TAP tunnel ->
host kernel, and back through TX queue 0.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from splitnic_lab.sim_lab import ECHO_PORT, HOST_IP, PEER_IP, PREFIX
from splitnic_lab.netns import add_netns, del_netns, inside, sh, unique
from splitnic.rule_control import request

from splitnic_lab.veth_lab import UpProcess, start_up

SPLITNIC = Path(sys.executable).parent / "splitnic"


class SimWire:
    """A SimNic whose wire is a TAP in peer namespace P, and an empty host namespace H."""

    def __init__(self) -> None:
        from splitnic_sim.server import SimNic
        self.host_ns, self.peer_ns, self.tap = unique("sh"), unique("sp"), unique("sw")
        add_netns(self.host_ns)
        add_netns(self.peer_ns)
        self.sim = SimNic(wire=f"tap:{self.tap}").start()
        sh("ip", "link", "set", self.tap, "netns", self.peer_ns)
        sh("ip", "-n", self.peer_ns, "addr", "add", f"{PEER_IP}/{PREFIX}", "dev", self.tap)
        sh("ip", "-n", self.peer_ns, "link", "set", self.tap, "up")

    def up(self, name: str, *extra: str, timeout: float = 120) -> UpProcess:
        cmd = ["ip", "netns", "exec", self.host_ns, str(SPLITNIC), "up", "--link", self.sim.link,
               "--kernel", "tap", "--name", name, *extra]
        up = start_up(cmd, name, timeout)
        sh("ip", "-n", self.host_ns, "addr", "add", f"{HOST_IP}/{PREFIX}", "dev", name)
        return up

    def close(self) -> None:
        self.sim.stop()
        del_netns(self.host_ns)
        del_netns(self.peer_ns)


@pytest.fixture
def wire() -> Iterator[SimWire]:
    w = SimWire()
    try:
        yield w
    finally:
        w.close()


def test_ping_and_tcp_from_the_peer_reach_the_kernel_through_the_rtl_nic(wire: SimWire) -> None:
    from splitnic_lab.sim_lab import Check, tcp_from_peer
    up = wire.up("snicup0")
    assert ", MAC 02:" in up.status and "link sim:" in up.status, up.status
    r = sh("ping", "-n", "-c", "3", "-i", "0.3", "-W", "10", HOST_IP, netns=wire.peer_ns, check=False, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    tcp = Check("tcp")
    tcp_from_peer(wire, tcp, 24 << 10)   # needs only host_ns and peer_ns
    assert tcp.ok, tcp.detail
    status, out = up.stop(signal.SIGTERM)
    assert status == 0, out
    assert "snicup0 down: to kernel " in out


def test_up_serves_fast_path_rules_and_changes_them_while_running(wire: SimWire, tmp_path: Path) -> None:
    control = tmp_path / "rules.sock"
    up = wire.up("snicup1", "--fast", f"udp dport {ECHO_PORT} -> echo", "--control", str(control))
    try:
        rules = request(control, {"op": "list"})["rules"]
        assert rules == [[0, f"udp dport {ECHO_PORT} -> echo", 1, 0]]
        with inside(wire.peer_ns):
            import socket
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(20)
        with client:
            client.sendto(b"fast", (HOST_IP, ECHO_PORT))
            assert client.recvfrom(64) == (b"fast", (HOST_IP, ECHO_PORT))
        assert request(control, {"op": "list"})["rules"][0][3] >= 1   # the entry's hit counter
        # splitnic rules, the CLI, against the running process.
        run = lambda *a: subprocess.run([SPLITNIC, "rules", *a, "--control", str(control)],  # noqa: E731
                                        capture_output=True, text=True, timeout=30)
        added = run("add", "ethertype 0x88b5 -> app1")
        assert added.returncode == 0 and added.stdout.startswith("added rule 1"), added.stderr
        bad = run("add", "udp dport 99999 -> app1")
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
        assert run("remove", "0").returncode == 0
        listed = run("list")
        assert "ethertype 0x88b5 -> app1" in listed.stdout and "9000" not in listed.stdout
    finally:
        status, out = up.stop(signal.SIGTERM)
    assert status == 0, out
    assert not control.exists()


def test_rules_without_a_running_up_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([SPLITNIC, "rules", "list", "--control", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip().startswith("splitnic: error: no ") and "splitnic up" in r.stderr
