"""Kernel tunnel throughput, kernel -> user -> kernel, stub module vs TAP.

Ref: spec/splitnic_spec/tunnel.py (stub rings); hostdrv/splitnic/tunnel.py.

A sender process sends UDP datagrams from 198.18.0.1 to 198.18.0.2 (a
static neighbour) through the tunnel interface; a user-space reflector
takes each frame with ``recv_burst``, swaps the MAC and IP addresses (the
checksums stay valid) and gives it back with ``send_burst``; a receiver
socket on 198.18.0.1 counts what the kernel delivered.  Figures: frames
per second and Mbit/s (whole Ethernet frames, no FCS) delivered, at 64 B
and 1500 B frames.

* host: the ``tap`` backend on the machine's own kernel;
* guest: ``stub`` and ``tap`` side by side in one QEMU guest (splitnic.ko
  cannot load on the host).  The guest is emulated by TCG, so its absolute
  figures are far below the host's and say nothing about real hardware;
  what carries over is the stub/TAP ratio measured under the same
  emulation.  All processes share the machine's two cores.

``make bench BENCH=tunnel`` runs it; ``python bench/bench_tunnel.py --inner``
is what the guest runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import sys
import time

from splitnic.tunnel import open_tunnel, parse_mac
from splitnic_lab.netns import inside, sh, unique


LOCAL_IP, PEER_IP = "198.18.0.1", "198.18.0.2"
PEER_MAC = "02:00:5e:00:53:02"
FRAME_SIZES = (64, 1500)
#: Ethernet + IPv4 + UDP headers.
HEADERS = 14 + 20 + 8


def _sender(netns: str, payload: int, seconds: float, sport: int, dport: int, count) -> None:
    with inside(netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOCAL_IP, sport))
    data = b"\xa5" * payload
    sent = 0
    end = time.monotonic() + seconds
    send = s.sendto
    while time.monotonic() < end:
        for _ in range(64):
            try:
                send(data, (PEER_IP, dport))
                sent += 1
            except OSError:  # ENOBUFS: the qdisc is full
                pass
    count.value = sent


def _receiver(netns: str, port: int, ready, stop, count) -> None:
    with inside(netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((LOCAL_IP, port))
    s.settimeout(0.2)
    got = 0
    ready.set()
    while not stop.is_set():
        try:
            while True:
                s.recv(2048)
                got += 1
        except (TimeoutError, socket.timeout):
            pass
    count.value = got


def measure(kind: str, frame: int, seconds: float = 2.0) -> dict:
    """Delivered frames/s and Mbit/s through one tunnel backend at one frame size."""
    ns = unique("sbn")
    sh("ip", "netns", "add", ns)
    try:
        with inside(ns):
            tun = open_tunnel(kind, unique("sb"), parse_mac("02:00:5e:00:53:01"), 1500)
            tun.set_admin_up()
        with tun:
            tun.set_carrier(True)
            sh("ip", "-n", ns, "addr", "add", f"{LOCAL_IP}/24", "dev", tun.name)
            sh("ip", "-n", ns, "neigh", "replace", PEER_IP, "lladdr", PEER_MAC, "nud", "permanent", "dev", tun.name)
            ctx = multiprocessing.get_context("fork")
            sent, got = ctx.Value("q", 0), ctx.Value("q", 0)
            ready, stop = ctx.Event(), ctx.Event()
            rx = ctx.Process(target=_receiver, args=(ns, 40001, ready, stop, got))
            rx.start()
            ready.wait(30)
            tx = ctx.Process(target=_sender, args=(ns, frame - HEADERS, seconds, 40000, 40001, sent))
            reflected = 0
            tx.start()
            start = time.monotonic()
            recv, send = tun.recv_burst, tun.send_burst
            while tx.is_alive() or time.monotonic() - start < seconds:
                frames = recv(256)
                if not frames:
                    tun.wait(0.01)
                    continue
                # Swap MACs and IPs; ports stay, so the frame lands on the receiver's port.
                back = [f[6:12] + f[0:6] + f[12:26] + f[30:34] + f[26:30] + f[34:] for f in frames]
                done = 0
                while done < len(back):
                    done += send(back[done:])
                reflected += len(back)
                if time.monotonic() - start > seconds + 5:
                    break
            elapsed = time.monotonic() - start
            tx.join(10)
            time.sleep(0.3)
            stop.set()
            rx.join(10)
    finally:
        sh("ip", "netns", "del", ns, check=False)
    pps = got.value / elapsed
    return {"frame_bytes": frame, "offered": sent.value, "reflected": reflected, "delivered": got.value,
            "seconds": round(elapsed, 2), "pps": round(pps), "mbit_s": round(pps * frame * 8 / 1e6, 1)}


def _inner(kinds: list[str], seconds: float) -> dict:
    return {kind: {f"{frame}B": measure(kind, frame, seconds) for frame in FRAME_SIZES} for kind in kinds}


def run() -> dict:
    """The figures for ``make bench BENCH=tunnel``: host tap, then guest stub and tap."""
    from tests.vm import guest
    results: dict = {"unit": "delivered frames/s (pps) and Mbit/s of whole frames, kernel->user->kernel",
                     "host": _inner(["tap"], 2.0)}
    ver = guest.kernel_version()
    guest.build_module(ver, extra=())
    run_ = guest.run_in_guest(
        f"insmod build/kmod/{ver}/splitnic.ko\nmodprobe tun\n"
        ".venv/bin/python bench/bench_tunnel.py --inner stub tap --seconds 3 > $SPLITNIC_SHARE/bench.json",
        name="bench-tunnel", timeout=400)
    bench_file = run_.share / "bench.json"
    if run_.returncode != 0 or not bench_file.exists():
        raise RuntimeError(f"guest benchmark failed ({run_.returncode}):\n{run_.output[-2000:]}")
    results["guest_tcg"] = json.loads(bench_file.read_text())
    results["guest_console_problems"] = run_.problems()
    stub, tap = results["guest_tcg"]["stub"], results["guest_tcg"]["tap"]
    results["guest_stub_over_tap"] = {k: round(stub[k]["pps"] / max(tap[k]["pps"], 1), 2) for k in stub}
    results["note"] = ("guest figures are under TCG emulation (no KVM): compare stub with tap inside the "
                       "guest, not with the host; every process shares the machine's 2 cores")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inner", nargs="+", metavar="KIND", help="measure these backends here, print JSON")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.inner:
        print(json.dumps(_inner(args.inner, args.seconds), indent=2))
        return 0
    print(json.dumps(run(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
