"""``splitnic apps``: the application processes a running ``splitnic up`` has granted queues to.

Ref: hostdrv/splitnic/app_server.py (the socket and its "list" request); docs/apps.md.

    splitnic apps
    splitnic apps --name snic1
"""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path

from ..app_server import MAX_MESSAGE, default_path
from ..errors import SplitnicError


def listing(path: Path, timeout: float = 10) -> list[dict]:
    """The applications attached to the ``splitnic up`` listening at ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.send(json.dumps({"op": "list"}).encode())
            reply = json.loads(sock.recv(MAX_MESSAGE) or b"{}")
        except FileNotFoundError:
            raise SplitnicError(f"no {path}: is 'splitnic up' running for this interface?") from None
        except OSError as err:
            raise SplitnicError(f"cannot reach {path}: {err.strerror or err}") from None
    if not reply.get("ok"):
        raise SplitnicError(reply.get("error", f"no answer from {path}"))
    return reply["apps"]


def _run(args: argparse.Namespace) -> int:
    apps = listing(args.apps or default_path(args.name))
    if not apps:
        print("no application processes attached")
    for app in apps:
        print(f"{app['name']:<16} pid {app['pid']:<7} RX queue {app['rx_queue']}  TX queue {app['tx_queue']}  "
              + "; ".join(app["rules"]))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``apps`` command."""
    p = subparsers.add_parser("apps", help="list the application processes 'splitnic up' has granted queues to",
                              description="Ask a running 'splitnic up' which application processes "
                                          "(splitnic.attach) hold queues: name, pid, RX and TX queue, rules.")
    p.add_argument("--name", default="snic0", help="the interface 'splitnic up' serves (default: %(default)s)")
    p.add_argument("--apps", type=Path, default=None,
                   help="its application socket (default: /run/splitnic/NAME.apps)")
    p.set_defaults(func=_run)
