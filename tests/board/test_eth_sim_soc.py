"""The ``eth`` host link end to end on the simulated board SoC: the driver's commands over the SoC's TAP.

Ref: splitnic_spec.hostlink (the protocol); gateware/splitnic_gateware/hostlink
(the board's engines) and targets/hostlink_core.py (their place in the SoC);
hostdrv/splitnic/link_eth.py (the host side).  The same SoC as the bitstream
(:class:`~splitnic_gateware.targets.sim.SimSoCProcess`, started as in
test_sim_soc.py: root, /dev/net/tun, built on first use); the host reaches
``snebtap0``, the TAP that is the board's host-link cable, inside the SoC's
namespace (through the relay, below).  The HELLO, register reads (the ID block), descriptors and
TX buffers pushed into NIC-local memory, completions and RX frames coming back
as messages, the NIC's interrupt: ``splitnic selftest`` exercises all of it.

One simulated SoC serves the whole module (:class:`RelayedSoC`): its NIC's
wire is a TAP in a peer namespace (``SimSoCProcess(wire="tap")``), and the
host reaches the board through the impairment relay
(lab/splitnic_lab/impair.py): ``eth:snhost``, a veth whose other end the relay
joins to the SoC's TAP, in the SoC's namespace.  The relay is clean unless a
test says otherwise, so the commands first measure the clean link:
``splitnic up`` runs over ``eth:`` and the peer's kernel pings snic0's
kernel and sends it TCP through the board's NIC and the host link, both ways.
Last, the same through seeded loss, duplication and reordering both ways
(``SPLITNIC_FAULT_SEED=N`` replays a run; the test prints its seed): the
board's engines on the Verilator SoC recover, ``selftest`` passes, ``up``
keeps one session and carries ping and TCP intact (by SHA-256), and once the
relay is clean again the link carries on as before.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

import splitnic_spec as spec
from splitnic_spec import board as amap
from splitnic_spec import hostlink
from splitnic_gateware.targets.flash_uid import HOST_LINK_MAC_FIRST, SIM_UID, mac_from_uid
from splitnic_gateware.targets.nic_core import build_id
from splitnic_gateware.targets.sim import TAP, WIRE_TAP, SimSoCProcess
from splitnic_lab.impair import HOST_IF, RELAY_HOST_IF, ImpairRelay, Rates, impaired_segment
from splitnic_lab.netns import add_netns, del_netns, inside, sh, unique
from splitnic_lab.sim_lab import HOST_IP, PEER_IP, PREFIX, Check, tcp_from_peer
from splitnic_lab.veth_lab import UpProcess, start_up, tcp_by_hash

SPLITNIC = Path(sys.executable).parent / "splitnic"
#: The host's end of the relayed cable (the relay joins its veth peer to the SoC's TAP).
LINK = f"eth:{HOST_IF}"
#: Longest the module's relay runs (it stops by itself then; the module takes a minute or two).
RELAY_MAX_S = 1800


class RelayedSoC:
    """The simulated SoC, its NIC's wire on a TAP in peer namespace ``peer_ns``, its host-link cable
    behind the impairment relay (clean until a test sets rates).

    ``host_ns`` names the SoC's own namespace (``ip netns attach``), where the
    host-link TAP, the relay's veth pair and the relay's sockets are, and where
    ``splitnic up`` puts snic0.  ``relay.seed`` is SPLITNIC_FAULT_SEED or a new
    one: a clean relay draws nothing, so the k-th frame after a test sets rates
    meets the same fate for the same seed whatever ran before.
    """

    def __init__(self) -> None:
        self.peer_ns, self.host_ns = unique("sp"), unique("sh")
        self.soc: SimSoCProcess | None = None
        self.relay: ImpairRelay | None = None
        add_netns(self.peer_ns)
        try:
            self.soc = SimSoCProcess(wire="tap", wire_netns=self.peer_ns).start()
            sh("ip", "netns", "attach", self.host_ns, str(self.soc.pid))
            # No IPv6 on the peer's side: the NIC takes in only what the tests send (selftest compares
            # what its loopback returns, frame by frame).
            sh("sysctl", "-qw", f"net.ipv6.conf.{WIRE_TAP}.disable_ipv6=1", netns=self.peer_ns)
            sh("ip", "-n", self.peer_ns, "addr", "add", f"{PEER_IP}/{PREFIX}", "dev", WIRE_TAP)
            sh("ip", "-n", self.peer_ns, "link", "set", WIRE_TAP, "up")
            with impaired_segment(self.host_ns, board_if=TAP), inside(self.host_ns):
                seed = int(os.environ.get("SPLITNIC_FAULT_SEED") or random.randrange(1 << 32))
                self.relay = ImpairRelay(RELAY_HOST_IF, TAP, seed=seed, max_seconds=RELAY_MAX_S).start()
        except BaseException:
            self.close()
            raise

    def up(self, name: str, timeout: float = 300) -> UpProcess:
        cmd = ["ip", "netns", "exec", self.host_ns, str(SPLITNIC), "up", "--link", LINK, "--kernel", "tap",
               "--name", name]
        up = start_up(cmd, name, timeout)
        sh("ip", "-n", self.host_ns, "addr", "add", f"{HOST_IP}/{PREFIX}", "dev", name)
        return up

    def close(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        if self.soc is not None:
            self.soc.close()
        del_netns(self.host_ns)
        del_netns(self.peer_ns)


@pytest.fixture(scope="module")
def board() -> Iterator[RelayedSoC]:
    # Builds the simulator the first time (minutes).
    running = RelayedSoC()
    try:
        yield running
    finally:
        running.close()


def _cli(board: RelayedSoC, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``splitnic ARGS`` in the simulated SoC's namespace, where the relayed cable is."""
    return sh(str(SPLITNIC), *args, netns=board.host_ns, check=False, timeout=timeout)


