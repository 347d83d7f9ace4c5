"""RX/TX queues: bursts through the NIC's loopback, zero-copy views, buffer accounting."""

from __future__ import annotations

import ctypes
import time

import pytest

from splitnic.errors import SplitnicError
from splitnic.tx_queue import TxBuffer

from .conftest import NIC_MAC, frame, receive


def _loopback(nic, ring_log2: int = 5, buf_size: int = 2048):
    nic.set_loopback(True)
    return nic.rx_queue(0, ring_log2=ring_log2, buf_size=buf_size), nic.tx_queue(0, ring_log2=ring_log2)


def test_tx_burst_loops_back_to_rx_burst_unchanged(any_nic) -> None:
    rxq, txq = _loopback(any_nic)
    frames = [frame(size=60 + 37 * i, payload=bytes([i])) for i in range(12)]
    assert txq.tx_burst(frames) == len(frames)
    got = receive(rxq, len(frames))
    assert [bytes(p.data) for p in got] == frames
    assert all(p.status == 0 for p in got)
    rxq.release(got)
    assert txq.flush()
    rxq.check()
    txq.check()
    stats = any_nic.stats()
    assert stats["tx_ok"] == stats["rxq0_packets"] == len(frames)
    assert stats["rx_ok_bytes"] == sum(map(len, frames))


def test_short_frames_are_padded_to_the_minimum(any_nic) -> None:
    rxq, txq = _loopback(any_nic)
    short = frame(size=20)
    assert txq.tx_burst([short]) == 1
    (p,) = receive(rxq, 1)
    with p:
        assert len(p) == 60 and bytes(p.data) == short + bytes(40)


def test_packet_data_is_the_dma_buffer_itself(any_nic) -> None:
    rxq, txq = _loopback(any_nic)
    txq.tx_burst([frame(size=100)])
    (p,) = receive(rxq, 1)
    view = p.data
    region = rxq.ring.bufs
    off = p.device_addr - region.device_addr
    # Same bytes: a write through the DMA region shows in the packet's view ...
    region.view[off + 20] = 0xAB
    assert view[20] == 0xAB
    # ... and the view's address is the buffer's address in the mapping.
    view_addr = ctypes.addressof(ctypes.c_char.from_buffer(view))
    region_addr = ctypes.addressof(ctypes.c_char.from_buffer(region.view))
    assert view_addr == region_addr + off
    del view
    p.release()
    with pytest.raises(ValueError, match="released"):
        p.data


def test_released_buffers_are_reposted_and_never_leak(any_nic) -> None:
    rxq, txq = _loopback(any_nic, ring_log2=4)  # 16 entries, 32 buffers
    total = 0
    held = []
    for round_ in range(6):
        n = txq.tx_burst([frame(size=64 + round_)] * 10)
        got = receive(rxq, n)
        total += len(got)
        held += got
        counts = rxq.check()
        assert counts["lent"] == len(held)
        # Release out of order, some one by one, some in a batch.
        for p in held[::2]:
            p.release()
        rxq.release(held[1::2])
        held = []
        counts = rxq.check()
        assert counts["lent"] == 0 and counts["free"] + counts["posted"] == counts["total"]
    assert total == 60
    assert txq.flush()
    txq.check()


def test_a_batch_release_reposts_at_once_and_single_releases_at_the_next_burst(any_nic) -> None:
    """So frames arriving before the application polls again find buffers (no drops)."""
    any_nic.set_loopback(True)
    # No spare buffers: every buffer is either posted or lent, so the counts below are exact.
    rxq, txq = any_nic.rx_queue(0, ring_log2=4, nbufs=16), any_nic.tx_queue(0, ring_log2=4)
    entries = rxq.check()["posted"]
    got = receive(rxq, txq.tx_burst([frame(size=64)] * 10), timeout=30)
    assert len(got) == 10 and rxq.check()["posted"] == entries - 10
    got[0].release()
    assert rxq.check()["posted"] == entries - 10          # single release: posted on the next burst
    rxq.release(got[1:])
    assert rxq.check()["posted"] == entries                # batch: at once, the single one with it
    assert rxq.rx_burst() == [] and rxq.check()["lent"] == 0


