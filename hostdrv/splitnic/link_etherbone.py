"""The ``etherbone`` link: the board's registers and DMA memory over UDP (LiteX's Etherbone).

Ref: CERN Etherbone as LiteX implements it (liteeth/frontend/etherbone.py,
litex/tools/remote/etherbone.py): one UDP datagram holds an 8-byte packet
header (magic 0x4E6F, version 1, 32-bit addresses and data) and here exactly
one record: a 4-byte record header (flags, byte enables, write count, read
count), then either a base address and the words to write at incrementing
addresses, or a return address and the addresses to read.  The board answers
a read record with a write record to the return address, carrying the values.
Everything is big-endian on the wire.

On the board the NIC's DMA memory is its own block RAM
(:mod:`splitnic_spec.board`), not host memory, so this link
is **not zero-copy**: the driver works on a local copy, and
:meth:`EtherboneDma.sync_for_device` / :meth:`EtherboneDma.sync_for_cpu` move
bytes between the copy and the board, like Linux's ``dma_sync_single_for_*``.

The board answers to the UDP port it listens on (1234), not to the
request's source port, so the client owns that port on this machine: one
Etherbone client per host address at a time.

Writes are posted (Etherbone does not answer them) and the board handles
datagrams in order, so a later read observes every earlier write.  Reads are
pipelined: up to :data:`WINDOW` records are in flight, each tagged by its
return address so that a late answer to an abandoned read is recognised and
dropped.  No record holds more than
:data:`~splitnic_spec.board.MAX_BURST_WORDS` words: LiteX's
Etherbone buffers that many and stalls on more.

Nothing here is sent faster than the board can keep.  While Etherbone waits
for the bus (the NIC's DMA has it), frames wait in the host-link port's
receive buffer, and one that finds it full is dropped: a read would be sent
again, but a posted write would be lost without a word.  So the client keeps
at most :data:`IN_FLIGHT_BYTES` (half that buffer, the rest for the port's
other traffic) of frames unanswered: before a write that would pass
:data:`WRITE_BYTES`, it reads a register and waits for the answer, which
comes only once every earlier datagram has been handled.
"""

from __future__ import annotations

import logging
import mmap
import socket
import struct
import time
from typing import Iterable

from splitnic_spec import board as amap
from splitnic_spec import constant

from .bus import check_offset
from .dma import DmaAllocator, DmaRegion
from .errors import SplitnicError
from .link import Link

__all__ = ["EtherboneClient", "EtherboneBus", "EtherboneDma", "open_etherbone", "parse_target",
           "MAGIC", "MAX_WORDS", "TIMEOUT", "WINDOW", "IN_FLIGHT_BYTES", "WRITE_BYTES", "frame_bytes"]

log = logging.getLogger(__name__)

MAGIC = 0x4E6F
_VERSION = 1
#: Packet header: magic, version<<4 (no probe, reads allowed), addr_size<<4 | port_size (4 bytes each), 4 pad bytes.
_PACKET = struct.Struct(">HBB4x")
_PACKET_HEADER = _PACKET.pack(MAGIC, _VERSION << 4, 0x44)
#: Record header: flags, byte enables, write count, read count.
_RECORD = struct.Struct(">BBBB")
_ALL_BYTES = 0x0F
#: Words per record the SoC accepts.
MAX_WORDS = amap.MAX_BURST_WORDS
#: Seconds to wait for an answer before trying a read again.  A board answers in
#: tens of microseconds; the simulated SoC takes milliseconds.
TIMEOUT = 2.0
#: Times a read is sent before the link gives up (UDP may drop a datagram).
TRIES = 3
#: Read records in flight at once: enough to hide the round trip, few enough
#: for the board's receive FIFO.
WINDOW = 4
#: Bytes of frames (as the board's receive buffer holds them) sent and not yet
#: known to be handled, at most: half the host-link port's receive buffer.
IN_FLIGHT_BYTES = amap.HOST_RX_BUFFER_BYTES // 2
#: Ethernet, IPv4 and UDP headers in front of each datagram.
_FRAME_HEADERS = 14 + 20 + 8


def frame_bytes(datagram: int) -> int:
    """Bytes a datagram of ``datagram`` bytes takes in the board's receive buffer (32-bit words)."""
    return (max(_FRAME_HEADERS + datagram, constant("MIN_FRAME")) + 3) & ~3


#: Of :data:`IN_FLIGHT_BYTES`, what writes may fill before a read confirms them: the
#: rest is for a full window of reads (and the one that confirms).
WRITE_BYTES = IN_FLIGHT_BYTES - WINDOW * frame_bytes(_PACKET.size + _RECORD.size + 4 + 4 * MAX_WORDS)


