"""``splitnic rules``: list, add and remove the steering rules of a running ``splitnic up``.

Ref: hostdrv/splitnic/rule_control.py (the protocol), hostdrv/splitnic/rules.py (the syntax).

    splitnic rules list
    splitnic rules add 'tcp dport 80 -> app0'
    splitnic rules remove 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SplitnicError
from ..rule_control import default_path, request
from ..rules import parse_rule


def _run(args: argparse.Namespace) -> int:
    path = args.control or default_path(args.name)
    if args.action == "list":
        rules = request(path, {"op": "list"})["rules"]
        if not rules:
            print("no rules: every frame goes to the kernel (RX queue 0)")
        for index, rule, queue, hits in rules:
            print(f"{index:>3}  {rule:<40} RX queue {queue}  {hits} hits")
    elif args.action == "add":
        text = " ".join(args.words)
        parse_rule(text)  # say what is wrong here, before asking the running process
        print(f"added rule {request(path, {'op': 'add', 'rule': text})['index']}: {text}")
    else:
        if len(args.words) != 1 or not args.words[0].isdigit():
            raise SplitnicError("remove takes one rule number (see 'splitnic rules list')")
        removed = request(path, {"op": "remove", "index": int(args.words[0])})["removed"]
        print(f"removed rule {args.words[0]}: {removed}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``rules`` command."""
    p = subparsers.add_parser("rules", help="list, add or remove fast-path steering rules while 'splitnic up' runs",
                              description="Talk to a running 'splitnic up --fast ...': list the rules with their "
                                          "hit counts, add a rule at the end, or remove rule N. Changes take "
                                          "effect between two bursts; no frame is lost.")
    p.add_argument("action", choices=("list", "add", "remove"))
    p.add_argument("words", nargs="*", help="add: the rule (e.g. 'udp dport 9000 -> app0'); remove: its number")
    p.add_argument("--name", default="snic0", help="the interface 'splitnic up' serves (default: %(default)s)")
    p.add_argument("--control", type=Path, default=None,
                   help="the control socket (default: /run/splitnic/NAME.rules)")
    p.set_defaults(func=_run)
