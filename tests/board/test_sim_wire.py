"""The simulated SoC's NIC wire (targets/sim_wire.py), cycle by cycle in migen's simulator.

Ref: IEEE Std 802.3-2018 §35.2 (GMII framing).  Each test plays LiteX's GMII
bridge on the ``gmii_eth`` pads and the NIC's GMII bridges on
``sink``/``source``, and checks which end each frame reaches, whole and with
its last byte marked.  (The bridge's own framing, preamble and FCS, is LiteX's
C; the end-to-end test in test_eth_sim_soc.py puts a kernel on it.)
"""

from __future__ import annotations

from migen import Record, run_simulation

from splitnic_gateware.targets.sim_wire import SimWire

_GMII = [("tx_data", 8), ("tx_en", 1), ("tx_er", 1), ("rx_data", 8), ("rx_dv", 1), ("rx_er", 1)]


def _frame(length: int, seed: int) -> bytes:
    return bytes((seed * 37 + i * 11) & 0xFF for i in range(length))


class _Bench:
    """The wire on GMII pads; drives both ends and collects what leaves each as frames."""

    def __init__(self, tap_mode: int, plugged: int = 1) -> None:
        self.gmii = Record(_GMII)
        self.dut = SimWire(self.gmii)
        self.tap_mode, self.plugged = tap_mode, plugged
        self.to_nic: list[bytes] = []       # frames on ``source``, cut at ``last``
        self.to_tap: list[bytes] = []       # runs of TX_EN on the pads

    def run(self, *drivers, cycles: int) -> None:
        def setup():
            yield self.dut.tap.storage.eq(self.tap_mode)
            yield self.dut.plugged.eq(self.plugged)
            yield

        def nic_side():
            current = bytearray()
            for _ in range(cycles):
                if (yield self.dut.source.valid):
                    current.append((yield self.dut.source.data))
                    if (yield self.dut.source.last):
                        self.to_nic.append(bytes(current))
                        current.clear()
                yield
            assert not current, "a frame towards the NIC without its last byte"

        def tap_side():
            current = bytearray()
            for _ in range(cycles):
                if (yield self.gmii.tx_en):
                    current.append((yield self.gmii.tx_data))
                elif current:
                    self.to_tap.append(bytes(current))
                    current.clear()
                yield

        run_simulation(self.dut, [setup(), *drivers, nic_side(), tap_side()])

    def from_tap(self, *frames: bytes, gap: int = 1):
        """Frames as LiteX's GMII bridge sends them: RX_DV high per frame, ``gap`` clocks low between."""
        for _ in range(3):
            yield
        for frame in frames:
            for byte in frame:
                yield self.gmii.rx_dv.eq(1)
                yield self.gmii.rx_data.eq(byte)
                yield
            yield self.gmii.rx_dv.eq(0)
            for _ in range(gap):
                yield

    def from_nic(self, *frames: bytes):
        """Frames from the NIC's TX bridge: back to back bytes, 12 idle clocks between."""
        for _ in range(3):
            yield
        for frame in frames:
            for i, byte in enumerate(frame):
                yield self.dut.sink.valid.eq(1)
                yield self.dut.sink.data.eq(byte)
                yield self.dut.sink.last.eq(i == len(frame) - 1)
                yield
            yield self.dut.sink.valid.eq(0)
            for _ in range(12):
                yield


def test_the_tap_end_carries_frames_both_ways() -> None:
    inbound = [_frame(72, 1), _frame(300, 2), _frame(64, 3)]      # one idle clock apart, as LiteX sends
    outbound = [_frame(80, 4), _frame(120, 5)]
    bench = _Bench(tap_mode=1)
    bench.run(bench.from_tap(*inbound), bench.from_nic(*outbound), cycles=600)
    assert bench.to_nic == inbound
    assert bench.to_tap == outbound


def test_the_loopback_plug_by_default_and_the_tap_ignored() -> None:
    frames = [_frame(80, 6), _frame(90, 7)]
    bench = _Bench(tap_mode=0)
    bench.run(bench.from_nic(*frames), bench.from_tap(_frame(80, 8)), cycles=300)
    assert bench.to_nic == frames
    assert bench.to_tap == []


def test_a_pulled_cable_carries_nothing_either_way() -> None:
    for tap_mode in (0, 1):
        bench = _Bench(tap_mode=tap_mode, plugged=0)
        bench.run(bench.from_nic(_frame(70, 9)), bench.from_tap(_frame(70, 10)), cycles=200)
        assert bench.to_nic == [] and bench.to_tap == [], tap_mode
