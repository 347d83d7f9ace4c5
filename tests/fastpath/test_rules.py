"""The steering rule language: parsing, errors, and compilation to entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitnic.rules import Match, RuleError, RuleSet, load_rules, parse_rule
from splitnic_spec import CSR_MAP

CTRL = CSR_MAP.array("STEER").register("CTRL")


def test_udp_port_rule() -> None:
    rule = parse_rule("udp dport 9000 -> app0")
    assert rule.match == Match(ip_proto=17, l4_dport=9000)
    assert rule.target == "app0"
    assert str(rule) == "udp dport 9000 -> app0"


def test_ethertype_and_dmac() -> None:
    rule = parse_rule("ethertype 0x88b5 dmac 02:00:00:00:00:01 -> app1")
    assert rule.match.ethertype == 0x88B5
    # Byte 0 on the wire sits in bits 7..0 (spec convention).
    assert rule.match.dmac & 0xFF == 0x02 and rule.match.dmac >> 40 == 0x01
    assert parse_rule("ethertype arp -> kernel").match.ethertype == 0x0806


@pytest.mark.parametrize("text, message", [
    ("udp dport 9000", "needs '-> TARGET'"),
    ("udp dport 70000 -> app0", "dport must be 0..65535"),
    ("dport 53 -> app0", "dport needs udp or tcp"),
    ("sport 53 -> app0", "unknown match 'sport'"),
    ("dmac 02:00 -> app0", "dmac must look like"),
    ("udp -> 9x", "target must be"),
    ("udp tcp -> app0", "gives ip_proto twice"),
])
def test_bad_rules_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rule(text)


def test_rules_compile_to_steering_entries() -> None:
    rules = RuleSet(["udp dport 9000 -> app0", "ethertype 0x88b5 -> app1", "tcp dport 22 -> kernel",
                     "udp dport 9001 -> app0"])
    assert rules.app_queues == {"app0": 1, "app1": 2}
    entry = rules.entry_values(0)
    assert CTRL.field("QUEUE").get(entry["CTRL"]) == 1
    assert CTRL.field("MATCH_IP_PROTO").get(entry["CTRL"]) == 1
    assert CTRL.field("MATCH_L4_DPORT").get(entry["CTRL"]) == 1
    assert CTRL.field("MATCH_ETHERTYPE").get(entry["CTRL"]) == 0
    assert entry["IP_PROTO"] == 17 and entry["L4_DPORT"] == 9000
    assert CTRL.field("QUEUE").get(rules.entry_values(2)["CTRL"]) == 0
    assert rules.entry_values(10) == {"CTRL": 0}


def test_full_table_and_too_many_apps_are_refused() -> None:
    rules = RuleSet(capacity=2)
    rules.add("udp dport 1 -> a")
    rules.add("udp dport 2 -> b")
    with pytest.raises(RuleError, match="steering table is full"):
        rules.add("udp dport 3 -> a")
    many = RuleSet()
    apps = [f"app{i}" for i in range(1, many.rx_queues)]   # every queue but the kernel's
    for i, app in enumerate(apps):
        many.add(f"udp dport {i} -> {app}")
    with pytest.raises(RuleError, match="no RX queue left"):
        many.add("udp dport 9 -> d")


def test_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.conf"
    path.write_text("# fast path\nudp dport 9000 -> echo   # the echo app\n\nethertype 0x88b5 -> counter\n")
    assert [str(r) for r in load_rules(path)] == ["udp dport 9000 -> echo", "ethertype 0x88b5 -> counter"]
    path.write_text("udp dport 9000 -> echo\nbogus -> x\n")
    with pytest.raises(RuleError, match=r"rules.conf:2: unknown match 'bogus'"):
        load_rules(path)
    with pytest.raises(RuleError, match="cannot read rules file"):
        load_rules(tmp_path / "missing.conf")


def test_a_forgotten_application_gives_its_queue_to_the_next() -> None:
    rules = RuleSet(rx_queues=4)
    for app in ("a", "b", "c"):
        rules.add(f"udp dport 1 -> {app}")
    assert rules.steers_to("b")
    assert [r.target for r in rules.forget("b")] == ["b"]
    assert [r.target for r in rules.rules] == ["a", "c"]
    assert not rules.steers_to("b") and rules.steers_to("c")
    assert rules.queue_of("d") == 2                  # b's queue, the lowest free
    with pytest.raises(RuleError, match="no RX queue left"):
        rules.queue_of("e")


def test_a_handler_target_parses() -> None:
    rule = parse_rule("udp dport 9000 -> examples.kv_cache:handle")
    assert rule.target == "examples.kv_cache:handle"
    with pytest.raises(RuleError, match="package.module:handler"):
        parse_rule("udp dport 9000 -> a:b:c")


def test_bind_gives_a_named_application_the_queue_ethtool_named() -> None:
    # ethtool -N ... action 3 names a queue; splitnic.rule_ethtool binds "queue3" to it.
    rs = RuleSet(["udp dport 9000 -> echo"], rx_queues=4)
    rs.bind("queue3", 3)
    assert rs.app_queues == {"echo": 1, "queue3": 3}
    assert rs.queue_of("next") == 2                       # the free queue between them
    for name, queue, message in (("other", 3, "belongs to application 'queue3'"), ("echo", 2, "in use"),
                                 ("kernel", 2, "in use"), ("q0", 0, "not a fast-path queue"),
                                 ("q4", 4, "not a fast-path queue")):
        with pytest.raises(RuleError, match=message):
            rs.bind(name, queue)
