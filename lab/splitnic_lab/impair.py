"""An impairment stage for the ``eth`` host link: a relay between two veths that loses, duplicates,
reorders and drops chosen frames, seeded, in user space (this machine's kernel has no netem).

Ref: spec/splitnic_spec/hostlink.py (the protocol; ``decode_frame`` is what a
scripted drop looks at); packet(7) (AF_PACKET, PACKET_IGNORE_OUTGOING,
PACKET_STATISTICS); docs/hardware.md, "The eth host link".

Topology (:func:`impaired_segment` builds it in a namespace of the caller's)::

    host side                relay (this module)                 board's stand-in
    snhost ==veth== snrh  <--  AF_PACKET  -->  snrb ==veth== snboard
                       "h2b": snrh -> snrb,  "b2h": snrb -> snrh

With ``board_if`` (:func:`impaired_segment`), the board's end is an interface
that is already there, the simulated board SoC's TAP (its host-link cable):
the relay joins ``snrh`` to it, and only the host's veth pair is made.

Each direction has its own :class:`Rates` and its own random stream, drawn
from ``seed`` and the direction's name: the ``k``-th host-link frame of a
direction always gets the same fate for the same seed and rates, whatever the
timing (three draws a frame, whatever the fate).  Frames of other EtherTypes
(the namespace's own IPv6 chatter) pass untouched and draw nothing.  In that
order a host-link frame is:

* dropped by a scripted drop (:meth:`ImpairRelay.drop`): a predicate on the
  decoded host-link frame (:func:`splitnic_spec.hostlink.decode_frame`), e.g.
  "the 3rd frame from the board with messages" or "the host's next frame of
  no messages"; frames that are not host-link frames never match;
* lost (``loss``);
* duplicated (``dup``): the copy follows it at once;
* reordered (``reorder``): held back until ``reorder_depth`` later frames of
  its direction went out (or ``HOLD_S`` passed: a tail frame is late, not lost).

Whatever its fate, the relay notes what the frame's header tells (HELLOs;
``sessions``: the sessions that carried messages; how far each session's
message numbers went: :attr:`Impairment.next_message`), so a test can compare
what the board says it applied with what was sent, and count the sessions a
run needed.

Every fate is counted (:meth:`ImpairRelay.counters`), and so are the frames
the kernel dropped because the relay fell behind (``kernel_drops``: 0 in a
run whose figures mean anything).  :meth:`ImpairRelay.inject` puts a frame
of another station on the segment.

The relay runs only in a namespace made with ip-netns(8) (never the
machine's own), adds no address anywhere, and stops by itself after
``max_seconds``.  It runs in a thread of the caller (:class:`ImpairRelay`:
scripted drops take Python predicates) or, for benchmarks, in processes of
its own, one each way (:class:`RelayProcess`, ``python -m
splitnic_lab.impair``: rates only).

Its own rate, one way (``make bench BENCH=hostlink``,
``loss.relay_frames_per_s``): about 116 000 frames a second at 64 bytes and
84 000 at 1500 bytes (1 Gb/s) with a core to itself, 26 000 to 44 000 on
this shared machine under load; ``kernel_drops`` says when a run asked for
more.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

from splitnic_spec import hostlink as hl

from .netns import inside, sh

__all__ = ["Rates", "ScriptedDrop", "Impairment", "ImpairRelay", "RelayProcess", "impaired_segment",
           "DIRECTIONS", "HOLD_S", "HOST_IF", "RELAY_HOST_IF", "RELAY_BOARD_IF", "BOARD_IF"]

#: "h2b": frames from the host's side towards the board's; "b2h": the other way.
DIRECTIONS = ("h2b", "b2h")
#: Longest a reordered frame waits for later frames of its direction.
HOLD_S = 0.002
#: Interface names of :func:`impaired_segment`: the host's end, the relay's two ends, the board's end.
HOST_IF, RELAY_HOST_IF, RELAY_BOARD_IF, BOARD_IF = "snhost", "snrh", "snrb", "snboard"

_ETH_P_ALL = 0x0003
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_PACKET_IGNORE_OUTGOING = 23
_SO_RCVBUFFORCE, _SO_SNDBUFFORCE = 33, 32
_SOCKET_BYTES = 16 << 20
_BATCH = 256
_ETH_HEADER = 14
_HOSTLINK_TYPE = hl.ETHERTYPE.to_bytes(2, "big")
_FRAME = struct.Struct(hl.FRAME_HEADER.format)


@dataclass(frozen=True)
class Rates:
    """What one direction does to its frames: probabilities of loss, duplication and reordering."""
    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    #: Later frames of the direction that overtake a reordered one.
    reorder_depth: int = 3

    def __post_init__(self) -> None:
        for name in ("loss", "dup", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability 0..1, not {value!r}")
        if self.reorder_depth < 1:
            raise ValueError(f"reorder_depth must be at least 1 frame, not {self.reorder_depth}")

    @property
    def clean(self) -> bool:
        """Value of "this direction changes nothing"."""
        return not (self.loss or self.dup or self.reorder)


@dataclass
class ScriptedDrop:
    """A scripted drop: lose the ``nth`` frame (1: the next) that ``predicate`` matches, and the
    ``count - 1`` matching frames after it.  ``dropped`` holds what it dropped, decoded; ``done``
    is set once it dropped ``count`` frames."""
    predicate: Callable[[hl.Frame], bool]
    nth: int = 1
    count: int = 1
    matched: int = 0
    dropped: list[hl.Frame] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def offer(self, frame: hl.Frame) -> bool:
        """True if ``frame`` is to be dropped (and counts it)."""
        if self.done.is_set() or not self.predicate(frame):
            return False
        self.matched += 1
        if self.matched < self.nth:
            return False
        self.dropped.append(frame)
        if len(self.dropped) >= self.count:
            self.done.set()
        return True

    def wait(self, timeout: float) -> bool:
        """Whether it dropped all its frames within ``timeout`` seconds."""
        return self.done.wait(timeout)


def _decode(frame: bytes) -> hl.Frame | None:
    # A host-link frame's header and messages, or None for anything else (another EtherType, junk).
    if frame[12:14] != _HOSTLINK_TYPE:
        return None
    try:
        return hl.decode_frame(frame[_ETH_HEADER:])
    except hl.ProtocolError:
        return None


class Impairment:
    """The fate of one direction's frames: scripted drops, then loss, duplication, reordering.

    Pure (no sockets): :meth:`admit` takes each frame in the order it came and
    returns the frames to send now; :meth:`due` returns held frames whose time
    is up.  ``seed`` and ``name`` seed the direction's own random stream.
    """

    COUNTERS = ("frames", "other", "forwarded", "lost", "duplicated", "reordered", "scripted_drops", "injected",
                "hellos", "sessions")

    def __init__(self, seed: int, name: str, rates: Rates = Rates()) -> None:
        self.name = name
        self.rates = rates
        self._rng = random.Random(f"splitnic-impair:{seed}:{name}")
        self._held: list[list] = []     # [frame, frames still to overtake it, deadline]
        self._scripts: list[ScriptedDrop] = []
        self._lock = threading.Lock()   # scripts are added from other threads
        self.counts = dict.fromkeys(self.COUNTERS, 0)
        #: Per session (FrameHeader.session): one past the highest message number seen in this direction.
        self.next_message: dict[int, int] = {}
        #: The session of the last frame with messages (None before one).
        self.session: int | None = None

    def _watch(self, frame: bytes) -> None:
        # What the relay tells of the link without decoding messages (cheap enough for every frame):
        # HELLOs, the sessions they open, and how far each session's message numbers went.
        if len(frame) < _ETH_HEADER + _FRAME.size:
            return
        _version, flags, count, seq, _frame, _credit, _acked, session = _FRAME.unpack_from(frame, _ETH_HEADER)
        if flags & hl.FLAG_HELLO:
            self.counts["hellos"] += 1
        elif count:
            # A session counts once it carried messages: a HELLO sent again (or a discovery) opens none.
            if session not in self.next_message:
                self.counts["sessions"] += 1
                self.next_message[session] = 0
            self.session = session
            end = (seq + count) & 0xFFFF_FFFF
            if hl.seq_after(end, self.next_message[session]):
                self.next_message[session] = end

    def add_script(self, script: ScriptedDrop) -> ScriptedDrop:
        """Arm ``script`` for the frames from now on."""
        with self._lock:
            self._scripts.append(script)
        return script

    def _scripted(self, frame: bytes) -> bool:
        with self._lock:
            scripts = [s for s in self._scripts if not s.done.is_set()]
            self._scripts = scripts
        if not scripts:
            return False
        decoded = _decode(frame)
        if decoded is None:
            return False
        # Every script sees every frame until one drops it, so "the next frame with ANSWER" counts true to its word.
        return any(s.offer(decoded) for s in scripts)

    def admit(self, frame: bytes, now: float) -> list[bytes]:
        """The frames to send now that ``frame`` came (it may be among them, twice, or held or dropped)."""
        if frame[12:14] != _HOSTLINK_TYPE:
            # Not the link's (the namespace's own IPv6 chatter): it passes, draws nothing from the random
            # stream and overtakes no held frame, so that the k-th host-link frame's fate stays the seed's.
            self.counts["other"] += 1
            return [frame]
        self.counts["frames"] += 1
        self._watch(frame)
        if self._scripts and self._scripted(frame):
            self.counts["scripted_drops"] += 1
            return self._overtake([])
        rates = self.rates
        if rates.clean:
            return self._overtake([frame])
        lose, dup, reorder = self._rng.random(), self._rng.random(), self._rng.random()
        if lose < rates.loss:
            self.counts["lost"] += 1
            return self._overtake([])
        out = [frame]
        if dup < rates.dup:
            self.counts["duplicated"] += 1
            out.append(frame)
        if reorder < rates.reorder:
            self.counts["reordered"] += 1
            released = self._overtake([])
            self._held.append([out, rates.reorder_depth, now + HOLD_S])
            return released
        return self._overtake(out)

    def _overtake(self, out: list[bytes]) -> list[bytes]:
        # ``out`` goes now; held frames that it overtook enough times go after it.
        if self._held and out:
            keep = []
            for entry in self._held:
                entry[1] -= 1
                if entry[1] <= 0:
                    out += entry[0]
                else:
                    keep.append(entry)
            self._held = keep
        self.counts["forwarded"] += len(out)
        return out

    def due(self, now: float) -> list[bytes]:
        """Held frames whose wait is over (nothing came to overtake them)."""
        out: list[bytes] = []
        if self._held:
            keep = []
            for entry in self._held:
                if entry[2] <= now:
                    out += entry[0]
                else:
                    keep.append(entry)
            self._held = keep
            self.counts["forwarded"] += len(out)
        return out

    def next_deadline(self) -> float | None:
        """When the first held frame is due, if any."""
        return min((e[2] for e in self._held), default=None)


def _in_named_netns() -> bool:
    # A namespace made with ip-netns(8), as the tests and benches make theirs: never the machine's own.
    here = os.stat("/proc/thread-self/ns/net")
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return False
    for name in names:
        try:
            st = os.stat(f"/run/netns/{name}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino):
            return True
    return False


def _open(ifname: str, receive: bool = True) -> socket.socket:
    # ``receive`` False: a socket only to send from (protocol 0 takes in nothing).
    protocol = _ETH_P_ALL if receive else 0
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(protocol))
    try:
        try:
            sock.bind((ifname, protocol))
        except OSError as err:
            raise RuntimeError(f"no interface {ifname!r} to relay in this network namespace ({err.strerror})") \
                from None
        # Only what arrives on the interface: not the frames the relay itself sends out of it.
        sock.setsockopt(_SOL_PACKET, _PACKET_IGNORE_OUTGOING, 1)
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _SOCKET_BYTES)
        sock.setsockopt(socket.SOL_SOCKET, _SO_SNDBUFFORCE, _SOCKET_BYTES)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _kernel_drops(sock: socket.socket) -> int:
    # struct tpacket_stats {tp_packets, tp_drops}; reading clears it.
    return struct.unpack("II", sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 8))[1]


class ImpairRelay:
    """The relay between ``host_if`` and ``board_if`` (interfaces of the namespace this thread is in).

    ``seed``: the random streams' seed; ``h2b``, ``b2h``: each direction's
    :class:`Rates` to start with (:meth:`set_rates` changes them);
    ``max_seconds``: it stops by itself after this long; ``directions``: the
    directions it relays (the other one is left to another relay: a process
    each, for speed).  :meth:`start` runs it in a thread; the context manager
    starts and stops it.
    """

    def __init__(self, host_if: str = RELAY_HOST_IF, board_if: str = RELAY_BOARD_IF, *, seed: int,
                 h2b: Rates = Rates(), b2h: Rates = Rates(), max_seconds: float = 600.0,
                 directions: tuple[str, ...] = DIRECTIONS) -> None:
        if not _in_named_netns():
            raise RuntimeError("the impairment relay runs only in a network namespace of the test's own "
                               "(ip netns add), never in the machine's root namespace")
        self.seed = seed
        self.max_seconds = max_seconds
        self.directions = tuple(self._check(d) for d in directions)
        # A frame taken in on one side leaves on the other; "h2b" comes in on the host's side.
        self._socks = {"h2b": _open(host_if, "h2b" in self.directions)}
        try:
            self._socks["b2h"] = _open(board_if, "b2h" in self.directions)
        except BaseException:
            self._socks["h2b"].close()
            raise
        self._out = {"h2b": self._socks["b2h"], "b2h": self._socks["h2b"]}
        self.ways = {"h2b": Impairment(seed, "h2b", h2b), "b2h": Impairment(seed, "b2h", b2h)}
        self._kernel_drops = dict.fromkeys(DIRECTIONS, 0)
        self._send_errors = dict.fromkeys(DIRECTIONS, 0)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stop = False
        self._thread: threading.Thread | None = None
        self.stopped_by_deadline = False

    # ------------------------------------------------------------------ control
    def set_rates(self, direction: str, rates: Rates) -> None:
        """Change ``direction``'s rates from its next frame on."""
        self.ways[self._check(direction)].rates = rates

    def clean(self) -> None:
        """Stop impairing both ways (scripted drops still armed stay armed)."""
        for way in self.ways.values():
            way.rates = Rates()

    def drop(self, direction: str, predicate: Callable[[hl.Frame], bool], nth: int = 1,
             count: int = 1) -> ScriptedDrop:
        """Drop the ``nth`` host-link frame of ``direction`` (from now on) that ``predicate`` matches, and
        the ``count - 1`` matching ones after it; returns the :class:`ScriptedDrop` to wait on."""
        if nth < 1 or count < 1:
            raise ValueError(f"nth and count must be at least 1, not {nth} and {count}")
        return self.ways[self._check(direction)].add_script(ScriptedDrop(predicate, nth, count))

    def inject(self, direction: str, frame: bytes) -> None:
        """Put ``frame`` (a whole Ethernet frame) on the segment towards ``direction``'s receiver, as
        another station would: it passes no impairment."""
        self._out[self._check(direction)].send(frame)
        self.ways[direction].counts["injected"] += 1

    def counters(self) -> dict[str, dict[str, int]]:
        """What each direction did: its :attr:`Impairment.COUNTERS`, ``kernel_drops`` (frames the kernel
        dropped because the relay fell behind) and ``send_errors``."""
        self._collect_kernel_drops()
        return {d: dict(self.ways[d].counts, kernel_drops=self._kernel_drops[d], send_errors=self._send_errors[d])
                for d in DIRECTIONS}

    @staticmethod
    def _check(direction: str) -> str:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
        return direction

    def _collect_kernel_drops(self) -> None:
        for d, sock in self._socks.items():
            if sock.fileno() >= 0 and d in self.directions:
                self._kernel_drops[d] += _kernel_drops(sock)

    # ------------------------------------------------------------------ running
    def start(self) -> "ImpairRelay":
        """Relay in a thread until :meth:`stop` or ``max_seconds``."""
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(target=self.run, name="impair-relay", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop relaying (a held frame is dropped with the relay) and close the sockets."""
        if self._socks["h2b"].fileno() < 0:
            return                      # stopped already
        self._stop = True
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._collect_kernel_drops()
        for sock in self._socks.values():
            sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> "ImpairRelay":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _send(self, direction: str, frames: list[bytes]) -> None:
        out = self._out[direction]
        for f in frames:
            try:
                out.send(f)
            except BlockingIOError:
                # The far end's queue is full: that is a loss on the cable too, but counted apart.
                self._send_errors[direction] += 1
            except OSError:
                self._send_errors[direction] += 1

    def run(self) -> None:
        """The relay loop (:meth:`start` runs it in a thread)."""
        poll = select.poll()
        fds = {}
        for d in self.directions:
            poll.register(self._socks[d], select.POLLIN)
            fds[self._socks[d].fileno()] = d
        poll.register(self._wake_r, select.POLLIN)
        end = time.monotonic() + self.max_seconds
        ways = self.ways
        while not self._stop:
            now = time.monotonic()
            if now >= end:
                self.stopped_by_deadline = True
                break
            deadlines = [t for t in (w.next_deadline() for w in ways.values()) if t is not None]
            wait = min([end - now, 0.1] + [max(0.0, t - now) for t in deadlines])
            for fd, _events in poll.poll(wait * 1000):
                d = fds.get(fd)
                if d is None:
                    continue
                sock, way = self._socks[d], ways[d]
                for _ in range(_BATCH):
                    try:
                        frame = sock.recv(65536)
                    except BlockingIOError:
                        break
                    out = way.admit(frame, now)
                    if out:
                        self._send(d, out)
            now = time.monotonic()
            for d, way in ways.items():
                if way._held:
                    out = way.due(now)
                    if out:
                        self._send(d, out)


class RelayProcess:
    """:class:`ImpairRelay` in processes of its own (``python -m splitnic_lab.impair``), one per direction so
    that each has a core when the machine has them, inside ``netns``: rates only (no scripted drops),
    controlled through their stdin."""

    def __init__(self, netns: str, *, seed: int, host_if: str = RELAY_HOST_IF, board_if: str = RELAY_BOARD_IF,
                 max_seconds: float = 600.0) -> None:
        self.procs: dict[str, subprocess.Popen] = {}
        try:
            for d in DIRECTIONS:
                cmd = ["ip", "netns", "exec", netns, sys.executable, "-m", "splitnic_lab.impair", host_if,
                       board_if, "--seed", str(seed), "--max-seconds", str(max_seconds), "--direction", d]
                self.procs[d] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                 stderr=subprocess.PIPE, text=True,
                                                 env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
            for d in DIRECTIONS:
                self._ask(d, "counters")      # answered once it relays
        except BaseException:
            self.stop()
            raise

    def _ask(self, direction: str, line: str) -> dict:
        proc = self.procs[direction]
        assert proc.stdin and proc.stdout
        try:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            answer = proc.stdout.readline()
        except OSError:
            answer = ""
        if not answer:
            status = proc.wait(10)
            error = proc.stderr.read().strip() if proc.stderr else ""
            raise RuntimeError(f"the relay process for {direction} ended (status {status}): {error}")
        return json.loads(answer)[direction]

    def set_rates(self, direction: str, rates: Rates) -> None:
        """Change ``direction``'s rates from its next frame on."""
        if direction not in self.procs:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
        self._ask(direction, f"rates {direction} {json.dumps(asdict(rates))}")

    def clean(self) -> None:
        """Stop impairing both ways."""
        for d in DIRECTIONS:
            self.set_rates(d, Rates())

    def counters(self) -> dict[str, dict[str, int]]:
        """The relay's :meth:`ImpairRelay.counters`."""
        return {d: self._ask(d, "counters") for d in DIRECTIONS}

    def stop(self) -> dict[str, dict[str, int]]:
        """Stop it; returns its last counters (a direction whose process had ended already: none)."""
        last = {}
        for d, proc in self.procs.items():
            try:
                last[d] = self._ask(d, "quit")
            except (RuntimeError, ValueError):
                pass
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return last

    def __enter__(self) -> "RelayProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def impaired_segment(netns: str, mtu: int = hl.MTU_STANDARD, board_if: str | None = None) -> Iterator[None]:
    """Make the two veth pairs of the module's topology in ``netns`` (which the caller made and deletes),
    all up at ``mtu``, the relay's ends without IPv6 (they must not add frames of their own).

    ``board_if``: an interface of ``netns`` that is already the board's cable (the simulated SoC's
    TAP): only the host's pair is made, and the relay's board end is ``board_if`` itself
    (``ImpairRelay(RELAY_HOST_IF, board_if, ...)``); the host's end is without IPv6 too, so that
    nothing but the host link's frames goes to the board that way.  ``board_if`` keeps its MTU."""
    sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", RELAY_HOST_IF, netns=netns)
    if board_if is None:
        sh("ip", "link", "add", BOARD_IF, "type", "veth", "peer", "name", RELAY_BOARD_IF, netns=netns)
        quiet, made = (RELAY_HOST_IF, RELAY_BOARD_IF), (HOST_IF, RELAY_HOST_IF, RELAY_BOARD_IF, BOARD_IF)
    else:
        quiet, made = (RELAY_HOST_IF, HOST_IF), (HOST_IF, RELAY_HOST_IF)
    for ifname in quiet:
        sh("sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=1", netns=netns)
    for ifname in made:
        sh("ip", "link", "set", ifname, "mtu", str(mtu), "up", netns=netns)
    yield


def main(argv: list[str] | None = None) -> int:
    """``python -m splitnic_lab.impair HOST_IF BOARD_IF --seed N``: relay until stdin says ``quit`` or closes.

    Lines on stdin, each answered with one JSON line (the counters):
    ``rates DIRECTION {"loss": .., "dup": .., "reorder": .., "reorder_depth": ..}``, ``counters``, ``quit``.
    """
    parser = argparse.ArgumentParser(prog="python -m splitnic_lab.impair", description=__doc__.split("\n")[0])
    parser.add_argument("host_if")
    parser.add_argument("board_if")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--direction", choices=DIRECTIONS, action="append",
                        help="relay only this direction (again for both; default both)")
    args = parser.parse_args(argv)
    try:
        relay = ImpairRelay(args.host_if, args.board_if, seed=args.seed, max_seconds=args.max_seconds,
                            directions=tuple(args.direction or DIRECTIONS))
    except (OSError, RuntimeError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    relay.start()
    # Bounded whatever its parent does: past its deadline the relay stops, and the process soon after.
    watchdog = threading.Timer(args.max_seconds + 2, os._exit, (0,))
    watchdog.daemon = True
    watchdog.start()
    try:
        for line in sys.stdin:
            words = line.split(maxsplit=2)
            if not words:
                continue
            try:
                if words[0] == "rates" and len(words) == 3:
                    relay.set_rates(words[1], Rates(**json.loads(words[2])))
                elif words[0] == "quit":
                    break
                elif words[0] != "counters":
                    raise ValueError("commands are: rates DIRECTION {json}, counters, quit")
            except (ValueError, TypeError) as err:
                print(f"{parser.prog}: error: {line.strip()!r}: {err}", file=sys.stderr)
                return 1
            print(json.dumps(relay.counters()), flush=True)
    finally:
        counters = relay.counters()
        relay.stop()
    print(json.dumps(counters), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
