"""The split end to end on the simulated RTL NIC: a fast-path app owns UDP port 9000, the kernel the rest.

Ref: lab/splitnic_lab/sim_lab.py (SimLab: NIC wire in a peer namespace, snic0
in a host namespace, pump and apps in one loop); hostdrv/splitnic/fastpath.py.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from splitnic_lab.sim_lab import ECHO_PORT, Check, SimLab, ping_from_peer, tcp_from_peer, udp_from_peer


@pytest.fixture(scope="module")
def lab() -> Iterator[SimLab]:
    lab = SimLab(kernel="tap", name="snicfp0", rules=(f"udp dport {ECHO_PORT} -> echo",)).start()
    try:
        yield lab
    finally:
        lab.close()


def _packets(lab: SimLab, prefix: str) -> int:
    return next(v["packets"] for k, v in lab.counters().items() if k.startswith(prefix))


def test_udp_to_the_rule_is_answered_by_the_app_and_never_reaches_the_kernel(lab: SimLab) -> None:
    rx1_before, hits_before = _packets(lab, "RX1"), lab.fast.listing()[0][3]
    echo, guard = Check("echo"), Check("guard")
    lab.alongside(udp_from_peer, lab, echo, guard, 10)
    assert echo.ok, echo.detail
    assert guard.ok, guard.detail
    assert _packets(lab, "RX1") - rx1_before == 10
    assert lab.fast.listing()[0][3] - hits_before == 10
    assert lab.echo.echoed >= 10


def test_arp_icmp_and_tcp_still_reach_the_kernel(lab: SimLab) -> None:
    rx0_before, rx1_before = _packets(lab, "RX0"), _packets(lab, "RX1")
    ping, tcp = Check("ping"), Check("tcp")
    lab.alongside(ping_from_peer, lab, ping, 3)
    lab.alongside(tcp_from_peer, lab, tcp, 16 << 10)
    assert ping.ok, ping.detail
    assert tcp.ok, tcp.detail
    assert _packets(lab, "RX0") - rx0_before >= 3 + 12   # echo requests + TCP segments, at least
    assert _packets(lab, "RX1") == rx1_before            # nothing of it on the app's queue


def test_removing_the_rule_sends_the_port_back_to_the_kernel(lab: SimLab) -> None:
    removed = lab.fast.remove(0)
    try:
        echo, guard = Check("echo"), Check("guard")
        lab.alongside(udp_from_peer, lab, echo, guard, 3, 2)
        # Now the kernel's socket gets the datagrams and nobody echoes them.
        assert not guard.ok and "received 3" in guard.detail, guard.detail
        assert "0/3" in echo.detail, echo.detail
    finally:
        lab.fast.add(removed)
    echo, guard = Check("echo"), Check("guard")
    lab.alongside(udp_from_peer, lab, echo, guard, 3)
    assert echo.ok and guard.ok, (echo.detail, guard.detail)
