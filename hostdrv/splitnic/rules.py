"""Steering rules a person can write, compiled to the NIC's steering table.

Ref: docs/registers.md, "STEER" (generated from splitnic_spec.nic).

A rule is one line::

    udp dport 9000 -> app0
    ethertype 0x88b5 -> app1
    tcp dport 80 dmac 02:00:00:00:00:01 -> app0
    ip proto 47 -> kernel

Match terms (all must hold; a rule with none matches everything):

============================  ==============================================
``udp`` / ``tcp`` / ``icmp``  IP protocol 17 / 6 / 1 (IPv4 or IPv6)
``ip proto N``                IP protocol number N
``dport N``                   TCP/UDP destination port N (needs udp or tcp)
``ethertype N``               ethertype N (``0x88b5``, ``ipv4``, ``ipv6``, ``arp``)
``dmac XX:XX:XX:XX:XX:XX``    destination MAC address
============================  ==============================================

The target after ``->`` is ``kernel`` (RX queue 0) or an application name.
Application names get the lowest free fast-path RX queue (1, 2, ...) when
they first appear, so ``app0`` is not special: any name works.  A name of
the form ``package.module:handler`` names a handler to import and run in
``splitnic up`` (:mod:`splitnic.fastpath`); an application in a process of
its own gets its queue with :func:`splitnic.attach`, and gives it back when
it goes (:meth:`RuleSet.forget`).

A config file holds one rule per line; ``#`` starts a comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from splitnic_spec import CSR_MAP, NUM_RX_QUEUES, constant

from .errors import SplitnicError

__all__ = ["RuleError", "Match", "Rule", "RuleSet", "parse_rule", "load_rules"]

KERNEL = "kernel"
#: What may follow ``->``: a name (``echo``, ``kv-cache``) or ``package.module:handler``.
TARGET_PATTERN = r"[A-Za-z_][A-Za-z0-9_-]*|[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*"
_KERNEL_QUEUE = constant("KERNEL_QUEUE")
_PROTOCOLS = {"udp": 17, "tcp": 6, "icmp": 1}
_ETHERTYPES = {"ipv4": 0x0800, "ipv6": 0x86DD, "arp": 0x0806}
_STEER_CTRL = CSR_MAP.array("STEER").register("CTRL")


class RuleError(SplitnicError):
    """A rule that cannot be parsed or placed."""


def _number(text: str, what: str, bits: int) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise RuleError(f"{what} must be a number, not {text!r}") from None
    if not 0 <= value < 1 << bits:
        raise RuleError(f"{what} must be 0..{(1 << bits) - 1}, not {value}")
    return value


def _mac(text: str) -> int:
    parts = text.split(":")
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-fA-F]{2}", p) for p in parts):
        raise RuleError(f"dmac must look like 02:00:00:00:00:01, not {text!r}")
    # The spec packs byte 0 (first on the wire) into bits 7..0.
    return int.from_bytes(bytes(int(p, 16) for p in parts), "little")


@dataclass(frozen=True)
class Match:
    """What a steering entry compares; ``None`` means "don't care"."""
    dmac: int | None = None
    ethertype: int | None = None
    ip_proto: int | None = None
    l4_dport: int | None = None

    def __str__(self) -> str:
        words = []
        if self.ip_proto is not None:
            names = {v: k for k, v in _PROTOCOLS.items()}
            words.append(names.get(self.ip_proto, f"ip proto {self.ip_proto}"))
        if self.l4_dport is not None:
            words.append(f"dport {self.l4_dport}")
        if self.ethertype is not None:
            words.append(f"ethertype {self.ethertype:#06x}")
        if self.dmac is not None:
            words.append("dmac " + ":".join(f"{b:02x}" for b in self.dmac.to_bytes(6, "little")))
        return " ".join(words) or "all"


@dataclass(frozen=True)
class Rule:
    """A match and where matching frames go."""
    match: Match
    target: str
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.match} -> {self.target}"


def parse_rule(text: str) -> Rule:
    """Parse one rule line; raises :class:`RuleError` with what was expected and what came."""
    if "->" not in text:
        raise RuleError(f"a rule needs '-> TARGET' (e.g. 'udp dport 9000 -> app0'), got {text!r}")
    lhs, _, target = text.partition("->")
    target = target.strip()
    if not re.fullmatch(TARGET_PATTERN, target):
        raise RuleError(f"target must be 'kernel', an application name or package.module:handler, "
                        f"not {target!r}")
    words = lhs.split()
    values: dict[str, int] = {}

    def put(key: str, value: int) -> None:
        if key in values and values[key] != value:
            raise RuleError(f"rule {text.strip()!r} gives {key} twice")
        values[key] = value

    i = 0
    while i < len(words):
        word = words[i].lower()
        arg = words[i + 1] if i + 1 < len(words) else None
        if word in _PROTOCOLS:
            put("ip_proto", _PROTOCOLS[word])
            i += 1
            continue
        if word == "ip" and arg == "proto" and i + 2 < len(words):
            put("ip_proto", _number(words[i + 2], "ip proto", 8))
            i += 3
            continue
        if word not in ("dport", "ethertype", "dmac"):
            raise RuleError(f"unknown match {word!r} in rule {text.strip()!r}; "
                            "expected udp, tcp, icmp, ip proto N, dport N, ethertype N or dmac MAC")
        if arg is None:
            raise RuleError(f"{word!r} needs a value in rule {text.strip()!r}")
        if word == "dport":
            put("l4_dport", _number(arg, "dport", 16))
        elif word == "ethertype":
            put("ethertype", _ETHERTYPES.get(arg.lower()) or _number(arg, "ethertype", 16))
        else:
            put("dmac", _mac(arg))
        i += 2
    if "l4_dport" in values and values.get("ip_proto") not in (6, 17):
        raise RuleError(f"dport needs udp or tcp in rule {text.strip()!r} (the NIC matches ports of TCP/UDP only)")
    return Rule(Match(**values), target, text.strip())


def load_rules(path: Path) -> list[Rule]:
    """Rules from a config file: one per line, ``#`` comments, blank lines ignored."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise RuleError(f"cannot read rules file {path}: {err.strerror}") from None
    rules = []
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if line:
            try:
                rules.append(parse_rule(line))
            except RuleError as err:
                raise RuleError(f"{path}:{number}: {err}") from None
    return rules


