/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * GENERATED FILE - DO NOT EDIT. Made by `make generate` from spec/splitnic_spec/tunnel.py.
 * splitnic kernel tunnel interface (splitnic.ko uapi), spec 0.4, hash 0x6b66bcb2.
 *
 * Only #defines and plain structs, so that cffi can parse it (splitnic_spec.generate.cdef
 * strips the guard lines and the ioctl macros; tests/vm checks those with the compiler).
 */
#ifndef SPLITNIC_TUNNEL_H
#define SPLITNIC_TUNNEL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define SNIC_TUN_SPEC_HASH 0x6b66bcb2

/* Constants. */
#define SNIC_TUN_VERSION 4	/* Info.version of this spec. */
#define SNIC_TUN_IOC_MAGIC 185	/* ioctl type byte. */
#define SNIC_TUN_IOC_INFO _IOR(SNIC_TUN_IOC_MAGIC, 0, struct snic_tun_info)	/* _IOR: read struct Info. Any handle. */
#define SNIC_TUN_IOC_CREATE _IOWR(SNIC_TUN_IOC_MAGIC, 1, struct snic_tun_if_req)	/* _IOWR struct IfReq: create an interface (carrier down) and attach it to this handle. EEXIST: the name is taken; EBUSY: the handle already has an interface. */
#define SNIC_TUN_IOC_ATTACH _IOWR(SNIC_TUN_IOC_MAGIC, 2, struct snic_tun_if_req)	/* _IOWR struct IfReq: attach an existing splitnic interface by name, optionally setting MAC and MTU. ENODEV: no splitnic interface of that name; EBUSY: another handle has it. */
#define SNIC_TUN_IOC_DESTROY _IO(SNIC_TUN_IOC_MAGIC, 3)	/* _IO: remove this handle's interface. */
#define SNIC_TUN_IOC_SETUP_RINGS _IOWR(SNIC_TUN_IOC_MAGIC, 4, struct snic_tun_ring_req)	/* _IOWR struct RingReq: allocate the shared area and connect it to the interface. */
#define SNIC_TUN_IOC_SET_CARRIER _IOW(SNIC_TUN_IOC_MAGIC, 5, __u32)	/* _IOW u32: 1 carrier up (needs rings), 0 carrier down; anything else is EINVAL. */
#define SNIC_TUN_IOC_KICK _IO(SNIC_TUN_IOC_MAGIC, 6)	/* _IO: u2k has new entries (schedule NAPI); also restarts a stopped transmit queue. */
#define SNIC_TUN_IOC_GET_CONFIG _IOWR(SNIC_TUN_IOC_MAGIC, 7, struct snic_tun_config)	/* _IOWR struct Config: read the interface's MAC, MTU, flags and address lists; clears POLLPRI until the next change. ENODEV: no interface. */
#define SNIC_TUN_IOC_PUBLISH _IOW(SNIC_TUN_IOC_MAGIC, 8, struct snic_tun_publish)	/* _IOW struct Publish: the NIC's counters, link speed and duplex, firmware version and bus info for ip -s link and ethtool. ENODEV: no interface. */
#define SNIC_TUN_IOC_PUBLISH_RULES _IOW(SNIC_TUN_IOC_MAGIC, 9, struct snic_tun_rule_table)	/* _IOW struct RuleTable: the NIC's steering table for ethtool -n, after every change and after each request taken with IOC_TAKE_RULE_REQ. ENODEV: no interface. */
#define SNIC_TUN_IOC_TAKE_RULE_REQ _IOR(SNIC_TUN_IOC_MAGIC, 10, struct snic_tun_rule_req)	/* _IOR struct RuleReq: the oldest ethtool -N request not yet taken (poll() reports POLLPRI when one arrives). EAGAIN: none; ENODEV: no interface. */
#define SNIC_TUN_RULES_MAX 16	/* Largest RuleTable.capacity: the steering entries the NIC's register map has room for. */
#define SNIC_TUN_RX_QUEUES_MAX 8	/* Largest RuleTable.rx_queues and Publish.rx_queues. */
#define SNIC_TUN_TX_QUEUES_MAX 8	/* Largest Publish.tx_queues. */
#define SNIC_TUN_RULE_REQS_MAX 16	/* ethtool -N requests the module holds until the driver handled them; one more is EBUSY. */
#define SNIC_TUN_RULE_ADD 1	/* RuleReq.op: add a rule. */
#define SNIC_TUN_RULE_DEL 2	/* RuleReq.op: remove a rule. */
#define SNIC_TUN_ADDR_MAX 256	/* Largest Config.addrs_max. */
#define SNIC_TUN_COUNTERS 74	/* NIC counters in Publish (NIC_COUNTERS). */
#define SNIC_TUN_SPEED_MAX 0x61a80	/* Largest Publish.speed in Mb/s. */
#define SNIC_TUN_RX_USECS_MAX 0x186a0	/* Largest interrupt moderation in us (the NIC's IRQ_COALESCE holds 134 ms at 125 MHz). */
#define SNIC_TUN_RX_USECS_NONE 0xffffffff	/* Config.rx_usecs / Publish.rx_usecs: no value. */
#define SNIC_TUN_TEXT_LEN 32	/* Bytes of each string in Publish, NUL included. */
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
#define SNIC_TUN_FRAME_OVERHEAD 22	/* Bytes a frame may carry beyond the MTU: Ethernet header and two VLAN tags (802.1ad QinQ). */
#define SNIC_TUN_MTU_MIN 68	/* Smallest MTU (IPv4 minimum). */
#define SNIC_TUN_MTU_DEFAULT 1500	/* MTU of a new interface when IfReq.mtu is 0. */
#define SNIC_TUN_MTU_MAX 9000	/* Largest MTU: the NIC's MAX_FRAME_JUMBO less header and FCS. */

