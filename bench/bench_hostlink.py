"""The eth host link: the host side against the board's software stand-in over a veth pair.

``make bench BENCH=hostlink`` → ``bench/hostlink.json``.

Ref: hostdrv/splitnic/link_eth.py, hostdrv/splitnic/_hostlink.c (the host side),
sim/splitnic_sim/hostlink_standin.c (the board's stand-in), docs/hardware.md,
"The eth host link" (the arithmetic of the wire).

``emulator``: each direction, the host side on one core and the stand-in on
the other, in a namespace of the bench's own:

* ``n2h`` (NIC to host): the stand-in's frame generator fills an RX queue of
  the driver's; its frame bytes and completions arrive as WRITE messages and
  the driver takes and gives back buffers with ``rx_batch``/``release`` (one
  call each per harvest).  ``n2h_packet_objects`` is the same with
  ``rx_burst``, which makes a Python object per frame.
* ``h2n`` (host to NIC): what a TX burst of 256 frames sends, each frame's
  bytes and its descriptor as posted WRITE messages into the board's memory,
  in one call to the port (``write_mirrored``, as the driver's ring syncs a
  burst), then one read that returns once the board has applied them all.
  ``h2n_tx_burst`` is the whole driver's way there: ``TxQueue.tx_burst`` of
  256 frames at a time, each copied into its TX buffer and posted, until the
  board has completed every one.
* ``mbit_s_1500B.h2n_board_window``: ``h2n`` of 1500-byte frames with the
  board's own limits, standard frames and BOARD_SLOTS frames of credit: the
  host may send only as fast as it sees the board's grants.

The reference is the line: 1.49 Mpps of 64-byte frames, 1000 Mb/s.

``fpga.line_rate_fraction``: the board's two message engines, cycle by cycle
at sys = 40 MHz against a 1 Gb/s host link (splitnic_sim.hostlink_linerate:
rx_64B, tx_64B, both_64B, rx_1518B, tx_1518B, both_1518B), over the NIC
wire's line rate; their arithmetic bound is in docs/hardware.md.

``loss``: ``splitnic up`` on the stand-in behind the impairment relay
(splitnic_lab.impair, a process of its own each way), the NIC's wire a TAP in a
peer namespace, the same loss rate both ways, seeded (``LOSS_SEED``):

* ``udp_delivered_fraction.{1pct,5pct}``: of ``UDP_DATAGRAMS`` datagrams the
  peer sends to snic0's kernel at ``UDP_RATE`` a second (the clean link
  carries them all: ``udp_delivered_fraction.clean``), those that arrived;
* ``tcp_goodput_over_clean.{0.1pct,1pct,5pct}``: bytes a second of a TCP
  stream from the peer for ``TCP_SECONDS`` (checked by hash), over the same
  run's clean link (``tcp_mbit_s.clean``); each the median of ``TCP_ROUNDS``
  rounds that take every rate in turn;
* ``sessions_lost``: sessions beyond the first that carried the host's
  messages (the relay counts them) and ``splitnic up`` processes that exited,
  during all of the above and the recovery below;
* ``relay_frames_per_s.{64B,1500B}``: what the relay itself forwards, clean,
  from a sender that outruns it (the figures above mean something only
  while the link needs less; ``relay.*.kernel_drops`` says it did);
* ``recovery_ms``: the driver in this process, the cable cut both ways for
  ``CUT_SECONDS`` (longer than LINK_TIMEOUT_MS) and then clean: the
  milliseconds until a register read and a frame round trip (the NIC's
  loopback) complete.

``sim_soc``: the simulated board SoC (LiteX's simulator, the bitstream's
design), ``splitnic selftest``'s loop (TX queue 0, the NIC's loopback, RX
queue 0, compared) over ``etherbone:`` and over ``eth:``, in one run;
``eth_over_etherbone`` is the ratio of their frame rates.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import splitnic
from splitnic.errors import SplitnicError
from splitnic.selftest import loopback_selftest
from splitnic_lab.impair import BOARD_IF, HOST_IF, Rates, RelayProcess, impaired_segment
from splitnic_lab.netns import add_netns, del_netns, inside, sh, unique
from splitnic_lab.veth_lab import start_up
from splitnic_sim.hostlink_standin import HostLinkStandIn
from splitnic_gateware.targets.hostlink_core import BOARD_SLOTS
from splitnic_spec import CSR_MAP
from splitnic_spec import board as amap
from splitnic_spec import hostlink

SECONDS = 3.0
LINE_PPS_64B = 1e9 / 8 / (64 + 20)


def _frame(size: int) -> bytes:
    return bytes.fromhex("020000000001" "020000000002" "88b5") + bytes(size - 14)


def _n2h(stand_in: HostLinkStandIn, link: str, size: int, *, packet_objects: bool = False) -> float:
    nic = splitnic.open(link)
    try:
        nic.reset()
        nic.mac = bytes.fromhex("020000000001")
        nic.enable(rx=True)
        rxq = nic.rx_queue(0, ring_log2=12, buf_size=(size + 63) // 64 * 64, nbufs=4096)
        stand_in.generate(_frame(size), -1, 0)
        got, start = 0, time.monotonic()
        while time.monotonic() - start < SECONDS:
            if packet_objects:
                burst = rxq.rx_burst(4096)
                got += len(burst)
                rxq.release(burst)
            else:
                batch = rxq.rx_batch(4096)
                got += len(batch)
                batch.release()
        rate = got / (time.monotonic() - start)
        stand_in.generate(_frame(size), 0, 0)
        return rate
    finally:
        nic.close()


def _h2n(link: str, size: int) -> float:
    nic = splitnic.open(link)
    try:
        dma = nic.link.dma
        local, host = dma.local.region, dma.host.region
        # A TX burst of 256 frames as the driver's ring syncs it (EthDma.sync_many_for_device):
        # each frame's bytes in its NIC-local buffer, then the 256 descriptors.
        base = local.device_addr
        spans = [(base + 65536 + i * 2048, size) for i in range(256)] + [(base + i * 16, 16) for i in range(256)]
        sent, start = 0, time.monotonic()
        while time.monotonic() - start < SECONDS:
            dma.port.write_mirrored(spans, local.view, base, host.device_addr, host.size)
            sent += 256
        dma.port.read(amap.NIC_CSR_BASE)     # answered after every earlier write was applied
        return sent / (time.monotonic() - start)
    finally:
        nic.close()


def _h2n_tx_burst(link: str, size: int) -> float:
    nic = splitnic.open(link)
    try:
        nic.reset()
        nic.mac = bytes.fromhex("020000000001")
        nic.enable(tx=True)
        txq = nic.tx_queue(0, ring_log2=10, buf_size=(size + 63) // 64 * 64)
        burst = [_frame(size)] * 256
        sent, start = 0, time.monotonic()
        while time.monotonic() - start < SECONDS:
            sent += txq.tx_burst(burst)
        if not txq.flush(timeout=10):
            raise RuntimeError(f"{link}: {txq.in_flight} frames never completed")
        return sent / (time.monotonic() - start)
    finally:
        nic.close()


def _emulator() -> dict:
    ns = unique("snbench")
    add_netns(ns)
    try:
        sh("ip", "link", "add", "snhost", "type", "veth", "peer", "name", "snboard", netns=ns)
        for ifname in ("snhost", "snboard"):
            sh("ip", "link", "set", ifname, "mtu", "9000", "up", netns=ns)
        with inside(ns), HostLinkStandIn("snboard", local_size=1 << 20, mtu=9000, window=256) as stand_in:
            link = "eth:snhost"
            n2h_64, n2h_1500 = _n2h(stand_in, link, 64), _n2h(stand_in, link, 1500)
            n2h_64_objects = _n2h(stand_in, link, 64, packet_objects=True)
            h2n_64, h2n_1500 = _h2n(link, 60), _h2n(link, 1500)
            h2n_64_tx_burst = _h2n_tx_burst(link, 60)
        # As the board's engines are today: standard frames and BOARD_SLOTS frames of credit, so the
        # host sends only as fast as it sees the board's grants.
        for ifname in ("snhost", "snboard"):
            sh("ip", "link", "set", ifname, "mtu", str(hostlink.MTU_STANDARD), netns=ns)
        with inside(ns), HostLinkStandIn("snboard", local_size=1 << 20, mtu=hostlink.MTU_STANDARD,
                                         window=BOARD_SLOTS):
            h2n_1500_board = _h2n("eth:snhost", 1500)
    finally:
        del_netns(ns)
    return {
        "mpps_64B": {"n2h": round(n2h_64 / 1e6, 3), "h2n": round(h2n_64 / 1e6, 3),
                     "n2h_packet_objects": round(n2h_64_objects / 1e6, 3),
                     "h2n_tx_burst": round(h2n_64_tx_burst / 1e6, 3)},
        "mbit_s_1500B": {"n2h": round(n2h_1500 * 1500 * 8 / 1e6, 1), "h2n": round(h2n_1500 * 1500 * 8 / 1e6, 1),
                         "h2n_board_window": round(h2n_1500_board * 1500 * 8 / 1e6, 1)},
        "line_fraction_64B": {"n2h": round(n2h_64 / LINE_PPS_64B, 3), "h2n": round(h2n_64 / LINE_PPS_64B, 3)},
        "unit": "frames through the link per second, one core each side, MTU 9000 veth",
    }


def _loop_through_the_nic(link: str, frames: int) -> float:
    """Frames per second of ``splitnic selftest``'s loop: TX queue 0, the NIC's loopback, RX queue 0, compared."""
    with splitnic.open(link) as nic:
        result = loopback_selftest(nic, count=frames)
    if not result.ok:
        raise RuntimeError(f"{link}: {result.line()}")
    return frames / result.seconds


def _sim_soc() -> dict:
    """The same loop through the simulated board SoC's NIC over eth: and over etherbone:, in one run."""
    from splitnic_gateware.targets.sim import SOC_IP, TAP, SimSoCProcess
    with SimSoCProcess() as soc, inside(soc.netns_path):
        etherbone = _loop_through_the_nic(f"etherbone:{SOC_IP}", 16)
        try:
            eth = _loop_through_the_nic(f"eth:{TAP}", 64)
        except SplitnicError as err:
            return {"etherbone_frames_per_s": round(etherbone, 2), "error": f"eth: {err}"}
    return {"etherbone_frames_per_s": round(etherbone, 2), "eth_frames_per_s": round(eth, 2),
            "eth_over_etherbone": round(eth / etherbone, 2),
            "unit": "selftest frames (random 60..1514 bytes, the same on both links) per second"}


