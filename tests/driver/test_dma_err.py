"""STAT_DMA_ERR on the software NIC: the driver reads a misplaced ring as on the board's NIC.

The board's NIC counts what its DMA firewall refuses (tests/gateware/test_dma_firewall.py); the
software NIC counts its accesses outside DMA memory in the same register, so ``splitnic stats``
shows ``dma_err`` from either.
"""

from __future__ import annotations

import time

import splitnic
from splitnic_sim.softnic import SoftNic
from splitnic_spec import CSR_MAP

_TXQ, _CTRL = CSR_MAP.array("TXQ"), CSR_MAP.register("CTRL")


def test_a_tx_ring_outside_dma_memory_is_counted_in_stat_dma_err(softnic: SoftNic) -> None:
    nic = splitnic.open(softnic.link)
    try:
        nic.reset()
        assert nic.stats()["dma_err"] == 0
        outside = softnic.dma_base + softnic.size     # just past the NIC's DMA memory
        softnic.write_reg(_TXQ.offset(0, "DESC_LO"), outside)
        softnic.write_reg(_TXQ.offset(0, "CPL_LO"), softnic.dma_base)
        softnic.write_reg(_TXQ.offset(0, "CTRL"), _TXQ.register("CTRL").pack(ENABLE=1))
        softnic.write_reg(_CTRL.offset, _CTRL.pack(TX_EN=1))
        softnic.write_reg(_TXQ.offset(0, "TAIL"), 1)
        deadline = time.monotonic() + 5
        while nic.stats()["dma_err"] == 0:
            assert time.monotonic() < deadline, "STAT_DMA_ERR stayed 0"
            time.sleep(0.01)
        assert softnic.read_reg(_TXQ.offset(0, "CPL")) == 0       # nothing was sent or completed
        nic.reset()                                               # CTRL.RESET clears it, like every counter
        assert softnic.read_reg(CSR_MAP.register("STAT_DMA_ERR").offset) == 0
    finally:
        nic.close()
