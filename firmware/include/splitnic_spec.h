/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * GENERATED FILE - DO NOT EDIT. Made by `make generate` from spec/splitnic_spec/nic.py.
 * splitnic NIC register map and DMA formats, spec 0.3, hash 0xe8049c80.
 *
 * Only literal #defines and plain structs, so that cffi can parse it
 * (splitnic_spec.generate.cdef strips the preprocessor guard lines).
 */
#ifndef SPLITNIC_SPEC_H
#define SPLITNIC_SPEC_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
#endif

#define SNIC_SPEC_HASH 0xe8049c80

/* Constants. */
#define SNIC_ID_MAGIC 0x534e4943	/* Value of ID_MAGIC: ASCII 'SNIC'. */
#define SNIC_VERSION_MAJOR 0	/* Spec major version; a driver refuses a different major. */
#define SNIC_VERSION_MINOR 3	/* Spec minor version; additions only. */
#define SNIC_NUM_RX_QUEUES 8	/* RX queues the register map has room for; ID_FEATURES says how many a build has. Queue 0 feeds the kernel tunnel. */
#define SNIC_NUM_TX_QUEUES 8	/* TX queues the register map has room for; ID_FEATURES says how many a build has. Queue 0 carries the kernel's frames. */
#define SNIC_NUM_STEER_ENTRIES 16	/* RX steering entries the register map has room for; ID_FEATURES says how many a build has. */
#define SNIC_KERNEL_QUEUE 0	/* The RX/TX queue that belongs to the kernel tunnel; unmatched frames land here. */
#define SNIC_RING_LOG2_MIN 4	/* Smallest ring: 2**4 = 16 entries. */
#define SNIC_RING_LOG2_MAX 12	/* Largest ring: 2**12 = 4096 entries. */
#define SNIC_INDEX_BITS 16	/* Width of the free-running HEAD/TAIL/CPL ring indices. */
#define SNIC_RING_ALIGN 64	/* Byte alignment of descriptor and completion rings. */
#define SNIC_BUFFER_ALIGN 4	/* Byte alignment of Descriptor.addr (TX frame data and RX buffers); the DMA engines move whole 32-bit words. */
#define SNIC_MAX_BURST 16	/* Longest DMA burst the NIC issues, in 32-bit words. */
#define SNIC_DMA_ADDR_BITS 32	/* Address bits the DMA engines drive; *_HI registers must be 0. */
#define SNIC_MIN_FRAME 60	/* Shortest frame on the wire without FCS; shorter TX frames are padded. */
#define SNIC_MAX_FRAME_STD 1518	/* Reset value of MAX_FRAME.LEN (with FCS). */
#define SNIC_MAX_FRAME_JUMBO 9018	/* Largest MAX_FRAME.LEN honoured when CTRL.JUMBO is set (with FCS). */
#define SNIC_FCS_LEN 4	/* Bytes of Ethernet FCS. */
#define SNIC_MC_HASH_BITS 64	/* Bits of the multicast hash filter (MC_HASH_HI:MC_HASH_LO). */
#define SNIC_RULE_NONE 255	/* Completion.rule when no steering entry matched (and for TX). */
#define SNIC_MBOX_OP_VERSION 1	/* Mailbox op: MBOX_DATA = the firmware's build id (hash of its sources). */
#define SNIC_MBOX_OP_PHY_READ 2	/* Mailbox op: read PHY register MBOX_ARG.REG of PHY MBOX_ARG.PHY into MBOX_DATA. */
#define SNIC_MBOX_OP_PHY_WRITE 3	/* Mailbox op: write MBOX_ARG.VALUE to PHY register MBOX_ARG.REG of PHY MBOX_ARG.PHY. */
#define SNIC_MBOX_OP_SELFTEST 4	/* Mailbox op: run the firmware self-test; MBOX_DATA = bit mask of failed checks (MBOX_SELFTEST_*). */
#define SNIC_MBOX_OK 0	/* MBOX_STATUS.RESULT: done. */
#define SNIC_MBOX_ERR_OP 1	/* MBOX_STATUS.RESULT: unknown OP. */
#define SNIC_MBOX_ERR_ARG 2	/* MBOX_STATUS.RESULT: MBOX_ARG out of range. */
#define SNIC_MBOX_ERR_NO_PHY 3	/* MBOX_STATUS.RESULT: no PHY answered at MBOX_ARG.PHY (MDIO turnaround not driven). */
#define SNIC_MBOX_ERR_FAILED 4	/* MBOX_STATUS.RESULT: the command ran and failed (self-test: see MBOX_DATA). */
#define SNIC_MBOX_SELFTEST_SRAM 1	/* Self-test bit: the CPU's SRAM did not keep a pattern. */
#define SNIC_MBOX_SELFTEST_NIC_ID 2	/* Self-test bit: the CPU read a wrong ID_MAGIC from the NIC. */
#define SNIC_MBOX_SELFTEST_CYCLES 4	/* Self-test bit: the NIC's CYCLES counter did not advance. */
#define SNIC_MBOX_SELFTEST_PHY 8	/* Self-test bit: the wire PHY did not answer on MDIO, or its PHY id read all zeros or all ones. */
#define SNIC_MII_BMCR 0	/* Clause-22 register: basic mode control. */
#define SNIC_MII_BMSR 1	/* Clause-22 register: basic mode status. */
#define SNIC_MII_PHYSID1 2	/* Clause-22 register: PHY identifier, OUI bits 3-18. */
#define SNIC_MII_PHYSID2 3	/* Clause-22 register: PHY identifier, OUI bits 19-24, model and revision. */
#define SNIC_MII_ANAR 4	/* Clause-22 register: autonegotiation advertisement. */
#define SNIC_MII_ANLPAR 5	/* Clause-22 register: link partner ability. */
#define SNIC_MII_ANER 6	/* Clause-22 register: autonegotiation expansion. */
#define SNIC_MII_CTRL1000 9	/* Clause-22 register: 1000BASE-T control. */
#define SNIC_MII_STAT1000 10	/* Clause-22 register: 1000BASE-T status. */
#define SNIC_MII_ESTATUS 15	/* Clause-22 register: extended status. */
#define SNIC_MII_BMCR_RESET 32768	/* BMCR: reset the PHY (self-clearing). */
#define SNIC_MII_BMCR_ANENABLE 4096	/* BMCR: autonegotiation enabled. */
#define SNIC_MII_BMCR_ANRESTART 512	/* BMCR: restart autonegotiation (self-clearing). */
#define SNIC_MII_BMCR_FULLDPLX 256	/* BMCR: full duplex (without autonegotiation). */
#define SNIC_MII_BMCR_SPEED1000 64	/* BMCR: 1000 Mb/s select, MSB (without autonegotiation). */
#define SNIC_MII_BMSR_ANEGCOMPLETE 32	/* BMSR: autonegotiation complete. */
#define SNIC_MII_BMSR_LSTATUS 4	/* BMSR: link up (latches low until read). */
#define SNIC_MII_ANAR_CSMA 1	/* ANAR/ANLPAR selector: IEEE 802.3. */
#define SNIC_MII_ANAR_10HD 32	/* ANAR/ANLPAR: 10BASE-T half duplex. */
#define SNIC_MII_ANAR_10FD 64	/* ANAR/ANLPAR: 10BASE-T full duplex. */
#define SNIC_MII_ANAR_100HD 128	/* ANAR/ANLPAR: 100BASE-TX half duplex. */
#define SNIC_MII_ANAR_100FD 256	/* ANAR/ANLPAR: 100BASE-TX full duplex. */
#define SNIC_MII_CTRL1000_1000HD 256	/* CTRL1000: advertise 1000BASE-T half duplex. */
#define SNIC_MII_CTRL1000_1000FD 512	/* CTRL1000: advertise 1000BASE-T full duplex. */
#define SNIC_MII_STAT1000_LP_1000HD 1024	/* STAT1000: the link partner can 1000BASE-T half duplex. */
#define SNIC_MII_STAT1000_LP_1000FD 2048	/* STAT1000: the link partner can 1000BASE-T full duplex. */
#define SNIC_BCM_AUXCTL 24	/* Broadcom register: auxiliary control, shadowed (selector in bits 2..0). */
#define SNIC_BCM_AUXCTL_SHDW_SEL 7	/* AUXCTL: the shadow register a write addresses. */
#define SNIC_BCM_AUXCTL_READ_SHIFT 12	/* AUXCTL: bits 14..12 of a write with selector SHDW_MISC pick the shadow the next read returns. */
#define SNIC_BCM_AUXCTL_SHDW_MISC 7	/* AUXCTL shadow: miscellaneous control. */
#define SNIC_BCM_AUXCTL_MISC_WREN 32768	/* AUXCTL misc control: write enable (a write without it selects the shadow to read). */
#define SNIC_BCM_AUXCTL_MISC_DATA 32760	/* AUXCTL misc control: its value bits 14..3. */
#define SNIC_BCM_AUXCTL_MISC_RGMII_SKEW 256	/* AUXCTL misc control: the PHY delays RXC (RGMII RX clock skew). */
#define SNIC_BCM_SHD 28	/* Broadcom register: shadow 0x1c (selector in bits 14..10). */
#define SNIC_BCM_SHD_WRITE 32768	/* SHD: write the selected shadow (without it: select it for the next read). */
#define SNIC_BCM_SHD_SEL_SHIFT 10	/* SHD: the shadow selector's lowest bit (5 bits). */
#define SNIC_BCM_SHD_DATA 1023	/* SHD: the selected shadow's value bits 9..0. */
#define SNIC_BCM_SHD_CLK_CTL 3	/* SHD shadow: clock alignment control. */
#define SNIC_BCM_SHD_CLK_GTXCLK_DELAY 512	/* SHD clock alignment control: the PHY delays GTXCLK (RGMII TX clock skew). */