@pytest.mark.timeout(1800)
def test_info_over_eth(board: RelayedSoC) -> None:
    result = _cli(board, "info", "--json", "--link", LINK)
    assert result.returncode == 0, result.stdout + result.stderr
    info = json.loads(result.stdout)
    # The board's HELLO answer (its NIC-local memory) and the ID block, read with READ messages.
    assert info["link_kind"] == "eth" and info["zero_copy"] is False, info
    assert info["build_id"] == f"{build_id():#010x}", info
    # The engines' own counters, read from the SoC bus at COUNTERS_BASE like any register: the HELLO
    # and the reads came in, answers went out, nothing was dropped or refused.
    counters = info["board"]
    assert list(counters) == [m.name for m in hostlink.BOARD_COUNTERS.members], counters
    assert counters["rx_frames"] > 0 and counters["rx_messages"] > 0 and counters["tx_frames"] > 0, counters
    assert counters["malformed"] == counters["gaps"] == counters["bad_address"] == counters["overruns"] == 0, \
        counters
    text = _cli(board, "info", "--link", LINK)
    assert text.returncode == 0, text.stderr
    assert LINK in text.stdout and f"hash {spec.SPEC_HASH:#010x}" in text.stdout, text.stdout
    assert f"{amap.DMA_RAM_SIZE // 1024} KiB NIC-local memory at {amap.DMA_RAM_BASE:#x}" in text.stdout, text.stdout
    found = re.search(r"^host link: board took (\d+) frames \((\d+) messages\)", text.stdout, re.M)
    assert found and int(found[1]) > counters["rx_frames"], text.stdout     # the counters go on counting


@pytest.mark.timeout(1800)
def test_selftest_over_eth(board: RelayedSoC) -> None:
    result = _cli(board, "selftest", "--link", LINK, "--count", "16", "--timeout", "240")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS: 16 frames"), result.stdout