class RuleSet:
    """Rules in priority order, with the RX queue each application owns.

    The first rule wins, as in the NIC, whose lowest-numbered matching entry
    wins; entry ``i`` holds rule ``i``.
    """

    def __init__(self, rules: Iterable[Rule] = (), *, capacity: int | None = None,
                 rx_queues: int = NUM_RX_QUEUES) -> None:
        self.capacity = capacity if capacity is not None else CSR_MAP.array("STEER").count
        self.rx_queues = rx_queues
        self.rules: list[Rule] = []
        self.app_queues: dict[str, int] = {}
        for rule in rules:
            self.add(rule)

    def queue_of(self, target: str) -> int:
        """RX queue of ``target``, giving a new application the next free fast-path queue."""
        if target == KERNEL:
            return _KERNEL_QUEUE
        if target not in self.app_queues:
            used = set(self.app_queues.values())
            queue = next((q for q in range(1, self.rx_queues) if q not in used and q != _KERNEL_QUEUE), None)
            if queue is None:
                names = ", ".join(self.app_queues) or "nothing"
                raise RuleError(f"no RX queue left for application {target!r}: the NIC has "
                                f"{self.rx_queues - 1} fast-path queues, used by {names}")
            self.app_queues[target] = queue
        return self.app_queues[target]

    def bind(self, target: str, queue: int) -> None:
        """Give application ``target`` RX ``queue`` (ethtool's action names a queue, not an application)."""
        if target == KERNEL or target in self.app_queues:
            raise RuleError(f"application name {target!r} is in use")
        if not 0 < queue < self.rx_queues or queue == _KERNEL_QUEUE:
            raise RuleError(f"RX queue {queue} is not a fast-path queue: the NIC has 1..{self.rx_queues - 1}")
        owner = next((name for name, q in self.app_queues.items() if q == queue), None)
        if owner is not None:
            raise RuleError(f"RX queue {queue} belongs to application {owner!r}")
        self.app_queues[target] = queue

    def steers_to(self, target: str) -> bool:
        """Whether any rule in the table steers to ``target``."""
        return any(rule.target == target for rule in self.rules)

    def forget(self, target: str) -> list[Rule]:
        """Remove every rule of application ``target`` and free its RX queue; returns the rules removed."""
        gone = [r for r in self.rules if r.target == target]
        self.rules = [r for r in self.rules if r.target != target]
        self.app_queues.pop(target, None)
        return gone

    def add(self, rule: Rule | str) -> int:
        """Append a rule; returns its steering table index."""
        if isinstance(rule, str):
            rule = parse_rule(rule)
        if len(self.rules) >= self.capacity:
            raise RuleError(f"the steering table is full ({self.capacity} entries); remove a rule first "
                            f"(splitnic rules remove N) before adding {str(rule)!r}")
        self.queue_of(rule.target)
        self.rules.append(rule)
        return len(self.rules) - 1

    def remove(self, index: int) -> Rule:
        """Remove and return the rule at ``index``; later rules move up one entry."""
        if not 0 <= index < len(self.rules):
            raise RuleError(f"no rule {index}; there are {len(self.rules)} (0..{len(self.rules) - 1})")
        return self.rules.pop(index)

    def entry_values(self, index: int) -> dict[str, int]:
        """Register values of steering entry ``index`` (CTRL, DMAC_LO/HI, ETHERTYPE, IP_PROTO, L4_DPORT)."""
        if index >= len(self.rules):
            return {"CTRL": 0}
        rule = self.rules[index]
        m = rule.match
        ctrl = _STEER_CTRL.pack(ENABLE=1, QUEUE=self.queue_of(rule.target),
                                MATCH_DMAC=int(m.dmac is not None),
                                MATCH_ETHERTYPE=int(m.ethertype is not None),
                                MATCH_IP_PROTO=int(m.ip_proto is not None),
                                MATCH_L4_DPORT=int(m.l4_dport is not None))
        dmac = m.dmac or 0
        return {"CTRL": ctrl, "DMAC_LO": dmac & 0xFFFFFFFF, "DMAC_HI": dmac >> 32,
                "ETHERTYPE": m.ethertype or 0, "IP_PROTO": m.ip_proto or 0, "L4_DPORT": m.l4_dport or 0}
