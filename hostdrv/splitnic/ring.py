"""One queue's rings and buffers in DMA memory, its C state, and its registers.

Ref: docs/registers.md, "RXQ"/"TXQ" (CTRL, DESC, CPL, SIZE, TAIL) and the
ring index rules in spec/splitnic_spec/nic.py.

Shared by :class:`splitnic.rx_queue.RxQueue` and
:class:`splitnic.tx_queue.TxQueue`: allocation, set-up order (disable, reset,
zero the completion ring, program DESC/CPL/SIZE, enable), the accounting
check, and tear-down.  The per-packet work is in ``_hotpath.c``.

On a link that is not zero-copy (etherbone) the ring also syncs DMA memory
(contract: :mod:`splitnic.dma`): :meth:`Ring.program` and
:meth:`Ring.doorbell` push what the CPU wrote before the register write
that hands it to the NIC, :meth:`Ring.sync_completions` and
:meth:`Ring.sync_buffer_for_cpu` pull what the NIC wrote before the CPU
reads it.  Whether to is decided once, here: on zero-copy links
``doorbell`` is the plain one and the queues never call the others.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import Counter
from typing import Callable

from splitnic_spec import COMPLETION, CSR_MAP, DESCRIPTOR, INDEX_MASK, constant, ring_slot

from ._cffi import ffi, lib
from .dma import DmaRegion
from .errors import SplitnicError
from .link import Link

__all__ = ["Ring", "BufferAccountingError", "wait_strobe", "fit_sizes"]

log = logging.getLogger(__name__)

_RING_ALIGN = constant("RING_ALIGN")
_BUFFER_ALIGN = constant("BUFFER_ALIGN")
_LOG2_MIN, _LOG2_MAX = constant("RING_LOG2_MIN"), constant("RING_LOG2_MAX")
_COOKIE_AT = DESCRIPTOR.offset_of("cookie")
#: A whole descriptor, unpacked as its addr and length (the span of its frame); struct skips the rest.
_ADDR_AND_LENGTH = struct.Struct(f"<QH{DESCRIPTOR.size - 10}x")
assert DESCRIPTOR.offset_of("addr") == 0 and DESCRIPTOR.offset_of("length") == 8
_BUF_FREE, _BUF_POSTED, _BUF_HELD = lib.SNIC_BUF_FREE, lib.SNIC_BUF_POSTED, lib.SNIC_BUF_HELD
#: Buffers start on cache-line boundaries (more than BUFFER_ALIGN needs).
BUFFER_STRIDE_ALIGN = 64
#: Seconds a strobe (CTRL.RESET, queue RESET) may take to read back 0.
STROBE_TIMEOUT = 5.0


def fit_sizes(link: Link, name: str, ring_log2: int, buf_size: int, nbufs: int) -> tuple[int, int]:
    """``(ring_log2, nbufs)`` for a queue that asked for the default buffers: as asked if that fits.

    On small DMA memory (the board's 32 KiB block RAM) the default does not
    fit; then the queue takes at most half of the largest free piece, so the
    other direction's queue fits too, with the largest ring (down to
    RING_LOG2_MIN) and as many buffers as that leaves.  Raises a one-line
    :class:`~splitnic.errors.SplitnicError` when not even one buffer fits.
    """
    largest = getattr(link.dma, "largest_free", None)
    stride = -(-buf_size // BUFFER_STRIDE_ALIGN) * BUFFER_STRIDE_ALIGN
    slack = 3 * max(_RING_ALIGN, BUFFER_STRIDE_ALIGN)   # alignment padding of the three allocations
    # On a link whose small memory holds only what the NIC reads (eth: Ring's
    # device_writes placement), the completion ring and RX buffers live elsewhere.
    only_device_read = getattr(link.dma, "small_memory_is_device_read_only", False)
    rx = name.startswith("RX")

    def need(log2: int, n: int) -> int:
        if only_device_read:
            return (1 << log2) * DESCRIPTOR.size + (0 if rx else n * stride) + slack
        return (2 << log2) * DESCRIPTOR.size + n * stride + slack   # DESCRIPTOR.size == COMPLETION.size

    if largest is None or not _LOG2_MIN <= ring_log2 <= _LOG2_MAX or need(ring_log2, nbufs) <= largest:
        return ring_log2, nbufs   # fits (or is invalid: Ring says why)
    budget = largest // 2
    log2 = ring_log2
    while log2 > _LOG2_MIN and need(log2, min(nbufs, 1 << log2)) > budget:
        log2 -= 1
    fitted = nbufs if only_device_read and rx else min(nbufs, (budget - need(log2, 0)) // stride)
    if fitted < 1:
        raise SplitnicError(f"{name}: DMA memory too small for a queue of {buf_size}-byte buffers: "
                            f"{largest} bytes free in one piece, a queue may take half and needs at least "
                            f"{need(_LOG2_MIN, 1)}; use smaller buffers or close other queues")
    log.info("%s: %d bytes of DMA memory free: ring of %d entries and %d buffers instead of %d and %d",
             name, largest, 1 << log2, fitted, 1 << ring_log2, nbufs)
    return log2, fitted


class BufferAccountingError(RuntimeError):
    """A queue's buffers are not where its books say (a driver bug)."""