def test_an_rx_batch_views_each_frame_and_gives_every_buffer_back_in_one_release(any_nic) -> None:
    any_nic.set_loopback(True)
    # No spare buffers: every buffer is either posted or lent, so the counts below are exact.
    rxq, txq = any_nic.rx_queue(0, ring_log2=4, nbufs=16), any_nic.tx_queue(0, ring_log2=4)
    frames = [frame(size=60 + 41 * i, payload=bytes([i])) for i in range(12)]
    assert txq.tx_burst(frames) == len(frames)
    batches, deadline = [], time.monotonic() + 30
    while sum(map(len, batches)) < len(frames) and time.monotonic() < deadline:
        batch = rxq.rx_batch(5)                  # at most 5 a batch: the frames span several
        assert len(batch) <= 5
        batches.append(batch) if batch else time.sleep(0.0005)
    assert [bytes(view) for batch in batches for view in batch] == frames
    first = batches[0]
    assert first.lengths() == [len(f) for f in frames[:len(first)]] == [first.length(i) for i in range(len(first))]
    assert bytes(first[-1]) == frames[len(first) - 1] and first.status(0) == 0
    assert first.nbytes == sum(map(len, frames[:len(first)]))
    with pytest.raises(IndexError, match=f"frame {len(first)} of a batch of {len(first)}"):
        first[len(first)]
    assert rxq.check()["lent"] == len(frames)
    posted = rxq.check()["posted"]
    first.release()
    assert first.released and rxq.check()["lent"] == len(frames) - len(first)
    assert rxq.check()["posted"] == posted + len(first)          # re-posted at once, in one call
    first.release()                                               # idempotent
    with pytest.raises(ValueError, match="batch already released"):
        first[0]
    for batch in batches[1:]:
        with batch:
            pass
    assert rxq.check()["lent"] == 0
    assert len(rxq.rx_batch()) == 0
    assert txq.flush()
    txq.check()


def test_double_release_is_harmless_and_stranger_cookies_are_refused(any_nic) -> None:
    rxq, txq = _loopback(any_nic)
    txq.tx_burst([frame(size=64)])
    (p,) = receive(rxq, 1)
    p.release()
    p.release()  # idempotent on the packet
    rxq.check()
    with pytest.raises(RuntimeError, match="not lent out"):
        rxq._release_one(p.cookie)  # the buffer is free (or posted) again: refused
    rxq.check()


def test_holding_all_buffers_drops_frames_and_counts_them(mmio_nic) -> None:
    rxq, txq = _loopback(mmio_nic, ring_log2=4)
    rxq_bufs = rxq.ring.nbufs
    sent = 0
    held = []
    while sent < rxq_bufs + 8:
        sent += txq.tx_burst([frame(size=64)] * 8)
        held += receive(rxq, 8, timeout=5)
        assert txq.flush()
    assert len(held) == rxq_bufs                      # every buffer lent out, then nothing more
    assert mmio_nic.stats()["rxq0_drops"] == 8
    rxq.release(held)
    assert rxq.check()["lent"] == 0


def test_frames_longer_than_the_buffer_arrive_truncated(any_nic) -> None:
    rxq, txq = _loopback(any_nic, buf_size=256)
    long = frame(size=300)
    txq.tx_burst([long])
    (p,) = receive(rxq, 1)
    with p:
        assert p.truncated and len(p) == 256 and bytes(p.data) == long[:256]


def test_zero_copy_tx_buffers(any_nic) -> None:
    rxq, txq = _loopback(any_nic)
    bufs = [txq.buffer() for _ in range(3)]
    assert all(isinstance(b, TxBuffer) for b in bufs)
    assert txq.check()["lent"] == 3
    for i, b in enumerate(bufs[:2]):
        f = frame(size=80 + i)
        b.view[:len(f)] = f
        b.length = len(f)
    bufs[2].release()
    assert txq.tx_burst(bufs[:2]) == 2
    got = receive(rxq, 2)
    assert [len(p) for p in got] == [80, 81]
    rxq.release(got)
    assert txq.flush()
    assert txq.check()["lent"] == 0
    with pytest.raises(ValueError, match="already sent"):
        txq.tx_burst([bufs[0]])


