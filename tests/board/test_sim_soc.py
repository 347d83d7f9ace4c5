"""The board SoC simulated (LiteX + Verilator), reached over a TAP interface with ``--link etherbone:``.

The same :class:`~splitnic_gateware.targets.soc.SplitnicSoC` as the
bitstream, with the simulator's clock and LiteEth's model PHY on the host
link; the driver and the CLI talk to it exactly as to the board.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

import splitnic
import splitnic_spec as spec
from splitnic.link import open_link
from splitnic.link_etherbone import EtherboneClient, parse_target
from splitnic_spec import board as amap
from splitnic_gateware.targets.nic_core import BOARD_NIC_SIZE, build_id
from splitnic_gateware.targets.sim import HOST_IP, SIM_SYS_CLK_FREQ, TAP, SimSoCProcess, csr_address
from splitnic_lab.netns import inside

SPLITNIC = Path(sys.executable).parent / "splitnic"


@pytest.fixture(scope="module")
def soc() -> Iterator[SimSoCProcess]:
    # Builds the simulator the first time (minutes); this thread joins its namespace.
    with SimSoCProcess() as running, inside(running.netns_path):
        yield running


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SPLITNIC, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.timeout(1800)
def test_info_over_etherbone(soc: SimSoCProcess) -> None:
    result = _cli("info", "--link", soc.link)
    assert result.returncode == 0, result.stderr
    assert f"link:      etherbone:{soc.link.split(':', 1)[1]}:{amap.ETHERBONE_UDP_PORT}" in result.stdout
    assert "(etherbone, copying)" in result.stdout
    assert f"hash {spec.SPEC_HASH:#010x}" in result.stdout
    assert f"{SIM_SYS_CLK_FREQ / 1e6:g} MHz" in result.stdout
    # The board's own counter: the client paces its writes, so the receive buffer dropped nothing.
    assert re.search(r"^board: +0 host-link frames dropped", result.stdout, re.M), result.stdout


def test_info_json_names_the_link_and_the_build(soc: SimSoCProcess) -> None:
    result = _cli("info", "--json", "--link", soc.link)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["link_kind"] == "etherbone" and info["zero_copy"] is False
    assert info["build_id"] == f"{build_id():#010x}"
    # The board's NIC is smaller than the register map (ID_FEATURES says so); the driver sizes itself to it.
    size = BOARD_NIC_SIZE
    assert (info["rx_queues"], info["tx_queues"], info["steer_entries"]) == (size.rx_queues, size.tx_queues,
                                                                            size.steer_entries)
    assert size.steer_entries < spec.NUM_STEER_ENTRIES
    assert info["board"] == {"host_rx_dropped": 0}


def test_registers_of_absent_queues_and_entries_read_zero_and_ignore_writes(soc: SimSoCProcess) -> None:
    rxq, steer = spec.CSR_MAP.array("RXQ"), spec.CSR_MAP.array("STEER")
    with splitnic.open(soc.link) as nic:
        bus = nic.bus
        present, absent = rxq.offset(BOARD_NIC_SIZE.rx_queues - 1, "SIZE"), rxq.offset(BOARD_NIC_SIZE.rx_queues, "SIZE")
        bus.write32(present, 6)
        bus.write32(absent, 6)
        assert (bus.read32(present), bus.read32(absent)) == (6, 0)
        entry = steer.offset(BOARD_NIC_SIZE.steer_entries, "L4_DPORT")
        bus.write32(entry, 9000)
        assert bus.read32(entry) == 0


def test_registers_and_bursts_over_etherbone(soc: SimSoCProcess) -> None:
    with splitnic.open(soc.link) as nic:
        bus = nic.bus
        for value in (0x12345678, 0xA5A5A5A5, 0):
            bus.write32(spec.CSR_MAP.register("SCRATCH").offset, value)
            assert bus.read32(spec.CSR_MAP.register("SCRATCH").offset) == value
        # 40 registers: three records (16 + 16 + 8), the first ones the ID block.
        regs = bus.read_burst(0, 40)
        assert regs[0] == spec.ID_MAGIC_VALUE and regs[2] == spec.SPEC_HASH
        a, b = bus.read32(spec.CSR_MAP.register("CYCLES").offset), bus.read32(spec.CSR_MAP.register("CYCLES").offset)
        assert b > a   # the simulated NIC's clock runs


def test_dma_block_ram_round_trip(soc: SimSoCProcess) -> None:
    link = open_link(soc.link)
    try:
        region = link.dma.alloc(1024)
        assert region.device_addr >= amap.DMA_RAM_BASE
        pattern = bytes((i * 7 + 3) & 0xFF for i in range(1024))
        region.view[:] = pattern
        link.dma.sync_for_device(region)
        region.view[:] = bytes(1024)
        start = time.monotonic()
        link.dma.sync_for_cpu(region.device_addr, region.size)   # the form every link's DMA memory has
        assert bytes(region.view) == pattern, "the NIC-local RAM did not keep what was written"
        assert time.monotonic() - start < 60
        link.dma.free(region)
    finally:
        link.close()


#: An address no bus slave decodes: reading it holds the bus until LiteX's bus timeout (10**6 clocks).
_UNMAPPED = 0x2000_0000
#: Where the stall test writes: the top 4 KiB of the NIC-local RAM, in 64 records of 16 words.
_STALL_AREA, _STALL_RECORDS = amap.DMA_RAM_BASE + amap.DMA_RAM_SIZE - 4096, 64
_FILL = 0xA5A5A5A5


@pytest.mark.timeout(600)
def test_frames_during_a_bus_stall_are_kept_or_dropped_whole_and_etherbone_stays_in_step(
        soc: SimSoCProcess) -> None:
    # A read of an unmapped address stalls Etherbone for the bus timeout; 64 write records
    # (about twice the host-link port's receive buffer) arrive meanwhile, faster than any
    # client would send them.  Before the receive buffer, the PHY's words fell on the floor
    # mid-frame and Etherbone read every later record one word out of step.
    host, port = parse_target(soc.link.split(":", 1)[1])
    dropped_csr = csr_address("host_rx_dropped")
    assert dropped_csr == amap.HOST_RX_DROPPED, "the SoC's drop counter is not where the driver reads it"
    # No IPv6 chatter from this side of the TAP: the count below should be the test's frames.
    subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{TAP}.disable_ipv6=1"], check=True)
    client = EtherboneClient(host, port)
    client.write(_STALL_AREA, [_FILL] * (16 * _STALL_RECORDS))
    dropped_before = client.read([dropped_csr])[0]
    client.close()

    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)      # the client's own socket, without its pacing
    try:
        raw.bind((HOST_IP, port))
        raw.connect((host, port))
        raw.send(EtherboneClient.encode_reads(0x1000, [_UNMAPPED]))
        for i in range(_STALL_RECORDS):
            raw.send(EtherboneClient.encode_writes(_STALL_AREA + 64 * i, [i << 16 | k for k in range(16)]))
        raw.settimeout(60)
        assert EtherboneClient.decode_answer(raw.recv(2048)) == (0x1000, [0xFFFFFFFF])   # the bus timed out
    finally:
        raw.close()

    client = EtherboneClient(host, port)
    try:
        words = client.read([_STALL_AREA + 4 * n for n in range(16 * _STALL_RECORDS)])
        dropped = client.read([dropped_csr])[0] - dropped_before
    finally:
        client.close()
    records = [words[16 * i:16 * i + 16] for i in range(_STALL_RECORDS)]
    kept = [i for i, record in enumerate(records) if record == [i << 16 | k for k in range(16)]]
    lost = [i for i, record in enumerate(records) if record == [_FILL] * 16]
    assert len(kept) + len(lost) == _STALL_RECORDS, \
        f"records written in part or out of step: {[i for i in range(_STALL_RECORDS) if i not in kept + lost]}"
    assert kept and lost, f"kept {len(kept)}, lost {len(lost)}: the stall did not fill the buffer"
    # Every lost record is a counted frame (an ARP probe of the kernel's may add one).
    assert len(lost) <= dropped <= len(lost) + 2, (len(lost), dropped)


#: The namespace the tests started in, held before the fixture moves this thread to the SoC's.
_HOME_NS = os.open("/proc/thread-self/ns/net", os.O_RDONLY)


def _home_ns(*cmd: str) -> str:
    return subprocess.run(["nsenter", f"--net=/proc/{os.getpid()}/fd/{_HOME_NS}", *cmd], capture_output=True,
                          text=True, check=True).stdout


def test_the_simulated_board_lives_in_a_namespace_of_its_own(soc: SimSoCProcess) -> None:
    here = subprocess.run(["ip", "-o", "addr", "show", "dev", TAP], capture_output=True, text=True, check=True)
    assert HOST_IP in here.stdout                     # the fixture's thread is in the SoC's namespace
    root = _home_ns("ip", "-o", "addr")
    assert HOST_IP not in root and TAP not in root, "the simulated board has an address in the root namespace"


def _is_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")   # dead, waiting for its reaper


@pytest.mark.parametrize("owner_signal", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_simulator_dies_within_a_second_of_its_owner(soc: SimSoCProcess, owner_signal: int) -> None:
    # A second SoC beside the fixture's (each has its own namespace), owned by the module's --run.
    owner = subprocess.Popen([sys.executable, "-m", "splitnic_gateware.targets.sim", "--run"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        match = None
        while not match and (line := owner.stdout.readline()):
            lines.append(line)
            match = re.search(r"simulated SoC up \(pid (\d+)\): nsenter --net=(\S+) ", line)
        assert match, "".join(lines)
        pid = int(match.group(1))
        assert not _is_gone(pid)
        owner.send_signal(owner_signal)
        deadline = time.monotonic() + 1.0
        while not _is_gone(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _is_gone(pid), f"Vsim (pid {pid}) outlived its owner's {signal.Signals(owner_signal).name} by 1 s"
    finally:
        owner.kill()
        owner.wait()
