"""Shared pytest configuration."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from tests.light_install import LightInstall, make_light_install

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def light_install() -> Iterator[LightInstall]:
    """``pip install .`` of this tree in a fresh venv of Debian's Python, readable by every user."""
    venv = make_light_install()
    yield venv
    shutil.rmtree(venv.root.parent, ignore_errors=True)
