"""Fast-path applications: steering rules on the NIC and the queues they fill.

Ref: docs/architecture.md, "Queues and steering"; docs/registers.md,
STEER (generated from splitnic_spec.nic); rule syntax in :mod:`splitnic.rules`.

An application owns the RX queue its rules name (``udp dport 9000 -> echo``)
and reads zero-copy packet views from it; all applications transmit on the
fast-path TX queue (TX queue 0 carries the kernel's frames).  Frames no rule
claims go to RX queue 0, the kernel's, so the host keeps ARP, ping and ssh.

Threading: the driver is not thread-safe (one link, one request stream), so
run applications and the kernel tunnel's pump from one loop —
:class:`splitnic.kernel_path.Tunnel` steps the pump and calls
:meth:`FastPath.poll` in the same thread (see ``splitnic up --fast``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from splitnic_spec import CSR_MAP, constant

from .nic import Nic, RxQueue, TxQueue
from .rules import Rule, RuleError, RuleSet
from .rx_batch import RxBatch

__all__ = ["App", "FastPath", "fast_tx_queue"]

log = logging.getLogger(__name__)

_KERNEL_QUEUE = constant("KERNEL_QUEUE")
_STEER = CSR_MAP.array("STEER")
_RXQ = CSR_MAP.array("RXQ")


def fast_tx_queue(nic: Nic) -> int:
    """The TX queue every fast-path application sends on: the NIC's last (queue 0 is the kernel's)."""
    return nic.num_tx_queues - 1


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
        if fast_tx_queue(nic) == _KERNEL_QUEUE:
            raise RuleError(f"{nic.link.description}: the NIC has one TX queue, the kernel's; "
                            "the fast path needs a second")
        self.tx_queue = fast_tx_queue(nic)
        self.rules = RuleSet(capacity=nic.num_steer_entries, rx_queues=nic.num_rx_queues)
        self.apps: dict[str, App] = {}
        self._tx: TxQueue | None = None
        self._written: list[dict[str, int]] = []
        self._handlers: list[tuple[App, Callable[[App], int]]] = []
        for rule in rules:
            self.add(rule)

    def add(self, rule: Rule | str) -> int:
        """Add a rule at the end (lowest priority); returns its steering entry.

        Raises :class:`splitnic.rules.RuleError` when the table is full or the
        NIC has no RX queue left for a new application.
        """
        index = self.rules.add(rule)
        self.app(self.rules.rules[index].target)
        self._write_table()
        log.info("rule %d: %s", index, self.rules.rules[index])
        return index

    def remove(self, index: int) -> Rule:
        """Remove rule ``index``; later rules move up one entry."""
        rule = self.rules.remove(index)
        self._write_table()
        log.info("removed rule %d: %s", index, rule)
        return rule

    def listing(self) -> list[tuple[int, Rule, int, int]]:
        """``(index, rule, rx_queue, hits)`` for every rule in force."""
        bus = self.nic.link.bus
        return [(i, rule, self.rules.queue_of(rule.target), bus.read32(_STEER.offset(i, "HITS")))
                for i, rule in enumerate(self.rules.rules)]

    def app(self, name: str) -> App:
        """The application called ``name`` (its queues are set up on first use)."""
        if name == "kernel":
            raise RuleError("'kernel' is the kernel's queue, not an application")
        if name not in self.apps:
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

    def _write_table(self) -> None:
        """Bring the NIC's steering table in line with the rules, touching changed entries only."""
        wanted = [self.rules.entry_values(i) for i in range(max(len(self.rules.rules), len(self._written)))]
        for index, values in enumerate(wanted):
            if index < len(self._written) and self._written[index] == values:
                continue
            self.nic.steer(index, values if values.get("CTRL") else None)
        self._written = wanted[:len(self.rules.rules)]
