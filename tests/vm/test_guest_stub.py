"""splitnic.ko in a real kernel: boot a QEMU guest once, run tests/vm/guest_tests inside it.

Ref: tests/vm/guest.py (how the guest boots); hostdrv/kmod/splitnic.c.

The guest runs the repository's own pytest on ``guest_tests/`` (the stub
backend end to end, driver deaths, hostile user space) and writes a JUnit
report to the shared folder.  Each guest test becomes one host test here
(the list is read from the guest test files, so they cannot drift apart),
and one more checks the kernel console for oopses, BUGs and warnings.
"""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import guest

GUEST_TESTS = Path(__file__).parent / "guest_tests"


def _guest_test_names() -> list[str]:
    names = []
    for path in sorted(GUEST_TESTS.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.append(f"{path.stem}::{node.name}")
    return names


@dataclass
class Suite:
    run: guest.GuestRun
    outcomes: dict[str, list[tuple[str, str]]]  # "file::test" -> [(outcome, message)] (several if parametrized)


@pytest.fixture(scope="module")
def suite() -> Suite:
    ver = guest.kernel_version()
    guest.build_module(ver)
    guest.clean_jobs(keep=6)
    run = guest.run_in_guest(
        ".venv/bin/python -m pytest tests/vm/guest_tests -q -p no:cacheprovider -o addopts= "
        "--junitxml=$SPLITNIC_SHARE/junit.xml --timeout=120", name="stub-suite", timeout=420)
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


def test_guest_booted_and_ran_the_suite(suite: Suite) -> None:
    run = suite.run
    assert run.qemu_status == 0, f"qemu exited {run.qemu_status} after {run.seconds:.0f} s (124: timeout)"
    assert run.returncode is not None, f"the job did not finish; console tail:\n{run.console[-3000:]}"
    assert suite.outcomes, f"no JUnit report; job output:\n{run.output[-3000:]}"


def test_guest_console_has_no_oops_bug_or_warning(suite: Suite) -> None:
    assert suite.run.console, "no console log"
    assert "splitnic: /dev/splitnic ready" in suite.run.console
    assert suite.run.problems() == []


@pytest.mark.parametrize("name", _guest_test_names())
def test_in_guest(suite: Suite, name: str) -> None:
    results = suite.outcomes.get(name)
    assert results, f"{name} did not run in the guest; job output:\n{suite.run.output[-2000:]}"
    failed = [message for outcome, message in results if outcome != "passed"]
    assert not failed, failed[0][-3000:]