def parse_target(arg: str) -> tuple[str, int]:
    """``(host, port)`` from ``HOST`` or ``HOST:PORT`` (default port: the board's)."""
    host, sep, port = arg.rpartition(":")
    if not sep:
        return arg, amap.ETHERBONE_UDP_PORT
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise SplitnicError(f"--link etherbone:HOST[:PORT] needs a UDP port 1..65535 after the colon, not {arg!r}")
    return host, int(port)


class EtherboneClient:
    """Word reads and writes at bus addresses of a LiteX SoC, over one UDP socket."""

    def __init__(self, host: str, port: int = amap.ETHERBONE_UDP_PORT, timeout: float = TIMEOUT,
                 write_bytes: int = WRITE_BYTES) -> None:
        """``write_bytes``: posted writes (frame bytes) sent before a read confirms them; only a
        benchmark's reference should raise it above :data:`WRITE_BYTES`."""
        self.where = f"etherbone:{host}:{port}"
        self.host = host
        self.timeout = timeout
        self.write_bytes = write_bytes
        # LiteX's Etherbone answers to the port it listens on, not to the request's
        # source port: the socket must own that port number on the address that
        # routes to the board.
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect((host, port))
            local_ip = probe.getsockname()[0]
        except OSError as err:
            raise SplitnicError(f"{self.where}: cannot reach the board ({err.strerror or err}); "
                                "check the host-link cable and this machine's address (see docs/hardware.md)") from None
        finally:
            probe.close()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((local_ip, port))
            self._sock.connect((host, port))
        except OSError as err:
            self._sock.close()
            raise SplitnicError(f"{self.where}: cannot take UDP port {port} on {local_ip} for the answers "
                                f"({err.strerror or err}); another Etherbone client (splitnic, litex_server) "
                                "is attached: close it") from None
        self._tag = 0
        #: Datagrams sent and received, for figures and tests.
        self.sent = self.received = 0
        #: Frame bytes sent in all (frame_bytes), and how many of them the newest answer confirms.
        self._sent_bytes = self._confirmed_bytes = 0
        #: Reads sent to confirm writes (see WRITE_BYTES), for figures and tests.
        self.confirmations = 0

    # ---------------------------------------------------------------- wire format
    @staticmethod
    def encode_writes(addr: int, values: list[int]) -> bytes:
        """One datagram writing ``values`` at ``addr``, ``addr + 4``, ..."""
        if not 0 < len(values) <= MAX_WORDS:
            raise ValueError(f"a record writes 1..{MAX_WORDS} words, not {len(values)}")
        return (_PACKET_HEADER + _RECORD.pack(0, _ALL_BYTES, len(values), 0)
                + struct.pack(f">{len(values) + 1}I", addr, *values))

    @staticmethod
    def encode_reads(ret_addr: int, addrs: list[int]) -> bytes:
        """One datagram reading ``addrs``; the answer is a write to ``ret_addr``."""
        if not 0 < len(addrs) <= MAX_WORDS:
            raise ValueError(f"a record reads 1..{MAX_WORDS} words, not {len(addrs)}")
        return (_PACKET_HEADER + _RECORD.pack(0, _ALL_BYTES, 0, len(addrs))
                + struct.pack(f">{len(addrs) + 1}I", ret_addr, *addrs))

    @staticmethod
    def decode_answer(data: bytes) -> tuple[int, list[int]]:
        """``(return address, values)`` of an answer datagram; ValueError if it is not one."""
        if len(data) < _PACKET.size + _RECORD.size + 4:
            raise ValueError(f"{len(data)} bytes is too short for an Etherbone answer")
        magic, version, sizes = _PACKET.unpack_from(data)
        if magic != MAGIC or version >> 4 != _VERSION:
            raise ValueError(f"not Etherbone version {_VERSION}: magic {magic:#06x}, version {version >> 4}")
        _, _, wcount, _ = _RECORD.unpack_from(data, _PACKET.size)
        body = _PACKET.size + _RECORD.size
        if len(data) < body + 4 * (wcount + 1):
            raise ValueError(f"answer announces {wcount} words but carries {(len(data) - body) // 4 - 1}")
        words = struct.unpack_from(f">{wcount + 1}I", data, body)
        return words[0], list(words[1:])

    # ---------------------------------------------------------------- transfers
    def _send(self, datagram: bytes) -> None:
        try:
            self._sock.send(datagram)
        except OSError as err:
            raise SplitnicError(f"{self.where}: sending failed ({err.strerror or err}); "
                                "is the host-link interface up?") from None
        self.sent += 1
        self._sent_bytes += frame_bytes(len(datagram))

    def write(self, addr: int, values: Iterable[int]) -> None:
        """Write words at ``addr`` onwards (posted), one record per MAX_WORDS words.

        Waits for a confirming read whenever the writes not yet confirmed would pass
        ``write_bytes`` (:data:`WRITE_BYTES`: beyond it the board could drop them)."""
        values = [v & 0xFFFFFFFF for v in values]
        for i in range(0, len(values), MAX_WORDS):
            datagram = self.encode_writes(addr + 4 * i, values[i:i + MAX_WORDS])
            if self._sent_bytes - self._confirmed_bytes + frame_bytes(len(datagram)) > self.write_bytes:
                self.confirmations += 1
                self.read([amap.NIC_CSR_BASE])      # the ID block's first word: reading it changes nothing
            self._send(datagram)

    def read(self, addrs: list[int]) -> list[int]:
        """Values of the words at ``addrs`` (any addresses), MAX_WORDS per record, WINDOW records in flight."""
        chunks = [addrs[i:i + MAX_WORDS] for i in range(0, len(addrs), MAX_WORDS)]
        results: list[list[int] | None] = [None] * len(chunks)
        pending: dict[int, tuple[int, int]] = {}   # tag -> (chunk index, frame bytes sent up to and with it)
        tries = [0] * len(chunks)
        next_chunk = 0
        while next_chunk < len(chunks) or pending:
            while next_chunk < len(chunks) and len(pending) < WINDOW:
                pending[self._issue(chunks[next_chunk])] = next_chunk, self._sent_bytes
                tries[next_chunk] = 1
                next_chunk += 1
            tag, values = self._receive()
            if tag is None:
                # Nothing came back in time: send what is missing again (reads have no side effects).
                for old in list(pending):
                    i, _ = pending.pop(old)
                    if tries[i] >= TRIES:
                        raise SplitnicError(
                            f"{self.where}: no answer within {self.timeout:g} s ({TRIES} tries); is the board "
                            "powered and flashed (`splitnic flash`), its host-link port (PHY 0) cabled to this "
                            f"machine, and {self.host} routed through that port? (docs/hardware.md)")
                    tries[i] += 1
                    log.debug("%s: read of %d words timed out, sending it again", self.where, len(chunks[i]))
                    pending[self._issue(chunks[i])] = i, self._sent_bytes
                continue
            answered = pending.pop(tag, None)
            if answered is None:
                log.debug("%s: dropped a late answer (tag %#x)", self.where, tag)
                continue
            i, sent_with = answered
            # The board answers in order: everything sent before this read has been handled.
            self._confirmed_bytes = max(self._confirmed_bytes, sent_with)
            if len(values) != len(chunks[i]):
                raise SplitnicError(f"{self.where}: asked for {len(chunks[i])} words, the answer has {len(values)}; "
                                    "is something else answering on this port?")
            results[i] = values
        return [v for chunk in results for v in chunk]  # type: ignore[union-attr]

    def _issue(self, addrs: list[int]) -> int:
        # The return address doubles as a tag; Etherbone only echoes it.
        self._tag = (self._tag + 4) & 0xFFFFFFFC
        self._send(self.encode_reads(self._tag, addrs))
        return self._tag

    def _receive(self) -> tuple[int | None, list[int]]:
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, []
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(2048)
            except socket.timeout:
                return None, []
            except ConnectionRefusedError:
                raise SplitnicError(f"{self.where}: the port is closed (ICMP port unreachable): something at "
                                    "that address answers, but not Etherbone; check the address and port") from None
            except OSError as err:
                raise SplitnicError(f"{self.where}: receiving failed ({err.strerror or err})") from None
            self.received += 1
            try:
                return self.decode_answer(data)
            except ValueError as err:
                log.debug("%s: ignored a datagram: %s", self.where, err)

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()


