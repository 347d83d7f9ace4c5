/*
 * The SPI flash's unique id, bit-banged (SPI mode 0).
 *
 * Ref: GigaDevice GD25Q16C datasheet, "Read Unique ID (4BH)": 0x4B, three
 * address bytes 0, one dummy byte, then 128 bits of id, MSB first.  The flash
 * samples MOSI on SCK's rising edge and shifts MISO out on the falling edge;
 * the master sets MOSI with SCK low and samples MISO before raising SCK.
 * The bit-bang block's CSRs: w with the fields CLK, MOSI and CS_N; r with
 * MISO (their bits: csr.h, through board.h).
 */
#include "flash.h"

#include "hw.h"

#if BOARD_FLASH_UID
#define SCK LITEX_FIELD(BOARD_FLASH_W_CLK)
#define MOSI LITEX_FIELD(BOARD_FLASH_W_MOSI)
#define CS_N LITEX_FIELD(BOARD_FLASH_W_CS_N)
#define MISO LITEX_FIELD(BOARD_FLASH_R_MISO)

static inline void flash_w(uint32_t v)
{
	litex_csr_write(BOARD_FLASH_W_ADDR, v);
}

static uint8_t xfer(uint8_t out)
{
	uint8_t in = 0;
	int i;

	for (i = 7; i >= 0; i--) {
		uint32_t d = (out >> i) & 1 ? MOSI : 0;
		flash_w(d);          /* SCK falls: the flash shifts out its next bit */
		flash_w(d);          /* ... which passes MISO's synchroniser meanwhile */
		in = (uint8_t)((in << 1) | ((litex_csr_read(BOARD_FLASH_R_ADDR) & MISO) != 0));
		flash_w(d | SCK);
	}
	return in;
}

int flash_uid(uint8_t uid[FLASH_UID_BYTES])
{
	uint8_t all_or = 0, all_and = 0xff;
	int i;

	flash_w(CS_N);
	flash_w(0);
	xfer(0x4b);
	for (i = 0; i < 4; i++)
		xfer(0);
	for (i = 0; i < FLASH_UID_BYTES; i++) {
		uid[i] = xfer(0);
		all_or |= uid[i];
		all_and &= uid[i];
	}
	flash_w(CS_N);
	return all_or != 0 && all_and != 0xff;
}
#else
int flash_uid(uint8_t uid[FLASH_UID_BYTES])
{
	return 0;
}
#endif
