/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * GENERATED FILE - DO NOT EDIT. Made by `make generate` from spec/splitnic_spec/hostlink.py.
 * splitnic eth host link (posted-write messages), spec 2.0, hash 0xca618aed.
 *
 * Only literal #defines and plain structs, so that cffi can parse it
 * (splitnic_spec.generate.cdef strips the preprocessor guard lines).
 */
#ifndef SPLITNIC_HOSTLINK_H
#define SPLITNIC_HOSTLINK_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
#endif

#define SNIC_HL_SPEC_HASH 0xca618aed

/* Constants. */
#define SNIC_HL_ETHERTYPE 34997	/* EtherType of host-link frames (IEEE 802 Local Experimental 1). */
#define SNIC_HL_VERSION 2	/* FrameHeader.version of this protocol. */
#define SNIC_HL_OP_WRITE 1	/* Write the message's data at addr (both ways). */
#define SNIC_HL_OP_READ 2	/* Host to NIC: read words at addr; data is one ReadRequest. */
#define SNIC_HL_OP_ANSWER 3	/* NIC to host: the words a READ asked for; addr is its tag. */
#define SNIC_HL_OP_IRQ 4	/* NIC to host: the interrupt line rose; data is one word, the rises so far. */
#define SNIC_HL_OP_HELLO 5	/* Open the link (alone in a frame with flag HELLO); data is one Hello. */
#define SNIC_HL_HELLO_MAGIC 0x4c484e53	/* Hello.magic: 'SNHL' in wire order. */
#define SNIC_HL_HOST_WINDOW_BASE 0xa0000000	/* First device address of host memory: the NIC's DMA writes at HOST_WINDOW_BASE.. leave the board as WRITE messages. */
#define SNIC_HL_HOST_WINDOW_SIZE 0x10000000	/* Bytes of the host window. */
#define SNIC_HL_MTU_STANDARD 1500	/* Hello.mtu on a standard Ethernet host port. */
#define SNIC_HL_MTU_JUMBO 9000	/* Hello.mtu on a jumbo-frame host port: fewer headers per byte. */
#define SNIC_HL_MAX_MESSAGE_DATA 8972	/* Largest len of one message; a longer write is split. */
#define SNIC_HL_RESEND_US 1000	/* Microseconds without progress of acked (or without credit) before a side sends its unacknowledged frames again (or a PROBE). */
#define SNIC_HL_KEEPALIVE_MS 500	/* Host: an idle link sends a PROBE this often, so that a board that lost the session is found without traffic. */
#define SNIC_HL_LINK_TIMEOUT_MS 1500	/* Host: no frame from the board for this long: the board is reported silent (the host keeps probing and binds again when it answers). */
#define SNIC_HL_MIN_WINDOW 2	/* Smallest Hello.window: a side must buffer a frame while it takes the next. */
#define SNIC_HL_COUNTERS_BASE 0x80001000	/* Bus address of the board's BoardCounters: the host READs them like any register; writes there are ignored. */
#define SNIC_HL_COUNTERS_SIZE 64	/* Bytes of the counters window (words past BoardCounters read 0). */

/* Follows the Ethernet header of every host-link frame. */
struct snic_hl_frame_header {
	uint8_t version;	/* VERSION; a frame of another version is dropped and counted. */
	uint8_t flags;	/* Frame flags. */
	uint16_t count;	/* Messages that follow (0: the frame only carries acked and credit). */
	uint32_t seq;	/* Number of the first message (free-running per direction). */
	uint16_t frame;	/* Number of this frame (free-running per direction, every frame counts). */
	uint16_t credit;	/* The other side may send frames numbered below this (modulo 2**16). */
	uint32_t acked;	/* Number of the next message the sender expects from the other side. */
	uint32_t session;	/* The session the frame belongs to: drawn by the host for its HELLO, echoed by the board; never 0. */
};
#define SNIC_HL_FRAME_HEADER_SIZE 20
#define SNIC_HL_FRAME_HEADER_FLAGS_HELLO_SHIFT 0
#define SNIC_HL_FRAME_HEADER_FLAGS_HELLO_MASK 0x01	/* The frame opens the link: one HELLO message; sequence and frame numbers restart at 0 on both sides. */
#define SNIC_HL_FRAME_HEADER_FLAGS_NAK_SHIFT 1
#define SNIC_HL_FRAME_HEADER_FLAGS_NAK_MASK 0x02	/* The sender saw a gap (or an overrun) and dropped frames: send again from acked. */
#define SNIC_HL_FRAME_HEADER_FLAGS_ANSWER_SHIFT 2
#define SNIC_HL_FRAME_HEADER_FLAGS_ANSWER_MASK 0x04	/* With HELLO: the board's answer to the host's request of the same session. */
#define SNIC_HL_FRAME_HEADER_FLAGS_PROBE_SHIFT 3
#define SNIC_HL_FRAME_HEADER_FLAGS_PROBE_MASK 0x08	/* Answer at once with acked and credit. With HELLO: discovery only, the board answers and binds nothing. */
#define SNIC_HL_FRAME_HEADER_FLAGS_TAKEOVER_SHIFT 4
#define SNIC_HL_FRAME_HEADER_FLAGS_TAKEOVER_MASK 0x10	/* With HELLO: bind even if bound to another station. */
#define SNIC_HL_FRAME_HEADER_FLAGS_STALE_SHIFT 5
#define SNIC_HL_FRAME_HEADER_FLAGS_STALE_MASK 0x20	/* Board to host: the frame's session is not the board's (it was reset): open the link again. */
#define SNIC_HL_FRAME_HEADER_FLAGS_BOUND_SHIFT 6
#define SNIC_HL_FRAME_HEADER_FLAGS_BOUND_MASK 0x40	/* With HELLO|ANSWER: the board is bound to another station. */

