"""An application in its own process, beside snic0: ``splitnic.attach`` asks ``splitnic up`` for queues.

Ref: docs/apps.md (tutorial and model); hostdrv/splitnic/app_server.py (the
primary's end and the conversation); hostdrv/splitnic/fastpath.py (the same
handler runs inside ``splitnic up``).

    import splitnic

    with splitnic.attach("udp dport 9000", name="echo") as app:
        for batch in app:                       # RxBatch: zero-copy views of the NIC's buffers
            for frame in batch:
                swap_in_place(frame)            # rewrite the request into its answer where it lies
            app.forward(batch)                  # buffer to buffer in C, one doorbell

The primary adds the rule and gives the application an RX queue and a TX
queue of its own; the application maps the NIC's memory (the file descriptor
comes over the socket), posts its own RX buffers and rings its own doorbells.
From then on nothing passes through the primary but the request to be woken
(``arm``, only when the queue is empty): frames arrive in this process's view
of the NIC's buffers and leave from it.  When this process ends, however it
ends, the primary sees the socket hang up and takes everything back.

Sleeping: :meth:`Attached.wait` (and iterating) blocks on an eventfd the
primary writes when the queue's interrupt cause fires; :meth:`Attached.fileno`
is that eventfd, for ``asyncio`` (:meth:`Attached.wait_async`,
``async for batch in app.batches()``) or any other event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mmap
import os
import select
import socket
import struct
from pathlib import Path
from typing import AsyncIterator, Callable, Iterator, Sequence

from splitnic_spec import COMPLETION, CSR_MAP, DESCRIPTOR, INDEX_MASK

from ._cffi import ffi, lib
from .app_server import MAX_MESSAGE, default_path
from .dma import DmaAllocator, DmaRegion
from .errors import SplitnicError
from .link import Link
from .link_mmio import MmioBus
from .rx_batch import RxBatch
from .rx_queue import RxQueue
from .ring import BUFFER_STRIDE_ALIGN, Ring
from .tx_queue import TxQueue

__all__ = ["attach", "Attached"]

log = logging.getLogger(__name__)

_TAIL, _TXQ = CSR_MAP.array("RXQ"), CSR_MAP.array("TXQ")
#: Seconds to wait for each answer of the primary.
TIMEOUT = 10.0


class _Granted:
    """What RxQueue/TxQueue need of a NIC: its link (the mapping); nothing else is this process's."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.bus = link.bus

    def _forget(self, queue: object) -> None:
        pass


class _CarriedDoorbells:
    """The bus of an application on a link whose registers only the primary reaches (sim, eth): a
    TAIL write is stored in the doorbell page and the primary kicked; it writes the register (on
    eth after sending what the TAIL hands the NIC across the cable)."""

    def __init__(self, page: int, kick: int, grant: dict) -> None:
        try:
            self._view = mmap.mmap(page, 4096)
        finally:
            os.close(page)
        self._kick = kick
        self._slot = {_TAIL.offset(grant["rx"]["queue"], "TAIL"): 0, _TXQ.offset(grant["tx"]["queue"], "TAIL"): 4}

    def write32(self, offset: int, value: int) -> None:
        """Ring a doorbell (the only registers this process may write: its two TAILs)."""
        slot = self._slot.get(offset)
        if slot is None:
            raise SplitnicError(f"register {offset:#x} is the primary's; an application writes only its TAILs")
        struct.pack_into("<I", self._view, slot, value & 0xFFFFFFFF)
        os.eventfd_write(self._kick, 1)

    def read32(self, offset: int) -> int:
        """The registers are the primary's here."""
        raise SplitnicError(f"register {offset:#x}: on this link only splitnic up reads the NIC's registers")

    def close(self) -> None:
        self._view.close()
        os.close(self._kick)


