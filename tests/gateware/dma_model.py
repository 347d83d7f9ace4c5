"""Reference models for the DMA engine tests: a Wishbone memory and an RX ring driver.

Plain Python, written from the spec (docs/registers.md: Descriptor, Completion,
PHASE, ring index rules) and Wishbone B4 §3.2/§4.3, independent of the
gateware they check.  Each model is stepped once per clock cycle by an
Amaranth async testbench (``ctx``), after ``await ctx.tick()``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from splitnic_spec import COMPLETION, DESCRIPTOR, constant

CTI_CLASSIC, CTI_INCR, CTI_END = 0b000, 0b010, 0b111
MAX_BURST = constant("MAX_BURST")
PHASE = COMPLETION.member("flags").bit("PHASE")
TRUNCATED = COMPLETION.member("status").bit("TRUNCATED").mask
#: What the driver model fills buffers with, to see bytes the engine should not have written.
POISON = 0xA5


class WishboneMemory:
    """A Wishbone B4 target over a bytearray: classic cycles and incrementing bursts.

    Acks combinationally (in the cycle the beat is presented) once the beat has
    waited: ``latency`` cycles for the first beat of a cycle or burst, and a
    random stall with probability ``stall_prob`` on every cycle.  Protocol
    violations are collected in ``errors`` (the test asserts it stays empty):
    signals changing while a beat waits, bursts not incrementing by one word,
    longer than MAX_BURST, CYC dropped inside a burst, BTE other than linear,
    addresses out of range.  ``paused`` holds every beat (a bus stalled for as
    long as the test wants).
    """

    def __init__(self, size: int, *, stall_prob: float = 0.0, latency: int = 0,
                 rng: random.Random | None = None) -> None:
        self.data = bytearray(size)
        self.stall_prob = stall_prob
        self.latency = latency
        self.rng = rng or random.Random(1)
        self.paused = False
        self.errors: list[str] = []
        self.reads = 0            # words
        self.writes = 0           # words
        self.bursts = 0           # cycles/bursts completed (one per CTI_END or classic beat)
        self.busy_cycles = 0      # cycles with CYC high
        self._acked = False       # a beat was acked in the previous cycle
        self._in_burst = False    # ... and it had CTI_INCR: this beat continues the burst
        self._burst_beats = 0
        self._next_adr: int | None = None
        self._waited = 0
        self._held: tuple | None = None  # signals of a beat that waited in the previous cycle

    def word(self, byte_addr: int) -> int:
        """Value of the 32-bit little-endian word at ``byte_addr``."""
        return int.from_bytes(self.data[byte_addr:byte_addr + 4], "little")

    def step(self, ctx, bus) -> None:
        """Serve this cycle: drive ``ack`` and ``dat_r`` from what the initiator presents."""
        cyc, stb = ctx.get(bus.cyc), ctx.get(bus.stb)
        if cyc:
            self.busy_cycles += 1
        if not (cyc and stb):
            if self._in_burst and self._acked:
                self.errors.append("CYC/STB dropped inside an incrementing burst")
            if not cyc:
                self._in_burst = False
                self._burst_beats = 0
            self._acked = False
            self._held = None
            ctx.set(bus.ack, 0)
            return
        adr, we, sel, cti, bte = (ctx.get(bus.adr), ctx.get(bus.we), ctx.get(bus.sel),
                                  ctx.get(bus.cti), ctx.get(bus.bte))
        dat_w = ctx.get(bus.dat_w) if we else 0
        beat = (adr, we, sel, cti, dat_w)
        if self._held is not None and self._held != beat:
            self.errors.append(f"signals changed while a beat waited: {self._held} -> {beat}")
        new_beat = self._held is None
        if new_beat:
            self._waited = 0
            if self._in_burst and self._acked and adr != self._next_adr:
                self.errors.append(f"burst address {adr:#x}, expected {self._next_adr:#x}")
        if bte != 0:
            self.errors.append(f"BTE {bte}, expected 0 (linear)")
        continues = self._in_burst and (self._acked or not new_beat)
        wait = 0 if continues else self.latency
        ack = (not self.paused and self._waited >= wait
               and (self.stall_prob == 0 or self.rng.random() >= self.stall_prob))
        self._waited += 1
        if not ack:
            ctx.set(bus.ack, 0)
            self._held = beat
            self._acked = False
            return
        byte_addr = adr << 2
        if byte_addr + 4 > len(self.data):
            self.errors.append(f"access at {byte_addr:#x} outside {len(self.data):#x} bytes")
            ctx.set(bus.dat_r, 0)
        elif we:
            for i in range(4):
                if sel >> i & 1:
                    self.data[byte_addr + i] = dat_w >> (8 * i) & 0xFF
            self.writes += 1
        else:
            ctx.set(bus.dat_r, self.word(byte_addr))
            self.reads += 1
        ctx.set(bus.ack, 1)
        self._held = None
        self._acked = True
        self._burst_beats += 1
        if cti == CTI_INCR:
            self._in_burst = True
            self._next_adr = adr + 1
            if self._burst_beats > MAX_BURST:
                self.errors.append(f"burst longer than MAX_BURST={MAX_BURST}")
        else:
            if cti not in (CTI_CLASSIC, CTI_END):
                self.errors.append(f"CTI {cti:#o} not supported")
            self._in_burst = False
            self._burst_beats = 0
            self.bursts += 1


@dataclass
class Received:
    """One completion as the driver model consumed it."""
    index: int
    data: bytes
    completion: dict[str, int]


@dataclass
class RxRing:
    """The driver side of one RX queue: descriptor ring, completion ring, one buffer per slot.

    Cookies are the free-running descriptor index, so a completion names the
    descriptor it consumed.  Buffers are poisoned before they are posted, so
    bytes written past the completion's length are seen.
    """
    mem: WishboneMemory
    queue: int
    log2: int
    desc_base: int
    cpl_base: int
    buf_base: int
    buf_size: int
    tail: int = 0                 # descriptors posted (free-running)
    next_cpl: int = 0             # next completion index to consume
    received: list[Received] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def entries(self) -> int:
        """Value of the ring's entry count."""
        return 1 << self.log2

    @property
    def buffer_stride(self) -> int:
        """Value of the distance between two slots' buffers (RING_ALIGN-rounded)."""
        return (self.buf_size + 63) & ~63

    def end(self) -> int:
        """Value of the first byte address after this ring's buffers."""
        return self.buf_base + self.entries * self.buffer_stride

    def reset(self) -> None:
        """Do what the driver does after RXQ CTRL.RESET: indices to 0, completion ring zeroed."""
        self.tail = 0
        self.next_cpl = 0
        self.mem.data[self.cpl_base:self.cpl_base + self.entries * COMPLETION.size] = bytes(
            self.entries * COMPLETION.size)

    def post(self, limit: int | None = None) -> int:
        """Post empty buffers into every free slot (at most ``limit``); return how many."""
        posted = 0
        while self.tail - self.next_cpl < self.entries and (limit is None or posted < limit):
            slot = self.tail & (self.entries - 1)
            buf = self.buf_base + slot * self.buffer_stride
            self.mem.data[buf:buf + self.buf_size] = bytes([POISON]) * self.buf_size
            d = self.desc_base + slot * DESCRIPTOR.size
            self.mem.data[d:d + DESCRIPTOR.size] = DESCRIPTOR.pack(addr=buf, length=self.buf_size,
                                                                   cookie=self.tail & 0xFFFFFFFF)
            self.tail += 1
            posted += 1
        return posted

    def poll(self) -> int:
        """Consume every valid completion (PHASE equals this lap's phase); return how many."""
        count = 0
        while True:
            slot = self.next_cpl & (self.entries - 1)
            c = self.cpl_base + slot * COMPLETION.size
            cpl = COMPLETION.unpack(bytes(self.mem.data[c:c + COMPLETION.size]))
            lap_phase = 1 - ((self.next_cpl >> self.log2) & 1)
            if PHASE.get(cpl["flags"]) != lap_phase:
                return count
            if cpl["cookie"] != self.next_cpl & 0xFFFFFFFF:
                self.errors.append(f"q{self.queue} completion {self.next_cpl}: cookie {cpl['cookie']}")
            buf = self.buf_base + slot * self.buffer_stride
            length = cpl["length"]
            if length > self.buf_size:
                self.errors.append(f"q{self.queue} completion {self.next_cpl}: length {length} > buffer")
            tail = self.mem.data[buf + length:buf + self.buf_size]
            if tail != bytes([POISON]) * len(tail):
                self.errors.append(f"q{self.queue} completion {self.next_cpl}: bytes written past length")
            self.received.append(Received(self.next_cpl, bytes(self.mem.data[buf:buf + length]), cpl))
            self.next_cpl += 1
            count += 1


def layout_rings(mem: WishboneMemory, specs: list[tuple[int, int, int]], base: int = 0x1000) -> list[RxRing]:
    """Place rings for ``(queue, log2, buf_size)`` specs one after another in ``mem``."""
    rings = []
    for queue, log2, buf_size in specs:
        entries = 1 << log2
        desc = base
        cpl = desc + entries * DESCRIPTOR.size
        buf = cpl + entries * COMPLETION.size
        ring = RxRing(mem, queue, log2, desc, cpl, buf, buf_size)
        base = (ring.end() + 0xFFF) & ~0xFFF
        if base > len(mem.data):
            raise ValueError(f"rings need {base:#x} bytes, memory has {len(mem.data):#x}")
        rings.append(ring)
    return rings
