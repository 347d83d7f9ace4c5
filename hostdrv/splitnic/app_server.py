"""Queues for application processes: ``splitnic up`` grants each its own RX and TX queue.

Ref: docs/apps.md (the model, the trust, AF_XDP and DPDK side by side);
hostdrv/splitnic/app_client.py (the application's end); hostdrv/splitnic/fastpath.py
(the steering table and the queue books); hostdrv/splitnic/irq.py
(ForwardedCauses: one interrupt line, an eventfd per application).

``splitnic up`` (the primary) keeps the NIC, snic0 and the steering table.
It listens on a Unix socket beside the rules socket
(``/run/splitnic/<interface>.apps``, :func:`default_path`), of type
SOCK_SEQPACKET: one JSON message per packet, file descriptors alongside
(SCM_RIGHTS), and a hangup the primary sees the moment the application's
process ends, however it ends.  One connection is one application:

    app -> {"op": "attach", "name": "kv", "rules": ["udp dport 9000"], "ring_log2": 8, "buf_size": 2048}
    primary: reserves an RX and a TX queue (FastPath.reserve), allocates their rings and buffers
             in the NIC's DMA memory, programs and enables both queues (no buffer posted yet)
    app <- {"ok": true, "grant": {...}}  + [the memory's fds, an eventfd, (sim, eth) the doorbell
                                            page and its kick eventfd]
    app: maps the memory (on mmio registers and DMA memory: the same file the link maps), posts
         its RX buffers, rings its TAIL (its own register, or the doorbell page and a kick)
    app -> {"op": "ready"}
    primary: adds the rules (frames steered from now on land in posted buffers: none dropped)
    app <- {"ok": true, "rules": [[index, "rule"], ...]}
    ... RX and TX are the application's: no message per frame, no copy ...
    app -> {"op": "arm", "next": N}   (its queue is empty: it sleeps on the eventfd; no answer: the
                                       primary unmasks the cause, and writes the eventfd at once if
                                       the queue's CPL register has moved past N meanwhile)
    hangup (exit, crash, SIGKILL): the primary removes the rules (the kernel gets those frames
    again), disables and resets both queues, waits until the NIC has let go, frees the memory.

The grant names device addresses (``desc``, ``cpl``, ``bufs``) and the
memory windows that hold them: each a file (descriptor), its size, and
where in it the window of DMA memory at device address ``base`` starts; the
application maps them and builds its own ring books over them
(:class:`splitnic.ring.Ring` with ``regions``).  What the primary carries
depends on the link:

- ``mmio``: nothing.  One file holds the register window and the DMA memory;
  the application writes its TAIL registers itself.
- ``sim``: the doorbells.  The DMA memory maps, but the registers are reached
  through the simulator's one socket, the primary's: the grant adds a
  doorbell page (a memfd: the application stores its RX and TX TAIL there)
  and a kick eventfd the application writes after storing; the primary
  writes the TAILs when it is kicked (:class:`_Doorbells`).  Frames and
  descriptors never pass through it.
- ``eth``: the doorbells and what the NIC reads.  The NIC's memory is on the
  board, across the cable, in two parts (splitnic.link_eth): host memory,
  which the NIC writes (completions, RX frames; the primary's host side
  fills it as the board's messages arrive), and the mirror of NIC-local
  memory, which the NIC reads (descriptors, TX frames).  Both are memfds the
  application maps: RX reaches it with no copy beyond the socket receive the
  primary does for every frame anyway.  On a kick the primary sends the
  descriptors the application posted, and the TX frames they name, across
  the cable, then the TAIL (:class:`_CarriedPosts`): the one copy on TX is
  the one the cable needs.  A frame a TX descriptor places outside the
  application's own TX buffers is not sent (the NIC reads whatever is there).
- ``etherbone``: refused in one line.  Every byte would cross by round
  trips the primary would make for the application; it is the board's
  management link, ``eth`` is its data link.  An application runs inside
  ``splitnic up`` there instead (``--fast 'RULE -> package.module:handler'``).

A board reset (``eth``) loses the application's queues: the primary ends
every lease (:meth:`AppServer.rearm`), and an application attaches again.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from splitnic_spec import INDEX_MASK

from .dma import shared_memory_file
from .errors import SplitnicError
from .fastpath import FastPath
from .irq import ForwardedCauses
from .ring import Ring, fit_sizes
from .rules import RuleError, parse_rule

if TYPE_CHECKING:
    from .kernel_path import Tunnel

__all__ = ["AppServer", "default_path", "MAX_MESSAGE", "GRANT_LINKS"]

log = logging.getLogger(__name__)

#: Largest message either side sends.
MAX_MESSAGE = 65536
#: Links that grant queues to application processes: their DMA memory (on eth a mirror of it) maps
#: into the application (and on mmio the registers).
GRANT_LINKS = ("mmio", "sim", "eth")
#: The doorbell page of a sim or eth grant: the application's RX TAIL, then its TX TAIL (little-endian u32).
DOORBELL = struct.Struct("<II")
#: What an application hears when a board reset took its queues (then the socket hangs up).
ENDED_BY_RESET = "the NIC's board was reset and took this application's queues with it; attach again"
#: Seconds an application may take between its grant and "ready" (posting its buffers).
READY_TIMEOUT = 10.0
_UCRED = struct.Struct("3i")


def default_path(ifname: str) -> Path:
    """Where ``splitnic up`` for interface ``ifname`` grants queues to applications."""
    return Path("/run/splitnic") / f"{ifname}.apps"


def refusal(kind: str) -> str:
    """Why a link cannot give an application process its own queues (one line)."""
    return (f"{kind}: every byte of an application's queues would cross the cable by round trips that "
            "splitnic up makes for it; use the board's eth link for application processes, or run the "
            "application inside splitnic up (--fast 'RULE -> package.module:handler')")


@dataclass
class _App:
    """One connection: an application and what it was granted."""
    sock: socket.socket
    pid: int
    since: float
    name: str = ""
    rx: Ring | None = None
    tx: Ring | None = None
    eventfd: int = -1
    ready: bool = False
    rules: list[str] = field(default_factory=list)
    doorbells: "_Doorbells | None" = None


class _Doorbells:
    """The doorbells the primary carries for an application on a link whose registers it alone reaches (sim;
    eth: :class:`_CarriedPosts`)."""

    def __init__(self, bus, rx: Ring, tx: Ring) -> None:
        self.bus = bus
        self.regs = (rx.reg("TAIL"), tx.reg("TAIL"))
        self.written = [0, 0]
        self.page = shared_memory_file("splitnic-doorbells", 4096)
        try:
            self.view = mmap.mmap(self.page, 4096)
            self.kick = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except OSError:
            os.close(self.page)
            raise

    def ring(self) -> None:
        """Write the TAILs the application stored since the last kick."""
        try:
            os.eventfd_read(self.kick)
        except BlockingIOError:
            pass
        doorbells = []
        for i, tail in enumerate(DOORBELL.unpack_from(self.view)):
            tail &= INDEX_MASK
            if tail != self.written[i]:
                self._hand_over(i, tail)
                doorbells.append((self.regs[i], tail))
                self.written[i] = tail
        write_many = getattr(self.bus, "write32_many", None)
        if write_many is not None and doorbells:
            write_many(doorbells)     # both TAILs at once (eth: one frame across the cable)
        elif write_many is None:
            for offset, tail in doorbells:
                self.bus.write32(offset, tail)

    def _hand_over(self, i: int, tail: int) -> None:
        """What the NIC must have before TAIL ``i`` (0 RX, 1 TX) moves to ``tail``: nothing here."""

    def close(self) -> None:
        self.view.close()
        os.close(self.page)
        os.close(self.kick)


class _CarriedPosts(_Doorbells):
    """eth: before a TAIL, the descriptors the application posted (and the TX frames they name) cross the cable.

    The application writes into the mirror of NIC-local memory (a memfd shared
    with it); the primary's rings of the queue (``rx``, ``tx``) know where its
    descriptors and buffers are, and send what the new TAIL hands the NIC, as
    :meth:`Ring.doorbell` does for the primary's own queues.
    """

    def __init__(self, bus, rx: Ring, tx: Ring) -> None:
        super().__init__(bus, rx, tx)
        self.rings = (rx, tx)
        #: TX frames not sent because their descriptor placed them outside the application's buffers.
        self.stray_frames = 0

    def _hand_over(self, i: int, tail: int) -> None:
        ring = self.rings[i]
        count = min((tail - self.written[i]) & INDEX_MASK, ring.entries)
        # ``written`` is the first index not yet handed over (the ring's slots are its low bits).
        spans = ring.posted_spans(self.written[i], count)
        if ring.c.is_tx:
            spans = self._own_frames(ring, spans, count)
        ring.push_spans(spans)

    def _own_frames(self, ring: Ring, spans: list[tuple[int, int]], count: int) -> list[tuple[int, int]]:
        # The first ``count`` spans are the frames (ring.posted_spans), the rest the descriptors.
        lo, hi = ring.bufs.device_addr, ring.bufs.device_addr + ring.bufs.size
        frames = [(a, n) for a, n in spans[:count] if lo <= a and a + n <= hi]
        self.stray_frames += count - len(frames)
        return frames + spans[count:]


class AppServer:
    """The granting end, inside ``splitnic up``; an event source of :class:`~splitnic.kernel_path.Tunnel`."""

    def __init__(self, fast: FastPath, path: Path, tunnel: "Tunnel | None" = None) -> None:
        self.fast = fast
        self.nic = fast.nic
        self.tunnel = tunnel
        self.path = path
        self.forwarded = ForwardedCauses()
        if tunnel is not None:
            tunnel.forwarded = self.forwarded
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            if _alive(path):
                raise SplitnicError(f"{path} is in use: another 'splitnic up' grants queues there; pick --name or --apps")
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            sock.bind(str(path))
            os.chmod(path, 0o600)
            sock.listen(8)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._ep = select.epoll()
        self._ep.register(sock.fileno(), select.EPOLLIN)
        self.apps: dict[int, _App] = {}
        self._kicks: dict[int, _Doorbells] = {}    # kick eventfd -> the doorbells it rings
        #: Milliseconds each reclaim took, hangup seen to queues idle and memory free (newest last).
        self.reclaim_ms: list[float] = []

    def fileno(self) -> int:
        """A descriptor readable when an application connected, spoke or hung up (an epoll set)."""
        return self._ep.fileno()

    # ---------------------------------------------------------------- the loop's side
    def poll(self) -> int:
        """Handle what is ready without blocking; returns how many events."""
        events = self._ep.poll(0)
        for fd, mask in events:
            if fd == self._sock.fileno():
                self._accept()
            elif fd in self.apps:
                self._serve(self.apps[fd], mask)
            elif fd in self._kicks:
                self._kicks[fd].ring()
        now = time.monotonic()
        for app in [a for a in self.apps.values() if not a.ready and a.rx and now - a.since > READY_TIMEOUT]:
            log.warning("application %s (pid %d) took its queues but never said ready; reclaimed", app.name, app.pid)
            self._reclaim(app)
        return len(events)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            try:
                pid = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))[0]
            except OSError:
                pid = 0
            self.apps[conn.fileno()] = _App(conn, pid, time.monotonic())
            self._ep.register(conn.fileno(), select.EPOLLIN | select.EPOLLRDHUP)

    def _serve(self, app: _App, mask: int) -> None:
        while True:
            try:
                data = app.sock.recv(MAX_MESSAGE)
            except BlockingIOError:
                if mask & (select.EPOLLHUP | select.EPOLLRDHUP | select.EPOLLERR):
                    self._reclaim(app)
                return
            except OSError:
                data = b""
            if not data:          # the application's end closed: exit, crash or SIGKILL alike
                self._reclaim(app)
                return
            try:
                request = json.loads(data)
                if not isinstance(request, dict):
                    raise ValueError("not an object")
                reply, fds = self._handle(app, request)
            except (ValueError, UnicodeDecodeError) as err:
                reply, fds = {"ok": False, "error": f"bad request: {err}"}, []
            except SplitnicError as err:
                reply, fds = {"ok": False, "error": str(err)}, []
            if reply is None:
                continue
            kept = app.eventfd        # the primary's own: it writes it (a reclaim closes it)
            try:
                socket.send_fds(app.sock, [json.dumps(reply).encode()], fds) if fds else \
                    app.sock.send(json.dumps(reply).encode())
            except OSError:
                self._reclaim(app)
                return
            finally:
                for fd in fds:
                    if fd != kept:
                        os.close(fd)
            if not reply.get("ok") and not app.ready:
                self._reclaim(app)   # a refused attach ends the conversation
                return

    def _handle(self, app: _App, req: dict) -> tuple[dict | None, list[int]]:
        op = req.get("op")
        if op == "attach" and app.rx is None:
            return self._grant(app, req)
        if op == "ready" and app.rx is not None and not app.ready:
            return self._go(app), []
        if op == "arm" and app.ready:
            self._arm(app, req.get("next"))
            return None, []           # no answer: the eventfd is the answer
        if op == "list":
            return {"ok": True, "apps": self.listing()}, []
        raise SplitnicError(f"unexpected op {op!r} here; an application sends attach, ready, then arm")

    # ---------------------------------------------------------------- granting
    def _grant(self, app: _App, req: dict) -> tuple[dict, list[int]]:
        link = self.nic.link
        if link.kind not in GRANT_LINKS:
            raise SplitnicError(refusal(link.kind))
        name = req.get("name")
        rules = req.get("rules")
        if not isinstance(name, str) or not isinstance(rules, list) or not rules:
            raise SplitnicError("attach needs a name and at least one rule")
        for text in rules:   # every rule parses before anything is reserved
            if not isinstance(text, str) or "->" in text:
                raise SplitnicError(f"a rule is its match only (the target is the application): not {text!r}")
            parse_rule(f"{text} -> {name}")
        ring_log2, buf_size = int(req.get("ring_log2", 8)), int(req.get("buf_size", 2048))
        rxq, txq = self.fast.reserve(name)
        app.name, app.rules = name, list(rules)
        try:
            log2, nbufs = fit_sizes(link, f"RXQ{rxq}", ring_log2, buf_size, 2 << ring_log2)
            app.rx = Ring(link, "RXQ", rxq, log2, buf_size, nbufs)
            log2, nbufs = fit_sizes(link, f"TXQ{txq}", ring_log2, buf_size, 1 << ring_log2)
            app.tx = Ring(link, "TXQ", txq, log2, buf_size, nbufs)
            for ring in (app.rx, app.tx):
                ring.program()    # enabled, nothing posted: the application posts its own buffers
            windows, files, regs_offset = _memory_windows(link)
            try:
                if link.kind == "sim":
                    app.doorbells = _Doorbells(link.bus, app.rx, app.tx)
                elif link.kind == "eth":
                    app.doorbells = _CarriedPosts(link.bus, app.rx, app.tx)
                app.eventfd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            except OSError:
                for fd in files:
                    os.close(fd)
                raise
        except (SplitnicError, ValueError, OSError, KeyError) as err:
            raise SplitnicError(f"cannot grant queues to {name!r}: {err}") from None
        self.forwarded.add(rxq, app.eventfd)
        fds = [*files, app.eventfd]
        if app.doorbells is not None:
            fds += [os.dup(app.doorbells.page), os.dup(app.doorbells.kick)]
            self._kicks[app.doorbells.kick] = app.doorbells
            self._ep.register(app.doorbells.kick, select.EPOLLIN)
        grant = {"name": name, "link": link.kind, "windows": windows, "regs_offset": regs_offset,
                 "rx": _ring_grant(app.rx), "tx": _ring_grant(app.tx)}
        log.info("application %s (pid %d): RX queue %d, TX queue %d granted", name, app.pid, rxq, txq)
        return {"ok": True, "grant": grant}, fds

    def _go(self, app: _App) -> dict:
        # The application posted its RX buffers before "ready"; on sim their TAIL is a doorbell this
        # loop carries, and its kick may still wait behind this message: write it before the rules go
        # in, or the first frames they steer find no buffer and are dropped.
        if app.doorbells is not None:
            app.doorbells.ring()
        added = []
        try:
            for text in app.rules:
                index = self.fast.add(f"{text} -> {app.name}")
                added.append([index, str(self.fast.rules.rules[index])])
        except RuleError as err:
            raise SplitnicError(f"application {app.name!r}: {err}") from None
        app.ready = True
        log.info("application %s (pid %d) attached: %s", app.name, app.pid, "; ".join(r for _, r in added))
        return {"ok": True, "rules": added}

    def _arm(self, app: _App, next_cpl: object) -> None:
        """Unmask the application's cause; wake it at once if a completion landed since it looked.

        ``next_cpl``: the first completion the application has not taken.  A
        frame completed before the cause was cleared has moved the queue's CPL
        register past it (the NIC writes CPL before it raises the cause), so
        the comparison after unmasking misses nothing: what lands later raises
        the cause, which is forwarded (irq.ForwardedCauses).
        """
        irq = self.tunnel.irq if self.tunnel else None
        if irq is None:       # a link without an interrupt: wake the application at once, it polls
            os.eventfd_write(app.eventfd, 1)
            return
        self.forwarded.arm(irq, app.rx.index, next_cpl if isinstance(next_cpl, int) else None)

    # ---------------------------------------------------------------- reclaiming
    def _reclaim(self, app: _App) -> None:
        """The application is gone (or refused): its rules, queues, memory and descriptors go back."""
        start = time.monotonic()
        self.apps.pop(app.sock.fileno(), None)
        try:
            self._ep.unregister(app.sock.fileno())
        except (OSError, ValueError):
            pass
        app.sock.close()
        if app.name and (app.name in self.fast.remote):
            self.fast.drop(app.name)          # steering first: the kernel gets the frames again
        if app.rx is not None:
            self.forwarded.remove(app.rx.index)
        if isinstance(app.doorbells, _CarriedPosts) and app.doorbells.stray_frames:
            log.warning("application %s (pid %d): %d TX descriptors named memory outside its buffers; those "
                        "frames were not sent across the cable", app.name, app.pid, app.doorbells.stray_frames)
        if app.doorbells is not None:
            self._kicks.pop(app.doorbells.kick, None)
            try:
                self._ep.unregister(app.doorbells.kick)
            except (OSError, ValueError):
                pass
            app.doorbells.close()
            app.doorbells = None
        for ring in (app.rx, app.tx):
            if ring is None:
                continue
            try:
                ring.quiesce()                # the NIC lets go of the rings and buffers ...
            except SplitnicError as err:
                log.warning("%s: %s", ring.name, err)
            ring.close()                      # ... before they return to the allocator
        if app.eventfd >= 0:
            os.close(app.eventfd)
            app.eventfd = -1
        if app.rx is not None:
            took = (time.monotonic() - start) * 1e3
            self.reclaim_ms.append(took)
            log.info("application %s (pid %d) left: rules removed, RX queue %d and TX queue %d reclaimed "
                     "in %.1f ms", app.name, app.pid, app.rx.index, app.tx.index if app.tx else -1, took)
        app.rx = app.tx = None

    def rearm(self) -> None:
        """The NIC was reset under the driver (its board was: ``eth``), and its queues with it:
        end every application's lease (each sees its socket hang up and may attach again).
        :class:`splitnic.kernel_path.Tunnel` calls this before the fast path sets itself up again
        (their rules are gone from the table it writes, their memory is free for its queues)."""
        if self.apps:
            log.warning("the NIC was reset: the queues of application processes %s are gone; they may attach "
                        "again", ", ".join(sorted(a.name or f"pid {a.pid}" for a in self.apps.values())))
        for app in list(self.apps.values()):
            try:
                while app.sock.recv(MAX_MESSAGE, socket.MSG_DONTWAIT):
                    pass           # its arms: closing on unread ones would reset its end, reason unread
            except OSError:
                pass
            try:   # the reason, before the hangup (the application raises with it: app_client)
                app.sock.send(json.dumps({"ok": False, "error": ENDED_BY_RESET}).encode())
            except OSError:
                pass
            self._reclaim(app)

    def listing(self) -> list[dict]:
        """The applications attached: name, pid, queues, rules."""
        return [{"name": a.name, "pid": a.pid, "rx_queue": a.rx.index, "tx_queue": a.tx.index, "rules": a.rules}
                for a in self.apps.values() if a.ready and a.rx and a.tx]

    def close(self) -> None:
        """Reclaim every application and stop listening."""
        for app in list(self.apps.values()):
            self._reclaim(app)
        self._ep.close()
        self._sock.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def _memory_windows(link) -> tuple[list[dict], list[int], int | None]:
    """The grant's memory: windows (``file_size``, ``offset`` of the window in its file, device
    ``base``, ``size``), a new descriptor of each window's file, and where the registers are in
    the first file (None: not there, the primary carries the doorbells)."""
    details = link.details
    if link.kind == "mmio":      # one file: the register window, then DMA memory
        base, size = int(details["dma_base"]), int(details["dma_size"])
        files = [os.open(details["file"], os.O_RDWR | os.O_CLOEXEC)]
        return [{"file_size": int(details["size"]), "offset": base, "base": base, "size": size}], files, 0
    if link.kind == "sim":       # the simulator's DMA memory file
        base, size = int(details["dma_base"]), int(details["dma_size"])
        files = [os.open(details["shm"], os.O_RDWR | os.O_CLOEXEC)]
        return [{"file_size": size, "offset": 0, "base": base, "size": size}], files, None
    # eth: the mirror of NIC-local memory (descriptors, TX frames), then host memory (what the NIC writes)
    dma = link.dma
    windows = [{"file_size": pool.region.size, "offset": 0, "base": pool.region.device_addr,
                "size": pool.region.size} for pool in (dma.local, dma.host)]
    return windows, [os.dup(dma.local_file), os.dup(dma.host_file)], None


def _ring_grant(ring: Ring) -> dict:
    return {"queue": ring.index, "log2": ring.log2, "buf_size": ring.buf_size, "nbufs": ring.nbufs,
            "desc": ring.desc.device_addr, "cpl": ring.cpl.device_addr, "bufs": ring.bufs.device_addr}


def _alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as probe:
        try:
            probe.connect(str(path))
            return True
        except OSError:
            return False
