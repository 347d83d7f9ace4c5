"""``splitnic up``: give the kernel its interface and tunnel it through the user-space driver.

Ref: docs/architecture.md, "The kernel path"; the library is
:mod:`splitnic.kernel_path` (this file only parses arguments and runs it).

    splitnic up --link sim --kernel auto --name snic0

attaches the NIC, opens the kernel tunnel (stub module, or TAP), copies the
NIC's MAC address, MTU and link state to the interface, brings it up and
runs :class:`splitnic.kernel_path.Tunnel` until Ctrl-C or SIGTERM.
``--link packet:IFNAME`` puts a host interface where the NIC would be (for
trying the kernel path without a NIC).
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Callable

from ..errors import SplitnicError
from ..irq import DEFAULT_COALESCE_USECS
from ..kernel_path import EventSource, Tunnel
from ..tunnel import KINDS, parse_mac

DESCRIPTION = ("Attach the NIC, open the kernel interface (stub module or TAP) with the NIC's MAC address, "
               "MTU and link state, and move frames between the NIC's queue 0 and the kernel until Ctrl-C "
               "or SIGTERM. --link packet:IFNAME puts a host interface where the NIC would be.")


def _fast_path(tun: Tunnel, args: argparse.Namespace) -> tuple[list[Callable[[], int]], list[EventSource], object]:
    """The fast path: the in-process applications ``--fast``/``--rules`` ask for (and the rules
    socket), and the socket that grants queues to application processes (splitnic.app_server)."""
    from ..app_server import AppServer
    from ..app_server import default_path as apps_path
    from ..apps import serve_builtin
    from ..fastpath import FastPath
    from ..rule_control import RuleServer, default_path
    from ..rule_ethtool import EthtoolRules
    from ..rules import load_rules
    nic = tun.uplink.nic
    rules = list(args.fast) + (load_rules(args.rules) if args.rules else [])
    fast = FastPath(nic, rules)
    tun.rearm_also.append(fast)      # a reset board gets its queues and steering table back
    for name in fast.rules.app_queues:
        serve_builtin(fast, name)
    sources: list[EventSource] = []
    try:
        # The steering table is there with or without --fast: `splitnic rules` shows it (also
        # the rules of application processes) and changes it.
        sources.append(RuleServer(fast, args.control or default_path(tun.tunnel.name)))
        apps = AppServer(fast, args.apps or apps_path(tun.tunnel.name), tun)
        sources.append(apps)
        # ... but first the leases of application processes end (their queues went with the board):
        # their rules go before the table is written again, their memory before queues are remade.
        tun.rearm_also.insert(tun.rearm_also.index(fast), apps)
        if tun.config is not None and hasattr(tun.tunnel, "publish_rules"):
            # ethtool -N/-n on the stub's interface: the same table (splitnic.rule_ethtool).
            tun.config.steering = EthtoolRules(fast, tun.tunnel)
    except BaseException:
        for source in sources:
            source.close()
        raise
    return [fast.poll], sources, fast


def _run(args: argparse.Namespace) -> int:
    tun = Tunnel(args.link, args.kernel, args.name, args.mac, args.burst, args.coalesce_usecs,
                 args.max_mtu).start()
    sources: list[EventSource] = []
    previous = {sig: signal.signal(sig, lambda *_: tun.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        also: list[Callable[[], int]] = []
        fast = None
        if tun.uplink.nic is not None:
            also, sources, fast = _fast_path(tun, args)
        elif args.fast or args.rules:
            raise SplitnicError(f"--fast and --rules need a NIC's steering table; --link {args.link} has none")
        if fast is not None:
            for index, rule, queue, _hits in fast.listing():
                print(f"rule {index}: {rule} (RX queue {queue})", flush=True)
        print(tun.status() + " (Ctrl-C to stop)", flush=True)
        tun.run(also, sources)
        print(f"{tun.tunnel.name} down: {tun.pump.stats.line()}", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for source in sources:
            source.close()
        tun.close()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``up`` command."""
    p = subparsers.add_parser("up", help="create the kernel interface (snic0) and tunnel it through the driver",
                              description=DESCRIPTION)
    p.add_argument("--link", required=True, help="the NIC to attach (as for the other commands), "
                   "or packet:IFNAME for a host interface in its place")
    p.add_argument("--kernel", choices=KINDS, default="auto",
                   help="kernel side: stub (splitnic.ko), tap (TUN/TAP) or auto (stub if /dev/splitnic exists)")
    p.add_argument("--name", default="snic0", help="interface name (default: %(default)s)")
    p.add_argument("--mac", type=_mac_arg, default=None, help="MAC address (default: the NIC's)")
    p.add_argument("--burst", type=int, default=64, help="frames moved per step (default: %(default)s)")
    p.add_argument("--max-mtu", type=_max_mtu, default=None, metavar="MTU",
                   help="the largest MTU the interface may be given later, 68..9000 (the stub sizes its "
                        "ring slots for it; TAP takes any; the NIC's buffers follow the MTU either way)")
    p.add_argument("--coalesce-usecs", type=_usecs, default=DEFAULT_COALESCE_USECS, metavar="USECS",
                   help="interrupt coalescing: the NIC's interrupt rises at most once per USECS "
                        "microseconds (like ethtool's rx-usecs; 0: at once; default: %(default)s)")
    p.add_argument("--fast", action="append", default=[], metavar="RULE",
                   help="steer matching frames to a fast-path application, e.g. 'udp dport 9000 -> echo' "
                        "(repeatable; syntax: splitnic.rules). Application 'echo' answers UDP, "
                        "'package.module:handler' runs handler(batch, app) (docs/apps.md); any other "
                        "name counts what it receives")
    p.add_argument("--rules", type=Path, default=None, help="a file of rules, one per line, after the --fast ones")
    p.add_argument("--control", type=Path, default=None,
                   help="socket for 'splitnic rules' (default: /run/splitnic/NAME.rules)")
    p.add_argument("--apps", type=Path, default=None,
                   help="socket where application processes ask for queues of their own with splitnic.attach "
                        "(default: /run/splitnic/NAME.apps; docs/apps.md)")
    p.set_defaults(func=_run)


def _usecs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be 0..100000 microseconds, not {text!r}")
    return value


def _max_mtu(text: str) -> int:
    from ..kernel_config import MTU_MAX, MTU_MIN
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not MTU_MIN <= value <= MTU_MAX:
        raise argparse.ArgumentTypeError(f"must be {MTU_MIN}..{MTU_MAX}, not {text!r}")
    return value


def _mac_arg(text: str) -> bytes:
    try:
        return parse_mac(text)
    except SplitnicError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
