/*
 * Register access for the management CPU: the NIC's CSRs and LiteX's CSRs.
 *
 * Ref: firmware/include/splitnic_spec.h (the NIC's registers, generated from
 * spec/splitnic_spec/nic.py); board.h (written by the SoC build: the
 * NIC's bus address, LiteX's CSR addresses from its generated csr.h, the
 * board's PHY addresses).
 *
 * Both windows are uncached I/O regions of the CPU (VexRiscv's 0x8000_0000..
 * 0xFFFF_FFFF), and a single bus master's accesses complete in program order,
 * so plain volatile accesses need no fences.
 */
#ifndef SPLITNIC_FW_HW_H
#define SPLITNIC_FW_HW_H

#include <stdint.h>

#include "board.h"
#include "splitnic_spec.h"

static inline uint32_t nic_read(uint32_t offset)
{
	return *(volatile uint32_t *)(BOARD_NIC_CSR_BASE + offset);
}

static inline void nic_write(uint32_t offset, uint32_t value)
{
	*(volatile uint32_t *)(BOARD_NIC_CSR_BASE + offset) = value;
}

/* A field's value in a register value (mask/shift pairs from the spec header). */
#define FIELD_GET(reg, field, v) (((v) & SNIC_##reg##_##field##_MASK) >> SNIC_##reg##_##field##_SHIFT)
#define FIELD_PREP(reg, field, v) (((uint32_t)(v) << SNIC_##reg##_##field##_SHIFT) & SNIC_##reg##_##field##_MASK)

/*
 * A LiteX CSR field's bits in place, from the _OFFSET/_SIZE pair LiteX's csr.h
 * gives each CSRField (board.h names them BOARD_<block>_<CSR>_<FIELD>).
 */
#define LITEX_FIELD(f) (((1u << f##_SIZE) - 1u) << f##_OFFSET)

/* LiteX CSRs are 32 bits wide at 32-bit addresses (csr_data_width 32). */
static inline uint32_t litex_csr_read(uint32_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void litex_csr_write(uint32_t addr, uint32_t value)
{
	*(volatile uint32_t *)addr = value;
}

/* The NIC's free-running cycle counter: the firmware's only clock. */
static inline uint32_t cycles(void)
{
	return nic_read(SNIC_REG_CYCLES);
}

/* Cycles per second, from the NIC's CLOCK_HZ (set once at boot). */
extern uint32_t clock_hz;

/* Busy-wait ``n`` core cycles (wraps correctly). */
void wait_cycles(uint32_t n);

#endif
