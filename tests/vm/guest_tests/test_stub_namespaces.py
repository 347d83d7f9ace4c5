"""Nothing is left behind: ip link del, namespace deletion, interfaces moved between namespaces (inside the guest).

Ref: spec/splitnic_spec/tunnel.py (lifetime); hostdrv/kmod/splitnic.c (rtnl_link_ops, snic_dellink).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import time

import pytest

from splitnic_spec import tunnel as spec

from splitnic.errors import SplitnicError
from splitnic.tunnel_stub import StubTunnel
from splitnic_lab.veth_lab import inside, sh, unique


def _namespaces() -> list[str]:
    out = sh("ip", "netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _everywhere(name: str) -> list[str]:
    """The namespaces (``""``: the root one) where an interface called ``name`` exists."""
    found = [""] if os.path.exists(f"/sys/class/net/{name}") else []
    return found + [ns for ns in _namespaces()
                    if sh("ip", "-n", ns, "link", "show", name, check=False).returncode == 0]


def _splitnic_interfaces() -> list[str]:
    """Every splitnic interface in the root namespace and the named ones (ip -d shows the kind)."""
    found = []
    for ns in [""] + _namespaces():
        out = sh("ip", *(["-n", ns] if ns else []), "-d", "-o", "link", "show", check=False).stdout
        found += [f"{ns}:{line.split(':')[1].strip()}" for line in out.splitlines() if " splitnic " in line]
    return found


def _gone(name: str, timeout: float = 10) -> bool:
    """Wait until ``name`` exists nowhere (namespace cleanup runs in a workqueue)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _everywhere(name):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def netns(module: None):
    names: list[str] = []

    def make() -> str:
        name = unique("sns")
        sh("ip", "netns", "add", name)
        names.append(name)
        return name

    yield make
    for name in names:
        sh("ip", "netns", "del", name, check=False)


def test_ip_link_del_removes_the_interface_and_hangs_up_its_handle(netns) -> None:
    ns = netns()
    name = unique("sd")
    with inside(ns):
        tun = StubTunnel.open(name, None, 1500, mode="create")
        tun.set_admin_up()
    try:
        tun.set_carrier(True)
        assert sh("ip", "-n", ns, "-d", "link", "show", name).stdout.count("splitnic") >= 1
        assert sh("ip", "-n", ns, "link", "del", name, check=False).returncode == 0
        assert _everywhere(name) == []
        poller = select.poll()
        poller.register(tun.fileno(), select.POLLIN | select.POLLPRI)
        events = dict(poller.poll(1000))
        assert events.get(tun.fileno(), 0) & select.POLLHUP
        with pytest.raises(SplitnicError, match="No such device"):
            tun.set_carrier(True)
        with pytest.raises(OSError) as e:
            fcntl.ioctl(tun.fileno(), spec.constant("IOC_KICK"))
        assert e.value.errno == errno.ENODEV
    finally:
        tun.close()
    assert _everywhere(name) == []


def test_ip_link_add_of_the_kind_is_refused(module: None) -> None:
    result = sh("ip", "link", "add", unique("sa"), "type", "splitnic", check=False)
    assert result.returncode != 0


def test_namespace_deletion_after_the_driver_closed_leaves_nothing(netns) -> None:
    ns = netns()
    name = unique("sz")
    with inside(ns):
        tun = StubTunnel.open(name, None, 1500, mode="create")
        tun.set_admin_up()
    tun.close()  # no IOC_DESTROY: the interface stays, carrier down, as the demo leaves it
    assert _everywhere(name) == [ns]
    sh("ip", "netns", "del", ns)
    assert _gone(name), f"{name} is still in {_everywhere(name)}"
    assert not [i for i in _splitnic_interfaces() if i.endswith(f":{name}")]


def test_namespace_deletion_with_the_driver_running_hangs_it_up(netns) -> None:
    ns = netns()
    name = unique("sy")
    with inside(ns):
        tun = StubTunnel.open(name, None, 1500, mode="create")
        tun.set_admin_up()
    try:
        tun.set_carrier(True)
        sh("ip", "netns", "del", ns)
        assert _gone(name), f"{name} is still in {_everywhere(name)}"
        poller = select.poll()
        poller.register(tun.fileno(), select.POLLIN)
        assert dict(poller.poll(5000)).get(tun.fileno(), 0) & select.POLLHUP
    finally:
        tun.close()


def test_a_moved_interface_dies_with_its_new_namespace(netns) -> None:
    first, second = netns(), netns()
    name = unique("sm")
    with inside(first):
        tun = StubTunnel.open(name, None, 1500, mode="create")
    tun.close()
    sh("ip", "-n", first, "link", "set", name, "netns", second)
    assert _everywhere(name) == [second]
    with inside(second):  # re-attachable where it lives now
        StubTunnel.open(name, None, 0, mode="attach").close()
    sh("ip", "netns", "del", second)
    assert _gone(name), f"{name} is still in {_everywhere(name)}"
