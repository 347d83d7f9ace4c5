"""``make demo``'s job, run non-interactively: every check passes and the counters prove the paths.

Ref: lab/splitnic_lab/demo.py, lab/splitnic_lab/command.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.light_install import NOBODY, LightInstall

SPLITNIC = Path(sys.executable).parent / "splitnic"


def _netns() -> set[str]:
    """The lab's namespaces (host and peer: ``snh…``, ``snp…``); other tests' may come and go meanwhile."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip() and line.startswith(("snh", "snp"))}


def test_demo_shows_both_paths_and_cleans_up() -> None:
    before = _netns()
    r = subprocess.run([SPLITNIC, "demo", "--no-live", "--kernel", "tap"], capture_output=True, text=True,
                       timeout=900)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "Traceback" not in r.stderr
    summary = out[out.index("summary: which path each packet took"):]
    assert summary.count("[PASS]") == 4 and "[FAIL]" not in summary, summary

    def packets(queue: str) -> int:
        return int(re.search(rf"^\s+{queue}\s+(\d+)\s+\d+\s+\d+$", summary, re.M).group(1))
    # 20 UDP datagrams steered to the echo app; ARP, ICMP and TCP to the kernel; replies on both TX queues.
    assert packets("RX1 echo") == 20
    assert packets("RX0 kernel") >= 5 + 10
    assert packets(r"TX[1-9]\d* fast path") == 20          # the NIC's last TX queue: 7 on the 8-queue RTL
    assert packets("TX0 kernel") >= 5 + 10
    assert re.search(r"steering rule 'udp dport 9000 -> echo': 20 hits", summary), summary
    assert out.rstrip().splitlines()[-1].startswith("demo passed in ")
    assert _netns() == before, "the demo left namespaces behind"


def test_demo_needs_root_says_so_in_one_line(light_install: LightInstall) -> None:
    # The driver alone, installed where nobody may read it (the checkout may be in a 0700 home).
    r = subprocess.run([*NOBODY, str(light_install.splitnic), "demo"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr == "splitnic: error: the demo creates network namespaces and TAP devices: run it as root\n"
