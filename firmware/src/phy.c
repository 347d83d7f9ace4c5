/*
 * The wire PHY: bring-up and link watch.
 *
 * Ref: IEEE Std 802.3-2018 §22.2.4.1.1 (BMCR reset, self-clearing within
 * 0.5 s), §22.2.4.2.13 (BMSR link status latches low: read twice for the
 * present state), §28.2.4.1.3 (highest common ability).  The Colorlight i5's
 * Broadcom B50612D PHYs take their RGMII clock delays from the shadow
 * registers of the BCM54xx family (Linux drivers/net/phy/broadcom.c,
 * bcm54xx_config_clock_delay): the auxiliary control register 0x18, shadow
 * 7 ("misc control"), bit 8 delays RXC; register 0x1c, shadow 3 ("clock
 * alignment control"), bit 9 delays GTXCLK.  LiteEth's ECP5 RGMII PHY delays
 * RX in the FPGA and sends TX clock and data edge-aligned (tx_delay=0), so the
 * PHY must delay GTXCLK and must not delay RXC.
 */
#include "phy.h"

#include "hw.h"
#include "mdio.h"

unsigned phy_addr = BOARD_WIRE_PHY_ADDR;

/* The Broadcom shadow registers (SNIC_BCM_*): splitnic_spec.h, from splitnic_spec.mii. */
static void set_rgmii_delays(void)
{
	int32_t v;

	mdio_write(phy_addr, SNIC_BCM_AUXCTL,
		   (SNIC_BCM_AUXCTL_SHDW_MISC << SNIC_BCM_AUXCTL_READ_SHIFT) | SNIC_BCM_AUXCTL_SHDW_MISC);
	v = mdio_read(phy_addr, SNIC_BCM_AUXCTL);
	if (v >= 0)
		mdio_write(phy_addr, SNIC_BCM_AUXCTL, SNIC_BCM_AUXCTL_MISC_WREN | SNIC_BCM_AUXCTL_SHDW_MISC |
			   ((uint32_t)v & ~(uint32_t)SNIC_BCM_AUXCTL_MISC_RGMII_SKEW & SNIC_BCM_AUXCTL_MISC_DATA));
	mdio_write(phy_addr, SNIC_BCM_SHD, SNIC_BCM_SHD_CLK_CTL << SNIC_BCM_SHD_SEL_SHIFT);
	v = mdio_read(phy_addr, SNIC_BCM_SHD);
	if (v >= 0)
		mdio_write(phy_addr, SNIC_BCM_SHD, SNIC_BCM_SHD_WRITE | (SNIC_BCM_SHD_CLK_CTL << SNIC_BCM_SHD_SEL_SHIFT) |
			   (((uint32_t)v | SNIC_BCM_SHD_CLK_GTXCLK_DELAY) & SNIC_BCM_SHD_DATA));
}

int phy_bring_up(void)
{
	uint32_t start;
	int32_t v;

	if (mdio_read(phy_addr, SNIC_MII_PHYSID1) < 0) {
		/* Not at the board's address: take the first other PHY that answers. */
		unsigned a;
		for (a = 0; a < 32; a++)
			if (a != BOARD_HOST_PHY_ADDR && mdio_read(a, SNIC_MII_PHYSID1) >= 0)
				break;
		if (a == 32)
			return 0;
		phy_addr = a;
	}
	mdio_write(phy_addr, SNIC_MII_BMCR, SNIC_MII_BMCR_RESET);
	start = cycles();
	do {
		v = mdio_read(phy_addr, SNIC_MII_BMCR);
	} while (v >= 0 && (v & SNIC_MII_BMCR_RESET) && cycles() - start < (clock_hz >> 1));
	if (v < 0 || (v & SNIC_MII_BMCR_RESET))
		return 0;
#if BOARD_RGMII_DELAYS
	set_rgmii_delays();
#endif
	mdio_write(phy_addr, SNIC_MII_ANAR, SNIC_MII_ANAR_10HD | SNIC_MII_ANAR_10FD | SNIC_MII_ANAR_100HD |
		   SNIC_MII_ANAR_100FD | SNIC_MII_ANAR_CSMA);
	mdio_write(phy_addr, SNIC_MII_CTRL1000, SNIC_MII_CTRL1000_1000FD | SNIC_MII_CTRL1000_1000HD);
	mdio_write(phy_addr, SNIC_MII_BMCR, SNIC_MII_BMCR_ANENABLE | SNIC_MII_BMCR_ANRESTART);
	return 1;
}

/* LINK value of the negotiated speed and duplex (the highest common ability). */
static uint32_t resolve(void)
{
	int32_t gbcr = mdio_read(phy_addr, SNIC_MII_CTRL1000), gbsr = mdio_read(phy_addr, SNIC_MII_STAT1000);
	int32_t common = mdio_read(phy_addr, SNIC_MII_ANAR) & mdio_read(phy_addr, SNIC_MII_ANLPAR);
	unsigned speed, full;

	if (gbcr < 0 || gbsr < 0 || common < 0)
		return 0;
	if ((gbcr & SNIC_MII_CTRL1000_1000FD) && (gbsr & SNIC_MII_STAT1000_LP_1000FD))
		speed = SNIC_LINK_SPEED_1000, full = 1;
	else if ((gbcr & SNIC_MII_CTRL1000_1000HD) && (gbsr & SNIC_MII_STAT1000_LP_1000HD))
		speed = SNIC_LINK_SPEED_1000, full = 0;
	else if (common & SNIC_MII_ANAR_100FD)
		speed = SNIC_LINK_SPEED_100, full = 1;
	else if (common & SNIC_MII_ANAR_100HD)
		speed = SNIC_LINK_SPEED_100, full = 0;
	else
		speed = SNIC_LINK_SPEED_10, full = (common & SNIC_MII_ANAR_10FD) != 0;
	return FIELD_PREP(LINK, UP, 1) | FIELD_PREP(LINK, SPEED, speed) | FIELD_PREP(LINK, FULL_DUPLEX, full);
}

int phy_poll_link(void)
{
	int32_t latched, bmsr;
	uint32_t link = 0, old = nic_read(SNIC_REG_LINK);

	latched = mdio_read(phy_addr, SNIC_MII_BMSR);   /* link status latched low since the last read */
	bmsr = mdio_read(phy_addr, SNIC_MII_BMSR);      /* the present state */
	if (bmsr >= 0 && (bmsr & SNIC_MII_BMSR_LSTATUS) && (bmsr & SNIC_MII_BMSR_ANEGCOMPLETE)) {
		/* Speed and duplex change only with a new negotiation, which drops the link (and the latch) first. */
		int flapped = latched < 0 || !(latched & SNIC_MII_BMSR_LSTATUS);
		link = (FIELD_GET(LINK, UP, old) && !flapped) ? old : resolve();
	}
	if (link != old)
		nic_write(SNIC_REG_LINK, link);
	return FIELD_GET(LINK, UP, link);
}
