"""cocotb module: the simulated NIC as a service — CSR over a Unix socket, DMA into a shared-memory file, GMII to a TAP.

Ref: docs/simulation.md (the socket protocol, DMA memory, the wire, speed).

Started by :mod:`splitnic_sim.server` (never by pytest directly); its one
"test" runs until SIGTERM/SIGINT.  Parameters come in SPLITNIC_SIM_*
environment variables (see :data:`ENV`).  Speed: nothing here runs per clock
cycle while the NIC is idle.  One housekeeping coroutine wakes every
POLL_MIN..POLL_MAX cycles (short while a client is talking, backing off when
it is quiet) to poll the socket and the TAP; the DMA target sleeps until the
NIC raises its strobe, and cocotbext-eth's GMII models sleep between frames.
Once nothing at all has happened (no request, no frame, no DMA) for
IDLE_AFTER_CYCLES, the housekeeping blocks in select() on the socket and the
TAP, so an idle simulator leaves the CPU to its neighbours.
"""

from __future__ import annotations

import json
import logging
import os
import random
import select
import signal
import socket
import struct
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer
from cocotb.utils import get_sim_time
from cocotbext.eth import GmiiFrame, GmiiSink, GmiiSource

from splitnic_spec import CSR_MAP
from splitnic_spec.sim_link import HELLO_IRQ
from splitnic_sim.csr_socket import (MAX_BURST_WORDS, OP_READ32, OP_READ_BURST, OP_SYNC, OP_WRITE32, PROTO,
                                     REQUEST)
from splitnic_sim.hostmem import HostMemory, WishboneDmaTarget
from splitnic_sim.wire_tap import TapWire, parse_wire
from splitnic_sim.wishbone import WishboneInitiator

log = logging.getLogger("splitnic_sim.nic_server")

#: Environment variables the server process sets (the first four are required).
ENV = ("SPLITNIC_SIM_SOCKET", "SPLITNIC_SIM_SHM", "SPLITNIC_SIM_DMA_BASE", "SPLITNIC_SIM_DMA_SIZE",
       "SPLITNIC_SIM_STATUS", "SPLITNIC_SIM_WIRE", "SPLITNIC_SIM_STALL", "SPLITNIC_SIM_SEED",
       "SPLITNIC_SIM_SIMULATOR", "SPLITNIC_SIM_DESIGN", "SPLITNIC_SIM_OWNER")
CLOCK_NS = 8
#: Offset of IRQ_STATUS: a write there acknowledges the interrupt (IrqSocket).
_IRQ_STATUS = CSR_MAP.register("IRQ_STATUS").offset
#: Housekeeping period bounds, in clock cycles.
POLL_MIN = 4
POLL_MAX = 512
#: Keep polling at POLL_MIN for this long (wall seconds) after the last request, so a driver's
#: back-to-back accesses do not wait for the back-off.
ACTIVE_HOLD_S = 0.02
#: Simulated cycles without any activity after which housekeeping blocks in select(): long
#: enough for the NIC to drain its FIFOs onto the wire after the last DMA access.
IDLE_AFTER_CYCLES = 200_000
#: Longest block in select() while idle (wall seconds); a request or frame ends it at once.
IDLE_BLOCK_S = 0.05
#: Wall seconds between checks that the process that started the simulator still lives.
OWNER_CHECK_S = 1.0
#: Frames queued into the GMII source at most (more stay in the TAP's queue).
RX_QUEUE_FRAMES = 8


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _cycles() -> int:
    return int(get_sim_time("ns")) // CLOCK_NS


