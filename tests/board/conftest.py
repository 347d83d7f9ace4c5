"""The board tests' bitstream build, started in the background as soon as the tests are collected.

The real flow (LiteX, then YoWASP's yosys, nextpnr-ecp5 and ecppack) runs on
one core for several minutes and needs nothing from the other tests, so it runs
beside them at low priority on the machine's second core.  The bitstream tests
are moved to the end of the run and wait for it (:func:`bitstream_build`).
Tests marked ``yowasp`` (they run a YoWASP tool themselves) go just before
them: the first run of a YoWASP tool compiles its WebAssembly for a minute and
a half, and the background build does that at the start, so theirs would be
paid twice over, at the same moment; later they find it cached (10 s).
It builds into ``build/test-bitstream`` (inside the repo: YoWASP's tools cannot
see the host's /tmp), never into ``make bitstream``'s own directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from splitnic_gateware.targets.colorlight_i5 import PNR_TIMEOUT_S, SEEDS, BuildResult

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "build" / "test-bitstream"
LOG = REPO / "build" / "test-bitstream.log"
#: Longest a build may take: every seed to its bound, plus LiteX, yosys and ecppack (about 2
#: minutes alone, 4 beside the other tests).
BUILD_TIMEOUT_S = len(SEEDS) * PNR_TIMEOUT_S + 5 * 60
_BITSTREAM_TESTS = "test_bitstream.py"

_build: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "yowasp: runs a YoWASP tool; ordered after the background bitstream "
                            "build has compiled the tools (tests/board/conftest.py)")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the bitstream tests last, after the other YoWASP users, and start their build now if they are selected."""
    wanted = [item for item in items if item.path.name == _BITSTREAM_TESTS]
    if not wanted or config.option.collectonly:
        return
    yowasp = [item for item in items if item.path.name != _BITSTREAM_TESTS and item.get_closest_marker("yowasp")]
    items[:] = [item for item in items if item.path.name != _BITSTREAM_TESTS and item not in yowasp] \
        + yowasp + wanted
    shutil.rmtree(OUT, ignore_errors=True)         # always a fresh build: CI must prove it builds
    LOG.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, YOWASP_CACHE_DIR=str(REPO / ".cache" / "yowasp"))
    with LOG.open("w") as log:
        _build["process"] = subprocess.Popen(
            [sys.executable, "-m", "splitnic_gateware.targets.colorlight_i5", "--out", str(OUT)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=lambda: os.nice(10))           # the foreground tests keep their core
    _build["started"] = time.monotonic()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop a build the run no longer waits for (the run stopped early)."""
    process = _build.get("process")
    if isinstance(process, subprocess.Popen) and process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def bitstream_build() -> BuildResult:
    """The background build's result, once it has finished (fails with the build's own error)."""
    process = _build.get("process")
    if not isinstance(process, subprocess.Popen):
        pytest.fail("the bitstream build was not started at collection (tests/board/conftest.py)")
    left = BUILD_TIMEOUT_S - (time.monotonic() - float(_build["started"]))
    try:
        rc = process.wait(timeout=max(left, 1))
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the bitstream build took over {BUILD_TIMEOUT_S // 60} minutes; see {LOG}")
    summary = OUT / "summary.json"
    if rc != 0 or not summary.exists():
        tail = "\n".join(LOG.read_text(errors="replace").splitlines()[-25:])
        pytest.fail(f"make bitstream failed (exit {rc}); {LOG} ends:\n{tail}")
    return BuildResult(**json.loads(summary.read_text()))
