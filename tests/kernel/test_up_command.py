"""``splitnic up`` on the host: the real CLI, the TAP backend, a namespace peer behind a veth.

Ref: hostdrv/splitnic/kernel_path.py, hostdrv/splitnic/commands/up.py.  ``--link packet:vA`` puts the veth
end where the NIC would be, so the test needs no simulated NIC.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from splitnic_lab.veth_lab import Lab, carrier, ping, sh, tcp_transfer, unique

SPLITNIC = Path(sys.executable).parent / "splitnic"


@pytest.fixture
def wire_lab() -> Iterator[Lab]:
    with Lab(wire_in_k=True) as lab:
        yield lab


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_up_tunnels_ping_and_tcp_and_stops_on_sigterm(wire_lab: Lab) -> None:
    name = unique("up")
    up = wire_lab.start_up("tap", name, ["--mac", "02:00:5e:00:53:11"])
    assert up.status.startswith(f"{name} up: tap tunnel, MAC 02:00:5e:00:53:11, MTU 1500, link packet:")
    assert up.status.endswith("(Ctrl-C to stop)")
    wire_lab.address_kernel_side(name)
    result = ping(wire_lab, count=3)
    assert result.returncode == 0, result.stdout + result.stderr
    sent, received = tcp_transfer(wire_lab, 512 << 10)
    assert received == sent
    status, out = up.stop(signal.SIGTERM)
    assert status == 0, out
    assert out.startswith(f"{name} down: to kernel ")
    assert sh("ip", "-n", wire_lab.k, "link", "show", name, check=False).returncode != 0  # TAP is gone


def test_up_carrier_follows_the_link_and_ctrl_c_stops(wire_lab: Lab) -> None:
    name = unique("up")
    up = wire_lab.start_up("tap", name)
    assert _wait_for(lambda: carrier(wire_lab.k, name))
    sh("ip", "-n", wire_lab.p, "link", "set", wire_lab.vb, "down")  # the "wire" loses its link
    assert _wait_for(lambda: not carrier(wire_lab.k, name)), "carrier should follow the link down"
    sh("ip", "-n", wire_lab.p, "link", "set", wire_lab.vb, "up")
    assert _wait_for(lambda: carrier(wire_lab.k, name)), "carrier should follow the link up"
    status, out = up.stop(signal.SIGINT)
    assert status == 0 and f"{name} down:" in out


@pytest.mark.parametrize("args, code, message", [
    (["--link", "packet:lo", "--kernel", "tunnel"], 2, "invalid choice: 'tunnel'"),
    (["--link", "packet:lo", "--mac", "02:00:00"], 2, "a MAC address must look like"),
    (["--link", "packet:lo", "--kernel", "stub"], 1, "splitnic: error: no /dev/splitnic: load the stub module"),
    (["--link", "packet:nosuch0", "--kernel", "tap"], 1,
     "splitnic: error: cannot attach to interface 'nosuch0': No such device"),
])
def test_up_reports_bad_input_in_one_line(args: list[str], code: int, message: str) -> None:
    result = subprocess.run([SPLITNIC, "up", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
