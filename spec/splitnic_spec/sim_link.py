"""The ``sim`` link's socket protocol: how a driver reaches a simulated NIC.

Ref: docs/simulation.md, "The socket protocol".

The simulator (:mod:`splitnic_sim.csr_socket`, the software NIC's server in
:mod:`splitnic_sim.softnic`) listens on a Unix socket; on connect it sends one
hello line (JSON: ``proto``, the shared-memory file, the DMA window), then
serves fixed-size requests strictly in order.  Writes are posted (never
answered); READ32 answers 4 bytes, READ_BURST ``4 * count`` bytes, SYNC 8 bytes
(simulated cycles) once every earlier write has completed.  Both ends import these
constants; nothing else defines them.

The interrupt: when the hello carries ``irq`` (a Unix socket path), the driver
may connect there; the simulator writes one byte (any value) on that second
connection each time the NIC's interrupt line rises (IRQ_STATUS, IRQ_MASK,
IRQ_COALESCE in splitnic_spec.nic).  The bytes carry no meaning beyond "it
rose"; the driver reads IRQ_STATUS for the causes.
"""

from __future__ import annotations

import struct

__all__ = ["PROTO", "REQUEST", "OP_READ32", "OP_WRITE32", "OP_READ_BURST", "OP_SYNC", "MAX_BURST_WORDS",
           "HELLO_IRQ"]

#: Version of the socket protocol, sent in the simulator's hello.
PROTO = 1
#: One request: op, byte offset, argument (WRITE32: value; READ_BURST: word count).
REQUEST = struct.Struct("<BII")
OP_READ32, OP_WRITE32, OP_READ_BURST, OP_SYNC = 1, 2, 3, 4
#: Words one READ_BURST may ask for.
MAX_BURST_WORDS = 256
#: Hello key of the interrupt socket's path (optional: a simulator without it is polled).
HELLO_IRQ = "irq"
