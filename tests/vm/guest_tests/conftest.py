"""Fixtures for the tests that run inside the guest: the module loaded, a network lab."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from splitnic_lab.veth_lab import Lab

KO = Path(os.environ.get("SPLITNIC_REPO", ".")) / "build" / "kmod" / os.environ.get("SPLITNIC_KVER", "") / "splitnic.ko"


def load_module() -> None:
    """insmod splitnic.ko unless /dev/splitnic exists."""
    if not os.path.exists("/dev/splitnic"):
        subprocess.run(["insmod", str(KO)], check=True, capture_output=True, text=True)


@pytest.fixture(scope="session", autouse=True)
def _kernel_modules() -> None:
    subprocess.run(["modprobe", "-a", "veth", "tun"], check=True)


@pytest.fixture
def module() -> None:
    """splitnic.ko is loaded."""
    load_module()


@pytest.fixture
def lab(module: None) -> Iterator[Lab]:
    """Namespaces K/W/P with a veth peer (lab/splitnic_lab/veth_lab.py), deleted afterwards."""
    with Lab() as lab:
        yield lab
