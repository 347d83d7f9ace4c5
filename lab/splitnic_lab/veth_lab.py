"""The veth lab for the kernel-path tests and benches: namespaces, a veth peer and a bridge.

Topology (every name carries the pid, so parallel runs never collide)::

    netns K (kernel side)           netns W (wire)          netns P (peer)
    tunnel interface  <-- bridge process -->  vA  ===== veth =====  vB
    198.18.0.1/24       (KernelTunnel <-> packet socket)            198.18.0.2/24

The bridge is ``python -m splitnic_lab.bridge``, run inside K: it opens the
kernel tunnel (stub or tap) there and a packet socket on vA in W, and moves
frames with :class:`splitnic.tunnel_pump.TunnelPump`.  So a ping from P
reaches K's stack only through the tunnel and the user-space pump.  W
exists so that no kernel stack with the address sits next to vA and
answers on its own.  Addresses are from 198.18.0.0/15, the range reserved
for network benchmarks (RFC 2544): nothing leaves the namespaces.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .netns import inside, sh, unique  # noqa: F401  (re-exported for the tests)
from splitnic.frames import udp_frame  # noqa: F401  (re-exported for the tests)
from splitnic.packet_port import PacketPort

KERNEL_IP = "198.18.0.1"
PEER_IP = "198.18.0.2"
PREFIX = 24


def link(netns: str, ifname: str) -> dict:
    """``ip -j link show`` of one interface, with its statistics ("" netns: the current one)."""
    ns = ["-n", netns] if netns else []
    return json.loads(sh("ip", *ns, "-j", "-s", "link", "show", "dev", ifname).stdout)[0]


def carrier(netns: str, ifname: str) -> bool:
    """Whether the (administratively up) interface has carrier: IFF_LOWER_UP.

    Not NO-CARRIER: that flag follows the operstate, which linkwatch updates
    up to a second after a carrier change.
    """
    return "LOWER_UP" in link(netns, ifname)["flags"]


class PacketSocketPort(PacketPort):
    """:class:`splitnic.packet_port.PacketPort` on an interface of another namespace."""

    def __init__(self, ifname: str, netns: str | None = None) -> None:
        if netns:
            with inside(netns):
                super().__init__(ifname)
        else:
            super().__init__(ifname)


@dataclass
class Bridge:
    """A running ``splitnic_lab.bridge`` process."""
    proc: subprocess.Popen
    ifname: str
    mac: str
    kind: str
    attached: str   #: "created" or "attached" (stub re-attach)
    stats: dict = field(default_factory=dict)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Stop the bridge with ``sig``; returns its exit status and keeps its final stats."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        for line in (out or "").splitlines():
            if line.startswith("STATS "):
                self.stats = json.loads(line[6:])
        return self.proc.returncode


@dataclass
class UpProcess:
    """A running ``splitnic up``."""
    proc: subprocess.Popen
    status: str

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, str]:
        """Signal it; returns (exit status, remaining output)."""
        self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return self.proc.returncode, out or ""


def wait_until_up(proc: subprocess.Popen, name: str, timeout: float = 120) -> UpProcess:
    """``proc`` (a ``splitnic up --name NAME``, its output piped as text), once it says ``NAME up:``.

    Kills it and raises with everything it printed if it ends or ``timeout`` seconds pass first.
    """
    deadline, lines = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(f"{name} up:"):
            return UpProcess(proc, line.strip())
    proc.kill()
    raise RuntimeError("splitnic up did not start:\n" + "".join(lines) + (proc.communicate()[0] or ""))


def start_up(cmd: Sequence[str], name: str, timeout: float = 120) -> UpProcess:
    """Start ``cmd``, a ``splitnic up --name NAME`` command line, and :func:`wait_until_up` for it."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return wait_until_up(proc, name, timeout)


