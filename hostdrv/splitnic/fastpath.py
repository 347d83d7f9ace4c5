"""Fast-path applications: steering rules on the NIC and the queues they fill.

Ref: docs/architecture.md, "Queues and steering"; docs/registers.md,
STEER (generated from splitnic_spec.nic); rule syntax in :mod:`splitnic.rules`.

An application owns the RX queue its rules name (``udp dport 9000 -> echo``)
and reads zero-copy packet views from it; the applications in this process
transmit on the fast-path TX queue, the NIC's last (TX queue 0 carries the
kernel's frames).  Frames no rule claims go to RX queue 0, the kernel's, so
the host keeps ARP, ping and ssh.

Applications in processes of their own (:func:`splitnic.attach`) get an RX
queue and a TX queue each from the same tables (:meth:`FastPath.reserve`,
:meth:`FastPath.drop`); the primary's :mod:`splitnic.app_server` sets their
rings up and hands them over.

An application is written once, for either place: a callable
``handler(batch, app)`` that takes an :class:`~splitnic.rx_batch.RxBatch` and
answers with ``app.send(frames)`` or ``app.forward(batch)``.
``splitnic up --fast 'udp dport 9000 -> package.module:handler'`` runs it
here (:func:`load_handler`); ``splitnic.attach(...).run(handler)`` in its own
process.

Threading: the driver is not thread-safe (one link, one request stream), so
run applications and the kernel tunnel's pump from one loop —
:class:`splitnic.kernel_path.Tunnel` steps the pump and calls
:meth:`FastPath.poll` in the same thread (see ``splitnic up --fast``).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence

from splitnic_spec import CSR_MAP, constant

from .errors import SplitnicError
from .nic import Nic, RxQueue, TxQueue
from .rules import KERNEL, Rule, RuleError, RuleSet, parse_rule
from .rx_batch import RxBatch

__all__ = ["App", "AppPort", "FastPath", "fast_tx_queue", "load_handler", "BatchHandler"]

log = logging.getLogger(__name__)

_KERNEL_QUEUE = constant("KERNEL_QUEUE")
_STEER = CSR_MAP.array("STEER")
_RXQ = CSR_MAP.array("RXQ")


def fast_tx_queue(nic: Nic) -> int:
    """The TX queue every fast-path application sends on: the NIC's last (queue 0 is the kernel's)."""
    return nic.num_tx_queues - 1


class AppPort(Protocol):
    """What an application handler is given, in ``splitnic up`` (:class:`App`) or in its own process
    (:class:`splitnic.app_client.Attached`)."""
    name: str

    def rx_batch(self, max_frames: int = 64) -> RxBatch:
        """Frames steered to the application, zero-copy; never blocks."""

    def send(self, frames: Sequence) -> int:
        """Send frames (bytes-like, Packets or TxBuffers); returns how many were taken."""

    def forward(self, batch: RxBatch, *, upto: int | None = None) -> int:
        """Send a batch's frames (rewritten in place, perhaps), buffer to buffer in C."""


@dataclass
class App:
    """One application's queue pair: its own RX queue, the shared fast-path TX queue."""
    name: str
    queue: int
    rx: RxQueue
    tx: TxQueue
    nic: Nic

    def rx_burst(self, max_frames: int = 32) -> list:
        """Zero-copy packet views steered to this application (release each when done)."""
        return self.rx.rx_burst(max_frames)

    def rx_batch(self, max_frames: int = 32) -> RxBatch:
        """The same frames as one :class:`~splitnic.rx_batch.RxBatch`: no object per frame, one release."""
        return self.rx.rx_batch(max_frames)

    def tx_burst(self, frames: Sequence[bytes | bytearray | memoryview]) -> int:
        """Send frames on the fast-path TX queue; returns how many were taken."""
        return self.tx.tx_burst(frames)

    send = tx_burst

    def forward(self, batch: RxBatch, *, upto: int | None = None) -> int:
        """Send the first ``upto`` (all) frames of ``batch`` on the fast-path TX queue, copied in C."""
        return self.tx.forward(batch, upto=upto)

    def counters(self) -> dict[str, int]:
        """This application's RX queue counters: packets, bytes, drops (from the NIC)."""
        bus = self.nic.link.bus
        return {name.lower(): bus.read32(_RXQ.offset(self.queue, name)) for name in ("PACKETS", "BYTES", "DROPS")}