class Attached:
    """An application's own RX and TX queue on a NIC that ``splitnic up`` holds; made by :func:`attach`."""

    def __init__(self, rules: Sequence[str], name: str, path: Path, *, ring_log2: int = 8,
                 buf_size: int = 2048, burst: int = 64) -> None:
        self.name = name
        self.burst = burst
        self.path = path
        self._efd = -1
        self._maps: list[mmap.mmap] = []
        self.rx: RxQueue | None = None
        self.tx: TxQueue | None = None
        self._current: RxBatch | None = None
        self._doorbells: _CarriedDoorbells | None = None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        sock.settimeout(TIMEOUT)
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            sock.close()
            raise SplitnicError(f"no {path}: is 'splitnic up' running for this interface (--apps)?") from None
        except OSError as err:
            sock.close()
            raise SplitnicError(f"cannot reach {path}: {err.strerror}") from None
        self._sock = sock
        try:
            self._open(list(rules), ring_log2, buf_size)
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- the conversation
    def _ask(self, message: dict, fds: int = 0) -> tuple[dict, list[int]]:
        try:
            self._sock.send(json.dumps(message).encode())
            data, got, _flags, _addr = socket.recv_fds(self._sock, MAX_MESSAGE, fds) if fds else \
                (self._sock.recv(MAX_MESSAGE), [], 0, None)
        except socket.timeout:
            raise SplitnicError(f"{self.path}: no answer from splitnic up within {TIMEOUT:.0f} s") from None
        except OSError as err:
            raise SplitnicError(f"{self.path}: {err.strerror or err}") from None
        if not data:
            raise SplitnicError(f"{self.path}: splitnic up closed the connection")
        reply = json.loads(data)
        if not reply.get("ok"):
            for fd in got:
                os.close(fd)
            raise SplitnicError(reply.get("error", "refused"))
        return reply, got

    def _open(self, rules: list[str], ring_log2: int, buf_size: int) -> None:
        reply, fds = self._ask({"op": "attach", "name": self.name, "rules": rules, "ring_log2": ring_log2,
                                "buf_size": buf_size}, fds=5)
        grant = reply["grant"]
        windows = grant["windows"]
        carried = grant.get("regs_offset") is None      # sim, eth: the primary carries the doorbells
        if len(fds) != len(windows) + (3 if carried else 1):
            for fd in fds:
                os.close(fd)
            raise SplitnicError(f"{self.path}: the grant came without its memory and eventfd")
        files, self._efd = fds[:len(windows)], fds[len(windows)]
        try:
            for fd, window in zip(files, windows):
                self._maps.append(mmap.mmap(fd, window["file_size"], mmap.MAP_SHARED,
                                            mmap.PROT_READ | mmap.PROT_WRITE))
        finally:
            for fd in files:
                os.close(fd)
        views = [(w["base"], memoryview(m)[w["offset"]:w["offset"] + w["size"]]) for w, m in zip(windows, self._maps)]
        if carried:
            bus = _CarriedDoorbells(*fds[len(windows) + 1:], grant)
            self._doorbells = bus
        else:
            base = ffi.cast("uint8_t *", ffi.from_buffer(self._maps[0])) + grant["regs_offset"]
            self._keep = base
            bus = MmioBus(base)
        # The queues are set up by the primary: this process allocates nothing, and writes what the
        # NIC reads straight into the memory it reads it from (on eth the primary sends it on).
        dma = DmaAllocator(DmaRegion(*views[0]), zero_copy=True)
        self.link = Link(grant["link"], bus, dma, f"{grant['link']} via {self.path} ({self.name})", zero_copy=True)

        def region(addr: int, size: int) -> DmaRegion:
            for base, view in views:
                if 0 <= addr - base <= len(view) - size:
                    return DmaRegion(addr, view[addr - base:addr - base + size])
            raise SplitnicError(f"{self.path}: the grant names {addr:#x}+{size}, outside the memory it maps")
        nic = _Granted(self.link)

        def ring(kind: str, g: dict) -> Ring:
            entries = 1 << g["log2"]
            stride = -(-g["buf_size"] // BUFFER_STRIDE_ALIGN) * BUFFER_STRIDE_ALIGN
            return Ring(self.link, kind, g["queue"], g["log2"], g["buf_size"], g["nbufs"],
                        regions=(region(g["desc"], entries * DESCRIPTOR.size),
                                 region(g["cpl"], entries * COMPLETION.size),
                                 region(g["bufs"], g["nbufs"] * stride)))
        self.rx = RxQueue(nic, grant["rx"]["queue"], ring=ring("RXQ", grant["rx"]))   # posts every buffer
        self.tx = TxQueue(nic, grant["tx"]["queue"], ring=ring("TXQ", grant["tx"]))
        reply, _ = self._ask({"op": "ready"})
        self.rules: list[tuple[int, str]] = [tuple(r) for r in reply["rules"]]
        log.info("%s: RX queue %d, TX queue %d; %s", self.name, self.rx.index, self.tx.index,
                 "; ".join(r for _, r in self.rules))

    # ---------------------------------------------------------------- frames
    @property
    def queue(self) -> int:
        """Value of this application's RX queue number."""
        return self.rx.index

    def rx_batch(self, max_frames: int | None = None) -> RxBatch:
        """Frames steered here, at most ``max_frames`` (default: ``burst``), zero-copy; never blocks."""
        return self.rx.rx_batch(max_frames or self.burst)

    def send(self, frames: Sequence) -> int:
        """Send frames (bytes-like, received Packets or TxBuffers) on this application's TX queue;
        returns how many were taken (the rest: the ring is full)."""
        return self.tx.tx_burst(frames)

    def forward(self, batch: RxBatch, *, upto: int | None = None) -> int:
        """Send the first ``upto`` (all) frames of ``batch``, rewritten in place perhaps; copied
        buffer to buffer in C, no Python object per frame.  The batch stays lent."""
        return self.tx.forward(batch, upto=upto)

    # ---------------------------------------------------------------- sleeping
    def pending(self) -> bool:
        """Whether a frame waits in the RX queue."""
        return bool(lib.snic_rx_pending(self.rx._c))

    def _arm(self) -> None:
        # No answer to wait for: the primary unmasks this queue's cause, then compares the NIC's
        # CPL register with ``next`` (the first completion this process has not taken) and wakes it
        # at once if a frame landed meanwhile.
        try:
            self._sock.send(json.dumps({"op": "arm", "next": self.rx._c.next_cpl & INDEX_MASK}).encode())
        except OSError as err:
            raise SplitnicError(f"{self.path}: splitnic up went away ({err.strerror or err}); the queues are gone") \
                from None

    def _lease_ended(self) -> SplitnicError:
        """Why the socket became readable after "ready": the primary ended the lease, saying why
        first (a board reset: attach again), or went away."""
        reason = None
        for _ in range(2):
            try:
                said = self._sock.recv(MAX_MESSAGE, socket.MSG_DONTWAIT)
                reason = json.loads(said).get("error") if said else None
            except ConnectionResetError:
                # The primary closed with a message of ours unread (an arm): the kernel reports that
                # once, ahead of what the primary said.
                continue
            except (OSError, ValueError, AttributeError):
                pass
            break
        if reason:
            return SplitnicError(f"{self.path}: {reason}")
        return SplitnicError(f"{self.path}: splitnic up went away; the queues are gone")

    def _drain(self) -> None:
        try:
            os.eventfd_read(self._efd)
        except BlockingIOError:
            pass

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until a frame waits (True) or ``timeout`` seconds pass (False).

        Asks the primary to unmask this queue's interrupt cause (it wakes this
        process at once if a frame landed since the last look), then sleeps
        on the eventfd.  Raises when the primary went away.
        """
        if self.pending():
            return True
        self._arm()
        ready = select.select([self._efd, self._sock], [], [], timeout)[0]
        if self._sock in ready:
            raise self._lease_ended()
        self._drain()
        return self.pending()

    async def wait_async(self) -> None:
        """Like :meth:`wait`, for ``asyncio``: returns when a frame waits; raises when the primary went away."""
        if self.pending():
            return
        self._arm()
        loop = asyncio.get_running_loop()
        while not self.pending():
            woke = loop.create_future()
            loop.add_reader(self._efd, lambda: woke.done() or woke.set_result(None))
            # After "ready" the primary sends nothing: the socket becomes readable only when the lease
            # ends (its reason, then the hangup).
            loop.add_reader(self._sock.fileno(), lambda: woke.done() or woke.set_exception(self._lease_ended()))
            try:
                await woke
            finally:
                loop.remove_reader(self._efd)
                loop.remove_reader(self._sock.fileno())
            self._drain()
            if not self.pending():
                self._arm()

    def fileno(self) -> int:
        """The eventfd the primary writes when this queue's interrupt fires (after :meth:`wait` armed it)."""
        return self._efd

    def __iter__(self) -> Iterator[RxBatch]:
        """Batches of frames, forever, sleeping when there are none; each is released when the next
        is asked for (release it sooner to give the buffers back sooner)."""
        while True:
            batch = self.rx_batch()
            if len(batch):
                self._current = batch
                yield batch
                batch.release()
                self._current = None
                continue
            self.wait()

    async def batches(self) -> AsyncIterator[RxBatch]:
        """``async for batch in app.batches()``: as iterating, sleeping in the event loop."""
        while True:
            batch = self.rx_batch()
            if len(batch):
                try:
                    yield batch
                finally:
                    batch.release()
            else:
                await self.wait_async()

    def run(self, handler: Callable[[RxBatch, "Attached"], object], *, stop: Callable[[], bool] | None = None,
            poll: float = 1.0) -> None:
        """Call ``handler(batch, app)`` for every batch (the in-process form's handler runs unchanged)
        until ``stop()`` is true (checked after each batch, and every ``poll`` seconds when idle)."""
        while stop is None or not stop():
            with self.rx_batch() as batch:
                if len(batch):
                    handler(batch, self)
                    continue
            # Empty: sleep at once, as splitnic up's own loop does (wait looks once more after
            # arming).  Spinning first caught the next frames a few microseconds sooner but cost
            # a fifth of the process's CPU whenever the NIC was the slower side (bench apps:
            # process_over_inprocess 0.74-0.85 with 200 looks, 1.02 without: docs/apps.md).
            self.wait(poll)

    # ---------------------------------------------------------------- the end
    def close(self) -> None:
        """Give the queues back (the primary reclaims them when the socket closes) and unmap."""
        if self._current is not None:
            self._current.release()
            self._current = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for q in (self.rx, self.tx):
            if q is not None:
                q.close()
        if self._efd >= 0:
            os.close(self._efd)
            self._efd = -1
        if self._doorbells is not None:
            self._doorbells.close()
            self._doorbells = None
        for mapped in self._maps:
            try:
                mapped.close()
            except BufferError:   # a view of a frame is still held; the mapping goes with it
                pass
        self._maps = []

    def __enter__(self) -> "Attached":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def attach(rules: str | Sequence[str], name: str, *, interface: str = "snic0", path: Path | str | None = None,
           ring_log2: int = 8, buf_size: int = 2048, burst: int = 64) -> Attached:
    """Ask the ``splitnic up`` of ``interface`` for an RX and a TX queue of this process's own.

    ``rules``: one match (``"udp dport 9000"``) or several, without ``-> target``:
    the target is this application, ``name``.  ``path``: the primary's socket
    (default ``/run/splitnic/<interface>.apps``).  Raises
    :class:`~splitnic.errors.SplitnicError` with the primary's one-line reason
    when it refuses (no queue left, a rule that does not parse, a link whose
    memory cannot be mapped here).
    """
    rules = [rules] if isinstance(rules, str) else list(rules)
    return Attached(rules, name, Path(path) if path else default_path(interface), ring_log2=ring_log2,
                    buf_size=buf_size, burst=burst)