/* Registers: byte offsets in the CSR window (0x1000 bytes). */
#define SNIC_CSR_SIZE 0x1000
#define SNIC_REG_ID_MAGIC 0x000	/* ro: Identifies a splitnic NIC: always ID_MAGIC. */
#define SNIC_REG_ID_VERSION 0x004	/* ro: Spec version the gateware implements. */
#define SNIC_ID_VERSION_MINOR_SHIFT 0
#define SNIC_ID_VERSION_MINOR_MASK 0x0000ffff	/* Spec minor version. */
#define SNIC_ID_VERSION_MAJOR_SHIFT 16
#define SNIC_ID_VERSION_MAJOR_MASK 0xffff0000	/* Spec major version. */
#define SNIC_REG_ID_SPEC_HASH 0x008	/* ro: SPEC_HASH of the spec the gateware was built from; the driver refuses a mismatch. It covers what the driver depends on (names, offsets, widths, access, reset values, structures, constants), not the descriptions. */
#define SNIC_REG_ID_BUILD 0x00c	/* ro: Build id of the gateware (hash of its sources), for bug reports. */
#define SNIC_REG_ID_FEATURES 0x010	/* ro: Sizes of this build. A small FPGA builds fewer queues and steering entries than the register map has room for; the registers of the missing ones read 0 and ignore writes. Reset values: the whole map. */
#define SNIC_ID_FEATURES_RX_QUEUES_SHIFT 0
#define SNIC_ID_FEATURES_RX_QUEUES_MASK 0x000000ff	/* Number of RX queues (1..NUM_RX_QUEUES). */
#define SNIC_ID_FEATURES_TX_QUEUES_SHIFT 8
#define SNIC_ID_FEATURES_TX_QUEUES_MASK 0x0000ff00	/* Number of TX queues (1..NUM_TX_QUEUES). */
#define SNIC_ID_FEATURES_STEER_ENTRIES_SHIFT 16
#define SNIC_ID_FEATURES_STEER_ENTRIES_MASK 0x00ff0000	/* Steering table entries (0..NUM_STEER_ENTRIES). */
#define SNIC_ID_FEATURES_DMA_ADDR_BITS_SHIFT 24
#define SNIC_ID_FEATURES_DMA_ADDR_BITS_MASK 0xff000000	/* DMA address width. */
#define SNIC_REG_SCRATCH 0x014	/* rw: Free for software; used by bus self-tests. */
#define SNIC_REG_CYCLES 0x018	/* rc: Free-running core clock cycle counter (completion timestamps use it). */
#define SNIC_REG_CLOCK_HZ 0x01c	/* ro: Core clock frequency in Hz, to turn cycles into time. */
#define SNIC_REG_CTRL 0x040	/* rw: Global control. */
#define SNIC_CTRL_RESET_SHIFT 0
#define SNIC_CTRL_RESET_MASK 0x00000001	/* Write 1: reset every queue, the steering table, counters and IRQ state. */
#define SNIC_CTRL_RX_EN_SHIFT 1
#define SNIC_CTRL_RX_EN_MASK 0x00000002	/* Accept frames from the wire. */
#define SNIC_CTRL_TX_EN_SHIFT 2
#define SNIC_CTRL_TX_EN_MASK 0x00000004	/* Transmit frames from the TX queues. */
#define SNIC_CTRL_LOOPBACK_SHIFT 3
#define SNIC_CTRL_LOOPBACK_MASK 0x00000008	/* Internal loopback: transmitted frames are received instead of sent. */
#define SNIC_CTRL_PROMISC_SHIFT 4
#define SNIC_CTRL_PROMISC_MASK 0x00000010	/* Accept every destination address. */
#define SNIC_CTRL_ALLMULTI_SHIFT 5
#define SNIC_CTRL_ALLMULTI_MASK 0x00000020	/* Accept every multicast destination address (otherwise MC_HASH picks them). */
#define SNIC_CTRL_BROADCAST_SHIFT 6
#define SNIC_CTRL_BROADCAST_MASK 0x00000040	/* Accept the broadcast address. */
#define SNIC_CTRL_JUMBO_SHIFT 7
#define SNIC_CTRL_JUMBO_MASK 0x00000080	/* Honour MAX_FRAME.LEN up to MAX_FRAME_JUMBO; otherwise the limit is MAX_FRAME_STD. */
#define SNIC_CTRL_KEEP_ERRORED_SHIFT 8
#define SNIC_CTRL_KEEP_ERRORED_MASK 0x00000100	/* Deliver frames with FCS/length errors (flagged in the completion) instead of dropping them; for capture. */
#define SNIC_REG_MAC_ADDR_LO 0x044	/* rw: Bytes 0..3 of the MAC address in wire order (byte 0 in bits 7..0). */
#define SNIC_REG_MAC_ADDR_HI 0x048	/* rw: Bytes 4..5 of the MAC address in wire order (byte 4 in bits 7..0). */
#define SNIC_MAC_ADDR_HI_BYTES_SHIFT 0
#define SNIC_MAC_ADDR_HI_BYTES_MASK 0x0000ffff	/* Bytes 4 and 5. */
#define SNIC_REG_MAX_FRAME 0x04c	/* rw: Longest frame accepted, FCS included; longer ones are counted as oversize. */
#define SNIC_MAX_FRAME_LEN_SHIFT 0
#define SNIC_MAX_FRAME_LEN_MASK 0x00003fff	/* Length in bytes. */
#define SNIC_REG_LINK 0x050	/* rw: Link state, written by the management firmware (board) or the simulation harness; read by the driver. */
#define SNIC_LINK_UP_SHIFT 0
#define SNIC_LINK_UP_MASK 0x00000001	/* Link is up. */
#define SNIC_LINK_SPEED_SHIFT 1
#define SNIC_LINK_SPEED_MASK 0x00000006	/* Speed, one of the codes below. */
#define SNIC_LINK_SPEED_10 0	/* 10 Mb/s. */
#define SNIC_LINK_SPEED_100 1	/* 100 Mb/s. */
#define SNIC_LINK_SPEED_1000 2	/* 1000 Mb/s. */
#define SNIC_LINK_FULL_DUPLEX_SHIFT 3
#define SNIC_LINK_FULL_DUPLEX_MASK 0x00000008	/* Full duplex. */
#define SNIC_REG_IRQ_STATUS 0x054	/* w1c: Pending interrupt causes; write 1 to clear. */
#define SNIC_IRQ_STATUS_RX_SHIFT 0
#define SNIC_IRQ_STATUS_RX_MASK 0x000000ff	/* Bit q: RX queue q wrote a completion. */
#define SNIC_IRQ_STATUS_TX_SHIFT 8
#define SNIC_IRQ_STATUS_TX_MASK 0x0000ff00	/* Bit q: TX queue q wrote a completion. */
#define SNIC_IRQ_STATUS_LINK_SHIFT 16
#define SNIC_IRQ_STATUS_LINK_MASK 0x00010000	/* LINK changed. */
#define SNIC_REG_IRQ_MASK 0x058	/* rw: Interrupt enables, same layout as IRQ_STATUS. */
#define SNIC_IRQ_MASK_RX_SHIFT 0
#define SNIC_IRQ_MASK_RX_MASK 0x000000ff	/* Enable per RX queue. */
#define SNIC_IRQ_MASK_TX_SHIFT 8
#define SNIC_IRQ_MASK_TX_MASK 0x0000ff00	/* Enable per TX queue. */
#define SNIC_IRQ_MASK_LINK_SHIFT 16
#define SNIC_IRQ_MASK_LINK_MASK 0x00010000	/* Enable link change. */
#define SNIC_REG_IRQ_COALESCE 0x05c	/* rw: Interrupt coalescing: the interrupt line rises at most once per CYCLES core cycles, merging the completions written meanwhile. */
#define SNIC_IRQ_COALESCE_CYCLES_SHIFT 0
#define SNIC_IRQ_COALESCE_CYCLES_MASK 0x00ffffff	/* Hold-off time in core cycles; 0 raises at once. */
#define SNIC_REG_FW_VERSION 0x060	/* rw: Written by the firmware at boot; 0: no firmware is running. */
#define SNIC_FW_VERSION_PATCH_SHIFT 0
#define SNIC_FW_VERSION_PATCH_MASK 0x000000ff	/* Firmware patch version. */
#define SNIC_FW_VERSION_MINOR_SHIFT 8
#define SNIC_FW_VERSION_MINOR_MASK 0x0000ff00	/* Firmware minor version. */
#define SNIC_FW_VERSION_MAJOR_SHIFT 16
#define SNIC_FW_VERSION_MAJOR_MASK 0x00ff0000	/* Firmware major version. */
#define SNIC_REG_FW_STATUS 0x064	/* rw: Written by the firmware: what it found. */
#define SNIC_FW_STATUS_PHY_OK_SHIFT 0
#define SNIC_FW_STATUS_PHY_OK_MASK 0x00000001	/* The wire PHY answered and was configured. */
#define SNIC_FW_STATUS_MAC_SOURCE_SHIFT 4
#define SNIC_FW_STATUS_MAC_SOURCE_MASK 0x00000030	/* Where MAC_ADDR came from: 0: left as it was, 1: SPI flash unique id, 2: the firmware's stable locally administered address. */
#define SNIC_FW_STATUS_PHY_ADDR_SHIFT 8
#define SNIC_FW_STATUS_PHY_ADDR_MASK 0x00001f00	/* MDIO address of the wire PHY. */
#define SNIC_REG_FW_LINK_CYCLES 0x068	/* rw: Written by the firmware: CYCLES when it first saw the wire link up after reset (0: not yet); the reset-to-link-up time. */
#define SNIC_REG_MBOX_CMD 0x070	/* rw: Mailbox command, written by the host (after MBOX_ARG). */
#define SNIC_MBOX_CMD_OP_SHIFT 0
#define SNIC_MBOX_CMD_OP_MASK 0x000000ff	/* MBOX_OP_*. */
#define SNIC_MBOX_CMD_SEQ_SHIFT 8
#define SNIC_MBOX_CMD_SEQ_MASK 0x0000ff00	/* Any value other than MBOX_STATUS.SEQ posts the command. */
#define SNIC_REG_MBOX_ARG 0x074	/* rw: Mailbox argument, written by the host before MBOX_CMD. */
#define SNIC_MBOX_ARG_REG_SHIFT 0
#define SNIC_MBOX_ARG_REG_MASK 0x0000001f	/* PHY ops: clause-22 register number. */
#define SNIC_MBOX_ARG_PHY_SHIFT 8
#define SNIC_MBOX_ARG_PHY_MASK 0x00001f00	/* PHY ops: MDIO address of the PHY. */
#define SNIC_MBOX_ARG_VALUE_SHIFT 16
#define SNIC_MBOX_ARG_VALUE_MASK 0xffff0000	/* MBOX_OP_PHY_WRITE: the value. */
#define SNIC_REG_MBOX_STATUS 0x078	/* rw: Mailbox status, written by the firmware (after MBOX_DATA). */
#define SNIC_MBOX_STATUS_RESULT_SHIFT 0
#define SNIC_MBOX_STATUS_RESULT_MASK 0x000000ff	/* MBOX_OK or MBOX_ERR_*. */
#define SNIC_MBOX_STATUS_SEQ_SHIFT 8
#define SNIC_MBOX_STATUS_SEQ_MASK 0x0000ff00	/* SEQ of the last command finished. */
#define SNIC_REG_MBOX_DATA 0x07c	/* rw: Mailbox result data, written by the firmware. */
#define SNIC_REG_MC_HASH_LO 0x500	/* rw: Multicast hash filter, bits 31..0. A multicast destination (I/G bit set, not broadcast) is accepted when bit i of MC_HASH_HI:MC_HASH_LO is set, i being the low 6 bits of the CRC-32 of its 6 bytes (the FCS algorithm: zlib.crc32(address) & 63). Lets IPv6 neighbour discovery and mDNS in without ALLMULTI; CTRL.RESET leaves it alone. */
#define SNIC_REG_MC_HASH_HI 0x504	/* rw: Multicast hash filter, bits 63..32 (see MC_HASH_LO). */
#define SNIC_REG_STAT_RX_OK 0xa00	/* rc: Frames received with good FCS and length, before address filtering. */
#define SNIC_REG_STAT_RX_OK_BYTES 0xa04	/* rc: Bytes (FCS excluded) of STAT_RX_OK frames. */
#define SNIC_REG_STAT_RX_FCS_ERR 0xa08	/* rc: Frames dropped for a bad FCS (also counted if kept). */
#define SNIC_REG_STAT_RX_RUNT 0xa0c	/* rc: Frames shorter than 64 bytes with FCS. */
#define SNIC_REG_STAT_RX_OVERSIZE 0xa10	/* rc: Frames longer than the MAX_FRAME limit. */
#define SNIC_REG_STAT_RX_FILTERED 0xa14	/* rc: Good frames dropped by the address filter. */
#define SNIC_REG_STAT_RX_FIFO_DROP 0xa18	/* rc: Frames dropped because the RX FIFO was full. */
#define SNIC_REG_STAT_TX_OK 0xa1c	/* rc: Frames transmitted. */
#define SNIC_REG_STAT_TX_OK_BYTES 0xa20	/* rc: Bytes (FCS and padding excluded) of STAT_TX_OK frames. */
#define SNIC_REG_STAT_DMA_ERR 0xa24	/* rc: DMA accesses refused because their address lies outside the memory the NIC may reach (on the board: NIC-local memory, and the host window for writes). A refused write goes nowhere and a refused read returns 0; the queue carries on, its frame or completion lost. The board's NIC counts each bus cycle (one burst of at most MAX_BURST words) with a word refused, the software NIC each descriptor, buffer or completion access. Not 0: a ring or buffer address is wrong (a driver bug, or someone writing the register window). */

