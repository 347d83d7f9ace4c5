"""``splitnic info``: what the NIC says about itself (ID block, spec, build, link)."""

from __future__ import annotations

import argparse
import json

from ..link import KINDS

#: --link help for every command that attaches a NIC (the forms come from splitnic.link).
LINK_HELP = "the NIC: " + "; ".join(KINDS.values())


def _firmware_info(nic) -> dict | None:
    """The firmware's version, build id and findings; None without firmware."""
    from ..errors import SplitnicError
    from ..firmware import Firmware
    fw = Firmware(nic.bus, timeout=10.0)
    status = fw.status()
    if status.version is None:
        return None
    try:
        build = f"{fw.build_id():#010x}"
    except SplitnicError as err:    # a firmware that is running but not answering is worth reporting, not fatal
        build = f"no answer ({err})"
    return {"version": status.version_text, "build_id": build, "phy_ok": status.phy_ok,
            "phy_addr": status.phy_addr, "mac_source": status.mac_source,
            "link_up_cycles": status.link_up_cycles}


def _run(args: argparse.Namespace) -> int:
    import splitnic
    with splitnic.open(args.link) as nic:
        info = nic.info()
        info["firmware"] = _firmware_info(nic)
        info["board"] = nic.link.board_counters() if nic.link.board_counters else None
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
    fw = info["firmware"]
    if fw is None:
        print("firmware:  none (FW_VERSION reads 0; the link state comes from the harness)")
    else:
        phy = f"wire PHY at MDIO {fw['phy_addr']}" + ("" if fw["phy_ok"] else " not answering")
        print(f"firmware:  {fw['version']} (build {fw['build_id']}), {phy}, MAC {fw['mac_source']}")
    board = info["board"] or {}
    if "host_rx_dropped" in board:
        # Frames the host-link port's receive buffer had no room for (docs/hardware.md): the
        # driver paces its writes so that this stays 0; a rise means another sender on the port.
        print(f"board:     {board['host_rx_dropped']} host-link frames dropped (receive buffer full)")
    if "rx_frames" in board:
        # The eth link's own counters on the board (BoardCounters, docs/registers.md).
        print(f"host link: board took {board['rx_frames']} frames ({board['rx_messages']} messages), sent "
              f"{board['tx_frames']} ({board['tx_messages']}); frames dropped: malformed {board['malformed']}, "
              f"after a gap {board['gaps']}, duplicates {board['duplicates']}, over credit {board['overruns']}; "
              f"messages refused {board['bad_address']}; credit stalls {board['credit_stalls']}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` command."""
    p = subparsers.add_parser("info", help="show the NIC's ID block, spec version/hash, build id, link state and firmware")
    p.add_argument("--link", required=True, help=LINK_HELP)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run)
