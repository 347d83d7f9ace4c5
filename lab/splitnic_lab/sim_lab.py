"""The simulated lab: the RTL NIC wired to a peer namespace, snic0 in a host namespace, fast-path apps.

Ref: docs/architecture.md (the whole picture); the demo (:mod:`.demo`) and
the end-to-end tests run it.

Topology (every name carries the pid, so runs never collide; nothing touches
the host's own network)::

    netns H (host)                     this process                      netns P (peer)
    snic0 198.18.0.1  <-- tunnel -->  driver: pump + fast-path echo  <-- sim link -->  RTL NIC
                                       (one poll loop)                    (Verilator)  | GMII
                                                                                       TAP 198.18.0.2

The simulated NIC's wire is a TAP device moved into P, so the peer's kernel
talks to the RTL NIC over Ethernet.  The rule ``udp dport 9000 -> echo``
steers UDP port 9000 to RX queue 1, where the fast-path echo application
answers it zero-copy; everything else (ARP, ping, TCP) lands on RX queue 0
and goes through the tunnel to H's kernel.  The per-queue counters show
which path each packet took.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from splitnic.apps.udp_echo import UdpEcho
from splitnic.fastpath import FastPath
from splitnic.kernel_path import Tunnel, nic_uplink
from splitnic.nic import Nic
from splitnic.nic import open as open_nic
from splitnic_spec import CSR_MAP

from splitnic_sim.server import SimNic
from splitnic_sim.softnic import SoftNic

from .netns import add_netns, del_netns, inside, sh, unique

__all__ = ["HOST_IP", "PEER_IP", "PREFIX", "ECHO_PORT", "DEMO_RULES", "Check", "SimLab", "ping_from_peer",
           "tcp_from_peer", "udp_from_peer", "NIC_KINDS", "start_wired_nic"]

log = logging.getLogger(__name__)

#: Addresses from 198.18.0.0/15, reserved for network benchmarks (RFC 2544).
HOST_IP, PEER_IP, PREFIX = "198.18.0.1", "198.18.0.2", 24
ECHO_PORT = 9000
DEMO_RULES = (f"udp dport {ECHO_PORT} -> echo",)
_RXQ, _TXQ, _STEER = CSR_MAP.array("RXQ"), CSR_MAP.array("TXQ"), CSR_MAP.array("STEER")
_LINK = CSR_MAP.register("LINK")


@dataclass
class Check:
    """One thing the demo shows, and whether it held."""
    name: str
    ok: bool = False
    detail: str = "not run"


#: The NICs a lab can run: the RTL on a simulator, or the software NIC (the C model: fast, no build).
NIC_KINDS = ("verilator", "icarus", "software")


def start_wired_nic(kind: str, tap: str) -> tuple[SimNic | SoftNic, Callable[[], None]]:
    """Start the NIC ``kind`` (:data:`NIC_KINDS`) with TAP ``tap`` as its wire; returns it (its ``link``
    attaches the driver) and the call that stops it.  The link is up at 1000 Mb/s full duplex."""
    if kind == "software":
        nic = SoftNic(wire=f"tap:{tap}").start()
        nic.write_reg(_LINK.offset, _LINK.pack(UP=1, SPEED=_LINK.field("SPEED").value("1000"), FULL_DUPLEX=1))
        return nic, nic.close
    if kind not in NIC_KINDS:
        raise ValueError(f"NIC kind must be one of {', '.join(NIC_KINDS)}, not {kind!r}")
    sim = SimNic(simulator=kind, wire=f"tap:{tap}").start()
    return sim, sim.stop


class SimLab:
    """The simulated NIC wired to a peer namespace, ``snic0`` in a host namespace, fast-path apps.

    ``start()`` builds everything; ``step()`` moves frames once (pump and
    apps, from one thread: the driver is not thread-safe); ``close()`` tears
    it all down and is always safe to call.
    """

    def __init__(self, *, simulator: str = "verilator", kernel: str = "auto", name: str = "snic0",
                 rules: Sequence[str] = DEMO_RULES, progress: Callable[[str], None] = log.info) -> None:
        self.simulator, self.kernel, self.name, self.rules = simulator, kernel, name, rules
        self.progress = progress
        self.host_ns, self.peer_ns, self.wire = unique("snh"), unique("snp"), unique("snw")
        self.sim = None
        self._stop_sim: Callable[[], None] = lambda: None
        self.nic: Nic | None = None
        self.tunnel: Tunnel | None = None
        self.fast: FastPath | None = None
        self.echo: UdpEcho | None = None
        self._namespaces: list[str] = []

    def start(self) -> "SimLab":
        """Build and start everything; raises (after cleaning up) when a piece cannot start."""
        try:
            for ns in (self.host_ns, self.peer_ns):
                add_netns(ns)
                self._namespaces.append(ns)
            self.progress(f"starting the simulated NIC ({self.simulator}"
                          f"{'' if self.simulator == 'software' else '; the first build takes a minute or two'})")
            self.sim, self._stop_sim = start_wired_nic(self.simulator, self.wire)
            self.progress(f"its Ethernet port is TAP {self.wire} in namespace {self.peer_ns}, {PEER_IP}/{PREFIX}")
            sh("ip", "link", "set", self.wire, "netns", self.peer_ns)
            sh("ip", "-n", self.peer_ns, "addr", "add", f"{PEER_IP}/{PREFIX}", "dev", self.wire)
            sh("ip", "-n", self.peer_ns, "link", "set", self.wire, "up")
            self.nic = open_nic(self.sim.link)
            self.tunnel = Tunnel(nic_uplink(self.nic), self.kernel, self.name)
            with inside(self.host_ns):
                self.tunnel.start()
            sh("ip", "-n", self.host_ns, "addr", "add", f"{HOST_IP}/{PREFIX}", "dev", self.name)
            t = self.tunnel.tunnel
            self.progress(f"{self.name} is up in namespace {self.host_ns}: {t.kind} tunnel, {HOST_IP}/{PREFIX}, "
                          f"MAC {':'.join(f'{b:02x}' for b in t.mac)}")
            self.fast = FastPath(self.nic, self.rules)
            if "echo" in self.fast.rules.app_queues:
                self.echo = UdpEcho()
                self.fast.serve("echo", self.echo)
            for index, rule, queue, _hits in self.fast.listing():
                self.progress(f"fast path: rule {index}: {rule} (RX queue {queue})")
        except BaseException:
            self.close()
            raise
        return self

    def step(self) -> int:
        """Move frames once each way through the tunnel and run the apps; returns the work done."""
        return self.tunnel.step((self.fast.poll,))

    def run_while(self, busy: Callable[[], bool], timeout: float,
                  every: Callable[[], None] | None = None, period: float = 0.5) -> None:
        """Step until ``busy()`` is false or ``timeout`` passes; calls ``every()`` each ``period`` s."""
        deadline = time.monotonic() + timeout
        next_call = 0.0
        while busy() and time.monotonic() < deadline:
            if not self.step():
                time.sleep(0.0005)
            if every and time.monotonic() >= next_call:
                every()
                next_call = time.monotonic() + period

    def alongside(self, fn: Callable[..., None], *args: object, timeout: float = 120) -> None:
        """Run ``fn(*args)`` (peer traffic) in a thread while this thread steps the driver."""
        thread = threading.Thread(target=fn, args=args, daemon=True)
        thread.start()
        self.run_while(thread.is_alive, timeout)
        thread.join(1)
        if thread.is_alive():
            raise TimeoutError(f"{fn.__name__} still running after {timeout} s")

    def counters(self) -> dict[str, dict[str, int]]:
        """Per-queue packets/bytes/drops and steering hits, read from the NIC."""
        bus = self.nic.link.bus
        out: dict[str, dict[str, int]] = {}
        names = {0: "kernel"} | {q: app for app, q in self.fast.rules.app_queues.items()}
        for q in range(self.nic.num_rx_queues):
            out[f"RX{q} {names.get(q, 'unused')}"] = {
                k.lower(): bus.read32(_RXQ.offset(q, k)) for k in ("PACKETS", "BYTES", "DROPS")}
        for q in range(self.nic.num_tx_queues):
            out[f"TX{q} {'kernel' if q == 0 else 'fast path' if q == self.fast.tx_queue else 'unused'}"] = {
                k.lower(): bus.read32(_TXQ.offset(q, k)) for k in ("PACKETS", "BYTES", "DROPS")}
        return out

    def _destroy_interface(self) -> None:
        """Remove the lab's kernel interface: a stub's outlives its handle, for the next driver to attach."""
        kernel = self.tunnel.tunnel if self.tunnel else None
        if kernel is not None and hasattr(kernel, "destroy"):
            kernel.destroy()

    def close(self) -> None:
        """Stop everything and remove the namespaces, TAPs and the simulator (always safe)."""
        for closer in (self._destroy_interface,
                       lambda: self.tunnel and self.tunnel.close(),
                       lambda: self.nic and self.nic.close(),
                       lambda: self.sim and self._stop_sim()):
            try:
                closer()
            except Exception as err:  # keep tearing down; report what failed
                log.warning("cleanup: %s", err)
        self.tunnel = self.nic = self.sim = None
        for ns in self._namespaces:
            del_netns(ns)
        self._namespaces = []


# --------------------------------------------------------------------------
# Traffic from the peer (threads: kernel sockets only, never the driver)
# --------------------------------------------------------------------------

#: Seconds one echo request may wait for its reply.  The pings go one at a time: round trips
#: through the simulated RTL vary a lot while TCP runs beside them, and one ping process with
#: several requests in flight counts a late reply as lost (it waits only two round trips).
PING_WAIT = 30


def ping_from_peer(lab: SimLab, check: Check, count: int = 5) -> None:
    """Ping snic0 from the peer: ICMP and ARP go through the kernel's queue; every echo must come back."""
    times: list[float] = []
    for _ in range(count):
        r = sh("ping", "-n", "-c", "1", "-W", str(PING_WAIT), HOST_IP, netns=lab.peer_ns, check=False,
               timeout=PING_WAIT + 30)
        match = re.search(r"time=([\d.]+) ms", r.stdout)
        if r.returncode == 0 and match:
            times.append(float(match.group(1)))
        time.sleep(0.3)
    check.ok = len(times) == count
    check.detail = f"{len(times)}/{count} echo requests answered" + (
        f", round trip {min(times):.0f}..{max(times):.0f} ms" if times else "")