def test_forwarding_received_packets_copies_buffer_to_buffer(any_nic) -> None:
    rxq, txq = _loopback(any_nic)
    first = [frame(size=70, payload=b"fwd%d" % i) for i in range(4)]
    txq.tx_burst(first)
    got = receive(rxq, 4)
    assert txq.tx_burst(got) == 4     # straight from RX buffers
    rxq.release(got)
    again = receive(rxq, 4)
    assert [bytes(p.data) for p in again] == first
    rxq.release(again)


def test_a_mixed_burst_of_bytes_packets_and_tx_buffers_goes_out_in_order(any_nic) -> None:
    rxq, txq = _loopback(any_nic)
    received = [frame(size=70 + i, payload=b"rx%d" % i) for i in range(2)]
    txq.tx_burst(received)
    got = receive(rxq, 2)
    held = txq.buffer()
    own = frame(size=90, payload=b"held")
    held.view[:len(own)] = own
    held.length = len(own)
    copied = [frame(size=100 + i, payload=b"copy%d" % i) for i in range(2)]
    # Bytes, another queue's Packets, a TxBuffer, bytes: each run its own way, the burst in order.
    assert txq.tx_burst([copied[0], *got, held, copied[1]]) == 5
    rxq.release(got)
    again = receive(rxq, 5)
    assert [bytes(p.data) for p in again] == [copied[0], *received, own, copied[1]]
    rxq.release(again)
    assert txq.flush()
    assert txq.check()["lent"] == 0


def test_tx_ring_full_takes_only_what_fits(mmio_nic, softnic) -> None:
    mmio_nic.enable(tx=False)  # the NIC takes nothing: the ring fills
    txq = mmio_nic.tx_queue(1, ring_log2=4)
    mmio_nic.enable(tx=False)
    assert txq.tx_burst([frame(size=64)] * 20) == 16
    assert txq.tx_burst([frame(size=64)]) == 0
    assert txq.buffer() is None
    txq.check()
    mmio_nic.enable(tx=True)
    assert txq.flush()
    assert softnic.wire_frames == 16 and len(softnic.sent()) == 16


def test_too_long_frame_for_the_tx_buffer_is_a_user_error(mmio_nic) -> None:
    txq = mmio_nic.tx_queue(0, ring_log2=4)
    with pytest.raises(SplitnicError, match="does not fit the 2048-byte TX buffers"):
        txq.tx_burst([bytes(3000)])
    txq.check()


def test_address_filter_and_steering(mmio_nic, softnic) -> None:
    from splitnic.rules import RuleSet, parse_rule
    nic = mmio_nic
    qs = [nic.rx_queue(q, ring_log2=4) for q in range(3)]
    rules = RuleSet([parse_rule("ethertype 0x88b6 -> app0"), parse_rule("udp dport 9000 -> app1")])
    nic.set_rules(rules.entry_values(i) for i in range(len(rules.rules)))
    udp = (NIC_MAC + bytes(6) + b"\x08\x00" + bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]) + bytes(8)
           + (1234).to_bytes(2, "big") + (9000).to_bytes(2, "big") + bytes(4))
    for f in (frame(ethertype=0x88B6, size=64), udp + bytes(60 - len(udp)), frame(size=64),
              frame(dst=bytes.fromhex("020000000099"), size=64), frame(dst=b"\xff" * 6, size=64)):
        assert softnic.inject(f)
    time.sleep(0.05)
    got = [receive(q, 3, timeout=0.5) for q in qs]
    assert [len(g) for g in got] == [2, 1, 1]            # kernel: unicast + broadcast; app0; app1
    assert nic.stats()["rx_filtered"] == 1
    for q, g in zip(qs, got):
        q.release(g)
    nic.set_filters(promisc=True)
    softnic.inject(frame(dst=bytes.fromhex("020000000099"), size=64))
    assert len(receive(qs[0], 1, timeout=5)) == 1
