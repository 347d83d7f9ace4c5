"""The ``eth`` link end to end: the driver and its commands against the board's stand-in over a veth pair.

Ref: hostdrv/splitnic/link_eth.py (the link), hostdrv/splitnic/_hostlink.c (the host
side), sim/splitnic_sim/hostlink_standin.c (the board side: the software NIC
model speaking the protocol), spec/splitnic_spec/hostlink.py.

The queue tests (test_queues.py, test_rx_modes.py) run on this link too, through
``any_nic``; these cover what is particular to it: the commands, the board's
small NIC-local memory, a frame lost on the cable either way (replayed, never
missing), a board reset under a running driver, the link argument's forms, and
the errors a user meets first.  The seeded fault tests are in
test_hostlink_faults.py; the protocol's host-side rules, against a scripted
board, in test_hostlink_port.py.
"""

from __future__ import annotations

import os
import signal
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from splitnic.errors import SplitnicError
from splitnic.link_eth import EthTarget, parse_eth
from splitnic.stats_control import socket_path
from splitnic_spec import board as amap
from splitnic_spec import hostlink as hl

from splitnic_lab.netns import add_netns, del_netns, inside, sh, unique

from .conftest import eth_standin, frame, receive, reset_nic

SPLITNIC = Path(sys.executable).parent / "splitnic"