class FastPath:
    """The rules in force on one NIC and the applications they feed.

    Rules are written to the NIC's steering table in order (entry ``i`` holds
    rule ``i``; the lowest matching entry wins).  Adding or removing a rule
    rewrites only the entries that change, each disabled before its match
    values change, so traffic keeps flowing: a frame meanwhile matches either
    the old or the new rule, or none (then it goes to the kernel), and is
    never dropped.
    """

    def __init__(self, nic: Nic, rules: Iterable[Rule | str] = (), *, ring_log2: int = 8) -> None:
        self.nic = nic
        self.ring_log2 = ring_log2
        self.tx_queue = fast_tx_queue(nic)
        self.rules = RuleSet(capacity=nic.num_steer_entries, rx_queues=nic.num_rx_queues)
        self.apps: dict[str, App] = {}
        #: Applications in other processes: name -> TX queue (their RX queue is in rules.app_queues).
        self.remote: dict[str, int] = {}
        self._tx: TxQueue | None = None
        self._written: list[dict[str, int]] = []
        self._handlers: list[tuple[App, Callable[[App], int]]] = []
        #: Called after every change of the table, whoever made it (ethtool -n follows it:
        #: splitnic.rule_ethtool).
        self.on_change: list[Callable[[], None]] = []
        for rule in rules:
            self.add(rule)

    def add(self, rule: Rule | str) -> int:
        """Add a rule at the end (lowest priority); returns its steering entry.

        Raises :class:`splitnic.rules.RuleError` when the table is full or the
        NIC has no RX queue left for a new application.
        """
        if isinstance(rule, str):
            rule = parse_rule(rule)
        index = self.rules.add(rule)
        if rule.target != KERNEL and rule.target not in self.remote and rule.target not in self.apps:
            try:
                self.app(rule.target)
            except BaseException:
                self.rules.forget(rule.target)
                raise
        self._write_table()
        log.info("rule %d: %s", index, self.rules.rules[index])
        return index

    def remove(self, index: int) -> Rule:
        """Remove rule ``index``; later rules move up one entry."""
        rule = self.rules.remove(index)
        self._write_table()
        log.info("removed rule %d: %s", index, rule)
        return rule

    def retire(self, name: str) -> None:
        """Stop application ``name`` inside ``splitnic up`` once no rule steers to it: its handler
        stops, its RX queue is quiesced and freed, and the queue number is free for the next
        application (one that ``ethtool -N`` made, :mod:`splitnic.rule_ethtool`)."""
        if self.rules.steers_to(name):
            raise RuleError(f"application {name!r} still has rules; remove them first")
        app = self.apps.pop(name, None)
        if app is None:
            return
        self._handlers = [(a, h) for a, h in self._handlers if a is not app]
        try:
            app.rx.ring.quiesce()         # the NIC lets go of its buffers before they are freed
        except SplitnicError as err:
            log.warning("%s: %s", app.rx.ring.name, err)
        app.rx.close()
        self.rules.forget(name)
        log.info("application %s stopped: no rule steers to it; RX queue %d is free", name, app.queue)

    def listing(self) -> list[tuple[int, Rule, int, int]]:
        """``(index, rule, rx_queue, hits)`` for every rule in force."""
        bus = self.nic.link.bus
        return [(i, rule, self.rules.queue_of(rule.target), bus.read32(_STEER.offset(i, "HITS")))
                for i, rule in enumerate(self.rules.rules)]

    def app(self, name: str) -> App:
        """The application called ``name`` (its queues are set up on first use)."""
        if name == "kernel":
            raise RuleError("'kernel' is the kernel's queue, not an application")
        if name in self.remote:
            raise RuleError(f"application {name!r} runs in a process of its own (splitnic.attach)")
        if name not in self.apps:
            if self._tx is None:
                if self.tx_queue == _KERNEL_QUEUE:
                    raise RuleError(f"{self.nic.link.description}: the NIC has one TX queue, the kernel's; "
                                    "the fast path needs a second")
                holder = next((n for n, q in self.remote.items() if q == self.tx_queue), None)
                if holder is not None:
                    raise RuleError(f"TX queue {self.tx_queue} (the in-process fast path's) is held by "
                                    f"application {holder!r}; detach it first")
            queue = self.rules.queue_of(name)
            if self._tx is None:
                self._tx = self.nic.tx_queue(self.tx_queue, ring_log2=self.ring_log2)
            rx = self.nic.rx_queue(queue, ring_log2=self.ring_log2)
            self.apps[name] = App(name, queue, rx, self._tx, self.nic)
            log.info("application %s owns RX queue %d", name, queue)
        return self.apps[name]

    def serve(self, name: str, handler: Callable[[App], int]) -> App:
        """Have :meth:`poll` call ``handler(app)`` for application ``name``; returns the app."""
        app = self.app(name)
        self._handlers.append((app, handler))
        return app

    def poll(self) -> int:
        """Run each served application's handler once; returns the work they reported."""
        return sum(handler(app) for app, handler in self._handlers)

    def reserve(self, name: str) -> tuple[int, int]:
        """An RX queue and a TX queue of their own for application ``name`` in another process.

        No rule is added yet (:meth:`add` with target ``name`` does, once the
        application has posted its buffers).  Returns ``(rx_queue, tx_queue)``;
        raises :class:`RuleError` when the name is taken or no queue is left.
        """
        if name == KERNEL or name in self.apps or name in self.remote or name in self.rules.app_queues:
            raise RuleError(f"application name {name!r} is in use; pick another name")
        busy = set(self.remote.values()) | ({self.tx_queue} if self._tx is not None else set())
        tx = next((q for q in range(1, self.nic.num_tx_queues) if q not in busy), None)
        if tx is None:
            raise RuleError(f"no TX queue left for application {name!r}: the NIC has {self.nic.num_tx_queues} "
                            f"(the kernel's, {len(self.remote)} held by applications"
                            f"{', one by the in-process fast path' if self._tx is not None else ''})")
        rx = self.rules.queue_of(name)
        self.remote[name] = tx
        return rx, tx

    def drop(self, name: str) -> list[Rule]:
        """Forget application ``name`` of another process: its rules (the kernel gets their frames
        again) and its queue reservations; returns the rules removed."""
        gone = self.rules.forget(name)
        self.remote.pop(name, None)
        self._write_table()
        for rule in gone:
            log.info("removed rule: %s (application %s left)", rule, name)
        return gone

    def rearm(self) -> None:
        """Set this fast path up in the NIC again after the NIC was reset under the driver (its board
        was reset or power-cycled; :class:`splitnic.kernel_path.Tunnel` calls this).

        The NIC lost its queues and its steering table; the driver's side is the truth.  The
        in-process applications' RX queues and the fast-path TX queue are made again with fresh
        rings of the same shape (frames in them are lost), then every entry of the steering table
        is written from :attr:`rules`, each the no-drop way (:meth:`Nic.steer`).  Queues granted
        to application processes are not made again: :meth:`splitnic.app_server.AppServer.rearm`
        ends their leases, before this.
        """
        if self._tx is not None:
            self._tx = self.nic.remade(self._tx)
        for app in self.apps.values():
            app.rx = self.nic.remade(app.rx)
            app.tx = self._tx
        self._write_table(every_entry=True)

    def _write_table(self, every_entry: bool = False) -> None:
        """Bring the NIC's steering table in line with the rules, touching changed entries only
        (``every_entry``: write all of the NIC's entries, whatever was written before)."""
        count = self.nic.num_steer_entries if every_entry else max(len(self.rules.rules), len(self._written))
        wanted = [self.rules.entry_values(i) for i in range(count)]
        for index, values in enumerate(wanted):
            if not every_entry and index < len(self._written) and self._written[index] == values:
                continue
            self.nic.steer(index, values if values.get("CTRL") else None)
        self._written = wanted[:len(self.rules.rules)]
        for changed in list(self.on_change):
            changed()


class BatchHandler:
    """Adapts ``handler(batch, app)`` to :meth:`FastPath.serve`: one batch per poll, released after."""

    def __init__(self, handler: Callable[[RxBatch, "AppPort"], object], burst: int = 64) -> None:
        self.handler = handler
        self.burst = burst

    def __call__(self, app: App) -> int:
        with app.rx_batch(self.burst) as batch:
            if len(batch):
                self.handler(batch, app)
            return len(batch)


def load_handler(target: str) -> Callable[[RxBatch, "AppPort"], object]:
    """The handler ``package.module:name`` names: the callable itself, or an instance of it when it
    is a class (made with no arguments).  Raises :class:`RuleError` with what went wrong."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise RuleError(f"cannot import {module_name!r} for {target!r}: {err}") from None
    try:
        handler = getattr(module, attr)
    except AttributeError:
        raise RuleError(f"{module_name} has no {attr!r} (from {target!r})") from None
    if isinstance(handler, type):
        handler = handler()
    if not callable(handler):
        raise RuleError(f"{target} is not callable: a handler is handler(batch, app)")
    return handler
