"""``splitnic up`` on the stub backend with a NIC: the C pump between the software NIC's queue 0 and splitnic.ko's rings.

Ref: hostdrv/splitnic/_hotpath.c (snic_pump_*: u2k slot and k2u slot <-> NIC buffers, one kick per
burst); tests/kernel/test_up_softnic.py (the same checks on the TAP backend, on the host).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kernel import test_up_softnic as host


@pytest.fixture
def wire(tmp_path: Path, module: None):
    # The mmio link only: under TCG each test takes a minute; the sim link's side of the pump
    # is the same C (tests/kernel/test_up_softnic.py runs both links on the host).
    w = host.SoftWire("mmio", tmp_path, kernel="stub")
    try:
        yield w
    finally:
        w.close()


def test_up_moves_bursts_both_ways_through_the_stub_rings(wire) -> None:
    # 600 frames each way through 256-entry rings, in order (up runs with --kernel stub).
    host.test_up_moves_bursts_both_ways_through_wrapping_rings(wire)


def test_an_idle_up_on_the_stub_sleeps_in_epoll(wire) -> None:
    # (On the sim link every register read of the once-a-second counter publication,
    # splitnic.kernel_config, is a socket round trip: a context switch of its own.)
    host.test_an_idle_up_sleeps_in_epoll_and_hardly_wakes(wire)
