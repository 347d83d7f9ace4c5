"""Applications in processes of their own beside snic0, on the software NIC, with a kernel peer.

Ref: hostdrv/splitnic/app_server.py (the primary grants and reclaims),
hostdrv/splitnic/app_client.py (splitnic.attach), tests/fastpath/app_proc.py
(the application process these tests run).

The software NIC runs in this process with a TAP as its wire, in a peer
namespace whose kernel sends the traffic; ``splitnic up --kernel tap`` (the
primary) runs in a host namespace; each application is a process of its own.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from splitnic_lab.netns import add_netns, del_netns, inside, sh, unique
from splitnic_lab.veth_lab import UpProcess, start_up
from splitnic_sim.softnic import SoftNic
from splitnic_spec import CSR_MAP

SPLITNIC = Path(sys.executable).parent / "splitnic"
REPO = Path(__file__).resolve().parents[2]
HOST_IP, PEER_IP = "198.18.29.1", "198.18.29.2"
_LINK = CSR_MAP.register("LINK")
_TXQ = CSR_MAP.array("TXQ")


class AppLab:
    """Peer namespace (the NIC's wire), host namespace (snic0 and ``splitnic up``), application processes."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.host, self.peer, wire = unique("sah"), unique("sap"), unique("saw")
        self.name = unique("snap")
        self.apps_path = tmp / "apps.sock"
        self.procs: list[subprocess.Popen] = []
        add_netns(self.host)
        add_netns(self.peer)
        self.nic = SoftNic(wire=f"tap:{wire}").start()
        self.nic.write_reg(_LINK.offset, _LINK.pack(UP=1, SPEED=2, FULL_DUPLEX=1))
        sh("ip", "link", "set", wire, "netns", self.peer)
        sh("ip", "-n", self.peer, "addr", "add", f"{PEER_IP}/24", "dev", wire)
        sh("ip", "-n", self.peer, "link", "set", wire, "up")
        self.up: UpProcess = start_up(["ip", "netns", "exec", self.host, str(SPLITNIC), "up", "--link", self.nic.link,
                                       "--kernel", "tap", "--name", self.name, "--apps", str(self.apps_path)],
                                      self.name, 60)
        sh("ip", "-n", self.host, "addr", "add", f"{HOST_IP}/24", "dev", self.name)

    def app(self, name: str, port: int, *extra: str) -> tuple[subprocess.Popen, tuple[int, int]]:
        """Start an application process; returns it and its (RX, TX) queue once it is attached."""
        proc = subprocess.Popen([sys.executable, "-m", "tests.fastpath.app_proc", "--apps", str(self.apps_path),
                                 "--name", name, "--port", str(port), *extra], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        line = proc.stdout.readline()
        if not line.startswith("ready "):
            proc.kill()
            raise AssertionError(f"{name} did not attach: {line}{proc.communicate()[1]}")
        rxq, txq = map(int, line.split()[1:])
        return proc, (rxq, txq)

    def peer_socket(self, timeout: float = 2.0) -> socket.socket:
        with inside(self.peer):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(timeout)
        return sock

    def host_socket(self, port: int) -> socket.socket:
        """A kernel socket on the host side, where frames the steering leaves alone arrive."""
        with inside(self.host):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST_IP, port))
        sock.settimeout(0.2)
        return sock

    def ping(self, count: int = 3) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.peer, "ping", "-c", str(count), "-i", "0.2", "-W", "2", HOST_IP,
                  check=False)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        if self.up.proc.poll() is None:
            self.up.stop(signal.SIGTERM)
        self.nic.close()
        del_netns(self.host)
        del_netns(self.peer)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[AppLab]:
    lab = AppLab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


#: Seconds a round trip to a sleeping application may take: its interrupt wakes it (it would
#: otherwise sleep up to a second, its wait's timeout).
WAKE_LATENCY = 0.2


def echoes(sock: socket.socket, port: int, count: int, tag: bytes) -> int:
    """Send ``count`` datagrams to the host's ``port`` one at a time, the application asleep between
    them; returns how many came back unchanged within WAKE_LATENCY."""
    back = 0
    for i in range(count):
        payload = b"%s %d" % (tag, i)
        time.sleep(0.02)              # the application drains its queue and goes to sleep
        sent = time.monotonic()
        sock.sendto(payload, (HOST_IP, port))
        try:
            data, source = sock.recvfrom(2048)
        except socket.timeout:
            continue
        back += data == payload and source == (HOST_IP, port) and time.monotonic() - sent < WAKE_LATENCY
    return back


