"""A stand-in for the board on the ``eth`` host link: the software NIC speaking the board's side of the protocol.

Ref: spec/splitnic_spec/hostlink.py, module docstring (the protocol);
sim/splitnic_sim/hostlink_standin.c (the board side, in C, in a thread of its
own that sleeps in ppoll() when idle); sim/splitnic_sim/softnic.c (the NIC
model it serves); spec/splitnic_spec/board.py (the address map it keeps).

Put it on one end of a veth pair, in a network namespace of its own, and the
host side (``--link eth:IFNAME``) on the other end, to measure the host side
at line rate without a board::

    ip netns add board
    ip link add hl0 type veth peer name hl1 netns board
    ip link set hl0 up; ip -n board link set hl1 up
    ip netns exec board .venv/bin/python -m splitnic_sim.hostlink_standin hl1 --wire tap:snicw0

Sessions as the board keeps them: it answers a discovery HELLO (flag PROBE)
from anyone and changes nothing (flag BOUND when bound to another station);
a HELLO request addressed to it binds it to the sender and the request's
session (unbound, the same station, or flag TAKEOVER) and restarts the
numbering both ways; its answer carries the board's Hello (mtu, window, the
host window ``HOST_WINDOW_BASE``.., NIC-local memory ``DMA_RAM_BASE``.. of
``--local-size`` bytes).  Bound, it takes frames only from that station in
that session: another station's are dropped and counted as foreign, its
station's of another session are answered with STALE, as is every frame while
it is unbound (after :meth:`HostLinkStandIn.reset_board`, or SIGUSR1 to the
command).  Its address is its interface's.

The host's WRITEs land, in order, in NIC-local memory or the NIC's register
window at ``NIC_CSR_BASE`` (so a doorbell lands after the descriptors before
it); anything else is skipped and counted, as by the board's decoder.  READs
of the registers, NIC-local memory or the link's counters (``BoardCounters``
at ``COUNTERS_BASE``) are answered.  A gap in the host's messages is NAKed
and every frame after it dropped until the missing message comes again; a
frame sent again is dropped whole and acknowledged at once; a frame beyond
the credit granted is an overrun (dropped, counted, NAKed).

The model's DMA writes into host memory (RX data, RX and TX completions) leave
as WRITE messages, widened to whole words as the DMA engines move them (a
completion is one 16-byte WRITE whose PHASE word is last), batched into
frames up to the host's mtu and sent at the end of each model step; interrupt
rises leave as IRQ messages.  Each frame stays in a replay buffer of
``replay`` frames (4, the board's, one of them the frame being built) until
the host acknowledges it, and is sent again (go-back-N) on a NAK or when the
host's acked did not move for ``RESEND_US``, the first frame then with flag
PROBE (a frame of no messages if credit lets none go), so that the host
answers at once with its acked and credit.  While the replay buffer is full
the model stops, so its wire input backs up as the board's receive FIFO
would.  As on the board, the model reads only NIC-local memory: a descriptor
ring or TX buffer in host memory is a DMA error (``dma_errors``).  The board's
own limits (a replay buffer of 4 frames, 4 frames of credit, 1500-byte
frames) are ``--replay 4 --window 4 --mtu 1500``; benchmarks of the host side
lift them with larger values.

The NIC's own wire is the model's: ``none`` (mailboxes: :meth:`HostLinkStandIn.inject`,
``.nic.sent()``, :meth:`HostLinkStandIn.generate` for benchmarks) or ``tap:NAME``.
Loss tests: :meth:`HostLinkStandIn.drop_sent` and :meth:`HostLinkStandIn.drop_received`
lose one frame as a cable would.

The command runs until SIGINT/SIGTERM (SIGUSR1 resets the board) and prints
one line saying what it serves; it needs root (a raw socket) and exits with a
one-line error when IFNAME does not exist in its network namespace.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import sys
import threading
import time

from splitnic.errors import SplitnicError
from splitnic_spec import CSR_MAP
from splitnic_spec.board import DMA_RAM_BASE, DMA_RAM_SIZE, NIC_CSR_BASE
from splitnic_spec.hostlink import (ETHERTYPE, HOST_WINDOW_BASE, HOST_WINDOW_SIZE, MTU_JUMBO, MTU_STANDARD,
                                    RESEND_US)

from .softnic import CSR_WINDOW, SoftNic

log = logging.getLogger(__name__)

__all__ = ["HostLinkStandIn", "main"]

#: Frames the stand-in takes from the host before it must grant more (its Hello.window).
DEFAULT_WINDOW = 64
#: Frames of the replay buffer, the one being built included (the board's ring: 3 may be unacknowledged).
DEFAULT_REPLAY = 4
#: Socket options beyond a user's limits (socket(7)); root may set them.
_SO_SNDBUFFORCE, _SO_RCVBUFFORCE = 32, 33


def _open_port(ifname: str, mtu: int, window: int) -> socket.socket:
    """A raw socket for host-link frames on ``ifname``, with room for ``window`` frames of ``mtu``."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    except PermissionError:
        raise SplitnicError("the host-link stand-in needs a raw socket: run it as root") from None
    try:
        sock.bind((ifname, ETHERTYPE))
    except OSError as err:
        sock.close()
        if err.errno in (errno.ENODEV, errno.ENXIO, errno.EINVAL):
            raise SplitnicError(f"no network interface {ifname!r} in this network namespace: name one end of "
                                "a veth pair (ip link add hl0 type veth peer name hl1)") from None
        raise SplitnicError(f"cannot listen on {ifname!r}: {err.strerror}") from None
    # The board side takes every frame at once, so it grants a whole window ahead: the socket
    # must hold a window of full frames (and their kernel overhead) between two of its passes.
    room = max(4 << 20, 2 * window * (mtu + 1024))
    for force, plain in ((_SO_RCVBUFFORCE, socket.SO_RCVBUF), (_SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, room)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, plain, room)
    return sock


