"""A clause-22 PHY on an MDIO bus, for the simulated board SoC, and the bit-bang master it hangs on.

Ref: IEEE Std 802.3-2018 §22.2.4 (management registers), §22.2.4.5 (frame
structure), §22.2.4.2.13 (BMSR link status latches low), §40.5.1.1
(1000BASE-T control/status); Linux drivers/net/phy/broadcom.c (the BCM54xx
shadow registers 0x18/0x1c that set the RGMII clock delays of the Colorlight
i5's B50612D).

:class:`MdioPhyModel` answers at one MDIO address with the registers the
firmware uses: BMCR (reset and restart-autonegotiation self-clear), BMSR
(link status latched low, autonegotiation complete), PHYID, ANAR/ANLPAR,
1000BASE-T control/status, extended status, and the two Broadcom shadow
registers.  The far end of its "cable" is set by the sim-only CSR
``simphy_cable`` (plugged, speed, duplex), which the tests write over
Etherbone: unplugging drops the link, plugging in (or changing the partner)
starts a negotiation that completes after ``an_cycles``.  A real PHY takes
seconds to negotiate; the model takes milliseconds of simulated time so the
tests stay short.

:class:`SimMdioMaster` has the CSRs of LiteEth's ``LiteEthPHYMDIO`` (``w``:
MDC, output enable, data out; ``r``: data in), so the firmware is the same for
the board and the simulator; the Verilator model has no tristate, so the bus
is an explicit wired-AND with a pull-up.
"""

from __future__ import annotations

from migen import Case, Cat, If, Mux, Signal

from litex.gen import LiteXModule
from litex.soc.interconnect.csr import CSRField, CSRStatus, CSRStorage

from splitnic_spec import CSR_MAP, LINK_SPEED_MBPS, constant

__all__ = ["MdioPhyModel", "SimMdioMaster", "PHYID"]

#: PHYID1, PHYID2 of the model: a Broadcom OUI id like the i5's B50612D.
PHYID = (0x0362, 0x5E6A)
#: ``simphy_cable.speed`` takes the LINK.SPEED codes.
_SPEED = CSR_MAP.register("LINK").field("SPEED")
_SPEED_10, _SPEED_100, _SPEED_1000 = (_SPEED.value(mbps) for mbps in ("10", "100", "1000"))

# The clause-22 registers and bits the firmware uses come from the spec (splitnic_spec.mii).
_BMCR, _BMSR, _PHYSID1, _PHYSID2, _ANAR, _ANLPAR, _CTRL1000, _STAT1000, _ESTATUS = (
    constant(f"MII_{name}") for name in ("BMCR", "BMSR", "PHYSID1", "PHYSID2", "ANAR", "ANLPAR", "CTRL1000",
                                         "STAT1000", "ESTATUS"))
_BMCR_RESET, _BMCR_ANRESTART = constant("MII_BMCR_RESET"), constant("MII_BMCR_ANRESTART")
_BMCR_DEFAULT = constant("MII_BMCR_ANENABLE") | constant("MII_BMCR_FULLDPLX") | constant("MII_BMCR_SPEED1000")
_BMSR_BASE = 0x7909      # 100FD/HD, 10FD/HD, extended status, AN ability, extended capability
_ANAR_10 = constant("MII_ANAR_10HD") | constant("MII_ANAR_10FD")
_ANAR_100 = constant("MII_ANAR_100HD") | constant("MII_ANAR_100FD")
_ANAR_DEFAULT = _ANAR_10 | _ANAR_100 | constant("MII_ANAR_CSMA")
_GBCR_DEFAULT = constant("MII_CTRL1000_1000FD") | constant("MII_CTRL1000_1000HD")
_EXTSTAT = 0x3000        # 1000BASE-T full and half duplex capable
# Bit positions of the BMCR bits the model reads one at a time.
_BMCR_RESET_BIT, _BMCR_ANRESTART_BIT = _BMCR_RESET.bit_length() - 1, _BMCR_ANRESTART.bit_length() - 1
_BMCR_ANENABLE_BIT = constant("MII_BMCR_ANENABLE").bit_length() - 1
_LP_1000HD = constant("MII_STAT1000_LP_1000HD")


