"""The ``eth`` link: the board over raw Ethernet, posted writes both ways, nothing on the data path waits.

Ref: spec/splitnic_spec/hostlink.py (the protocol; docs/registers.md, "splitnic
eth host link"); docs/hardware.md, "The eth host link" (cabling, rates, loss).

The link argument::

    eth:IFNAME                  the one board that answers on interface IFNAME
    eth:IFNAME@MAC              the board with address MAC (aa:bb:cc:dd:ee:ff), when several answer
    eth:IFNAME,takeover         bind the board even if it is bound to another host (that host is gone:
    eth:IFNAME@MAC,takeover     rebooted with another address, or replaced); never needed otherwise

The DMA memory is split by who writes it, so that no byte the driver needs
ever has to be read across the cable:

* **host memory** (:data:`~splitnic_spec.hostlink.HOST_WINDOW_BASE` onwards,
  an anonymous mapping here): what the NIC writes, i.e. completion rings and RX
  buffers.  The NIC's DMA writes arrive as WRITE messages that the host side
  (:mod:`splitnic.hostlink_port`, C) applies to it directly, in order and
  exactly once (a frame lost on the cable is replayed by the board), so for
  the CPU it is zero-copy: ``sync_for_cpu`` has nothing to do.
* **NIC-local memory** (the board's DMA RAM): what the NIC reads, i.e.
  descriptor rings and TX buffers.  The driver writes a local copy (the
  mirror) and ``sync_for_device`` sends the bytes as posted WRITE messages, in
  the same ordered stream as the register writes, so a doorbell always lands
  after the descriptors it announces.

Register reads (probe, statistics, the board's link counters:
:func:`board_counters`, ``splitnic info``) keep a round trip; register writes are
posted and leave at once (one frame each, which also carries whatever the
queues synced before them).

A board that is reset or power-cycled loses its session, NIC-local memory and
the NIC's registers.  The host side finds out (the board answers STALE) and
binds again by itself; the first register access after that writes the whole
mirror of NIC-local memory to the board again (:class:`EthBus`), and
:attr:`EthBus.epoch` grows so that the driver above re-arms the NIC's queues
(``splitnic up`` does: :mod:`splitnic.kernel_path`).  Frames in flight are
lost, the link is not.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import socket
import struct
from dataclasses import dataclass
from typing import Callable

from splitnic_spec import board as amap
from splitnic_spec import hostlink as hl

from .bus import check_offset
from .dma import DmaAllocator, DmaRegion, shared_memory_file
from .errors import SplitnicError
from .link import Link
from .link_lock import lock_exclusive

__all__ = ["EthBus", "EthDma", "EthTarget", "parse_eth", "board_counters", "open_eth", "DEFAULT_HOST_MEMORY"]

log = logging.getLogger(__name__)

_SIOCGIFMTU = 0x8921
#: Where the one-driver-per-board locks live (root's: opening the link needs CAP_NET_RAW anyway).
LOCK_DIR = "/run"
#: Host memory the driver registers with the board (RX buffers, completion rings).
DEFAULT_HOST_MEMORY = 8 << 20


@dataclass(frozen=True)
class EthTarget:
    """What ``eth:IFNAME[@MAC][,takeover]`` names."""
    ifname: str
    board_mac: bytes | None = None
    takeover: bool = False


def parse_eth(arg: str) -> EthTarget:
    """The interface, board and options of an ``eth:`` link argument (module docstring)."""
    form = "eth:IFNAME[@MAC][,takeover]"
    head, *options = arg.split(",")
    ifname, at, mac_text = head.partition("@")
    if not ifname:
        raise SplitnicError(f"eth:{arg}: no interface name; the form is {form}")
    mac = None
    if at:
        try:
            mac = bytes.fromhex(mac_text.replace(":", "").replace("-", ""))
        except ValueError:
            mac = None
        if mac is None or len(mac) != 6:
            raise SplitnicError(f"eth:{arg}: {mac_text!r} is not a MAC address (aa:bb:cc:dd:ee:ff); the form is {form}")
    unknown = [o for o in options if o != "takeover"]
    if unknown:
        raise SplitnicError(f"eth:{arg}: unknown option {unknown[0]!r}; the form is {form}")
    return EthTarget(ifname, mac, "takeover" in options)


class EthBus:
    """The NIC's register window over the host link: reads wait for an ANSWER, writes are posted.

    Loss on the cable is the link's to repair (resends both ways): nothing here
    checks for it.  A board reset is not: before each access the bus looks
    whether the link bound the board again since the last one (``epoch``), and
    if so runs ``on_reattach`` first (the mirror of NIC-local memory written
    again), so the access and everything after it meet a board that has the
    driver's memory back.  The NIC's registers are the driver's to program
    again: it watches :attr:`epoch`.
    """

    def __init__(self, port, base: int = amap.NIC_CSR_BASE, window: int = amap.NIC_CSR_SIZE,
                 on_reattach: Callable[[], None] | None = None) -> None:
        self.port = port
        self.base = base
        self.window = window
        self.on_reattach = on_reattach
        self._epoch = port.reattaches

    @property
    def epoch(self) -> int:
        """Value of the times the board was reset and bound again since the link opened (the driver
        re-arms the NIC when it grows)."""
        return self.port.reattaches

    def _follow_board(self) -> None:
        epoch = self.port.reattaches
        if epoch != self._epoch:
            self._epoch = epoch
            log.warning("eth:%s: the board was reset and is bound again (session %#010x, re-attach %d); "
                        "NIC-local memory is written again", self.port.ifname, self.port.session, epoch)
            if self.on_reattach:
                self.on_reattach()

    def read32(self, offset: int) -> int:
        """Value of the register at ``offset``."""
        check_offset(offset, self.window)
        self._follow_board()
        value = self.port.read(self.base + offset, 1)[0]
        log.debug("read  %#05x -> %#010x", offset, value)
        return value

    def write32(self, offset: int, value: int) -> None:
        """Write the register at ``offset`` (posted; it leaves now, after everything synced before it)."""
        log.debug("write %#05x <- %#010x", offset, value)
        self.write32_many([(offset, value)])

    def write32_many(self, writes: list[tuple[int, int]]) -> None:
        """Write ``(offset, value)`` registers in order, posted, leaving together (one frame where
        they fit) after everything synced before them: an application's RX and TX doorbells."""
        for offset, _ in writes:
            check_offset(offset, self.window)
        self._follow_board()
        for offset, value in writes:
            self.port.write32(self.base + offset, value & 0xFFFF_FFFF)
        self.port.flush()

    def read_burst(self, offset: int, count: int) -> list[int]:
        """Values of ``count`` consecutive registers (one READ message)."""
        check_offset(offset, self.window, count)
        self._follow_board()
        return self.port.read(self.base + offset, count)

    def close(self) -> None:
        """Nothing of its own: the link closes the port."""


