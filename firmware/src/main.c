/*
 * splitnic management firmware: PHY bring-up, link watch, MAC address, host mailbox.
 *
 * Ref: firmware/README.md; spec/splitnic_spec/firmware.py (FW_* and MBOX_*
 * registers); docs/registers.md (LINK, MAC_ADDR_*).
 *
 * One loop, no interrupts: the mailbox is polled on every turn (a command
 * waits at most one link poll), the PHY's link state every LINK_POLL_SHIFT
 * fraction of a second.  All time comes from the NIC's CYCLES and CLOCK_HZ,
 * so one image runs at any core clock.
 */
#include <stdint.h>

#include "flash.h"
#include "hw.h"
#include "mailbox.h"
#include "phy.h"
#include "version.h"

/* Link poll period: CLOCK_HZ >> 7 cycles, about 8 ms. */
#define LINK_POLL_SHIFT 7

uint32_t clock_hz;

void wait_cycles(uint32_t n)
{
	uint32_t start = cycles();

	while (cycles() - start < n)
		;
}

/*
 * An address from the SPI flash's unique id: `first` (locally administered,
 * unicast), then the 16 id bytes XOR-folded into 5 (byte i into byte
 * 1 + i % 5): flash_uid.mac_from_uid states the same rule.
 */
static void mac_from_uid(const uint8_t uid[FLASH_UID_BYTES], uint8_t first, uint8_t mac[6])
{
	int i;

	mac[0] = first;
	for (i = 1; i < 6; i++)
		mac[i] = 0;
	for (i = 0; i < FLASH_UID_BYTES; i++)
		mac[1 + i % 5] ^= uid[i];
}

/*
 * MAC_ADDR: left alone when the host (or an earlier boot) set one.  Otherwise
 * from the flash's id (NULL: none readable) with 02 first; without an id, the
 * fallback address of board.h (firmware/README.md, "MAC address").  Returns
 * FW_STATUS.MAC_SOURCE.
 */
static uint32_t set_mac(const uint8_t *uid)
{
	uint8_t mac[6];

	if (nic_read(SNIC_REG_MAC_ADDR_LO) || nic_read(SNIC_REG_MAC_ADDR_HI))
		return 0;
	if (!uid) {
		nic_write(SNIC_REG_MAC_ADDR_LO, BOARD_FALLBACK_MAC_LO);
		nic_write(SNIC_REG_MAC_ADDR_HI, BOARD_FALLBACK_MAC_HI);
		return 2;
	}
	mac_from_uid(uid, 0x02, mac);
	nic_write(SNIC_REG_MAC_ADDR_LO, (uint32_t)mac[0] | (uint32_t)mac[1] << 8 | (uint32_t)mac[2] << 16 |
		  (uint32_t)mac[3] << 24);
	nic_write(SNIC_REG_MAC_ADDR_HI, (uint32_t)mac[4] | (uint32_t)mac[5] << 8);
	return 1;
}

/*
 * The eth host link's source address (docs/hardware.md, "Sessions"): every
 * SoC is built with the same one, so that two boards on one switch would
 * share it; from the flash's id with 06 first instead (a board's two addresses
 * differ in that byte).  Without an id the built-in address stays.
 */
static void set_host_link_mac(const uint8_t *uid)
{
#if BOARD_HOST_LINK_MAC
	uint8_t mac[6];

	if (!uid)
		return;
	mac_from_uid(uid, 0x06, mac);
	litex_csr_write(BOARD_HOST_LINK_MAC_HI_ADDR, (uint32_t)mac[0] << 8 | mac[1]);
	litex_csr_write(BOARD_HOST_LINK_MAC_LO_ADDR, (uint32_t)mac[2] << 24 | (uint32_t)mac[3] << 16 |
			(uint32_t)mac[4] << 8 | mac[5]);
#endif
}

int main(void)
{
	uint32_t status, last_poll, poll_period;
	uint8_t uid[FLASH_UID_BYTES];
	const uint8_t *id;
	int phy_ok;

	clock_hz = nic_read(SNIC_REG_CLOCK_HZ);
	if (!clock_hz)
		clock_hz = 1u << 20;
	poll_period = clock_hz >> LINK_POLL_SHIFT;
	nic_write(SNIC_REG_LINK, 0);
	nic_write(SNIC_REG_FW_LINK_CYCLES, 0);
	nic_write(SNIC_REG_MBOX_STATUS, nic_read(SNIC_REG_MBOX_CMD) & SNIC_MBOX_CMD_SEQ_MASK);
	nic_write(SNIC_REG_FW_VERSION, FIELD_PREP(FW_VERSION, MAJOR, FW_VERSION_MAJOR) |
		  FIELD_PREP(FW_VERSION, MINOR, FW_VERSION_MINOR) | FIELD_PREP(FW_VERSION, PATCH, FW_VERSION_PATCH));

	/* The flash's id first: the host link answers from the built-in address until it is read. */
	id = flash_uid(uid) ? uid : 0;
	set_host_link_mac(id);
	/* Then the PHY: it negotiates (seconds on a real cable) while the MAC address is set. */
	phy_ok = phy_bring_up();
	status = FIELD_PREP(FW_STATUS, MAC_SOURCE, set_mac(id));
	status |= FIELD_PREP(FW_STATUS, PHY_OK, phy_ok) | FIELD_PREP(FW_STATUS, PHY_ADDR, phy_addr);
	nic_write(SNIC_REG_FW_STATUS, status);

	last_poll = cycles() - poll_period;
	for (;;) {
		mailbox_poll();
		if (cycles() - last_poll >= poll_period) {
			last_poll = cycles();
			if (phy_poll_link() && !nic_read(SNIC_REG_FW_LINK_CYCLES))
				nic_write(SNIC_REG_FW_LINK_CYCLES, cycles() | 1);
		}
	}
}
