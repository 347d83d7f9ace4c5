"""cocotb tests of the board's whole host link (both engines, the binding) over an impairing cable.

Ref: splitnic_spec.hostlink (the protocol: sessions, go-back-N both ways,
PROBE, the credit rule); splitnic_gateware.hostlink.link (the DUT, built by
tests/gateware/test_hostlink_cocotb.py with a short resend period,
``RESEND_CYCLES``).

The testbench has four parts around the DUT:

* :class:`Cable`: each direction delivers whole frames after ``DELAY``
  cycles, and (seeded) loses one, delivers it twice, or holds it back so that
  later frames pass it; ``drops`` names frames (their index in that
  direction) to lose whatever the dice say.
* :class:`HostModel`: the host side of the protocol as the spec has it: it
  binds with a unicast HELLO (again after ``HOST_RESEND`` without an
  answer), numbers its messages (WRITEs into NIC-local memory), keeps each
  frame until the board's acked passes it and sends again from acked on NAK
  or after ``HOST_RESEND`` without progress (PROBE on the first), sends only
  within the board's newest credit and probes when it has none; it takes the
  board's frames in order (the rest of a partly repeated frame included),
  NAKs a gap once, acknowledges at once, and grants ``next_frame + window``.
* the NIC: DMA bursts into the host window (``dma``), and the board's bus
  (``bus``): a memory that stalls at random.
* the checks: every host message's words reach the board's bus exactly once
  and in order, every NIC write reaches the host exactly once and in order,
  every board frame of the session goes to the host's address.  A failure
  names the seed (cocotb's ``RANDOM_SEED``; set ``COCOTB_RANDOM_SEED`` to
  replay it).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from splitnic_gateware.bus import CTI_END, CTI_INCR
from splitnic_gateware.hostlink.layouts import RxWord, TxWord
from splitnic_sim.tb.hostlink_common import bytes_of, cycle_now, pack, start, unpack, words_of
from splitnic_spec import board, hostlink
from splitnic_spec.hostlink import (FLAG_ANSWER, FLAG_HELLO, FLAG_NAK, FLAG_PROBE, FLAG_STALE, Frame, Message,
                                    ProtocolError, decode_frame, encode_frame, seq_after)

#: What tests/gateware/test_hostlink_cocotb.py builds the DUT with.
RESEND_CYCLES = 3000
SLOTS = 4
REPLAY_SLOTS = 4
HOST_MAC = 0x02_00_00_00_00_01
OTHER_MAC = 0x02_00_00_00_00_02
#: The cable's delay, and the host's resend period and window (frames it takes before it acks).
DELAY = 60
HOST_RESEND = 3000
HOST_WINDOW = 8
MTU = hostlink.MTU_STANDARD
FH, MH = hostlink.FRAME_HEADER.size, hostlink.MESSAGE_HEADER.size


@dataclass
class Cable:
    """One direction: whole frames in, after DELAY cycles (or later, or twice, or never) out."""
    rng: random.Random
    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    drops: set[int] = field(default_factory=set)
    sent: int = 0
    lost: int = 0
    _queue: list = field(default_factory=list)
    _order: int = 0

    def put(self, item) -> None:
        index, self.sent = self.sent, self.sent + 1
        if index in self.drops or self.rng.random() < self.loss:
            self.lost += 1
            return
        due = [cycle_now() + DELAY]
        if self.rng.random() < self.reorder:
            due[0] += self.rng.randint(200, 1500)            # held back: later frames pass it
        if self.rng.random() < self.dup:
            due.append(due[0] + self.rng.randint(1, 800))
        for t in due:
            heapq.heappush(self._queue, (t, self._order, item))
            self._order += 1

    def take(self):
        """The next frame due now, or None."""
        if self._queue and self._queue[0][0] <= cycle_now():
            return heapq.heappop(self._queue)[2]
        return None


class HostModel:
    """The host's side of the protocol over ``cable_out`` (to the board) and frames handed to :meth:`receive`."""

    def __init__(self, rng: random.Random, cable_out: Cable, messages: list[Message]) -> None:
        self.rng, self.out = rng, cable_out
        self.session = rng.getrandbits(31) | 1
        self.bound = False
        self.hello_at = -HOST_RESEND
        # Host to board: messages numbered from 0; send_from is where the next frame starts.
        self.messages = messages
        self.send_from = 0
        self.board_acked = 0
        self.board_credit = 0
        self.next_frame = 0
        self.progress_at = 0
        self.probe = False
        # Board to host.
        self.expected = 0
        self.rx_next_frame = 0
        self.in_gap = False
        self.nak_due = False
        self.ack_due = False
        self.words: list[tuple[int, int]] = []
        self.stats = dict(frames=0, gaps=0, duplicates=0, resends=0, probes=0, foreign=0)

    # ---- frames from the board ----

    def receive(self, payload: bytes) -> None:
        try:
            f = decode_frame(payload)
        except ProtocolError as e:
            raise AssertionError(f"the board sent a malformed frame: {e}") from e
        if f.session != self.session:
            self.stats["foreign"] += 1
            return
        assert not f.flags & FLAG_STALE, f"the board forgot the session: {f}"
        if f.flags & FLAG_HELLO:
            assert f.flags & FLAG_ANSWER, f
            if not self.bound:
                self.bound = True
                self.board_credit = f.credit
                self.progress_at = cycle_now()
            return
        if not self.bound:
            return
        self.stats["frames"] += 1
        if seq_after(f.acked, self.board_acked):
            self.board_acked = f.acked
            self.progress_at = cycle_now()
            self.send_from = self.board_acked if seq_after(self.board_acked, self.send_from) else self.send_from
        if 0 < (f.credit - self.board_credit) & 0xFFFF < 0x8000:
            self.board_credit = f.credit
        if f.flags & FLAG_NAK:
            self.send_from = self.board_acked
        nxt = f.frame if not f.messages else (f.frame + 1) & 0xFFFF
        if 0 < (nxt - self.rx_next_frame) & 0xFFFF < 0x8000:
            self.rx_next_frame = nxt
        if f.flags & FLAG_PROBE:
            self.ack_due = True
        end = (f.seq + len(f.messages)) & 0xFFFF_FFFF
        if f.seq == self.expected or (seq_after(self.expected, f.seq) and seq_after(end, self.expected)):
            # In order, or a resend that starts before what we have: carry out the rest.
            for m in f.messages[(self.expected - f.seq) & 0xFFFF_FFFF:]:
                assert m.op == hostlink.OP_WRITE, m
                self.words += [(m.addr + 4 * i, w) for i, w in enumerate(words_of(m.data))]
            if f.messages:
                self.ack_due = True
            self.expected = end
            self.in_gap = False
        elif not seq_after(f.seq, self.expected):
            if f.messages:
                self.stats["duplicates"] += 1
                self.ack_due = True
        else:
            self.stats["gaps"] += 1
            if not self.in_gap:
                self.in_gap = self.nak_due = True

    # ---- frames to the board ----

    def _frame(self, messages: tuple[Message, ...], seq: int, flags: int, numbered: bool) -> None:
        f = Frame(seq, self.next_frame, (self.rx_next_frame + HOST_WINDOW) & 0xFFFF, self.expected, messages,
                  flags | (FLAG_NAK if self.nak_due else 0) | (FLAG_PROBE if self.probe else 0), session=self.session)
        self.stats["probes"] += bool(self.probe)
        self.nak_due = self.ack_due = self.probe = False
        if numbered:
            self.next_frame = (self.next_frame + 1) & 0xFFFF
        self.out.put(encode_frame(f))

    def step(self) -> bool:
        """Send at most one frame now; True if one went."""
        now = cycle_now()
        if not self.bound:
            if now - self.hello_at >= HOST_RESEND:
                self.hello_at = now
                hello = hostlink.hello(MTU, HOST_WINDOW, hostlink.HOST_WINDOW_BASE, hostlink.HOST_WINDOW_SIZE)
                self.out.put(encode_frame(Frame(0, 0, HOST_WINDOW, 0, (Message(hostlink.OP_HELLO, 0, hello),),
                                                FLAG_HELLO, session=self.session)))
                return True
            return False
        pending = self.send_from < len(self.messages)
        if self.board_acked < len(self.messages) and now - self.progress_at >= HOST_RESEND:
            # No progress for a resend period: go back, and ask for acked and credit.
            self.progress_at = now
            self.stats["resends"] += self.send_from != self.board_acked
            self.send_from = self.board_acked
            self.probe = True
            pending = self.send_from < len(self.messages)
        credit = 0 < (self.board_credit - self.next_frame) & 0xFFFF < 0x8000
        if pending and credit:
            msgs, size = [], FH
            for m in self.messages[self.send_from:]:
                if size + MH + len(m.data) > MTU or len(msgs) == 32:
                    break
                msgs.append(m)
                size += MH + len(m.data)
            seq = self.send_from
            self.send_from += len(msgs)
            self._frame(tuple(msgs), seq, 0, True)
            return True
        if self.ack_due or self.nak_due or self.probe:
            self._frame((), self.send_from, 0, False)
            return True
        return False


