"""A lab for application processes: the software NIC wired to a peer namespace, ``splitnic up`` beside.

Ref: tests/fastpath/test_app_processes.py, tests/fastpath/test_examples.py, bench/bench_apps.py
(its users); hostdrv/splitnic/app_server.py.

The software NIC runs in the caller's process with a TAP as its wire, in a peer
namespace whose kernel sends the traffic; ``splitnic up --kernel tap`` (the
primary) runs in a host namespace; each application is a process of its own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from .netns import add_netns, del_netns, inside, sh, unique
from .veth_lab import UpProcess, start_up
from splitnic_sim.hostlink_standin import HostLinkStandIn
from splitnic_sim.server import SimNic
from splitnic_sim.softnic import SoftNic
from splitnic_spec import CSR_MAP

SPLITNIC = Path(sys.executable).parent / "splitnic"
REPO = Path(__file__).resolve().parents[2]
HOST_IP, PEER_IP = "198.18.29.1", "198.18.29.2"
_LINK = CSR_MAP.register("LINK")
TXQ_REGS = CSR_MAP.array("TXQ")


class AppLab:
    """Peer namespace (the NIC's wire), host namespace (snic0 and ``splitnic up``), application processes."""

    def __init__(self, tmp: Path, up_extra: Sequence[str] = (), *, wire: bool = True, simulator: str = "software",
                 **softnic: object) -> None:
        # ``up_extra``: more arguments for splitnic up; ``wire``: False leaves out the peer (the NIC's
        # wire then only counts what is sent: benchmarks); ``simulator``: ``software`` (the software
        # NIC, ``softnic`` its options), the RTL on ``verilator`` (the sim link; 8 RX, 8 TX queues),
        # or ``eth``: the software NIC behind the board's stand-in, across a veth (the eth link;
        # ``dma_size`` the NIC-local memory, ``wire_slots`` as the software NIC's).
        self.tmp = tmp
        #: Seconds a round trip to a sleeping application may take on this NIC (see :func:`echoes`).
        self.wake_latency = WAKE_LATENCY if simulator == "software" else RTL_WAKE_LATENCY
        self.host, self.peer, tap = unique("sah"), unique("sap"), unique("saw")
        self.name = unique("snap")
        self.apps_path = tmp / "apps.sock"
        self.procs: list[subprocess.Popen] = []
        self.up: UpProcess | None = None
        self.nic: SoftNic | None = None
        self.sim: SimNic | None = None
        self.standin: HostLinkStandIn | None = None
        self.board: str | None = None      # the stand-in's namespace (eth)
        self._namespaces: list[str] = []
        try:
            for ns in (self.host, self.peer) if wire else (self.host,):
                add_netns(ns)
                self._namespaces.append(ns)
            if simulator == "software":
                self.nic = SoftNic(wire=f"tap:{tap}" if wire else "none", **softnic).start()
                self.nic.write_reg(_LINK.offset, _LINK.pack(UP=1, SPEED=2, FULL_DUPLEX=1))
                link = self.nic.link
            elif simulator == "eth":
                link = self._stand_in(tap if wire else None, **softnic)
            else:
                self.sim = SimNic(simulator=simulator, wire=f"tap:{tap}" if wire else "none").start()
                link = self.sim.link
            if wire:
                # The software NIC made its wire's TAP where it runs (the stand-in: the board's namespace).
                where = ["-n", self.board] if self.board is not None else []
                sh("ip", *where, "link", "set", tap, "netns", self.peer)
                sh("ip", "-n", self.peer, "addr", "add", f"{PEER_IP}/24", "dev", tap)
                sh("ip", "-n", self.peer, "link", "set", tap, "up")
            self.up = start_up(["ip", "netns", "exec", self.host, "env", f"PYTHONPATH={REPO}", str(SPLITNIC),
                                "up", "--link", link, "--kernel", "tap", "--name", self.name,
                                "--apps", str(self.apps_path), *up_extra], self.name, 60)
            sh("ip", "-n", self.host, "addr", "add", f"{HOST_IP}/24", "dev", self.name)
        except BaseException:
            self.close()
            raise

    def _stand_in(self, tap: str | None, dma_size: int = 1 << 20, wire_slots: int = 2048) -> str:
        """The board: the stand-in (the software NIC behind the eth host link) in a namespace of its
        own, cabled to the host namespace by a veth; returns the link for splitnic up."""
        board, host_if, board_if = unique("sab"), unique("slh"), unique("slb")
        add_netns(board)
        self._namespaces.append(board)
        self.board = board
        sh("ip", "-n", board, "link", "add", host_if, "type", "veth", "peer", "name", board_if)
        sh("ip", "-n", board, "link", "set", host_if, "netns", self.host)
        sh("ip", "-n", board, "link", "set", board_if, "up")
        sh("ip", "-n", self.host, "link", "set", host_if, "up")
        with inside(board):
            self.standin = HostLinkStandIn(board_if, local_size=dma_size, wire=f"tap:{tap}" if tap else "none",
                                           wire_slots=wire_slots).start()
        self.nic = self.standin.nic
        self.nic.write_reg(_LINK.offset, _LINK.pack(UP=1, SPEED=2, FULL_DUPLEX=1))
        return f"eth:{host_if}"

    def start(self, argv: Sequence[str], ready: str) -> tuple[subprocess.Popen, str]:
        """Start a process (run from the repository, which is on its path); returns it and its first
        line once that line starts with ``ready``."""
        proc = subprocess.Popen([sys.executable, *argv], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=os.environ | {"PYTHONPATH": str(REPO)})
        self.procs.append(proc)
        line = proc.stdout.readline()
        if not line.startswith(ready):
            proc.kill()
            raise AssertionError(f"{' '.join(argv)} did not start: {line}{proc.communicate()[1]}")
        return proc, line

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
        if self.up is not None and self.up.proc.poll() is None:
            self.up.stop(signal.SIGTERM)
        if self.standin is not None:
            self.standin.close()          # and its software NIC
        elif self.nic is not None:
            self.nic.close()
        if self.sim is not None:
            self.sim.stop()
        for ns in self._namespaces:
            del_netns(ns)
        self._namespaces = []


#: Seconds a round trip to a sleeping application may take: its interrupt wakes it (it would
#: otherwise sleep up to a second, its wait's timeout).
WAKE_LATENCY = 0.2
#: The same through the NIC's RTL on Verilator, thousands of times slower than the wire: round
#: trips of 0.05-0.23 s were seen on a loaded machine (load 20 on 2 cores), still well short of
#: the second a missed interrupt costs.
RTL_WAKE_LATENCY = 0.6


def echoes(sock: socket.socket, port: int, count: int, tag: bytes, within: float = WAKE_LATENCY) -> int:
    """Send ``count`` datagrams to the host's ``port`` one at a time, the application asleep between
    them; returns how many came back unchanged within ``within`` seconds (:attr:`AppLab.wake_latency`)."""
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
        back += data == payload and source == (HOST_IP, port) and time.monotonic() - sent < within
    return back


def finish(proc: subprocess.Popen) -> dict:
    """Stop an application with SIGTERM; returns the counts it printed."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])
