"""The NIC's interrupt reaches the driver as a descriptor: rises, re-arming, link changes, coalescing.

Ref: hostdrv/splitnic/irq.py; docs/registers.md (IRQ_STATUS, IRQ_MASK, IRQ_COALESCE); the software NIC
(sim/splitnic_sim/softnic.c, irq_update) on the mmio link and behind the sim link's socket.
"""

from __future__ import annotations

import select
import time
from pathlib import Path

import pytest

import splitnic
from splitnic.irq import NicInterrupt
from splitnic_sim.softnic import SoftNic
from splitnic_spec import CSR_MAP

from .conftest import NIC_MAC, frame


def _fired(irq: NicInterrupt, timeout: float) -> bool:
    return bool(select.select([irq.fileno()], [], [], timeout)[0]) and irq.take()


@pytest.fixture(params=["mmio", "softsim"])
def nic(request: pytest.FixtureRequest, tmp_path: Path):
    model = SoftNic(sim_socket=tmp_path / "s.sock" if request.param == "softsim" else None).start()
    nic = splitnic.open(model.link)
    nic.reset()
    nic.mac = NIC_MAC
    yield nic, model
    nic.close()
    model.close()


def test_a_frame_raises_the_line_once_until_rearmed(nic) -> None:
    nic, model = nic
    assert nic.link.irq is not None
    rxq = nic.rx_queue(0, ring_log2=4)
    irq = NicInterrupt(nic, coalesce_usecs=0)
    irq.enable(rx_queues=1)
    irq.arm()
    assert not _fired(irq, 0.2)
    model.inject(frame(size=80))
    assert _fired(irq, 10), "no interrupt for a received frame"
    assert not irq.link_changed()
    model.inject(frame(size=81))       # the line is still up: no second event
    assert not _fired(irq, 0.3)
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        got += rxq.rx_burst(4)
    rxq.release(got)
    irq.arm()                           # queue empty: re-arm, the next frame raises it again
    model.inject(frame(size=82))
    assert _fired(irq, 10)
    assert model.irqs == 2


def test_masked_causes_raise_nothing_and_link_changes_do(nic) -> None:
    nic, model = nic
    nic.rx_queue(0, ring_log2=4)
    irq = NicInterrupt(nic, coalesce_usecs=0)
    irq.enable(rx_queues=0, link=True)
    irq.arm()
    model.inject(frame(size=80))
    assert not _fired(irq, 0.3)
    link = CSR_MAP.register("LINK")
    model.write_reg(link.offset, link.pack(UP=1, SPEED=2, FULL_DUPLEX=1))
    assert _fired(irq, 10)
    assert irq.link_changed()


def test_coalescing_holds_the_next_rise_back(nic) -> None:
    nic, model = nic
    rxq = nic.rx_queue(0, ring_log2=4)
    irq = NicInterrupt(nic, coalesce_usecs=100_000)
    irq.enable(rx_queues=1)
    irq.arm()
    model.inject(frame(size=80))
    assert _fired(irq, 10)
    until = model.s.irq_holdoff_until        # the model's CLOCK_MONOTONIC, in ns
    assert until - time.monotonic_ns() > 50_000_000 or model.irqs == 1
    rxq.release(rxq.rx_burst(4))
    irq.arm()
    model.inject(frame(size=80))
    assert _fired(irq, 10)
    assert time.monotonic_ns() >= until, "the line rose again before the hold-off ran out"
    assert model.irqs == 2


def test_the_rtl_nic_raises_its_interrupt_through_the_simulator(sim_link: str) -> None:
    nic = splitnic.open(sim_link)
    try:
        nic.reset()
        nic.mac = NIC_MAC
        rxq, txq = nic.rx_queue(0, ring_log2=4), nic.tx_queue(0, ring_log2=4)
        nic.set_loopback(True)
        assert nic.link.irq is not None, "the simulator's hello has no interrupt socket"
        irq = NicInterrupt(nic, coalesce_usecs=0)
        irq.enable(rx_queues=1)
        irq.arm()
        assert not _fired(irq, 0.3)
        for n in range(2):   # a rise, then (after the queue is drained and the line re-armed) another
            assert txq.tx_burst([frame(size=80 + n)]) == 1
            assert _fired(irq, 60), f"no interrupt for looped-back frame {n}"
            got: list = []
            deadline = time.monotonic() + 60
            while not got and time.monotonic() < deadline:
                got = rxq.rx_burst(4)
            assert len(got) == 1
            rxq.release(got)
            irq.arm()
    finally:
        nic.set_loopback(False)
        nic.close()


def test_opening_another_queue_leaves_the_interrupt_enabled(nic) -> None:
    # splitnic up --fast opens the applications' queues after the kernel path armed the interrupt.
    nic, model = nic
    nic.rx_queue(0, ring_log2=4)
    irq = NicInterrupt(nic, coalesce_usecs=0)
    irq.enable(rx_queues=1)
    nic.rx_queue(1, ring_log2=4)
    nic.tx_queue(1, ring_log2=4)
    irq.arm()
    model.inject(frame(size=80))
    assert _fired(irq, 10), "opening a queue masked the interrupt"
