"""cocotb module: the simulated NIC as a service on the native harness (splitnic_sim.native).

Ref: docs/simulation.md ("The native harness", "The socket protocol", "Speed").

The same service as :mod:`splitnic_sim.tb.nic_server` (its CSR socket, hello,
status file and SPLITNIC_SIM_* parameters), with the per-cycle work in the
harness's C: DMA from the shared-memory file, frames between the TAP and the
NIC, CSR cycles.  This coroutine wakes only when the harness toggles
``notify``: the socket is readable, a batch of CSR accesses is done, or the
one-second tick (owner check, SIGTERM).  Every request waiting on the socket
is queued to the harness at once, so a burst read or a run of posted writes
costs one wake.  With nothing to do for IDLE_AFTER_CYCLES the harness blocks in
poll() on the socket and the TAP: no CPU, and simulated time stands still.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import time
from pathlib import Path

import cocotb

from splitnic_spec import CSR_MAP
from splitnic_spec.sim_link import HELLO_IRQ
from splitnic_sim.csr_socket import (MAX_BURST_WORDS, OP_READ32, OP_READ_BURST, OP_SYNC, OP_WRITE32, PROTO,
                                     REQUEST)
from splitnic_sim.hostmem import HostMemory
from splitnic_sim.native import OP_READ, OP_SYNC as H_SYNC, OP_WRITE, STATS, Harness
from splitnic_sim.tb.nic_server import CsrSocketServer, _alive, _StopFlag, _write_status
from splitnic_sim.wire_tap import TapWire, parse_wire

log = logging.getLogger("splitnic_sim.nic_native_server")

#: Quiet cycles after which the harness blocks (as nic_server: the NIC drains its FIFOs first).
IDLE_AFTER_CYCLES = 200_000
#: Wall seconds between the harness's housekeeping wakes (owner check, stop flag).
TICK_S = 0.5
#: Offset of IRQ_STATUS: a write there acknowledges the interrupt (the harness's C sees it).
_IRQ_STATUS = CSR_MAP.register("IRQ_STATUS").offset


class NativeIrqSocket:
    """The interrupt's socket (hello ``irq``): Python accepts the driver's connection, C writes to it."""

    def __init__(self, path: Path, harness: Harness) -> None:
        self.path = path
        self._h = harness
        self._client: socket.socket | None = None
        path.unlink(missing_ok=True)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(1)
        self._listener.setblocking(False)

    def fileno(self) -> int:
        return self._listener.fileno()

    def poll(self) -> None:
        """Take a new driver's connection (it replaces the last one)."""
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        if self._client is not None:
            self._client.close()
        self._client = conn
        self._h.irq(conn.fileno(), _IRQ_STATUS)

    def close(self) -> None:
        self._h.irq(-1, _IRQ_STATUS)
        if self._client is not None:
            self._client.close()
        self._listener.close()
        self.path.unlink(missing_ok=True)


class NativeCsrServer(CsrSocketServer):
    """CsrSocketServer whose requests become one batch of harness CSR accesses per read of the socket."""

    def __init__(self, path: Path, hello: dict, harness: Harness) -> None:
        super().__init__(path, hello, None)
        self._h = harness

    async def _serve_buffer(self) -> None:
        buf, h = self._buf, self._h
        size, window = REQUEST.size, CSR_MAP.size
        pos = 0
        replies: list[tuple[int, int]] = []    # (kind, count): 0 = words, 1 = sync
        bad = None
        while len(buf) - pos >= size:
            op, offset, arg = REQUEST.unpack_from(buf, pos)
            if op == OP_SYNC:
                h.csr_push(H_SYNC, 0)
                replies.append((1, 2))
            elif op not in (OP_READ32, OP_WRITE32, OP_READ_BURST):
                bad = f"unknown op {op}"
            elif offset % 4 or offset >= window:
                bad = f"offset {offset:#x} is not a 32-bit register in the {window:#x}-byte window"
            elif op == OP_READ32:
                h.csr_push(OP_READ, offset)
                replies.append((0, 1))
            elif op == OP_WRITE32:
                h.csr_push(OP_WRITE, offset, arg)
            elif not 1 <= arg <= MAX_BURST_WORDS or offset + 4 * arg > window:
                bad = f"burst of {arg} words at {offset:#x} (1..{MAX_BURST_WORDS}, inside the window)"
            else:
                for i in range(arg):
                    h.csr_push(OP_READ, offset + 4 * i)
                replies.append((0, arg))
            if bad:
                break
            pos += size
            self.requests += 1
        del buf[:pos]
        words = await h.csr_wait()
        if replies and self._client is not None:
            out = bytearray()
            i = 0
            for kind, n in replies:
                if kind:
                    out += struct.pack("<Q", words[i] | words[i + 1] << 32)
                else:
                    out += struct.pack(f"<{n}I", *words[i:i + n])
                i += n
            try:
                self._client.sendall(out)
            except OSError as err:
                self._drop_client(f"gone while answering ({err.strerror})")
                return
        if bad:
            self._bad(bad)


