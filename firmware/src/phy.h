/*
 * The wire PHY: bring-up (reset, RGMII delays, autonegotiation) and link watch.
 *
 * Ref: IEEE Std 802.3-2018 §22.2.4 (clause-22 registers), §40.5.1.1
 * (1000BASE-T control/status), §28.2.4.1.3 (ability priority resolution).
 */
#ifndef SPLITNIC_FW_PHY_H
#define SPLITNIC_FW_PHY_H

#include <stdint.h>

/* Clause-22 registers. */
#define MII_BMCR 0x00
#define MII_BMSR 0x01
#define MII_PHYID1 0x02
#define MII_PHYID2 0x03
#define MII_ANAR 0x04
#define MII_ANLPAR 0x05
#define MII_GBCR 0x09       /* 1000BASE-T control */
#define MII_GBSR 0x0a       /* 1000BASE-T status */

#define BMCR_RESET (1u << 15)
#define BMCR_ANENABLE (1u << 12)
#define BMCR_ANRESTART (1u << 9)
#define BMSR_ANEGCOMPLETE (1u << 5)
#define BMSR_LSTATUS (1u << 2)
#define ANAR_10HD (1u << 5)
#define ANAR_10FD (1u << 6)
#define ANAR_100HD (1u << 7)
#define ANAR_100FD (1u << 8)
#define ANAR_CSMA 0x0001u
#define GBCR_1000FD (1u << 9)
#define GBCR_1000HD (1u << 8)
#define GBSR_LP_1000FD (1u << 11)
#define GBSR_LP_1000HD (1u << 10)

/* LINK.SPEED codes (docs/registers.md). */
#define SPEED_10 0
#define SPEED_100 1
#define SPEED_1000 2

/* Reset and configure the wire PHY; 1 if it answered. */
int phy_bring_up(void);
/* Read the wire PHY's link state and write it to the NIC's LINK register; 1 if the link is up. */
int phy_poll_link(void);
/* MDIO address of the wire PHY. */
extern unsigned phy_addr;

#endif
