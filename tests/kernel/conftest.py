"""Fixtures for the kernel-path tests on the host: a network lab torn down after each test."""

from __future__ import annotations

from typing import Iterator

import pytest

from splitnic_lab.veth_lab import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Namespaces K/W/P with a veth peer (see splitnic_lab.veth_lab), deleted afterwards."""
    with Lab() as lab:
        yield lab
