/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * GENERATED FILE - DO NOT EDIT. Made by `make generate` from spec/splitnic_spec/tunnel.py.
 * splitnic kernel tunnel interface (splitnic.ko uapi), spec 0.1, hash 0xde970494.
 *
 * Only literal #defines and plain structs, so that cffi can parse it
 * (splitnic_spec.generate.cdef strips the preprocessor guard lines).
 */
#ifndef SPLITNIC_TUNNEL_H
#define SPLITNIC_TUNNEL_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
#endif

#define SNIC_TUN_SPEC_HASH 0xde970494

/* Constants. */
#define SNIC_TUN_VERSION 1	/* Info.version of this spec. */
#define SNIC_TUN_IOC_MAGIC 185	/* ioctl type byte. */
#define SNIC_TUN_IOC_INFO 0x8010b900	/* _IOR: read struct Info. Any handle. */
#define SNIC_TUN_IOC_CREATE 0xc028b901	/* _IOWR struct IfReq: create an interface (carrier down) and attach it to this handle. EEXIST: the name is taken; EBUSY: the handle already has an interface. */
#define SNIC_TUN_IOC_ATTACH 0xc028b902	/* _IOWR struct IfReq: attach an existing splitnic interface by name, optionally setting MAC and MTU. ENODEV: no splitnic interface of that name; EBUSY: another handle has it. */
#define SNIC_TUN_IOC_DESTROY 47363	/* _IO: remove this handle's interface. */
#define SNIC_TUN_IOC_SETUP_RINGS 0xc028b904	/* _IOWR struct RingReq: allocate the shared area and connect it to the interface. */
#define SNIC_TUN_IOC_SET_CARRIER 0x4004b905	/* _IOW u32: 1 carrier up (needs rings), 0 carrier down; anything else is EINVAL. */
#define SNIC_TUN_IOC_KICK 47366	/* _IO: u2k has new entries (schedule NAPI); also restarts a stopped transmit queue. */
#define SNIC_TUN_RING_LOG2_MIN 4	/* Smallest ring: 16 entries. */
#define SNIC_TUN_RING_LOG2_MAX 12	/* Largest ring: 4096 entries. */
#define SNIC_TUN_SLOT_SIZE_MIN 2048	/* Smallest frame slot. */
#define SNIC_TUN_SLOT_SIZE_MAX 16384	/* Largest frame slot. */
#define SNIC_TUN_AREA_MAX 0x4000000	/* Largest shared area; a ring request needing more is EINVAL. */
#define SNIC_TUN_CTRL_SIZE 4096	/* Bytes of the control page at the start of the area. */
#define SNIC_TUN_CTRL_K2U_PROD 0	/* Control page offset of the k2u producer index (written by the module). */
#define SNIC_TUN_CTRL_K2U_CONS 64	/* Control page offset of the k2u consumer index (written by user space). */
#define SNIC_TUN_CTRL_U2K_PROD 128	/* Control page offset of the u2k producer index (written by user space). */
#define SNIC_TUN_CTRL_U2K_CONS 192	/* Control page offset of the u2k consumer index (written by the module). */
#define SNIC_TUN_AREA_ALIGN 4096	/* Alignment of each descriptor array and slot array in the area. */
#define SNIC_TUN_FRAME_MIN 14	/* Shortest frame user space may deliver: an Ethernet header. */
#define SNIC_TUN_FRAME_OVERHEAD 18	/* Bytes a frame may carry beyond the MTU: Ethernet header and one VLAN tag. */
#define SNIC_TUN_MTU_MIN 68	/* Smallest MTU (IPv4 minimum). */
#define SNIC_TUN_MTU_DEFAULT 1500	/* MTU of a new interface when IfReq.mtu is 0. */
#define SNIC_TUN_MTU_MAX 9000	/* Largest MTU: the NIC's MAX_FRAME_JUMBO less header and FCS. */

/* IOC_INFO result: what the loaded module implements. */
struct snic_tun_info {
	uint32_t version;	/* uapi version: major in bits 31..16, minor in bits 15..0. */
	uint32_t spec_hash;	/* SPEC_HASH of this interface spec the module was built from; user space refuses a mismatch. */
	uint32_t nic_spec_hash;	/* SNIC_SPEC_HASH of the NIC spec the module was built beside; for bug reports only: the module touches no NIC register, so user space does not check it. */
	uint32_t features;	/* Reserved, 0. */
};
#define SNIC_TUN_INFO_SIZE 16

/* IOC_CREATE / IOC_ATTACH argument (in/out). */
struct snic_tun_if_req {
	uint64_t name_lo;	/* Interface name bytes 0..7, byte 0 in bits 7..0, NUL padded. CREATE: the requested name, or empty for 'snic%d'; a '%d' is replaced by the first free number. ATTACH: the name of an existing splitnic interface. Out: the interface's name. */
	uint64_t name_hi;	/* Interface name bytes 8..15; byte 15 must be NUL. */
	uint64_t mac;	/* MAC address, byte 0 (first on the wire) in bits 7..0, bits 63..48 zero. 0: CREATE picks a random address, ATTACH keeps the current one. Multicast or broadcast addresses are refused. Out: the address. */
	uint32_t mtu;	/* MTU, MTU_MIN..MTU_MAX; 0: CREATE uses MTU_DEFAULT, ATTACH keeps it. Out: the MTU. */
	uint32_t ifindex;	/* Out: the interface index. */
	uint32_t flags;	/* Reserved, must be 0. */
	uint32_t reserved;	/* Must be 0. */
};
#define SNIC_TUN_IF_REQ_SIZE 40

/* IOC_SETUP_RINGS argument (in/out). */
struct snic_tun_ring_req {
	uint32_t k2u_log2;	/* In: log2 of the k2u entry count, RING_LOG2_MIN..RING_LOG2_MAX. */
	uint32_t u2k_log2;	/* In: log2 of the u2k entry count, RING_LOG2_MIN..RING_LOG2_MAX. */
	uint32_t slot_size;	/* In: bytes per frame slot, a power of two SLOT_SIZE_MIN..SLOT_SIZE_MAX that holds MTU + FRAME_OVERHEAD bytes. */
	uint32_t flags;	/* Reserved, must be 0. */
	uint64_t area_size;	/* Out: bytes to mmap at offset 0 (at most AREA_MAX). */
	uint32_t k2u_desc;	/* Out: offset of the k2u Desc array. */
	uint32_t u2k_desc;	/* Out: offset of the u2k Desc array. */
	uint32_t k2u_data;	/* Out: offset of the k2u frame slots. */
	uint32_t u2k_data;	/* Out: offset of the u2k frame slots. */
};
#define SNIC_TUN_RING_REQ_SIZE 40

/* A ring entry: the frame in the entry's slot. */
struct snic_tun_desc {
	uint32_t len;	/* Frame length in bytes, FRAME_MIN..min(slot_size, MTU + FRAME_OVERHEAD), no FCS. The module drops (and counts as rx_length_errors) a u2k entry outside it. */
	uint32_t flags;	/* Reserved, must be 0; the module drops a u2k entry with flags set. */
};
#define SNIC_TUN_DESC_SIZE 8

#endif /* SPLITNIC_TUNNEL_H */