/* IOC_INFO result: what the loaded module implements. */
struct snic_tun_info {
	__u32 version;	/* uapi version: major in bits 31..16, minor in bits 15..0. */
	__u32 spec_hash;	/* SPEC_HASH of this interface spec the module was built from; user space refuses a mismatch. */
	__u32 nic_spec_hash;	/* SNIC_SPEC_HASH of the NIC spec the module was built beside; for bug reports only: the module touches no NIC register, so user space does not check it. */
	__u32 features;	/* Reserved, 0. */
};
#define SNIC_TUN_INFO_SIZE 16

/* IOC_CREATE / IOC_ATTACH argument (in/out). */
struct snic_tun_if_req {
	__u64 name_lo;	/* Interface name bytes 0..7, byte 0 in bits 7..0, NUL padded. CREATE: the requested name, or empty for 'snic%d'; a '%d' is replaced by the first free number. ATTACH: the name of an existing splitnic interface. Out: the interface's name. */
	__u64 name_hi;	/* Interface name bytes 8..15; byte 15 must be NUL. */
	__u64 mac;	/* MAC address, byte 0 (first on the wire) in bits 7..0, bits 63..48 zero. 0: CREATE picks a random address, ATTACH keeps the current one. Multicast or broadcast addresses are refused. Out: the address. */
	__u32 mtu;	/* MTU, MTU_MIN..MTU_MAX; 0: CREATE uses MTU_DEFAULT, ATTACH keeps it. Out: the MTU. */
	__u32 ifindex;	/* Out: the interface index. */
	__u32 flags;	/* Reserved, must be 0. */
	__u32 reserved;	/* Must be 0. */
};
#define SNIC_TUN_IF_REQ_SIZE 40

