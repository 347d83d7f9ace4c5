"""The kernel path's C pump and the bugs on its way: NIC queue 0 <-> the stub's rings, in memory.

Ref: hostdrv/splitnic/_hotpath.c (snic_pump_*), hostdrv/splitnic/tunnel_pump.py,
spec/splitnic_spec/tunnel.py (the rings).  The kernel side is played here by
Python on :meth:`StubTunnel.in_memory` (the module's ring protocol), the NIC
by the software NIC on the mmio and sim links.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from splitnic.kernel_path import nic_uplink
from splitnic.tunnel_pump import TunnelPump
from splitnic.tunnel_stub import StubTunnel
from splitnic_spec import COMPLETION, DESCRIPTOR
from splitnic_spec import tunnel as tspec

import splitnic
from splitnic_sim.softnic import SoftNic

from .conftest import NIC_MAC, PEER_MAC, frame

U32 = struct.Struct("<I")
DESC = struct.Struct(tspec.DESC.format)


class FakeKernel:
    """The module's side of the stub's rings: produce k2u, consume u2k."""

    def __init__(self, stub: StubTunnel) -> None:
        self.area, self.r, self.slot = stub.area, stub.rings, stub.slot_size
        self.k2u_n, self.u2k_n = 1 << stub.k2u.log2, 1 << stub.u2k.log2
        self.k2u_prod = self.u2k_cons = 0

    def send(self, frames: list[bytes]) -> int:
        """Frames the kernel transmits (into k2u); returns how many fit."""
        cons = U32.unpack_from(self.area, tspec.constant("CTRL_K2U_CONS"))[0]
        n = 0
        for f in frames:
            if self.k2u_prod - cons >= self.k2u_n:
                break
            slot = self.k2u_prod & (self.k2u_n - 1)
            base, body = self.r["k2u_data"] + slot * self.slot, f[:self.slot]
            self.area[base:base + len(body)] = body
            DESC.pack_into(self.area, self.r["k2u_desc"] + slot * DESC.size, len(f), 0)
            self.k2u_prod += 1
            n += 1
        U32.pack_into(self.area, tspec.constant("CTRL_K2U_PROD"), self.k2u_prod & 0xFFFFFFFF)
        return n

    def receive(self) -> list[bytes]:
        """Frames delivered to the kernel (from u2k)."""
        prod = U32.unpack_from(self.area, tspec.constant("CTRL_U2K_PROD"))[0]
        out = []
        while self.u2k_cons != prod:
            slot = self.u2k_cons & (self.u2k_n - 1)
            length, flags = DESC.unpack_from(self.area, self.r["u2k_desc"] + slot * DESC.size)
            assert flags == 0
            base = self.r["u2k_data"] + slot * self.slot
            out.append(bytes(self.area[base:base + length]))
            self.u2k_cons = (self.u2k_cons + 1) & 0xFFFFFFFF
        U32.pack_into(self.area, tspec.constant("CTRL_U2K_CONS"), self.u2k_cons)
        return out


@pytest.fixture(params=["mmio", "softsim"])
def model(request: pytest.FixtureRequest, tmp_path: Path):
    nic = SoftNic(sim_socket=tmp_path / "s.sock" if request.param == "softsim" else None).start()
    yield nic
    nic.close()


def _pump_until(pump: TunnelPump, done, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        if not pump.step():
            time.sleep(0.0002)
    assert done(), f"the pump did not finish in time: {pump.stats}"


def test_the_c_pump_moves_frames_both_ways_through_wrapping_rings(model: SoftNic) -> None:
    nic = splitnic.open(model.link)
    stub = StubTunnel.in_memory(k2u_log2=4, u2k_log2=4)
    try:
        nic.reset()
        uplink = nic_uplink(nic, owns_nic=True)
        nic.mac = NIC_MAC
        # Writes on the sim link are posted; reading one back orders them before the first
        # frame on the wire (else the NIC may filter frames for a MAC it has not yet been told).
        assert nic.mac == NIC_MAC
        kernel = FakeKernel(stub)
        pump = TunnelPump(uplink.port, stub, burst=8)
        assert pump.in_c
        # NIC -> kernel: 100 frames through a 16-entry u2k ring, sizes 60..1514.
        inbound = [frame(dst=NIC_MAC, size=60 + (i * 97) % 1455) for i in range(100)]
        got: list[bytes] = []
        pending = list(inbound)

        def inbound_done() -> bool:
            while pending and model.inject(pending[0]):
                pending.pop(0)
            got.extend(kernel.receive())
            return len(got) == len(inbound)
        _pump_until(pump, inbound_done)
        assert got == inbound
        # kernel -> NIC: 100 frames through a 16-entry k2u ring.
        outbound = [frame(dst=PEER_MAC, src=NIC_MAC, size=60 + (i * 89) % 1455) for i in range(100)]
        queued = list(outbound)
        sent: list[bytes] = []

        def outbound_done() -> bool:
            del queued[:kernel.send(queued)]
            sent.extend(model.sent())
            return len(sent) == len(outbound)
        _pump_until(pump, outbound_done)
        assert sent == outbound
        assert pump.stats.to_kernel == 100 and pump.stats.to_port == 100
        rxq, txq = uplink.port.queues()
        rxq.check()
        assert txq.flush() and txq.check()["lent"] == 0
    finally:
        stub.close()
        nic.close()


def test_a_kernel_frame_longer_than_a_tx_buffer_is_dropped_and_counted(softnic: SoftNic) -> None:
    # MTU 9000 on snic0 and a 4000-byte ping: the frame reaches k2u, the TX buffers hold 2048.
    nic = splitnic.open(softnic.link)
    stub = StubTunnel.in_memory(slot_size=16384, mtu=9000)
    try:
        nic.reset()
        uplink = nic_uplink(nic, owns_nic=True)
        kernel = FakeKernel(stub)
        pump = TunnelPump(uplink.port, stub)
        big, small = frame(dst=PEER_MAC, size=4042), frame(dst=PEER_MAC, size=100)
        assert kernel.send([big, small]) == 2
        sent: list[bytes] = []
        _pump_until(pump, lambda: bool(sent.extend(softnic.sent()) or sent))
        assert sent == [small]
        assert pump.stats.too_long_to_port == 1 and pump.stats.to_port == 1
        assert "too long 1" in pump.stats.line()
    finally:
        stub.close()
        nic.close()


def test_the_python_port_drops_a_too_long_kernel_frame_too(mmio_nic) -> None:
    uplink = nic_uplink(mmio_nic)
    try:
        assert uplink.port.tx_burst([bytes(4042), frame(dst=PEER_MAC, size=80)]) == 2
        assert uplink.port.too_long == 1
    finally:
        uplink.close()


def test_rx_harvest_clamps_a_misreported_length_to_the_buffer(mmio_nic, softnic: SoftNic) -> None:
    rxq = mmio_nic.rx_queue(0, ring_log2=4, buf_size=512)
    softnic.stop()   # the test plays the NIC from here: it writes the completion itself
    ring = rxq.ring
    cookie = DESCRIPTOR.unpack(bytes(ring.desc.view[:DESCRIPTOR.size]))["cookie"]
    entry = COMPLETION.pack(cookie=cookie, length=5000, queue=0, status=0, timestamp=0, rule=0xFF,
                            flags=COMPLETION.member("flags").bit("PHASE").mask)
    ring.cpl.view[:COMPLETION.size] = entry
    packets = rxq.rx_burst(4)
    assert [p.length for p in packets] == [512]
    assert len(packets[0].data) == 512
    assert rxq.bad_lengths == 1 and rxq.errors == 1
    rxq.release(packets)
    rxq.check()


def test_a_tx_buffer_passed_twice_in_one_burst_is_refused(mmio_nic) -> None:
    txq = mmio_nic.tx_queue(0, ring_log2=4)
    a, b = txq.buffer(), txq.buffer()
    for buf in (a, b):
        buf.view[:60] = frame(dst=PEER_MAC, size=60)
        buf.length = 60
    with pytest.raises(ValueError, match="passed twice in one burst"):
        txq.tx_burst([a, b, a])
    assert txq.in_flight == 0
    assert txq.check()["lent"] == 2
    assert txq.tx_burst([a, b]) == 2     # still lent, and sendable once each
    assert txq.flush() and txq.check()["lent"] == 0


def test_a_second_driver_on_the_same_nic_is_one_line_naming_the_holder(model: SoftNic) -> None:
    import os
    import subprocess
    import sys
    nic = splitnic.open(model.link)
    try:
        code = ("import sys, splitnic\nfrom splitnic.errors import SplitnicError\n"
                f"try:\n    splitnic.open({model.link!r})\nexcept SplitnicError as e:\n    print(e); sys.exit(3)\n")
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert result.returncode == 3, result.stdout + result.stderr
        assert result.stdout.count("\n") == 1
        assert f"is in use by process {os.getpid()}" in result.stdout, result.stdout
        assert time.monotonic() - started < 30   # not the sim link's 60 s hello timeout
    finally:
        nic.close()
    splitnic.open(model.link).close()   # free again once the holder closed


def test_the_echo_app_answers_from_its_rx_buffer_and_releases_in_one_batch(mmio_nic, softnic: SoftNic,
                                                                            monkeypatch) -> None:
    from splitnic.apps.udp_echo import UdpEcho
    from splitnic.fastpath import FastPath
    from splitnic.packet import Packet
    from splitnic.rx_queue import RxQueue
    fast = FastPath(mmio_nic, ["udp dport 9000 -> echo"])
    echo = UdpEcho()
    app = fast.serve("echo", echo)
    releases, forwarded = [], []
    real_release, real_forward = RxQueue._release_cookies, type(app.tx).forward
    monkeypatch.setattr(RxQueue, "_release_cookies",
                        lambda self, cookies, n: (releases.append(n), real_release(self, cookies, n))[1])
    monkeypatch.setattr(type(app.tx), "forward",   # buffer to buffer in C, from the swapped RX buffers
                        lambda self, batch, upto=None: (forwarded.append(upto), real_forward(self, batch, upto=upto))[1])
    monkeypatch.setattr(type(app.tx), "tx_burst", lambda self, frames: pytest.fail("copied through tx_burst"))
    monkeypatch.setattr(Packet, "release", lambda self: pytest.fail("released one packet at a time"))

    def udp(i: int) -> bytes:
        ip = bytes.fromhex("4500001c0000000040110000") + bytes([198, 18, 0, 2, 198, 18, 0, 1])
        return NIC_MAC + PEER_MAC + b"\x08\x00" + ip + (4000 + i).to_bytes(2, "big") + (9000).to_bytes(2, "big") \
            + bytes.fromhex("00080000") + bytes(18)   # padded to the 60-byte minimum
    requests = [udp(i) for i in range(5)]
    for r in requests:
        softnic.inject(r)
    deadline = time.monotonic() + 20
    while echo.echoed < 5 and time.monotonic() < deadline:
        fast.poll()
    assert echo.echoed == 5 and sum(forwarded) == 5
    assert releases and sum(releases) == 5 and len(releases) <= 2
    assert app.tx.flush()
    replies = softnic.sent()
    assert len(replies) == 5
    r0 = replies[0]
    assert r0[:6] == PEER_MAC and r0[6:12] == NIC_MAC and r0[26:30] == bytes([198, 18, 0, 1])
    assert r0[34:36] == (9000).to_bytes(2, "big") and r0[36:38] == (4000).to_bytes(2, "big")
    app.rx.check()
