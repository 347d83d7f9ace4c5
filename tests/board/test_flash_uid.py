"""The SPI flash unique-id path: the bit-bang block and the flash model, driven like firmware/src/flash.c (Migen)."""

from __future__ import annotations

from migen import Module
from migen.sim import run_simulation

from splitnic_gateware.targets.flash_uid import SIM_UID, SpiFlashBitbang, SpiFlashUidModel, mac_from_uid

SCK, MOSI, CS_N = 1, 2, 4


class _Bench(Module):
    def __init__(self, uid: bytes = SIM_UID) -> None:
        self.submodules.flash = SpiFlashUidModel(uid)
        self.submodules.master = SpiFlashBitbang(self.flash)


def _w(bench, value):
    yield bench.master._w.storage.eq(value)
    yield
    yield


def _xfer(bench, out: int) -> int:
    value = 0
    for i in reversed(range(8)):
        d = MOSI if (out >> i) & 1 else 0
        yield from _w(bench, d)
        yield from _w(bench, d)
        value = (value << 1) | ((yield bench.master._r.status) & 1)
        yield from _w(bench, d | SCK)
    return value


def _read_uid(bench, out: list) -> None:
    yield from _w(bench, CS_N)
    yield from _w(bench, 0)
    for byte in (0x4B, 0, 0, 0, 0):
        yield from _xfer(bench, byte)
    for _ in range(16):
        out.append((yield from _xfer(bench, 0)))
    yield from _w(bench, CS_N)


def test_read_unique_id() -> None:
    bench, uid = _Bench(), []
    run_simulation(bench, _read_uid(bench, uid))
    assert bytes(uid) == SIM_UID


def test_another_command_reads_nothing() -> None:
    bench, out = _Bench(), []

    def process():
        yield from _w(bench, 0)
        for byte in (0x9F, 0, 0, 0, 0):
            yield from _xfer(bench, byte)
        out.append((yield from _xfer(bench, 0)))
    run_simulation(bench, process())
    assert out == [0]


def test_mac_from_uid_is_locally_administered_unicast() -> None:
    mac = mac_from_uid(SIM_UID)
    assert len(mac) == 6 and mac[0] == 0x02
    assert mac_from_uid(bytes(16)) == bytes.fromhex("020000000000")
    assert mac_from_uid(bytes([1]) + bytes(4) + bytes([1]) + bytes(10)) == bytes.fromhex("020000000000")
    # The host link's address: the same fold behind 06, also locally administered unicast.
    assert mac_from_uid(SIM_UID, 0x06) == b"\x06" + mac[1:]
