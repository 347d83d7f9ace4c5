"""Store-and-forward packet FIFO: received frames in, whole committed frames out.

Ref: docs/registers.md, STAT_RX_FIFO_DROP and Completion.timestamp (generated from
splitnic_spec.nic); the byte stream is :func:`splitnic_gateware.interfaces.rx_stream`.

The MAC cannot wait, so every byte is written as it comes, packed little-endian
into 32-bit words (byte 0 of the frame in bits 7..0 of word 0, the same order
the DMA engine writes to host memory).  On the frame's last byte the frame is
either committed (``meta.deliver`` set and it fitted) or forgotten by rewinding
the write pointer to the last commit.  A frame that does not fit, in the data
memory or in the small FIFO of per-frame records, is dropped whole and counted
once through ``overflow``.

The reader sees the oldest committed frame's :class:`FrameInfo` on ``head``,
reads any of its words at random (``read_offset`` in, ``read_data`` one cycle
later) and releases it with ``head.ready``; its space is free from then on.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..interfaces import LEN_BITS, QUEUE_BITS, rx_stream

__all__ = ["FrameInfo", "PacketFifo", "frame_words"]


class FrameInfo(data.Struct):
    """What the FIFO records about one committed frame."""
    #: Bytes of the frame (FCS excluded).
    length: LEN_BITS
    queue: QUEUE_BITS
    rule: 8
    status: 8
    #: ``cycles`` when the frame's last byte arrived.
    timestamp: 32


def frame_words(length):
    """Amaranth expression: 32-bit words that hold ``length`` bytes."""
    return (length + 3) >> 2


class PacketFifo(wiring.Component):
    """Frames from the MAC, buffered whole; the head frame is readable word by word.

    ``words`` (a power of two) sizes the data memory; ``frames`` the number of
    committed frames that can wait at once.
    """

    def __init__(self, *, words: int = 8192, frames: int = 64) -> None:
        if not isinstance(words, int) or words < 16 or words & (words - 1):
            raise ValueError(f"words must be a power of two >= 16, not {words!r}")
        if not isinstance(frames, int) or frames < 2:
            raise ValueError(f"frames must be an integer >= 2, not {frames!r}")
        self._words = words
        self._frames = frames
        super().__init__({
            "frames": In(rx_stream()),
            "cycles": In(32),
            #: Strobe: a frame to deliver was dropped because it did not fit.
            "overflow": Out(1),
            "head": Out(stream.Signature(FrameInfo)),
            #: Word of the head frame to read; its value is on ``read_data`` one cycle later.
            "read_offset": In(range(words)),
            "read_data": Out(32),
        })

    @property
    def words(self) -> int:
        """Value of the data memory's size in 32-bit words."""
        return self._words

    def elaborate(self, platform) -> Module:
        m = Module()
        words = self._words
        addr_bits = words.bit_length() - 1
        m.submodules.mem = mem = Memory(shape=32, depth=words, init=[])
        m.submodules.info = info = SyncFIFOBuffered(width=FrameInfo.as_shape().size, depth=self._frames)
        wp = mem.write_port()
        rp = mem.read_port()

        # Pointers carry one extra bit so that full and empty differ.
        wr_ptr = Signal(addr_bits + 1)       # next word to write (uncommitted frame included)
        commit_ptr = Signal(addr_bits + 1)   # end of the last committed frame
        rd_ptr = Signal(addr_bits + 1)       # first word of the head frame
        used = Signal(addr_bits + 1)
        m.d.comb += used.eq(wr_ptr - rd_ptr)
        full = used == words

        # --- write side -------------------------------------------------------------------
        held = [Signal(8, name=f"held{i}") for i in range(3)]   # bytes 0..2 of the word being built
        byte_index = Signal(2)
        length = Signal(LEN_BITS)
        lost = Signal()                      # a word of this frame did not fit
        rx = self.frames.payload
        word = Cat(*[Mux(byte_index == i, rx.data, held[i]) for i in range(3)], rx.data)
        record = Signal(FrameInfo)
        m.d.comb += [
            record.length.eq(length + 1), record.queue.eq(rx.meta.queue), record.rule.eq(rx.meta.rule),
            record.status.eq(rx.meta.status), record.timestamp.eq(self.cycles),
            info.w_data.eq(record),
            wp.addr.eq(wr_ptr[:addr_bits]), wp.data.eq(word),
        ]
        m.d.sync += self.overflow.eq(0)
        with m.If(self.frames.valid):
            with m.Switch(byte_index):
                for i in range(3):
                    with m.Case(i):
                        m.d.sync += held[i].eq(rx.data)
            m.d.sync += [byte_index.eq(byte_index + 1), length.eq(length + 1)]
            write = (byte_index == 3) | rx.last
            fits = ~lost & ~full
            with m.If(write & fits):
                m.d.comb += wp.en.eq(1)
                m.d.sync += wr_ptr.eq(wr_ptr + 1)
            with m.If(write & ~fits):
                m.d.sync += lost.eq(1)
            with m.If(rx.last):
                m.d.sync += [byte_index.eq(0), length.eq(0), lost.eq(0)]
                with m.If(rx.meta.deliver & fits & info.w_rdy):
                    m.d.comb += info.w_en.eq(1)
                    m.d.sync += commit_ptr.eq(wr_ptr + 1)
                with m.Else():
                    # Forget the frame: the next one starts where this one did.
                    m.d.sync += wr_ptr.eq(commit_ptr)
                    m.d.sync += self.overflow.eq(rx.meta.deliver)

        # --- read side --------------------------------------------------------------------
        m.d.comb += [
            self.head.valid.eq(info.r_rdy),
            self.head.payload.eq(info.r_data),
            info.r_en.eq(self.head.ready),
            rp.addr.eq((rd_ptr + self.read_offset)[:addr_bits]),
            self.read_data.eq(rp.data),
        ]
        with m.If(self.head.valid & self.head.ready):
            m.d.sync += rd_ptr.eq(rd_ptr + frame_words(self.head.payload.length))
        return m
