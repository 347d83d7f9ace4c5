"""``splitnic phy``: read and write the wire PHY's registers through the firmware's mailbox (MDIO)."""

from __future__ import annotations

import argparse

from ..errors import SplitnicError
from .info import LINK_HELP


def _register(text: str) -> int:
    from ..firmware import PHY_REGISTERS
    name = text.lower()
    if name in PHY_REGISTERS:
        return PHY_REGISTERS[name]
    try:
        reg = int(text, 0)
    except ValueError:
        raise SplitnicError(f"PHY register must be 0..31 or one of {', '.join(PHY_REGISTERS)}, not {text!r}") from None
    if not 0 <= reg < 32:
        raise SplitnicError(f"PHY register must be 0..31 (clause 22), not {text}")
    return reg


def _value(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise SplitnicError(f"value must be a number such as 0x1140, not {text!r}") from None
    if not 0 <= value <= 0xFFFF:
        raise SplitnicError(f"a PHY register holds 16 bits: value must be 0..0xffff, not {text}")
    return value


def _run(args: argparse.Namespace) -> int:
    import splitnic
    from ..firmware import PHY_REGISTERS, Firmware
    if args.action != "dump" and args.reg is None:
        raise SplitnicError(f"phy {args.action} needs a REG (0..31 or a name such as bmsr)")
    if args.action == "write" and args.value is None:
        raise SplitnicError("phy write needs a VALUE (0..0xffff)")
    if args.action != "write" and args.value is not None:
        raise SplitnicError(f"phy {args.action} takes no VALUE")
    reg = _register(args.reg) if args.action != "dump" else 0
    value = _value(args.value) if args.action == "write" else 0
    with splitnic.open(args.link) as nic:
        fw = Firmware(nic.bus, timeout=args.timeout)
        phy = args.phy if args.phy is not None else fw.status().phy_addr
        if args.action == "read":
            print(f"{fw.phy_read(phy, reg):#06x}")
        elif args.action == "write":
            fw.phy_write(phy, reg, value)
        else:
            names = {v: k for k, v in PHY_REGISTERS.items()}
            for r in range(32):
                print(f"{r:2d} {names.get(r, ''):<9} {fw.phy_read(phy, r):#06x}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``phy`` command."""
    p = subparsers.add_parser("phy", help="read or write PHY registers (MDIO, through the NIC's firmware)",
                              description="Read or write clause-22 PHY registers through the management "
                              "firmware's mailbox. REG is 0..31 or a name (bmcr, bmsr, physid1, physid2, anar, "
                              "anlpar, aner, ctrl1000, stat1000, estatus). Needs firmware: the board or the "
                              "simulated board SoC.")
    p.add_argument("--link", required=True, help=LINK_HELP)
    p.add_argument("--phy", type=int, default=None,
                   help="MDIO address of the PHY (default: the wire PHY the firmware found)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the firmware (default %(default)s)")
    p.add_argument("action", choices=("read", "write", "dump"), help="read REG, write REG VALUE, or dump all 32")
    p.add_argument("reg", nargs="?", default=None, help="register number or name (read/write)")
    p.add_argument("value", nargs="?", default=None, help="16-bit value (write)")
    p.set_defaults(func=_run)
