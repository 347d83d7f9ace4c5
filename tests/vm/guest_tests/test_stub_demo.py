"""The demo with the stub module leaves nothing behind: no interface, no namespace.

Ref: lab/splitnic_lab/sim_lab.py (SimLab.close destroys the interface it made);
issue "snic0 as a complete Linux interface", item 5.

The demo runs on the software NIC here: the RTL under TCG would take minutes,
and what this checks is the kernel side, which is the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SPLITNIC = Path(sys.executable).parent / "splitnic"


def _interfaces() -> set[str]:
    """Every network interface in every namespace there is (by /proc, so deleted namespaces count too)."""
    out = subprocess.run(["ip", "-all", "netns", "exec", "ip", "-o", "link", "show"], capture_output=True,
                         text=True).stdout
    out += subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line[:1].isdigit()}


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_demo_with_the_stub_passes_and_leaves_nothing(module: None) -> None:
    before_ifs, before_ns = _interfaces(), _netns()
    r = subprocess.run([str(SPLITNIC), "demo", "--no-live", "--simulator", "software", "--kernel", "stub"],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(stub tunnel;" in r.stdout and r.stdout.rstrip().splitlines()[-1].startswith("demo passed in "), r.stdout
    assert _netns() == before_ns, "the demo left namespaces behind"
    left = {name for name in _interfaces() - before_ifs}
    assert not left, f"the demo left interfaces behind: {sorted(left)}"
    assert not [d for d in os.listdir("/sys/class/net") if d.startswith("snic")], os.listdir("/sys/class/net")
