"""A software NIC serving the splitnic register window and DMA rings from shared memory.

Ref: sim/splitnic_sim/softnic.c (the model, in C for speed);
hostdrv/splitnic/link_mmio.py (the file layout: CSR window, then DMA memory
whose device address is its file offset); docs/simulation.md, "The
software NIC" (its socket front end speaks the ``sim`` link protocol).

It is a model of the NIC for driver tests and driver-cost measurements, not
the RTL.  Run it in a thread of the test process (:meth:`SoftNic.start`), or
as a process::

    .venv/bin/python -m splitnic_sim.softnic /dev/shm/snic0    # then --link mmio:/dev/shm/snic0
"""

from __future__ import annotations

import argparse
import json
import logging
import mmap
import os
import signal
import socket
import struct
import tempfile
import threading
from pathlib import Path

from splitnic_spec import CSR_MAP, constant
from splitnic_spec.sim_link import MAX_BURST_WORDS, OP_READ32, OP_READ_BURST, OP_SYNC, OP_WRITE32, PROTO, REQUEST

log = logging.getLogger(__name__)

__all__ = ["SoftNic", "CSR_WINDOW"]

CSR_WINDOW = CSR_MAP.size
_MAX_FRAME = constant("MAX_FRAME_JUMBO")
#: Device address of DMA memory behind the sim front end (as sim/splitnic_sim/hostmem.py's default).
SIM_DMA_BASE = 0x1000_0000
#: Idle passes before the model sleeps: at a few hundred ns a pass, a burst's next frame finds
#: it awake; a hardware NIC takes no host CPU, so benchmarks of the driver lower it.
DEFAULT_IDLE_SPINS = 2000


def _lib():
    try:
        from ._softnic_cffi import ffi, lib
    except ImportError as err:  # pragma: no cover - depends on the install
        raise RuntimeError(f"the software NIC is not built ({err}): run `.venv/bin/pip install -e .` or "
                           "`.venv/bin/python sim/splitnic_sim/_softnic_build.py`") from None
    return ffi, lib