def wait_strobe(bus, offset: int, mask: int, what: str) -> None:
    """Wait until the strobe bits ``mask`` at ``offset`` read back 0."""
    deadline = time.monotonic() + STROBE_TIMEOUT
    while bus.read32(offset) & mask:
        if time.monotonic() > deadline:
            raise SplitnicError(f"{what} did not complete within {STROBE_TIMEOUT:.0f} s (the strobe still reads 1); "
                                "is the NIC (or its simulator) running?")
        time.sleep(0.0001)


class Ring:
    """Descriptor ring, completion ring and ``nbufs`` buffers of queue ``index`` of ``array`` (RXQ or TXQ)."""

    def __init__(self, link: Link, array: str, index: int, ring_log2: int, buf_size: int, nbufs: int,
                 regions: tuple[DmaRegion, DmaRegion, DmaRegion] | None = None) -> None:
        # ``regions``: the descriptor ring, completion ring and buffers are already in place (an
        # application process adopting a queue its primary set up, splitnic.attach): nothing is
        # allocated, and close() neither disables the queue nor frees them (the primary does).
        if not _LOG2_MIN <= ring_log2 <= _LOG2_MAX:
            raise ValueError(f"ring_log2 must be {_LOG2_MIN}..{_LOG2_MAX}, not {ring_log2}")
        if not 64 <= buf_size <= 0xFFFF or buf_size % _BUFFER_ALIGN:
            raise ValueError(f"buf_size must be a multiple of {_BUFFER_ALIGN} in 64..65535, not {buf_size}")
        if nbufs < 1 or nbufs >= 1 << 31:
            raise ValueError(f"nbufs must be at least 1, not {nbufs}")
        self.link = link
        self.bus = link.bus
        self.regs = CSR_MAP.array(array)
        self.index = index
        self.name = f"{array}{index}"
        self.regs.offset(index, "CTRL")  # range check of index
        self.entries = 1 << ring_log2
        self.log2 = ring_log2
        self.buf_size = buf_size
        self.stride = -(-buf_size // BUFFER_STRIDE_ALIGN) * BUFFER_STRIDE_ALIGN
        self.nbufs = nbufs
        dma = link.dma
        got: list[DmaRegion] = list(regions or ())
        self.owns_memory = regions is None
        try:
            # The NIC reads descriptors and TX frames, and writes completions and RX
            # frames: a link with memory on both sides of a cable places each by that.
            needs = ((self.entries * DESCRIPTOR.size, _RING_ALIGN, False),
                     (self.entries * COMPLETION.size, _RING_ALIGN, True),
                     (nbufs * self.stride, BUFFER_STRIDE_ALIGN, array == "RXQ"))
            for i, (size, align, device_writes) in enumerate(needs):
                if regions is None:
                    got.append(dma.alloc(size, align, device_writes=device_writes))
                elif regions[i].size < size or regions[i].device_addr % align:
                    raise SplitnicError(f"{self.name}: region {i} ({regions[i].size} bytes at "
                                        f"{regions[i].device_addr:#x}) cannot hold {size} bytes {align}-aligned")
        except SplitnicError:
            # Small DMA memory (the board's) runs out for real: give back what this ring took.
            if regions is None:
                for region in got:
                    dma.free(region)
            raise
        self.desc, self.cpl, self.bufs = got
        c = ffi.new("struct snic_queue *")
        self._keep = [ffi.from_buffer(r.view) for r in (self.desc, self.cpl, self.bufs)]
        self._free_stack = ffi.new("uint32_t[]", nbufs)
        self._state = ffi.new("uint8_t[]", nbufs)
        c.desc, c.cpl, c.bufs = (ffi.cast("uint8_t *", p) for p in self._keep)
        c.bufs_dev = self.bufs.device_addr
        c.buf_stride, c.buf_size, c.log2, c.nbufs = self.stride, buf_size, ring_log2, nbufs
        c.is_tx = int(array == "TXQ")
        c.free_stack, c.state = self._free_stack, self._state
        #: The views are a copy of the NIC's memory: sync around every hand-over.
        self.copying = not link.zero_copy
        # A copying link must sync descriptors before TAIL, so C may not ring it.
        pointer = None if self.copying else getattr(self.bus, "register_pointer", None)
        c.tail_reg = pointer(self.regs.offset(index, "TAIL")) if pointer else ffi.NULL
        self.doorbell_in_c = bool(pointer)
        lib.snic_queue_init(c)
        self.c = c
        self._synced_tail = 0    # descriptors below this index are on the NIC's side (copying links)
        self.open = True

    def reg(self, name: str) -> int:
        """Byte offset of this queue's register ``name``."""
        return self.regs.offset(self.index, name)

    def program(self) -> None:
        """Disable, reset, zero the completion ring, program DESC/CPL/SIZE, enable."""
        ctrl = self.regs.register("CTRL")
        bus = self.bus
        bus.write32(self.reg("CTRL"), 0)
        bus.write32(self.reg("CTRL"), ctrl.pack(RESET=1))
        wait_strobe(bus, self.reg("CTRL"), ctrl.field("RESET").mask, f"{self.name} reset")
        self.cpl.view[:] = bytes(self.cpl.size)
        lib.snic_queue_init(self.c)
        self._synced_tail = 0
        if self.copying:
            # The NIC must find the zeroed completions (PHASE 0) and the descriptors
            # as the CPU left them before the queue is enabled.
            dma = self.link.dma
            dma.sync_for_device(self.cpl.device_addr, self.cpl.size)
            dma.sync_for_device(self.desc.device_addr, self.desc.size)
        bus.write32(self.reg("DESC_LO"), self.desc.device_addr & 0xFFFFFFFF)
        bus.write32(self.reg("DESC_HI"), self.desc.device_addr >> 32)
        bus.write32(self.reg("CPL_LO"), self.cpl.device_addr & 0xFFFFFFFF)
        bus.write32(self.reg("CPL_HI"), self.cpl.device_addr >> 32)
        bus.write32(self.reg("SIZE"), self.regs.register("SIZE").pack(LOG2=self.log2))
        bus.write32(self.reg("CTRL"), ctrl.pack(ENABLE=1))
        log.info("%s: %d entries at %#x/%#x, %d buffers of %d bytes at %#x", self.name, self.entries,
                 self.desc.device_addr, self.cpl.device_addr, self.nbufs, self.buf_size, self.bufs.device_addr)

    def doorbell(self) -> None:
        """Write TAIL through the bus (when the C hot path could not), after syncing on copying links."""
        if self.copying:
            self._push_posted()
        if not self.doorbell_in_c:
            self.bus.write32(self.reg("TAIL"), self.c.tail & INDEX_MASK)

    def _push_posted(self) -> None:
        # Everything posted since the last TAIL write goes to the NIC first: the
        # descriptors, and for TX the frame bytes they point at.
        c = self.c
        count = (c.tail - self._synced_tail) & 0xFFFFFFFF
        if count:
            self.push_spans(self.posted_spans(self._synced_tail, count))
            self._synced_tail = c.tail

    def posted_spans(self, first: int, count: int) -> list[tuple[int, int]]:
        """``(device_addr, size)`` of what descriptors ``first`` .. ``first+count-1`` hand the NIC
        (free-running indices): for TX each frame's bytes (as its descriptor says), then the
        descriptors themselves, one or two spans."""
        spans: list[tuple[int, int]] = []
        if self.c.is_tx:
            # Each descriptor's (addr, length): its frame's bytes, unpacked a contiguous run at a time.
            view, size = self.desc.view, DESCRIPTOR.size
            start = ring_slot(first, self.log2)
            head = min(count, self.entries - start)
            spans += _ADDR_AND_LENGTH.iter_unpack(view[start * size:(start + head) * size])
            if count > head:
                spans += _ADDR_AND_LENGTH.iter_unpack(view[:(count - head) * size])
        self._sync_entries(self.desc, DESCRIPTOR.size, first, count, lambda a, n: spans.append((a, n)))
        return spans

    def push_spans(self, spans: list[tuple[int, int]]) -> None:
        """Sync ``spans`` for the device: one call for the burst where the link can take it (eth),
        else span by span."""
        dma = self.link.dma
        sync_many = getattr(dma, "sync_many_for_device", None)
        if sync_many is not None:
            sync_many(spans)
        else:
            for addr, size in spans:
                dma.sync_for_device(addr, size)

    def sync_completions(self, most: int | None = None) -> None:
        """Copying links: fetch the completion entries that can be new (at most ``most``) before harvesting."""
        c = self.c
        count = (c.tail - c.next_cpl) & 0xFFFFFFFF
        if most is not None:
            count = min(count, most)
        if count:
            self._sync_entries(self.cpl, COMPLETION.size, c.next_cpl, count, self.link.dma.sync_for_cpu)

    def sync_buffer_for_cpu(self, cookie: int, length: int) -> None:
        """Copying links: fetch the ``length`` received bytes of buffer ``cookie`` before handing them out."""
        self.link.dma.sync_for_cpu(self.bufs.device_addr + cookie * self.stride, length)

    def _sync_entries(self, region: DmaRegion, size: int, first: int, count: int,
                      sync: Callable[[int, int], None]) -> None:
        # Entries first .. first+count-1 of a ring (free-running indices): one or two spans.
        start = ring_slot(first, self.log2)
        head = min(count, self.entries - start)
        sync(region.device_addr + start * size, head * size)
        if count > head:
            sync(region.device_addr, (count - head) * size)

    def buffer_offset(self, cookie: int) -> int:
        """Offset of buffer ``cookie`` in :attr:`bufs`."""
        return cookie * self.stride

    def check(self, lent: int) -> dict[str, int]:
        """Verify the buffer books; ``lent`` is what the Python side believes it has lent out.

        Every buffer is in exactly one place: the free stack, the ring (between
        the next completion and TAIL, named by its descriptor's cookie) or lent
        to the application.  Returns the counts; raises
        :class:`BufferAccountingError` on any disagreement.
        """
        c = self.c
        states = Counter(bytes(ffi.buffer(self._state, self.nbufs)))
        free = [self._free_stack[i] for i in range(c.nfree)]
        in_ring = [struct.unpack_from("<I", self.desc.view, ring_slot(i, self.log2) * DESCRIPTOR.size + _COOKIE_AT)[0]
                   for i in range(c.next_cpl, c.tail)]
        problems = []
        if len(set(free)) != len(free):
            problems.append(f"free stack has duplicates: {sorted(k for k, n in Counter(free).items() if n > 1)}")
        if any(self._state[k] != _BUF_FREE for k in free):
            problems.append("a buffer on the free stack is not marked free")
        if len(set(in_ring)) != len(in_ring):
            problems.append(f"ring holds a buffer twice: {sorted(k for k, n in Counter(in_ring).items() if n > 1)}")
        if any(k >= self.nbufs or self._state[k] != _BUF_POSTED for k in in_ring):
            problems.append("a descriptor in the ring names a buffer not marked posted")
        if states[_BUF_FREE] != len(free):
            problems.append(f"{states[_BUF_FREE]} buffers marked free, {len(free)} on the free stack")
        if states[_BUF_POSTED] != len(in_ring):
            problems.append(f"{states[_BUF_POSTED]} buffers marked posted, {len(in_ring)} in the ring")
        if states[_BUF_HELD] != lent:
            problems.append(f"{states[_BUF_HELD]} buffers marked lent, the queue lent {lent}")
        if sum(states.values()) != self.nbufs:
            problems.append(f"states add up to {sum(states.values())}, not {self.nbufs}")
        if c.bad_cookies:
            problems.append(f"{c.bad_cookies} completions named a buffer the NIC did not own")
        if problems:
            raise BufferAccountingError(f"{self.name}: " + "; ".join(problems))
        return {"free": len(free), "posted": len(in_ring), "lent": lent, "total": self.nbufs}

    def quiesce(self) -> None:
        """Disable the queue and reset it, waiting until the NIC has let go of its rings and buffers.

        After this the NIC writes nothing more into them (the reset strobe reads
        back 0 only once the queue's engine is idle), so they may be reused.
        """
        ctrl = self.regs.register("CTRL")
        self.bus.write32(self.reg("CTRL"), 0)
        self.bus.write32(self.reg("CTRL"), ctrl.pack(RESET=1))
        wait_strobe(self.bus, self.reg("CTRL"), ctrl.field("RESET").mask, f"{self.name} reset")

    def close(self) -> None:
        """Disable the queue and give its DMA memory back (an adopted ring: only forget it)."""
        if not self.open:
            return
        self.open = False
        if not self.owns_memory:
            self.c.tail_reg = ffi.NULL
            self._keep.clear()
            return
        try:
            self.bus.write32(self.reg("CTRL"), 0)
        except SplitnicError as err:
            log.debug("%s: disabling failed: %s", self.name, err)
        self.c.tail_reg = ffi.NULL
        self._keep.clear()
        for region in (self.desc, self.cpl, self.bufs):
            self.link.dma.free(region)