def test_etherbone_still_answers_beside_eth(board: RelayedSoC) -> None:
    # The same MAC carries both: UDP for Etherbone (straight on the SoC's TAP, past the relay),
    # EtherType hostlink.ETHERTYPE for the engines.
    assert _cli(board, "info", "--link", LINK).returncode == 0
    result = _cli(board, "info", "--json", "--link", board.soc.link)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["link_kind"] == "etherbone"
    assert hostlink.ETHERTYPE == 0x88B5


@pytest.mark.timeout(1800)
def test_up_over_eth_reaches_a_kernel_on_the_wire(board: RelayedSoC) -> None:
    up = board.up("snicsoc0")
    try:
        assert f"link {LINK}" in up.status, up.status
        ping = sh("ping", "-n", "-c", "3", "-i", "0.5", "-W", "20", HOST_IP, netns=board.peer_ns, check=False,
                  timeout=180)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        tcp = Check("tcp")
        tcp_from_peer(board, tcp, 64 << 10, timeout=300)    # full-size frames both ways
        assert tcp.ok, tcp.detail
    finally:
        status, out = up.stop(signal.SIGTERM)
    assert status == 0, out
    # 64 KiB each way is over 45 full-size segments, besides the pings and the handshake.
    counts = re.search(r"snicsoc0 down: to kernel (\d+) \(dropped 0\), to NIC (\d+) \(dropped 0", out)
    assert counts and min(int(n) for n in counts.groups()) > 45, out


@pytest.mark.timeout(600)
def test_the_board_answers_from_its_own_address_and_binds_only_when_named(board: RelayedSoC) -> None:
    from tests.sim.test_hostlink_standin import BROADCAST, Host
    # The firmware gave the host link the address the flash's id makes (not the one every SoC is built
    # with), so two boards on one switch differ.
    own = mac_from_uid(SIM_UID, HOST_LINK_MAC_FIRST)
    host = Host(board.host_ns, HOST_IF, session=0x5E55_0A11)
    try:
        found = host.discover()
        assert found is not None, "no answer to discovery"
        assert found[0][6:12] == own != amap.BOARD_MAC.to_bytes(6, "big"), found[0][6:12].hex(":")
        # A binding request sent to the broadcast address binds nothing (it would bind every board that
        # hears it): no answer, counted as malformed; the same request to the board's address binds.
        before = json.loads(_cli(board, "info", "--json", "--link", LINK).stdout)["board"]["malformed"]
        host.session += 1
        host.raw(host.hello_frame(), dst=BROADCAST)
        assert host.hello_answers(host.session, timeout=2.0) == [], "a broadcast binding HELLO was answered"
        assert json.loads(_cli(board, "info", "--json", "--link", LINK).stdout)["board"]["malformed"] == before + 1
        host.session += 1
        host.raw(host.hello_frame(), dst=own)
        answers = host.hello_answers(host.session, timeout=10.0)
        assert answers and answers[0][1].flags & hostlink.FLAG_ANSWER, "the board's own address was not answered"
    finally:
        host.sock.close()
    result = _cli(board, "info", "--link", f"{LINK}@{own.hex(':')}")       # the host names it too
    assert result.returncode == 0, result.stdout + result.stderr


#: What the impaired test does to each direction of the host-link cable: every kind of fault, often
#: enough that the few thousand frames of a run meet each of them many times.
IMPAIRED = Rates(loss=0.03, dup=0.02, reorder=0.03)
#: TCP through snic0 over the impaired cable: 180 full-size segments and more (1 to 4 s on this machine,
#: 5 to 8 s when the board's resend timer still counted the cycles its frames took to leave).
TCP_BYTES = 256 << 10
#: ... and over the cable once it is clean again.
TCP_CLEAN_BYTES = 64 << 10


def _ping(board: RelayedSoC, count: int) -> subprocess.CompletedProcess:
    """Pings from the peer until ``count`` answers came, for 30 s at most.  Not "each of ``count``
    answered": ping counts an answer later than twice the slowest so far as lost, and a go-back-N
    resend can make one that late; the link loses nothing, but on a loaded machine the driver's pump
    may drop a frame the NIC's queue kept full for 100 ms (tunnel_pump's stall timeout)."""
    return sh("ping", "-n", "-c", str(count), "-i", "0.2", "-w", "30", HOST_IP, netns=board.peer_ns, check=False,
              timeout=120)