LOSS_SEED = 27
UDP_DATAGRAMS, UDP_RATE, UDP_BYTES = 5000, 2000, 512
TCP_SECONDS, TCP_ROUNDS = 1.5, 5
#: Long enough for the host to find the board silent (it keeps probing).
CUT_SECONDS = hostlink.LINK_TIMEOUT_MS / 1000 + 0.5
_LOSS_HOST_IP, _LOSS_PEER_IP = "198.18.27.1", "198.18.27.2"
_LOSS_NIC_MAC, _LOSS_PEER_MAC = bytes.fromhex("02005e001b01"), bytes.fromhex("02005e001b02")
_SPLITNIC = Path(sys.executable).parent / "splitnic"


def _udp_delivered(host_ns: str, peer_ns: str) -> float:
    """Fraction of UDP_DATAGRAMS datagrams, sent at UDP_RATE a second from the peer, that reached snic0's kernel."""
    with inside(host_ns):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with inside(peer_ns):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        rx.bind((_LOSS_HOST_IP, 0))
        rx.settimeout(1.0)
        seen: set[int] = set()

        def count() -> None:
            try:
                while True:
                    seen.add(int.from_bytes(rx.recv(2048)[:4], "big"))
            except OSError:
                pass
        reader = threading.Thread(target=count, daemon=True)
        reader.start()
        start, pad = time.monotonic(), bytes(UDP_BYTES - 4)
        for i in range(UDP_DATAGRAMS):
            delay = start + i / UDP_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            tx.sendto(i.to_bytes(4, "big") + pad, rx.getsockname())
        reader.join(10)
    return len(seen) / UDP_DATAGRAMS