class CsrSocketServer:
    """Serves one client at a time on a Unix socket, turning its requests into CSR bus cycles."""

    def __init__(self, path: Path, hello: dict, bus: WishboneInitiator) -> None:
        self.path = path
        self._hello = (json.dumps(hello) + "\n").encode()
        self._bus = bus
        self._client: socket.socket | None = None
        self._buf = bytearray()
        #: The interrupt's socket; told when the driver acknowledges (writes IRQ_STATUS).
        self.irq: IrqSocket | None = None
        self.requests = 0
        self.clients = 0
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Bind under a temporary name and rename once listening: whoever sees the path can connect.
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        listener.bind(str(tmp))
        listener.listen(4)
        listener.setblocking(False)
        os.rename(tmp, path)
        self._listener = listener

    def _drop_client(self, why: str) -> None:
        log.info("client %d: %s", self.clients, why)
        if self._client is not None:
            self._client.close()
        self._client = None
        self._buf.clear()

    def _bad(self, why: str) -> None:
        log.warning("client %d: bad request (%s); closing its connection", self.clients, why)
        self._drop_client("disconnected after a bad request")

    def fileno(self) -> int:
        """The descriptor that becomes readable when there is something to serve."""
        return (self._client or self._listener).fileno()

    async def poll(self) -> bool:
        """Accept, read and serve what is waiting; True if anything happened."""
        if self._client is None:
            try:
                conn, _ = self._listener.accept()
            except BlockingIOError:
                return False
            conn.setblocking(True)
            self.clients += 1
            self._client = conn
            try:
                conn.sendall(self._hello)
            except OSError as err:
                self._drop_client(f"gone before the hello ({err.strerror})")
                return True
            log.info("client %d connected", self.clients)
        try:
            data = self._client.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError as err:
            self._drop_client(f"connection error ({err.strerror})")
            return True
        if not data:
            self._drop_client("disconnected")
            return True
        self._buf += data
        await self._serve_buffer()
        return True

    async def _serve_buffer(self) -> None:
        buf = self._buf
        pos = 0
        size = REQUEST.size
        window = CSR_MAP.size
        bus = self._bus
        while self._client is not None and len(buf) - pos >= size:
            op, offset, arg = REQUEST.unpack_from(buf, pos)
            pos += size
            self.requests += 1
            if op == OP_SYNC:
                reply = struct.pack("<Q", _cycles())
            elif op not in (OP_READ32, OP_WRITE32, OP_READ_BURST):
                return self._bad(f"unknown op {op}")
            elif offset % 4 or offset >= window:
                return self._bad(f"offset {offset:#x} is not a 32-bit register in the {window:#x}-byte window")
            elif op == OP_READ32:
                reply = struct.pack("<I", await bus.read(offset))
            elif op == OP_WRITE32:
                await bus.write(offset, arg)
                if offset == _IRQ_STATUS and self.irq is not None:
                    self.irq.acked = True
                continue
            else:
                if not 1 <= arg <= MAX_BURST_WORDS or offset + 4 * arg > window:
                    return self._bad(f"burst of {arg} words at {offset:#x} (1..{MAX_BURST_WORDS}, inside "
                                     f"the window)")
                words = [await bus.read(offset + 4 * i) for i in range(arg)]
                reply = struct.pack(f"<{arg}I", *words)
            try:
                self._client.sendall(reply)
            except OSError as err:
                self._drop_client(f"gone while answering ({err.strerror})")
                return
        del buf[:pos]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._listener.close()
        self.path.unlink(missing_ok=True)


class IrqSocket:
    """The NIC's interrupt line for the driver: one byte on a second socket per rise (hello ``irq``).

    The line is a level (gateware/splitnic_gateware/csr.py): it stays up while
    IRQ_STATUS & IRQ_MASK holds anything.  A driver's write to IRQ_STATUS
    acknowledges it; if the line is still (or again) up after that, it counts
    as a new rise, as a level interrupt is delivered again after its
    acknowledgement.
    """

    def __init__(self, path: Path, dut) -> None:
        self.path = path
        self._dut = dut
        self._client: socket.socket | None = None
        self._level = 0
        self.acked = False
        self.rises = 0
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)
        listener.setblocking(False)
        self._listener = listener

    def poll(self) -> None:
        """Take a new driver's connection; signal a rise of the line."""
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            pass
        else:
            conn.setblocking(False)
            if self._client is not None:
                self._client.close()
            self._client = conn
        level = int(self._dut.irq.value)
        if level and (not self._level or self.acked):
            self.rises += 1
            if self._client is not None:
                try:
                    self._client.send(b"i")
                except BlockingIOError:
                    pass   # unread bytes already say it rose
                except OSError:
                    self._client.close()
                    self._client = None
        self._level, self.acked = level, False

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._listener.close()
        self.path.unlink(missing_ok=True)


class TapBridge:
    """Frames between a TAP interface and the NIC's GMII ports (cocotbext-eth models)."""

    def __init__(self, dut, wire: TapWire) -> None:
        self._wire = wire
        self._source = GmiiSource(dut.gmii_rx_d, dut.gmii_rx_er, dut.gmii_rx_dv, dut.clk, dut.rst)
        self._sink = GmiiSink(dut.gmii_tx_d, dut.gmii_tx_er, dut.gmii_tx_en, dut.clk, dut.rst)
        for model in (self._source, self._sink):
            model.log.setLevel(logging.WARNING)   # they log every frame at INFO
        self.to_nic = 0
        self.from_nic = 0
        self.bad_from_nic = 0
        cocotb.start_soon(self._nic_to_tap())

    def poll(self) -> bool:
        """Move frames waiting on the TAP into the GMII source; True if there were any."""
        room = RX_QUEUE_FRAMES - self._source.count()
        if room <= 0:
            return False
        frames = self._wire.read_frames(room)
        for frame in frames:
            self._source.send_nowait(GmiiFrame.from_payload(frame))
        self.to_nic += len(frames)
        return bool(frames)

    def pending(self) -> bool:
        """Whether frames are still on their way between the TAP and the NIC."""
        return not self._source.idle() or not self._sink.idle() or self._sink.count() > 0

    async def _nic_to_tap(self) -> None:
        while True:
            frame = await self._sink.recv()
            if not frame.check_fcs() or frame.error is not None and any(frame.error):
                self.bad_from_nic += 1
                log.warning("NIC sent a frame with a bad FCS or GMII error; not passed to the TAP")
                continue
            self.from_nic += 1
            self._wire.write_frames([bytes(frame.get_payload())])


