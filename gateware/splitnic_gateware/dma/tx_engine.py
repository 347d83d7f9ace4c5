"""TX queue engine: descriptors and frame data from host memory, whole frames to the MAC.

Ref: docs/registers.md, TXQ, Descriptor, Completion (generated from
splitnic_spec.nic); contract B in the engine <-> register file interface
(:mod:`splitnic_gateware.interfaces`).

Three parts share a store-and-forward frame buffer (a word memory used as a
ring, large enough for a jumbo frame plus the next ones):

* the DMA side picks a TX queue round-robin among the enabled ones with
  HEAD != TAIL (:func:`.arbiter.round_robin_pick`, one frame per turn), fetches
  its 16-byte descriptor in one 4-word burst, checks the
  length (14..limit, FCS excluded; a bad one becomes a LEN_ERROR completion
  and nothing is sent), then fetches the frame in bursts of at most MAX_BURST
  words into the buffer, as space allows;
* the sender streams each complete frame to MacTx, one byte per cycle;
* after the last byte, the DMA side writes the frame's 16-byte completion,
  words in ascending order so the PHASE word lands last, and advances CPL.

Frames leave in the order their descriptors were taken, so the wire sees the
rotation: with every queue backlogged each sends one frame in turn, a queue
that has nothing to send gives its turn to the next, and a frame posted on an
idle queue waits behind at most the frames already taken (up to
``frames_in_flight`` waiting, one on the wire) and one frame of each other
backlogged queue (tests/gateware/test_tx_engine.py measures both).  Fair in frames,
not in bytes: a queue of jumbo frames gets more of the line than one of
64-byte frames, as with the round-robin TX scheduling of common NICs.

Completion writes go first whenever one is waiting, and frame fetches for the
next frames run while the MAC is still sending the current one, so with a
stall-free target a 64-byte frame every 84 byte times (line rate) keeps up.

A queue reset (RXQ/TXQ CTRL.RESET or the global CTRL.RESET) bumps that
queue's generation: frames of the old generation still in the buffer are
dropped unsent and their completions are never written.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from splitnic_spec import COMPLETION, DESCRIPTOR, NUM_TX_QUEUES, Struct, constant

from ..bus import CTI_CLASSIC, CTI_END, CTI_INCR, WishboneSignature
from ..interfaces import INDEX_BITS, LEN_BITS, MacConfig, TxEvents, engine_queue_ports, tx_stream
from ..size import RTL_TX_QUEUES
from .arbiter import round_robin_pick

__all__ = ["TxEngine", "dma_layout", "tx_length_limit"]

_MAX_BURST = constant("MAX_BURST")
_DESC_WORDS = DESCRIPTOR.size // 4
_CPL_WORDS = COMPLETION.size // 4
_MIN_TX_LEN = 14
_GEN_BITS = 4
_STATUS = COMPLETION.member("status")
_PHASE = COMPLETION.member("flags").bit("PHASE")


def dma_layout(struct: Struct) -> data.StructLayout:
    """Value of the Amaranth layout of a spec DMA structure (packed little-endian, so bit offset = 8 x byte offset)."""
    return data.StructLayout({m.name: m.width for m in struct.members})


DescriptorLayout = dma_layout(DESCRIPTOR)
CompletionLayout = dma_layout(COMPLETION)


def tx_length_limit(config):
    """Amaranth expression: the longest TX frame (FCS excluded) the MAC settings allow."""
    jumbo, std = constant("MAX_FRAME_JUMBO"), constant("MAX_FRAME_STD")
    with_fcs = Mux(config.jumbo, Mux(config.max_len > jumbo, jumbo, config.max_len),
                   Mux(config.max_len > std, std, config.max_len))
    return with_fcs - constant("FCS_LEN")


def _frame_info(queue_shape) -> data.StructLayout:
    """A descriptor taken from a ring, on its way from the DMA side to the sender."""
    return data.StructLayout({
        "queue": queue_shape,
        "gen": _GEN_BITS,
        "cookie": 32,
        "length": INDEX_BITS,
        # LEN_ERROR: no data in the buffer, complete with an error status.
        "error": 1,
    })


def _cpl_info(queue_shape) -> data.StructLayout:
    """A completion waiting to be written."""
    return data.StructLayout({
        "queue": queue_shape,
        "gen": _GEN_BITS,
        "cookie": 32,
        "length": INDEX_BITS,
        "status": 8,
        "timestamp": 32,
    })


class TxEngine(wiring.Component):
    """Moves posted TX descriptors' frames from host memory to MacTx and writes their completions."""

    def __init__(self, *, queues: int = RTL_TX_QUEUES, buffer_words: int = 4096,
                 frames_in_flight: int = 8) -> None:
        if not 1 <= queues <= NUM_TX_QUEUES:
            raise ValueError(f"the TX engine serves 1..{NUM_TX_QUEUES} queues (the register map's room), not {queues}")
        jumbo_words = (constant("MAX_FRAME_JUMBO") + 3) // 4
        if buffer_words & (buffer_words - 1) or buffer_words < _MAX_BURST:
            raise ValueError(f"buffer_words must be a power of two >= {_MAX_BURST}, not {buffer_words}")
        self._buffer_words = buffer_words
        self._frames_in_flight = frames_in_flight
        self._queues = queues
        #: Longest frame (FCS excluded) the buffer can hold; the limit is clamped to it.
        self.max_frame = min(buffer_words * 4, jumbo_words * 4)
        super().__init__({
            "frames": Out(tx_stream()),
            "dma": Out(WishboneSignature(30, burst=True)),
            **engine_queue_ports(queues),
            "sent": In(TxEvents),
            "cycles": In(32),
            # The MAC settings: TX_EN gates fetching, JUMBO/MAX_FRAME set the length limit.
            "config": In(MacConfig),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        n = self._queues
        depth = self._buffer_words
        ptr_bits = depth.bit_length()          # one more than the address: full vs empty

        m.submodules.buffer = buffer = Memory(shape=32, depth=depth, init=[])
        wr = buffer.write_port()
        rd = buffer.read_port()
        # Queue numbers in the FIFOs are as wide as this build's queues need.
        frame_info, cpl_info = _frame_info(range(max(n, 2))), _cpl_info(range(max(n, 2)))
        m.submodules.info_fifo = info_fifo = fifo.SyncFIFO(width=frame_info.size, depth=self._frames_in_flight)
        m.submodules.cpl_fifo = cpl_fifo = fifo.SyncFIFO(width=cpl_info.size, depth=4)

        # ---- per-queue ring state ----
        head = [Signal(INDEX_BITS, name=f"head{q}") for q in range(n)]
        cpl = [Signal(INDEX_BITS, name=f"cpl{q}") for q in range(n)]
        gen = [Signal(_GEN_BITS, name=f"gen{q}") for q in range(n)]
        for q in range(n):
            m.d.comb += [self.status[q].head.eq(head[q]), self.status[q].cpl.eq(cpl[q])]
        m.d.sync += self.events.eq(0)

        limit = Signal(LEN_BITS)
        spec_limit = tx_length_limit(self.config)
        m.d.comb += limit.eq(Mux(spec_limit > self.max_frame, self.max_frame, spec_limit))

        # Buffer occupancy: words written (wp) and words freed by the sender (rp).
        wp = Signal(ptr_bits)
        rp = Signal(ptr_bits)
        free = Signal(ptr_bits)
        m.d.comb += free.eq(depth - (wp - rp))

        # ---- DMA side ----
        bus = self.dma
        beat = Signal(range(_MAX_BURST + 1))
        beats = Signal(range(_MAX_BURST + 1))
        desc_raw = Signal(DescriptorLayout)
        cur_q = Signal(range(max(n, 2)))
        cur_gen = Signal(_GEN_BITS)
        fetching = Signal()
        frame_words = Signal(range(depth + 1))
        fetched = Signal(range(depth + 1))
        frame_addr = Signal(30)            # next word to fetch
        rr = Signal(range(max(n, 2)))       # last queue served

        remaining_words = Signal(range(depth + 1))
        m.d.comb += remaining_words.eq(frame_words - fetched)
        next_burst = Signal(range(_MAX_BURST + 1))
        m.d.comb += next_burst.eq(Mux(remaining_words > _MAX_BURST, _MAX_BURST, remaining_words))

        # Round-robin pick among queues with work.
        ready = Signal(n)
        for q in range(n):
            cfg = self.queues[q]
            m.d.comb += ready[q].eq(cfg.enable & (head[q] != cfg.tail) & self.config.tx_en)
        pick = round_robin_pick(m, rr, ready)

        cpl_head = cpl_info(cpl_fifo.r_data)
        cpl_cur = Signal(CompletionLayout)
        cpl_q = Signal(range(max(n, 2)))
        cpl_gen = Signal(_GEN_BITS)

        def start_burst(address, count, write):
            m.d.sync += [bus.cyc.eq(1), bus.stb.eq(1), bus.we.eq(write), bus.adr.eq(address),
                         bus.cti.eq(Mux(count > 1, CTI_INCR, CTI_END)), beat.eq(0), beats.eq(count)]

        m.d.comb += [bus.sel.eq(0xF), bus.bte.eq(0)]
        last_beat = Signal()
        m.d.comb += last_beat.eq(beat == beats - 1)

        def advance_beat():
            m.d.sync += [beat.eq(beat + 1), bus.adr.eq(bus.adr + 1)]
            with m.If(beat + 2 == beats):
                m.d.sync += bus.cti.eq(CTI_END)
            with m.If(last_beat):
                m.d.sync += [bus.cyc.eq(0), bus.stb.eq(0), bus.we.eq(0), bus.cti.eq(CTI_CLASSIC)]

        desc = desc_raw
        # What goes into the info FIFO: the current descriptor (error only set while CHECK finds it bad).
        info_w = Signal(frame_info)
        m.d.comb += [info_w.queue.eq(cur_q), info_w.gen.eq(cur_gen), info_w.cookie.eq(desc.cookie),
                     info_w.length.eq(desc.length), info_fifo.w_data.eq(info_w)]
        with m.FSM(name="dma"):
            with m.State("IDLE"):
                with m.If(cpl_fifo.r_rdy):
                    # Completions first: they free the sender and tell the driver.
                    stale = Signal()
                    with m.Switch(cpl_head.queue):
                        for q in range(n):
                            with m.Case(q):
                                m.d.comb += stale.eq(cpl_head.gen != gen[q])
                                index = cpl[q]
                                log2 = self.queues[q].log2
                                slot = (index & ((1 << log2) - 1))
                                with m.If(~stale):
                                    start_burst((self.queues[q].cpl_base >> 2) + slot * _CPL_WORDS, _CPL_WORDS, 1)
                                    m.d.sync += cpl_cur.flags.eq(
                                        (~(index >> log2)[0]).as_unsigned() << _PHASE.lsb)
                    m.d.sync += [cpl_cur.cookie.eq(cpl_head.cookie), cpl_cur.length.eq(cpl_head.length),
                                 cpl_cur.queue.eq(cpl_head.queue), cpl_cur.status.eq(cpl_head.status),
                                 cpl_cur.timestamp.eq(cpl_head.timestamp), cpl_cur.rule.eq(constant("RULE_NONE")),
                                 cpl_cur.reserved0.eq(0), cpl_cur.reserved1.eq(0),
                                 cpl_q.eq(cpl_head.queue), cpl_gen.eq(cpl_head.gen)]
                    m.d.comb += cpl_fifo.r_en.eq(1)
                    with m.If(~stale):
                        m.next = "CPL"
                with m.Elif(fetching):
                    with m.If(free >= next_burst):
                        start_burst(frame_addr, next_burst, 0)
                        m.next = "DATA"
                with m.Elif((ready != 0) & info_fifo.w_rdy):
                    with m.Switch(pick):
                        for q in range(n):
                            with m.Case(q):
                                cfg = self.queues[q]
                                slot = head[q] & ((1 << cfg.log2) - 1)
                                start_burst((cfg.desc_base >> 2) + slot * _DESC_WORDS, _DESC_WORDS, 0)
                                m.d.sync += cur_gen.eq(gen[q])
                    m.d.sync += [cur_q.eq(pick), rr.eq(pick)]
                    m.next = "DESC"

            with m.State("DESC"):
                with m.If(bus.ack):
                    m.d.sync += desc_raw.as_value().word_select(beat[:2], 32).eq(bus.dat_r)
                    advance_beat()
                    with m.If(last_beat):
                        m.next = "CHECK"

            with m.State("CHECK"):
                length = desc.length
                bad = (length < _MIN_TX_LEN) | (length > limit)
                m.d.comb += info_w.error.eq(bad)
                alive = Signal()
                with m.Switch(cur_q):
                    for q in range(n):
                        with m.Case(q):
                            m.d.comb += alive.eq(cur_gen == gen[q])
                            with m.If(alive & ~self.queue_reset[q]):
                                m.d.sync += head[q].eq(head[q] + 1)
                with m.If(alive & bad):
                    m.d.comb += info_fifo.w_en.eq(1)
                with m.Elif(alive):
                    m.d.sync += [fetching.eq(1), fetched.eq(0), frame_words.eq((length + 3) >> 2),
                                 frame_addr.eq(desc.addr[2:32])]
                m.next = "IDLE"

            with m.State("DATA"):
                m.d.comb += [wr.addr.eq((wp + beat)[:len(wr.addr)]), wr.data.eq(bus.dat_r), wr.en.eq(bus.ack)]
                with m.If(bus.ack):
                    advance_beat()
                    with m.If(last_beat):
                        m.d.sync += [wp.eq(wp + beats), fetched.eq(fetched + beats), frame_addr.eq(frame_addr + beats)]
                        with m.If(fetched + beats == frame_words):
                            m.d.sync += fetching.eq(0)
                            m.d.comb += info_fifo.w_en.eq(1)
                        m.next = "IDLE"

            with m.State("CPL"):
                m.d.comb += bus.dat_w.eq(cpl_cur.as_value().word_select(beat[:2], 32))
                with m.If(bus.ack):
                    advance_beat()
                    with m.If(last_beat):
                        with m.Switch(cpl_q):
                            for q in range(n):
                                with m.Case(q):
                                    with m.If((cpl_gen == gen[q]) & ~self.queue_reset[q]):
                                        m.d.sync += [cpl[q].eq(cpl[q] + 1), self.events[q].completion.eq(1)]
                                        with m.If(cpl_cur.status == 0):
                                            m.d.sync += [self.events[q].packet.eq(1),
                                                         self.events[q].length.eq(cpl_cur.length)]
                                        with m.Else():
                                            m.d.sync += self.events[q].drop.eq(1)
                        m.next = "IDLE"

        # ---- sender: buffer -> MacTx ----
        info_head = frame_info(info_fifo.r_data)
        send_q = Signal(range(max(n, 2)))
        send_gen = Signal(_GEN_BITS)
        send_cookie = Signal(32)
        send_len = Signal(INDEX_BITS)
        send_left = Signal(INDEX_BITS)
        send_words = Signal(range(depth + 1))
        word_ptr = Signal(ptr_bits)
        cur_word = Signal(32)
        byte_sel = Signal(2)
        stamp = Signal(32)
        cpl_w = Signal(cpl_info)
        m.d.comb += cpl_fifo.w_data.eq(cpl_w)

        stale_head = Signal()
        with m.Switch(info_head.queue):
            for q in range(n):
                with m.Case(q):
                    m.d.comb += stale_head.eq(info_head.gen != gen[q])

        m.d.comb += rd.addr.eq(word_ptr[:len(rd.addr)])
        with m.FSM(name="send"):
            with m.State("IDLE"):
                m.d.sync += [send_q.eq(info_head.queue), send_gen.eq(info_head.gen),
                             send_cookie.eq(info_head.cookie), send_len.eq(info_head.length),
                             send_left.eq(info_head.length), send_words.eq((info_head.length + 3) >> 2),
                             byte_sel.eq(0)]
                with m.If(info_fifo.r_rdy):
                    with m.If(info_head.error):
                        # Nothing was fetched: complete at once with LEN_ERROR (sent length 0).
                        m.d.comb += [cpl_w.queue.eq(info_head.queue), cpl_w.gen.eq(info_head.gen),
                                     cpl_w.cookie.eq(info_head.cookie), cpl_w.length.eq(0),
                                     cpl_w.status.eq(_STATUS.bit("LEN_ERROR").mask), cpl_w.timestamp.eq(self.cycles)]
                        with m.If(cpl_fifo.w_rdy):
                            m.d.comb += [cpl_fifo.w_en.eq(1), info_fifo.r_en.eq(1)]
                    with m.Elif(stale_head):
                        # The queue was reset since this frame was fetched: drop it unsent.
                        m.d.comb += info_fifo.r_en.eq(1)
                        m.d.sync += [rp.eq(rp + ((info_head.length + 3) >> 2)),
                                     word_ptr.eq(word_ptr + ((info_head.length + 3) >> 2))]
                    with m.Else():
                        m.d.comb += info_fifo.r_en.eq(1)
                        m.next = "LOAD"
            with m.State("LOAD"):
                # rd.addr = word_ptr (the frame's first word): its data is there next cycle.
                m.next = "FIRST"
            with m.State("FIRST"):
                m.d.sync += [cur_word.eq(rd.data), word_ptr.eq(word_ptr + 1)]
                m.next = "SEND"
            with m.State("SEND"):
                # rd.addr = word_ptr = the word after cur_word, read ahead.
                m.d.comb += [self.frames.valid.eq(1), self.frames.payload.data.eq(cur_word.word_select(byte_sel, 8)),
                             self.frames.payload.last.eq(send_left == 1)]
                with m.If(self.frames.ready):
                    m.d.sync += [byte_sel.eq(byte_sel + 1), send_left.eq(send_left - 1)]
                    with m.If(byte_sel == 3):
                        m.d.sync += [cur_word.eq(rd.data), word_ptr.eq(word_ptr + 1)]
                    with m.If(send_left == 1):
                        m.d.sync += stamp.eq(self.cycles)
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [cpl_w.queue.eq(send_q), cpl_w.gen.eq(send_gen), cpl_w.cookie.eq(send_cookie),
                             cpl_w.length.eq(send_len), cpl_w.status.eq(0), cpl_w.timestamp.eq(stamp)]
                with m.If(cpl_fifo.w_rdy):
                    m.d.comb += cpl_fifo.w_en.eq(1)
                    # Free the frame's words; word_ptr may have run one word ahead.
                    m.d.sync += [rp.eq(rp + send_words), word_ptr.eq(rp + send_words)]
                    m.next = "IDLE"

        # Queue resets: indices to 0, a new generation (phase follows from CPL).
        for q in range(n):
            with m.If(self.queue_reset[q]):
                m.d.sync += [head[q].eq(0), cpl[q].eq(0), gen[q].eq(gen[q] + 1)]
        return m
