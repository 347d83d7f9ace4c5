"""The board tests' bitstream build and the i9's synthesis, started in the background as soon as the tests are collected.

The real flow (LiteX, then YoWASP's yosys, nextpnr-ecp5 and ecppack) runs on
one core for several minutes and needs nothing from the other tests, so it runs
beside them at low priority on the machine's second core.  The bitstream tests
are moved to the end of the run and wait for it (:func:`bitstream_build`).
After it, on the same core, the Colorlight i9's SoC is elaborated and
synthesised (yosys only: its place and route is ``make bench BENCH=board``'s);
``test_board_synth.py`` waits for that (:func:`i9_synthesis`).
Tests marked ``yowasp`` (they run a YoWASP tool themselves) go just before
them: the first run of a YoWASP tool compiles its WebAssembly for a minute and
a half, and the background build does that at the start, so theirs would be
paid twice over, at the same moment; later they find it cached (10 s).
It builds into ``build/test-bitstream`` and ``build/test-synth-i9`` (inside the
repo: YoWASP's tools cannot see the host's /tmp), never into ``make
bitstream``'s own directories.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from splitnic_gateware.targets.colorlight import PNR_TIMEOUT_S, SEEDS, BuildResult, SynthResult

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "build" / "test-bitstream"
LOG = REPO / "build" / "test-bitstream.log"
#: Longest a build may take: every seed to its bound, plus LiteX, yosys and ecppack (about 2
#: minutes alone, 4 beside the other tests).
BUILD_TIMEOUT_S = len(SEEDS) * PNR_TIMEOUT_S + 5 * 60
OUT_I9 = REPO / "build" / "test-synth-i9"
LOG_I9 = REPO / "build" / "test-synth-i9.log"
#: Longest the i9's elaboration and synthesis may take: yosys's synth_ecp5 -abc9 of the whole SoC,
#: about 5 minutes of CPU (LiteX 7 s, yosys 283 s), 31 minutes on a machine loaded ten times over.
SYNTH_TIMEOUT_S = 45 * 60
_BITSTREAM_TESTS = "test_bitstream.py"
_SYNTH_TESTS = "test_board_synth.py"


@dataclass
class _Job:
    """One background command; the jobs run one after the other on the second core."""
    what: str
    args: list[str]
    out: Path
    log: Path
    timeout: float
    process: subprocess.Popen | None = None
    timed_out: bool = False
    done: threading.Event = field(default_factory=threading.Event)


_JOBS = {
    _BITSTREAM_TESTS: _Job("the i5's bitstream build (make bitstream)", ["--board", "colorlight_i5", "--out", str(OUT)],
                           OUT, LOG, BUILD_TIMEOUT_S),
    _SYNTH_TESTS: _Job("the i9's synthesis", ["--board", "colorlight_i9", "--synth-only", "--out", str(OUT_I9)],
                       OUT_I9, LOG_I9, SYNTH_TIMEOUT_S),
}
_build: dict[str, object] = {}


def _run_jobs(jobs: list[_Job]) -> None:
    env = dict(os.environ, YOWASP_CACHE_DIR=str(REPO / ".cache" / "yowasp"))
    for job in jobs:
        if _build.get("stopping"):
            job.done.set()
            continue
        with job.log.open("w") as log:
            job.process = subprocess.Popen(
                [sys.executable, "-m", "splitnic_gateware.targets.colorlight", *job.args],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=lambda: os.nice(10))           # the foreground tests keep their core
            try:
                job.process.wait(timeout=job.timeout)
            except subprocess.TimeoutExpired:
                job.timed_out = True
                job.process.kill()
                job.process.wait()
        job.done.set()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "yowasp: runs a YoWASP tool; ordered after the background bitstream "
                            "build has compiled the tools (tests/board/conftest.py)")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the bitstream tests last, after the other YoWASP users, and start their build now if they are selected."""
    waiting = {name for name in _JOBS if any(item.path.name == name for item in items)}
    if not waiting or config.option.collectonly:
        return
    last = [item for item in items if item.path.name in waiting]
    yowasp = [item for item in items if item.path.name not in waiting and item.get_closest_marker("yowasp")]
    items[:] = [item for item in items if item.path.name not in waiting and item not in yowasp] + yowasp \
        + sorted(last, key=lambda item: list(_JOBS).index(item.path.name))
    jobs = [job for name, job in _JOBS.items() if name in waiting]
    for job in jobs:
        shutil.rmtree(job.out, ignore_errors=True)  # always a fresh build: CI must prove it builds
        job.log.parent.mkdir(parents=True, exist_ok=True)
    _build["thread"] = threading.Thread(target=_run_jobs, args=(jobs,), name="board-builds", daemon=True)
    _build["thread"].start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the builds the run no longer waits for (the run stopped early)."""
    _build["stopping"] = True
    for job in _JOBS.values():
        if job.process is not None and job.process.poll() is None:
            job.process.kill()
            job.process.wait()
    thread = _build.get("thread")
    if isinstance(thread, threading.Thread):
        thread.join(timeout=30)


def _wait_for(test_file: str) -> tuple[int, Path]:
    """Wait for the background job ``test_file`` needs; its exit status and summary.json."""
    job = _JOBS[test_file]
    if "thread" not in _build:
        pytest.fail(f"{job.what} was not started at collection (tests/board/conftest.py)")
    # The jobs before this one run first: its bound is theirs and its own.
    ahead = list(_JOBS).index(test_file)
    bound = sum(j.timeout for j in list(_JOBS.values())[:ahead + 1]) + 60
    if not job.done.wait(timeout=bound):
        pytest.fail(f"{job.what} did not finish within {bound // 60:.0f} minutes; see {job.log}")
    if job.timed_out:
        pytest.fail(f"{job.what} took over {job.timeout // 60:.0f} minutes; see {job.log}")
    rc = job.process.returncode if job.process is not None else -1
    summary = job.out / "summary.json"
    if rc != 0 or not summary.exists():
        tail = "\n".join(job.log.read_text(errors="replace").splitlines()[-25:]) if job.log.exists() else ""
        pytest.fail(f"{job.what} failed (exit {rc}); {job.log} ends:\n{tail}")
    return rc, summary


@pytest.fixture(scope="session")
def bitstream_build() -> BuildResult:
    """The background build's result, once it has finished (fails with the build's own error)."""
    _, summary = _wait_for(_BITSTREAM_TESTS)
    return BuildResult(**json.loads(summary.read_text()))


@pytest.fixture(scope="session")
def i9_synthesis() -> SynthResult:
    """The i9's background synthesis, once it has finished (fails with its own error)."""
    _, summary = _wait_for(_SYNTH_TESTS)
    return SynthResult(**json.loads(summary.read_text()))