class LinkTB:
    """The DUT with the cable both ways, the host model, the NIC's DMA writer and the board's bus."""

    def __init__(self, dut, *, loss: float = 0.0, dup: float = 0.0, reorder: float = 0.0,
                 drops_to_board: set[int] = frozenset(), drops_to_host: set[int] = frozenset(),
                 host_messages: int = 120, nic_bursts: int = 120) -> None:
        self.dut = dut
        self.seed = cocotb.RANDOM_SEED
        self.rng = random.Random(self.seed)
        self.to_board = Cable(random.Random(self.rng.random()), loss, dup, reorder, set(drops_to_board))
        self.to_host = Cable(random.Random(self.rng.random()), loss, dup, reorder, set(drops_to_host))
        rng = self.rng
        msgs = []
        for _ in range(host_messages):
            n = rng.randint(1, 60)
            addr = board.DMA_RAM_BASE + 4 * rng.randrange(0, board.DMA_RAM_SIZE // 4 - n)
            msgs.append(Message(hostlink.OP_WRITE, addr, bytes_of([rng.getrandbits(32) for _ in range(n)])))
        self.host = HostModel(random.Random(rng.random()), self.to_board, msgs)
        self.expected_on_bus = [(m.addr + 4 * i, w) for m in msgs for i, w in enumerate(words_of(m.data))]
        self.bursts = [(hostlink.HOST_WINDOW_BASE + 4 * rng.randrange(0, 1 << 16),
                        [rng.getrandbits(32) for _ in range(rng.randint(1, 16))]) for _ in range(nic_bursts)]
        self.expected_at_host = [(a + 4 * i, w) for a, ws in self.bursts for i, w in enumerate(ws)]
        self.bus_writes: list[tuple[int, int]] = []
        self.misaddressed = 0

    def fail(self, what: str) -> str:
        return f"{what} (seed {self.seed}: COCOTB_RANDOM_SEED={self.seed} replays it)"

    async def run(self, limit: int = 600_000) -> None:
        dut = self.dut
        await start(dut, {"rx__valid": 0, "rx__payload": 0, "rx_src": HOST_MAC, "rx_unicast": 1, "tx__ready": 0,
                          "dma__cyc": 0, "dma__stb": 0, "dma__we": 0, "dma__adr": 0, "dma__dat_w": 0,
                          "dma__sel": 0xF, "dma__cti": 0, "dma__bte": 0, "bus__ack": 0, "bus__dat_r": 0,
                          "irq": 0, "counters__cyc": 0, "counters__stb": 0, "counters__we": 0,
                          "counters__adr": 0, "counters__dat_w": 0, "counters__sel": 0})
        for task in (self._board_rx, self._board_tx, self._bus, self._host, self._nic):
            cocotb.start_soon(task())
        for _ in range(limit // 100):
            await ClockCycles(dut.clk, 100)
            if (len(self.bus_writes) >= len(self.expected_on_bus)
                    and len(self.host.words) >= len(self.expected_at_host)):
                break
        await ClockCycles(dut.clk, 2 * RESEND_CYCLES)        # anything applied twice would show now
        self.check()

    def check(self) -> None:
        h = self.host
        stats = (f"host {h.stats}, cable to board {self.to_board.sent} sent {self.to_board.lost} lost, "
                 f"to host {self.to_host.sent} sent {self.to_host.lost} lost")
        cocotb.log.info("link: %s", stats)
        assert self.misaddressed == 0, self.fail(f"{self.misaddressed} board frames not to the host's address")
        for name, got, want in (("host to board", self.bus_writes, self.expected_on_bus),
                                ("board to host", h.words, self.expected_at_host)):
            if got != want:
                bad = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
                raise AssertionError(self.fail(f"{name}: {len(got)} words of {len(want)}, first difference at "
                                               f"word {bad}; {stats}"))

    # ---- the wire ----

    async def _board_rx(self) -> None:
        """Frames from the cable into the decoder, a word a cycle, a cycle apart."""
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            payload = self.to_board.take()
            if payload is None:
                continue
            words = words_of(payload)
            dut.rx_src.value = HOST_MAC
            for i, w in enumerate(words):
                last = i + 1 == len(words)
                dut.rx__payload.value = pack(RxWord, data=w, last=int(last), keep=0xF)
                dut.rx__valid.value = 1
                await FallingEdge(dut.clk)
            dut.rx__valid.value = 0

    async def _board_tx(self) -> None:
        """The encoder's frames onto the cable; each frame of the session must go to the host."""
        dut, words = self.dut, []
        while True:
            await FallingEdge(dut.clk)
            ready = self.rng.random() < 0.9
            dut.tx__ready.value = int(ready)
            await ReadOnly()
            if ready and dut.tx__valid.value:
                w = unpack(TxWord, int(dut.tx__payload.value))
                words.append(w["data"])
                if w["last"]:
                    if int(dut.tx_dst.value) != HOST_MAC:
                        self.misaddressed += 1
                    self.to_host.put(bytes_of(words))
                    words = []

    async def _host(self) -> None:
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            payload = self.to_host.take()
            while payload is not None:
                self.host.receive(payload)
                payload = self.to_host.take()
            # The host sends no faster than a frame every few cycles (its own wire).
            if self.host.step():
                await ClockCycles(dut.clk, 20, rising=False)

    # ---- the board's NIC and bus ----

    async def _nic(self) -> None:
        """The NIC's DMA writes into the host window, a burst at a time, once the link is up."""
        dut = self.dut
        while not self.host.bound:
            await ClockCycles(dut.clk, 50, rising=False)
        for addr, data in self.bursts:
            await FallingEdge(dut.clk)
            for i, value in enumerate(data):
                dut.dma__adr.value = (addr >> 2) + i
                dut.dma__dat_w.value = value
                dut.dma__cti.value = CTI_INCR if i + 1 < len(data) else CTI_END
                dut.dma__cyc.value = dut.dma__stb.value = dut.dma__we.value = 1
                while True:
                    await ReadOnly()
                    acked = bool(dut.dma__ack.value)
                    await FallingEdge(dut.clk)
                    if acked:
                        break
            dut.dma__cyc.value = dut.dma__stb.value = dut.dma__we.value = 0
            await ClockCycles(dut.clk, self.rng.randint(1, 60), rising=False)

    async def _bus(self) -> None:
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            ack = bool(dut.bus__cyc.value and dut.bus__stb.value) and self.rng.random() < 0.8
            dut.bus__ack.value = int(ack)
            if ack and dut.bus__we.value:
                self.bus_writes.append((int(dut.bus__adr.value) * 4, int(dut.bus__dat_w.value)))


@cocotb.test()
async def clean_cable(dut) -> None:
    """No impairment: everything once, in order, and nothing sent again."""
    tb = LinkTB(dut)
    await tb.run()
    assert tb.host.stats["resends"] == 0 and tb.host.stats["gaps"] == 0, tb.fail(str(tb.host.stats))


@cocotb.test()
async def lossy_cable(dut) -> None:
    """Seeded loss, duplication and reordering of whole frames both ways: everything once, in order."""
    tb = LinkTB(dut, loss=0.05, dup=0.03, reorder=0.03)
    await tb.run()


@cocotb.test()
async def scripted_drops(dut) -> None:
    """The HELLO answer, the first frames both ways (a window's worth of acknowledgements and the tail of a
    burst) lost: the resend timers and probes recover, nothing twice."""
    tb = LinkTB(dut, drops_to_host={0, 1, 2, 3, 4, 5}, drops_to_board={1, 2, 3, 4})
    await tb.run()
