"""The host link's message engines on Verilator, the spec's reference codec as the scoreboard."""

from __future__ import annotations

import pytest

from splitnic_gateware.hostlink import Decoder, Encoder
from splitnic_gateware.hostlink.link import HostLink
from splitnic_gateware.verilog import write_verilog
from splitnic_sim.runner import build_dir_for, run_cocotb
from splitnic_sim.tb import hostlink_encoder as encoder_tb
from splitnic_sim.tb import hostlink_link as link_tb
from splitnic_spec import board, hostlink

# Verilator only: the engines are plain synchronous logic, and Icarus would double the wall time.
SIMULATOR = "verilator"


def _run(name: str, component, tests: int) -> None:
    src = write_verilog(component, f"snic_{name}", build_dir_for(name, SIMULATOR))
    result = run_cocotb(name=name, sources=[src], toplevel=f"snic_{name}",
                        test_module=f"splitnic_sim.tb.{name}", simulator=SIMULATOR)
    assert result.failed == 0, "\n".join(result.failures)
    assert result.passed == tests


def test_hostlink_encoder() -> None:
    # The HELLO answer's fields as splitnic_sim.tb.hostlink_encoder expects them.
    _run("hostlink_encoder", Encoder(max_mtu=hostlink.MTU_JUMBO, rx_mtu=hostlink.MTU_STANDARD, rx_window=4,
                                     local_base=board.DMA_RAM_BASE, local_size=board.DMA_RAM_SIZE,
                                     replay_slots=encoder_tb.REPLAY_SLOTS, resend_cycles=encoder_tb.RESEND_CYCLES),
         tests=9)


def test_hostlink_decoder() -> None:
    _run("hostlink_decoder", Decoder(), tests=7)


def test_hostlink_over_an_impairing_cable() -> None:
    """Both engines and the binding (HostLink) against a host model through seeded loss, duplication,
    reordering and scripted drops (splitnic_sim.tb.hostlink_link)."""
    _run("hostlink_link", HostLink(slots=link_tb.SLOTS, replay_slots=link_tb.REPLAY_SLOTS,
                                   resend_cycles=link_tb.RESEND_CYCLES, latency=40), tests=3)