@cocotb.test()
async def serve(dut) -> None:
    """Run the NIC as a service until SIGTERM or SIGINT."""
    env = os.environ
    stop = _StopFlag()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = env.get("SPLITNIC_SIM_STATUS", "")
    server = mem = wire = irq = None
    try:
        socket_path = Path(env["SPLITNIC_SIM_SOCKET"])
        dma_base = int(env["SPLITNIC_SIM_DMA_BASE"], 0)
        dma_size = int(env["SPLITNIC_SIM_DMA_SIZE"], 0)
        wire_spec = env.get("SPLITNIC_SIM_WIRE", "none")
        seed = int(env.get("SPLITNIC_SIM_SEED", "1"))
        owner = int(env.get("SPLITNIC_SIM_OWNER", "0"))

        h = Harness(dut)
        mem = HostMemory(Path(env["SPLITNIC_SIM_SHM"]), dma_size, base=dma_base)
        h.memory(mem.path, dma_size, dma_base)
        h.dma(float(env.get("SPLITNIC_SIM_STALL", "0")), 0, seed)
        tap_name = parse_wire(wire_spec)
        if tap_name is not None:
            wire = TapWire(tap_name)
            h.tap(wire.fileno())
        await h.reset(4)
        if wire is not None:
            link = CSR_MAP.register("LINK")
            await h.write(link.offset, link.pack(UP=1, SPEED=link.field("SPEED").value("1000"), FULL_DUPLEX=1))
        irq = NativeIrqSocket(Path(f"{socket_path}.irq"), h)
        hello = {"proto": PROTO, "shm": str(mem.path), "dma_base": dma_base, "dma_size": dma_size,
                 "simulator": env.get("SPLITNIC_SIM_SIMULATOR", "verilator"),
                 "design": env.get("SPLITNIC_SIM_DESIGN", "snic_nic"),
                 "wire": f"tap:{wire.name}" if wire is not None else "none", HELLO_IRQ: str(irq.path)}
        server = NativeCsrServer(socket_path, hello, h)
    except Exception as err:
        _write_status(status, f"error: {err}")
        for thing in (server, wire, mem, irq):
            if thing is not None:
                thing.close()
        raise
    _write_status(status, "ready")
    log.info("listening on %s (%s; native harness)", socket_path, hello["wire"])

    wall_start = time.monotonic()
    h.watch([server.fileno(), irq.fileno()])
    h.idle(IDLE_AFTER_CYCLES, TICK_S)
    next_owner_check = wall_start
    try:
        while not stop.stop:
            await h.wake()
            if owner and time.monotonic() >= next_owner_check:
                next_owner_check = time.monotonic() + 1.0
                if not _alive(owner):
                    log.warning("owner process %d is gone: stopping", owner)
                    break
            if h.fd_ready():
                # Serve until the socket is empty; the harness watches it again afterwards.
                irq.poll()
                while await server.poll():
                    pass
                h.watch([server.fileno(), irq.fileno()])
                h.arm()
    finally:
        wall = time.monotonic() - wall_start
        cycles = h.cycle
        stats = h.stats()
        log.info("stopped after %d cycles in %.1f s (%.0f cycles/s); %d clients, %d requests; %s",
                 cycles, wall, cycles / max(wall, 1e-9), server.clients, server.requests,
                 ", ".join(f"{k} {stats[k]}" for k in STATS))
        server.close()
        irq.close()
        if wire is not None:
            wire.close()
        mem.close()
        mem.path.unlink(missing_ok=True)
        _write_status(status, "stopped")
