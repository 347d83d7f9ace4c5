"""Driver processes come and go; the module survives them (runs inside the guest).

Ref: spec/splitnic_spec/tunnel.py (release semantics); hostdrv/kmod/splitnic.c.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from splitnic.errors import SplitnicError
from splitnic.tunnel_stub import StubTunnel
from splitnic_lab.veth_lab import KERNEL_IP, Lab, carrier, inside, link, ping, sh, unique

from .conftest import load_module


def _ring_allocations() -> list[str]:
    """/proc/vmallocinfo lines of shared areas the module still holds."""
    with open("/proc/vmallocinfo") as f:
        return [line for line in f if "[splitnic]" in line]


def _rmmod() -> subprocess.CompletedProcess:
    return subprocess.run(["rmmod", "splitnic"], capture_output=True, text=True)


def test_killing_the_driver_mid_traffic_then_reattach_and_rmmod(lab: Lab) -> None:
    name = unique("sk")
    bridge = lab.start_bridge("stub", name, ["--mode", "create"])
    assert bridge.attached == "created"
    lab.address_kernel_side(name)
    assert ping(lab, count=2).returncode == 0
    assert _ring_allocations(), "the driver's rings should be allocated"

    # Traffic in both directions while the driver dies.
    flood = subprocess.Popen(["ip", "netns", "exec", lab.p, "ping", "-n", "-q", "-i", "0.002", "-c", "3000",
                              KERNEL_IP], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.0)
    bridge.stop(signal.SIGKILL)
    assert bridge.proc.returncode == -signal.SIGKILL
    flood.kill()
    flood.wait()

    info = link(lab.k, name)
    assert "LOWER_UP" not in info["flags"], info["flags"]
    assert _ring_allocations() == [], "the released handle's rings must be freed"

    # A new driver process attaches to the same interface by name.
    again = lab.start_bridge("stub", name, ["--mode", "attach"])
    assert again.attached == "attached" and again.ifname == name
    result = ping(lab, count=3)
    assert result.returncode == 0, result.stdout
    assert again.stop() == 0
    assert not carrier(lab.k, name)

    # Unloading removes the interface the dead driver left behind.
    result = _rmmod()
    assert result.returncode == 0, result.stderr
    assert sh("ip", "-n", lab.k, "link", "show", name, check=False).returncode != 0
    load_module()


def test_rmmod_is_refused_while_a_driver_holds_the_device(module: None) -> None:
    tun = StubTunnel.open(unique("sr"), None, 1500, mode="create")
    try:
        result = _rmmod()
        assert result.returncode != 0 and "in use" in result.stderr
    finally:
        tun.destroy()


def test_rmmod_removes_every_left_over_interface(module: None) -> None:
    names = []
    for _ in range(3):
        tun = StubTunnel.open(unique("sl"), None, 1500, mode="create")
        tun.set_admin_up()
        tun.set_carrier(True)
        assert carrier("", tun.name)
        names.append(tun.name)
        tun.close()
    for name in names:
        assert not carrier("", name)
    assert _ring_allocations() == []
    result = _rmmod()
    assert result.returncode == 0, result.stderr
    for name in names:
        assert sh("ip", "link", "show", name, check=False).returncode != 0
    load_module()


def test_one_driver_per_interface(lab: Lab) -> None:
    name = unique("so")
    with inside(lab.k):
        first = StubTunnel.open(name, None, 1500, mode="create")
        with pytest.raises(SplitnicError, match="another driver process has it attached"):
            StubTunnel.open(name, None, 1500, mode="attach")
        with pytest.raises(SplitnicError, match="the name is taken"):
            StubTunnel.open(name, None, 1500, mode="create")
        first.close()
        second = StubTunnel.open(name, None, 1280, mode="auto")
    try:
        assert not second.created and second.mtu == 1280
    finally:
        second.destroy()


def test_attach_needs_the_same_network_namespace(lab: Lab) -> None:
    name = unique("sn")
    with inside(lab.k):
        tun = StubTunnel.open(name, None, 1500, mode="create")
    try:
        with inside(lab.p), pytest.raises(SplitnicError, match="No such device"):
            StubTunnel.open(name, None, 1500, mode="attach")
    finally:
        tun.destroy()


def test_stop_with_sigterm_leaves_the_interface_carrier_down(lab: Lab) -> None:
    name = unique("st")
    bridge = lab.start_bridge("stub", name)
    lab.address_kernel_side(name)
    assert carrier(lab.k, name)
    assert bridge.stop(signal.SIGTERM) == 0
    assert not carrier(lab.k, name)
    assert _ring_allocations() == []