/* RXQ: RX queues: the driver posts empty buffers, the NIC fills them and writes one completion per frame. */
#define SNIC_RXQ_BASE 0x100
#define SNIC_RXQ_STRIDE 0x40
#define SNIC_RXQ_COUNT 8
#define SNIC_RXQ_CTRL 0x00	/* rw: RX queue control. */
#define SNIC_RXQ_CTRL_ENABLE_SHIFT 0
#define SNIC_RXQ_CTRL_ENABLE_MASK 0x00000001	/* The NIC processes this queue. Frames steered to a disabled queue are dropped and counted. */
#define SNIC_RXQ_CTRL_RESET_SHIFT 1
#define SNIC_RXQ_CTRL_RESET_MASK 0x00000002	/* Write 1: HEAD, TAIL, CPL and the phase return to 0; counters keep counting. */
#define SNIC_RXQ_DESC_LO 0x04	/* rw: Device address of the descriptor ring, bits 31..0 (RING_ALIGN aligned). */
#define SNIC_RXQ_DESC_HI 0x08	/* rw: Device address of the descriptor ring, bits 63..32. */
#define SNIC_RXQ_CPL_LO 0x0c	/* rw: Device address of the completion ring, bits 31..0 (RING_ALIGN aligned). */
#define SNIC_RXQ_CPL_HI 0x10	/* rw: Device address of the completion ring, bits 63..32. */
#define SNIC_RXQ_SIZE 0x14	/* rw: Ring size; both rings have 2**LOG2 entries. */
#define SNIC_RXQ_SIZE_LOG2_SHIFT 0
#define SNIC_RXQ_SIZE_LOG2_MASK 0x0000000f	/* log2 of the entry count, RING_LOG2_MIN..RING_LOG2_MAX. */
#define SNIC_RXQ_TAIL 0x18	/* rw: Producer index, written by the driver: descriptors posted (empty buffers). */
#define SNIC_RXQ_TAIL_INDEX_SHIFT 0
#define SNIC_RXQ_TAIL_INDEX_MASK 0x0000ffff	/* Free-running index. */
#define SNIC_RXQ_HEAD 0x1c	/* ro: Consumer index, advanced by the NIC as it takes descriptors. */
#define SNIC_RXQ_HEAD_INDEX_SHIFT 0
#define SNIC_RXQ_HEAD_INDEX_MASK 0x0000ffff	/* Free-running index. */
#define SNIC_RXQ_CPL 0x20	/* ro: Completions written so far (free-running); the driver normally polls the phase bit in memory instead. */
#define SNIC_RXQ_CPL_INDEX_SHIFT 0
#define SNIC_RXQ_CPL_INDEX_MASK 0x0000ffff	/* Free-running index. */
#define SNIC_RXQ_PACKETS 0x24	/* rc: Frames delivered to this queue. */
#define SNIC_RXQ_BYTES 0x28	/* rc: Bytes (FCS excluded) of those frames. */
#define SNIC_RXQ_DROPS 0x2c	/* rc: Frames steered here and dropped: no buffer posted or queue disabled. */

