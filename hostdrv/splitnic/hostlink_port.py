"""The host's end of the ``eth`` host link: posted writes, reads and interrupts over raw Ethernet.

Ref: spec/splitnic_spec/hostlink.py (the protocol, v2); hostdrv/splitnic/_hostlink.c
(the socket, the receive ring and thread, sessions, numbering, credit, resends
both ways, probes, all in C); docs/hardware.md, "The eth host link", says how to
cable the board.

The driver's DMA memory (``memory``, at device address ``mem_base`` in the
host window) is registered once: the board's WRITE messages land there, and
any write that leaves it is dropped and counted, so the board can never write
elsewhere in this process.  Writes to the board are posted: :meth:`write`
returns once the message is queued (sent when a frame fills or on
:meth:`flush`); only :meth:`read` waits for the board.

Loss on the cable costs a resend either way, never the session.  A board that
was reset answers with STALE; the receive thread then binds it again by itself
(:attr:`reattaches` grows, the irq socket becomes readable), and what the
board held (NIC-local memory, the NIC's registers) is the driver's to write
again (:mod:`splitnic.link_eth`).
"""

from __future__ import annotations

import logging
import socket
import time
from array import array
from typing import Callable, Sequence

from splitnic_spec.hostlink import LINK_TIMEOUT_MS

from .errors import SplitnicError

try:
    from ._hostlink_cffi import ffi, lib
except ImportError as err:  # pragma: no cover - depends on the install
    raise SplitnicError(f"the host link's C module is not built ({err}): run `.venv/bin/pip install -e .` "
                        "or `.venv/bin/python hostdrv/splitnic/_hostlink_build.py`") from None

__all__ = ["HostLinkPort", "COUNTERS"]

log = logging.getLogger(__name__)

#: Seconds a write waits for credit before it fails: past LINK_TIMEOUT_MS, so that a write that
#: fails because the cable is out finds the board already reported silent (and a patient caller waits).
CREDIT_TIMEOUT_S = LINK_TIMEOUT_MS / 1000 + 1

#: Names of :meth:`HostLinkPort.counters`, in the C struct's order.
COUNTERS: tuple[str, ...] = tuple(name for name, _ in ffi.typeof("struct hl_counters").fields)

_ERR_LEN = 512


