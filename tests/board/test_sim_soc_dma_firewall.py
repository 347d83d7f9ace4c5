"""The simulated board SoC: RX descriptors pointing outside NIC-local memory are counted and write nothing.

The whole SoC (LiteX + Verilator, :mod:`splitnic_gateware.targets.sim`): LiteX's own
interconnect and SRAM behind the NIC's DMA firewall, the management CPU running.  The
test plays a driver with a bug (or someone who can write the register window) over
Etherbone: RX descriptors whose buffers are the NIC's own SCRATCH register and LiteX's
``ctrl_scratch`` CSR, then one good descriptor; three frames through the NIC's internal
loopback.  The two misplaced ones are counted in STAT_DMA_ERR (also as ``splitnic
stats`` shows it) and both registers keep their values; the good frame lands byte for
byte, and the queue completes all three.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from splitnic.link_etherbone import EtherboneClient
from splitnic_spec import COMPLETION, CSR_MAP, DESCRIPTOR
from splitnic_spec import board as amap
from splitnic_gateware.targets.sim import SOC_IP, SimSoCProcess, csr_address
from splitnic_lab.netns import inside

SPLITNIC = Path(sys.executable).parent / "splitnic"
CTRL = CSR_MAP.register("CTRL")
RXQ, TXQ = CSR_MAP.array("RXQ"), CSR_MAP.array("TXQ")
TRUNCATED = COMPLETION.member("status").bit("TRUNCATED").mask
LOG2 = 4
#: The test's rings and buffers: the top 4 KiB of the NIC-local RAM.
AREA = amap.DMA_RAM_BASE + amap.DMA_RAM_SIZE - 0x1000
RX_DESC, RX_CPL, TX_DESC, TX_CPL = AREA, AREA + 0x100, AREA + 0x200, AREA + 0x300
TX_BUF, RX_BUF = AREA + 0x400, AREA + 0x800


@pytest.fixture(scope="module")
def soc() -> Iterator[SimSoCProcess]:
    # Builds the simulator the first time (minutes); this thread joins its namespace.
    with SimSoCProcess() as running, inside(running.netns_path):
        yield running


def _reg(name: str) -> int:
    return amap.NIC_CSR_BASE + CSR_MAP.register(name).offset


def _q(array, name: str) -> int:
    return amap.NIC_CSR_BASE + array.offset(0, name)


def _words(data: bytes) -> list[int]:
    data += bytes(-len(data) % 4)
    return [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]


def _bytes(words: list[int]) -> bytes:
    return b"".join(w.to_bytes(4, "little") for w in words)


@pytest.mark.timeout(1800)
def test_rx_buffers_at_registers_are_counted_and_write_nothing(soc: SimSoCProcess) -> None:
    litex_scratch = csr_address("ctrl_scratch", soc.out_dir)
    nic_scratch = _reg("SCRATCH")
    eb = EtherboneClient(SOC_IP, timeout=10.0)
    try:
        eb.write(_reg("CTRL"), [CTRL.pack(RESET=1)])
        eb.write(nic_scratch, [0x1111_1111])
        eb.write(litex_scratch, [0x2222_2222])
        # Three RX buffers: the NIC's SCRATCH, LiteX's scratch CSR, then a good one.
        descs = [DESCRIPTOR.pack(addr=nic_scratch, length=4, cookie=0),
                 DESCRIPTOR.pack(addr=litex_scratch, length=4, cookie=1),
                 DESCRIPTOR.pack(addr=RX_BUF, length=1024, cookie=2)]
        eb.write(RX_DESC, _words(b"".join(descs)))
        eb.write(RX_CPL, [0] * (4 << LOG2))
        eb.write(TX_CPL, [0] * (4 << LOG2))
        frames = [b"\xff" * 6 + bytes.fromhex("020000000099") + b"\x88\xb5" + bytes([i]) * (50 + 10 * i)
                  for i in range(3)]
        tx_descs = []
        for i, f in enumerate(frames):
            eb.write(TX_BUF + 0x100 * i, _words(f))
            tx_descs.append(DESCRIPTOR.pack(addr=TX_BUF + 0x100 * i, length=len(f), cookie=0x10 + i))
        eb.write(TX_DESC, _words(b"".join(tx_descs)))
        for array, desc, cpl in ((RXQ, RX_DESC, RX_CPL), (TXQ, TX_DESC, TX_CPL)):
            eb.write(_q(array, "DESC_LO"), [desc])
            eb.write(_q(array, "CPL_LO"), [cpl])
            eb.write(_q(array, "SIZE"), [LOG2])
            eb.write(_q(array, "CTRL"), [array.register("CTRL").pack(ENABLE=1)])
        eb.write(_q(RXQ, "TAIL"), [len(descs)])
        eb.write(_reg("CTRL"), [CTRL.pack(RX_EN=1, TX_EN=1, LOOPBACK=1, PROMISC=1)])
        eb.write(_q(TXQ, "TAIL"), [len(frames)])
        deadline = time.monotonic() + 300
        while eb.read([_q(RXQ, "CPL")])[0] < len(frames):
            assert time.monotonic() < deadline, f"RX completions: {eb.read([_q(RXQ, 'CPL')])[0]} of 3"
            time.sleep(0.2)

        assert eb.read([nic_scratch, litex_scratch]) == [0x1111_1111, 0x2222_2222], "the NIC's DMA wrote a register"
        assert eb.read([_reg("STAT_DMA_ERR")]) == [2]
        cpls = [COMPLETION.unpack(_bytes(eb.read([RX_CPL + 16 * i + 4 * k for k in range(4)]))) for i in range(3)]
        assert [(c["cookie"], c["length"], c["status"]) for c in cpls] == \
            [(0, 4, TRUNCATED), (1, 4, TRUNCATED), (2, len(frames[2]), 0)]
        got = _bytes(eb.read([RX_BUF + 4 * k for k in range((len(frames[2]) + 3) // 4)]))[:len(frames[2])]
        assert got == frames[2], "the good frame did not land byte for byte"
    finally:
        eb.close()
    # The driver shows the counter, from the board as from the software NIC.
    stats = subprocess.run([SPLITNIC, "stats", "--json", "--link", soc.link], capture_output=True, text=True,
                           timeout=300)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["dma_err"] == 2