/* TXQ: TX queues: the driver posts frames, the NIC sends them and writes one completion per descriptor. */
#define SNIC_TXQ_BASE 0x300
#define SNIC_TXQ_STRIDE 0x40
#define SNIC_TXQ_COUNT 8
#define SNIC_TXQ_CTRL 0x00	/* rw: TX queue control. */
#define SNIC_TXQ_CTRL_ENABLE_SHIFT 0
#define SNIC_TXQ_CTRL_ENABLE_MASK 0x00000001	/* The NIC processes this queue. */
#define SNIC_TXQ_CTRL_RESET_SHIFT 1
#define SNIC_TXQ_CTRL_RESET_MASK 0x00000002	/* Write 1: HEAD, TAIL, CPL and the phase return to 0; counters keep counting. */
#define SNIC_TXQ_DESC_LO 0x04	/* rw: Device address of the descriptor ring, bits 31..0 (RING_ALIGN aligned). */
#define SNIC_TXQ_DESC_HI 0x08	/* rw: Device address of the descriptor ring, bits 63..32. */
#define SNIC_TXQ_CPL_LO 0x0c	/* rw: Device address of the completion ring, bits 31..0 (RING_ALIGN aligned). */
#define SNIC_TXQ_CPL_HI 0x10	/* rw: Device address of the completion ring, bits 63..32. */
#define SNIC_TXQ_SIZE 0x14	/* rw: Ring size; both rings have 2**LOG2 entries. */
#define SNIC_TXQ_SIZE_LOG2_SHIFT 0
#define SNIC_TXQ_SIZE_LOG2_MASK 0x0000000f	/* log2 of the entry count, RING_LOG2_MIN..RING_LOG2_MAX. */
#define SNIC_TXQ_TAIL 0x18	/* rw: Producer index, written by the driver: descriptors posted (frames to send). */
#define SNIC_TXQ_TAIL_INDEX_SHIFT 0
#define SNIC_TXQ_TAIL_INDEX_MASK 0x0000ffff	/* Free-running index. */
#define SNIC_TXQ_HEAD 0x1c	/* ro: Consumer index, advanced by the NIC as it takes descriptors. */
#define SNIC_TXQ_HEAD_INDEX_SHIFT 0
#define SNIC_TXQ_HEAD_INDEX_MASK 0x0000ffff	/* Free-running index. */
#define SNIC_TXQ_CPL 0x20	/* ro: Completions written so far (free-running); the driver normally polls the phase bit in memory instead. */
#define SNIC_TXQ_CPL_INDEX_SHIFT 0
#define SNIC_TXQ_CPL_INDEX_MASK 0x0000ffff	/* Free-running index. */
#define SNIC_TXQ_PACKETS 0x24	/* rc: Frames sent from this queue. */
#define SNIC_TXQ_BYTES 0x28	/* rc: Bytes (FCS excluded) of those frames. */
#define SNIC_TXQ_DROPS 0x2c	/* rc: Descriptors completed with an error status. */

