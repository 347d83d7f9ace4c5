"""The tunnel pump: moves frames between a NIC queue pair and the kernel tunnel.

Ref: docs/architecture.md, "The kernel path" (RX queue 0 feeds the kernel;
the kernel's frames leave on TX queue 0); hostdrv/splitnic/_hotpath.c
(``snic_pump_*``).

When the port is a NIC's queue pair on a zero-copy link (``sim``, ``mmio``)
and the tunnel is the stub or TAP, every frame moves in C: NIC RX buffer ->
u2k slot (or TAP ``write()``), k2u slot (or TAP ``read()``) -> NIC TX
buffer, one copy each, one doorbell and one kick per burst, no Python object
per frame.  A frame longer than a TX buffer is dropped and counted.

Any other *port* with ``rx_burst(max) -> list[frame]`` and
``tx_burst(frames) -> int`` (a packet socket, a NIC on a copying link) is
pumped in Python.  The pump is an ordinary object so that a process can run
it in a thread next to fast-path applications, or step it from its own loop.
"""

from __future__ import annotations

import logging
import select
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

from ._cffi import ffi, lib
from .tunnel import KernelTunnel

__all__ = ["FramePort", "PumpStats", "TunnelPump", "STOP_CHECK"]

log = logging.getLogger(__name__)

Frame = bytes | bytearray | memoryview
#: Seconds :meth:`TunnelPump.run` sleeps at most between two looks at :meth:`TunnelPump.stop`
#: when both sides have descriptors (nothing else wakes it for a stop from another thread).
STOP_CHECK = 0.2


@runtime_checkable
class FramePort(Protocol):
    """A source and sink of Ethernet frames (e.g. NIC RX queue 0 + TX queue 0)."""

    def rx_burst(self, max_frames: int) -> Sequence[Frame]:
        """Frames received, at most ``max_frames``; never blocks."""

    def tx_burst(self, frames: Sequence[Frame]) -> int:
        """Queue frames for sending; returns how many were taken."""


@dataclass
class PumpStats:
    """Frames the pump moved and dropped, per direction."""
    to_kernel: int = 0          #: port -> kernel
    to_port: int = 0            #: kernel -> port
    dropped_to_kernel: int = 0  #: the kernel side stayed full, or could not take the frame
    dropped_to_port: int = 0    #: the port stayed full
    too_long_to_port: int = 0   #: kernel frames longer than the port's TX buffers (dropped)
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        """One-line summary for status output."""
        return (f"to kernel {self.to_kernel} (dropped {self.dropped_to_kernel}), "
                f"to NIC {self.to_port} (dropped {self.dropped_to_port}, too long {self.too_long_to_port})")


