"""The management firmware on the simulated board SoC: boot, link watch, mailbox, ``splitnic phy`` and ``info``.

The SoC's VexRiscv runs the real firmware image (firmware/, built by the
simulator build) against the MDIO PHY model; the tests pull and plug the
model's cable through the sim-only CSR ``simphy_cable`` over Etherbone and
watch LINK, the driver and a kernel interface follow.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

import splitnic
from splitnic.firmware import Firmware, MailboxError
from splitnic.link_etherbone import EtherboneClient
from splitnic_spec import CSR_MAP
from splitnic_spec import board as amap
from splitnic_gateware.targets.flash_uid import HOST_LINK_MAC_FIRST, SIM_UID, mac_from_uid
from splitnic_gateware.targets.mdio_phy_model import PHYID, MdioPhyModel
from splitnic_gateware.targets.sim import DEFAULT_DIR, SOC_IP, SimSoCProcess, csr_address
from splitnic_lab.netns import inside

SPLITNIC = Path(sys.executable).parent / "splitnic"
REPO = Path(__file__).resolve().parents[2]
_LINK = CSR_MAP.register("LINK")
#: The fields of the PHY model's sim-only CSR simphy_cable (plugged, speed, full_duplex).
_CABLE = {f.name: f for f in MdioPhyModel().cable.fields.fields}


@pytest.fixture(scope="module")
def soc() -> Iterator[SimSoCProcess]:
    # Builds the simulator (and the firmware) the first time; this thread joins its namespace.
    with SimSoCProcess() as running, inside(running.netns_path):
        yield running


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SPLITNIC, *args], capture_output=True, text=True, timeout=300)


def _one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("splitnic: error: "), result.stderr
    for w in words:
        assert w in lines[0], lines[0]


def _cable(plugged: bool = True, mbps: int = 1000, full_duplex: bool = True,
           client: EtherboneClient | None = None) -> None:
    """Set the far end of the wire PHY model's cable (simphy_cable: plugged, best speed, duplex).

    Only one Etherbone client may be attached at a time: pass the open link's (``nic.bus.client``), if any.
    """
    own = client is None
    client = client or EtherboneClient(SOC_IP)
    try:
        values = {"plugged": int(plugged), "speed": _LINK.field("SPEED").value(str(mbps)),
                  "full_duplex": int(full_duplex)}
        client.write(csr_address("simphy_cable"), [sum(v << _CABLE[k].offset for k, v in values.items())])
        client.read([amap.NIC_CSR_BASE])   # writes are posted: wait until it landed
    finally:
        if own:
            client.close()


def _wait_link(link: str, want, timeout: float = 60.0) -> tuple[bool, int, bool]:
    """LINK as (up, Mb/s, full duplex) once ``want(state)`` holds (polled over ``link``, then closed)."""
    deadline = time.monotonic() + timeout
    with splitnic.open(link) as nic:
        while True:
            state = nic.link_state()
            if want(state):
                return state
            assert time.monotonic() < deadline, f"LINK stayed {state} for {timeout} s"
            time.sleep(0.05)


def _up(state) -> bool:
    return state[0]


def _down(state) -> bool:
    return not state[0]


def _version_h() -> tuple[int, int, int]:
    text = (REPO / "firmware" / "src" / "version.h").read_text()
    return tuple(int(re.search(rf"FW_VERSION_{n} (\d+)", text).group(1)) for n in ("MAJOR", "MINOR", "PATCH"))


def test_firmware_boots_and_brings_the_wire_link_up(soc: SimSoCProcess) -> None:
    assert _wait_link(soc.link, _up) == (True, 1000, True)
    with splitnic.open(soc.link) as nic:
        status = Firmware(nic.bus).status()
        assert status.version == _version_h()
        assert status.phy_ok and status.phy_addr == 1
        assert status.link_up_cycles > 0     # CYCLES at the first link-up: the reset-to-link-up time
        # No one had set MAC_ADDR: the firmware derived it from the (simulated) SPI flash's unique id.
        nic_mac = nic.mac
        assert nic_mac == mac_from_uid(SIM_UID) and nic_mac[0] & 0x02
        assert status.mac_source == "SPI flash unique id"
    # The eth host link's source address too, not the one every SoC is built with (two boards on
    # one switch must differ), and not the NIC's.
    client = EtherboneClient(SOC_IP)
    try:
        hi, lo = client.read([csr_address("hostlink_mac_hi"), csr_address("hostlink_mac_lo")])
    finally:
        client.close()
    host_link_mac = (hi << 32 | lo).to_bytes(6, "big")
    assert host_link_mac == mac_from_uid(SIM_UID, HOST_LINK_MAC_FIRST) != nic_mac
    assert host_link_mac != amap.BOARD_MAC.to_bytes(6, "big")


def test_info_shows_the_firmware_version_and_build(soc: SimSoCProcess) -> None:
    build_id = (DEFAULT_DIR / "firmware" / "splitnic-fw.build-id").read_text().strip()
    result = _cli("info", "--link", soc.link)
    assert result.returncode == 0, result.stderr
    version = ".".join(map(str, _version_h()))
    assert f"firmware:  {version} (build {build_id}), wire PHY at MDIO 1" in result.stdout
    info = json.loads(_cli("info", "--json", "--link", soc.link).stdout)
    assert info["firmware"]["version"] == version and info["firmware"]["build_id"] == build_id


def test_link_follows_the_cable(soc: SimSoCProcess) -> None:
    _wait_link(soc.link, _up)
    try:
        _cable(plugged=False)
        _wait_link(soc.link, _down)
        assert "carrier:   down" in _cli("info", "--link", soc.link).stdout
        _cable(plugged=True, mbps=100, full_duplex=True)       # a 100 Mb/s partner
        assert _wait_link(soc.link, _up) == (True, 100, True)
        assert "carrier:   up, 100 Mb/s full duplex" in _cli("info", "--link", soc.link).stdout
        _cable(plugged=True, mbps=10, full_duplex=False)       # a renegotiation, to 10 Mb/s half duplex
        _wait_link(soc.link, lambda state: state == (True, 10, False))
    finally:
        _cable()
    assert _wait_link(soc.link, lambda state: state == (True, 1000, True))


def test_kernel_interface_carrier_follows_the_cable(soc: SimSoCProcess) -> None:
    from splitnic.kernel_path import Tunnel
    tunnel = Tunnel(soc.link, kernel="tap", name="snicfw0").start()

    def carrier() -> str:
        # The interface is in the SoC's namespace, which /sys (mounted for the root one) does not show.
        flags = json.loads(subprocess.run(["ip", "-j", "link", "show", "dev", "snicfw0"], capture_output=True,
                                          text=True, check=True).stdout)[0]["flags"]
        return "1" if "LOWER_UP" in flags else "0"

    client = tunnel.uplink.nic.bus.client     # the link's own Etherbone client (one per host)

    def wait_carrier(value: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            tunnel.watch_link()
            if carrier() == value:
                return
            assert time.monotonic() < deadline, f"snicfw0 carrier stayed {carrier()}"
            time.sleep(0.05)
    try:
        wait_carrier("1")
        _cable(plugged=False, client=client)
        wait_carrier("0")
        _cable(client=client)
        wait_carrier("1")
    finally:
        _cable(client=client)
        tunnel.close()


def test_phy_command_reads_and_writes_registers(soc: SimSoCProcess) -> None:
    for reg, want in (("physid1", PHYID[0]), ("3", PHYID[1])):
        result = _cli("phy", "--link", soc.link, "read", reg)
        assert result.returncode == 0, result.stderr
        assert int(result.stdout, 16) == want
    # The firmware set the Broadcom RGMII delays: GTXCLK delayed (shadow 0x1c/3 bit 9), RXC not (0x18/7 bit 8).
    assert _cli("phy", "--link", soc.link, "write", "0x1c", str(3 << 10)).returncode == 0
    assert int(_cli("phy", "--link", soc.link, "read", "0x1c").stdout, 16) & 0x200
    assert _cli("phy", "--link", soc.link, "write", "0x18", str(7 << 12 | 7)).returncode == 0
    assert int(_cli("phy", "--link", soc.link, "read", "0x18").stdout, 16) & 0x100 == 0
    # A write lands: advertise 100 Mb/s full duplex only, read it back, restore.
    assert _cli("phy", "--link", soc.link, "write", "anar", "0x0101").returncode == 0
    assert _cli("phy", "--link", soc.link, "read", "anar").stdout.strip() == "0x0101"
    assert _cli("phy", "--link", soc.link, "write", "anar", "0x01e1").returncode == 0
    dump = _cli("phy", "--link", soc.link, "dump")
    assert dump.returncode == 0 and len(dump.stdout.splitlines()) == 32
    assert re.search(r"^ 2 physid1 +0x0362$", dump.stdout, re.M), dump.stdout


def test_phy_command_refuses_bad_input(soc: SimSoCProcess) -> None:
    _one_line_error(_cli("phy", "--link", soc.link, "read", "32"), "0..31")
    _one_line_error(_cli("phy", "--link", soc.link, "read", "nosuch"), "PHY register")
    _one_line_error(_cli("phy", "--link", soc.link, "write", "anar", "0x10000"), "16 bits")
    _one_line_error(_cli("phy", "--link", soc.link, "write", "anar"), "VALUE")
    _one_line_error(_cli("phy", "--link", soc.link, "read"), "REG")
    _one_line_error(_cli("phy", "--link", soc.link, "--phy", "7", "read", "bmsr"), "no PHY answered")


def test_mailbox_version_selftest_and_unknown_op(soc: SimSoCProcess) -> None:
    build_id = int((DEFAULT_DIR / "firmware" / "splitnic-fw.build-id").read_text(), 16)
    with splitnic.open(soc.link) as nic:
        fw = Firmware(nic.bus)
        assert fw.build_id() == build_id
        assert fw.selftest() == []
        # An op the firmware does not know is answered, not ignored.
        cmd, status = CSR_MAP.register("MBOX_CMD"), CSR_MAP.register("MBOX_STATUS")
        seq = (status.field("SEQ").get(nic.bus.read32(status.offset)) + 1) & 0xFF
        nic.bus.write32(cmd.offset, cmd.pack(OP=0x7F, SEQ=seq))
        deadline = time.monotonic() + 30
        while status.field("SEQ").get(value := nic.bus.read32(status.offset)) != seq:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert status.field("RESULT").get(value) == 1    # MBOX_ERR_OP
        with pytest.raises(MailboxError, match="no PHY answered"):
            fw.phy_read(9, 1)


def test_selftest_command_runs_the_firmware_self_test(soc: SimSoCProcess) -> None:
    result = _cli("selftest", "--firmware", "--link", soc.link)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS: firmware self-test, 4 checks (sram, nic_id, cycles, phy)")