class EthDma:
    """Host memory for what the NIC writes, a mirror of NIC-local memory for what it reads (module docstring)."""

    zero_copy = False
    #: For ring.fit_sizes: the scarce NIC-local memory holds only what the NIC reads.
    small_memory_is_device_read_only = True

    def __init__(self, port, host: DmaRegion, host_file: int, local_base: int, local_size: int) -> None:
        self.port = port
        self.host = DmaAllocator(host, zero_copy=True)
        #: Both memories are files (memfds) that ``splitnic up`` can hand an application process
        #: (splitnic.app_server): it reads what the NIC wrote straight from host memory, and
        #: writes its descriptors and TX frames into the mirror, which the primary sends on.
        self.host_file = host_file
        self.local_file = shared_memory_file("splitnic-eth-local", local_size)
        self._local_mm = mmap.mmap(self.local_file, local_size)
        self.local = DmaAllocator(DmaRegion(local_base, memoryview(self._local_mm)), zero_copy=True)

    def _pool(self, device_addr: int) -> DmaAllocator:
        for pool in (self.host, self.local):
            base = pool.region.device_addr
            if base <= device_addr < base + pool.region.size:
                return pool
        raise ValueError(f"device address {device_addr:#x} is in neither the host memory nor the NIC-local memory")

    def alloc(self, size: int, align: int = 64, *, device_writes: bool = False) -> DmaRegion:
        """A zero-filled region: in host memory if the NIC writes it, else in NIC-local memory (zeroed there too)."""
        if device_writes:
            return self.host.alloc(size, align)
        region = self.local.alloc(size, align)
        self.sync_for_device(region.device_addr, region.size)
        return region

    def free(self, region: DmaRegion) -> None:
        """Give ``region`` back to its pool."""
        self._pool(region.device_addr).free(region)

    @property
    def free_bytes(self) -> int:
        """Value of the NIC-local bytes free: the scarce memory (the board's block RAM)."""
        return self.local.free_bytes

    @property
    def largest_free(self) -> int:
        """Value of the largest free NIC-local piece (what sizes the rings on the board)."""
        return self.local.largest_free

    def _local_span(self, device_addr: int, size: int) -> tuple[int, int, int] | None:
        # (device address, offset in the mirror, length) in whole words: the board's memory
        # and the messages move 32-bit words.  None: host memory, nothing to send.
        pool = self._pool(device_addr)
        if pool is self.host or not size:
            return None
        pool._check_span(device_addr, size)
        base = pool.region.device_addr
        start, end = device_addr & ~3, min((device_addr + size + 3) & ~3, base + pool.region.size)
        return start, start - base, end - start

    def sync_for_device(self, device_addr: int, size: int) -> None:
        """Send NIC-local bytes the CPU wrote as posted writes; host memory needs nothing."""
        span = self._local_span(device_addr, size)
        if span is not None:
            start, off, length = span
            self.port.write(start, self.local.region.view[off:off + length])

    def sync_many_for_device(self, spans: list[tuple[int, int]]) -> None:
        """:meth:`sync_for_device` of each ``(device_addr, size)``, in order, in one call to the host side.

        The host side (C) picks out the NIC-local spans and rounds them to
        words: a TX burst has two a frame (its bytes and its descriptor), and
        doing that here in Python was most of what a burst of small frames cost.
        """
        local, host = self.local.region, self.host.region
        self.port.write_mirrored(spans, local.view, local.device_addr, host.device_addr, host.size)

    def write_local_again(self) -> None:
        """Send the whole mirror of NIC-local memory (the board was reset and lost it)."""
        region = self.local.region
        self.port.write(region.device_addr, region.view)
        self.port.flush()

    def sync_for_cpu(self, device_addr: int, size: int) -> None:
        """Nothing to do: the NIC writes only host memory, which the host side fills as messages arrive."""

    def close(self) -> None:
        """Close the memories' files; the mappings go with the last view of them.

        (Releasing a memoryview that queues still slice, as a closed link's
        forgotten queues may, leaves cffi a buffer that crashes the garbage
        collector.)
        """
        for fd in (self.host_file, self.local_file):
            os.close(fd)
        self.host_file = self.local_file = -1