def tcp_from_peer(lab: SimLab, check: Check, nbytes: int = 32 << 10, timeout: float = 120) -> None:
    """Send ``nbytes`` over TCP from the peer to snic0's kernel, which echoes them back."""
    data = os.urandom(nbytes)
    with inside(lab.host_ns):
        server = socket.create_server((HOST_IP, 0))
    server.settimeout(timeout)
    port = server.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(timeout)
                while chunk := conn.recv(65536):
                    conn.sendall(chunk)
        except OSError as err:
            log.debug("tcp echo server: %s", err)

    threading.Thread(target=serve, daemon=True).start()
    try:
        with inside(lab.peer_ns):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.settimeout(timeout)
        with client:
            start = time.monotonic()
            client.connect((HOST_IP, port))
            client.sendall(data)
            client.shutdown(socket.SHUT_WR)
            back = bytearray()
            while chunk := client.recv(65536):
                back += chunk
        seconds = time.monotonic() - start
        check.ok = bytes(back) == data
        check.detail = (f"{nbytes} bytes to port {port} and back intact in {seconds:.1f} s" if check.ok
                        else f"sent {nbytes} bytes, got {len(back)} back{' (differing)' if back else ''}")
    except OSError as err:
        check.detail = f"TCP exchange failed: {err}"
    finally:
        server.close()


