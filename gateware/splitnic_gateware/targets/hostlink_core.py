"""The ``eth`` host link's engines as a LiteX (Migen) module: their Verilog, instantiated, on a LiteEth MAC port.

Ref: splitnic_spec.hostlink (the protocol); splitnic_gateware.hostlink.link
(:class:`~splitnic_gateware.hostlink.link.HostLink`: both engines and the
host's address); :mod:`.nic_core` (the same pattern for the NIC).

:class:`HostLinkCore` takes LiteEth's MAC crossbar port for
``hostlink.ETHERTYPE`` (32-bit, in ``sys``) and turns it into the engines'
word streams: the MAC has already stripped the Ethernet header (its source
address travels beside the words) and the FCS (a frame whose FCS failed
reaches the decoder marked ``error`` on its last word and is dropped there,
counted as malformed, whatever its words held); on the way out it gets
destination = the host (or the station a HELLO answer or a STALE frame
answers), source = the CSRs ``mac_hi``/``mac_lo`` (``mac_address`` until the
firmware writes the board's own address at boot), type ``ETHERTYPE``, and the
MAC pads and adds the FCS.
``dma`` is a bus slave for the host window (the NIC's DMA writes there
leave as WRITE messages), ``bus`` a bus master (the host's WRITEs and READs
on NIC-local memory and the NIC's registers), ``irq`` the NIC's interrupt
line.
"""

from __future__ import annotations

from pathlib import Path

from migen import Cat, ClockSignal, If, Instance, Mux, ResetSignal, Signal

from litex.gen import LiteXModule
from litex.soc.interconnect import wishbone
from litex.soc.interconnect.csr import CSRStorage

from splitnic_spec import hostlink

from ..hostlink.link import MAC_BITS, HostLink
from ..verilog import write_verilog

__all__ = ["HostLinkCore", "HOSTLINK_MODULE", "LATENCY_S", "BOARD_SLOTS", "BOARD_REPLAY_SLOTS"]

#: Verilog module name of the converted engines.
HOSTLINK_MODULE = "splitnic_hostlink"
#: Quiet time after which the encoder sends a frame that is not full: about one 64-byte frame's time
#: at 1 Gb/s, so a lone completion waits little and a busy NIC fills frames.
LATENCY_S = 1e-6
#: The decoder's frame slots (its Hello.window, the host's credit): four standard frames, what the
#: board's block RAM affords.  The host must see each grant at once to keep the cable busy with so few.
BOARD_SLOTS = 4
#: The encoder's replay ring: four standard frames (one building, three in flight until acknowledged),
#: three DP16KD, where two slots took two.
BOARD_REPLAY_SLOTS = 4


