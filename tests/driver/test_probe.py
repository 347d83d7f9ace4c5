"""Probing the ID block: a wrong device, version or spec is refused naming both values."""

from __future__ import annotations

import pytest

import splitnic
import splitnic_spec as spec
from splitnic.errors import SplitnicError
from splitnic_spec import CSR_MAP

_MAGIC = CSR_MAP.register("ID_MAGIC").offset
_VERSION = CSR_MAP.register("ID_VERSION")
_HASH = CSR_MAP.register("ID_SPEC_HASH").offset


def _refused(softnic) -> str:
    with pytest.raises(SplitnicError) as err:
        splitnic.open(softnic.link)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_wrong_magic_names_both_values(softnic) -> None:
    softnic.write_reg(_MAGIC, 0x12345678)
    msg = _refused(softnic)
    assert "0x12345678" in msg and f"{spec.ID_MAGIC_VALUE:#010x}" in msg and "check --link" in msg


def test_other_major_version_is_refused(softnic) -> None:
    softnic.write_reg(_VERSION.offset, _VERSION.pack(MAJOR=spec.VERSION_MAJOR + 1, MINOR=7))
    msg = _refused(softnic)
    assert f"spec {spec.VERSION_MAJOR + 1}.7" in msg and f"spec {spec.VERSION_MAJOR}.{spec.VERSION_MINOR}" in msg


def test_other_minor_version_is_accepted(softnic) -> None:
    softnic.write_reg(_VERSION.offset, _VERSION.pack(MAJOR=spec.VERSION_MAJOR, MINOR=spec.VERSION_MINOR + 3))
    nic = splitnic.open(softnic.link)
    assert nic.version == (spec.VERSION_MAJOR, spec.VERSION_MINOR + 3)
    nic.close()


def test_spec_hash_mismatch_names_both_hashes(softnic) -> None:
    softnic.write_reg(_HASH, spec.SPEC_HASH ^ 1)
    msg = _refused(softnic)
    assert f"{spec.SPEC_HASH ^ 1:#010x}" in msg and f"{spec.SPEC_HASH:#010x}" in msg and "rebuild" in msg


def test_info_reports_the_id_block_and_link(softnic) -> None:
    link = CSR_MAP.register("LINK")
    softnic.write_reg(link.offset, link.pack(UP=1, SPEED=link.field("SPEED").value("1000"), FULL_DUPLEX=1))
    softnic.write_reg(CSR_MAP.register("ID_BUILD").offset, 0xB01D)
    with splitnic.open(softnic.link) as nic:
        info = nic.info()
        assert nic.link_state() == (True, 1000, True)
    assert info["spec_hash"] == f"{spec.SPEC_HASH:#010x}" and info["build_id"] == "0x0000b01d"
    assert info["rx_queues"] == spec.NUM_RX_QUEUES and info["tx_queues"] == spec.NUM_TX_QUEUES
    assert info["link_kind"] == "mmio" and info["zero_copy"] is True and info["link_up"] is True


def test_mac_address_in_wire_order(mmio_nic, softnic) -> None:
    mmio_nic.mac = bytes.fromhex("0a1b2c3d4e5f")
    assert softnic.read_reg(CSR_MAP.register("MAC_ADDR_LO").offset) == 0x3D2C1B0A
    assert softnic.read_reg(CSR_MAP.register("MAC_ADDR_HI").offset) == 0x5F4E
    assert mmio_nic.mac == bytes.fromhex("0a1b2c3d4e5f")


def test_statistics_are_widened_past_32_bits(mmio_nic, softnic) -> None:
    off = CSR_MAP.register("STAT_RX_OK").offset
    softnic.write_reg(off, 0xFFFF_FFF0)
    assert mmio_nic.stats()["rx_ok"] == 0xFFFF_FFF0
    softnic.write_reg(off, 0x10)  # wrapped: 0x20 more events
    assert mmio_nic.stats()["rx_ok"] == 0x1_0000_0010
    softnic.write_reg(off, 0x30)
    assert mmio_nic.stats()["rx_ok"] == 0x1_0000_0030


def test_steering_entry_is_written_disabled_first(mmio_nic, softnic) -> None:
    """Record the order of writes to the entry through a bus wrapper."""
    from splitnic.rules import RuleSet, parse_rule
    writes = []
    bus = mmio_nic.bus
    real = bus.write32

    def spy(offset: int, value: int) -> None:
        writes.append((offset, value))
        real(offset, value)
    bus.write32 = spy
    rules = RuleSet([parse_rule("udp dport 9000 -> app0")])
    mmio_nic.steer(3, rules.entry_values(0))
    steer = CSR_MAP.array("STEER")
    ctrl = steer.offset(3, "CTRL")
    assert writes[0] == (ctrl, 0)
    assert writes[-1] == (ctrl, rules.entry_values(0)["CTRL"])
    assert {o for o, _ in writes[1:-1]} == {steer.offset(3, n) for n in
                                             ("DMAC_LO", "DMAC_HI", "ETHERTYPE", "IP_PROTO", "L4_DPORT")}
    assert softnic.read_reg(steer.offset(3, "L4_DPORT")) == 9000