def _all_answered(ping: subprocess.CompletedProcess, count: int) -> bool:
    return ping.returncode == 0 and f" {count} received" in ping.stdout


@pytest.mark.timeout(600)
def test_selftest_and_up_over_an_impaired_cable_then_a_clean_one(board: RelayedSoC) -> None:
    relay = board.relay
    print(f"SPLITNIC_FAULT_SEED={relay.seed}")
    before = relay.counters()
    sessions = relay.ways["h2b"].counts["sessions"]
    try:
        for direction in ("h2b", "b2h"):
            relay.set_rates(direction, IMPAIRED)
        selftest = _cli(board, "selftest", "--link", LINK, "--count", "16", "--timeout", "120", timeout=180)
        print(selftest.stdout, selftest.stderr)
        assert selftest.returncode == 0, selftest.stdout + selftest.stderr
        assert selftest.stdout.startswith("PASS: 16 frames"), selftest.stdout
        start = time.monotonic()
        up = board.up("snicsoc1", timeout=120)
        print(f"{up.status} after {time.monotonic() - start:.1f} s")
        try:
            ping = _ping(board, 5)
            assert _all_answered(ping, 5), ping.stdout + ping.stderr
            sent, got, seconds = tcp_by_hash(board.host_ns, board.peer_ns, HOST_IP, TCP_BYTES, timeout=120)
            print(f"{TCP_BYTES} bytes of TCP over the impaired cable in {seconds:.1f} s")
            assert got == sent, "the TCP transfer through snicsoc1 arrived changed or short"
            assert up.proc.poll() is None, "splitnic up exited on the cable's faults"
            impaired = relay.counters()
            # The cable heals: the same session carries on at once, and nothing is lost any more.
            relay.clean()
            start = time.monotonic()
            ping = _ping(board, 1)
            recovery = time.monotonic() - start
            assert _all_answered(ping, 1), ping.stdout + ping.stderr
            ping = _ping(board, 3)
            assert _all_answered(ping, 3), ping.stdout + ping.stderr
            sent, got, seconds = tcp_by_hash(board.host_ns, board.peer_ns, HOST_IP, TCP_CLEAN_BYTES, timeout=120)
            print(f"recovered: a ping round trip {recovery * 1000:.0f} ms after the cable was clean; "
                  f"{TCP_CLEAN_BYTES} bytes of TCP over it in {seconds:.1f} s")
            assert got == sent, "the TCP transfer through snicsoc1 over the clean cable arrived changed or short"
            assert up.proc.poll() is None, "splitnic up exited once the cable was clean"
        finally:
            status, out = up.stop(signal.SIGTERM)
            print(out)
    finally:
        relay.clean()
    after = relay.counters()
    print("relay:", after)
    assert status == 0, out
    # Both ways met every fault, the relay kept up (what it counted is what the cable did), and one
    # session carried selftest, one carried up, from start to end.
    for direction in ("h2b", "b2h"):
        way, was = impaired[direction], before[direction]
        for fate in ("lost", "duplicated", "reordered"):
            assert way[fate] > was[fate], (direction, fate, impaired)
        assert after[direction]["lost"] == way["lost"], "the relay lost frames once it was clean"
        assert after[direction]["kernel_drops"] == after[direction]["send_errors"] == 0, after
    assert relay.ways["h2b"].counts["sessions"] - sessions == 2, after
    # The board's engines saw the faults (gaps and duplicates they dropped) and the link still answers.
    info = _cli(board, "info", "--json", "--link", LINK)
    assert info.returncode == 0, info.stdout + info.stderr
    counters = json.loads(info.stdout)["board"]
    print("board:", counters)
    assert counters["gaps"] > 0 and counters["duplicates"] > 0, counters
