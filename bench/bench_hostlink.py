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

``sim_soc``: the simulated board SoC (LiteX's simulator, the bitstream's
design), ``splitnic selftest``'s loop (TX queue 0, the NIC's loopback, RX
queue 0, compared) over ``etherbone:`` and over ``eth:``, in one run;
``eth_over_etherbone`` is the ratio of their frame rates.
"""

from __future__ import annotations

import time

import splitnic
from splitnic.errors import SplitnicError
from splitnic.selftest import loopback_selftest
from splitnic_lab.netns import add_netns, del_netns, inside, sh, unique
from splitnic_sim.hostlink_standin import HostLinkStandIn
from splitnic_gateware.targets.hostlink_core import BOARD_SLOTS
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
    sim_soc = _sim_soc()
    print(f"sim_soc: {sim_soc}", flush=True)
    return {"emulator": emulator, "fpga": {"line_rate_fraction": fpga}, "sim_soc": sim_soc}
