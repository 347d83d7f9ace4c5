/*
 * Clause-22 MDIO, bit-banged through LiteEth's MDIO CSRs (LiteEthPHYMDIO).
 *
 * Ref: IEEE Std 802.3-2018 §22.2.4.5 (management frame structure).
 */
#ifndef SPLITNIC_FW_MDIO_H
#define SPLITNIC_FW_MDIO_H

#include <stdint.h>

/* Read register ``reg`` of PHY ``phy``; -1 when no PHY drove the turnaround bit. */
int32_t mdio_read(unsigned phy, unsigned reg);
/* Write ``value`` to register ``reg`` of PHY ``phy``. */
void mdio_write(unsigned phy, unsigned reg, uint16_t value);

#endif