def _tcp_mbit_s(host_ns: str, peer_ns: str, seconds: float = TCP_SECONDS) -> float:
    """Goodput of a TCP stream from the peer to snic0's kernel for ``seconds``, checked by hash."""
    with inside(host_ns):
        server = socket.create_server((_LOSS_HOST_IP, 0))
    server.settimeout(60)
    got, received = hashlib.sha256(), [0, 0.0]

    def serve() -> None:
        try:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(60)
                while chunk := conn.recv(1 << 16):
                    got.update(chunk)
                    received[0] += len(chunk)
                received[1] = time.monotonic()
        except OSError:
            pass
    reader = threading.Thread(target=serve, daemon=True)
    reader.start()
    sent, block = hashlib.sha256(), os.urandom(1 << 16)
    try:
        with inside(peer_ns):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.settimeout(60)
        with client:
            client.connect((_LOSS_HOST_IP, server.getsockname()[1]))
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                client.sendall(block)
                sent.update(block)
            client.shutdown(socket.SHUT_WR)
            reader.join(60)
    finally:
        server.close()
    if got.digest() != sent.digest():
        raise RuntimeError(f"the TCP stream through snic0 arrived changed or short ({received[0]} bytes)")
    return received[0] * 8 / (received[1] - start) / 1e6