def _run_inside(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``splitnic ARGS`` in the namespace this thread is in (the stand-in's)."""
    netns = f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns/net"
    return subprocess.run(["nsenter", f"--net={netns}", str(SPLITNIC), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_info_and_selftest_run_over_eth_on_the_boards_32_kib() -> None:
    with eth_standin() as (stand_in, link):
        info = _run_inside("info", "--link", link)
        assert info.returncode == 0, info.stderr
        assert "eth:snhost" in info.stdout and "copying" in info.stdout
        assert f"{amap.DMA_RAM_SIZE // 1024} KiB NIC-local memory" in info.stdout
        result = _run_inside("selftest", "--link", link, "--count", "40")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "PASS" in result.stdout
        counters = stand_in.counters()
        # Everything the driver wrote went as posted messages; nothing was refused on the way.
        assert counters["messages_in"] > 40 and counters["bad_address"] == counters["malformed"] == 0


def test_frames_cross_both_ways_and_the_rings_live_on_their_side_of_the_cable() -> None:
    with eth_standin() as (stand_in, link), reset_nic(link) as nic:
        nic.enable(rx=True, tx=True)
        rxq, txq = nic.rx_queue(0), nic.tx_queue(0)
        # What the NIC writes is in host memory, what it reads on the board.
        for region, host_side in ((rxq.ring.cpl, True), (rxq.ring.bufs, True), (rxq.ring.desc, False),
                                  (txq.ring.cpl, True), (txq.ring.bufs, False), (txq.ring.desc, False)):
            assert (region.device_addr >= hl.HOST_WINDOW_BASE) == host_side, region
        # More frames than the board's 32 KiB hold TX buffers: TX completions must come back to free them.
        sent = [frame(size=60 + 100 * i, payload=bytes([i])) for i in range(14)]
        assert txq.ring.nbufs < len(sent)
        left, deadline = list(sent), time.monotonic() + 10
        while left and time.monotonic() < deadline:
            left = left[txq.tx_burst(left):]
            time.sleep(0.005)
        on_wire: list[bytes] = []
        while len(on_wire) < len(sent) and time.monotonic() < deadline:
            on_wire += stand_in.nic.sent()     # takes them out of the model's mailbox
            time.sleep(0.01)
        assert on_wire == sent
        arriving = [frame(size=64 + 50 * i, payload=bytes([0x40 + i])) for i in range(8)]
        for f in arriving:
            assert stand_in.inject(f)
        got = receive(rxq, len(arriving), timeout=10)
        assert [bytes(p.data) for p in got] == arriving
        rxq.release(got)
        port = nic.link.bus.port
        assert port.counters()["gaps"] == 0 and port.counters()["bad_address"] == 0


def test_a_frame_the_board_sent_and_the_cable_lost_is_replayed_not_missing() -> None:
    with eth_standin() as (stand_in, link), reset_nic(link) as nic:
        nic.enable(rx=True, tx=True)
        rxq = nic.rx_queue(0)
        stand_in.drop_sent(1)                      # the frame carrying the next frame data or completions
        arriving = [frame(size=100 + i, payload=bytes([0x60 + i])) for i in range(6)]
        for f in arriving:
            assert stand_in.inject(f)
        got = receive(rxq, len(arriving), timeout=10)
        # Every frame, byte for byte, in order: the board sent the lost one again.
        assert [bytes(p.data) for p in got] == arriving
        rxq.release(got)
        nic.stats()                                # register reads carry on: a loss is never fatal
        assert stand_in.counters()["test_drops_out"] == 1


def test_a_frame_the_host_sent_and_the_cable_lost_is_sent_again() -> None:
    with eth_standin() as (stand_in, link), reset_nic(link) as nic:
        nic.set_loopback(True)
        rxq, txq = nic.rx_queue(0), nic.tx_queue(0)
        stand_in.drop_received(1)                  # the next frame from the host: descriptors and a doorbell
        frames = [frame(size=80, payload=bytes([i])) for i in range(4)]
        assert txq.tx_burst(frames) == 4
        got = receive(rxq, 4, timeout=10)
        assert [bytes(p.data) for p in got] == frames
        rxq.release(got)
        counters = stand_in.counters()
        # The board NAKs a gap if a later frame came first; else the host's resend timer fired.
        assert counters["test_drops_in"] == 1
        assert nic.link.bus.port.counters()["resent_frames"] >= 1


def test_the_boards_link_counters_are_read_like_registers_and_shown_by_info() -> None:
    with eth_standin() as (stand_in, link):
        with reset_nic(link) as nic:
            port = nic.link.bus.port
            port.write32(0x1000_0000, 1)                       # nowhere: refused and counted
            port.write32(hl.COUNTERS_BASE, 0xFFFF_FFFF)         # the counters take no writes, and no offence
            first = nic.link.board_counters()
            assert list(first) == [m.name for m in hl.BOARD_COUNTERS.members]
            mine = stand_in.counters()
            assert first["bad_address"] == 1 == mine["bad_address"]
            assert 0 < first["rx_messages"] <= mine["messages_in"] and first["rx_frames"] <= mine["frames_in"]
            assert first["tx_frames"] > 0 and first["malformed"] == first["gaps"] == 0
            # Words past BoardCounters read 0; a READ past the window is refused like any other.
            assert port.read(hl.COUNTERS_BASE + hl.BOARD_COUNTERS.size, 2) == [0, 0]
            nic.stats()
            again = nic.link.board_counters()
            assert again["rx_messages"] > first["rx_messages"] and again["tx_frames"] > first["tx_frames"]
        info = _run_inside("info", "--link", link)
        assert info.returncode == 0, info.stderr
        # (A duplicate or two is fine: closing the first link may leave a frame the board sees again.)
        assert re.search(r"^host link: board took \d+ frames \(\d+ messages\), sent \d+ \(\d+\); frames dropped: "
                         r"malformed 0, after a gap 0, duplicates \d+, over credit 0; messages refused 1; "
                         r"credit stalls \d+$", info.stdout, re.M), info.stdout


def test_a_missing_interface_is_a_one_line_error() -> None:
    with eth_standin() as (_stand_in, _link):
        result = _run_inside("info", "--link", "eth:nosuch0")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "no interface 'nosuch0'" in result.stderr and "docs/hardware.md" in result.stderr


@pytest.mark.parametrize("arg, target", [
    ("enp3s0", EthTarget("enp3s0")),
    ("enp3s0@02:00:5e:10:00:01", EthTarget("enp3s0", bytes.fromhex("02005e100001"))),
    ("enp3s0,takeover", EthTarget("enp3s0", None, True)),
    ("enp3s0@02-00-5e-10-00-01,takeover", EthTarget("enp3s0", bytes.fromhex("02005e100001"), True)),
])
def test_the_link_argument_names_interface_board_and_takeover(arg: str, target: EthTarget) -> None:
    assert parse_eth(arg) == target


@pytest.mark.parametrize("arg, why", [
    ("enp3s0@02:00:5e", r"'02:00:5e' is not a MAC address"),
    ("enp3s0@zz:00:5e:10:00:01", r"is not a MAC address"),
    ("enp3s0,steal", r"unknown option 'steal'"),
    ("@02:00:5e:10:00:01", r"no interface name"),
])
def test_a_bad_link_argument_is_one_line_with_the_form(arg: str, why: str) -> None:
    with pytest.raises(SplitnicError, match=rf"^eth:.*{why}.*the form is eth:IFNAME\[@MAC\]\[,takeover\]$"):
        parse_eth(arg)


def test_splitnic_up_keeps_its_interface_across_a_board_reset_and_sets_the_nic_up_again(tmp_path: Path) -> None:
    # A power-cycled board forgets the session, the NIC's registers and queues: the link binds it again by
    # itself, writes NIC-local memory again, and `splitnic up` re-arms queue pair 0, MAC and interrupt.
    from tests.kernel.test_up_softnic import HOST_IP, PEER_IP, SoftWire, _udp_payloads, udp_frame

    wire = SoftWire("eth", tmp_path)
    try:
        up = wire.up("snicrst0")
        try:
            tx, rx = wire.socket(), wire.socket()
            tx.bind((HOST_IP, 7777))
            rx.bind((HOST_IP, 7778))
            rx.settimeout(10)

            def both_ways(tag: bytes) -> None:
                out = [tag + b" k2n %03d" % i for i in range(20)]
                for p in out:
                    tx.sendto(p, (PEER_IP, 7777))
                sent: list[bytes] = []
                deadline = time.monotonic() + 20
                while len(_udp_payloads(sent)) < len(out) and time.monotonic() < deadline:
                    sent += wire.model.sent()
                    time.sleep(0.01)
                assert _udp_payloads(sent) == out
                inbound = [tag + b" n2k %03d" % i for i in range(20)]
                for p in inbound:
                    assert wire.model.inject(udp_frame(p))
                assert [rx.recv(2048) for _ in inbound] == inbound

            both_ways(b"before")
            stand_in = wire.model.stand_in
            session = stand_in.session
            stand_in.reset_board()
            deadline = time.monotonic() + 10
            while stand_in.session in (None, session):
                assert time.monotonic() < deadline, "the host did not bind the reset board again"
                time.sleep(0.01)
            time.sleep(0.2)                                # the loop wakes and re-arms the NIC
            assert up.proc.poll() is None, "splitnic up exited on a board reset"
            both_ways(b"after")
            tx.close()
            rx.close()
        finally:
            status, out_text = up.stop(signal.SIGTERM)
        assert status == 0, out_text
        assert "board was reset" in out_text, out_text
    finally:
        wire.close()


def test_splitnic_up_waits_out_a_pulled_cable_and_carries_on(tmp_path: Path) -> None:
    # The host's cable is out for longer than a write's credit timeout (2 s) while the kernel sends:
    # the link reports the board silent and waits; when the cable is back, frames flow again.
    from tests.kernel.test_up_softnic import HOST_IP, PEER_IP, SoftWire, _udp_payloads, udp_frame

    wire = SoftWire("eth", tmp_path)
    try:
        up = wire.up("snicpull0")
        try:
            tx, rx = wire.socket(), wire.socket()
            tx.bind((HOST_IP, 7777))
            rx.bind((HOST_IP, 7778))
            rx.settimeout(10)
            sh("ip", "link", "set", "snhost", "down", netns=wire.ns)
            for i in range(50):                            # the TX ring and the link's frames fill, and wait
                tx.sendto(b"pulled %03d" % i, (PEER_IP, 7777))
                time.sleep(0.05)
            assert up.proc.poll() is None, "splitnic up exited while the cable was out"
            sh("ip", "link", "set", "snhost", "up", netns=wire.ns)
            wire.model.sent()
            out = [b"back k2n %03d" % i for i in range(20)]
            sent: list[bytes] = []
            deadline = time.monotonic() + 20
            for p in out:
                tx.sendto(p, (PEER_IP, 7777))
            while not set(out) <= set(_udp_payloads(sent)) and time.monotonic() < deadline:
                sent += wire.model.sent()
                time.sleep(0.01)
            assert [p for p in _udp_payloads(sent) if p.startswith(b"back")] == out
            inbound = [b"back n2k %03d" % i for i in range(20)]
            for p in inbound:
                assert wire.model.inject(udp_frame(p))
            assert [rx.recv(2048) for _ in inbound] == inbound
            tx.close()
            rx.close()
        finally:
            status, out_text = up.stop(signal.SIGTERM)
        assert status == 0, out_text
        assert "waiting for it" in out_text and "answers again" in out_text, out_text
    finally:
        wire.close()


def test_the_board_is_named_by_its_mac_and_another_mac_is_one_line() -> None:
    with eth_standin() as (stand_in, link):
        mac = stand_in.mac.hex(":")
        info = _run_inside("info", "--link", f"{link}@{mac}")
        assert info.returncode == 0, info.stderr
        assert f"board {mac}" in info.stdout
        result = _run_inside("info", "--link", f"{link}@02:00:00:00:00:99", timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "no answer from the board 02:00:00:00:00:99 over eth:snhost" in result.stderr
    assert "other boards answered" in result.stderr


def test_each_network_namespace_has_its_own_stats_socket_for_an_eth_link() -> None:
    # eth:snhost in two namespaces is two boards: a second `splitnic up` on the same name must serve its own
    # counters (it could not, and `splitnic stats` in its namespace printed the first one's), while a file
    # link names one NIC from any namespace.
    spaces = [unique("snstat"), unique("snstat")]
    paths = []
    try:
        for ns in spaces:
            add_netns(ns)
            with inside(ns):
                paths.append((socket_path("eth:snhost"), socket_path("etherbone:192.168.1.50"),
                              socket_path("sim:/tmp/nic.sock")))
        with inside(spaces[0]):
            assert socket_path("eth:snhost") == paths[0][0]
    finally:
        for ns in spaces:
            del_netns(ns)
    (eth_a, eb_a, sim_a), (eth_b, eb_b, sim_b) = paths
    assert eth_a != eth_b and eb_a != eb_b and sim_a == sim_b


def test_splitnic_stats_finds_an_up_that_took_the_board_over() -> None:
    from splitnic.stats_control import canonical_link, socket_path
    # ``up --link eth:IF,takeover`` serves its counters where ``stats --link eth:IF`` looks.
    assert socket_path("eth:snx0,takeover") == socket_path("eth:snx0")
    assert canonical_link("eth:snx0@0A:1B:2C:3D:4E:5F,takeover") == "eth:snx0@0a:1b:2c:3d:4e:5f"
    assert canonical_link("eth:snx0@0a:1b:2c:3d:4e:5f") != canonical_link("eth:snx0@0a:1b:2c:3d:4e:60")
