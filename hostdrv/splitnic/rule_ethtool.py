"""ethtool -N/-n on snic0: a second front end to the steering table ``splitnic rules`` edits.

Ref: spec/splitnic_spec/tunnel.py (RuleTable, RuleReq); hostdrv/kmod/README.md,
"ethtool on snic0"; :mod:`splitnic.fastpath` (the table and its no-drop update).

The driver owns one rule set (:class:`~splitnic.fastpath.FastPath`); both
front ends change it the same way:

* after every change, whoever made it (``splitnic rules``, an application
  process that left, ethtool), the table goes to the module
  (``IOC_PUBLISH_RULES``), where ``ethtool -n`` lists it;
* ``ethtool -N`` is checked and queued by the module, which wakes the driver
  (``POLLPRI``); after each configuration read (:mod:`splitnic.kernel_config`)
  :meth:`EthtoolRules.poll` takes the requests and applies them with
  ``FastPath.add``/``remove``, as ``splitnic rules add``/``remove`` would.

ethtool's action is the NIC's RX queue: 0 is the kernel's (snic0 itself),
N > 0 the fast-path application that owns RX queue N.  When no application
owns it yet, one called ``queueN`` is made for it in this process: it counts
what it receives (``rxqN_packets`` in ``ethtool -S``), like any ``--fast``
name that is not a handler, and stops when ``ethtool -N delete`` removes its
last rule (RX queue N is free again).  A request the driver cannot apply (no TX queue
left for the fast path, the table changed under a delete) is refused in the
log; ``ethtool -n`` then shows the table without it.
"""

from __future__ import annotations

import logging

from splitnic_spec import constant

from .errors import SplitnicError
from .fastpath import FastPath
from .rules import KERNEL, Match, Rule, RuleError
from .tunnel_stub_control import RuleRequest, SteerRule

__all__ = ["EthtoolRules", "steer_rule", "rule_match"]

log = logging.getLogger(__name__)

_KERNEL_QUEUE = constant("KERNEL_QUEUE")


def steer_rule(match: Match, queue: int) -> SteerRule:
    """A rule of :mod:`splitnic.rules` as the module's ``Rule``."""
    return SteerRule(queue=queue, dmac=match.dmac, ethertype=match.ethertype, ip_proto=match.ip_proto,
                     dport=match.l4_dport)


def rule_match(rule: SteerRule) -> Match:
    """The :class:`~splitnic.rules.Match` of a module ``Rule``."""
    return Match(dmac=rule.dmac, ethertype=rule.ethertype, ip_proto=rule.ip_proto, l4_dport=rule.dport)


class EthtoolRules:
    """Joins a :class:`FastPath` to a stub tunnel's ethtool: publishes the table, applies ethtool -N.

    ``tunnel`` is a :class:`splitnic.tunnel_stub.StubTunnel` (``publish_rules``,
    ``take_rule_request``).  :meth:`poll` is called by the configuration sync
    after each read of the kernel's configuration.
    """

    def __init__(self, fast: FastPath, tunnel) -> None:
        self.fast, self.tunnel = fast, tunnel
        self.done = 0            #: seq of the last ethtool request handled
        self.refused = 0         #: ethtool requests the driver could not apply
        self.made: set[str] = set()   #: the applications made here (queueN), stopped with their last rule
        fast.on_change.append(self.publish)
        self.publish()

    def close(self) -> None:
        """Stop following the table (the module keeps the last one until the handle goes)."""
        if self.publish in self.fast.on_change:
            self.fast.on_change.remove(self.publish)

    def table(self) -> list[SteerRule]:
        """The rules in force, in entry order, as the module's ``Rule``."""
        return [steer_rule(rule.match, queue) for _i, rule, queue in self._rules()]

    def _rules(self) -> list[tuple[int, Rule, int]]:
        return [(i, rule, self.fast.rules.queue_of(rule.target)) for i, rule in enumerate(self.fast.rules.rules)]

    def publish(self) -> None:
        """Hand the table to the module (ethtool -n); called after every change."""
        try:
            self.tunnel.publish_rules(self.table(), capacity=self.fast.rules.capacity,
                                      rx_queues=self.fast.rules.rx_queues, done=self.done)
        except (SplitnicError, ValueError) as err:
            log.warning("%s: ethtool -n will not show the steering table: %s", self.tunnel.name, err)

    def poll(self) -> int:
        """Apply every ethtool -N request waiting in the module; returns how many were handled."""
        handled = 0
        while True:
            try:
                req = self.tunnel.take_rule_request()
            except SplitnicError as err:
                log.warning("%s: cannot take ethtool -N requests: %s", self.tunnel.name, err)
                return handled
            if req is None:
                return handled
            self.done = req.seq
            try:
                self._apply(req)
            except RuleError as err:
                self.refused += 1
                log.warning("%s: ethtool -N %s refused by the driver: %s", self.tunnel.name,
                            "rule" if req.op == "add" else f"delete {req.location}", err)
            handled += 1
            self.publish()     # done moved on, whether the table changed or not

    def _apply(self, req: RuleRequest) -> None:
        if req.op == "delete":
            rules = self._rules()
            if req.location >= len(rules) or steer_rule(rules[req.location][1].match,
                                                        rules[req.location][2]) != req.rule:
                raise RuleError(f"rule {req.location} changed since ethtool listed it (splitnic rules list)")
            target = self.fast.remove(req.location).target
            if target in self.made and not self.fast.rules.steers_to(target):
                self.made.discard(target)
                self.fast.retire(target)
            return
        if req.location != len(self.fast.rules.rules):
            raise RuleError(f"ethtool was told entry {req.location}, but the table has "
                            f"{len(self.fast.rules.rules)} rules now (splitnic rules changed it meanwhile)")
        target, made = self._target(req.rule.queue)
        try:
            self.fast.add(Rule(rule_match(req.rule), target))
        except BaseException:
            if made:
                self.fast.rules.forget(target)
            raise
        if made:
            from .apps import serve_builtin
            serve_builtin(self.fast, target)
            self.made.add(target)

    def _target(self, queue: int) -> tuple[str, bool]:
        """The rule target that owns RX ``queue``, and whether it was made here (``queueN``)."""
        if queue == _KERNEL_QUEUE:
            return KERNEL, False
        for name, owned in self.fast.rules.app_queues.items():
            if owned == queue:
                return name, False
        name = f"queue{queue}"
        self.fast.rules.bind(name, queue)
        return name, True
