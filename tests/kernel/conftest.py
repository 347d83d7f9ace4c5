"""Fixtures for the kernel-path tests on the host: a network lab torn down after each test."""

from __future__ import annotations

from typing import Iterator

import pytest

from .netlab import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Namespaces K/W/P with a veth peer (see netlab), deleted afterwards."""
    with Lab() as lab:
        yield lab