/* Starts every message; len bytes of data follow. */
struct snic_hl_message_header {
	uint8_t op;	/* OP_*. */
	uint8_t seq;	/* Low 8 bits of this message's number; must match its place in the frame. */
	uint16_t len;	/* Data bytes after this header: a multiple of 4, at most MAX_MESSAGE_DATA. */
	uint32_t addr;	/* WRITE/READ: device (bus) address; ANSWER: the READ's tag; IRQ, HELLO: 0. */
};
#define SNIC_HL_MESSAGE_HEADER_SIZE 8

/* Data of a READ message. */
struct snic_hl_read_request {
	uint16_t words;	/* Words to read from addr (1..MAX_MESSAGE_DATA / 4). */
	uint16_t tag;	/* Echoed in the ANSWER's addr. */
};
#define SNIC_HL_READ_REQUEST_SIZE 4

/* Data of a HELLO message: what the sender is and can take. */
struct snic_hl_hello {
	uint32_t magic;	/* HELLO_MAGIC. */
	uint32_t spec_hash;	/* SPEC_HASH of this protocol as the sender was built; a mismatch is refused. */
	uint16_t mtu;	/* Largest frame after the Ethernet header the sender receives (>= MTU_STANDARD). */
	uint16_t window;	/* Frames the sender buffers: the other side's first credit (>= MIN_WINDOW). */
	uint32_t host_base;	/* Host: device address of its DMA memory (in the host window). Board: HOST_WINDOW_BASE. */
	uint32_t host_size;	/* Host: bytes of its DMA memory. Board: HOST_WINDOW_SIZE. */
	uint32_t local_base;	/* Board: bus address of NIC-local memory. Host: 0. */
	uint32_t local_size;	/* Board: bytes of NIC-local memory. Host: 0. */
};
#define SNIC_HL_HELLO_SIZE 28

/* The board's link counters at COUNTERS_BASE, one 32-bit word each, free-running (they wrap); a HELLO does not clear them. */
struct snic_hl_board_counters {
	uint32_t rx_frames;	/* Host-to-board frames taken: in sequence, well-formed, from the host. */
	uint32_t rx_messages;	/* Messages in those frames. */
	uint32_t malformed;	/* Frames dropped as not this protocol's: another version, a bad message number or length, a message past the frame's end, too long, a bad frame check sequence; a HELLO request without the magic, or one that would bind with another spec hash, unusable sizes or not sent to the board's own address. */
	uint32_t gaps;	/* Well-formed frames dropped because they did not start at the next expected message (a frame before them was lost): each one NAKed. */
	uint32_t bad_address;	/* Messages skipped: a span outside the windows the host may reach, a READ of a bad size, an op the host may not send. */
	uint32_t duplicates;	/* Frames that came again, wholly or partly before the next expected message (a resend): dropped, and acked again at once. */
	uint32_t overruns;	/* In-sequence frames dropped for want of a free buffer (the host sent beyond its credit). */
	uint32_t tx_frames;	/* Board-to-host frames sent. */
	uint32_t tx_messages;	/* Messages in those frames. */
	uint32_t credit_stalls;	/* Times a finished frame had to wait for the host's credit. */
	uint32_t foreign;	/* Frames dropped from another station or another session (HELLO requests of another station while bound included). */
	uint32_t resent_frames;	/* Board-to-host frames sent again (NAK or resend timer). */
	uint32_t stale;	/* Frames answered with STALE: the board had no session with their sender. */
};
#define SNIC_HL_BOARD_COUNTERS_SIZE 52

#endif /* SPLITNIC_HOSTLINK_H */