def _bits(mask: int) -> slice:
    """The bits of the contiguous ``mask``, as a slice of a signal."""
    return slice((mask & -mask).bit_length() - 1, mask.bit_length())


# The Broadcom shadow registers (splitnic_spec.mii): AUXCTL's misc control and SHD's clock alignment control.
_AUXCTL, _SHD = constant("BCM_AUXCTL"), constant("BCM_SHD")
_AUX_SEL = _bits(constant("BCM_AUXCTL_SHDW_SEL"))                                            # bits 2..0
_AUX_READ_SEL = _bits(constant("BCM_AUXCTL_SHDW_SEL") << constant("BCM_AUXCTL_READ_SHIFT"))  # bits 14..12
_AUX_MISC = constant("BCM_AUXCTL_SHDW_MISC")
_AUX_WREN_BIT = constant("BCM_AUXCTL_MISC_WREN").bit_length() - 1
_AUX_MISC_DATA = _bits(constant("BCM_AUXCTL_MISC_DATA"))                                     # bits 14..3
_SHD_WRITE_BIT = constant("BCM_SHD_WRITE").bit_length() - 1
_SHD_SEL = slice(constant("BCM_SHD_SEL_SHIFT"), _SHD_WRITE_BIT)                              # bits 14..10
_SHD_DATA = _bits(constant("BCM_SHD_DATA"))                                                  # bits 9..0
_SHD_CLK_CTL = constant("BCM_SHD_CLK_CTL")


