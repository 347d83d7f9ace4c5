"""``splitnic send``: transmit frames from a pcap file, or built from arguments (:mod:`splitnic.frames`)."""

from __future__ import annotations

import argparse
import time

from ..errors import SplitnicError
from ..frames import ether_header, udp_frame
from ..tunnel import parse_mac
from .info import LINK_HELP


def _mac(text: str) -> str:
    try:
        parse_mac(text)
    except SplitnicError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def build_frames(args: argparse.Namespace, src_mac: str) -> list[bytes]:
    """The frames the arguments describe, each ``--size`` bytes without FCS."""
    dst, src = parse_mac(args.dst), parse_mac(args.src or src_mac)
    base = 14 + (28 if args.udp_dport is not None else 0)  # Ethernet (+ IPv4 + UDP)
    if args.size < base:
        raise SplitnicError(f"--size {args.size} is shorter than the headers ({base} bytes)")
    frames = []
    for i in range(args.count):
        payload = i.to_bytes(4, "big")[:args.size - base] + bytes(max(0, args.size - base - 4))
        if args.udp_dport is not None:
            frames.append(udp_frame(dst, src, args.ip_src, args.ip_dst, args.udp_sport, args.udp_dport, payload))
        else:
            frames.append(ether_header(dst, src, args.ethertype) + payload)
    return frames


def _run(args: argparse.Namespace) -> int:
    import splitnic
    from ..nic import format_mac
    from ..pcap import read_pcap
    with splitnic.open(args.link) as nic:
        if args.pcap:
            frames = list(read_pcap(args.pcap))[:args.count] if args.count else list(read_pcap(args.pcap))
            if not frames:
                raise SplitnicError(f"{args.pcap} holds no frames")
        else:
            if args.dst is None:
                raise SplitnicError("say what to send: --pcap FILE, or --dst MAC (with --udp-dport, --size, --count)")
            frames = build_frames(args, format_mac(nic.mac))
        txq = nic.tx_queue(args.queue, buf_size=max(2048, -(-max(map(len, frames)) // 64) * 64))
        sent, stalled = 0, time.monotonic()
        while sent < len(frames):
            n = txq.tx_burst(frames[sent:sent + 64])
            if n:
                sent += n
                stalled = time.monotonic()
            elif time.monotonic() - stalled > args.timeout:
                raise SplitnicError(f"no free TX buffers for {args.timeout:g} s after {sent} of {len(frames)} frames: "
                                    "the NIC is not transmitting (TX disabled, or its simulator stopped?)")
            else:
                time.sleep(0.0005)
        if not txq.flush(args.timeout):
            raise SplitnicError(f"the NIC did not complete {txq.in_flight} of {len(frames)} frames within "
                                f"{args.timeout:g} s")
        errors = txq.errors
    print(f"sent {len(frames) - errors} frames ({sum(map(len, frames))} bytes) on TX queue {args.queue}"
          + (f", {errors} refused by the NIC (bad length)" if errors else ""))
    return 1 if errors else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``send`` command."""
    p = subparsers.add_parser("send", help="transmit frames from a pcap file or built from arguments")
    p.add_argument("--link", required=True, help=LINK_HELP)
    p.add_argument("--pcap", help="send the frames of this pcap file (in order)")
    p.add_argument("--dst", type=_mac, help="destination MAC address")
    p.add_argument("--src", type=_mac, help="source MAC address (default: the NIC's)")
    p.add_argument("--ethertype", type=lambda s: int(s, 0), default=0x88B5,
                   help="ethertype without --udp-dport (default 0x88b5, local experimental)")
    p.add_argument("--udp-dport", type=int, help="build IPv4/UDP frames to this port")
    p.add_argument("--udp-sport", type=int, default=12345, help="UDP source port (default %(default)s)")
    p.add_argument("--ip-src", default="10.0.0.2", help="IPv4 source (default %(default)s)")
    p.add_argument("--ip-dst", default="10.0.0.1", help="IPv4 destination (default %(default)s)")
    p.add_argument("--size", type=int, default=60, help="frame bytes without FCS (default %(default)s)")
    p.add_argument("--count", type=int, default=None, help="frames to send (default 1; with --pcap: all)")
    p.add_argument("--queue", type=int, default=0, help="TX queue (default %(default)s)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the NIC (default %(default)s)")
    p.set_defaults(func=_run_defaults)


def _run_defaults(args: argparse.Namespace) -> int:
    if args.count is None and not args.pcap:
        args.count = 1
    return _run(args)
