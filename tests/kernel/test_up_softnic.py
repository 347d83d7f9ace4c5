"""``splitnic up`` on the software NIC: the C pump and the event loop, with the host's kernel as the far end.

Ref: hostdrv/splitnic/kernel_path.py (the loop), hostdrv/splitnic/_hotpath.c (snic_pump_*),
sim/splitnic_sim/softnic.c (the NIC, its interrupt).

The software NIC runs in this process; ``splitnic up --kernel tap`` runs in a
network namespace with a static neighbour, so frames the kernel sends through
the interface come out on the NIC's wire (``SoftNic.sent``) and frames put on
the wire (``SoftNic.inject``) reach a socket in the namespace.
"""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from splitnic_lab.netns import add_netns, del_netns, inside, sh, unique
from splitnic_lab.veth_lab import UpProcess, start_up
from splitnic_sim.hostlink_standin import HostLinkStandIn
from splitnic_sim.softnic import SoftNic
from splitnic_spec import CSR_MAP

SPLITNIC = Path(sys.executable).parent / "splitnic"
EXTRA: list[str] = []
NIC_MAC = bytes.fromhex("02005e005321")
PEER_MAC = bytes.fromhex("02005e005322")
HOST_IP, PEER_IP = "198.18.7.1", "198.18.7.2"
#: epoll_wait, epoll_pwait, epoll_pwait2 on x86-64 (/proc/PID/syscall's first field).
EPOLL_SYSCALLS = {232, 281, 441}


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(payload: bytes, sport: int = 5000, dport: int = 7778) -> bytes:
    """An Ethernet/IPv4/UDP frame from the peer to the host (UDP checksum 0: none)."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + len(payload), 0, 0, 64, 17, 0,
                     socket.inet_aton(PEER_IP), socket.inet_aton(HOST_IP))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    f = NIC_MAC + PEER_MAC + b"\x08\x00" + ip + struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return f.ljust(60, b"\0")


class StandInModel:
    """The board's stand-in on the ``eth`` link, seen as the software NIC the tests drive.

    It serves one end of a veth pair in ``ns``; ``link`` is the other end's.
    """

    def __init__(self, ns: str) -> None:
        sh("ip", "link", "add", "snhost", "type", "veth", "peer", "name", "snboard", netns=ns)
        for ifname in ("snhost", "snboard"):
            sh("ip", "link", "set", ifname, "up", netns=ns)
        with inside(ns):
            self.stand_in = HostLinkStandIn("snboard", local_size=1 << 20, wire_slots=2048).start()
        self.link = "eth:snhost"

    def write_reg(self, offset: int, value: int) -> None:
        self.stand_in.nic.write_reg(offset, value)

    def sent(self) -> list[bytes]:
        return self.stand_in.nic.sent()

    def inject(self, frame: bytes) -> bool:
        return self.stand_in.inject(frame)

    def close(self) -> None:
        self.stand_in.close()


class SoftWire:
    """A software NIC with link up and MAC NIC_MAC, and a namespace for ``splitnic up``."""

    def __init__(self, kind: str, tmp: Path, kernel: str = "tap") -> None:
        self.kernel = kernel
        self.ns = unique("su")
        add_netns(self.ns)
        if kind == "eth":
            self.model = StandInModel(self.ns)
        else:
            self.model = SoftNic(sim_socket=tmp / "nic.sock" if kind == "softsim" else None, wire_slots=2048).start()
        link = CSR_MAP.register("LINK")
        self.model.write_reg(link.offset, link.pack(UP=1, SPEED=2, FULL_DUPLEX=1))
        self.model.write_reg(CSR_MAP.register("MAC_ADDR_LO").offset, int.from_bytes(NIC_MAC[:4], "little"))
        self.model.write_reg(CSR_MAP.register("MAC_ADDR_HI").offset, int.from_bytes(NIC_MAC[4:], "little"))

    def up(self, name: str, *extra: str, timeout: float = 60) -> UpProcess:
        cmd = ["ip", "netns", "exec", self.ns, str(SPLITNIC), *EXTRA, "up", "--link", self.model.link,
               "--kernel", self.kernel, "--name", name, *extra]
        up = start_up(cmd, name, timeout)
        sh("ip", "netns", "exec", self.ns, "sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1")
        sh("ip", "-n", self.ns, "addr", "add", f"{HOST_IP}/24", "dev", name)
        sh("ip", "-n", self.ns, "neigh", "replace", PEER_IP, "lladdr",
           ":".join(f"{b:02x}" for b in PEER_MAC), "dev", name, "nud", "permanent")
        return up

    def socket(self) -> socket.socket:
        with inside(self.ns):
            return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def close(self) -> None:
        self.model.close()
        del_netns(self.ns)


@pytest.fixture(params=["mmio", "softsim", "eth"])
def wire(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SoftWire]:
    w = SoftWire(request.param, tmp_path)
    try:
        yield w
    finally:
        w.close()


def _udp_payloads(frames: list[bytes]) -> list[bytes]:
    return [f[42:42 + struct.unpack("!H", f[38:40])[0] - 8] for f in frames
            if len(f) >= 42 and f[12:14] == b"\x08\x00" and f[23] == 17]


def test_up_moves_bursts_both_ways_through_wrapping_rings(wire: SoftWire) -> None:
    up = wire.up("snicsw0")
    try:
        assert any(f"link {kind}:" in up.status for kind in ("mmio", "sim", "eth")), up.status
        # kernel -> NIC: 600 datagrams (the rings have 256 entries) leave on the NIC's wire in order.
        tx = wire.socket()
        tx.bind((HOST_IP, 7777))
        out = [b"k2n %05d" % i for i in range(600)]
        sent: list[bytes] = []
        for i, p in enumerate(out):
            tx.sendto(p, (PEER_IP, 7777))
            if i % 64 == 63:
                sent += wire.model.sent()
        deadline = time.monotonic() + 30
        while len(_udp_payloads(sent)) < len(out) and time.monotonic() < deadline:
            sent += wire.model.sent()
            time.sleep(0.01)
        assert _udp_payloads(sent) == out
        tx.close()
        # NIC -> kernel: 600 frames put on the wire reach a socket in order, in bursts of 100 (a
        # wire faster than the driver would overflow the RX ring: the NIC drops and counts that).
        rx = wire.socket()
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        rx.bind((HOST_IP, 7778))
        rx.settimeout(10)
        inbound = [b"n2k %05d" % i for i in range(600)]
        got = []
        for first in range(0, len(inbound), 100):
            for p in inbound[first:first + 100]:
                while not wire.model.inject(udp_frame(p)):
                    time.sleep(0.001)
            while len(got) < first + 100:
                got.append(rx.recv(2048))
        assert got == inbound
        rx.close()
    finally:
        status, out_text = up.stop(signal.SIGTERM)
    assert status == 0, out_text
    assert "snicsw0 down: to kernel " in out_text


def test_an_idle_up_sleeps_in_epoll_and_hardly_wakes(wire: SoftWire) -> None:
    up = wire.up("snicsw1")
    try:
        pid = up.proc.pid
        assert b"splitnic" in Path(f"/proc/{pid}/cmdline").read_bytes()
        time.sleep(1.0)   # address and neighbour set, IPv6 off: nothing moves any more

        def switches() -> int:
            total = 0
            for task in Path(f"/proc/{pid}/task").iterdir():
                for line in (task / "status").read_text().splitlines():
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
            return total
        before = switches()
        time.sleep(3.0)
        woke = switches() - before
        # Where it is, 20 looks 50 ms apart: asleep in epoll_wait nearly every time ("running"
        # when a look lands on one of its rare wake-ups).
        seen = []
        for _ in range(20):
            seen.append(Path(f"/proc/{pid}/syscall").read_text().split()[0])
            time.sleep(0.05)
        in_epoll = sum(1 for s in seen if s.isdigit() and int(s) in EPOLL_SYSCALLS)
        assert in_epoll >= 15, seen
        assert woke <= 30, f"{woke} wake-ups in 3 s idle: the loop polls"
    finally:
        status, out = up.stop(signal.SIGINT)
    assert status == 0, out


def test_a_jumbo_kernel_frame_is_dropped_and_counted_and_up_keeps_running(wire: SoftWire) -> None:
    up = wire.up("snicsw2")
    try:
        # An MTU beyond what the NIC carries (its buffers are not made larger for it): the
        # kernel's 4042-byte frame does not fit a TX buffer.
        sh("ip", "-n", wire.ns, "link", "set", "snicsw2", "mtu", "16000")
        sh("ip", "netns", "exec", wire.ns, "ping", "-c", "1", "-s", "4000", "-W", "1", PEER_IP, check=False)
        time.sleep(0.5)
        assert up.proc.poll() is None, "splitnic up died on a frame longer than its TX buffers"
        tx = wire.socket()
        tx.sendto(b"after", (PEER_IP, 7777))
        tx.close()
        sent: list[bytes] = []
        deadline = time.monotonic() + 10
        while b"after" not in _udp_payloads(sent) and time.monotonic() < deadline:
            sent += wire.model.sent()
            time.sleep(0.01)
        assert b"after" in _udp_payloads(sent)
    finally:
        status, out = up.stop(signal.SIGTERM)
    assert status == 0, out
    assert "too long 1)" in out, out


def test_a_second_up_on_the_same_nic_is_one_line_naming_the_first(wire: SoftWire) -> None:
    up = wire.up("snicsw3")
    try:
        second = subprocess.run(["ip", "netns", "exec", wire.ns, str(SPLITNIC), *EXTRA, "up", "--link", wire.model.link,
                                 "--kernel", "tap", "--name", "snicsw4"], capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
        assert f"is in use by process {up.proc.pid}" in second.stderr, second.stderr
    finally:
        status, out = up.stop(signal.SIGTERM)
    assert status == 0, out
