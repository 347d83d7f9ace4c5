"""The tunnel pump: moves frames between a NIC queue pair and the kernel tunnel.

Ref: /work/shared/ARCHITECTURE.md, "Queues and steering" (RX queue 0 feeds
the kernel; the kernel's frames leave on TX queue 0).

The pump only needs a *port* with ``rx_burst(max) -> list[frame]`` and
``tx_burst(frames) -> int`` (the driver's queue pair, or any other source
and sink of Ethernet frames, such as a packet socket in tests).  It is an
ordinary object so that a process can run it in a thread next to fast-path
applications, or step it from its own loop.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

from .tunnel import KernelTunnel

__all__ = ["FramePort", "PumpStats", "TunnelPump"]

log = logging.getLogger(__name__)

Frame = bytes | bytearray | memoryview


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
    dropped_to_kernel: int = 0  #: the kernel side stayed full
    dropped_to_port: int = 0    #: the port stayed full
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        """One-line summary for status output."""
        return (f"to kernel {self.to_kernel} (dropped {self.dropped_to_kernel}), "
                f"to NIC {self.to_port} (dropped {self.dropped_to_port})")


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
        self._to_kernel, a = self._move(self._to_kernel, self.port.rx_burst, self.tunnel.send_burst, 0)
        self._to_port, b = self._move(self._to_port, self.tunnel.recv_burst, self.port.tx_burst, 1)
        self.stats.to_kernel += a
        self.stats.to_port += b
        return a + b

    def run(self, duration: float | None = None, idle_wait: float = 0.001) -> PumpStats:
        """Step until :meth:`stop` is called (or ``duration`` seconds pass).

        When nothing moved, waits for the tunnel's descriptor (and the port's,
        if it has ``fileno()``) for at most ``idle_wait`` seconds, because a
        port without a descriptor (a simulated NIC) can only be polled.
        """
        poller = select.poll()
        poller.register(self.tunnel.fileno(), select.POLLIN)
        port_fd = getattr(self.port, "fileno", None)
        if callable(port_fd):
            poller.register(port_fd(), select.POLLIN)
        deadline = None if duration is None else time.monotonic() + duration
        wait_ms = max(0, int(idle_wait * 1000))
        while not self._stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not self.step():
                poller.poll(wait_ms)
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