def finish(proc: subprocess.Popen) -> dict:
    """Stop an application with SIGTERM; returns the counts it printed."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_two_application_processes_and_snic0_each_get_only_their_traffic_zero_copy(lab: AppLab) -> None:
    a, (rx_a, tx_a) = lab.app("alpha", 9001)
    b, (rx_b, tx_b) = lab.app("beta", 9002)
    assert len({rx_a, rx_b, 0}) == 3 and len({tx_a, tx_b, 0}) == 3, "each has queues of its own"
    kernel_a, kernel_b = lab.host_socket(9001), lab.host_socket(9002)
    peer = lab.peer_socket()
    assert echoes(peer, 9001, 20, b"to alpha") == 20
    assert echoes(peer, 9002, 20, b"to beta") == 20
    assert lab.ping().returncode == 0, "snic0 (the kernel's queue) works beside them"
    for sock in (kernel_a, kernel_b):
        with pytest.raises(socket.timeout):
            sock.recv(2048)          # nothing the applications took reached the kernel
    counts_a, counts_b = finish(a), finish(b)
    assert counts_a["frames"] == 20 and counts_b["frames"] == 20
    assert counts_a["foreign"] == counts_b["foreign"] == 0
    assert counts_a["outside"] == counts_b["outside"] == 0, "every frame was read in the NIC's own buffers"
    assert counts_a["echoed"] == counts_b["echoed"] == 20


def test_sigkill_mid_traffic_gives_the_port_back_to_the_kernel_and_touches_nothing_else(lab: AppLab) -> None:
    a, _ = lab.app("alpha", 9001)
    b, _ = lab.app("beta", 9002)
    kernel_a = lab.host_socket(9001)
    sender = lab.peer_socket(timeout=0.05)
    stop = threading.Event()

    def blast() -> None:
        i = 0
        while not stop.is_set():
            sender.sendto(b"blast %d" % i, (HOST_IP, 9001))
            i += 1
            time.sleep(0.0005)
    thread = threading.Thread(target=blast, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        a.kill()                     # SIGKILL: no goodbye, the socket's hangup is all the primary sees
        killed = time.monotonic()
        a.wait()
        got = None
        while got is None and time.monotonic() - killed < 5:
            try:
                got = kernel_a.recv(2048)
            except socket.timeout:
                pass
        assert got is not None and got.startswith(b"blast"), "port 9001 is the kernel's again"
        assert time.monotonic() - killed < 1.0, f"the kernel got port 9001 back only after " \
            f"{time.monotonic() - killed:.2f} s"
    finally:
        stop.set()
        thread.join()
    assert lab.up.proc.poll() is None, "splitnic up runs on"
    assert lab.ping().returncode == 0, "snic0 still works"
    assert echoes(lab.peer_socket(), 9002, 10, b"beta after") == 10, "the other application still works"
    # A restarted application gets a queue again, and the port.
    again, _ = lab.app("alpha", 9001)
    assert echoes(lab.peer_socket(), 9001, 10, b"alpha again") == 10
    assert finish(again)["foreign"] == 0
    assert finish(b)["frames"] >= 10


def test_a_bad_descriptor_is_contained_to_its_own_queue(lab: AppLab) -> None:
    good, _ = lab.app("good", 9002)
    bad, (_, bad_tx) = lab.app("bad", 9001, "--bad-descriptor")
    drops = _TXQ.offset(bad_tx, "DROPS")
    deadline = time.monotonic() + 5
    while lab.nic.read_reg(drops) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lab.nic.read_reg(drops) == 1, "the NIC refused the descriptor and counted it on that queue"
    assert lab.nic.s.dma_errors >= 1, "the NIC saw a buffer outside its DMA memory"
    assert echoes(lab.peer_socket(), 9001, 5, b"bad still") == 5, "its own queue carries on"
    assert echoes(lab.peer_socket(), 9002, 5, b"good") == 5
    assert lab.ping().returncode == 0
    bad.kill()
    bad.wait()
    again, (_, tx) = lab.app("bad", 9001)
    assert echoes(lab.peer_socket(), 9001, 5, b"reclaimed") == 5, "the queue was reclaimed and granted again"
    assert finish(again)["echoed"] == 5
    assert finish(good)["foreign"] == 0