/* STEER: RX steering table. The lowest-numbered enabled entry whose enabled matches all hold picks the RX queue; no match picks KERNEL_QUEUE. An entry with no MATCH_* bit set matches every frame. */
#define SNIC_STEER_BASE 0x800
#define SNIC_STEER_STRIDE 0x20
#define SNIC_STEER_COUNT 16
#define SNIC_STEER_CTRL 0x00	/* rw: Entry control. Disable an entry before changing its match values. */
#define SNIC_STEER_CTRL_ENABLE_SHIFT 0
#define SNIC_STEER_CTRL_ENABLE_MASK 0x00000001	/* The entry takes part in matching. */
#define SNIC_STEER_CTRL_MATCH_DMAC_SHIFT 1
#define SNIC_STEER_CTRL_MATCH_DMAC_MASK 0x00000002	/* Compare the destination MAC with DMAC_LO/DMAC_HI. */
#define SNIC_STEER_CTRL_MATCH_ETHERTYPE_SHIFT 2
#define SNIC_STEER_CTRL_MATCH_ETHERTYPE_MASK 0x00000004	/* Compare the ethertype (bytes 12..13, no VLAN parsing). */
#define SNIC_STEER_CTRL_MATCH_IP_PROTO_SHIFT 3
#define SNIC_STEER_CTRL_MATCH_IP_PROTO_MASK 0x00000008	/* Compare the IPv4 protocol / IPv6 next header (IPv6: no extension headers). */
#define SNIC_STEER_CTRL_MATCH_L4_DPORT_SHIFT 4
#define SNIC_STEER_CTRL_MATCH_L4_DPORT_MASK 0x00000010	/* Compare the TCP/UDP destination port (IPv4 of any IHL, unfragmented or first fragment; IPv6 with next header TCP/UDP). */
#define SNIC_STEER_CTRL_QUEUE_SHIFT 8
#define SNIC_STEER_CTRL_QUEUE_MASK 0x00000f00	/* RX queue for matching frames. */
#define SNIC_STEER_DMAC_LO 0x04	/* rw: Bytes 0..3 of the MAC address in wire order (byte 0 in bits 7..0). */
#define SNIC_STEER_DMAC_HI 0x08	/* rw: Bytes 4..5 of the MAC address in wire order (byte 4 in bits 7..0). */
#define SNIC_STEER_DMAC_HI_BYTES_SHIFT 0
#define SNIC_STEER_DMAC_HI_BYTES_MASK 0x0000ffff	/* Bytes 4 and 5. */
#define SNIC_STEER_ETHERTYPE 0x0c	/* rw: Ethertype to match, as a number (0x0800 for IPv4). */
#define SNIC_STEER_ETHERTYPE_VALUE_SHIFT 0
#define SNIC_STEER_ETHERTYPE_VALUE_MASK 0x0000ffff	/* Ethertype. */
#define SNIC_STEER_IP_PROTO 0x10	/* rw: IP protocol to match (17 for UDP). */
#define SNIC_STEER_IP_PROTO_VALUE_SHIFT 0
#define SNIC_STEER_IP_PROTO_VALUE_MASK 0x000000ff	/* Protocol number. */
#define SNIC_STEER_L4_DPORT 0x14	/* rw: TCP/UDP destination port to match, as a number. */
#define SNIC_STEER_L4_DPORT_VALUE_SHIFT 0
#define SNIC_STEER_L4_DPORT_VALUE_MASK 0x0000ffff	/* Port. */
#define SNIC_STEER_HITS 0x18	/* rc: Frames this entry steered. */