class TunnelPump:
    """Move frames port -> kernel and kernel -> port in bursts of ``burst``.

    A frame the far side does not take is retried on the next steps; when a
    side takes nothing for ``stall_timeout`` seconds its backlog is dropped
    and counted, so a stalled side never stalls the other direction for long.
    """

    def __init__(self, port: FramePort, tunnel: KernelTunnel, burst: int = 64,
                 stall_timeout: float = 0.1) -> None:
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        self.port = port
        self.tunnel = tunnel
        self.burst = burst
        self.stall_timeout = stall_timeout
        self.stats = PumpStats()
        self._to_kernel: list[Frame] = []
        self._to_port: list[Frame] = []
        self._stalled_since: list[float | None] = [None, None]
        self._stop = threading.Event()
        self._c = _c_pump(port, tunnel)
        if self._c is not None:
            rx, tx = port.queues()
            self._rings = (rx.ring, tx.ring)
            self._c_doorbells = not (rx.ring.doorbell_in_c and tx.ring.doorbell_in_c)
            self._tails = [rx.ring.c.tail, tx.ring.c.tail]
        log.info("tunnel pump: %s", "C (one copy each way)" if self._c is not None else "Python")

    @property
    def in_c(self) -> bool:
        """Whether the frames move in C (a NIC queue pair on a zero-copy link, stub or TAP)."""
        return self._c is not None

    @property
    def rx_blocked(self) -> bool:
        """Value of: frames wait in the NIC's RX ring but the kernel side had no room (last step)."""
        return bool(self._c.rx_blocked) if self._c is not None else bool(self._to_kernel)

    @property
    def tx_blocked(self) -> bool:
        """Value of: the kernel's frames wait but the NIC's TX ring had no room (last step)."""
        return bool(self._c.tx_blocked) if self._c is not None else bool(self._to_port)

    def _move(self, backlog: list[Frame], fetch, put, direction: int) -> tuple[list[Frame], int]:
        if not backlog:
            backlog = list(fetch(self.burst))
            if not backlog:
                return backlog, 0
        taken = put(backlog)
        if taken:
            self._stalled_since[direction] = None
            return backlog[taken:], taken
        now = time.monotonic()
        since = self._stalled_since[direction]
        if since is None:
            self._stalled_since[direction] = now
        elif now - since > self.stall_timeout:
            dropped = len(backlog)
            if direction == 0:
                self.stats.dropped_to_kernel += dropped
            else:
                self.stats.dropped_to_port += dropped
            log.debug("pump dropped %d frames (direction %d stalled)", dropped, direction)
            self._stalled_since[direction] = None
            return [], 0
        return backlog, 0

    def step(self) -> int:
        """Move at most one burst each way; returns the frames moved."""
        if self._c is not None:
            return self._c_step()
        self._to_kernel, a = self._move(self._to_kernel, self.port.rx_burst, self.tunnel.send_burst, 0)
        self._to_port, b = self._move(self._to_port, self.tunnel.recv_burst, self.port.tx_burst, 1)
        self.stats.to_kernel += a
        self.stats.to_port += b
        too_long = getattr(self.port, "too_long", 0)
        if too_long != self.stats.too_long_to_port:
            self.stats.too_long_to_port = too_long
        return a + b

    def _c_step(self) -> int:
        c = self._c
        work = lib.snic_pump_step(c, self.burst)
        if work:
            if self._c_doorbells:
                # sim link: TAIL is a message to the simulator, written here once per burst.
                for i, ring in enumerate(self._rings):
                    if ring.c.tail != self._tails[i]:
                        self._tails[i] = ring.c.tail
                        ring.doorbell()
            st = self.stats
            st.to_kernel, st.to_port = c.to_kernel, c.to_nic
            st.dropped_to_kernel, st.too_long_to_port = c.drop_to_kernel, c.drop_to_nic
        return work

    def run(self, duration: float | None = None, idle_wait: float = 0.001) -> PumpStats:
        """Step until :meth:`stop` is called (or ``duration`` seconds pass).

        When nothing moved, waits for the tunnel's descriptor and the port's.
        A port without a descriptor (a NIC: :class:`splitnic.kernel_path.Tunnel`
        waits on its interrupt instead) is polled every ``idle_wait`` seconds;
        with one, the wait is only bounded (``STOP_CHECK``) so that
        :meth:`stop` from another thread is seen, or a backlog retried.
        """
        poller = select.poll()
        poller.register(self.tunnel.fileno(), select.POLLIN)
        port_fd = getattr(self.port, "fileno", None)
        if callable(port_fd):
            poller.register(port_fd(), select.POLLIN)
        deadline = None if duration is None else time.monotonic() + duration
        idle_ms = max(0, int(idle_wait * 1000))
        wait_ms = int(STOP_CHECK * 1000) if callable(port_fd) else idle_ms
        while not self._stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not self.step():
                poller.poll(idle_ms if self._to_kernel or self._to_port else wait_ms)
        return self.stats

    def run_in_thread(self, name: str = "tunnel-pump", idle_wait: float = 0.001) -> threading.Thread:
        """Start :meth:`run` in a daemon thread (next to fast-path applications); returns the thread.

        Stop it with :meth:`stop`, then ``join()`` the thread.
        """
        thread = threading.Thread(target=self.run, kwargs={"idle_wait": idle_wait}, name=name, daemon=True)
        thread.start()
        return thread

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Make :meth:`run` return after its current step (thread- and signal-safe)."""
        self._stop.set()


#: Bytes behind a TX buffer a TAP read may spill into: any frame TAP can give fits the two.
_TAP_SPILL = 65536
#: What the C structs point at, kept alive as long as they are.
_keep: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _c_pump(port, tunnel: KernelTunnel):
    """A ``struct snic_pump`` joining ``port`` and ``tunnel`` in C, or None when they cannot be."""
    queues = getattr(port, "queues", None)
    if queues is None or tunnel.kind not in ("stub", "tap"):
        return None
    rx, tx = queues()
    if rx.ring.copying or tx.ring.copying:
        return None   # etherbone: every hand-over is a sync through Python (ring.py)
    from splitnic_spec import tunnel as tspec
    c = ffi.new("struct snic_pump *")
    c.rx, c.tx = rx.ring.c, tx.ring.c
    c.frame_min = tspec.constant("FRAME_MIN")
    c.fd = tunnel.fileno()
    if tunnel.kind == "tap":
        c.tap = 1
        c.k2u = c.u2k = ffi.NULL
        spill = ffi.new("uint8_t[]", _TAP_SPILL)
        c.spill, c.spill_size = spill, _TAP_SPILL
        _keep[c] = spill
    else:
        c.tap = 0
        c.k2u, c.u2k = tunnel.k2u, tunnel.u2k
        c.kick_request = tspec.constant("IOC_KICK")
    return c