class SoftNic:
    """The model NIC on shared memory, reached by the ``mmio`` link or, with ``sim_socket``, the ``sim`` link.

    ``path``: the shared-memory file to create (default under /dev/shm).  For
    ``mmio`` it holds the CSR window then DMA memory (device address = file
    offset); with ``sim_socket`` it holds only DMA memory, at device address
    ``SIM_DMA_BASE`` as in the real simulator, and the registers are private
    to this process, reached through the socket (contract D).
    ``wire_slots``: sent frames kept for :meth:`sent` (0: only count them).
    ``idle_sleep_us``: sleep when idle (0: spin, for benchmarks), after ``idle_spins``
    passes that found nothing to do (fewer: less CPU under light traffic, as a
    hardware NIC takes none, at the cost of up to a sleep of latency).
    ``wire``: ``tap:NAME`` makes a TAP interface the NIC's wire (frames the NIC
    sends are written to it, frames read from it are received); ``none``: the
    mailboxes of :meth:`inject` and :meth:`sent`.
    ``dma_base``: put DMA memory at this device address, with the registers
    private to this process as with ``sim_socket`` (the board's layout, for
    :mod:`splitnic_sim.hostlink_standin`, which serves them across its link).
    ``irq_socket``: serve the interrupt line on ``irq_path`` (False: whoever
    drives the model takes its rises some other way).
    """

    def __init__(self, path: Path | str | None = None, dma_size: int = 8 << 20, *, build_id: int = 0,
                 wire_slots: int = 256, idle_sleep_us: int = 50, sim_socket: Path | str | None = None,
                 wire: str = "none", idle_spins: int = DEFAULT_IDLE_SPINS, dma_base: int | None = None,
                 irq_socket: bool = True) -> None:
        self.ffi, self.lib = ffi, lib = _lib()
        if path is None:
            fd, name = tempfile.mkstemp(prefix="splitnic-softnic-", dir="/dev/shm")
            os.close(fd)
            path = name
        self.path = Path(path)
        self.sim_socket = Path(sim_socket) if sim_socket else None
        # Private registers: the file holds only DMA memory (the sim link's and the board's layout).
        self._private_regs = bool(sim_socket) or dma_base is not None
        self.size = dma_size + (0 if self._private_regs else CSR_WINDOW)
        with open(self.path, "w+b") as f:
            f.truncate(self.size)
        fd = os.open(self.path, os.O_RDWR)
        try:
            self._mm = mmap.mmap(fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        mem = ffi.cast("uint8_t *", ffi.from_buffer(self._mm))
        self._keep: list = [mem]
        s = ffi.new("struct softnic *")
        if self._private_regs:
            regs = ffi.new("uint8_t[]", CSR_WINDOW)
            self._keep.append(regs)
            s.csr, s.dma, s.dma_base = regs, mem, SIM_DMA_BASE if dma_base is None else dma_base
        else:
            s.csr, s.dma, s.dma_base = mem, mem + CSR_WINDOW, CSR_WINDOW
        s.dma_size = dma_size
        self.dma_base = s.dma_base
        s.idle_sleep_ns = idle_sleep_us * 1000
        s.idle_spins = idle_spins
        scratch = ffi.new("uint8_t[]", _MAX_FRAME)
        self._keep.append(scratch)
        s.scratch = scratch
        for box, slots in ((s.wire_out, wire_slots), (s.wire_in, 256)):
            data, lengths = ffi.new("uint8_t[]", max(slots, 1) * _MAX_FRAME), ffi.new("uint16_t[]", max(slots, 1))
            self._keep += [data, lengths]
            box.data, box.lengths, box.slots, box.slot_size = data, lengths, slots, _MAX_FRAME
        # Registers are read and written as whole 32-bit words, as the bus would: struct.pack_into
        # stores byte by byte, and the model thread could see half of a new TAIL.
        self._words = ffi.cast("volatile uint32_t *", s.csr)
        self.s = s
        lib.softnic_init(s, build_id)
        self._wire = None
        if wire != "none":
            from .wire_tap import TapWire, parse_wire
            self._wire = TapWire(parse_wire(wire))
            s.wire_fd = self._wire.fileno()
        self._thread: threading.Thread | None = None
        # The interrupt: a byte per rise of the line on a socket beside the link's file or socket.
        self.irq_path = Path(f"{self.sim_socket or self.path}.irq")
        self._irq: _IrqServer | None = _IrqServer(self, self.irq_path) if irq_socket else None
        self._server: _SimFrontEnd | None = _SimFrontEnd(self, self.sim_socket) if sim_socket else None

    @property
    def link(self) -> str:
        """Value of the ``--link`` that reaches this NIC."""
        return f"sim:{self.sim_socket}" if self.sim_socket else f"mmio:{self.path}"

    def write_reg(self, offset: int, value: int) -> None:
        """Set a register as the hardware would (e.g. LINK, or a wrong ID_MAGIC for a test)."""
        self._words[self._word(offset)] = value & 0xFFFFFFFF

    def read_reg(self, offset: int) -> int:
        """Value of a register."""
        return self._words[self._word(offset)]

    @staticmethod
    def _word(offset: int) -> int:
        if offset % 4 or not 0 <= offset < CSR_WINDOW:
            raise ValueError(f"register offset {offset:#x} is not a 32-bit word of the {CSR_WINDOW:#x}-byte window")
        return offset // 4

    def dma_view(self, device_addr: int, size: int) -> memoryview:
        """Value of DMA memory at ``device_addr`` (the model's own mapping of it)."""
        start = 0 if self._private_regs else CSR_WINDOW
        off = device_addr - self.dma_base + start
        if off < start or off + size > self.size:
            raise ValueError(f"{device_addr:#x}+{size} is outside DMA memory")
        return memoryview(self._mm)[off:off + size]

    # ------------------------------------------------------------------ running
    def start(self) -> "SoftNic":
        """Run the model in a thread (it releases the GIL while it runs)."""
        if self._thread is None:
            self.s.stop = 0
            self._thread = threading.Thread(target=self.lib.softnic_run, args=(self.s,), name="softnic",
                                            daemon=True)
            self._thread.start()
        return self

    def step(self) -> int:
        """Run one pass by hand (when not started); returns the work done."""
        return self.lib.softnic_step(self.s)

    def stop(self) -> None:
        """Stop the model thread."""
        if self._thread:
            self.s.stop = 1
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Stop and remove the file (and the socket)."""
        self.stop()
        if self._server:
            self._server.close()
            self._server = None
        if self._irq:
            self._irq.close()
            self._irq = None
        if self._wire is not None:
            self.s.wire_fd = -1
            self._wire.close()
            self._wire = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "SoftNic":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the wire
    def inject(self, frame: bytes) -> bool:
        """Put a frame on the wire towards the NIC's RX path; False if the inbox is full."""
        return self.lib.softnic_box_put(self.ffi.addressof(self.s.wire_in), frame, len(frame)) == 0

    def sent(self) -> list[bytes]:
        """Frames the NIC sent on the wire (not looped back) since the last call, oldest first."""
        out, buf = [], self.ffi.new("uint8_t[]", _MAX_FRAME)
        box = self.ffi.addressof(self.s.wire_out)
        while (n := self.lib.softnic_box_get(box, buf, _MAX_FRAME)) >= 0:
            out.append(bytes(self.ffi.buffer(buf, n)))
        return out

    @property
    def wire_frames(self) -> int:
        """Value of frames sent on the wire (not looped back), kept or not."""
        return self.s.wire_frames

    def generate(self, frame: bytes, count: int = -1, queue: int = 0) -> None:
        """Feed ``frame`` into the RX path ``count`` times (-1: forever) whenever ``queue`` has a buffer posted."""
        keep = self.ffi.new("uint8_t[]", frame)
        self._keep.append(keep)
        s = self.s
        s.gen_remaining = 0
        s.gen_frame, s.gen_len, s.gen_queue = keep, len(frame), queue
        s.gen_remaining = count

    @property
    def generated(self) -> int:
        """Value of frames the generator fed in."""
        return self.s.generated

    @property
    def irqs(self) -> int:
        """Value of rises of the interrupt line so far."""
        return self.s.irqs


class _IrqServer:
    """The interrupt line's socket: the driver connects, the model writes a byte per rise (one driver)."""

    def __init__(self, nic: SoftNic, path: Path) -> None:
        self.nic = nic
        self.path = path
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.conn: socket.socket | None = None
        self.thread = threading.Thread(target=self._serve, name="softnic-irq", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setblocking(False)
            old, self.conn = self.conn, conn
            self.nic.s.irq_fd = conn.fileno()
            if self.nic.s.irq_line:
                # The line rose before this driver was accepted (its byte went nowhere) and is
                # still up: say so now, as a level interrupt would be seen once unmasked.
                try:
                    conn.send(b"i")
                except OSError:
                    pass
            if old is not None:
                old.close()

    def close(self) -> None:
        self.nic.s.irq_fd = -1
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self.conn is not None:
            self.conn.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class _SimFrontEnd:
    """Contract D on top of the model's register window: one client at a time."""

    def __init__(self, nic: SoftNic, path: Path) -> None:
        self.nic = nic
        self.path = path
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self._stop = False
        self.thread = threading.Thread(target=self._serve, name="softnic-sim", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._client(conn)

    def _client(self, conn: socket.socket) -> None:
        nic = self.nic
        hello = {"proto": PROTO, "shm": str(nic.path), "dma_base": nic.dma_base, "dma_size": nic.size,
                 "simulator": "softnic", "design": "softnic", "wire": "none", "irq": str(nic.irq_path)}
        conn.sendall(json.dumps(hello).encode() + b"\n")
        f = conn.makefile("rb")
        while True:
            req = f.read(REQUEST.size)
            if len(req) < REQUEST.size:
                return
            op, offset, arg = REQUEST.unpack(req)
            if offset % 4 or offset >= CSR_WINDOW or op not in (OP_READ32, OP_WRITE32, OP_READ_BURST, OP_SYNC) \
                    or (op == OP_READ_BURST and not 1 <= arg <= MAX_BURST_WORDS):
                log.warning("softnic sim: bad request op=%d offset=%#x arg=%d; closing", op, offset, arg)
                return
            if op == OP_READ32:
                conn.sendall(struct.pack("<I", nic.read_reg(offset)))
            elif op == OP_WRITE32:
                nic.write_reg(offset, arg)
            elif op == OP_READ_BURST:
                conn.sendall(b"".join(struct.pack("<I", nic.read_reg(offset + 4 * i) if offset + 4 * i < CSR_WINDOW
                                                  else 0) for i in range(arg)))
            else:
                conn.sendall(struct.pack("<Q", nic.read_reg(CSR_MAP.register("CYCLES").offset)))

    def close(self) -> None:
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def main(argv: list[str] | None = None) -> int:
    """``python -m splitnic_sim.softnic PATH``: serve the model until Ctrl-C/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m splitnic_sim.softnic", description=__doc__.split("\n")[0])
    parser.add_argument("path", help="the shared-memory file to create (e.g. /dev/shm/snic0)")
    parser.add_argument("--dma-size", type=int, default=8 << 20, help="DMA memory bytes (default %(default)s)")
    parser.add_argument("--link-up", action="store_true", help="set LINK = up, 1000 Mb/s, full duplex")
    parser.add_argument("--socket", help="serve the sim link protocol on this Unix socket instead of mmio "
                        "(PATH then holds only DMA memory)")
    parser.add_argument("--wire", default="none", help="tap:NAME: a TAP interface as the NIC's wire (default: none)")
    parser.add_argument("--idle-sleep-us", type=int, default=50,
                        help="sleep this long after many idle passes; 0: never sleep, yield (benchmarks: the NIC "
                             "answers at once, as hardware would, at the cost of a busy core; default %(default)s)")
    parser.add_argument("--idle-spins", type=int, default=DEFAULT_IDLE_SPINS,
                        help="idle passes before sleeping (default %(default)s; fewer: less CPU, more latency)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    nic = SoftNic(args.path, args.dma_size, sim_socket=args.socket, wire=args.wire, idle_sleep_us=args.idle_sleep_us,
                  idle_spins=args.idle_spins)
    if args.link_up:
        link = CSR_MAP.register("LINK")
        nic.write_reg(link.offset, link.pack(UP=1, SPEED=link.field("SPEED").value("1000"), FULL_DUPLEX=1))
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    nic.start()
    print(f"softnic ready: use --link {nic.link}", flush=True)
    done.wait()
    nic.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
