"""splitnic.ko in a real kernel: boot a QEMU guest once, run tests/vm/guest_tests inside it.

Ref: tests/vm/guest.py (how the guest boots); hostdrv/kmod/splitnic.c.

The guest runs the repository's own pytest on ``guest_tests/`` (the stub
backend end to end, driver deaths, hostile user space) and writes a JUnit
report to the shared folder.  Every installed kernel boots (Debian 12's 6.1
and 6.12, :func:`guest.kernel_versions`): the first runs every guest test,
the others the module's own files (tunnel, lifecycle, namespaces,
configuration and published counters, hostile user space, stress), not the driver's
slower end-to-end ones.  Each guest test becomes one host test here (the
list is read from the guest test files, so they cannot drift apart), and one
more checks the kernel console for oopses, BUGs and warnings.
"""

from __future__ import annotations

import ast
import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import guest

GUEST_TESTS = Path(__file__).parent / "guest_tests"
#: Every installed kernel (tests/vm/guest.py): the first runs every guest test, the others these files.
KERNELS = guest.kernel_versions()
OTHER_KERNEL_FILES = ("test_stub_tunnel", "test_stub_lifecycle", "test_stub_namespaces", "test_stub_config",
                      "test_stub_hostile", "test_stub_stress")


def _guest_test_names(ver: str) -> list[str]:
    names = []
    for path in sorted(GUEST_TESTS.glob("test_*.py")):
        if ver != KERNELS[0] and path.stem not in OTHER_KERNEL_FILES:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.append(f"{path.stem}::{node.name}")
    return names


@dataclass
class Suite:
    run: guest.GuestRun
    outcomes: dict[str, list[tuple[str, str]]]  # "file::test" -> [(outcome, message)] (several if parametrized)


@functools.cache
def _suite(ver: str) -> Suite:
    """Boot kernel ``ver`` once and run its guest tests there."""
    guest.build_module(ver)
    guest.clean_jobs(keep=6)
    files = " ".join(f"tests/vm/guest_tests/{f}.py" for f in OTHER_KERNEL_FILES) if ver != KERNELS[0] \
        else "tests/vm/guest_tests"
    run = guest.run_in_guest(
        f".venv/bin/python -m pytest {files} -q -p no:cacheprovider -o addopts= "
        "--junitxml=$SPLITNIC_SHARE/junit.xml --timeout=120", name=f"stub-suite-{ver}", timeout=900,
        kernel=ver)
    outcomes: dict[str, list[tuple[str, str]]] = {}
    junit = run.share / "junit.xml"
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            key = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name', '').split('[')[0]}"
            outcome, message = "passed", ""
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome, message = child.tag, (child.get("message") or "") + "\n" + (child.text or "")
            outcomes.setdefault(key, []).append((outcome, message))
    return Suite(run, outcomes)


@pytest.mark.parametrize("ver", KERNELS)
def test_guest_booted_and_ran_the_suite(ver: str) -> None:
    run = _suite(ver).run
    assert run.qemu_status == 0, f"qemu exited {run.qemu_status} after {run.seconds:.0f} s (124: timeout)"
    assert run.returncode is not None, f"the job did not finish; console tail:\n{run.console[-3000:]}"
    assert _suite(ver).outcomes, f"no JUnit report; job output:\n{run.output[-3000:]}"


@pytest.mark.parametrize("ver", KERNELS)
def test_guest_console_has_no_oops_bug_or_warning(ver: str) -> None:
    run = _suite(ver).run
    assert run.console, "no console log"
    assert "splitnic: /dev/splitnic ready" in run.console
    assert run.problems() == []


@pytest.mark.parametrize("ver,name", [(ver, name) for ver in KERNELS for name in _guest_test_names(ver)])
def test_in_guest(ver: str, name: str) -> None:
    suite = _suite(ver)
    results = suite.outcomes.get(name)
    assert results, f"{name} did not run in the guest; job output:\n{suite.run.output[-2000:]}"
    failed = [message for outcome, message in results if outcome != "passed"]
    assert not failed, failed[0][-3000:]