class _StopFlag:
    def __init__(self) -> None:
        self.stop = False

    def __call__(self, signum: int, frame: object) -> None:
        log.info("signal %d: stopping", signum)
        self.stop = True


def _write_status(path: str, text: str) -> None:
    if path:
        Path(path).write_text(text + "\n")


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

        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        dut.rst.value = 1
        # Every input defined from the start: Icarus propagates X from undriven inputs.
        for name in ("gmii_rx_d", "gmii_rx_dv", "gmii_rx_er"):
            getattr(dut, name).value = 0
        bus = WishboneInitiator(dut, "csr", dut.clk)
        mem = HostMemory(Path(env["SPLITNIC_SIM_SHM"]), dma_size, base=dma_base)
        target = WishboneDmaTarget(dut, "dma", dut.clk, mem, stall_prob=float(env.get("SPLITNIC_SIM_STALL", "0")),
                                   rng=random.Random(seed))
        await ClockCycles(dut.clk, 1)
        tap_name = parse_wire(wire_spec)
        if tap_name is not None:
            wire = TapWire(tap_name)
            bridge = TapBridge(dut, wire)
        await ClockCycles(dut.clk, 4)
        dut.rst.value = 0
        await ClockCycles(dut.clk, 2)
        if wire is not None:
            link = CSR_MAP.register("LINK")
            await bus.write(link.offset, link.pack(UP=1, SPEED=link.field("SPEED").value("1000"), FULL_DUPLEX=1))
        irq = IrqSocket(Path(f"{socket_path}.irq"), dut)
        hello = {"proto": PROTO, "shm": str(mem.path), "dma_base": dma_base, "dma_size": dma_size,
                 "simulator": env.get("SPLITNIC_SIM_SIMULATOR", "verilator"),
                 "design": env.get("SPLITNIC_SIM_DESIGN", "snic_nic"),
                 "wire": f"tap:{wire.name}" if wire is not None else "none", HELLO_IRQ: str(irq.path)}
        server = CsrSocketServer(socket_path, hello, bus)
        server.irq = irq
    except Exception as err:
        _write_status(status, f"error: {err}")
        for thing in (server, wire, mem, irq):
            if thing is not None:
                thing.close()
        raise
    _write_status(status, "ready")
    log.info("listening on %s (%s)", socket_path, hello["wire"])

    wall_start = time.monotonic()
    last_active = wall_start
    last_active_cycle = _cycles()
    dma_accesses = 0
    interval = POLL_MIN
    await FallingEdge(dut.clk)        # poll between rising edges, never on one
    try:
        next_owner_check = wall_start
        while not stop.stop:
            if owner and time.monotonic() >= next_owner_check:
                next_owner_check = time.monotonic() + OWNER_CHECK_S
                if not _alive(owner):
                    log.warning("owner process %d is gone: stopping", owner)
                    break
            busy = await server.poll()
            irq.poll()
            if wire is not None:
                busy = bridge.poll() or busy
            now = time.monotonic()
            if busy:
                last_active = now
                interval = POLL_MIN
            elif now - last_active > ACTIVE_HOLD_S:
                interval = min(interval * 2, POLL_MAX)
            accesses = target.reads + target.writes
            if busy or accesses != dma_accesses or (wire is not None and bridge.pending()):
                dma_accesses, last_active_cycle = accesses, _cycles()
            elif _cycles() - last_active_cycle > IDLE_AFTER_CYCLES:
                select.select([server] + ([wire] if wire is not None else []), [], [], IDLE_BLOCK_S)
            await Timer(interval * CLOCK_NS, unit="ns")
    finally:
        wall = time.monotonic() - wall_start
        cycles = _cycles()
        log.info("stopped after %d cycles in %.1f s (%.0f cycles/s); %d clients, %d requests; "
                 "DMA %d words read, %d written, %d errors%s", cycles, wall, cycles / max(wall, 1e-9),
                 server.clients, server.requests, target.reads, target.writes, target.errors,
                 f"; wire {bridge.to_nic} frames in, {bridge.from_nic} out" if wire is not None else "")
        server.close()
        irq.close()
        if wire is not None:
            wire.close()
        mem.close()
        # Mappings outlive the name: a driver still attached keeps its view of the memory.
        mem.path.unlink(missing_ok=True)
        _write_status(status, "stopped")
