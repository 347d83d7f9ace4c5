"""The ``sim`` link's socket protocol: how a driver reaches a simulated NIC.

Ref: docs/simulation.md, "The socket protocol".

The simulator (:mod:`splitnic_sim.csr_socket`, the software NIC's server in
:mod:`splitnic_sim.softnic`) listens on a Unix socket; on connect it sends one
hello line (JSON: ``proto``, the shared-memory file, the DMA window), then
serves fixed-size requests strictly in order.  Writes are posted (never
answered); READ32 answers 4 bytes, READ_BURST ``4 * count`` bytes, SYNC 8 bytes
(simulated cycles) once every earlier write has completed.  Both ends import these
constants; nothing else defines them.
"""

from __future__ import annotations

import struct

__all__ = ["PROTO", "REQUEST", "OP_READ32", "OP_WRITE32", "OP_READ_BURST", "OP_SYNC", "MAX_BURST_WORDS"]

#: Version of the socket protocol, sent in the simulator's hello.
PROTO = 1
#: One request: op, byte offset, argument (WRITE32: value; READ_BURST: word count).
REQUEST = struct.Struct("<BII")
OP_READ32, OP_WRITE32, OP_READ_BURST, OP_SYNC = 1, 2, 3, 4
#: Words one READ_BURST may ask for.
MAX_BURST_WORDS = 256