/* A TX or RX ring entry, written by the driver, read by the NIC. TX: a frame to send. RX: an empty buffer to fill. */
struct snic_descriptor {
	uint64_t addr;	/* Device address of the frame data / buffer. */
	uint16_t length;	/* TX: frame length, 14..limit (FCS excluded; padded to MIN_FRAME by the NIC). RX: buffer size in bytes. */
	uint16_t flags;	/* Reserved, write 0. */
	uint32_t cookie;	/* Opaque to the NIC; copied into the completion so the driver finds its buffer. */
};
#define SNIC_DESCRIPTOR_SIZE 16

/* A completion ring entry, written by the NIC in ascending address order, so the word holding PHASE lands last: an entry is valid once its PHASE equals the ring lap's phase (1 on the first lap after a queue reset, then alternating). The driver zero-fills the ring before enabling the queue. */
struct snic_completion {
	uint32_t cookie;	/* Copied from the descriptor. */
	uint16_t length;	/* RX: bytes written to the buffer. TX: bytes sent. FCS excluded. */
	uint8_t queue;	/* Queue number. */
	uint8_t status;	/* 0: good. Otherwise error bits. */
	uint32_t timestamp;	/* CYCLES when the frame's last byte crossed the MAC. */
	uint8_t rule;	/* RX: steering entry that matched, or RULE_NONE. TX: RULE_NONE. */
	uint8_t reserved0;	/* 0. */
	uint8_t reserved1;	/* 0. */
	uint8_t flags;	/* Written last. */
};
#define SNIC_COMPLETION_SIZE 16
#define SNIC_COMPLETION_STATUS_FCS_ERROR_SHIFT 0
#define SNIC_COMPLETION_STATUS_FCS_ERROR_MASK 0x01	/* RX: bad FCS (only seen with CTRL.KEEP_ERRORED). */
#define SNIC_COMPLETION_STATUS_RUNT_SHIFT 1
#define SNIC_COMPLETION_STATUS_RUNT_MASK 0x02	/* RX: frame shorter than 64 bytes (only with KEEP_ERRORED). */
#define SNIC_COMPLETION_STATUS_OVERSIZE_SHIFT 2
#define SNIC_COMPLETION_STATUS_OVERSIZE_MASK 0x04	/* RX: frame longer than the limit (only with KEEP_ERRORED). */
#define SNIC_COMPLETION_STATUS_TRUNCATED_SHIFT 3
#define SNIC_COMPLETION_STATUS_TRUNCATED_MASK 0x08	/* RX: the frame was longer than the buffer; length bytes were kept. */
#define SNIC_COMPLETION_STATUS_LEN_ERROR_SHIFT 4
#define SNIC_COMPLETION_STATUS_LEN_ERROR_MASK 0x10	/* TX: descriptor length outside 14..limit; nothing was sent. */
#define SNIC_COMPLETION_FLAGS_PHASE_SHIFT 0
#define SNIC_COMPLETION_FLAGS_PHASE_MASK 0x01	/* Lap phase; see above. */

#endif /* SPLITNIC_SPEC_H */