def udp_from_peer(lab: SimLab, check: Check, guard: Check, count: int = 20, timeout: float = 10) -> None:
    """UDP to port ECHO_PORT from the peer: the fast-path app must answer, the kernel must not see it."""
    with inside(lab.host_ns):
        kernel_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    kernel_sock.bind((HOST_IP, ECHO_PORT))
    kernel_sock.setblocking(False)
    with inside(lab.peer_ns):
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(timeout)
    echoed = 0
    try:
        for i in range(count):
            payload = f"splitnic fast path {i}".encode() + os.urandom(8)
            client.sendto(payload, (HOST_IP, ECHO_PORT))
            try:
                reply, source = client.recvfrom(2048)
            except socket.timeout:
                continue
            echoed += reply == payload and source == (HOST_IP, ECHO_PORT)
        leaked = 0
        try:
            while kernel_sock.recv(2048):
                leaked += 1
        except BlockingIOError:
            pass
        check.ok = echoed == count
        check.detail = f"{echoed}/{count} datagrams echoed by the fast-path app"
        guard.ok = leaked == 0
        guard.detail = f"the kernel's socket on port {ECHO_PORT} received {leaked}"
    finally:
        client.close()
        kernel_sock.close()


# --------------------------------------------------------------------------
# The demo
# --------------------------------------------------------------------------
