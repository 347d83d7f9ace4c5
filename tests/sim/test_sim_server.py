"""The simulated NIC's process never outlives the process that started it.

Ref: sim/splitnic_sim/server.py (SimNic), sim/splitnic_sim/tb/nic_server.py (the owner check).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

#: A driver process that starts a simulator, says where it is, and waits to be killed.
OWNER = textwrap.dedent("""
    import sys, time
    from splitnic_sim.server import SimNic
    sim = SimNic(socket_path=sys.argv[1]).start()
    print(sim._proc.pid, sim.shm_path, flush=True)
    time.sleep(600)
""")


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_simulator_stops_when_its_owner_is_killed(tmp_path: Path) -> None:
    sock = tmp_path / "nic.sock"
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(sock)], stdout=subprocess.PIPE, text=True)
    pgid = 0
    try:
        line = owner.stdout.readline().split()
        assert len(line) == 2, "the owner did not start its simulator"
        pgid, shm = int(line[0]), Path(line[1])
        assert sock.exists() and shm.exists()
        owner.kill()                      # SIGKILL: SimNic.stop() never runs
        owner.wait()
        deadline = time.monotonic() + 30
        while not _gone(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _gone(pgid), "the simulator outlived its owner by 30 s"
        assert not sock.exists(), "the simulator left its socket behind"
        assert not shm.exists(), "the simulator left its shared memory behind"
    finally:
        if owner.poll() is None:
            owner.kill()
        if pgid and not _gone(pgid):
            os.killpg(pgid, signal.SIGKILL)