class MdioPhyModel(LiteXModule):
    """A PHY at ``phy_addr`` on the MDIO bus ``mdc``/``mdio`` (in), driving ``oe``/``o`` (out)."""

    def __init__(self, phy_addr: int = 1, reset_cycles: int = 64, an_cycles: int = 2000) -> None:
        self.mdc = Signal()
        self.mdio = Signal()      # the line as it is (wired-AND of every driver)
        self.oe = Signal()
        self.o = Signal()
        self.cable = CSRStorage(name="cable", description="The far end of the simulated wire PHY's cable.",
                                fields=[
            CSRField("plugged", size=1, reset=1, description="A link partner is connected."),
            CSRField("speed", size=_SPEED.width, reset=_SPEED_1000, description="Partner's best speed: "
                     + ", ".join(f"{code}: {mbps}" for code, mbps in LINK_SPEED_MBPS.items()) + " Mb/s."),
            CSRField("full_duplex", size=1, reset=1, description="Partner can do full duplex."),
        ])
        self.link = Signal()      # for the loopback plug: frames pass only with a link

        # # #

        # The storage bits, not the field signals: those are wired up only inside a CSR bank.
        plugged, speed, full = self.cable.storage[0], self.cable.storage[1:3], self.cable.storage[3]
        bmcr, anar, gbcr = Signal(16, reset=_BMCR_DEFAULT), Signal(16, reset=_ANAR_DEFAULT), Signal(16, reset=_GBCR_DEFAULT)
        # The misc control shadow's bits 14..3, the clock alignment control shadow's bits 9..0.
        misc, clkctl = Signal(_AUX_MISC_DATA.stop - _AUX_MISC_DATA.start), Signal(_SHD_DATA.stop - _SHD_DATA.start)
        aux_sel, shd_sel = Signal(_AUX_READ_SEL.stop - _AUX_READ_SEL.start), Signal(_SHD_SEL.stop - _SHD_SEL.start)
        in_reset = Signal(max=reset_cycles + 1)
        an_timer = Signal(max=an_cycles + 1)
        an_pending, an_complete, latched = Signal(reset=1), Signal(), Signal()
        restart = Signal()
        partner = Signal(4)
        self.comb += [self.link.eq(plugged & an_complete), partner.eq(self.cable.storage[:4])]

        # Registers as read (reg: the register number of the frame being answered).
        reg = Signal(5)
        lp_abilities = Signal(16)
        self.comb += Case(speed, {
            _SPEED_10: lp_abilities.eq(constant("MII_ANAR_10HD") | Mux(full, constant("MII_ANAR_10FD"), 0)),
            _SPEED_100: lp_abilities.eq(_ANAR_10 | constant("MII_ANAR_100HD")
                                        | Mux(full, constant("MII_ANAR_100FD"), 0)),
            "default": lp_abilities.eq(_ANAR_10 | _ANAR_100),
        })
        read_value = Signal(16)
        self.comb += Case(reg, {
            _BMCR: read_value.eq(bmcr | Mux(in_reset != 0, _BMCR_RESET, 0)),
            _BMSR: read_value.eq(_BMSR_BASE | Mux(an_complete, constant("MII_BMSR_ANEGCOMPLETE"), 0)
                                 | Mux(latched, constant("MII_BMSR_LSTATUS"), 0)),
            _PHYSID1: read_value.eq(PHYID[0]),
            _PHYSID2: read_value.eq(PHYID[1]),
            _ANAR: read_value.eq(anar),
            # Acknowledge (bit 14) and the IEEE 802.3 selector, with the partner's abilities.
            _ANLPAR: read_value.eq(Mux(an_complete, 0x4000 | constant("MII_ANAR_CSMA") | lp_abilities, 0)),
            _CTRL1000: read_value.eq(gbcr),
            # Bits 13:12, local and remote receiver status OK, with a link.
            _STAT1000: read_value.eq(Mux(an_complete & (speed == _SPEED_1000),
                                         _LP_1000HD | Mux(full, constant("MII_STAT1000_LP_1000FD"), 0), 0)
                                     | Mux(self.link, 0x3000, 0)),
            _ESTATUS: read_value.eq(_EXTSTAT),
            _AUXCTL: read_value.eq(Mux(aux_sel == _AUX_MISC, (misc << _AUX_MISC_DATA.start) | _AUX_MISC, 0)),
            _SHD: read_value.eq((shd_sel << _SHD_SEL.start) | Mux(shd_sel == _SHD_CLK_CTL, clkctl, 0)),
            "default": read_value.eq(0),
        })

        # Autonegotiation: restart on reset, BMCR restart, a cable or partner change.
        old_partner = Signal(4)
        self.sync += [
            old_partner.eq(partner),
            If(in_reset != 0, in_reset.eq(in_reset - 1)),
            If(restart | (partner != old_partner) | ~plugged,
                an_pending.eq(1), an_complete.eq(0), an_timer.eq(0),
            ).Elif(an_pending & (in_reset == 0) & bmcr[_BMCR_ANENABLE_BIT],
                If(an_timer == an_cycles, an_pending.eq(0), an_complete.eq(1)).Else(an_timer.eq(an_timer + 1)),
            ),
        ]

        # The management frame (§22.2.4.5), advanced on MDC's rising edges, when the PHY samples.
        mdc_d, rise = Signal(), Signal()
        self.sync += mdc_d.eq(self.mdc)
        self.comb += rise.eq(self.mdc & ~mdc_d)
        PREAMBLE, ST2, HEADER, TA_READ, DATA_READ, DATA_WRITE = range(6)
        state, ones, count = Signal(3), Signal(6), Signal(5)
        shift = Signal(18)
        # With this edge's bit: the 12 header bits OP PHYAD REGAD, and the 16 data bits of a write.
        header, wd = Signal(12), Signal(16)
        self.comb += [header.eq(Cat(self.mdio, shift[:11])), wd.eq(Cat(self.mdio, shift[:15]))]
        rdata = Signal(16)
        ours = Signal()
        self.comb += ours.eq(header[5:10] == phy_addr)
        regs_write = Case(reg, {
            _BMCR: If(wd[_BMCR_RESET_BIT],
                      bmcr.eq(_BMCR_DEFAULT), anar.eq(_ANAR_DEFAULT), gbcr.eq(_GBCR_DEFAULT),
                      misc.eq(0), clkctl.eq(0), in_reset.eq(reset_cycles), restart.eq(1),
                  ).Else(bmcr.eq(wd & ~(_BMCR_RESET | _BMCR_ANRESTART)), If(wd[_BMCR_ANRESTART_BIT], restart.eq(1))),
            _ANAR: anar.eq(wd),
            _CTRL1000: gbcr.eq(wd),
            _AUXCTL: If(wd[_AUX_SEL] == _AUX_MISC,
                        If(wd[_AUX_WREN_BIT], misc.eq(wd[_AUX_MISC_DATA])).Else(aux_sel.eq(wd[_AUX_READ_SEL]))),
            _SHD: If(wd[_SHD_WRITE_BIT], If(wd[_SHD_SEL] == _SHD_CLK_CTL, clkctl.eq(wd[_SHD_DATA])))
                  .Else(shd_sel.eq(wd[_SHD_SEL])),
        })
        self.sync += [
            restart.eq(0),
            If(~self.link, latched.eq(0)),
            If(rise,
                shift.eq(Cat(self.mdio, shift[:-1])),
                Case(state, {
                    PREAMBLE: If(self.mdio, If(ones != 32, ones.eq(ones + 1)))
                              .Elif(ones == 32, state.eq(ST2))
                              .Else(ones.eq(0)),
                    ST2: If(self.mdio, state.eq(HEADER), count.eq(0)).Else(state.eq(PREAMBLE), ones.eq(0)),
                    HEADER: If(count == 11,
                                count.eq(0), ones.eq(0), reg.eq(header[:5]),
                                If(ours & (header[10:12] == 0b10), state.eq(TA_READ))
                                .Elif(ours & (header[10:12] == 0b01), state.eq(DATA_WRITE))
                                .Else(state.eq(PREAMBLE)),
                            ).Else(count.eq(count + 1)),
                    # First turnaround bit: take the value (and the BMSR latch), drive the 0 of the second.
                    TA_READ: [self.oe.eq(1), self.o.eq(0), rdata.eq(read_value), state.eq(DATA_READ),
                              If(reg == _BMSR, latched.eq(self.link))],
                    DATA_READ: If(count == 16, self.oe.eq(0), state.eq(PREAMBLE), count.eq(0))
                               .Else(self.o.eq(rdata[15]), rdata.eq(rdata << 1), count.eq(count + 1)),
                    DATA_WRITE: If(count == 17, regs_write, state.eq(PREAMBLE), count.eq(0))
                                .Else(count.eq(count + 1)),
                }),
            ),
        ]


class SimMdioMaster(LiteXModule):
    """LiteEthPHYMDIO's CSRs (``w``: MDC, OE, data out; ``r``: data in) on a wired-AND bus with ``phy``."""

    def __init__(self, phy: MdioPhyModel) -> None:
        self._w = CSRStorage(name="w", fields=[
            CSRField("mdc", size=1), CSRField("oe", size=1), CSRField("w", size=1)])
        self._r = CSRStatus(name="r", fields=[CSRField("r", size=1)])

        # # #

        line = Signal()
        sync1 = Signal()
        # Open drain with a pull-up: the line is low when any driver pulls it low.
        self.comb += [
            line.eq(~(self._w.storage[1] & ~self._w.storage[2]) & ~(phy.oe & ~phy.o)),
            phy.mdc.eq(self._w.storage[0]),
            phy.mdio.eq(line),
        ]
        self.sync += [sync1.eq(line), self._r.status[0].eq(sync1)]   # like LiteEth's MultiReg
