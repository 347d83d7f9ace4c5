"""Change the steering rules of a running ``splitnic up`` from another process.

Ref: hostdrv/splitnic/fastpath.py (what a change does to the NIC).

``splitnic up`` listens on a Unix socket (by default
``/run/splitnic/<interface>.rules``); ``splitnic rules`` sends one JSON
request per connection and prints the one JSON reply:

    {"op": "list"}                  -> {"ok": true, "rules": [[index, rule, queue, hits], ...]}
    {"op": "add", "rule": "..."}    -> {"ok": true, "index": N}
    {"op": "remove", "index": N}    -> {"ok": true, "removed": "rule"}
    (any failure)                   -> {"ok": false, "error": "one line"}

The server is polled from the same loop as the pump and the applications
(the driver is single-threaded), so a change lands between two bursts and no
frame is lost to it.  It never blocks that loop: its sockets are non-blocking
and wait in an epoll set of their own, whose descriptor (:meth:`RuleServer.fileno`)
the loop watches; a client that connects and sends nothing costs nothing and
is dropped after ``CLIENT_TIMEOUT`` seconds (or when ``MAX_CLIENTS`` wait).
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import time
from pathlib import Path

from .errors import SplitnicError
from .fastpath import FastPath

__all__ = ["RuleServer", "request", "default_path"]

log = logging.getLogger(__name__)

_MAX_REQUEST = 4096
#: Seconds a client may take to send its request line.
CLIENT_TIMEOUT = 2.0
#: Clients waiting for their request line at once; the oldest is dropped beyond.
MAX_CLIENTS = 8


def default_path(ifname: str) -> Path:
    """Where ``splitnic up`` for interface ``ifname`` listens for rule changes."""
    return Path("/run/splitnic") / f"{ifname}.rules"


class RuleServer:
    """The listening end, inside ``splitnic up``."""

    def __init__(self, fast: FastPath, path: Path) -> None:
        self.fast = fast
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            if _alive(path):
                raise SplitnicError(f"{path} is in use: another 'splitnic up' serves it; pick --name or --control")
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen(4)
        sock.setblocking(False)
        self._sock = sock
        self._ep = select.epoll()
        self._ep.register(sock.fileno(), select.EPOLLIN)
        self._clients: dict[int, tuple[socket.socket, bytearray, float]] = {}

    def fileno(self) -> int:
        """A descriptor readable when a client connected or sent something (an epoll set)."""
        return self._ep.fileno()

    def poll(self) -> int:
        """Answer the requests that are complete, without blocking; returns how many."""
        served = 0
        now = time.monotonic()
        for fd, _mask in self._ep.poll(0):
            if fd == self._sock.fileno():
                self._accept(now)
            elif fd in self._clients:
                served += self._read(fd)
        for fd, (_conn, _buf, since) in list(self._clients.items()):
            if now - since > CLIENT_TIMEOUT:
                log.debug("rules: dropped a client that sent no request in %.0f s", CLIENT_TIMEOUT)
                self._drop(fd)
        return served

    def _accept(self, now: float) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            if len(self._clients) >= MAX_CLIENTS:
                self._drop(min(self._clients, key=lambda fd: self._clients[fd][2]))
            self._clients[conn.fileno()] = (conn, bytearray(), now)
            self._ep.register(conn.fileno(), select.EPOLLIN)

    def _read(self, fd: int) -> int:
        conn, buf, _since = self._clients[fd]
        try:
            chunk = conn.recv(_MAX_REQUEST)
        except BlockingIOError:
            return 0
        except OSError:
            chunk = b""
        buf += chunk
        if chunk and b"\n" not in buf and len(buf) <= _MAX_REQUEST:
            return 0   # the rest of the line comes later
        if not buf:
            self._drop(fd)
            return 0
        try:
            if len(buf) > _MAX_REQUEST and b"\n" not in buf[:_MAX_REQUEST]:
                raise ValueError(f"request longer than {_MAX_REQUEST} bytes")
            reply = self._handle(bytes(buf).split(b"\n", 1)[0])
        except (OSError, ValueError) as err:
            reply = {"ok": False, "error": f"bad request: {err}"}
        try:
            conn.send(json.dumps(reply).encode() + b"\n")   # a few hundred bytes: the socket buffer takes them
        except OSError:
            pass
        self._drop(fd)
        return 1

    def _drop(self, fd: int) -> None:
        conn, _buf, _since = self._clients.pop(fd)
        self._ep.unregister(fd)
        conn.close()

    def _handle(self, line: bytes) -> dict:
        req = json.loads(line)
        op = req.get("op") if isinstance(req, dict) else None
        try:
            if op == "list":
                return {"ok": True, "rules": [[i, str(r), q, h] for i, r, q, h in self.fast.listing()]}
            if op == "add":
                return {"ok": True, "index": self.fast.add(str(req.get("rule", "")))}
            if op == "remove":
                index = req.get("index")
                if not isinstance(index, int):
                    raise SplitnicError(f"remove needs a rule number, not {index!r}")
                return {"ok": True, "removed": str(self.fast.remove(index))}
        except SplitnicError as err:
            return {"ok": False, "error": str(err)}
        return {"ok": False, "error": f"unknown op {op!r}; expected list, add or remove"}

    def close(self) -> None:
        """Stop listening and remove the socket file."""
        for fd in list(self._clients):
            self._drop(fd)
        self._ep.close()
        self._sock.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(_MAX_REQUEST)
        if not chunk:
            break
        data += chunk
        if len(data) > _MAX_REQUEST:
            raise ValueError(f"request longer than {_MAX_REQUEST} bytes")
    return data.split(b"\n", 1)[0]


def _alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
            return True
        except OSError:
            return False


def request(path: Path, message: dict, timeout: float = 10) -> dict:
    """Send one request to a running ``splitnic up``; returns its reply or raises SplitnicError."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            raise SplitnicError(f"no {path}: is 'splitnic up' running for this interface (on a NIC)?") from None
        except OSError as err:
            raise SplitnicError(f"cannot reach {path}: {err.strerror}") from None
        sock.sendall(json.dumps(message).encode() + b"\n")
        reply = json.loads(_read_line(sock) or b"{}")
    if not reply.get("ok"):
        raise SplitnicError(reply.get("error", "no reply from splitnic up"))
    return reply
