/*
 * Clause-22 MDIO master, bit-banged.
 *
 * Ref: IEEE Std 802.3-2018 §22.2.4.5: preamble of 32 ones, ST 01, OP (10 read,
 * 01 write), PHYAD, REGAD, turnaround (read: Z then 0 driven by the PHY;
 * write: 10), 16 data bits MSB first.  The PHY samples MDIO on MDC's rising
 * edge and changes it after the rising edge, so the master sets its bit while
 * MDC is low and samples the PHY's bit while MDC is low, before raising it.
 *
 * LiteEthPHYMDIO's write CSR has the fields MDC, output enable and data out,
 * its read CSR the field data in (their bits: csr.h, through board.h).  MDC
 * may run at most 2.5 MHz (§22.2.2.13): each CSR write takes several core
 * cycles and the fastest core clock here is tens of MHz, so one write per
 * half period is already slow enough.
 */
#include "mdio.h"

#include "hw.h"

#define MDC LITEX_FIELD(BOARD_MDIO_W_MDC)
#define OE LITEX_FIELD(BOARD_MDIO_W_OE)
#define DO LITEX_FIELD(BOARD_MDIO_W_W)
#define DI LITEX_FIELD(BOARD_MDIO_R_R)

static inline void mdio_w(uint32_t v)
{
	litex_csr_write(BOARD_MDIO_W_ADDR, v);
}

static inline unsigned mdio_r(void)
{
	return (litex_csr_read(BOARD_MDIO_R_ADDR) & DI) != 0;
}

/* Drive the top ``n`` bits of ``word`` (MSB first). */
static void send(uint32_t word, int n)
{
	word <<= 32 - n;
	while (n--) {
		uint32_t d = (word & 0x80000000u) ? DO : 0;
		mdio_w(OE | d);
		mdio_w(OE | d | MDC);
		word <<= 1;
	}
	mdio_w(OE | DO);
}

/* One MDC pulse with MDIO released; returns the line as sampled before the rising edge. */
static unsigned idle_clock(void)
{
	unsigned bit;

	mdio_w(0);
	bit = mdio_r();
	mdio_w(MDC);
	return bit;
}

int32_t mdio_read(unsigned phy, unsigned reg)
{
	uint32_t value = 0;
	unsigned present;
	int i;

	send(0xffffffffu, 32);
	send((0x1u << 12) | (0x2u << 10) | ((phy & 31) << 5) | (reg & 31), 14);
	idle_clock();                 /* TA, first bit: nobody drives */
	present = !idle_clock();      /* TA, second bit: the PHY drives 0 */
	for (i = 0; i < 16; i++)
		value = (value << 1) | idle_clock();
	mdio_w(0);
	return present ? (int32_t)value : -1;
}

void mdio_write(unsigned phy, unsigned reg, uint16_t value)
{
	send(0xffffffffu, 32);
	send((0x1u << 30) | (0x1u << 28) | ((phy & 31) << 23) | ((reg & 31) << 18) | (0x2u << 16) | value, 32);
	mdio_w(0);
	mdio_w(MDC);
	mdio_w(0);
}
