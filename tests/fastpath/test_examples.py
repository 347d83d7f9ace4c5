"""The examples end to end on the software NIC and on the NIC's RTL: a kernel peer talks to each, beside snic0.

Ref: examples/ (echo, kv_cache, flow_monitor, pcap_recorder); docs/apps.md;
lab/splitnic_lab/app_lab.py (the lab).  The key-value cache also runs inside
``splitnic up`` (``--fast 'RULE -> examples.kv_cache:handle'``): the same handler, both ways.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from splitnic.frames import udp_payload
from splitnic.pcap import read_pcap

from splitnic_lab.app_lab import HOST_IP, AppLab, echoes


@pytest.fixture(scope="module", params=["software", "verilator"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppLab]:
    """The software NIC (mmio link) or the NIC's RTL on Verilator (sim link), one for the module's
    tests (each example stops before the next starts)."""
    lab = AppLab(tmp_path_factory.mktemp("examples"), simulator=request.param)
    try:
        yield lab
    finally:
        lab.close()


def ask(sock: socket.socket, port: int, request: bytes) -> bytes:
    sock.sendto(request, (HOST_IP, port))
    data, source = sock.recvfrom(2048)
    assert source == (HOST_IP, port)
    return data


def kv_exchange(lab: AppLab, port: int) -> None:
    peer = lab.peer_socket()
    assert ask(peer, port, b"GET colour") == b"NOT_FOUND"
    assert ask(peer, port, b"SET colour teal") == b"STORED"
    assert ask(peer, port, b"GET colour") == b"VALUE teal"
    assert ask(peer, port, b"DEL colour") == b"DELETED"
    assert ask(peer, port, b"GET colour") == b"NOT_FOUND"
    assert ask(peer, port, b"FLY") == b"ERROR"
    assert lab.ping().returncode == 0, "snic0 beside it"


def stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return out


def test_echo_answers_from_its_own_process(lab: AppLab) -> None:
    proc, _ = lab.start(["examples/echo.py", "--apps", str(lab.apps_path), "--port", "9000"], "echo: UDP")
    assert echoes(lab.peer_socket(), 9000, 10, b"echo", lab.wake_latency) == 10
    assert "10 answered" in stop(proc)


def test_kv_cache_answers_from_its_own_process(lab: AppLab) -> None:
    proc, _ = lab.start(["examples/kv_cache.py", "--apps", str(lab.apps_path), "--port", "9000"], "kv_cache: UDP")
    kv_exchange(lab, 9000)
    assert "6 requests, 0 keys" in stop(proc)


@pytest.mark.parametrize("simulator", ["software", "verilator"])
def test_kv_cache_answers_inside_splitnic_up(tmp_path: Path, simulator: str) -> None:
    lab = AppLab(tmp_path, ["--fast", "udp dport 9000 -> examples.kv_cache:handle"], simulator=simulator)
    try:
        kv_exchange(lab, 9000)
    finally:
        lab.close()


def test_flow_monitor_counts_each_flow_and_prints_top_talkers(lab: AppLab) -> None:
    proc, _ = lab.start(["examples/flow_monitor.py", "--apps", str(lab.apps_path), "--rule", "udp dport 6343",
                         "--interval", "0.2"], "flow_monitor: watching")
    for sport, count in ((5001, 30), (5002, 10)):
        sock = lab.peer_socket()
        sock.bind(("", sport))
        for i in range(count):
            sock.sendto(b"x" * (10 + i % 3), (HOST_IP, 6343))
        sock.close()
    with pytest.raises(socket.timeout):    # taken by the monitor, not answered, not the kernel's
        lab.host_socket(6343).recv(2048)
    out = stop(proc)
    assert "top 2 of 2 flows:" in out, out
    report = json.loads(out.strip().splitlines()[-1])
    flows = {(f["proto"], f["sport"], f["dport"]): f["packets"] for f in report["flows"]}
    assert flows == {("udp", 5001, 6343): 30, ("udp", 5002, 6343): 10}


def test_pcap_recorder_writes_every_frame_in_order(lab: AppLab, tmp_path: Path) -> None:
    out_file = tmp_path / "capture.pcap"
    proc, _ = lab.start(["examples/pcap_recorder.py", "--apps", str(lab.apps_path), "--rule", "udp dport 7100",
                         "--out", str(out_file)], "pcap_recorder: recording")
    sock = lab.peer_socket()
    sent = [b"frame %04d " % i + bytes(i % 200) for i in range(300)]
    for i, payload in enumerate(sent):
        sock.sendto(payload, (HOST_IP, 7100))
        if i % 100 == 99:
            time.sleep(0.05)       # bursts of 100: a burst fits the ring whatever the scheduler does
    assert lab.ping().returncode == 0
    out = stop(proc)
    assert "300 frames" in out, out
    assert [udp_payload(f) for f in read_pcap(out_file)] == sent
