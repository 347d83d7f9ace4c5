"""Fixtures for the driver tests: NICs on every link this machine has.

- ``mmio``: the software NIC (splitnic_sim.softnic) on a shared-memory file,
  in a thread of the test process; tests control its registers directly.
- ``softsim``: the same model behind the ``sim`` socket protocol (contract D),
  to exercise the socket client without building the RTL.
- ``sim``: the RTL in the simulator (splitnic_sim.server.SimNic), one per
  session, used where the test needs no model-specific control.
- ``eth``: the same model as the board's stand-in on the ``eth`` host link
  (splitnic_sim.hostlink_standin), across a veth pair in a namespace of the
  test's own: the driver's queue code over posted-write messages.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

import splitnic
from splitnic.nic import Nic
from splitnic_lab.netns import add_netns, del_netns, inside, sh, unique
from splitnic_sim.hostlink_standin import HostLinkStandIn
from splitnic_sim.softnic import SoftNic

NIC_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000002")

#: Links every parametrised test runs on.
LINKS = ["mmio", "softsim", "sim", "eth"]


@pytest.fixture
def softnic(tmp_path: Path) -> Iterator[SoftNic]:
    """A running software NIC on an mmio file."""
    with SoftNic() as model:
        yield model


@pytest.fixture
def mmio_nic(softnic: SoftNic) -> Iterator[Nic]:
    """A reset NIC on the mmio link, MAC NIC_MAC."""
    nic = splitnic.open(softnic.link)
    nic.reset()
    nic.mac = NIC_MAC
    yield nic
    nic.close()


@pytest.fixture(scope="session")
def sim_link(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ``--link`` of one RTL simulator for the whole session."""
    from splitnic_sim.server import SimNic
    sock = tmp_path_factory.mktemp("sim") / "nic.sock"
    with SimNic(socket_path=sock) as sim:  # entering starts it (building the RTL the first time)
        yield sim.link


@contextmanager
def eth_standin(**options) -> Iterator[tuple[HostLinkStandIn, str]]:
    """The board's stand-in on one end of a veth pair and the ``eth:`` link to it, in a new namespace.

    Yields ``(stand_in, link)``; the caller is inside the namespace until the block ends.
    """
    ns = unique("snic-eth")
    add_netns(ns)
    try:
        sh("ip", "link", "add", "snhost", "type", "veth", "peer", "name", "snboard", netns=ns)
        for ifname in ("snhost", "snboard", "lo"):
            sh("ip", "link", "set", ifname, "up", netns=ns)
        with inside(ns), HostLinkStandIn("snboard", **options) as stand_in:
            yield stand_in, "eth:snhost"
    finally:
        del_netns(ns)


@contextmanager
def reset_nic(link: str) -> Iterator[Nic]:
    """The NIC on ``link``, reset, with MAC NIC_MAC; closed after the block."""
    nic = splitnic.open(link)
    try:
        nic.reset()
        nic.mac = NIC_MAC
        yield nic
    finally:
        nic.close()


@pytest.fixture(params=LINKS)
def any_nic(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Nic]:
    """A reset NIC with MAC NIC_MAC on each link in turn."""
    if request.param == "eth":
        # NIC-local memory as large as the other links' (the board's 32 KiB shrinks the TX queues).
        with eth_standin(local_size=1 << 20) as (_stand_in, link), reset_nic(link) as nic:
            yield nic
        return
    model = None
    if request.param == "sim":
        link = request.getfixturevalue("sim_link")
    else:
        model = SoftNic(sim_socket=tmp_path / "softsim.sock" if request.param == "softsim" else None).start()
        link = model.link
    try:
        with reset_nic(link) as nic:
            yield nic
    finally:
        if model:
            model.close()


def frame(dst: bytes = NIC_MAC, src: bytes = PEER_MAC, ethertype: int = 0x88B5, payload: bytes = b"",
          size: int = 0) -> bytes:
    """An Ethernet frame (no FCS) padded with a counting pattern to ``size`` bytes."""
    f = dst + src + ethertype.to_bytes(2, "big") + payload
    return f + bytes(i & 0xFF for i in range(max(0, size - len(f))))


def receive(rxq, count: int, timeout: float = 30.0) -> list:
    """Packets from ``rxq`` until ``count`` arrived or ``timeout`` seconds passed (caller releases them)."""
    import time
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        burst = rxq.rx_burst(count - len(got))
        if burst:
            got += burst
        else:
            time.sleep(0.0005)
    return got
