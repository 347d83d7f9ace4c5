"""``splitnic up``: give the kernel its interface and tunnel it through the user-space driver.

Ref: /work/shared/ARCHITECTURE.md, "The kernel/user interface" and "Queues
and steering" (RX queue 0 feeds the kernel, TX queue 0 carries its frames).

    splitnic up --link sim --kernel auto --name snic0

attaches the NIC, opens the kernel tunnel (stub module, or TAP), copies the
NIC's MAC address, MTU and link state to the interface, brings it up and
runs :class:`splitnic.tunnel_pump.TunnelPump` until Ctrl-C or SIGTERM.
``--link packet:IFNAME`` puts a host interface where the NIC would be (for
trying the kernel path without a NIC).
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..errors import SplitnicError
from ..tunnel import KINDS, KernelTunnel, format_mac, open_tunnel, parse_mac
from ..tunnel_pump import FramePort, TunnelPump

if TYPE_CHECKING:
    from ..nic import Nic

log = logging.getLogger(__name__)

DESCRIPTION = ("Attach the NIC, open the kernel interface (stub module or TAP) with the NIC's MAC address, "
               "MTU and link state, and move frames between the NIC's queue 0 and the kernel until Ctrl-C "
               "or SIGTERM. --link packet:IFNAME puts a host interface where the NIC would be.")

#: Seconds between link-state checks (the carrier follows the NIC's link).
LINK_POLL = 0.5
#: Seconds the loop sleeps when neither the pump nor an application had work
#: (a NIC's rings can only be polled).
IDLE_WAIT = 0.0005


@dataclass
class Uplink:
    """What ``splitnic up`` needs from the NIC side."""
    port: FramePort                 #: queue pair 0 (RX -> kernel, kernel -> TX)
    mac: bytes | None               #: the NIC's MAC address, None: let the tunnel pick
    mtu: int
    link_up: Callable[[], bool]
    close: Callable[[], None]
    description: str
    nic: "Nic | None" = None        #: the NIC behind it (None for packet:IFNAME)


def _packet_uplink(ifname: str) -> Uplink:
    from ..packet_port import PacketPort
    port = PacketPort(ifname)
    return Uplink(port, None, port.mtu, lambda: port.link_up, port.close, f"packet:{ifname}")


def open_uplink(link: str) -> Uplink:
    """Attach the NIC named by ``--link`` (or a host interface with ``packet:IFNAME``)."""
    if link.startswith("packet:"):
        return _packet_uplink(link.split(":", 1)[1])
    try:
        from ..nic import open_nic_uplink  # the user-space driver's kernel queue pair
    except ImportError:
        raise SplitnicError(f"--link {link}: this tree has no NIC driver yet; use --link packet:IFNAME") from None
    return open_nic_uplink(link)


class Tunnel:
    """The NIC, the kernel interface and the pump between them, for one process.

    ``start()`` opens both ends and brings the interface up; ``run()`` pumps
    until ``stop()``; ``close()`` leaves the interface carrier-down.  The demo
    uses it in the same process as fast-path applications.
    """

    def __init__(self, link: "str | Uplink", kernel: str = "auto", name: str = "snic0", mac: bytes | None = None,
                 burst: int = 64) -> None:
        # An Uplink may be passed in when the NIC is already open (its fast-path
        # applications share it); a link string is opened here.
        self.link, self.kernel, self.name, self.mac, self.burst = link, kernel, name, mac, burst
        self.uplink: Uplink | None = link if isinstance(link, Uplink) else None
        self.tunnel: KernelTunnel | None = None
        self.pump: TunnelPump | None = None
        self._carrier: bool | None = None
        self._next_link_check = 0.0

    def start(self) -> "Tunnel":
        """Attach the NIC, open the kernel interface with its MAC/MTU, bring it up."""
        if self.uplink is None:
            self.uplink = open_uplink(self.link)
        try:
            self.tunnel = open_tunnel(self.kernel, self.name, self.mac or self.uplink.mac, self.uplink.mtu)
            self.tunnel.set_admin_up()
            self.pump = TunnelPump(self.uplink.port, self.tunnel, burst=self.burst)
            self.watch_link()
        except BaseException:
            self.close()
            raise
        return self

    def watch_link(self) -> None:
        """Copy the NIC's link state to the interface's carrier (when it changed)."""
        up = self.uplink.link_up()
        if up != self._carrier:
            self.tunnel.set_carrier(up)
            self._carrier = up
            log.info("%s carrier %s", self.tunnel.name, "up" if up else "down")

    def status(self) -> str:
        """One line: interface, backend, address, MTU, link, counters."""
        t = self.tunnel
        return (f"{t.name} up: {t.kind} tunnel, MAC {format_mac(t.mac)}, MTU {t.mtu}, "
                f"link {self.uplink.description} {'up' if self._carrier else 'down'}; {self.pump.stats.line()}")

    def run(self, also: Sequence[Callable[[], int]] = ()) -> None:
        """Pump frames until :meth:`stop`, calling each of ``also`` (fast-path apps, rule
        changes) in the same loop; each returns the work it did."""
        if not also:
            while not self.pump.stopped:
                self.pump.run(duration=LINK_POLL)
                self.watch_link()
            return
        while not self.pump.stopped:
            if not self.step(also):
                time.sleep(IDLE_WAIT)

    def step(self, also: Sequence[Callable[[], int]] = ()) -> int:
        """Move frames once each way, call each of ``also``, and follow the link every
        LINK_POLL seconds; returns the work done (frames and whatever ``also`` counts)."""
        work = self.pump.step() + sum(poll() for poll in also)
        now = time.monotonic()
        if now >= self._next_link_check:
            self.watch_link()
            self._next_link_check = now + LINK_POLL
        return work

    def stop(self) -> None:
        """Make :meth:`run` return (signal-safe)."""
        if self.pump:
            self.pump.stop()

    def close(self) -> None:
        """Release the interface (carrier down) and the NIC."""
        if self.tunnel:
            self.tunnel.close()
            self.tunnel = None
        if self.uplink:
            self.uplink.close()
            self.uplink = None


def _fast_path(tun: Tunnel, args: argparse.Namespace):
    """The fast path ``--fast``/``--rules`` ask for, with its applications and rule server."""
    from ..apps import serve_builtin
    from ..fastpath import FastPath
    from ..rule_control import RuleServer, default_path
    from ..rules import load_rules
    if tun.uplink.nic is None:
        raise SplitnicError(f"--fast and --rules need a NIC's steering table; --link {args.link} has none")
    rules = list(args.fast) + (load_rules(args.rules) if args.rules else [])
    fast = FastPath(tun.uplink.nic, rules)
    for name in fast.rules.app_queues:
        serve_builtin(fast, name)
    server = RuleServer(fast, args.control or default_path(tun.tunnel.name))
    return fast, server


def _run(args: argparse.Namespace) -> int:
    tun = Tunnel(args.link, args.kernel, args.name, args.mac, args.burst).start()
    server = None
    previous = {sig: signal.signal(sig, lambda *_: tun.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        also: list[Callable[[], int]] = []
        if args.fast or args.rules:
            fast, server = _fast_path(tun, args)
            also = [fast.poll, server.poll]
            for index, rule, queue, _hits in fast.listing():
                print(f"rule {index}: {rule} (RX queue {queue})", flush=True)
        print(tun.status() + " (Ctrl-C to stop)", flush=True)
        tun.run(also)
        print(f"{tun.tunnel.name} down: {tun.pump.stats.line()}", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server:
            server.close()
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
    p.add_argument("--fast", action="append", default=[], metavar="RULE",
                   help="steer matching frames to a fast-path application, e.g. 'udp dport 9000 -> echo' "
                        "(repeatable; syntax: splitnic.rules). Application 'echo' answers UDP; any other "
                        "name counts what it receives")
    p.add_argument("--rules", type=Path, default=None, help="a file of rules, one per line, after the --fast ones")
    p.add_argument("--control", type=Path, default=None,
                   help="socket for 'splitnic rules' (default: /run/splitnic/NAME.rules)")
    p.set_defaults(func=_run)


def _mac_arg(text: str) -> bytes:
    try:
        return parse_mac(text)
    except SplitnicError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
