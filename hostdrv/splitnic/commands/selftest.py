"""``splitnic selftest``: internal loopback (CTRL.LOOPBACK): TX queue 0 -> RX queue 0, compared.

``--firmware`` runs the management firmware's own self-test instead (mailbox
op SELFTEST: its SRAM, the NIC's ID as the CPU reads it, CYCLES, the wire
PHY on MDIO); it leaves the NIC alone.
"""

from __future__ import annotations

import argparse
import os
import random
import time

from ..errors import SplitnicError
from .info import LINK_HELP


def _run_firmware(args: argparse.Namespace) -> int:
    import splitnic
    from ..firmware import SELFTEST_CHECKS, Firmware
    with splitnic.open(args.link) as nic:
        failed = Firmware(nic.bus, timeout=args.timeout).selftest()
    if failed:
        print(f"FAIL: firmware self-test: {', '.join(failed)} failed ({len(SELFTEST_CHECKS) - len(failed)} "
              f"of {len(SELFTEST_CHECKS)} checks passed)")
        return 1
    print(f"PASS: firmware self-test, {len(SELFTEST_CHECKS)} checks ({', '.join(SELFTEST_CHECKS.values())})")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.firmware:
        return _run_firmware(args)
    import splitnic
    from splitnic_spec import constant
    min_frame = constant("MIN_FRAME")
    if not min_frame <= args.max_size <= 0xFFFF:
        raise SplitnicError(f"--max-size must be {min_frame}..65535 bytes, not {args.max_size}")
    rng = random.Random(args.seed)
    with splitnic.open(args.link) as nic:
        mac = nic.mac
        nic.reset()
        if mac == bytes(6):
            mac = bytes([0x02]) + os.urandom(5)
        nic.mac = mac
        nic.set_loopback(True)
        # Buffers just big enough for the largest frame; the queues shrink their
        # rings and buffer counts to fit small DMA memory (the board's 32 KiB).
        buf_size = max(64, -(-args.max_size // 64) * 64)
        rxq = nic.rx_queue(0, ring_log2=6, buf_size=buf_size)
        txq = nic.tx_queue(0, ring_log2=6, buf_size=buf_size)
        frames = []
        for i in range(args.count):
            size = rng.randint(min_frame, args.max_size)
            frames.append(mac + mac + b"\x88\xb5" + i.to_bytes(4, "big") + rng.randbytes(size - 18))
        received: list[bytes] = []
        sent, start = 0, time.monotonic()
        deadline = start + args.timeout
        while len(received) < len(frames) and time.monotonic() < deadline:
            if sent < len(frames):
                sent += txq.tx_burst(frames[sent:sent + 16])
            packets = rxq.rx_burst(64)
            received += [bytes(p.data) for p in packets]
            rxq.release(packets)
            if not packets:
                time.sleep(0.0002)
        elapsed = time.monotonic() - start
        bad = [i for i, (a, b) in enumerate(zip(frames, received)) if a != b]
        nic.set_loopback(False)
        rxq.check()
        txq.check()
    if len(received) != len(frames) or bad:
        what = (f"{len(received)} of {len(frames)} frames came back" if len(received) != len(frames) else "")
        what += (", " if what and bad else "") + (f"frame {bad[0]} differs ({len(bad)} differ)" if bad else "")
        print(f"FAIL: {what} (TX queue 0 -> loopback -> RX queue 0, {elapsed:.2f} s)")
        return 1
    print(f"PASS: {len(frames)} frames of {min_frame}..{args.max_size} bytes looped back intact "
          f"(TX queue 0 -> RX queue 0, {elapsed:.2f} s)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``selftest`` command."""
    p = subparsers.add_parser("selftest", help="loop frames through the NIC internally and compare (resets the NIC)")
    p.add_argument("--link", required=True, help=LINK_HELP)
    p.add_argument("--count", type=int, default=64, help="frames (default %(default)s)")
    p.add_argument("--max-size", type=int, default=1514, help="largest frame (default %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="random seed for sizes and contents")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default %(default)s)")
    p.add_argument("--firmware", action="store_true",
                   help="run the management firmware's self-test instead (board or simulated board SoC)")
    p.set_defaults(func=_run)
