"""The `sim` link's wire format: CSR accesses to the simulated NIC over a Unix stream socket.

Ref: docs/simulation.md ("The socket protocol").

On accept the simulator sends one JSON line (the hello), then serves 9-byte
requests ``<BII`` (op, byte offset, argument) strictly in order.  The
protocol's constants are defined once, in :mod:`splitnic_spec.sim_link`, and
re-exported here with :class:`RawCsrClient`, a minimal blocking client for
tests and benchmarks.
"""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

from splitnic_spec.sim_link import MAX_BURST_WORDS, OP_READ32, OP_READ_BURST, OP_SYNC, OP_WRITE32, PROTO, REQUEST

__all__ = ["PROTO", "OP_READ32", "OP_WRITE32", "OP_READ_BURST", "OP_SYNC", "REQUEST", "MAX_BURST_WORDS",
           "RawCsrClient"]


class RawCsrClient:
    """Blocking client of the CSR socket: one request at a time, replies read in full."""

    def __init__(self, path: Path | str, timeout: float = 30.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._sock.connect(str(path))
        self._file = self._sock.makefile("rb")
        line = self._file.readline()
        if not line.endswith(b"\n"):
            raise ConnectionError(f"simulator closed the connection before its hello (got {line!r})")
        self.hello: dict = json.loads(line)

    def _recv(self, size: int) -> bytes:
        data = self._file.read(size)
        if len(data) != size:
            raise ConnectionError(f"simulator closed the connection: expected {size} bytes, got {len(data)}")
        return data

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (tests use it for malformed requests)."""
        self._sock.sendall(data)

    def read32(self, offset: int) -> int:
        self._sock.sendall(REQUEST.pack(OP_READ32, offset, 0))
        return struct.unpack("<I", self._recv(4))[0]

    def write32(self, offset: int, value: int) -> None:
        self._sock.sendall(REQUEST.pack(OP_WRITE32, offset, value))

    def read_burst(self, offset: int, count: int) -> list[int]:
        self._sock.sendall(REQUEST.pack(OP_READ_BURST, offset, count))
        return list(struct.unpack(f"<{count}I", self._recv(4 * count)))

    def sync(self) -> int:
        """Simulated clock cycles since start, once every earlier write has completed."""
        self._sock.sendall(REQUEST.pack(OP_SYNC, 0, 0))
        return struct.unpack("<Q", self._recv(8))[0]

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> "RawCsrClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
