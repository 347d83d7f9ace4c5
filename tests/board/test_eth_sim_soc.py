"""The ``eth`` host link end to end on the simulated board SoC: the driver's commands over the SoC's TAP.

Ref: splitnic_spec.hostlink (the protocol); gateware/splitnic_gateware/hostlink
(the board's engines) and targets/hostlink_core.py (their place in the SoC);
hostdrv/splitnic/link_eth.py (the host side).  The same SoC as the bitstream
(:class:`~splitnic_gateware.targets.sim.SimSoCProcess`, started as in
test_sim_soc.py: root, /dev/net/tun, built on first use); the host opens
``eth:snebtap0``, the TAP that is the board's host-link cable, inside the
SoC's namespace.  The HELLO, register reads (the ID block), descriptors and
TX buffers pushed into NIC-local memory, completions and RX frames coming back
as messages, the NIC's interrupt: ``splitnic selftest`` exercises all of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

import splitnic_spec as spec
from splitnic_spec import board as amap
from splitnic_spec import hostlink
from splitnic_gateware.targets.nic_core import build_id
from splitnic_gateware.targets.sim import TAP, SimSoCProcess

SPLITNIC = Path(sys.executable).parent / "splitnic"
LINK = f"eth:{TAP}"


@pytest.fixture(scope="module")
def soc() -> Iterator[SimSoCProcess]:
    # Builds the simulator the first time (minutes).
    with SimSoCProcess() as running:
        yield running


def _cli(soc: SimSoCProcess, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``splitnic ARGS`` in the simulated SoC's namespace, where its TAP is."""
    return subprocess.run(["nsenter", f"--net={soc.netns_path}", str(SPLITNIC), *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.timeout(1800)
def test_info_over_eth(soc: SimSoCProcess) -> None:
    result = _cli(soc, "info", "--json", "--link", LINK)
    assert result.returncode == 0, result.stdout + result.stderr
    info = json.loads(result.stdout)
    # The board's HELLO answer (its NIC-local memory) and the ID block, read with READ messages.
    assert info["link_kind"] == "eth" and info["zero_copy"] is False, info
    assert info["build_id"] == f"{build_id():#010x}", info
    text = _cli(soc, "info", "--link", LINK)
    assert text.returncode == 0, text.stderr
    assert LINK in text.stdout and f"hash {spec.SPEC_HASH:#010x}" in text.stdout, text.stdout
    assert f"{amap.DMA_RAM_SIZE // 1024} KiB NIC-local memory at {amap.DMA_RAM_BASE:#x}" in text.stdout, text.stdout


@pytest.mark.timeout(1800)
def test_selftest_over_eth(soc: SimSoCProcess) -> None:
    result = _cli(soc, "selftest", "--link", LINK, "--count", "16", "--timeout", "240")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS: 16 frames"), result.stdout


def test_etherbone_still_answers_beside_eth(soc: SimSoCProcess) -> None:
    # The same MAC carries both: UDP for Etherbone, EtherType hostlink.ETHERTYPE for the engines.
    assert _cli(soc, "info", "--link", LINK).returncode == 0
    result = _cli(soc, "info", "--json", "--link", soc.link)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["link_kind"] == "etherbone"
    assert hostlink.ETHERTYPE == 0x88B5
