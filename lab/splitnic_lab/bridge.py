"""``python -m splitnic_lab.bridge``: a user-space bridge between a kernel tunnel and a packet socket.

Ref: lab/splitnic_lab/veth_lab.py (the topology it serves).

Opens the kernel tunnel (``--kernel stub|tap``) in the current network
namespace, a packet socket on ``--port-if`` in ``--port-netns``, and runs the
same :class:`splitnic.tunnel_pump.TunnelPump` that ``splitnic up`` runs, with
the packet socket in the NIC's place.  Prints ``READY <ifname> <mac>
<created|attached>`` once frames flow, and ``STATS <json>`` when stopped
(SIGTERM or SIGINT).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from splitnic.errors import SplitnicError
from splitnic.tunnel import format_mac, open_tunnel, parse_mac
from splitnic.tunnel_pump import TunnelPump

from .veth_lab import PacketSocketPort


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m splitnic_lab.bridge", description=__doc__.split("\n")[0])
    parser.add_argument("--kernel", default="auto", help="tunnel backend: auto, stub or tap")
    parser.add_argument("--name", default="snic0")
    parser.add_argument("--mac", type=parse_mac, default=None)
    parser.add_argument("--mtu", type=int, default=1500)
    parser.add_argument("--mode", default="auto", help="stub only: auto, attach or create")
    parser.add_argument("--port-netns", default=None)
    parser.add_argument("--port-if", required=True)
    parser.add_argument("--burst", type=int, default=64)
    args = parser.parse_args(argv)

    try:
        if args.kernel == "stub":
            from splitnic.tunnel_stub import StubTunnel
            tunnel = StubTunnel.open(args.name, args.mac, args.mtu, mode=args.mode)
        else:
            tunnel = open_tunnel(args.kernel, args.name, args.mac, args.mtu)
    except SplitnicError as err:
        print(f"bridge: error: {err}", flush=True)
        return 1
    port = PacketSocketPort(args.port_if, args.port_netns)
    pump = TunnelPump(port, tunnel, burst=args.burst)
    signal.signal(signal.SIGTERM, lambda *_: pump.stop())
    signal.signal(signal.SIGINT, lambda *_: pump.stop())
    tunnel.set_admin_up()
    tunnel.set_carrier(True)
    print(f"READY {tunnel.name} {format_mac(tunnel.mac)} {'created' if getattr(tunnel, 'created', True) else 'attached'}",
          flush=True)
    stats = pump.run()
    print("STATS " + json.dumps({"to_kernel": stats.to_kernel, "to_port": stats.to_port,
                                 "dropped_to_kernel": stats.dropped_to_kernel,
                                 "dropped_to_port": stats.dropped_to_port}), flush=True)
    tunnel.close()
    port.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
