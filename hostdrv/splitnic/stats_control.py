"""The NIC's counters from the process that holds it: ``splitnic stats`` while ``splitnic up`` runs.

Ref: hostdrv/splitnic/commands/stats.py (the client), hostdrv/splitnic/kernel_path.py
(Tunnel serves it from its loop).

A ``sim:`` link takes one client at a time, so a second process cannot
attach to read counters while ``splitnic up`` holds the NIC (and on any link
two processes widening the same 32-bit counters would each miss the other's
reads).  The process that holds the NIC therefore answers for it: it listens
on a Unix socket whose path is derived from the link
(``/run/splitnic/stats/<hash of the link>.sock``), and ``splitnic stats
--link L`` connects there first.  An interface or address names a NIC only
within its network namespace (``eth:snhost`` in two namespaces is two
boards), so for every link but a file (``sim:``, ``mmio:``) the hash takes
the namespace in too: otherwise a second ``splitnic up`` on the same name in
another namespace could not serve its counters, and ``splitnic stats`` there
would print the first one's.  A connection is answered at once with one
JSON line and closed, without reading anything, so a client can never stall
the driver's loop:

    {"ok": true, "link": "...", "stats": {"rx_ok": ..., ...}, "info": {...}, "tunnel": {...}}
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .errors import SplitnicError

if TYPE_CHECKING:
    from .nic import Nic

__all__ = ["StatsServer", "query", "socket_path", "canonical_link"]

log = logging.getLogger(__name__)

STATS_DIR = Path("/run/splitnic/stats")


def canonical_link(link: str) -> str:
    """One spelling of a ``--link``: file links by their real path, etherbone with its port, eth
    without ``,takeover`` (how the board was bound, not which) and its ``@MAC`` in lower case."""
    kind, _, arg = link.partition(":")
    if kind in ("sim", "mmio"):
        return f"{kind}:{os.path.realpath(arg)}"
    if kind == "eth":
        options = arg.split(",")
        rest = ",".join(o for o in options[1:] if o != "takeover")
        ifname, at, mac = options[0].partition("@")
        return f"eth:{ifname}{at}{mac.lower()}" + (f",{rest}" if rest else "")
    if kind == "etherbone":
        try:
            from .link_etherbone import parse_target
            host, port = parse_target(arg)
            return f"etherbone:{host}:{port}"
        except (SplitnicError, ValueError):
            pass
    return link


def socket_path(link: str) -> Path:
    """Where the process holding the NIC at ``link`` answers for its counters (seen from this thread's
    network namespace)."""
    key = canonical_link(link)
    if key.partition(":")[0] not in ("sim", "mmio"):
        key += f" netns:{os.stat('/proc/thread-self/ns/net').st_ino}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return STATS_DIR / f"{digest}.sock"


class StatsServer:
    """The answering end, in the process that holds the NIC; an event source of its loop.

    ``extra()`` adds fields to each answer (e.g. the tunnel's pump counters).
    """

    def __init__(self, nic: "Nic", link: str, extra: Callable[[], dict] | None = None) -> None:
        self.nic, self.link, self.extra = nic, canonical_link(link), extra
        self.path = socket_path(link)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            if _alive(self.path):
                raise SplitnicError(f"{self.path} is in use: another process serves {self.link}'s counters")
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
            sock.listen(8)
        except OSError:
            sock.close()
            raise
        self._sock = sock

    def fileno(self) -> int:
        """Readable when a client connected."""
        return self._sock.fileno()

    def poll(self) -> int:
        """Answer every client that connected; never blocks; returns how many."""
        served = 0
        while True:
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                return served
            with conn:
                conn.setblocking(False)
                try:
                    conn.send(json.dumps(self.answer()).encode() + b"\n")
                except OSError as err:   # the client went away, or its buffer is full: its problem
                    log.debug("stats: %s", err)
            served += 1

    def answer(self) -> dict:
        """The reply a client gets."""
        reply = {"ok": True, "link": self.link, "stats": self.nic.stats(), "info": self.nic.info()}
        if self.extra:
            reply.update(self.extra())
        return reply

    def close(self) -> None:
        """Stop listening and remove the socket file."""
        self._sock.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def _alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
            return True
        except OSError:
            return False


def query(link: str, timeout: float = 10) -> dict | None:
    """The counters from the process holding the NIC at ``link``; None when no process serves them."""
    path = socket_path(link)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return None    # nobody, or a process that died without removing its socket
        data = b""
        try:
            while b"\n" not in data:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        except OSError as err:
            raise SplitnicError(f"{path}: no answer from the process that holds {link}: {err}") from None
    try:
        reply = json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        raise SplitnicError(f"{path}: not an answer from splitnic: {data[:60]!r}") from None
    if not reply.get("ok"):
        raise SplitnicError(reply.get("error", f"{path}: no counters"))
    return reply