class EtherboneBus:
    """The NIC's register window (byte offsets) at ``base`` on the SoC bus."""

    def __init__(self, client: EtherboneClient, base: int = amap.NIC_CSR_BASE,
                 window: int = amap.NIC_CSR_SIZE) -> None:
        self.client = client
        self.base = base
        self.window = window

    def read32(self, offset: int) -> int:
        """Value of the register at ``offset``."""
        check_offset(offset, self.window)
        value = self.client.read([self.base + offset])[0]
        log.debug("read  %#05x -> %#010x", offset, value)
        return value

    def write32(self, offset: int, value: int) -> None:
        """Write the register at ``offset`` (posted)."""
        check_offset(offset, self.window)
        log.debug("write %#05x <- %#010x", offset, value)
        self.client.write(self.base + offset, [value])

    def read_burst(self, offset: int, count: int) -> list[int]:
        """Values of ``count`` consecutive registers (records of at most MAX_WORDS)."""
        check_offset(offset, self.window, count)
        return self.client.read([self.base + offset + 4 * i for i in range(count)])

    def close(self) -> None:
        """Close the link's socket."""
        self.client.close()


class EtherboneDma(DmaAllocator):
    """The board's DMA block RAM, mirrored in a local copy (not zero-copy).

    Regions are carved out of the local copy; their device addresses are the
    block RAM's bus addresses.  A newly allocated region is zeroed on the
    board as well, so both copies start equal.  ``sync_for_device`` /
    ``sync_for_cpu`` (contract: :mod:`splitnic.dma`) take ``device_addr,
    size``, or for convenience ``region[, offset[, length]]`` (default: the
    whole region).
    """

    def __init__(self, client: EtherboneClient, base: int = amap.DMA_RAM_BASE, size: int = amap.DMA_RAM_SIZE) -> None:
        self.client = client
        self._mm = mmap.mmap(-1, size)
        super().__init__(DmaRegion(base, memoryview(self._mm)), zero_copy=False)

    def alloc(self, size: int, align: int = 64, *, device_writes: bool = False) -> DmaRegion:
        """A zero-filled region (here and on the board) of ``size`` bytes, ``align``-aligned."""
        region = super().alloc(size, align, device_writes=device_writes)
        self.sync_for_device(region)
        return region

    @staticmethod
    def _span(where: int | DmaRegion, size: int | None, length: int | None) -> tuple[int, int]:
        if not isinstance(where, DmaRegion):
            if size is None or length is not None:
                raise TypeError("sync_for_*(device_addr, size) or sync_for_*(region[, offset[, length]])")
            return where, size
        offset = size or 0
        length = where.size - offset if length is None else length
        if offset < 0 or length < 0 or offset + length > where.size:
            raise ValueError(f"span {offset}+{length} is outside the {where.size}-byte region at "
                             f"{where.device_addr:#x}")
        return where.device_addr + offset, length

    def sync_for_device(self, where: int | DmaRegion, size: int | None = None,  # type: ignore[override]
                        length: int | None = None) -> None:
        """Copy a span (``device_addr, size`` or ``region[, offset[, length]]``) from the local copy to the board."""
        super().sync_for_device(*self._span(where, size, length))

    def sync_for_cpu(self, where: int | DmaRegion, size: int | None = None,  # type: ignore[override]
                     length: int | None = None) -> None:
        """Copy a span (``device_addr, size`` or ``region[, offset[, length]]``) from the board to the local copy."""
        super().sync_for_cpu(*self._span(where, size, length))

    def _words(self, device_addr: int, size: int) -> tuple[int, int, memoryview]:
        # Whole words: the block RAM is 32 bits wide and Etherbone moves words.
        start = device_addr & ~3
        end = min((device_addr + size + 3) & ~3, self.region.device_addr + self.region.size)
        base = self.region.device_addr
        return start, end, self.region.view[start - base:end - base]

    def _to_device(self, device_addr: int, size: int) -> None:
        start, end, view = self._words(device_addr, size)
        if end > start:
            self.client.write(start, struct.unpack(f"<{(end - start) // 4}I", view))

    def _to_cpu(self, device_addr: int, size: int) -> None:
        start, end, view = self._words(device_addr, size)
        if end > start:
            # Read the words last to first: the NIC writes a completion in ascending
            # address order with PHASE in its last word, so once a read sees PHASE
            # new, the words read after it (the lower ones) are new too.  Reading
            # upwards could pair an old cookie with a new PHASE.
            words = self.client.read(list(range(end - 4, start - 4, -4)))
            words.reverse()
            view[:] = struct.pack(f"<{len(words)}I", *words)

    def close(self) -> None:
        """Drop the local copy."""
        try:
            self.region.view.release()
            self._mm.close()
        except BufferError:
            log.debug("etherbone DMA copy still in use, left to the garbage collector")


def open_etherbone(arg: str) -> Link:
    """Attach the board at ``HOST[:PORT]``: its NIC registers and its DMA block RAM."""
    host, port = parse_target(arg)
    client = EtherboneClient(host, port)
    bus = EtherboneBus(client)
    dma = EtherboneDma(client)
    desc = (f"etherbone:{host}:{port} (NIC registers at {amap.NIC_CSR_BASE:#x}, "
            f"{amap.DMA_RAM_SIZE // 1024} KiB NIC-local DMA RAM at {amap.DMA_RAM_BASE:#x}, copied over UDP)")
    link = Link("etherbone", bus, dma, desc, zero_copy=False,
                details={"host": host, "port": port, "csr_base": amap.NIC_CSR_BASE, "dma_base": amap.DMA_RAM_BASE,
                         "dma_size": amap.DMA_RAM_SIZE, "max_burst_words": MAX_WORDS},
                board_counters=lambda: {"host_rx_dropped": client.read([amap.HOST_RX_DROPPED])[0]})

    def _close() -> None:
        dma.close()
        bus.close()
    link._on_close.append(_close)
    log.info("%s", desc)
    return link