/* IOC_SETUP_RINGS argument (in/out). */
struct snic_tun_ring_req {
	__u32 k2u_log2;	/* In: log2 of the k2u entry count, RING_LOG2_MIN..RING_LOG2_MAX. */
	__u32 u2k_log2;	/* In: log2 of the u2k entry count, RING_LOG2_MIN..RING_LOG2_MAX. */
	__u32 slot_size;	/* In: bytes per frame slot, a power of two SLOT_SIZE_MIN..SLOT_SIZE_MAX that holds MTU + FRAME_OVERHEAD bytes. */
	__u32 flags;	/* Reserved, must be 0. */
	__u64 area_size;	/* Out: bytes to mmap at offset 0 (at most AREA_MAX). */
	__u32 k2u_desc;	/* Out: offset of the k2u Desc array. */
	__u32 u2k_desc;	/* Out: offset of the u2k Desc array. */
	__u32 k2u_data;	/* Out: offset of the k2u frame slots. */
	__u32 u2k_data;	/* Out: offset of the u2k frame slots. */
};
#define SNIC_TUN_RING_REQ_SIZE 40

/* A ring entry: the frame in the entry's slot. */
struct snic_tun_desc {
	__u32 len;	/* Frame length in bytes, FRAME_MIN..min(slot_size, MTU + FRAME_OVERHEAD), no FCS. The module drops (and counts as rx_length_errors) a u2k entry outside it. */
	__u32 flags;	/* Reserved, must be 0; the module drops a u2k entry with flags set. */
};
#define SNIC_TUN_DESC_SIZE 8

/* IOC_GET_CONFIG argument (in/out): the interface as the kernel configured it. */
struct snic_tun_config {
	__u32 generation;	/* Out: the interface's configuration generation; it changes with every change of the MAC address, MTU, flags or address lists. poll() reports POLLPRI while it differs from the one this handle last read. */
	__u32 flags;	/* Out: Config flags. */
	__u32 mtu;	/* Out: the MTU. */
	__u32 addrs_max;	/* In: entries of the buffer at addrs, 0..ADDR_MAX. */
	__u32 uc_count;	/* Out: secondary unicast addresses (written first at addrs). */
	__u32 mc_count;	/* Out: multicast addresses (written after the unicast ones). */
	__u64 mac;	/* Out: the MAC address, encoded as in IfReq.mac. */
	__u64 addrs;	/* In: user address of addrs_max 64-bit words, each a MAC address encoded as in IfReq.mac (0 with addrs_max 0: counts only). */
	__u32 rx_usecs;	/* Out: the receive interrupt moderation `ethtool -C rx-usecs` asked for, in us, 0..RX_USECS_MAX; RX_USECS_NONE: never asked (the driver keeps its own). The driver programs the NIC's IRQ_COALESCE from it and publishes what it set (Publish.rx_usecs). */
	__u32 reserved;	/* Must be 0. */
};
#define SNIC_TUN_CONFIG_SIZE 48
#define SNIC_TUN_CONFIG_FLAGS_UP_SHIFT 0
#define SNIC_TUN_CONFIG_FLAGS_UP_MASK 0x01	/* The interface is administratively up (IFF_UP). */
#define SNIC_TUN_CONFIG_FLAGS_PROMISC_SHIFT 1
#define SNIC_TUN_CONFIG_FLAGS_PROMISC_MASK 0x02	/* Receive every frame (IFF_PROMISC; also set while secondary unicast addresses exist). */
#define SNIC_TUN_CONFIG_FLAGS_ALLMULTI_SHIFT 2
#define SNIC_TUN_CONFIG_FLAGS_ALLMULTI_MASK 0x04	/* Receive every multicast frame (IFF_ALLMULTI). */
#define SNIC_TUN_CONFIG_FLAGS_TRUNCATED_SHIFT 3
#define SNIC_TUN_CONFIG_FLAGS_TRUNCATED_MASK 0x08	/* More addresses than addrs_max: only the first addrs_max were written; receive every multicast frame or ask again with a larger buffer. */

