"""``splitnic info``: what the NIC says about itself (ID block, spec, build, link)."""

from __future__ import annotations

import argparse
import json

from ..link import KINDS

#: --link help for every command that attaches a NIC (the forms come from splitnic.link).
LINK_HELP = "the NIC: " + "; ".join(KINDS.values())


def _run(args: argparse.Namespace) -> int:
    import splitnic
    with splitnic.open(args.link) as nic:
        info = nic.info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    speed = f"{info['speed_mbps']} Mb/s {'full' if info['full_duplex'] else 'half'} duplex"
    print(f"link:      {info['link']} ({info['link_kind']}, {'zero-copy' if info['zero_copy'] else 'copying'})")
    print(f"spec:      {info['spec_version']} hash {info['spec_hash']}")
    print(f"build:     {info['build_id']}")
    print(f"queues:    {info['rx_queues']} RX, {info['tx_queues']} TX, {info['steer_entries']} steering entries")
    print(f"clock:     {info['clock_hz'] / 1e6:g} MHz")
    print(f"mac:       {info['mac']}")
    print(f"carrier:   {'up, ' + speed if info['link_up'] else 'down'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` command."""
    p = subparsers.add_parser("info", help="show the NIC's ID block, spec version/hash, build id and link state")
    p.add_argument("--link", required=True, help=LINK_HELP)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run)