class HostLinkStandIn:
    """The board's side of the eth host link on ``ifname``, around a :class:`SoftNic` (``.nic``).

    ``local_size``: bytes of NIC-local memory at ``DMA_RAM_BASE`` (the board has
    ``DMA_RAM_SIZE``; larger for benchmarks with deep rings).  ``wire``: the
    NIC's wire, ``none`` (mailboxes) or ``tap:NAME``.  ``mtu``: the largest
    frame (after the Ethernet header) it takes, ``window``: frames it buffers;
    both go in its Hello.  ``replay``: frames of its replay buffer, the one
    being built included, so ``replay - 1`` may wait for the host's
    acknowledgement (the board's ring has ``DEFAULT_REPLAY``).
    ``resend_us``: its resend period.  ``build_id``: the model's ID_BUILD.
    ``wire_slots``: sent frames the model keeps for ``nic.sent()`` (wire ``none``).

    Create it inside the network namespace of ``ifname`` (its sockets stay
    there).  :meth:`start` runs it in a thread; the context manager starts it
    and closes it.
    """

    def __init__(self, ifname: str, *, local_size: int = DMA_RAM_SIZE, wire: str = "none", mtu: int = MTU_STANDARD,
                 window: int = DEFAULT_WINDOW, replay: int = DEFAULT_REPLAY, resend_us: int = RESEND_US,
                 build_id: int = 0, wire_slots: int = 256) -> None:
        if not MTU_STANDARD <= mtu <= MTU_JUMBO:
            raise SplitnicError(f"mtu must be {MTU_STANDARD}..{MTU_JUMBO}, not {mtu}")
        if not 2 <= window <= 0x7FFF:
            raise SplitnicError(f"window must be 2..32767 frames, not {window}")
        if not 2 <= replay <= 0x7FFF:
            raise SplitnicError(f"replay must be 2..32767 frames, not {replay}")
        if not 1 <= resend_us <= 10_000_000:
            raise SplitnicError(f"resend_us must be 1..10000000 microseconds, not {resend_us}")
        if local_size <= 0 or local_size % 4 or DMA_RAM_BASE + local_size > NIC_CSR_BASE:
            raise SplitnicError(f"local_size must be a positive multiple of 4 up to {NIC_CSR_BASE - DMA_RAM_BASE:#x} "
                                f"(NIC-local memory ends below the registers), not {local_size:#x}")
        self.ifname = ifname
        self.mtu, self.window, self.replay, self.local_size, self.wire = mtu, window, replay, local_size, wire
        self._sock = _open_port(ifname, mtu, window)
        self.mac: bytes = self._sock.getsockname()[4]
        try:
            self.nic = SoftNic(dma_size=local_size, dma_base=DMA_RAM_BASE, wire=wire, build_id=build_id,
                               irq_socket=False, wire_slots=wire_slots)
        except BaseException:
            self._sock.close()
            raise
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        ffi, lib = self.nic.ffi, self.nic.lib
        t = ffi.new("struct standin *")
        t.nic = self.nic.s
        t.sock = self._sock.fileno()
        t.wake_fd = self._wake
        t.mac = list(self.mac)
        t.csr_base, t.csr_size = NIC_CSR_BASE, CSR_WINDOW
        t.mtu, t.window, t.replay, t.resend_us = mtu, window, replay, resend_us
        if lib.standin_init(t) < 0:
            self._close_fds()
            raise MemoryError("the host-link stand-in could not allocate its frame buffers")
        self._t = t
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ running
    def start(self) -> "HostLinkStandIn":
        """Serve the link in a thread (the C loop releases the GIL)."""
        if self._thread is None:
            self._t.stop = 0
            self._thread = threading.Thread(target=self.nic.lib.standin_run, args=(self._t,),
                                            name=f"hostlink-standin-{self.ifname}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (the state stays: :meth:`start` goes on)."""
        if self._thread is not None:
            self._t.stop = 1
            self._kick()
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Stop, and release the socket, the model and its memory."""
        self.stop()
        if self._t is not None:
            self.nic.lib.standin_free(self._t)
            self._t = None
            self.nic.close()
            self._close_fds()

    def _close_fds(self) -> None:
        self._sock.close()
        os.close(self._wake)

    def __enter__(self) -> "HostLinkStandIn":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _kick(self) -> None:
        """Wake the loop now rather than at its next idle poll."""
        os.eventfd_write(self._wake, 1)

    # ------------------------------------------------------------------ what it saw
    def counters(self) -> dict[str, int]:
        """Value of the stand-in's counters (frames_in, messages_in, ..., see hostlink_standin.c), and the
        model's ``dma_errors`` (descriptors or buffers outside NIC-local memory) and ``wire_frames``."""
        c = self._t.c
        out = {name: getattr(c, name) for name, _ in self.nic.ffi.typeof("struct standin_counters").fields}
        out["dma_errors"] = self.nic.s.dma_errors
        out["wire_frames"] = self.nic.s.wire_frames
        return out

    @property
    def host_mac(self) -> bytes | None:
        """Value of the address of the host it is bound to (None: unbound)."""
        return bytes(self._t.host_mac) if self._t.bound else None

    @property
    def session(self) -> int | None:
        """Value of the session it is bound to (None: unbound)."""
        return self._t.session if self._t.bound else None

    # ------------------------------------------------------------------ the board's reset
    def reset_board(self, timeout: float = 2.0) -> None:
        """Reset the board as its reset button or a power cycle would, and return when it is done.

        The board forgets its session (it starts unbound and answers the host's
        next frame with STALE), the NIC model is reset (registers, queues; the
        PHY's LINK stays, NIC-local memory keeps what it held) and the link's
        counters read 0 (``resets`` counts on).
        """
        if self._thread is None:
            self.nic.lib.standin_reset(self._t)
            return
        before = self._t.c.resets
        self._t.reset_request = 1
        self._kick()
        end = time.monotonic() + timeout
        while self._t.c.resets == before:
            if time.monotonic() > end:
                raise SplitnicError(f"the stand-in did not reset within {timeout} s")
            time.sleep(0.001)

    def host_view(self, device_addr: int, size: int) -> bytes:
        """Value of host memory at ``device_addr`` as the model wrote it (its copy of what it sent)."""
        s = self.nic.s
        if not s.host_size or device_addr < s.host_base or device_addr + size > s.host_base + s.host_size:
            raise ValueError(f"{device_addr:#x}+{size} is outside the host memory of the host's Hello "
                             f"({s.host_base:#x}+{s.host_size:#x})")
        return bytes(self.nic.ffi.buffer(s.host + (device_addr - s.host_base), size))

    # ------------------------------------------------------------------ the NIC's wire
    def inject(self, frame: bytes) -> bool:
        """Put a frame on the NIC's wire towards its RX path (wire ``none``); False if the inbox is full."""
        ok = self.nic.inject(frame)
        self._kick()
        return ok

    def generate(self, frame: bytes, count: int = -1, queue: int = 0) -> None:
        """Feed ``frame`` into the RX path ``count`` times (-1: forever) whenever ``queue`` has a buffer posted."""
        self.nic.generate(frame, count, queue)
        self._kick()

    # ------------------------------------------------------------------ loss knobs
    def drop_sent(self, nth: int = 1) -> None:
        """Lose the ``nth`` frame of messages the stand-in sends from now on (1: the next), as a cable would.

        Frames of no messages (acknowledgements, grants) are not counted: losing one loses nothing.
        """
        self._t.drop_out_nth = nth

    def drop_received(self, nth: int = 1) -> None:
        """Lose the ``nth`` frame the stand-in receives from now on (1: the next), as a cable would."""
        self._t.drop_in_nth = nth


def main(argv: list[str] | None = None) -> int:
    """``python -m splitnic_sim.hostlink_standin IFNAME``: serve the board's side of the link until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m splitnic_sim.hostlink_standin",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("ifname", help="the interface the host's frames arrive on (one end of a veth pair)")
    parser.add_argument("--wire", default="none", help="the NIC's wire: tap:NAME, or none (default)")
    parser.add_argument("--local-size", type=int, default=DMA_RAM_SIZE,
                        help="bytes of NIC-local memory (default %(default)s, the board's)")
    parser.add_argument("--mtu", type=int, default=MTU_STANDARD,
                        help=f"largest host-link frame it takes, {MTU_STANDARD}..{MTU_JUMBO} (default %(default)s)")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                        help="frames it buffers: the host's credit (default %(default)s)")
    parser.add_argument("--replay", type=int, default=DEFAULT_REPLAY,
                        help="frames of its replay buffer, the one being built included (default %(default)s, "
                             "the board's)")
    parser.add_argument("--link-up", action="store_true", help="set LINK = up, 1000 Mb/s, full duplex")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        standin = HostLinkStandIn(args.ifname, local_size=args.local_size, wire=args.wire, mtu=args.mtu,
                                  window=args.window, replay=args.replay)
    except SplitnicError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    if args.link_up:
        link = CSR_MAP.register("LINK")
        standin.nic.write_reg(link.offset, link.pack(UP=1, SPEED=link.field("SPEED").value("1000"), FULL_DUPLEX=1))
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    resets = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: resets.set())
    with standin:
        mac = standin.mac.hex(":")
        print(f"hostlink stand-in on {args.ifname} ({mac}): registers at {NIC_CSR_BASE:#x}, NIC-local memory "
              f"{DMA_RAM_BASE:#x}+{args.local_size:#x}, host window {HOST_WINDOW_BASE:#x}+{HOST_WINDOW_SIZE:#x}, "
              f"wire {args.wire}, mtu {args.mtu}; use --link eth:<the veth peer>", flush=True)
        # The signal handlers only set events: the reset itself waits for the stand-in's thread.
        while not done.wait(0.05):
            if resets.is_set():
                resets.clear()
                standin.reset_board()
                print("board reset: the session is forgotten, the NIC reset", flush=True)
        log.info("%s", " ".join(f"{k}={v}" for k, v in standin.counters().items() if v))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