class HostLinkCore(LiteXModule):
    """Both host-link engines in ``sys`` on ``mac_port`` (``LiteEthMAC.crossbar.get_port(ETHERTYPE, dw=32)``)."""

    def __init__(self, platform, out_dir: Path, clock_hz: int, mac_port, mac_address: int, *,
                 slots: int = BOARD_SLOTS, max_mtu: int = hostlink.MTU_STANDARD,
                 tx_mtu: int = hostlink.MTU_STANDARD, replay_slots: int = BOARD_REPLAY_SLOTS) -> None:
        if len(mac_port.source.data) != 32:
            raise ValueError(f"the host link takes a 32-bit MAC port, not {len(mac_port.source.data)} bits")
        self.dma = wishbone.Interface(data_width=32, address_width=32, addressing="word", bursting=True)
        self.bus = wishbone.Interface(data_width=32, address_width=32, addressing="word", bursting=True)
        self.irq = Signal()
        self.counters = wishbone.Interface(data_width=32, address_width=32, addressing="word")
        # The board's source address on the host link.  Every board's SoC is built with the same
        # ``mac_address``; the firmware replaces it at boot with one derived from the SPI flash's
        # unique id (firmware/src/main.c, set_host_link_mac), so that two boards on one switch differ.
        # Two CSRs, high word first in the address map, each written whole by the firmware.
        self.mac_hi = CSRStorage(MAC_BITS - 32, reset=mac_address >> 32,
                                 description="The host link's source MAC address, bits 47:32.")
        self.mac_lo = CSRStorage(32, reset=mac_address & 0xFFFF_FFFF,
                                 description="The host link's source MAC address, bits 31:0.")

        latency = max(1, min(0xFFFF, round(clock_hz * LATENCY_S)))
        link = HostLink(slots=slots, max_mtu=max_mtu, tx_mtu=tx_mtu, latency=latency, replay_slots=replay_slots,
                        resend_cycles=round(clock_hz * hostlink.RESEND_US * 1e-6))
        path = write_verilog(link, HOSTLINK_MODULE, Path(out_dir))
        platform.add_source(str(path))

        rx, tx = mac_port.source, mac_port.sink
        # LiteEth's last_be is one-hot (the last byte); the decoder's keep is the bytes that came.
        be = rx.last_be
        rx_keep = Signal(4)
        # A frame the MAC marks bad (its FCS, with the last word) must take no effect: its last word
        # carries ``error`` (and is padding, its source no host's address), so the decoder drops it as
        # malformed.  ``error`` is what does it: a HELLO with a word after its Hello was whole before the
        # bad word, so without it the decoder took it and bound the board to source 0.
        rx_bad_seen, rx_bad, rx_src, rx_unicast = Signal(), Signal(), Signal(MAC_BITS), Signal()
        self.sync += If(rx.valid & rx.ready, If(rx.last, rx_bad_seen.eq(0)).Elif(rx.error != 0, rx_bad_seen.eq(1)))
        self.comb += [
            rx_bad.eq(rx_bad_seen | (rx.error != 0)),
            rx_keep.eq(Mux(rx_bad & rx.last, 0, Cat(1, ~be[0], ~(be[0] | be[1]), ~(be[0] | be[1] | be[2])))),
            rx_src.eq(Mux(rx_bad, 0, rx.sender_mac)),
            # The MAC's crossbar hands over the destination too: a binding HELLO must name this board.
            rx_unicast.eq(rx.target_mac == Cat(self.mac_lo.storage, self.mac_hi.storage)),
        ]
        tx_last, tx_dst = Signal(), Signal(MAC_BITS)
        self.comb += [
            tx.last_be.eq(Cat(0, 0, 0, tx_last)),    # frames are whole words
            tx.last.eq(tx_last),
            tx.ethernet_type.eq(hostlink.ETHERTYPE),
            tx.sender_mac.eq(Cat(self.mac_lo.storage, self.mac_hi.storage)),
            tx.target_mac.eq(tx_dst),
        ]
        dma, bus = self.dma, self.bus
        self.specials += Instance(HOSTLINK_MODULE,
            i_clk=ClockSignal("sys"), i_rst=ResetSignal("sys"),
            i_rx__valid=rx.valid, o_rx__ready=rx.ready,
            i_rx__payload=Cat(rx.data, rx.last, rx_keep, rx_bad & rx.last), i_rx_src=rx_src,
            i_rx_unicast=rx_unicast,
            o_tx__valid=tx.valid, i_tx__ready=tx.ready, o_tx__payload=Cat(tx.data, tx_last),
            o_tx_dst=tx_dst,
            # The host window: a slave that sees the whole word address (the WRITE messages carry it).
            i_dma__adr=dma.adr, i_dma__dat_w=dma.dat_w, o_dma__dat_r=dma.dat_r, i_dma__sel=dma.sel,
            i_dma__cyc=dma.cyc, i_dma__stb=dma.stb, i_dma__we=dma.we, o_dma__ack=dma.ack,
            i_dma__cti=dma.cti, i_dma__bte=dma.bte,
            o_bus__adr=bus.adr, o_bus__dat_w=bus.dat_w, i_bus__dat_r=bus.dat_r, o_bus__sel=bus.sel,
            o_bus__cyc=bus.cyc, o_bus__stb=bus.stb, o_bus__we=bus.we, i_bus__ack=bus.ack,
            o_bus__cti=bus.cti, o_bus__bte=bus.bte,
            i_irq=self.irq,
            i_counters__adr=self.counters.adr, i_counters__dat_w=self.counters.dat_w,
            o_counters__dat_r=self.counters.dat_r, i_counters__sel=self.counters.sel,
            i_counters__cyc=self.counters.cyc, i_counters__stb=self.counters.stb, i_counters__we=self.counters.we,
            o_counters__ack=self.counters.ack,
        )
        # Neither engine signals a bus error.
        self.comb += [dma.err.eq(0), self.counters.err.eq(0)]
