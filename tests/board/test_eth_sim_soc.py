"""The ``eth`` host link end to end on the simulated board SoC: the driver's commands over the SoC's TAP.

Ref: splitnic_spec.hostlink (the protocol); gateware/splitnic_gateware/hostlink
(the board's engines) and targets/hostlink_core.py (their place in the SoC);
hostdrv/splitnic/link_eth.py (the host side).  The same SoC as the bitstream
(:class:`~splitnic_gateware.targets.sim.SimSoCProcess`, started as in
test_sim_soc.py: root, /dev/net/tun, built on first use); the host opens
``eth:snebtap0``, the TAP that is the board's host-link cable, inside the
SoC's namespace.  The HELLO, register reads (the ID block), descriptors and
TX buffers pushed into NIC-local memory, completions and RX frames coming back
as messages, the NIC's interrupt: ``splitnic selftest`` exercises all of it.

``splitnic up`` then runs over ``eth:`` with the NIC's wire on a TAP in a
peer namespace (``SimSoCProcess(wire="tap")``): the peer's kernel pings snic0's
kernel and sends it TCP through the board's NIC and the host link, both ways.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

import splitnic_spec as spec
from splitnic_spec import board as amap
from splitnic_spec import hostlink
from splitnic_gateware.targets.nic_core import build_id
from splitnic_gateware.targets.sim import TAP, WIRE_TAP, SimSoCProcess
from splitnic_lab.netns import add_netns, del_netns, sh, unique
from splitnic_lab.sim_lab import HOST_IP, PEER_IP, PREFIX, Check, tcp_from_peer
from splitnic_lab.veth_lab import UpProcess, start_up

SPLITNIC = Path(sys.executable).parent / "splitnic"
LINK = f"eth:{TAP}"


@pytest.fixture(scope="module")
def soc() -> Iterator[SimSoCProcess]:
    # Builds the simulator the first time (minutes).
    with SimSoCProcess() as running:
        yield running


def _cli(soc: SimSoCProcess, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``splitnic ARGS`` in the simulated SoC's namespace, where its TAP is."""
    return subprocess.run(["nsenter", f"--net={soc.netns_path}", str(SPLITNIC), *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.timeout(1800)
def test_info_over_eth(soc: SimSoCProcess) -> None:
    result = _cli(soc, "info", "--json", "--link", LINK)
    assert result.returncode == 0, result.stdout + result.stderr
    info = json.loads(result.stdout)
    # The board's HELLO answer (its NIC-local memory) and the ID block, read with READ messages.
    assert info["link_kind"] == "eth" and info["zero_copy"] is False, info
    assert info["build_id"] == f"{build_id():#010x}", info
    # The engines' own counters, read from the SoC bus at COUNTERS_BASE like any register: the HELLO
    # and the reads came in, answers went out, nothing was dropped or refused.
    board = info["board"]
    assert list(board) == [m.name for m in hostlink.BOARD_COUNTERS.members], board
    assert board["rx_frames"] > 0 and board["rx_messages"] > 0 and board["tx_frames"] > 0, board
    assert board["malformed"] == board["gaps"] == board["bad_address"] == board["overruns"] == 0, board
    text = _cli(soc, "info", "--link", LINK)
    assert text.returncode == 0, text.stderr
    assert LINK in text.stdout and f"hash {spec.SPEC_HASH:#010x}" in text.stdout, text.stdout
    assert f"{amap.DMA_RAM_SIZE // 1024} KiB NIC-local memory at {amap.DMA_RAM_BASE:#x}" in text.stdout, text.stdout
    counts = re.search(r"^host link: board took (\d+) frames \((\d+) messages\)", text.stdout, re.M)
    assert counts and int(counts[1]) > board["rx_frames"], text.stdout     # the counters go on counting


@pytest.mark.timeout(1800)
def test_selftest_over_eth(soc: SimSoCProcess) -> None:
    result = _cli(soc, "selftest", "--link", LINK, "--count", "16", "--timeout", "240")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS: 16 frames"), result.stdout


def test_etherbone_still_answers_beside_eth(soc: SimSoCProcess) -> None:
    # The same MAC carries both: UDP for Etherbone, EtherType hostlink.ETHERTYPE for the engines.
    assert _cli(soc, "info", "--link", LINK).returncode == 0
    result = _cli(soc, "info", "--json", "--link", soc.link)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["link_kind"] == "etherbone"
    assert hostlink.ETHERTYPE == 0x88B5


class WiredSoC:
    """The simulated SoC with its NIC's wire on a TAP in peer namespace ``peer_ns``.

    ``host_ns`` names the SoC's own namespace (``ip netns attach``), where the
    host-link TAP is and where ``splitnic up`` puts snic0.
    """

    def __init__(self) -> None:
        self.peer_ns, self.host_ns = unique("sp"), unique("sh")
        add_netns(self.peer_ns)
        self.soc = SimSoCProcess(wire="tap", wire_netns=self.peer_ns).start()
        sh("ip", "netns", "attach", self.host_ns, str(self.soc.pid))
        sh("ip", "-n", self.peer_ns, "addr", "add", f"{PEER_IP}/{PREFIX}", "dev", WIRE_TAP)
        sh("ip", "-n", self.peer_ns, "link", "set", WIRE_TAP, "up")

    def up(self, name: str, timeout: float = 300) -> UpProcess:
        cmd = ["ip", "netns", "exec", self.host_ns, str(SPLITNIC), "up", "--link", LINK, "--kernel", "tap",
               "--name", name]
        up = start_up(cmd, name, timeout)
        sh("ip", "-n", self.host_ns, "addr", "add", f"{HOST_IP}/{PREFIX}", "dev", name)
        return up

    def close(self) -> None:
        self.soc.close()
        del_netns(self.host_ns)
        del_netns(self.peer_ns)


@pytest.fixture
def wired() -> Iterator[WiredSoC]:
    w = WiredSoC()
    try:
        yield w
    finally:
        w.close()


@pytest.mark.timeout(1800)
def test_up_over_eth_reaches_a_kernel_on_the_wire(wired: WiredSoC) -> None:
    up = wired.up("snicsoc0")
    try:
        assert f"link {LINK}" in up.status, up.status
        ping = sh("ping", "-n", "-c", "3", "-i", "0.5", "-W", "20", HOST_IP, netns=wired.peer_ns, check=False,
                  timeout=180)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        tcp = Check("tcp")
        tcp_from_peer(wired, tcp, 64 << 10, timeout=300)    # full-size frames both ways
        assert tcp.ok, tcp.detail
    finally:
        status, out = up.stop(signal.SIGTERM)
    assert status == 0, out
    # 64 KiB each way is over 45 full-size segments, besides the pings and the handshake.
    counts = re.search(r"snicsoc0 down: to kernel (\d+) \(dropped 0\), to NIC (\d+) \(dropped 0", out)
    assert counts and min(int(n) for n in counts.groups()) > 45, out
