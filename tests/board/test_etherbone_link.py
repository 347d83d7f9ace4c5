"""The ``etherbone`` link's client: wire format, burst splitting, retries, errors, DMA copies."""

from __future__ import annotations

import socket
import time

import pytest

from litex.tools.remote.etherbone import EtherbonePacket, EtherboneRecord, EtherboneWrites

from splitnic.errors import SplitnicError
from splitnic.link_etherbone import (IN_FLIGHT_BYTES, WRITE_BYTES, EtherboneBus, EtherboneClient, EtherboneDma,
                                     parse_target)
from splitnic_spec import board as amap

from .etherbone_model import ADDRESS, EtherboneModel


def test_reads_decode_with_litex() -> None:
    datagram = EtherboneClient.encode_reads(0x40, [0x8000_0000, 0x8000_0014])
    packet = EtherbonePacket(init=datagram)
    packet.decode()
    (record,) = packet.records
    assert (packet.magic, packet.version, packet.addr_size, record.wcount, record.rcount) == (0x4E6F, 1, 4, 0, 2)
    assert record.byte_enable == 0xF
    # LiteX's decoder does not keep the return address; it follows the record header.
    assert datagram[12:16] == (0x40).to_bytes(4, "big")
    assert [r.addr for r in record.reads.reads] == [0x8000_0000, 0x8000_0014]


def test_writes_decode_with_litex() -> None:
    packet = EtherbonePacket(init=EtherboneClient.encode_writes(0x4000_0100, [1, 0xDEADBEEF, 3]))
    packet.decode()
    (record,) = packet.records
    assert (record.wcount, record.rcount, record.writes.base_addr) == (3, 0, 0x4000_0100)
    assert [w.data for w in record.writes.writes] == [1, 0xDEADBEEF, 3]


def test_litex_answer_decodes() -> None:
    answer = EtherbonePacket()
    rec = EtherboneRecord()
    rec.writes = EtherboneWrites(base_addr=0x1234, datas=[0x534E4943, 7])
    answer.records = [rec]
    answer.encode()
    assert EtherboneClient.decode_answer(bytes(answer.bytes)) == (0x1234, [0x534E4943, 7])
    with pytest.raises(ValueError, match="magic"):
        EtherboneClient.decode_answer(b"\x12\x34" + bytes(answer.bytes)[2:])


def test_records_longer_than_the_core_accepts_are_refused() -> None:
    with pytest.raises(ValueError, match="1..16"):
        EtherboneClient.encode_reads(0, list(range(0, 17 * 4, 4)))
    with pytest.raises(ValueError, match="1..16"):
        EtherboneClient.encode_writes(0, [0] * 17)


def test_bursts_are_split_to_16_words_and_read_back() -> None:
    with EtherboneModel() as model:
        client = EtherboneClient(ADDRESS, model.port)
        values = list(range(1000, 1000 + 100))
        client.write(0x4000_0000, values)
        assert client.read(list(range(0x4000_0000, 0x4000_0000 + 400, 4))) == values
        client.close()
    assert model.oversized == 0
    assert max(max(w, r) for w, r in model.records) == 16
    assert sum(w for w, _ in model.records) == 100 and sum(r for _, r in model.records) == 100


def test_lost_datagrams_are_read_again() -> None:
    with EtherboneModel() as model:
        model.memory[amap.NIC_CSR_BASE] = 0x534E4943
        client = EtherboneClient(ADDRESS, model.port, timeout=0.2)
        model.drop_next = 1
        assert EtherboneBus(client).read32(0) == 0x534E4943
        client.close()


def test_no_answer_is_a_one_line_error_that_says_what_to_check() -> None:
    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet.bind((ADDRESS, 0))           # a port that receives and never answers
    try:
        client = EtherboneClient(ADDRESS, quiet.getsockname()[1], timeout=0.1)
        with pytest.raises(SplitnicError, match=r"no answer within 0.1 s \(3 tries\).*splitnic flash") as err:
            client.read([0])
        assert "\n" not in str(err.value) and ADDRESS in str(err.value)
        client.close()
    finally:
        quiet.close()


def test_dma_copy_moves_whole_words_both_ways() -> None:
    with EtherboneModel() as model:
        client = EtherboneClient(ADDRESS, model.port)
        dma = EtherboneDma(client)
        region = dma.alloc(256)
        client.read([region.device_addr])            # writes are posted: a read orders after them
        assert all(model.memory[region.device_addr + i] == 0 for i in range(0, 256, 4))  # zeroed on the board too
        region.view[5:9] = b"\x01\x02\x03\x04"
        dma.sync_for_device(region, 5, 4)           # touches the words at 4 and 8
        client.read([region.device_addr])
        assert model.memory[region.device_addr + 4].to_bytes(4, "little") == b"\x00\x01\x02\x03"
        assert model.memory[region.device_addr + 8].to_bytes(4, "little") == b"\x04\x00\x00\x00"
        model.memory[region.device_addr + 64] = 0xAABBCCDD
        dma.sync_for_cpu(region, 64, 4)
        assert bytes(region.view[64:68]) == bytes.fromhex("ddccbbaa")
        assert dma.zero_copy is False
        dma.close()
        client.close()


def test_target_parsing() -> None:
    assert parse_target("192.168.1.50") == ("192.168.1.50", amap.ETHERBONE_UDP_PORT)
    assert parse_target("10.0.0.2:4321") == ("10.0.0.2", 4321)
    with pytest.raises(SplitnicError, match="UDP port"):
        parse_target("10.0.0.2:http")


def test_writes_wait_for_a_confirmation_before_they_could_overflow_the_board() -> None:
    # A slow board with the host-link port's receive buffer: 100 write records (three times
    # what it holds) sent at once would lose most of them; paced, none is lost.
    values = [(i * 2654435761) & 0xFFFFFFFF for i in range(16 * 100)]
    with EtherboneModel(buffer_bytes=amap.HOST_RX_BUFFER_BYTES, handle_delay=0.001) as model:
        client = EtherboneClient(ADDRESS, model.port)
        client.write(amap.DMA_RAM_BASE, values)
        assert client.read([amap.DMA_RAM_BASE + 4 * i for i in range(len(values))]) == values
        client.close()
    assert model.dropped == 0
    assert model.most_buffered <= IN_FLIGHT_BYTES
    assert client.confirmations >= 100 * EtherboneModel.frame_bytes(bytes(80)) // WRITE_BYTES


def test_unpaced_writes_do_overflow_the_model_board() -> None:
    # The model's buffer is real: the same records sent at once lose some.
    with EtherboneModel(buffer_bytes=amap.HOST_RX_BUFFER_BYTES, handle_delay=0.001) as model:
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.bind(("127.0.0.1", model.port))
        raw.connect((ADDRESS, model.port))
        for i in range(100):
            raw.send(EtherboneClient.encode_writes(amap.DMA_RAM_BASE + 64 * i, [i] * 16))
        raw.close()
        time.sleep(0.3)
    assert model.dropped > 0