def _recovery_ms(link: str, relay: RelayProcess) -> float:
    """Cut the cable both ways for CUT_SECONDS, then clean: milliseconds until a register read and a frame
    round trip (the NIC's loopback) complete."""
    nic = splitnic.open(link)
    try:
        nic.reset()
        nic.mac = _LOSS_NIC_MAC
        nic.set_loopback(True)
        rxq, txq = nic.rx_queue(0), nic.tx_queue(0)
        probe = _LOSS_NIC_MAC + _LOSS_PEER_MAC + b"\x88\xb5" + bytes(50)
        for d in ("h2b", "b2h"):
            relay.set_rates(d, Rates(loss=1.0))
        time.sleep(CUT_SECONDS)
        relay.clean()
        start, deadline = time.monotonic(), time.monotonic() + 30
        while True:
            try:
                nic.link.bus.read32(0)
                break
            except SplitnicError:
                if time.monotonic() > deadline:
                    raise
        while not txq.tx_burst([probe]):
            if time.monotonic() > deadline:
                raise RuntimeError("no TX room 30 s after the cable came back")
        while True:
            got = rxq.rx_burst(1)
            if got:
                rxq.release(got)
                return (time.monotonic() - start) * 1000
            if time.monotonic() > deadline:
                raise RuntimeError("no frame round trip 30 s after the cable came back")
    finally:
        nic.close()


_BLAST = """
import socket, sys, time
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((sys.argv[1], 0))
frame = bytes.fromhex("ffffffffffff020000000002") + (0x88B5).to_bytes(2, "big") + bytes(int(sys.argv[2]) - 14)
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    for _ in range(256):
        try:
            sock.send(frame)
        except OSError:
            pass
"""


def _relay_frames_per_s(size: int, seconds: float = 2.0) -> float:
    """Frames a second the relay forwards, clean, from a sender in another process that outruns it."""
    ns = unique("snbrelay")
    add_netns(ns)
    try:
        with impaired_segment(ns, hostlink.MTU_JUMBO), RelayProcess(ns, seed=LOSS_SEED, max_seconds=60):
            def arrived() -> int:
                stats = sh("ip", "-n", ns, "-s", "-j", "link", "show", BOARD_IF).stdout
                return json.loads(stats)[0]["stats64"]["rx"]["packets"]
            before = arrived()
            sh(sys.executable, "-c", _BLAST, HOST_IF, str(size), str(seconds), netns=ns, timeout=60)
            return (arrived() - before) / seconds
    finally:
        del_netns(ns)