def _interface_mtu(ifname: str) -> int:
    # An ioctl, not /sys/class/net: sysfs shows the namespace it was mounted in,
    # a socket the namespace this thread is in.
    request = struct.pack("16si12x", ifname.encode()[:15], 0)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            return struct.unpack_from("16si", fcntl.ioctl(sock, _SIOCGIFMTU, request))[1]
    except OSError:
        raise SplitnicError(f"eth:{ifname}: no interface {ifname!r} in this network namespace: cable the board's "
                            "host-link port to this machine and name that interface (docs/hardware.md)") from None


def _lock_path(ifname: str) -> str:
    # Interface names are per network namespace: the namespace's inode tells two apart.
    netns = os.stat("/proc/thread-self/ns/net").st_ino
    return f"{LOCK_DIR}/splitnic-eth-{netns}-{ifname}.lock"


def open_eth(arg: str, host_memory: int = DEFAULT_HOST_MEMORY) -> Link:
    """Attach the board named by ``arg`` (``IFNAME[@MAC][,takeover]``): open the link (HELLO), map host
    memory, mirror NIC-local memory."""
    from .hostlink_port import HostLinkPort   # the C module loads only for this link
    target = parse_eth(arg)
    ifname = target.ifname
    mtu = min(_interface_mtu(ifname), hl.MTU_JUMBO)
    if mtu < hl.MTU_STANDARD:
        raise SplitnicError(f"eth:{ifname}: its MTU is {mtu}; the host link needs at least {hl.MTU_STANDARD} "
                            f"(ip link set {ifname} mtu {hl.MTU_JUMBO} for jumbo frames, the fastest)")
    # One driver per interface in this namespace: a second one's HELLO would take the board from the first.
    lock = lock_exclusive(_lock_path(ifname), f"eth:{ifname}", create=True)
    host_file = shared_memory_file("splitnic-eth-host", host_memory)
    host_mm = mmap.mmap(host_file, host_memory)
    host = DmaRegion(hl.HOST_WINDOW_BASE, memoryview(host_mm))
    try:
        port = HostLinkPort(ifname, host.view, hl.HOST_WINDOW_BASE, mtu=mtu)
    except BaseException:
        os.close(lock)
        os.close(host_file)
        host.view.release()
        host_mm.close()
        raise
    try:
        board_hello = port.hello(board_mac=target.board_mac, takeover=target.takeover)
    except BaseException:
        port.close()
        os.close(lock)
        os.close(host_file)
        raise
    try:
        dma = EthDma(port, host, host_file, board_hello["local_base"], board_hello["local_size"])
    except BaseException:
        port.close()
        os.close(lock)
        os.close(host_file)
        raise
    bus = EthBus(port, on_reattach=dma.write_local_again)
    desc = (f"eth:{ifname} (board {board_hello['board_mac']}, MTU {min(mtu, board_hello['mtu'])}; "
            f"{board_hello['local_size'] // 1024} KiB NIC-local memory at {board_hello['local_base']:#x} for "
            f"descriptors and TX frames, {host_memory >> 20} MiB host memory at {hl.HOST_WINDOW_BASE:#x} for "
            "RX frames and completions; posted writes both ways)")
    link = Link("eth", bus, dma, desc, zero_copy=False, irq=port.irq,
                details={"ifname": ifname, "board_mac": board_hello["board_mac"], "mtu": mtu,
                         "board_mtu": board_hello["mtu"], "board_window": board_hello["window"],
                         "local_base": board_hello["local_base"], "local_size": board_hello["local_size"],
                         "host_base": hl.HOST_WINDOW_BASE, "host_size": host_memory})

    def _close() -> None:
        port.close()      # no more writes into host memory from here on
        dma.close()
        os.close(lock)
    link._on_close.append(_close)
    link.board_counters = lambda: board_counters(port)
    log.info("%s", desc)
    return link


def board_counters(port) -> dict[str, int]:
    """The board's link counters (BoardCounters, in the spec's order), read with one READ message."""
    names = [m.name for m in hl.BOARD_COUNTERS.members]
    return dict(zip(names, port.read(hl.COUNTERS_BASE, len(names))))
