/* The SPI flash's unique id (Read Unique ID, 0x4B). Ref: gateware/splitnic_gateware/targets/flash_uid.py. */
#ifndef SPLITNIC_FW_FLASH_H
#define SPLITNIC_FW_FLASH_H

#include <stdint.h>

#define FLASH_UID_BYTES 16

/* Read the flash's unique id into ``uid``; 0 when the SoC has no flash or the id reads all 0s or all 1s. */
int flash_uid(uint8_t uid[FLASH_UID_BYTES]);

#endif