/* IOC_PUBLISH argument (in): the NIC as user space sees it, for ip, ethtool. */
struct snic_tun_publish {
	__u32 flags;	/* Reserved, must be 0. */
	__u32 count;	/* Words at counters: COUNTERS (the NIC's counters, in NIC_COUNTERS order) or 0 (keep the counters published before). */
	__u64 counters;	/* In: user address of count 64-bit counters. */
	__u32 speed;	/* Link speed in Mb/s from the NIC's LINK register, 0: not known; at most SPEED_MAX. */
	__u32 duplex;	/* Link duplex from the NIC's LINK register: 0: not known, 1: half, 2: full. */
	__u32 rx_usecs;	/* The NIC's receive interrupt moderation now, in us (ethtool -c), 0..RX_USECS_MAX; RX_USECS_NONE: not known (ethtool -c then shows what -C asked for). */
	__u32 rx_ring;	/* Entries of the NIC's RX queue 0 ring, the one snic0's frames arrive in (ethtool -g): a power of two, the NIC spec's 2**RING_LOG2_MIN..ring_max; 0: not known (ethtool -g then shows the tunnel's rings). */
	__u32 tx_ring;	/* Entries of the NIC's TX queue 0 ring (ethtool -g), as rx_ring. */
	__u32 ring_max;	/* The NIC's largest ring, a power of two up to the NIC spec's 2**RING_LOG2_MAX; 0 with rx_ring and tx_ring 0. */
	__u32 rx_queues;	/* The NIC's RX queues, 1..RX_QUEUES_MAX (ethtool -l; queue 0 is snic0's, the others the fast-path applications'); 0: not known. */
	__u32 tx_queues;	/* The NIC's TX queues, 1..TX_QUEUES_MAX, as rx_queues; 0 with rx_queues 0. */
	__u64 fw_version0;	/* Firmware version (ethtool -i): bytes 0..7 of a NUL-terminated printable ASCII string of at most 31 characters, byte 0 in bits 7..0, NUL padded; fw_version1..3 hold the following bytes. Empty: not known. */
	__u64 fw_version1;	/* Firmware version (ethtool -i): bytes 8..15. */
	__u64 fw_version2;	/* Firmware version (ethtool -i): bytes 16..23. */
	__u64 fw_version3;	/* Firmware version (ethtool -i): bytes 24..31. */
	__u64 bus_info0;	/* Bus info (ethtool -i): bytes 0..7 of a NUL-terminated printable ASCII string of at most 31 characters, byte 0 in bits 7..0, NUL padded; bus_info1..3 hold the following bytes. Empty: not known. */
	__u64 bus_info1;	/* Bus info (ethtool -i): bytes 8..15. */
	__u64 bus_info2;	/* Bus info (ethtool -i): bytes 16..23. */
	__u64 bus_info3;	/* Bus info (ethtool -i): bytes 24..31. */
};
#define SNIC_TUN_PUBLISH_SIZE 112

/* An entry of IOC_PUBLISH_RULES' table: a steering rule in force on the NIC. */
struct snic_tun_rule {
	__u32 location;	/* The rule's entry in the NIC's steering table, 0..RULES_MAX-1; the lowest matching entry wins, and removing a rule moves every later one up an entry (as `splitnic rules remove`). */
	__u32 flags;	/* Which match values are compared (Rule flags); none: every frame. */
	__u32 queue;	/* The NIC's RX queue the frames go to (ethtool's action): 0 the kernel's (this interface), 1.. a fast-path application's. */
	__u32 ethertype;	/* Ethertype, 0..0xFFFF. */
	__u32 ip_proto;	/* IP protocol, 0..255. */
	__u32 dport;	/* TCP/UDP destination port, 0..0xFFFF. */
	__u64 dmac;	/* Destination MAC address, encoded as in IfReq.mac. */
};
#define SNIC_TUN_RULE_SIZE 32
#define SNIC_TUN_RULE_FLAGS_MATCH_DMAC_SHIFT 0
#define SNIC_TUN_RULE_FLAGS_MATCH_DMAC_MASK 0x01	/* dmac is compared. */
#define SNIC_TUN_RULE_FLAGS_MATCH_ETHERTYPE_SHIFT 1
#define SNIC_TUN_RULE_FLAGS_MATCH_ETHERTYPE_MASK 0x02	/* ethertype is compared. */
#define SNIC_TUN_RULE_FLAGS_MATCH_IP_PROTO_SHIFT 2
#define SNIC_TUN_RULE_FLAGS_MATCH_IP_PROTO_MASK 0x04	/* ip_proto is compared (IPv4 protocol or IPv6 next header). */
#define SNIC_TUN_RULE_FLAGS_MATCH_L4_DPORT_SHIFT 3
#define SNIC_TUN_RULE_FLAGS_MATCH_L4_DPORT_MASK 0x08	/* dport is compared (TCP and UDP only). */