class Lab:
    """Namespaces K, W, P with a veth pair W/vA -- P/vB; see the module doc."""

    def __init__(self, wire_in_k: bool = False) -> None:
        self.wire_in_k = wire_in_k
        self.k, self.p = unique("snk"), unique("snp")
        # wire_in_k: vA next to the tunnel in K: without ARP, IPv6 or an address K's stack
        # ignores it, and frames for the tunnel's MAC arrive there as "other host".
        self.w = self.k if wire_in_k else unique("snw")
        self.va, self.vb = unique("va"), unique("vb")
        self.bridges: list[Bridge] = []

    def __enter__(self) -> "Lab":
        try:
            for ns in dict.fromkeys((self.k, self.w, self.p)):
                sh("ip", "netns", "add", ns)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", self.w, "link", "add", self.va, "type", "veth", "peer", "name", self.vb, "netns", self.p)
            if self.wire_in_k:
                sh("ip", "-n", self.w, "link", "set", self.va, "arp", "off")
            # No offloads: frames that cross the packet socket must be complete, with real checksums.
            for ns, dev in ((self.w, self.va), (self.p, self.vb)):
                sh("ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off", netns=ns)
                sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", self.p, "addr", "add", f"{PEER_IP}/{PREFIX}", "dev", self.vb)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the bridges and delete the namespaces (always safe to call)."""
        for bridge in self.bridges:
            if bridge.proc.poll() is None:
                bridge.stop(signal.SIGKILL, timeout=10)
        for ns in {self.k, self.w, self.p}:
            sh("ip", "netns", "del", ns, check=False)

    def start_bridge(self, kind: str, name: str, extra: Sequence[str] = (), timeout: float = 60) -> Bridge:
        """Start the bridge in K with tunnel backend ``kind``; returns once the interface carries frames."""
        cmd = ["ip", "netns", "exec", self.k, sys.executable, "-m", "splitnic_lab.bridge",
               "--kernel", kind, "--name", name, "--port-netns", self.w, "--port-if", self.va, *extra]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env)
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("READY "):
                _, ifname, mac, attached = line.split()
                bridge = Bridge(proc, ifname, mac, kind, attached)
                self.bridges.append(bridge)
                return bridge
        proc.kill()
        out = "".join(lines) + (proc.communicate()[0] or "")
        raise RuntimeError(f"bridge did not start: {out.strip()}")

    def start_up(self, kind: str, name: str, extra: Sequence[str] = (), timeout: float = 60) -> "UpProcess":
        """Run ``splitnic up --link packet:vA`` in K (needs ``wire_in_k``); returns after its status line."""
        assert self.wire_in_k, "splitnic up attaches to vA in its own namespace"
        exe = Path(sys.executable).parent / "splitnic"
        cmd = ["ip", "netns", "exec", self.k, str(exe), "up", "--link", f"packet:{self.va}",
               "--kernel", kind, "--name", name, *extra]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        self.bridges.append(Bridge(proc, name, "", kind, ""))
        return wait_until_up(proc, name, timeout)

    def address_kernel_side(self, ifname: str) -> None:
        """Give the tunnel interface in K its address (idempotent)."""
        sh("ip", "-n", self.k, "addr", "replace", f"{KERNEL_IP}/{PREFIX}", "dev", ifname)


def ping(lab: Lab, count: int = 3, timeout: float = 20) -> subprocess.CompletedProcess:
    """Ping K's tunnel address from P; returns the result (returncode 0: all answered... or some)."""
    return sh("ping", "-n", "-c", str(count), "-i", "0.2", "-W", "5", KERNEL_IP, netns=lab.p,
              check=False, timeout=timeout)


def tcp_transfer(lab: Lab, nbytes: int, timeout: float = 60) -> tuple[bytes, bytes]:
    """Send ``nbytes`` random bytes over TCP from P to K; returns (sent, received)."""
    import threading
    data = os.urandom(nbytes)
    with inside(lab.k):
        server = socket.create_server((KERNEL_IP, 0))
    port = server.getsockname()[1]
    server.settimeout(timeout)
    received = bytearray()

    def serve() -> None:
        try:
            conn, _ = server.accept()
            conn.settimeout(timeout)
            with conn:
                while chunk := conn.recv(65536):
                    received.extend(chunk)
        except OSError:
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with inside(lab.p):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.settimeout(timeout)
        with client:
            client.connect((KERNEL_IP, port))
            client.sendall(data)
            client.shutdown(socket.SHUT_WR)
        t.join(timeout)
    finally:
        server.close()
    return data, bytes(received)


def tcp_by_hash(server_ns: str, client_ns: str, server_ip: str, nbytes: int,
                timeout: float = 120) -> tuple[str, str, float]:
    """``nbytes`` random bytes over TCP from ``client_ns`` to a server at ``server_ip`` in ``server_ns``;
    returns (SHA-256 of what was sent, of what arrived, seconds), hex."""
    import hashlib
    import threading
    data = os.urandom(nbytes)
    with inside(server_ns):
        server = socket.create_server((server_ip, 0))
    server.settimeout(timeout)
    got = hashlib.sha256()

    def serve() -> None:
        try:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(timeout)
                while chunk := conn.recv(1 << 16):
                    got.update(chunk)
        except OSError:
            pass
    reader = threading.Thread(target=serve, daemon=True)
    reader.start()
    try:
        with inside(client_ns):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.settimeout(timeout)
        start = time.monotonic()
        with client:
            client.connect((server_ip, server.getsockname()[1]))
            client.sendall(data)
            client.shutdown(socket.SHUT_WR)
            reader.join(timeout)
        seconds = time.monotonic() - start
    finally:
        server.close()
    return hashlib.sha256(data).hexdigest(), got.hexdigest(), seconds