class HostLinkPort:
    """The host side of the link to one board on interface ``ifname``.

    ``memory``: the driver's DMA memory (writable, e.g. a memoryview of an mmap);
    ``mem_base``: its device address, inside the host window.  ``mtu``: the
    largest frame (after the Ethernet header) this side takes, at most the
    interface's MTU; ``ring_frames``: max-size frames the receive ring holds
    (rounded up to whole blocks), of which the board gets half, less one, at most 0x4000, as its
    credit (:attr:`window`: see _hostlink.c); ``credit_timeout``: seconds a write waits for
    the board's credit before it fails (or, with :attr:`patient`, tries again while the board is
    silent).  Opening needs CAP_NET_RAW; :meth:`hello` finds and binds the board.
    """

    def __init__(self, ifname: str, memory: memoryview, mem_base: int, *, mtu: int = 1500,
                 ring_frames: int = 256, credit_timeout: float = CREDIT_TIMEOUT_S) -> None:
        self.ifname = ifname
        self._memory = memory                     # keeps the buffer alive while C writes into it
        self._mem = ffi.from_buffer("uint8_t[]", memory, require_writable=True)
        self._irq_rx, self._irq_tx = socket.socketpair()
        self._irq_rx.setblocking(False)
        self._irq_tx.setblocking(False)
        self._err = ffi.new("char[]", _ERR_LEN)
        self._h = lib.hl_open(ifname.encode(), self._mem, mem_base, len(self._mem), mtu, ring_frames,
                              self._irq_tx.fileno(), int(credit_timeout * 1000), self._err, _ERR_LEN)
        if self._h == ffi.NULL:
            self._irq_rx.close()
            self._irq_tx.close()
            raise SplitnicError(self._error())
        self._counters = lib.hl_counters(self._h)
        self.board: dict[str, int | str] | None = None
        #: None: a write or read that cannot finish within its timeout fails (SplitnicError), whatever the
        #: cause.  Set (``splitnic up``): while the board is silent, re-attaching or out of step, it is tried
        #: again as long as this returns True (the cable was pulled: the driver waits for it instead of
        #: exiting).
        self.patient: Callable[[], bool] | None = None

    def _error(self) -> str:
        return ffi.string(self._err).decode(errors="replace")

    def _check(self, rc: int) -> None:
        if rc:
            raise SplitnicError(self._error())

    def _patiently(self, call: Callable[[], int]) -> None:
        """``call()`` (a write, flush or read), again while it failed because the board is silent,
        re-attaching or out of step (about to be bound again) and :attr:`patient` says to wait.  Each
        try is a whole call: the messages of a try that failed half-way go again, which rewrites the
        same bytes (writes are idempotent)."""
        waited = False
        while True:
            rc = call()
            if not rc:
                if waited:
                    log.warning("eth:%s: the board answers again", self.ifname)
                return
            if self.patient is None or not (self.silent or self.reattaching or self.out_of_step) \
                    or not self.patient():
                raise SplitnicError(self._error())
            if not waited:
                log.warning("%s; waiting for it", self._error())
                waited = True

    def _handle(self):
        if self._h is None:
            raise SplitnicError(f"the host link on {self.ifname} is closed")
        return self._h

    @property
    def window(self) -> int:
        """Value of this side's window: max-size frames the receive ring holds."""
        return lib.hl_window(self._handle())

    @property
    def mtu(self) -> int:
        """Value of this side's MTU (the asked one, capped at the interface's)."""
        return lib.hl_mtu(self._handle())

    def hello(self, timeout: float = 2.0, board_mac: bytes | None = None,
              takeover: bool = False) -> dict[str, int | str]:
        """Open (or reopen) the link: the board's Hello fields, ``board_mac`` and ``session``; starts the
        receive thread.

        Discovery first (a broadcast HELLO with flag PROBE): ``board_mac`` (6 bytes) names the board
        to bind, else exactly one may answer.  A board bound to another host is refused unless
        ``takeover``.  Then a unicast HELLO binds it in a new session.
        """
        if board_mac is not None and len(board_mac) != 6:
            raise ValueError(f"a MAC address has 6 bytes, not {len(board_mac)}")
        out = ffi.new("struct hl_board *")
        want = ffi.new("uint8_t[6]", board_mac) if board_mac is not None else ffi.NULL
        self._check(lib.hl_hello(self._handle(), int(timeout * 1000), want, int(takeover), out, self._err,
                                 _ERR_LEN))
        board: dict[str, int | str] = {name: getattr(out, name) for name in
                                       ("mtu", "window", "host_base", "host_size", "local_base", "local_size",
                                        "spec_hash", "session")}
        board["board_mac"] = bytes(out.mac).hex(":")
        log.info("host link on %s: board %s, mtu %d, window %d, local memory %#x..+%#x", self.ifname,
                 board["board_mac"], board["mtu"], board["window"], board["local_base"], board["local_size"])
        self.board = board
        return board

    def write(self, addr: int, data: bytes | memoryview) -> None:
        """Post a write of ``data`` (whole 32-bit words) at device address ``addr``."""
        buf = ffi.from_buffer(data)
        h = self._handle()
        self._patiently(lambda: lib.hl_write(h, addr, buf, len(buf), self._err, _ERR_LEN))

    def write_mirrored(self, spans: Sequence[tuple[int, int]], mirror: memoryview, mirror_base: int,
                       skip_base: int, skip_size: int) -> None:
        """Post what the CPU wrote in ``spans`` (``(device_addr, size)``, in order) of NIC-local memory, in one call.

        ``mirror`` is the host's copy of NIC-local memory, at device address
        ``mirror_base``; each span in it goes as whole words from the copy.
        Spans in ``skip_base .. + skip_size`` (host memory, which the board
        writes) need nothing; any other span refuses the call, nothing sent.
        """
        if not spans:
            return
        buf = ffi.from_buffer(mirror)
        # Two columns as arrays, which C fills from the tuples and cffi passes without a copy: cffi's own
        # conversion of a list costs twice as much per number, and a small frame's two spans are most of
        # what a TX burst costs in Python.
        addrs, sizes = zip(*spans)
        h = self._handle()
        c_addrs = ffi.from_buffer("uint64_t[]", array("Q", addrs))
        c_sizes = ffi.from_buffer("uint32_t[]", array("I", sizes))
        self._patiently(lambda: lib.hl_write_mirror_spans(h, len(spans), c_addrs, c_sizes, buf, mirror_base, len(buf),
                                                          skip_base, skip_size, self._err, _ERR_LEN))

    def write32(self, addr: int, value: int) -> None:
        """Post a write of the 32-bit word ``value`` at ``addr``."""
        self.write(addr, (value & 0xFFFF_FFFF).to_bytes(4, "little"))

    def flush(self) -> None:
        """Send the frame being filled (waiting for the board's credit if it is used up)."""
        h = self._handle()
        self._patiently(lambda: lib.hl_flush(h, self._err, _ERR_LEN))

    def read(self, addr: int, words: int = 1, timeout: float = 2.0) -> list[int]:
        """Read ``words`` 32-bit words at ``addr`` (flushes the posted writes first: they land before)."""
        out = ffi.new("uint32_t[]", max(words, 1))
        h = self._handle()
        tries = 0

        def read_once() -> int:
            # A try after the first takes the answer to the READ still on its way, if any (_hostlink.c).
            nonlocal tries
            tries += 1
            return lib.hl_read(h, addr, words, out, int(timeout * 1000), tries > 1, self._err, _ERR_LEN)
        self._patiently(read_once)
        return list(out)

    @property
    def irq(self) -> socket.socket:
        """Value of the interrupt socket: readable, one byte per IRQ message from the board."""
        return self._irq_rx

    @property
    def session(self) -> int:
        """Value of the session the link is bound in (0: not open); a re-attach draws a new one."""
        return lib.hl_session(self._handle())

    @property
    def reattaches(self) -> int:
        """Value of the sessions bound again after the board was reset: when it grows, the board lost
        NIC-local memory and its registers, and the driver must write them again."""
        return self._counters.reattaches

    @property
    def reattaching(self) -> bool:
        """Value of "the board said STALE and has not answered our new HELLO yet"."""
        return bool(lib.hl_reattaching(self._handle()))

    @property
    def out_of_step(self) -> bool:
        """Value of "the board talks but lost our numbering": the link binds it again at LINK_TIMEOUT_MS
        (it was reset while a copy of our HELLO was on its way, and no STALE comes)."""
        return bool(lib.hl_out_of_step(self._handle()))

    @property
    def silent(self) -> bool:
        """Value of "nothing came from the board for LINK_TIMEOUT_MS" (the link keeps probing)."""
        return bool(lib.hl_silent(self._handle()))

    def counters(self) -> dict[str, int]:
        """Value of every counter of the link (frames, messages, drops, gaps, resends, probes, re-attaches)."""
        c = self._counters
        return {name: getattr(c, name) for name in COUNTERS}

    def receive_frames(self, frames: list[bytes], per_block: int = 32) -> float:
        """Run Ethernet ``frames`` through the receive path as if the ring held them, ``per_block`` a
        burst; the seconds the receive path took (tests, benches: call it while the board is quiet)."""
        data = b"".join(frames)
        lens = ffi.new("uint32_t[]", [len(f) for f in frames])
        start = time.perf_counter()
        lib.hl_receive_frames(self._handle(), data, lens, len(frames), per_block)
        return time.perf_counter() - start

    def send_raw(self, frames: list[bytes]) -> int:
        """Send whole Ethernet ``frames`` as they are, in batches (a fast peer for tests and benches)."""
        data = b"".join(frames)
        lens = ffi.new("uint32_t[]", [len(f) for f in frames])
        sent = lib.hl_send_raw(self._handle(), data, lens, len(frames))
        if sent < 0:
            raise SplitnicError(f"sending raw frames on {self.ifname} failed: {ffi.errno}")
        return sent

    def fail_sends(self, count: int) -> None:
        """Make the next ``count`` frames this side sends fail locally, as a full socket would (tests)."""
        lib.hl_fail_sends(self._handle(), count)

    def close(self) -> None:
        """Stop the receive thread and close the socket (the memory is no longer written)."""
        if self._h is not None:
            lib.hl_close(self._h)
            self._h = None
            self._irq_rx.close()
            self._irq_tx.close()

    def __enter__(self) -> HostLinkPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_h", None) is not None:
            self.close()
