/*
 * The firmware self-test: what the management CPU can check of its own world.
 *
 * Ref: spec/splitnic_spec/firmware.py, MBOX_SELFTEST_*.
 */
#include "selftest.h"

#include "hw.h"
#include "mdio.h"
#include "phy.h"

#define PATTERN_WORDS 64

/* The SRAM: write a pattern that differs in every bit position and address, read it back, both polarities. */
static int sram_ok(void)
{
	static volatile uint32_t buf[PATTERN_WORDS];
	uint32_t i, pass;

	for (pass = 0; pass < 2; pass++) {
		uint32_t flip = pass ? 0xffffffffu : 0;
		for (i = 0; i < PATTERN_WORDS; i++)
			buf[i] = (((i << 24) | (i << 16) | (i << 8) | i) ^ (1u << (i & 31))) ^ flip;
		for (i = 0; i < PATTERN_WORDS; i++)
			if (buf[i] != ((((i << 24) | (i << 16) | (i << 8) | i) ^ (1u << (i & 31))) ^ flip))
				return 0;
	}
	return 1;
}

uint32_t selftest(void)
{
	uint32_t failed = 0, t0;
	int32_t id1, id2;

	if (!sram_ok())
		failed |= SNIC_MBOX_SELFTEST_SRAM;
	if (nic_read(SNIC_REG_ID_MAGIC) != SNIC_ID_MAGIC)
		failed |= SNIC_MBOX_SELFTEST_NIC_ID;
	t0 = cycles();
	wait_cycles(64);
	if (cycles() == t0)
		failed |= SNIC_MBOX_SELFTEST_CYCLES;
	id1 = mdio_read(phy_addr, SNIC_MII_PHYSID1);
	id2 = mdio_read(phy_addr, SNIC_MII_PHYSID2);
	if (id1 < 0 || id2 < 0 || (id1 == 0xffff && id2 == 0xffff) || (id1 == 0 && id2 == 0))
		failed |= SNIC_MBOX_SELFTEST_PHY;
	return failed;
}