/* IOC_PUBLISH_RULES argument (in): the NIC's steering table as the driver holds it, whichever front end (`splitnic rules`, ethtool -N) changed it. */
struct snic_tun_rule_table {
	__u32 flags;	/* Reserved, must be 0. */
	__u32 count;	/* Rules at rules, 0..capacity; rule i has location i. */
	__u32 capacity;	/* Entries of the NIC's steering table, 0..RULES_MAX; 0: no steering table (ethtool -N is refused). */
	__u32 rx_queues;	/* The NIC's RX queues, 1..RX_QUEUES_MAX: an ethtool action must be below. */
	__u32 done;	/* RuleReq.seq of the last request the driver has handled (applied or refused); the module forgets the requests up to it. */
	__u32 reserved;	/* Must be 0. */
	__u64 rules;	/* In: user address of count Rule entries. */
};
#define SNIC_TUN_RULE_TABLE_SIZE 32

/* IOC_TAKE_RULE_REQ result: a change of the steering table ethtool asked for. */
struct snic_tun_rule_req {
	__u32 seq;	/* The request's number, from 1, growing; the driver reports it in RuleTable.done once handled. */
	__u32 op;	/* RULE_ADD: append the rule (its location is the table's length with the requests before it applied); RULE_DEL: remove the rule at location (the rule it had when ethtool asked: the driver refuses if the table changed). */
	__u32 location;	/* RULE_ADD: the entry ethtool was told; RULE_DEL: the entry to remove in the NIC's steering table, 0..RULES_MAX-1; the lowest matching entry wins, and removing a rule moves every later one up an entry (as `splitnic rules remove`). */
	__u32 flags;	/* Which match values are compared (Rule flags); none: every frame. */
	__u32 queue;	/* The NIC's RX queue the frames go to (ethtool's action): 0 the kernel's (this interface), 1.. a fast-path application's. */
	__u32 ethertype;	/* Ethertype, 0..0xFFFF. */
	__u32 ip_proto;	/* IP protocol, 0..255. */
	__u32 dport;	/* TCP/UDP destination port, 0..0xFFFF. */
	__u64 dmac;	/* Destination MAC address, encoded as in IfReq.mac. */
};
#define SNIC_TUN_RULE_REQ_SIZE 40
#define SNIC_TUN_RULE_REQ_FLAGS_MATCH_DMAC_SHIFT 0
#define SNIC_TUN_RULE_REQ_FLAGS_MATCH_DMAC_MASK 0x01	/* dmac is compared. */
#define SNIC_TUN_RULE_REQ_FLAGS_MATCH_ETHERTYPE_SHIFT 1
#define SNIC_TUN_RULE_REQ_FLAGS_MATCH_ETHERTYPE_MASK 0x02	/* ethertype is compared. */
#define SNIC_TUN_RULE_REQ_FLAGS_MATCH_IP_PROTO_SHIFT 2
#define SNIC_TUN_RULE_REQ_FLAGS_MATCH_IP_PROTO_MASK 0x04	/* ip_proto is compared (IPv4 protocol or IPv6 next header). */
#define SNIC_TUN_RULE_REQ_FLAGS_MATCH_L4_DPORT_SHIFT 3
#define SNIC_TUN_RULE_REQ_FLAGS_MATCH_L4_DPORT_MASK 0x08	/* dport is compared (TCP and UDP only). */

#endif /* SPLITNIC_TUNNEL_H */
