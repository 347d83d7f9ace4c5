"""The eth host link's protocol spec: its sizes add up, and the reference codec round-trips and refuses junk."""

from __future__ import annotations

import pytest

from splitnic_spec import board, hostlink as hl


def test_headers_fit_a_standard_frame_with_a_full_size_message_split_in_two() -> None:
    assert (hl.FRAME_HEADER.size, hl.MESSAGE_HEADER.size) == (20, 8)
    # MAX_MESSAGE_DATA fills a jumbo frame exactly; a standard frame takes 1476 bytes of one write.
    assert hl.FRAME_HEADER.size + hl.MESSAGE_HEADER.size + hl.MAX_MESSAGE_DATA <= hl.MTU_JUMBO
    assert hl.MAX_MESSAGE_DATA % 4 == 0


def test_the_host_window_is_apart_from_the_boards_own_addresses() -> None:
    window = range(hl.HOST_WINDOW_BASE, hl.HOST_WINDOW_BASE + hl.HOST_WINDOW_SIZE)
    for base, size in ((board.DMA_RAM_BASE, board.DMA_RAM_SIZE), (board.NIC_CSR_BASE, board.NIC_CSR_SIZE),
                       (board.LITEX_CSR_BASE, 4)):
        assert base not in window and base + size - 1 not in window
    assert hl.HOST_WINDOW_BASE + hl.HOST_WINDOW_SIZE <= 1 << 32


def test_the_counters_window_holds_board_counters_apart_from_every_other_region() -> None:
    assert hl.BOARD_COUNTERS.size <= hl.COUNTERS_SIZE and all(m.width == 32 for m in hl.BOARD_COUNTERS.members)
    # A LiteX bus region: a power of two, aligned to its size.
    assert hl.COUNTERS_SIZE & (hl.COUNTERS_SIZE - 1) == 0 and hl.COUNTERS_BASE % hl.COUNTERS_SIZE == 0
    for base, size in ((board.DMA_RAM_BASE, board.DMA_RAM_SIZE), (board.NIC_CSR_BASE, board.NIC_CSR_SIZE),
                       (board.LITEX_CSR_BASE, 32 * board.LITEX_CSR_PAGING), (hl.HOST_WINDOW_BASE, hl.HOST_WINDOW_SIZE)):
        assert base + size <= hl.COUNTERS_BASE or base >= hl.COUNTERS_BASE + hl.COUNTERS_SIZE, hex(base)


def test_a_frame_round_trips_with_consecutive_message_numbers() -> None:
    messages = (hl.Message(hl.OP_WRITE, 0xA000_0040, bytes(range(64))),
                hl.Message(hl.OP_IRQ, 0, (7).to_bytes(4, "little")),
                hl.Message(hl.OP_READ, 0x8000_0000, hl.read_request(3, 0x55)))
    frame = hl.Frame(seq=0xFFFF_FFFF, frame=9, credit=17, acked=5, messages=messages)
    back = hl.decode_frame(hl.encode_frame(frame) + bytes(10))   # Ethernet padding after the last message
    assert [(m.op, m.addr, m.data) for m in back.messages] == [(m.op, m.addr, m.data) for m in messages]
    assert [m.seq for m in back.messages] == [0xFF, 0x00, 0x01]
    assert (back.seq, back.frame, back.credit, back.acked) == (0xFFFF_FFFF, 9, 17, 5)


@pytest.mark.parametrize("mangle, why", [
    (lambda b: b[:10], "shorter than a frame header"),
    (lambda b: bytes([hl.VERSION_MAJOR + 1]) + b[1:], f"version {hl.VERSION_MAJOR + 1}"),
    (lambda b: b[:-4], "bad length"),
    # The message header's seq byte, just past the frame header.
    (lambda b: b[:hl.FRAME_HEADER.size + 1] + bytes([b[hl.FRAME_HEADER.size + 1] ^ 1]) + b[hl.FRAME_HEADER.size + 2:],
     "numbered"),
])
def test_malformed_frames_are_refused_with_the_reason(mangle, why: str) -> None:
    good = hl.encode_frame(hl.Frame(3, 0, 4, 0, (hl.Message(hl.OP_WRITE, 0xA000_0000, bytes(8)),)))
    with pytest.raises(hl.ProtocolError, match=why):
        hl.decode_frame(mangle(good))


def test_hello_checks_the_magic_and_the_spec_hash() -> None:
    data = hl.hello(hl.MTU_JUMBO, 8, hl.HOST_WINDOW_BASE, 1 << 20)
    assert hl.parse_hello(data)["window"] == 8
    with pytest.raises(hl.ProtocolError, match="rebuild"):
        hl.parse_hello(data[:4] + bytes(4) + data[8:])
    with pytest.raises(hl.ProtocolError, match="magic"):
        hl.parse_hello(bytes(4) + data[4:])


def test_sequence_numbers_compare_across_the_wrap() -> None:
    assert hl.seq_after(1, 0xFFFF_FFFF) and not hl.seq_after(0xFFFF_FFFF, 1) and not hl.seq_after(5, 5)
