/*
 * The wire PHY: bring-up (reset, RGMII delays, autonegotiation) and link watch.
 *
 * Ref: IEEE Std 802.3-2018 §22.2.4 (clause-22 registers), §40.5.1.1
 * (1000BASE-T control/status), §28.2.4.1.3 (ability priority resolution).
 */
#ifndef SPLITNIC_FW_PHY_H
#define SPLITNIC_FW_PHY_H

#include <stdint.h>

/*
 * The clause-22 registers and bits (SNIC_MII_*), the Broadcom shadow registers
 * (SNIC_BCM_*) and the LINK.SPEED codes (SNIC_LINK_SPEED_*): splitnic_spec.h.
 */

/* Reset and configure the wire PHY; 1 if it answered. */
int phy_bring_up(void);
/* Read the wire PHY's link state and write it to the NIC's LINK register; 1 if the link is up. */
int phy_poll_link(void);
/* MDIO address of the wire PHY. */
extern unsigned phy_addr;

#endif
