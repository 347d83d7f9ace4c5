"""The driver's CLI commands as a user runs them: exit codes, output, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from splitnic_spec import CSR_MAP, SPEC_HASH

from .conftest import NIC_MAC, frame

SPLITNIC = Path(sys.executable).parent / "splitnic"


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(SPLITNIC), *args], capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("splitnic: error: "), result.stderr
    for w in words:
        assert w in lines[0]


def test_info_shows_id_block_and_link(softnic) -> None:
    link = CSR_MAP.register("LINK")
    softnic.write_reg(link.offset, link.pack(UP=1, SPEED=link.field("SPEED").value("1000"), FULL_DUPLEX=1))
    result = run("info", "--link", softnic.link)
    assert result.returncode == 0, result.stderr
    assert f"hash {SPEC_HASH:#010x}" in result.stdout and "zero-copy" in result.stdout
    assert "up, 1000 Mb/s full duplex" in result.stdout
    info = json.loads(run("info", "--link", softnic.link, "--json").stdout)
    assert info["link_kind"] == "mmio" and info["link_up"] is True


@pytest.mark.parametrize("command", ["info", "stats", "send", "capture", "selftest"])
def test_every_command_gives_a_one_line_error_for_an_unreachable_link(command: str, tmp_path: Path) -> None:
    assert_one_line_error(run(command, "--link", f"sim:{tmp_path / 'none.sock'}"), "no simulator listening")
    assert_one_line_error(run(command, "--link", "nowhere:1"), "unknown link kind")


def test_wrong_device_is_one_line(softnic) -> None:
    softnic.write_reg(CSR_MAP.register("ID_MAGIC").offset, 0xDEADBEEF)
    assert_one_line_error(run("info", "--link", softnic.link), "0xdeadbeef", "not a splitnic NIC")


def test_stats_json_and_watch(softnic) -> None:
    softnic.write_reg(CSR_MAP.register("STAT_RX_OK").offset, 1234)
    stats = json.loads(run("stats", "--link", softnic.link, "--json").stdout)
    assert stats["rx_ok"] == 1234 and stats["tx_ok"] == 0
    result = run("stats", "--link", softnic.link, "--watch", "0.1", "--count", "2")
    assert result.returncode == 0 and result.stdout.count("rx_ok ") == 2 and "/s" in result.stdout


def test_send_builds_udp_frames_that_scapy_parses(softnic) -> None:
    result = run("send", "--link", softnic.link, "--dst", "02:00:00:00:00:09", "--udp-dport", "9000",
                 "--count", "3", "--size", "120")
    assert result.returncode == 0, result.stderr
    assert "sent 3 frames (360 bytes)" in result.stdout
    sent = softnic.sent()
    assert len(sent) == 3 and all(len(f) == 120 for f in sent)
    from scapy.layers.inet import UDP
    from scapy.layers.l2 import Ether
    pkt = Ether(sent[2])
    assert pkt.dst == "02:00:00:00:00:09" and pkt[UDP].dport == 9000
    assert bytes(pkt[UDP].payload)[:4] == (2).to_bytes(4, "big")


def test_send_without_a_target_is_a_one_line_error(softnic) -> None:
    assert_one_line_error(run("send", "--link", softnic.link), "--pcap FILE", "--dst MAC")


def test_capture_writes_pcap_that_tshark_reads_and_send_replays_it(softnic, tmp_path: Path) -> None:
    pcap = tmp_path / "cap.pcap"
    proc = subprocess.Popen([str(SPLITNIC), "capture", "--link", softnic.link, "-w", str(pcap), "--count", "4",
                             "--seconds", "30"], stderr=subprocess.PIPE, text=True)
    try:
        assert "capturing on RX queue 0" in proc.stderr.readline()
        softnic.write_reg(CSR_MAP.register("MAC_ADDR_LO").offset, int.from_bytes(NIC_MAC[:4], "little"))
        softnic.write_reg(CSR_MAP.register("MAC_ADDR_HI").offset, int.from_bytes(NIC_MAC[4:], "little"))
        frames = [frame(size=64 + 10 * i, payload=b"cap%d" % i) for i in range(4)]
        for f in frames:
            assert softnic.inject(f)
        assert proc.wait(timeout=30) == 0
        assert "captured 4 frames" in proc.stderr.read()
    finally:
        proc.kill()
    tshark = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "frame.len", "-e", "eth.dst"],
                            capture_output=True, text=True, timeout=60)
    assert tshark.returncode == 0, tshark.stderr
    assert tshark.stdout.strip().splitlines() == [f"{len(f)}\t02:00:00:00:00:01" for f in frames]
    # The capture replays: send --pcap puts the same bytes on the wire.
    softnic.sent()
    assert run("send", "--link", softnic.link, "--pcap", str(pcap)).returncode == 0
    assert softnic.sent() == frames


def test_capture_for_seconds_stops_with_nothing(softnic, tmp_path: Path) -> None:
    start = time.monotonic()
    result = run("capture", "--link", softnic.link, "--seconds", "0.5", "-w", str(tmp_path / "empty.pcap"))
    assert result.returncode == 0 and "captured 0 frames" in result.stderr
    assert time.monotonic() - start < 20


def test_selftest_passes_on_a_good_nic(softnic) -> None:
    result = run("selftest", "--link", softnic.link, "--count", "40")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS: 40 frames")


def test_selftest_fails_when_loopback_loses_frames(softnic) -> None:
    """A NIC whose RX path is off loses the frames; selftest must say FAIL and exit 1."""
    # selftest resets the NIC, so the fault is injected while it runs: RX_EN is kept cleared.
    import threading
    stop = threading.Event()
    ctrl = CSR_MAP.register("CTRL")

    def keep_rx_off() -> None:
        while not stop.is_set():
            value = softnic.read_reg(ctrl.offset)
            if value & ctrl.field("RX_EN").mask and not value & ctrl.field("RESET").mask:
                softnic.write_reg(ctrl.offset, value & ~ctrl.field("RX_EN").mask)
            time.sleep(0.0001)
    t = threading.Thread(target=keep_rx_off)
    t.start()
    try:
        result = run("selftest", "--link", softnic.link, "--count", "8", "--timeout", "2")
    finally:
        stop.set()
        t.join()
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL: ") and "of 8 frames came back" in result.stdout


def test_selftest_tells_a_missing_frame_from_a_changed_one() -> None:
    """A frame that never came back is missing, not the cause of every later frame "differing"."""
    from splitnic.selftest import LoopbackResult, compare_looped
    frames = [bytes(12) + b"\x88\xb5" + i.to_bytes(4, "big") + bytes([i]) * 46 for i in range(6)]
    changed = frames[4][:30] + b"\xff" + frames[4][31:]
    assert compare_looped(frames, frames) == ([], [], 0)
    assert compare_looped(frames, [frames[0], frames[2], frames[3], changed, frames[5]]) == ([4], [1], 0)
    # A frame whose number is damaged too is charged to the frame due next.
    garbled = b"\xff" * 18 + frames[1][18:]
    assert compare_looped(frames, [frames[0], garbled, *frames[2:]]) == ([1], [], 0)
    # Late or twice.
    assert compare_looped(frames, [frames[0], frames[2], frames[1], frames[2], *frames[3:]]) == ([], [], 2)
    result = LoopbackResult(6, 5, [], 1.0, 60, 64, missing=[1], dropped=1)
    assert not result.ok and result.line().startswith(
        "FAIL: 5 of 6 frames came back, frame 1 missing (1 missing, 1 counted as dropped by the NIC on receive)")


def test_info_send_capture_and_selftest_on_the_simulated_rtl(sim_link: str, tmp_path: Path) -> None:
    result = run("info", "--link", sim_link)
    assert result.returncode == 0 and "(sim, zero-copy)" in result.stdout, result.stderr
    result = run("selftest", "--link", sim_link, "--count", "16", timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("PASS: 16 frames"), result.stdout + result.stderr
    result = run("send", "--link", sim_link, "--dst", "02:00:00:00:00:09", "--udp-dport", "9000", "--count", "2",
                 timeout=120)
    assert result.returncode == 0 and "sent 2 frames" in result.stdout, result.stderr
    stats = json.loads(run("stats", "--link", sim_link, "--json").stdout)
    assert stats["tx_ok"] >= 2


def test_sim_command_serves_the_rtl_until_sigterm_and_cleans_up(tmp_path: Path) -> None:
    """`splitnic sim` as a user runs it: prints the --link, serves `info`, stops on SIGTERM, leaves nothing."""
    import signal
    sock = tmp_path / "nic.sock"
    proc = subprocess.Popen([str(SPLITNIC), "sim", "--socket", str(sock), "--dma-mib", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # blocks until the simulator listens (or the command fails)
        assert f"attach with --link sim:{sock} " in line, line + proc.stderr.read()
        info = json.loads(run("info", "--link", f"sim:{sock}", "--json").stdout)
        assert info["link_kind"] == "sim" and info["zero_copy"] is True, info
        assert "verilator" in info["link"] and "wire none" in info["link"], info
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert proc.stdout.read().strip() == "sim: stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not sock.exists(), "the socket outlived the simulator"


def test_sim_command_refuses_a_bad_wire_and_a_busy_socket(tmp_path: Path, sim_link: str) -> None:
    assert_one_line_error(run("sim", "--wire", "eth0"), "wire must be 'none' or 'tap:IFNAME'")
    busy = sim_link.removeprefix("sim:")
    assert_one_line_error(run("sim", "--socket", busy), "another simulator listens there")