def _loss() -> dict:
    """``splitnic up`` over the stand-in behind the impairment relay (module docstring, ``loss``)."""
    ns, peer = unique("snbloss"), unique("snblpeer")
    add_netns(ns)
    add_netns(peer)
    stand_in = relay = up = None
    exits, figures = 0, {}
    try:
        with impaired_segment(ns):
            with inside(ns):
                stand_in = HostLinkStandIn(BOARD_IF, local_size=1 << 20, wire="tap:snblwire").start()
            sh("ip", "link", "set", "snblwire", "netns", peer, netns=ns)
            sh("ip", "-n", peer, "link", "set", "snblwire", "address", _LOSS_PEER_MAC.hex(":"), "up")
            sh("ip", "-n", peer, "addr", "add", f"{_LOSS_PEER_IP}/24", "dev", "snblwire")
            sh("sysctl", "-qw", "net.ipv6.conf.snblwire.disable_ipv6=1", netns=peer)
            link_reg = CSR_MAP.register("LINK")
            stand_in.nic.write_reg(link_reg.offset, link_reg.pack(UP=1, SPEED=link_reg.field("SPEED").value("1000"),
                                                                  FULL_DUPLEX=1))
            stand_in.nic.write_reg(CSR_MAP.register("MAC_ADDR_LO").offset, int.from_bytes(_LOSS_NIC_MAC[:4], "little"))
            stand_in.nic.write_reg(CSR_MAP.register("MAC_ADDR_HI").offset, int.from_bytes(_LOSS_NIC_MAC[4:], "little"))
            relay = RelayProcess(ns, seed=LOSS_SEED, max_seconds=900)

            def start_snic0():
                started = start_up(["ip", "netns", "exec", ns, str(_SPLITNIC), "up", "--link", f"eth:{HOST_IF}",
                                    "--kernel", "tap", "--name", "snic0"], "snic0", 60)
                sh("sysctl", "-qw", "net.ipv6.conf.snic0.disable_ipv6=1", netns=ns)
                sh("ip", "-n", ns, "addr", "replace", f"{_LOSS_HOST_IP}/24", "dev", "snic0")
                return started

            up = start_snic0()
            # Warm up: both neighbour tables filled, TCP's first slow start behind us.
            sh("ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", _LOSS_HOST_IP, netns=peer, timeout=60)
            _tcp_mbit_s(ns, peer, 1.0)
            udp: dict[str, float] = {}
            # Rounds of every rate in turn, the median of each: on a shared machine one run of a few
            # seconds varies by tens of per cent, and load that comes and goes must not favour one rate.
            rates = (("clean", 0.0), ("0.1pct", 0.001), ("1pct", 0.01), ("5pct", 0.05))
            runs: dict[str, list[float]] = {name: [] for name, _ in rates}
            for round_ in range(TCP_ROUNDS):
                for name, loss in rates:
                    for d in ("h2b", "b2h"):
                        relay.set_rates(d, Rates(loss=loss))
                    if round_ == 0 and name in ("clean", "1pct", "5pct"):
                        udp[name] = round(_udp_delivered(ns, peer), 4)
                    runs[name].append(_tcp_mbit_s(ns, peer))
                    if up.proc.poll() is not None:
                        exits += 1
                        up = start_snic0()
            tcp = {name: sorted(values)[len(values) // 2] for name, values in runs.items()}
            print(f"loss: udp {udp}, tcp Mb/s {runs}", flush=True)
            relay.clean()
            status, out = up.stop(signal.SIGTERM)
            if status:
                exits += 1
            up = None
            with inside(ns):
                recovery = _recovery_ms(f"eth:{HOST_IF}", relay)
            counters = relay.counters()
            relay.stop()
            relay = None
            figures = {
                "udp_delivered_fraction": udp,
                "tcp_goodput_over_clean": {k: round(v / tcp["clean"], 3) for k, v in tcp.items() if k != "clean"},
                "tcp_mbit_s": {k: round(v, 1) for k, v in tcp.items()},
                "sessions_lost": max(0, counters["h2b"]["sessions"] - 2) + exits,
                "recovery_ms": round(recovery, 1),
                "relay_frames_per_s": {f"{size}B": round(_relay_frames_per_s(size)) for size in (64, 1500)},
                "relay": {d: {k: counters[d][k] for k in ("frames", "lost", "kernel_drops")} for d in counters},
                "unit": f"seed {LOSS_SEED}, the same loss both ways; sessions_lost counts beyond the two the bench "
                        "opens (splitnic up, then the recovery's driver)",
            }
    finally:
        if up is not None:
            up.stop(signal.SIGKILL)
        if relay is not None:
            relay.stop()
        if stand_in is not None:
            stand_in.close()
        del_netns(ns)
        del_netns(peer)
    return figures


def run() -> dict:
    emulator = _emulator()
    print(f"emulator: n2h {emulator['mpps_64B']['n2h']} Mpps at 64 B "
          f"({emulator['mpps_64B']['n2h_packet_objects']} with a Packet per frame), "
          f"{emulator['mbit_s_1500B']['n2h']} Mb/s at 1500 B; h2n {emulator['mpps_64B']['h2n']} Mpps "
          f"({emulator['mpps_64B']['h2n_tx_burst']} through TxQueue.tx_burst), "
          f"{emulator['mbit_s_1500B']['h2n']} Mb/s ({emulator['mbit_s_1500B']['h2n_board_window']} "
          f"with the board's {BOARD_SLOTS} frames of credit at MTU {hostlink.MTU_STANDARD})", flush=True)
    from splitnic_sim.hostlink_linerate import line_rate_fractions
    fpga = line_rate_fractions()
    print(f"fpga line rate fractions (sys 40 MHz, host link MTU 9000): {fpga}", flush=True)
    loss = _loss()
    print(f"loss: {loss}", flush=True)
    sim_soc = _sim_soc()
    print(f"sim_soc: {sim_soc}", flush=True)
    return {"emulator": emulator, "fpga": {"line_rate_fraction": fpga}, "loss": loss, "sim_soc": sim_soc}
