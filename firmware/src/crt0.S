/*
 * Reset entry: stack at the top of SRAM, .data copied from ROM, .bss zeroed, main().
 *
 * Ref: firmware/linker.ld (the symbols).  The CPU starts at the ROM's first
 * word (LiteX sets the VexRiscv reset vector to the "rom" region).  No
 * interrupts and no traps are used.
 */
	.section .text.start
	.global _start
_start:
	la	sp, _stack_top
	la	t0, _data_load
	la	t1, _data_start
	la	t2, _data_end
2:	bgeu	t1, t2, 3f
	lw	t3, 0(t0)
	sw	t3, 0(t1)
	addi	t0, t0, 4
	addi	t1, t1, 4
	j	2b
3:	la	t1, _bss_start
	la	t2, _bss_end
4:	bgeu	t1, t2, 5f
	sw	zero, 0(t1)
	addi	t1, t1, 4
	j	4b
5:	call	main
6:	j	6b
