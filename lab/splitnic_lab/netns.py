"""Network namespaces and shell commands, for the demo and the tests' network labs.

Ref: ip-netns(8), setns(2).

The demo puts the simulated NIC's wire and the kernel interface into
namespaces of their own, so nothing it does touches the host's network;
the tests build their labs from the same helpers.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from contextlib import contextmanager
from typing import Iterator

__all__ = ["sh", "unique", "inside", "add_netns", "del_netns"]

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = 0


def sh(*args: str, netns: str | None = None, check: bool = True, timeout: float = 30,
       **kwargs) -> subprocess.CompletedProcess:
    """Run a command (inside ``netns`` if given) and return its result; raises on failure if ``check``."""
    cmd = (["ip", "netns", "exec", netns] if netns else []) + list(args)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip() or result.stdout.strip()}")
    return result


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, d = divmod(n, 36)
        out = digits[d] + out
        if not n:
            return out


def unique(prefix: str) -> str:
    """A name unique to this process (at most 15 bytes: the interface name limit)."""
    global _counter
    _counter += 1
    # Base 36 keeps a 7-digit PID and a long-running counter within the 15 bytes;
    # the PID at a fixed width, so that no two (PID, counter) pairs read alike.
    name = f"{prefix}{_base36(os.getpid()).rjust(5, '0')}{_base36(_counter)}"
    if len(name) > 15:
        raise ValueError(f"{name!r} is longer than an interface name may be (15 bytes); use a shorter prefix")
    return name


@contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the body with this thread in network namespace ``netns`` (sockets created there stay there).

    ``netns``: a name of ip-netns(8), or a path such as ``/proc/PID/ns/net`` (a process's namespace).
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns if netns.startswith("/") else f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if _libc.setns(target, _CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), f"setns({netns})")
        yield
    finally:
        _libc.setns(home, _CLONE_NEWNET)
        os.close(target)
        os.close(home)


def add_netns(name: str) -> None:
    """Create namespace ``name`` with its loopback up (IPv6 on, as on any host: labs that count
    frames must allow for its neighbour discovery and router solicitations)."""
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")


def del_netns(name: str) -> None:
    """Delete namespace ``name`` if it exists."""
    sh("ip", "netns", "del", name, check=False)
