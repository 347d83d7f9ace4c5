/*
 * The host side of the `eth` host link, protocol v2: posted-write messages
 * over raw Ethernet frames (AF_PACKET, a TPACKET_V2 receive ring), sessions,
 * go-back-N both ways, probes and a credit rule that cannot deadlock.
 *
 * Ref: spec/splitnic_spec/hostlink.py (the contract: frame and message
 * headers, sessions, sequence numbers, acked, credit, NAK, PROBE, STALE,
 * HELLO); every layout and constant comes from the generated hostlink_spec.h.
 * Built by cffi in API mode (hostdrv/splitnic/_hostlink_build.py) into
 * splitnic._hostlink_cffi; hostdrv/splitnic/hostlink_port.py is its Python
 * face.
 *
 * Sessions.  hl_hello finds the board (a broadcast HELLO with flag PROBE:
 * every board answers, none binds), refuses a choice it cannot make (several
 * boards and none named, a board bound to another host without TAKEOVER),
 * then binds it with a unicast HELLO.  Each HELLO request draws a random,
 * non-zero session (getrandom); every frame we send carries it, and a frame
 * from the board with another session is foreign.  A STALE from the board
 * with our session means it was reset: the receive thread binds again by
 * itself (a unicast HELLO, a new session), renumbers what the driver queued
 * meanwhile, counts a re-attach and wakes the driver (a byte on the irq
 * socket), which re-arms the NIC (hostdrv/splitnic/link_eth.py).  It binds
 * again the same way when the board talks but for LINK_TIMEOUT_MS never agrees
 * with our numbering (a board reset while a copy of our HELLO was on its way
 * binds again in our very session from 0, and no STALE comes: see timer).
 *
 * Threads.  The receive thread (started by hl_hello) owns the ring and the
 * NIC->host numbering; it sleeps in ppoll() until a frame arrives or one of
 * its timers is due (resend, keepalive, a re-attach HELLO, silence).  The
 * driver's thread calls hl_write / hl_flush / hl_read.  Everything both touch
 * (the host->NIC numbering, the replay buffer, credit, a pending read, the
 * session) is under `mu`; the receive thread takes it once per burst of
 * frames, not per message.
 *
 * Board -> host.  The board keeps what it sent in a replay buffer until our
 * acked passes it, so a loss costs a resend, never the session: a frame that
 * starts after the next expected message is dropped (counted) with every later
 * one until the expected message comes again, and the next frame we send
 * carries NAK (once per gap); the leading messages of a frame that we already
 * have are skipped (a duplicate, acknowledged again at once).  Its replay
 * buffer is a few frames, so every receive burst that took messages ends with
 * an acknowledgement: a frame of ours that carries acked, or one of no
 * messages.
 *
 * Host -> board.  Frames wait in our replay slots until the board's acked
 * passes them; NAK or a resend period without progress sends them again from
 * acked (go-back-N, new frame numbers).  Our grant is next_frame + free
 * (spec); the board's credit is taken only when newer.  With frames waiting
 * and no progress for a resend period we send a PROBE (a frame of no
 * messages), which the board answers at once with room past every frame we
 * numbered: credit cannot stay at zero.  An idle link probes every
 * KEEPALIVE_MS; nothing from the board for LINK_TIMEOUT_MS is "board silent"
 * (counted, hl_silent) while we keep probing.
 *
 * Per-message cost on the receive path: header checks, a bounds check and a
 * memcpy into the registered memory.  No syscall and no allocation per
 * message or per frame: the receive thread takes every frame the ring holds
 * before it sleeps again, and applies the board's acked and credit once per
 * such burst; replay slots are allocated once at hello.
 *
 * Ordering.  The driver polls completions in the registered memory for a
 * PHASE flip and then reads the frame the completion describes.  The board
 * sends the frame data before the completion, and we apply messages only in
 * sequence order with a release fence after each WRITE: no later write (the
 * PHASE word) becomes visible before an earlier one, and none after a gap.
 * On x86-64 (TSO) the fence is only a compiler barrier.
 *
 * Latency.  The ring is TPACKET_V2: the kernel hands over each frame as it
 * arrives.  TPACKET_V3 hands over a block of frames when the block is full
 * or its retire timer (1 ms at least) expires; whenever the board had little
 * to send, that kept its credit from us for up to the millisecond.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hostlink_spec.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the host link's headers are little-endian and are read in place; port the loads first"
#endif

/* cdef-begin: this block is handed to cffi's cdef() by _hostlink_build.py. */

/* Counters, each only ever increasing; read from Python without a lock
 * (aligned 64-bit loads are atomic on the platforms we run on). */
struct hl_counters {
	uint64_t frames_in;      /* board frames of our session taken (messages applied, or none to apply) */
	uint64_t messages_in;    /* messages applied */
	uint64_t frames_out;     /* frames sent, resent ones, probes and acknowledgements included */
	uint64_t messages_out;
	uint64_t foreign;        /* our EtherType from another station, or another session, or a stray HELLO */
	uint64_t malformed;      /* bad version, lengths, message numbers or op; an acked past what we sent */
	uint64_t bad_address;    /* WRITEs that leave the registered memory: dropped */
	uint64_t gaps;           /* board frames dropped because they started after the next expected message */
	uint64_t naks_sent;      /* gaps we asked the board to resend (one NAK per gap) */
	uint64_t duplicates;     /* board frames that started before the next expected message (a replay) */
	uint64_t naks;           /* board frames with flag NAK */
	uint64_t resent_frames;
	uint64_t probes_sent;    /* PROBEs: work pending and no progress, or an idle link's keepalive */
	uint64_t probes_in;      /* PROBEs from the board, answered at once */
	uint64_t irqs;
	uint64_t credit_waits;   /* times a sender had to wait for the board's credit */
	uint64_t send_errors;    /* send() failures (treated as frames lost on the cable) */
	uint64_t ring_drops;     /* frames the kernel dropped for want of room in our ring */
	uint64_t short_answers;  /* READ answers with fewer (or more) words than asked: the read fails */
	uint64_t stale;          /* STALE frames with our session: the board was reset */
	uint64_t reattaches;     /* sessions bound again by the receive thread after a STALE */
	uint64_t silences;       /* times nothing came from the board for LINK_TIMEOUT_MS */
};

/* What the board said in its HELLO answer. */
struct hl_board {
	uint8_t mac[6];
	uint16_t mtu;
	uint16_t window;
	uint32_t host_base;
	uint32_t host_size;
	uint32_t local_base;
	uint32_t local_size;
	uint32_t spec_hash;
	uint32_t session;
};

struct hl;

struct hl *hl_open(const char *ifname, uint8_t *mem, uint64_t mem_base, uint64_t mem_size,
		   uint32_t mtu, uint32_t ring_frames, int irq_fd, uint32_t credit_timeout_ms,
		   char *err, size_t errlen);
/* Find and bind a board: `want` (6 bytes) names it, NULL takes the only one that answers;
 * `takeover` binds it even if it is bound to another station. */
int hl_hello(struct hl *h, uint32_t timeout_ms, const uint8_t *want, int takeover, struct hl_board *out,
	     char *err, size_t errlen);
int hl_write(struct hl *h, uint32_t addr, const uint8_t *data, size_t len, char *err, size_t errlen);
/* n writes in one call, named by device address and size as the driver's rings sync them
 * (a TX burst: frames and their descriptors).  A span in the mirror of NIC-local memory
 * (mirror_base..+mirror_len) goes as whole words from the mirror at the same offset; a span
 * in the skip window (host memory: the board writes it) is passed over; any other refuses
 * the call before anything is sent. */
int hl_write_mirror_spans(struct hl *h, uint32_t n, const uint64_t *addrs, const uint32_t *sizes,
			  const uint8_t *mirror, uint64_t mirror_base, size_t mirror_len,
			  uint64_t skip_base, uint64_t skip_len, char *err, size_t errlen);
int hl_flush(struct hl *h, char *err, size_t errlen);
/* `resume`: the caller tries a read again that timed out: if that read's READ is still on
 * its way (no re-attach dropped it), wait for its answer rather than send another. */
int hl_read(struct hl *h, uint32_t addr, uint32_t words, uint32_t *out, uint32_t timeout_ms,
	    int resume, char *err, size_t errlen);
/* The session (0: none), re-attaching (a STALE came, the new HELLO is unanswered),
 * and board silent (nothing from it for LINK_TIMEOUT_MS). */
uint32_t hl_session(struct hl *h);
int hl_reattaching(struct hl *h);
int hl_silent(struct hl *h);
/* The board talks but has not agreed with our numbering for longer than a keepalive
 * period: the host binds it again at LINK_TIMEOUT_MS (see timer). */
int hl_out_of_step(struct hl *h);
uint32_t hl_window(struct hl *h);
uint32_t hl_mtu(struct hl *h);
const struct hl_counters *hl_counters(struct hl *h);
void hl_close(struct hl *h);

/* Test and bench helpers: run frames (Ethernet frames, `lens[i]` bytes each,
 * back to back in `frames`) through the receive path as if they came from the
 * ring, `per_block` at a time; send raw Ethernet frames with sendmmsg; make
 * the next `n` send() calls fail as if the socket refused them. */
int hl_receive_frames(struct hl *h, const uint8_t *frames, const uint32_t *lens, uint32_t n,
		      uint32_t per_block);
int hl_send_raw(struct hl *h, const uint8_t *frames, const uint32_t *lens, uint32_t n);
void hl_fail_sends(struct hl *h, uint32_t n);

/* cdef-end */

#define ETH_HDR 14
#define FH_SIZE SNIC_HL_FRAME_HEADER_SIZE
#define MH_SIZE SNIC_HL_MESSAGE_HEADER_SIZE
#define HELLO_REPEAT_MS 250
/* After the first answer to a discovery HELLO, how long other boards may take to answer too. */
#define DISCOVERY_SETTLE_MS 100
#define MAX_DISCOVERED 8
#define MAX_REPLAY_SLOTS 4096
/* Largest window a HELLO may offer: credit compares numbers modulo 2**16. */
#define MAX_WINDOW 0x4000

#define F_HELLO SNIC_HL_FRAME_HEADER_FLAGS_HELLO_MASK
#define F_NAK SNIC_HL_FRAME_HEADER_FLAGS_NAK_MASK
#define F_ANSWER SNIC_HL_FRAME_HEADER_FLAGS_ANSWER_MASK
#define F_PROBE SNIC_HL_FRAME_HEADER_FLAGS_PROBE_MASK
#define F_TAKEOVER SNIC_HL_FRAME_HEADER_FLAGS_TAKEOVER_MASK
#define F_STALE SNIC_HL_FRAME_HEADER_FLAGS_STALE_MASK
#define F_BOUND SNIC_HL_FRAME_HEADER_FLAGS_BOUND_MASK

/* A frame with messages, kept from building until the board's acked passes it. */
struct hl_slot {
	uint8_t *buf;       /* Ethernet header, FrameHeader, messages */
	uint32_t len;       /* bytes used in buf */
	uint32_t seq;       /* number of its first message */
	uint16_t count;
	uint16_t sent;      /* times transmitted */
	uint64_t sent_ns;   /* when first transmitted: a round-trip sample when acked (if sent once) */
};

struct hl {
	int sock, kick_fd, irq_fd;
	char ifname[IF_NAMESIZE];
	uint8_t my_mac[6], board_mac[6];
	uint32_t mtu;                   /* ours: largest frame after the Ethernet header we take */
	uint32_t window;                /* ours: the frames we grant beyond next_frame (see hl_open) */
	uint8_t *ring;
	size_t ring_size;
	uint32_t frame_size, frame_nr, frames_per_block, block_size, cur_frame;
	uint8_t *mem;
	uint64_t mem_base, mem_size;
	uint32_t credit_timeout_ms;
	struct hl_board board;
	uint32_t tx_mtu;                /* min(ours, the board's) */
	int hello_done;

	/* Receive thread only. */
	uint32_t rx_expected;           /* next NIC->host message number */
	uint16_t rx_next;               /* next_frame (spec): newest one-past-numbered or empty frame's number */
	int in_gap;                     /* frames are being dropped until rx_expected comes again */

	/* Under mu (the receive thread reads session without it: only it and hl_hello write it). */
	pthread_mutex_t mu, read_mu;
	pthread_cond_t cond;
	uint32_t session;               /* the bound session; every frame we send carries it */
	uint32_t pending_session;       /* re-attaching: the session of our unanswered HELLO (else 0) */
	uint64_t next_hello_ns;         /* re-attaching: when to send that HELLO again */
	uint32_t sh_rx_expected;        /* the receive thread's view, for acked in our frames */
	uint16_t sh_grant;              /* credit we grant: rx_next + window */
	uint32_t last_acked_sent;       /* acked and credit of the last frame that left */
	uint16_t last_grant_sent;
	int nak_due;                    /* a gap began: the next frame we send carries NAK */
	int ctl_due;                    /* a frame of no messages is owed (an answer whose send failed) */
	uint32_t tx_seq;                /* next host->NIC message number */
	uint16_t tx_frame;              /* next frame number */
	uint16_t tx_credit;             /* the board lets us send frames numbered below this */
	uint32_t tx_acked;
	uint32_t tx_sent_end;           /* one past the newest message ever sent: acked cannot pass it */
	struct hl_slot *slots;
	uint8_t *slot_mem;
	uint32_t nslots;
	uint32_t head, send_next, built_tail; /* acked < head <= send_next <= built_tail (free-running) */
	int building;                   /* slots[built_tail] is being filled */
	uint64_t last_progress_ns;      /* last change of acked (or resend, or probe) */
	uint64_t last_tx_ns, last_rx_ns; /* our last frame sent, the board's last frame of our session */
	uint64_t agree_ns;              /* the board's last frame that agreed with our numbering (see timer) */
	int disagreed;                  /* since then, one that did not (see end_burst) */
	int probe_due;                  /* the resend timer ran out: the first frame sent again carries PROBE */
	int starved;                    /* frames wait for credit with none in flight (see pump) */
	int silent;
	uint64_t srtt_ns;               /* smoothed round trip, first sending to acked; 0: no sample yet */
	uint32_t backoff;               /* resend periods doubled since the last sample (Karn) */
	uint64_t nak_ns;
	uint32_t nak_acked;
	uint64_t rx_wake_ns;            /* the receive thread sleeps until then (0: it is awake) */
	uint32_t fail_sends;            /* test helper: send() calls still to fail */
	uint16_t read_tag;
	int read_pending, read_done;
	int read_lost;                  /* a re-attach dropped the pending read's frame or its answer */
	uint32_t read_words, read_got;  /* words asked, words the answer carried */
	uint32_t read_addr;
	/* The answer lands here, not in the caller's memory: a read that timed out
	 * stays pending (its READ is on its way) and a retry may take its answer. */
	uint32_t read_buf[SNIC_HL_MAX_MESSAGE_DATA / 4];

	pthread_t thread;
	int running;
	volatile int stopping;
	uint8_t ctl[ETH_HDR + FH_SIZE + MH_SIZE + SNIC_HL_HELLO_SIZE];
	struct hl_counters c;
};

/* Ordered stores into the registered memory (see "Ordering" above). */
#define hl_release() __atomic_thread_fence(__ATOMIC_RELEASE)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int after32(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static int after16(uint16_t a, uint16_t b) { return (int16_t)(uint16_t)(a - b) > 0; }

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static void deadline_ts(struct timespec *ts, uint64_t deadline)
{
	ts->tv_sec = deadline / 1000000000u;
	ts->tv_nsec = deadline % 1000000000u;
}

/* Wait on cond until `deadline` (monotonic ns); 0 when woken, ETIMEDOUT after. */
static int wait_until(struct hl *h, uint64_t deadline)
{
	struct timespec ts;
	deadline_ts(&ts, deadline);
	return pthread_cond_timedwait(&h->cond, &h->mu, &ts);
}

static void fill_eth(struct hl *h, uint8_t *p, const uint8_t *dst)
{
	memcpy(p, dst, 6);
	memcpy(p + 6, h->my_mac, 6);
	p[12] = SNIC_HL_ETHERTYPE >> 8;
	p[13] = SNIC_HL_ETHERTYPE & 0xff;
}

static void format_mac(char *out, const uint8_t *mac)
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

/* A random, non-zero session, not `avoid` (the one it replaces). */
static uint32_t new_session(uint32_t avoid)
{
	uint32_t s = 0;
	while (!s || s == avoid) {
		if (getrandom(&s, sizeof(s), 0) != sizeof(s))
			s = (uint32_t)now_ns() * 2654435761u;   /* no entropy yet: still unlike the last one */
	}
	return s;
}

/* send() that the test helper can make fail; 0 when the frame left. */
static int send_frame(struct hl *h, const void *buf, size_t len)
{
	if (h->fail_sends) {
		h->fail_sends--;
		h->c.send_errors++;
		return -1;
	}
	if (send(h->sock, buf, len, MSG_DONTWAIT) < 0) {
		h->c.send_errors++;
		return -1;
	}
	return 0;
}

static void wake_driver(struct hl *h)
{
	if (h->irq_fd >= 0)
		(void)!write(h->irq_fd, "\1", 1);  /* full socket: the driver is awake anyway */
}

/* ------------------------------------------------------------------------ */
/* Transmit side (mu held). */

static int can_send(struct hl *h) { return !h->pending_session && after16(h->tx_credit, h->tx_frame); }

/* How long acked may stand still before we go back: the spec's RESEND_US, or
 * twice the smoothed round trip where the board answers more slowly (the
 * simulated SoC runs about 200 000 cycles a second: a full frame takes it
 * 7 ms), doubled for each time the timer fired since the last sample, up to
 * a second.  A fixed RESEND_US there sent the same frames again and again
 * while the board was still taking the first ones.  Only a frame sent once
 * gives a sample, so without the doubling a board slower than RESEND_US
 * would never be measured. */
static uint64_t resend_period(const struct hl *h)
{
	uint64_t period = 2 * h->srtt_ns, least = SNIC_HL_RESEND_US * 1000ull, most = 1000000000ull;
	period = (period < least ? least : period) << h->backoff;
	return period > most ? most : period;
}

/* The fields every frame we send carries as it leaves; records what left. */
static int transmit(struct hl *h, uint8_t *buf, uint32_t len, uint16_t count, uint8_t flags)
{
	struct snic_hl_frame_header *fh = (void *)(buf + ETH_HDR);
	if (h->nak_due)
		flags |= F_NAK;
	fh->flags = flags;
	fh->frame = count ? h->tx_frame++ : h->tx_frame;  /* a frame of no messages is not numbered */
	fh->credit = h->sh_grant;
	fh->acked = h->sh_rx_expected;
	fh->session = h->session;
	h->c.frames_out++;
	h->c.messages_out += count;
	/* A frame that did not leave carried nothing: its grant, ack and NAK are owed still. */
	if (send_frame(h, buf, len))
		return -1;
	h->last_grant_sent = h->sh_grant;
	h->last_acked_sent = h->sh_rx_expected;
	h->last_tx_ns = now_ns();
	if (flags & F_NAK) {
		h->nak_due = 0;
		h->c.naks_sent++;
	}
	return 0;
}

/* Work is pending where none was: the resend period starts now, and a
 * receive thread asleep for longer (until the next keepalive) must wake to
 * keep it. */
static void start_period(struct hl *h)
{
	uint64_t now = now_ns();
	h->last_progress_ns = now;
	if (h->rx_wake_ns > now + resend_period(h)) {
		uint64_t one = 1;
		h->rx_wake_ns = 0;
		(void)!write(h->kick_fd, &one, sizeof(one));
	}
}

/* Send the built frames the credit allows, oldest first. */
static void pump(struct hl *h)
{
	while (h->send_next != h->built_tail && can_send(h)) {
		struct hl_slot *s = &h->slots[h->send_next % h->nslots];
		if (h->head == h->send_next)
			start_period(h);        /* the first unacknowledged frame */
		h->starved = 0;
		if (s->sent++) {
			h->c.resent_frames++;
		} else {
			s->sent_ns = now_ns();
			h->tx_sent_end = s->seq + s->count;
		}
		uint8_t flags = 0;
		if (h->probe_due) {
			flags = F_PROBE;
			h->probe_due = 0;
			h->c.probes_sent++;
		}
		transmit(h, s->buf, s->len, s->count, flags);
		h->send_next++;
	}
	/* Frames wait for credit and none is in flight (the board acknowledged
	 * all, its next grant lost or not sent yet): the PROBE for credit is due a
	 * resend period from now, not at the next keepalive. */
	if (h->send_next != h->built_tail && h->head == h->send_next && !h->pending_session && !h->starved) {
		h->starved = 1;
		start_period(h);
	}
}

/* The next message we will send: a frame waiting for credit holds it, else
 * the one being built, else none is started.  A larger seq would look like a
 * gap to the board. */
static uint32_t next_message(struct hl *h)
{
	return h->send_next != h->built_tail ? h->slots[h->send_next % h->nslots].seq
		: h->building ? h->slots[h->built_tail % h->nslots].seq : h->tx_seq;
}

/* A frame of no messages: acked, credit, NAK if due, and `flags` (PROBE).
 * Not numbered and outside the credit (spec): it must get through when both
 * sides have used their credit, or neither could ever grant again. */
static int send_ctl(struct hl *h, uint8_t flags)
{
	uint8_t buf[ETH_HDR + FH_SIZE];
	struct snic_hl_frame_header *fh = (void *)(buf + ETH_HDR);
	fill_eth(h, buf, h->board_mac);
	memset(fh, 0, sizeof(*fh));
	fh->version = SNIC_HL_VERSION;
	fh->seq = next_message(h);
	if (flags & F_PROBE)
		h->c.probes_sent++;
	int rc = transmit(h, buf, sizeof(buf), 0, flags);
	h->ctl_due = rc != 0;
	return rc;
}

/* The board's acked and credit (the newest of a burst). */
static void take_ack(struct hl *h, uint32_t acked, uint16_t credit)
{
	/* Grants only grow: a late or duplicated frame cannot take credit back. */
	if (after16(credit, h->tx_credit))
		h->tx_credit = credit;
	if (!after32(acked, h->tx_acked))
		return;
	if (after32(acked, h->tx_sent_end)) {
		/* Past every message we sent: not the board's acknowledgement of
		 * anything (a board bug, a frame its FCS let through).  Taken, it
		 * would free frames never sent and put tx_acked ahead of every later
		 * acknowledgement, so no slot would ever be freed again. */
		h->c.malformed++;
		return;
	}
	h->tx_acked = acked;
	uint64_t now = now_ns();
	h->last_progress_ns = now;
	/* Free every frame acked passed, sent again or not yet: after a go-back,
	 * the board may acknowledge frames of the first sending that we have not
	 * sent again, and those must not be sent (or kept) any more. */
	struct hl_slot *newest = NULL;
	while (h->head != h->built_tail) {
		struct hl_slot *s = &h->slots[h->head % h->nslots];
		if (after32(s->seq + s->count, acked))
			break;
		newest = s;
		h->head++;
	}
	/* A round-trip sample from the newest frame freed, if it was sent once
	 * (a resent frame's ack may answer either sending). */
	if (newest && newest->sent == 1) {
		uint64_t sample = now - newest->sent_ns;
		h->srtt_ns = h->srtt_ns ? h->srtt_ns - h->srtt_ns / 8 + sample / 8 : sample;
		h->backoff = 0;
	}
	if ((int32_t)(h->head - h->send_next) > 0)
		h->send_next = h->head;
}

/* Go-back-N: send everything from acked again (new frame numbers, same
 * message numbers).  A frame the board took in part is trimmed to start at
 * acked, so the board never sees a message twice from us. */
static void go_back(struct hl *h)
{
	if (h->head == h->send_next)
		return;
	struct hl_slot *s = &h->slots[h->head % h->nslots];
	if (after32(h->tx_acked, s->seq)) {
		uint32_t skip = h->tx_acked - s->seq, pos = ETH_HDR + FH_SIZE;
		for (uint32_t i = 0; i < skip; i++)
			pos += MH_SIZE + ((struct snic_hl_message_header *)(s->buf + pos))->len;

		memmove(s->buf + ETH_HDR + FH_SIZE, s->buf + pos, s->len - pos);
		s->len -= pos - (ETH_HDR + FH_SIZE);
		s->count -= skip;
		s->seq = h->tx_acked;
		struct snic_hl_frame_header *fh = (void *)(s->buf + ETH_HDR);
		fh->count = s->count;
		fh->seq = s->seq;
	}
	h->send_next = h->head;
	h->last_progress_ns = now_ns();
	pump(h);
}

static int no_credit(struct hl *h, char *err, size_t errlen)
{
	if (!h->pending_session && after32(h->tx_sent_end, h->tx_acked))
		return fail(err, errlen, "no acknowledgement from the board over eth:%s within %u ms (%u frames "
			    "unacknowledged or waiting)%s; is the board still running and cabled?", h->ifname,
			    h->credit_timeout_ms, h->built_tail - h->head, h->silent ? ", and it answers no probe" : "");
	if (h->pending_session)
		return fail(err, errlen, "the board on eth:%s was reset and has not answered our HELLO for %u ms "
			    "(%u frames waiting); is it still powered and cabled?", h->ifname, h->credit_timeout_ms,
			    h->built_tail - h->send_next);
	return fail(err, errlen, "the board grants no credit: over eth:%s for %u ms it let us send only "
		    "frames below %u (next %u, %u frames waiting)%s; is the board still running and cabled?",
		    h->ifname, h->credit_timeout_ms, (unsigned)h->tx_credit, (unsigned)h->tx_frame,
		    h->built_tail - h->send_next, h->silent ? ", and it answers no probe" : "");
}

/* Start filling a frame, waiting for a free replay slot. */
static int start_frame(struct hl *h, uint64_t deadline, char *err, size_t errlen)
{
	if (h->building)
		return 0;
	int waited = 0;
	while (h->built_tail - h->head >= h->nslots) {
		if (!waited++)
			h->c.credit_waits++;
		if (wait_until(h, deadline) == ETIMEDOUT && h->built_tail - h->head >= h->nslots)
			return no_credit(h, err, errlen);
	}
	struct hl_slot *s = &h->slots[h->built_tail % h->nslots];
	struct snic_hl_frame_header *fh = (void *)(s->buf + ETH_HDR);
	fill_eth(h, s->buf, h->board_mac);
	memset(fh, 0, sizeof(*fh));
	fh->version = SNIC_HL_VERSION;
	fh->seq = h->tx_seq;
	s->seq = h->tx_seq;
	s->count = 0;
	s->sent = 0;
	s->len = ETH_HDR + FH_SIZE;
	h->building = 1;
	return 0;
}

/* Close the frame being built and wait until the credit let it (and every
 * frame before it) leave. */
static int finish_frame(struct hl *h, uint64_t deadline, char *err, size_t errlen)
{
	if (!h->building)
		return 0;
	h->building = 0;
	h->built_tail++;
	pump(h);
	int waited = 0;
	while (h->send_next != h->built_tail) {
		if (!waited++)
			h->c.credit_waits++;
		if (wait_until(h, deadline) == ETIMEDOUT && h->send_next != h->built_tail)
			return no_credit(h, err, errlen);
	}
	return 0;
}

/* Bytes of data a message may still carry in the frame being built. */
static uint32_t room(struct hl *h)
{
	uint32_t used = h->slots[h->built_tail % h->nslots].len - ETH_HDR + MH_SIZE;
	uint32_t r = used >= h->tx_mtu ? 0 : (h->tx_mtu - used) & ~3u;
	return r > SNIC_HL_MAX_MESSAGE_DATA ? SNIC_HL_MAX_MESSAGE_DATA : r;
}

static void append(struct hl *h, uint8_t op, uint32_t addr, const void *data, uint32_t len)
{
	struct hl_slot *s = &h->slots[h->built_tail % h->nslots];
	struct snic_hl_message_header *mh = (void *)(s->buf + s->len);
	mh->op = op;
	mh->seq = (uint8_t)h->tx_seq++;
	mh->len = len;
	mh->addr = addr;
	memcpy(s->buf + s->len + MH_SIZE, data, len);
	s->len += MH_SIZE + len;
	s->count++;
	((struct snic_hl_frame_header *)(s->buf + ETH_HDR))->count = s->count;
}

/* Append one message of `len` bytes (whole, not split) to a frame with room. */
static int append_whole(struct hl *h, uint8_t op, uint32_t addr, const void *data, uint32_t len,
			uint64_t deadline, char *err, size_t errlen)
{
	if (start_frame(h, deadline, err, errlen))
		return -1;
	if (room(h) < len) {
		if (finish_frame(h, deadline, err, errlen) || start_frame(h, deadline, err, errlen))
			return -1;
	}
	append(h, op, addr, data, len);
	return 0;
}

static int need_hello(struct hl *h, char *err, size_t errlen)
{
	return h->hello_done ? 0 : fail(err, errlen, "the host link on %s is not open: call hello() first",
					h->ifname);
}

/* One write into the frames being built (mu held). */
static int write_locked(struct hl *h, uint32_t addr, const uint8_t *data, size_t len, uint64_t deadline,
			char *err, size_t errlen)
{
	if (len % 4)
		return fail(err, errlen, "a host-link write is whole 32-bit words: %zu bytes at %#x is not a "
			    "multiple of 4; pad it", len, addr);
	if (addr + (uint64_t)len > 1ull << 32)
		return fail(err, errlen, "a write of %zu bytes at %#x runs past the 32-bit bus", len, addr);
	int rc = 0;
	while (len) {
		if ((rc = start_frame(h, deadline, err, errlen)))
			break;
		uint32_t r = room(h);
		/* Split a long write at the frame's room; a short one (a completion,
		 * a doorbell) goes whole into the next frame instead. */
		if (len <= r || r >= 64) {
			uint32_t chunk = len < r ? (uint32_t)len : r;
			append(h, SNIC_HL_OP_WRITE, addr, data, chunk);
			addr += chunk;
			data += chunk;
			len -= chunk;
		}
		if (room(h) < 4 || len) {
			if ((rc = finish_frame(h, deadline, err, errlen)))
				break;
		}
	}
	return rc;
}

int hl_write(struct hl *h, uint32_t addr, const uint8_t *data, size_t len, char *err, size_t errlen)
{
	if (need_hello(h, err, errlen))
		return -1;
	uint64_t deadline = now_ns() + (uint64_t)h->credit_timeout_ms * 1000000u;
	pthread_mutex_lock(&h->mu);
	int rc = write_locked(h, addr, data, len, deadline, err, errlen);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

int hl_write_mirror_spans(struct hl *h, uint32_t n, const uint64_t *addrs, const uint32_t *sizes,
			  const uint8_t *mirror, uint64_t mirror_base, size_t mirror_len,
			  uint64_t skip_base, uint64_t skip_len, char *err, size_t errlen)
{
	uint64_t mirror_end = mirror_base + mirror_len;

	if (need_hello(h, err, errlen))
		return -1;
	if (mirror_end > 1ull << 32)
		return fail(err, errlen, "NIC-local memory %#llx+%#zx runs past the 32-bit bus",
			    (unsigned long long)mirror_base, mirror_len);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t a = addrs[i];

		if (a >= mirror_base && a < mirror_end) {
			if (a + sizes[i] > mirror_end)
				return fail(err, errlen, "span %#llx+%u is outside the DMA memory %#llx+%#zx",
					    (unsigned long long)a, sizes[i], (unsigned long long)mirror_base,
					    mirror_len);
		} else if (a - skip_base >= skip_len) {
			return fail(err, errlen, "device address %#llx is in neither the host memory nor the "
				    "NIC-local memory", (unsigned long long)a);
		}
	}
	uint64_t deadline = now_ns() + (uint64_t)h->credit_timeout_ms * 1000000u;
	int rc = 0;
	pthread_mutex_lock(&h->mu);
	for (uint32_t i = 0; i < n && !rc; i++) {
		uint64_t a = addrs[i];

		if (a < mirror_base || a >= mirror_end || !sizes[i])
			continue;
		/* Whole words: the board's memory and the messages move 32-bit words. */
		uint64_t start = a & ~3ull, end = (a + sizes[i] + 3) & ~3ull;

		if (end > mirror_end)
			end = mirror_end;
		rc = write_locked(h, (uint32_t)start, mirror + (start - mirror_base), end - start, deadline,
				  err, errlen);
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

int hl_flush(struct hl *h, char *err, size_t errlen)
{
	if (need_hello(h, err, errlen))
		return -1;
	uint64_t deadline = now_ns() + (uint64_t)h->credit_timeout_ms * 1000000u;
	pthread_mutex_lock(&h->mu);
	int rc = finish_frame(h, deadline, err, errlen);
	if (!rc) {
		/* Also wait out frames queued by an earlier call that timed out. */
		pump(h);
		while (h->send_next != h->built_tail)
			if (wait_until(h, deadline) == ETIMEDOUT && h->send_next != h->built_tail) {
				rc = no_credit(h, err, errlen);
				break;
			}
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

/* A read is sent once per session: the link resends its frame until the
 * board acknowledges it, and the board's answer comes back the same way.  A
 * re-attach loses both if the read was queued before it began, so that read
 * is sent again in the new session; one queued while it runs is kept and goes
 * once (twice, a read-to-clear register would lose what the first read took). */
int hl_read(struct hl *h, uint32_t addr, uint32_t words, uint32_t *out, uint32_t timeout_ms,
	    int resume, char *err, size_t errlen)
{
	if (need_hello(h, err, errlen))
		return -1;
	if (!words || words > SNIC_HL_MAX_MESSAGE_DATA / 4)
		return fail(err, errlen, "a host-link read is 1..%u words, not %u", SNIC_HL_MAX_MESSAGE_DATA / 4,
			    words);
	int rc = -1, sends = 0;
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
	pthread_mutex_lock(&h->read_mu);        /* one read in flight */
	pthread_mutex_lock(&h->mu);
	/* A read tried again whose READ is still on its way (sent again until
	 * acknowledged): its answer is this read's.  A second READ would reach
	 * the board too, and a read-to-clear register would lose what the first
	 * took. */
	int adopt = resume && h->read_pending && !h->read_lost && h->read_addr == addr && h->read_words == words;
	if (!adopt)
		h->read_done = 0;
	while (!h->read_done) {
		if (!adopt) {
			struct snic_hl_read_request req = { .words = words, .tag = ++h->read_tag };
			h->read_pending = 1;
			h->read_lost = 0;
			h->read_words = words;
			h->read_addr = addr;
			sends++;
			if (append_whole(h, SNIC_HL_OP_READ, addr, &req, sizeof(req), deadline, err, errlen)) {
				h->read_pending = 0;    /* not queued: nothing to wait for */
				goto out;
			}
			if (finish_frame(h, deadline, err, errlen))
				goto out;               /* queued: it stays pending for a retry */
		}
		adopt = 0;
		while (!h->read_done && !h->read_lost)
			if (wait_until(h, deadline) == ETIMEDOUT)
				break;
		if (!h->read_done && now_ns() >= deadline)
			break;
	}
	if (!h->read_done) {
		fail(err, errlen, "no answer from the board over eth:%s within %.1f s (a read of %u words at %#x%s); "
		     "is it powered, flashed and cabled?", h->ifname, timeout_ms / 1000.0, words, addr,
		     h->silent ? ", and it answers no probe" : sends > 1 ? ", sent again after a re-attach" : "");
		goto out;                       /* its READ stays pending for a retry */
	}
	if (h->read_got != words)
		fail(err, errlen, "the board answered a read of %u words at %#x over eth:%s with %u words; "
		     "nothing of it is used", words, addr, h->ifname, h->read_got);
	else
		rc = 0;
	if (!rc)
		memcpy(out, h->read_buf, (size_t)words * 4);
	h->read_pending = 0;
out:
	pthread_mutex_unlock(&h->mu);
	pthread_mutex_unlock(&h->read_mu);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* The board's Hello: each field checked before any is used. */

/* The board's HELLO answer in `p` (after the Ethernet header), from `mac`:
 * 1 (board filled) if it is a well-formed one, 0 if it is not a HELLO answer
 * at all, -1 (err set) if it is one we must refuse. */
static int parse_answer(struct hl *h, const uint8_t *mac, const uint8_t *p, uint32_t len,
			struct hl_board *board, char *err, size_t errlen)
{
	const struct snic_hl_frame_header *fh = (const void *)p;
	const struct snic_hl_message_header *mh = (const void *)(p + FH_SIZE);
	const struct snic_hl_hello *hello = (const void *)(p + FH_SIZE + MH_SIZE);
	if (len < FH_SIZE + MH_SIZE + SNIC_HL_HELLO_SIZE || fh->version != SNIC_HL_VERSION ||
	    (fh->flags & (F_HELLO | F_ANSWER)) != (F_HELLO | F_ANSWER) || fh->count != 1 ||
	    mh->op != SNIC_HL_OP_HELLO || mh->len < SNIC_HL_HELLO_SIZE)
		return 0;
	char name[18];
	format_mac(name, mac);
	if (hello->magic != SNIC_HL_HELLO_MAGIC)
		return fail(err, errlen, "the board %s on %s answered HELLO with magic %#x, not %#x: it does not "
			    "speak the splitnic host link; flash the splitnic bitstream", name, h->ifname,
			    hello->magic, SNIC_HL_HELLO_MAGIC);
	if (hello->spec_hash != SNIC_HL_SPEC_HASH)
		return fail(err, errlen, "the board %s on %s speaks host-link spec %#010x, this driver %#010x: "
			    "rebuild the older side", name, h->ifname, hello->spec_hash, SNIC_HL_SPEC_HASH);
	if (hello->mtu < SNIC_HL_MTU_STANDARD || hello->mtu > SNIC_HL_MTU_JUMBO)
		return fail(err, errlen, "the board %s on %s offers mtu %u; the host link needs %u..%u: its "
			    "gateware is broken", name, h->ifname, hello->mtu, SNIC_HL_MTU_STANDARD,
			    SNIC_HL_MTU_JUMBO);
	if (hello->window < SNIC_HL_MIN_WINDOW || hello->window > MAX_WINDOW)
		return fail(err, errlen, "the board %s on %s offers window %u; the host link needs %u..%u: its "
			    "gateware is broken", name, h->ifname, hello->window, SNIC_HL_MIN_WINDOW, MAX_WINDOW);
	if (hello->host_base != SNIC_HL_HOST_WINDOW_BASE || hello->host_size != SNIC_HL_HOST_WINDOW_SIZE)
		return fail(err, errlen, "the board %s on %s puts the host window at 0x%x..+0x%x, the spec at "
			    "0x%x..+0x%x: its gateware is broken", name, h->ifname, hello->host_base, hello->host_size,
			    SNIC_HL_HOST_WINDOW_BASE, SNIC_HL_HOST_WINDOW_SIZE);
	uint64_t lb = hello->local_base, le = lb + hello->local_size;
	if (!hello->local_size || lb % 4 || hello->local_size % 4 || le > 1ull << 32 ||
	    (lb < SNIC_HL_HOST_WINDOW_BASE + (uint64_t)SNIC_HL_HOST_WINDOW_SIZE && le > SNIC_HL_HOST_WINDOW_BASE))
		return fail(err, errlen, "the board %s on %s offers NIC-local memory at 0x%x..+0x%x: empty, "
			    "unaligned, past the bus or across the host window; its gateware is broken", name,
			    h->ifname, hello->local_base, hello->local_size);
	memcpy(board->mac, mac, 6);
	board->mtu = hello->mtu;
	board->window = hello->window;
	board->host_base = hello->host_base;
	board->host_size = hello->host_size;
	board->local_base = hello->local_base;
	board->local_size = hello->local_size;
	board->spec_hash = hello->spec_hash;
	board->session = fh->session;
	return 1;
}

/* A HELLO request: `dst` (broadcast for discovery), `session`, `flags` beside HELLO. */
static void send_hello(struct hl *h, const uint8_t *dst, uint32_t session, uint8_t flags)
{
	uint8_t *p = h->ctl;
	struct snic_hl_frame_header *fh = (void *)(p + ETH_HDR);
	struct snic_hl_message_header *mh = (void *)(p + ETH_HDR + FH_SIZE);
	struct snic_hl_hello *hello = (void *)(p + ETH_HDR + FH_SIZE + MH_SIZE);
	fill_eth(h, p, dst);
	*fh = (struct snic_hl_frame_header){ .version = SNIC_HL_VERSION, .flags = F_HELLO | flags, .count = 1,
		.credit = h->window, .session = session };
	*mh = (struct snic_hl_message_header){ .op = SNIC_HL_OP_HELLO, .len = SNIC_HL_HELLO_SIZE };
	*hello = (struct snic_hl_hello){ .magic = SNIC_HL_HELLO_MAGIC, .spec_hash = SNIC_HL_SPEC_HASH,
		.mtu = h->mtu, .window = h->window, .host_base = h->mem_base, .host_size = h->mem_size };
	if (send_frame(h, p, sizeof(h->ctl)) == 0)
		h->last_tx_ns = now_ns();
	h->c.frames_out++;
}

/* Both directions start over in `session`: frame and message numbers 0,
 * credit the board's window.  Frames the driver queued are kept (a re-attach:
 * they were built for the new session) and numbered from 0. */
static void reset_numbering(struct hl *h, uint32_t session)
{
	h->session = session;
	h->pending_session = 0;
	h->rx_expected = 0;
	h->rx_next = 0;
	h->in_gap = 0;
	h->sh_rx_expected = 0;
	h->sh_grant = h->window;
	h->last_grant_sent = h->window;
	h->last_acked_sent = 0;
	h->nak_due = h->ctl_due = 0;
	h->tx_frame = 0;
	h->tx_credit = h->board.window;
	h->tx_acked = 0;
	h->tx_sent_end = 0;
	h->send_next = h->head;
	uint32_t seq = 0, end = h->built_tail + (h->building ? 1 : 0);
	for (uint32_t i = h->head; i != end; i++) {
		struct hl_slot *s = &h->slots[i % h->nslots];
		struct snic_hl_frame_header *fh = (void *)(s->buf + ETH_HDR);
		uint32_t pos = ETH_HDR + FH_SIZE;
		s->seq = fh->seq = seq;
		s->sent = 0;
		for (uint32_t k = 0; k < s->count; k++, seq++) {
			struct snic_hl_message_header *mh = (void *)(s->buf + pos);
			mh->seq = (uint8_t)seq;
			pos += MH_SIZE + mh->len;
		}
	}
	h->tx_seq = seq;
	h->nak_acked = 0;
	h->nak_ns = 0;
	h->srtt_ns = 0;
	h->backoff = 0;
	h->last_progress_ns = h->last_rx_ns = h->last_tx_ns = h->agree_ns = now_ns();
	h->silent = 0;
	h->probe_due = 0;
	h->starved = 0;
	h->disagreed = 0;
}

/* Bind again (mu held): a STALE with our session (`stale`: the board was
 * reset and forgot us), or a board that lost our numbering (see timer).
 * What we sent in the old session is gone with its memory; what the driver
 * queues from now on waits for the new session. */
static void begin_reattach(struct hl *h, int stale)
{
	if (h->pending_session)
		return;
	if (stale)
		h->c.stale++;
	h->head = h->send_next = h->built_tail;
	if (h->read_pending)
		h->read_lost = 1;       /* its frame, or the answer of the old session */
	h->pending_session = new_session(h->session);
	h->next_hello_ns = 0;                   /* at once (timer) */
}

/* The board answered the re-attach HELLO (mu held). */
static void finish_reattach(struct hl *h, const struct hl_board *board)
{
	h->board.window = board->window;
	reset_numbering(h, h->pending_session);
	h->c.reattaches++;
	pump(h);
	pthread_cond_broadcast(&h->cond);
	wake_driver(h);                         /* it re-arms the NIC (link_eth.py) */
}

/* ------------------------------------------------------------------------ */
/* Receive side (the receive thread, or hl_hello before it starts). */

/* What one burst of board frames says, applied under mu once per burst. */
struct burst {
	int have, nak, ack_now, stale, gap;
	int fresh;                      /* a frame at or past the next expected message */
	int behind;                     /* an answer (no messages, no PROBE) whose next message we have */
	uint32_t acked;
	uint16_t credit;
	const struct hl_board *answer;  /* the re-attach HELLO's answer */
	struct hl_board board;
};

/* Check a frame whole before applying any of it: 0 if well-formed. */
static int validate(const uint8_t *p, uint32_t len)
{
	const struct snic_hl_frame_header *fh = (const void *)p;
	if (len < FH_SIZE || fh->version != SNIC_HL_VERSION)
		return -1;
	uint32_t pos = FH_SIZE;
	for (uint32_t i = 0; i < fh->count; i++) {
		if (pos + MH_SIZE > len)
			return -1;
		const struct snic_hl_message_header *mh = (const void *)(p + pos);
		pos += MH_SIZE;
		if (mh->len % 4 || mh->len > SNIC_HL_MAX_MESSAGE_DATA || pos + mh->len > len ||
		    mh->seq != (uint8_t)(fh->seq + i) ||
		    (mh->op != SNIC_HL_OP_WRITE && mh->op != SNIC_HL_OP_ANSWER && mh->op != SNIC_HL_OP_IRQ))
			return -1;
		pos += mh->len;
	}
	return 0;
}

/* The answer to the pending read: used only if it has every word asked, no more. */
static void answer(struct hl *h, uint32_t tag, const uint8_t *data, uint32_t len)
{
	pthread_mutex_lock(&h->mu);
	if (h->read_pending && !h->read_done && tag == h->read_tag) {
		h->read_got = len / 4;
		if (h->read_got == h->read_words)
			memcpy(h->read_buf, data, len);
		else
			h->c.short_answers++;
		h->read_done = 1;
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->mu);
}

static void apply(struct hl *h, const struct snic_hl_message_header *mh, const uint8_t *data)
{
	switch (mh->op) {
	case SNIC_HL_OP_WRITE: {
		uint64_t off = (uint64_t)mh->addr - h->mem_base;   /* wraps huge when below base */
		if (off >= h->mem_size || h->mem_size - off < mh->len) {
			h->c.bad_address++;
			break;
		}
		memcpy(h->mem + off, data, mh->len);
		hl_release();
		break;
	}
	case SNIC_HL_OP_ANSWER:
		answer(h, mh->addr, data, mh->len);
		break;
	case SNIC_HL_OP_IRQ:
		h->c.irqs++;
		wake_driver(h);
		break;
	}
}

/* One Ethernet frame from the board. */
static void rx_frame(struct hl *h, const uint8_t *eth, uint32_t len, struct burst *b)
{
	if (len < ETH_HDR || memcmp(eth + 6, h->board_mac, 6)) {
		h->c.foreign++;
		return;
	}
	const uint8_t *p = eth + ETH_HDR;
	len -= ETH_HDR;
	const struct snic_hl_frame_header *fh = (const void *)p;
	if (len < FH_SIZE || fh->version != SNIC_HL_VERSION) {
		h->c.malformed++;
		return;
	}
	uint32_t pending = __atomic_load_n(&h->pending_session, __ATOMIC_ACQUIRE);
	if (fh->flags & F_HELLO) {
		/* Only the answer to our re-attach HELLO means anything now; an answer
		 * to an earlier request (a repeat) or another station's request does not.
		 * A board that came back with other memory or another MTU cannot carry
		 * on under the driver that knows the old one: it is not taken. */
		if (pending && fh->session == pending && parse_answer(h, eth + 6, p, len, &b->board, NULL, 0) == 1 &&
		    !(fh->flags & F_BOUND) && b->board.local_base == h->board.local_base &&
		    b->board.local_size == h->board.local_size && b->board.mtu == h->board.mtu)
			b->answer = &b->board;
		else
			h->c.foreign++;
		return;
	}
	if (fh->session != h->session || pending) {
		/* Another session (a late frame of an earlier one), or anything but the
		 * answer while we re-attach. */
		h->c.foreign++;
		return;
	}
	if (validate(p, len)) {
		h->c.malformed++;
		return;
	}
	h->last_rx_ns = now_ns();
	if (fh->flags & F_STALE) {
		b->stale = 1;
		return;
	}
	/* acked, credit and next_frame come from every well-formed frame of the
	 * session, applied or not: they only ever move forward. */
	uint16_t next = fh->count ? (uint16_t)(fh->frame + 1) : fh->frame;
	/* Not far past our grant: the board numbers frames only below it, and a
	 * bogus number (a board bug, a frame the FCS let through) taken here would
	 * grant it thousands of frames past our ring, and make every later grant
	 * look older until the numbers caught up.  A window of slack keeps a board
	 * that overshoots by a frame or two going rather than waiting for ever. */
	if (after16(next, h->rx_next) && !after16(next, (uint16_t)(h->sh_grant + h->window)))
		h->rx_next = next;
	if (!b->have || after32(fh->acked, b->acked))
		b->acked = fh->acked;
	if (!b->have || after16(fh->credit, b->credit))
		b->credit = fh->credit;
	b->have = 1;
	if (fh->flags & F_NAK) {
		b->nak = 1;
		h->c.naks++;
	}
	if (fh->flags & F_PROBE) {
		b->ack_now = 1;
		h->c.probes_in++;
	}
	if (!after32(h->rx_expected, fh->seq))
		b->fresh = 1;
	else if (!fh->count && !(fh->flags & F_PROBE))
		b->behind = 1;
	if (after32(fh->seq, h->rx_expected)) {
		/* A gap: messages before this frame were lost.  Nothing after it is
		 * applied until the expected message comes again (the board replays
		 * from our acked); one NAK asks for that at once.  A frame of no
		 * messages shows the same gap (its seq is the board's next message). */
		if (fh->count)
			h->c.gaps++;
		if (!h->in_gap) {
			h->in_gap = 1;
			b->gap = 1;
		}
		return;
	}
	uint32_t skip = h->rx_expected - fh->seq;
	if (fh->count && skip) {
		/* A replay of messages we have: acknowledge again at once (our ack was
		 * lost), and apply the rest. */
		h->c.duplicates++;
		b->ack_now = 1;
	}
	h->c.frames_in++;
	if (!fh->count && !skip)
		h->in_gap = 0;          /* the board's next message is ours: it went back, a new gap is NAKed again */
	if (skip >= fh->count)
		return;
	h->in_gap = 0;
	uint32_t pos = FH_SIZE;
	for (uint32_t i = 0; i < fh->count; i++) {
		const struct snic_hl_message_header *mh = (const void *)(p + pos);
		const uint8_t *data = p + pos + MH_SIZE;
		pos += MH_SIZE + mh->len;
		if (i >= skip)
			apply(h, mh, data);
	}
	h->c.messages_in += fh->count - skip;
	h->rx_expected = fh->seq + fh->count;
}

/* After a burst: take the board's acked and credit, resend on NAK, send what
 * the credit now allows, and acknowledge what the burst took if no frame of
 * ours carried it. */
static void end_burst(struct hl *h, struct burst *b)
{
	pthread_mutex_lock(&h->mu);
	if (b->answer) {
		finish_reattach(h, b->answer);
		goto done;
	}
	if (b->stale) {
		begin_reattach(h, 1);
		goto done;
	}
	if (b->gap)
		h->nak_due = 1;
	h->sh_rx_expected = h->rx_expected;
	h->sh_grant = (uint16_t)(h->rx_next + h->window);
	if (b->have) {
		uint64_t now = now_ns();
		/* The board agrees with our numbering when a frame starts at or past the
		 * message we expect and its acked is not behind ours; it disagrees when
		 * its acked is behind ours or it answers (a frame of no messages, not
		 * its own PROBE) from behind what we have.  Its replays of frames we
		 * have (our acknowledgements lost: a cable fault to wait out) are
		 * neither (see timer). */
		int acked_ok = !after32(h->tx_acked, b->acked);
		if ((b->fresh && acked_ok) || h->silent) {
			h->agree_ns = now;
			h->disagreed = 0;
		} else if (!acked_ok || b->behind) {
			h->disagreed = 1;
		}
		take_ack(h, b->acked, b->credit);
		if (h->silent)
			h->silent = 0;
	}
	if (b->nak) {
		/* One resend per NAK episode: the board may flag several frames
		 * before our resent ones reach it. */
		uint64_t now = now_ns();
		if (h->tx_acked != h->nak_acked || now - h->nak_ns > resend_period(h)) {
			h->nak_acked = h->tx_acked;
			h->nak_ns = now;
			go_back(h);
		}
	}
	pump(h);
	/* Whatever left in pump carried acked and the grant; else a frame of no
	 * messages: a NAK, an answer to a PROBE or a duplicate, an acknowledgement
	 * (the board's replay buffer drains only with it), or a grant grown by
	 * half our window. */
	if (h->nak_due || h->ctl_due || b->ack_now || h->last_acked_sent != h->sh_rx_expected ||
	    (uint16_t)(h->sh_grant - h->last_grant_sent) >= (h->window + 1) / 2)
		send_ctl(h, 0);
done:
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->mu);
	memset(b, 0, sizeof(*b));
}

/* Frame i of the receive ring (the kernel packs frames_per_block into each block). */
static struct tpacket2_hdr *ring_frame(struct hl *h, uint32_t i)
{
	return (struct tpacket2_hdr *)(h->ring + (size_t)(i / h->frames_per_block) * h->block_size +
				       (size_t)(i % h->frames_per_block) * h->frame_size);
}

static int frame_ready(struct tpacket2_hdr *ph)
{
	return __atomic_load_n(&ph->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER;
}

static void frame_done(struct hl *h, struct tpacket2_hdr *ph)
{
	__atomic_store_n(&ph->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
	h->cur_frame = (h->cur_frame + 1) % h->frame_nr;
}

/* Every frame the ring holds (at most a ring's worth), then the board's acked and credit once. */
static void rx_burst(struct hl *h)
{
	struct burst b = {0};
	for (uint32_t n = 0; n < h->frame_nr; n++) {
		struct tpacket2_hdr *ph = ring_frame(h, h->cur_frame);
		if (!frame_ready(ph))
			break;
		rx_frame(h, (uint8_t *)ph + ph->tp_mac, ph->tp_snaplen, &b);
		frame_done(h, ph);
		if (b.answer || b.stale)
			break;                  /* the session changes: what follows is read in the new one */
	}
	end_burst(h, &b);
}

/* The timers (mu held): resend or probe, keepalive, re-attach HELLO, silence.
 * Returns the ns until the next one is due. */
static uint64_t timer(struct hl *h)
{
	uint64_t now = now_ns(), due = now + SNIC_HL_KEEPALIVE_MS * 1000000ull;
	uint64_t silence = h->last_rx_ns + SNIC_HL_LINK_TIMEOUT_MS * 1000000ull;
	if (!h->silent && now >= silence) {
		h->silent = 1;
		h->c.silences++;
	}
	if (!h->silent && silence < due)
		due = silence;
	/* A board that talks but, for LINK_TIMEOUT_MS, never agrees with our
	 * numbering and says so (its acked behind ours, or answers from behind
	 * what we have: see end_burst) lost it without losing our session: reset
	 * while a copy of our HELLO was still on its way, it bound again in it
	 * from 0, and no STALE will come.  Every frame is a gap or a duplicate to
	 * one side for ever: bind again (as PCIe retrains a link whose replays
	 * make no progress).  Mere replays of what we have do not count: a board
	 * that cannot hear us for a while is waited for in the same session. */
	uint64_t disagree = h->agree_ns + SNIC_HL_LINK_TIMEOUT_MS * 1000000ull;
	int watch = h->disagreed && !h->silent && !h->pending_session;
	if (watch && now >= disagree) {
		begin_reattach(h, 0);
		pthread_cond_broadcast(&h->cond);
	} else if (watch && disagree < due) {
		due = disagree;
	}
	if (h->pending_session) {
		if (now >= h->next_hello_ns) {
			send_hello(h, h->board_mac, h->pending_session, 0);
			h->next_hello_ns = now + HELLO_REPEAT_MS * 1000000ull;
		}
		return (h->next_hello_ns < due ? h->next_hello_ns : due) - now;
	}
	if (h->ctl_due && send_ctl(h, 0) && h->backoff < 10)
		h->backoff++;                   /* an acknowledgement whose send failed: again, less often */
	if (h->head != h->built_tail) {
		/* Work pending (unacknowledged, or waiting for credit): without
		 * progress for a resend period, go back; what the credit does not let
		 * out is probed for, and the board's answer grants room past every
		 * frame we numbered. */
		uint64_t period = resend_period(h);
		if (now - h->last_progress_ns >= period) {
			/* The first frame that goes again asks for an answer (PROBE); a
			 * frame of no messages asks if none can go, or some still wait. */
			h->probe_due = 1;
			go_back(h);
			if (h->probe_due || h->send_next != h->built_tail)
				send_ctl(h, F_PROBE);
			h->probe_due = 0;
			h->last_progress_ns = now;
			if (h->backoff < 10)
				h->backoff++;
			period = resend_period(h);
		}
		if (h->last_progress_ns + period < due)
			due = h->last_progress_ns + period;
	} else if (now - h->last_tx_ns >= SNIC_HL_KEEPALIVE_MS * 1000000ull) {
		send_ctl(h, F_PROBE);           /* keepalive: a reset board answers STALE */
	} else if (h->last_tx_ns + SNIC_HL_KEEPALIVE_MS * 1000000ull < due) {
		due = h->last_tx_ns + SNIC_HL_KEEPALIVE_MS * 1000000ull;
	}
	if (h->ctl_due) {
		uint64_t retry = now + resend_period(h);    /* a send failing for long (link down) backs off */
		if (retry < due)
			due = retry;
	}
	return due > now ? due - now : 1;
}

static void *rx_main(void *arg)
{
	struct hl *h = arg;
	struct pollfd pf[2] = {{.fd = h->sock, .events = POLLIN}, {.fd = h->kick_fd, .events = POLLIN}};
	while (!h->stopping) {
		if (frame_ready(ring_frame(h, h->cur_frame))) {
			rx_burst(h);
			continue;
		}
		pthread_mutex_lock(&h->mu);
		uint64_t left = timer(h);
		h->rx_wake_ns = now_ns() + left;
		pthread_mutex_unlock(&h->mu);
		struct timespec ts = { .tv_sec = left / 1000000000u, .tv_nsec = left % 1000000000u };
		ppoll(pf, 2, &ts, NULL);
		if (pf[0].revents & POLLERR) {
			/* The interface went down (ENETDOWN): the error stands until read, and
			 * ppoll would return at once again and again. */
			int e;
			socklen_t el = sizeof(e);
			getsockopt(h->sock, SOL_SOCKET, SO_ERROR, &e, &el);
		}
		if (pf[1].revents & POLLIN) {
			uint64_t v;
			(void)!read(h->kick_fd, &v, sizeof(v));
		}
		pthread_mutex_lock(&h->mu);
		h->rx_wake_ns = 0;
		pthread_mutex_unlock(&h->mu);
	}
	return NULL;
}

static void stop_thread(struct hl *h)
{
	if (!h->running)
		return;
	uint64_t one = 1;
	h->stopping = 1;
	(void)!write(h->kick_fd, &one, sizeof(one));
	pthread_join(h->thread, NULL);
	h->running = 0;
	h->stopping = 0;
}
/* ------------------------------------------------------------------------ */
/* Opening. */

struct hl *hl_open(const char *ifname, uint8_t *mem, uint64_t mem_base, uint64_t mem_size,
		   uint32_t mtu, uint32_t ring_frames, int irq_fd, uint32_t credit_timeout_ms,
		   char *err, size_t errlen)
{
	if (mem_base < SNIC_HL_HOST_WINDOW_BASE || !mem_size ||
	    mem_base + mem_size > (uint64_t)SNIC_HL_HOST_WINDOW_BASE + SNIC_HL_HOST_WINDOW_SIZE) {
		fail(err, errlen, "the DMA memory %#llx..+%#llx must lie inside the host window %#x..+%#x",
		     (unsigned long long)mem_base, (unsigned long long)mem_size, SNIC_HL_HOST_WINDOW_BASE,
		     SNIC_HL_HOST_WINDOW_SIZE);
		return NULL;
	}
	if (strlen(ifname) >= IF_NAMESIZE) {
		fail(err, errlen, "no interface %s: an interface name is at most %d bytes", ifname,
		     IF_NAMESIZE - 1);
		return NULL;
	}
	if (ring_frames < SNIC_HL_MIN_WINDOW)
		ring_frames = SNIC_HL_MIN_WINDOW;
	struct hl *h = calloc(1, sizeof(*h));
	if (!h) {
		fail(err, errlen, "out of memory");
		return NULL;
	}
	h->sock = h->kick_fd = -1;
	h->irq_fd = irq_fd;
	h->mem = mem;
	h->mem_base = mem_base;
	h->mem_size = mem_size;
	h->credit_timeout_ms = credit_timeout_ms;
	snprintf(h->ifname, sizeof(h->ifname), "%s", ifname);
	pthread_mutex_init(&h->mu, NULL);
	pthread_mutex_init(&h->read_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);

	/* Protocol 0: nothing arrives before the ring exists and bind() names the EtherType. */
	h->sock = socket(AF_PACKET, SOCK_RAW, 0);
	if (h->sock < 0) {
		if (errno == EPERM || errno == EACCES)
			fail(err, errlen, "needs root (CAP_NET_RAW) to open a raw socket on %s", ifname);
		else
			fail(err, errlen, "cannot open a raw socket on %s: %s", ifname, strerror(errno));
		goto bad;
	}
	unsigned ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		fail(err, errlen, "no interface %s: cable the board's host-link port to this machine and name "
		     "that interface (docs/hardware.md)", ifname);
		goto bad;
	}
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(h->sock, SIOCGIFHWADDR, &ifr) < 0) {
		fail(err, errlen, "cannot read %s's MAC address: %s", ifname, strerror(errno));
		goto bad;
	}
	memcpy(h->my_mac, ifr.ifr_hwaddr.sa_data, 6);
	if (ioctl(h->sock, SIOCGIFMTU, &ifr) < 0) {
		fail(err, errlen, "cannot read %s's MTU: %s", ifname, strerror(errno));
		goto bad;
	}
	/* A frame larger than the interface's MTU would never reach us. */
	h->mtu = mtu < (uint32_t)ifr.ifr_mtu ? mtu : (uint32_t)ifr.ifr_mtu;
	if (h->mtu < SNIC_HL_MTU_STANDARD) {
		fail(err, errlen, "%s's MTU is %u: the host link needs at least %u (ip link set %s mtu %u)",
		     ifname, h->mtu, SNIC_HL_MTU_STANDARD, ifname, SNIC_HL_MTU_STANDARD);
		goto bad;
	}
	int one = 1, v2 = TPACKET_V2;
	/* Our own frames are not news to us (and another process's are not ours). */
	setsockopt(h->sock, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
	if (setsockopt(h->sock, SOL_PACKET, PACKET_VERSION, &v2, sizeof(v2)) < 0) {
		fail(err, errlen, "%s: TPACKET_V2 is not available: %s", ifname, strerror(errno));
		goto bad;
	}
	/* A ring frame: its tpacket2_hdr and sockaddr_ll, the MAC header placed
	 * so the frame header is 16-aligned, a max-size frame. */
	uint32_t hdrlen = TPACKET_ALIGN(TPACKET_ALIGN(sizeof(struct tpacket2_hdr)) + sizeof(struct sockaddr_ll));
	uint32_t slot = TPACKET_ALIGN(TPACKET_ALIGN(hdrlen + 16) + h->mtu);
	uint32_t bs = (uint32_t)sysconf(_SC_PAGESIZE);
	while (bs < 8 * slot)                   /* blocks of about 8 frames: fewer, larger mappings */
		bs <<= 1;
	h->frame_size = slot;
	h->block_size = bs;
	h->frames_per_block = bs / slot;
	/* The window must be what the ring holds for certain: each ring frame
	 * holds one frame, and half of them are kept for the board's frames of
	 * no messages, which take no credit (spec) but do take room. */
	uint32_t frames = ring_frames < 2 * SNIC_HL_MIN_WINDOW + 1 ? 2 * SNIC_HL_MIN_WINDOW + 1 : ring_frames;
	uint32_t block_nr = (frames + h->frames_per_block - 1) / h->frames_per_block;
	h->frame_nr = block_nr * h->frames_per_block;
	/* At most what we take from the board: credit compares frame numbers
	 * modulo 2**16, and a window of 2**15 or more would make the board's
	 * first credit look older than its frame 0. */
	h->window = (h->frame_nr - 1) / 2 > MAX_WINDOW ? MAX_WINDOW : (h->frame_nr - 1) / 2;
	struct tpacket_req req = {
		.tp_block_size = bs, .tp_block_nr = block_nr, .tp_frame_size = slot, .tp_frame_nr = h->frame_nr,
	};
	if (setsockopt(h->sock, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0) {
		fail(err, errlen, "cannot set up a %u x %u-byte receive ring on %s: %s", block_nr, bs,
		     ifname, strerror(errno));
		goto bad;
	}
	h->ring_size = (size_t)bs * block_nr;
	h->ring = mmap(NULL, h->ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED, h->sock, 0);
	if (h->ring == MAP_FAILED)   /* MAP_LOCKED can exceed RLIMIT_MEMLOCK: fall back */
		h->ring = mmap(NULL, h->ring_size, PROT_READ | PROT_WRITE, MAP_SHARED, h->sock, 0);
	if (h->ring == MAP_FAILED) {
		h->ring = NULL;
		fail(err, errlen, "cannot map the receive ring of %s: %s", ifname, strerror(errno));
		goto bad;
	}
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET, .sll_protocol = htons(SNIC_HL_ETHERTYPE), .sll_ifindex = (int)ifindex,
	};
	if (bind(h->sock, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		fail(err, errlen, "cannot bind a raw socket to %s: %s", ifname, strerror(errno));
		goto bad;
	}
	h->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->kick_fd < 0) {
		fail(err, errlen, "eventfd: %s", strerror(errno));
		goto bad;
	}
	return h;
bad:
	hl_close(h);
	return NULL;
}

/* Replay slots for the board's window (allocated at hello, reused after). */
static int alloc_slots(struct hl *h, char *err, size_t errlen)
{
	uint32_t n = 4;
	while (n < h->board.window && n < MAX_REPLAY_SLOTS)
		n <<= 1;
	if (n == h->nslots && h->tx_mtu <= h->mtu)
		return 0;
	free(h->slots);
	free(h->slot_mem);
	h->nslots = n;
	h->slots = calloc(n, sizeof(*h->slots));
	h->slot_mem = malloc((size_t)n * (ETH_HDR + h->mtu));
	if (!h->slots || !h->slot_mem)
		return fail(err, errlen, "out of memory for %u replay frames", n);
	for (uint32_t i = 0; i < n; i++)
		h->slots[i].buf = h->slot_mem + (size_t)i * (ETH_HDR + h->mtu);
	return 0;
}

/* A frame the ring holds, or NULL once `deadline` passed (sleeping until one comes). */
static struct tpacket2_hdr *wait_frame(struct hl *h, uint64_t wake)
{
	struct pollfd pf = {.fd = h->sock, .events = POLLIN};
	struct tpacket2_hdr *ph = ring_frame(h, h->cur_frame);
	if (frame_ready(ph))
		return ph;
	uint64_t now = now_ns();
	if (now < wake) {
		struct timespec ts = { .tv_sec = (wake - now) / 1000000000u, .tv_nsec = (wake - now) % 1000000000u };
		ppoll(&pf, 1, &ts, NULL);
	}
	return frame_ready(ph) ? ph : NULL;
}

static int bound_elsewhere(struct hl *h, const uint8_t *mac, char *err, size_t errlen)
{
	char name[18];
	format_mac(name, mac);
	return fail(err, errlen, "the board %s on %s is bound to another host (another splitnic driver, or "
		    "this machine before it got another address); if that host is gone, take the board over: "
		    "--link eth:%s@%s,takeover", name, h->ifname, h->ifname, name);
}

/* Discovery: a broadcast HELLO with flag PROBE; every board answers and none
 * binds.  Fills `found` with the board to bind (`want`, or the only one). */
static int discover(struct hl *h, uint64_t deadline, uint32_t timeout_ms, const uint8_t *want, int takeover,
		    struct hl_board *found, char *err, size_t errlen)
{
	static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct hl_board seen[MAX_DISCOVERED];
	int bound[MAX_DISCOVERED], nseen = 0, others = 0, sent = 0;
	uint32_t session = new_session(h->session);
	uint64_t start = now_ns(), next_hello = start, settle = 0;
	for (;;) {
		uint64_t now = now_ns();
		if (settle && now >= settle)
			break;
		if (now >= deadline) {
			if (nseen)
				break;
			char name[18] = "";
			if (want)
				format_mac(name, want);
			return fail(err, errlen, "no answer from %s%s over eth:%s within %.1f s (HELLO sent %d times%s); "
				    "is it powered, flashed and cabled?", want ? "the board " : "the board", name,
				    h->ifname, timeout_ms / 1000.0, sent, others ? ", other boards answered" : "");
		}
		if (now >= next_hello) {
			send_hello(h, broadcast, session, F_PROBE);   /* again and again: a board may miss one */
			sent++;
			next_hello = now + HELLO_REPEAT_MS * 1000000ull;
		}
		uint64_t wake = next_hello < deadline ? next_hello : deadline;
		struct tpacket2_hdr *ph = wait_frame(h, settle && settle < wake ? settle : wake);
		if (!ph)
			continue;
		const uint8_t *eth = (uint8_t *)ph + ph->tp_mac;
		uint32_t len = ph->tp_snaplen;
		const struct snic_hl_frame_header *fh = (const void *)(eth + ETH_HDR);
		struct hl_board b;
		int r = 0;
		/* Only an answer to this request: our session, flag ANSWER. */
		if (len >= ETH_HDR + FH_SIZE && fh->session == session && (!want || !memcmp(eth + 6, want, 6)))
			r = parse_answer(h, eth + 6, eth + ETH_HDR, len - ETH_HDR, &b, err, errlen);
		else if (len >= ETH_HDR + FH_SIZE && fh->session == session)
			others++;
		int is_bound = len >= ETH_HDR + FH_SIZE && (fh->flags & F_BOUND);
		frame_done(h, ph);
		if (r < 0)
			return -1;
		if (!r) {
			h->c.foreign++;
			continue;
		}
		int i = 0;
		while (i < nseen && memcmp(seen[i].mac, b.mac, 6))
			i++;
		if (i == nseen && nseen < MAX_DISCOVERED) {
			seen[nseen] = b;
			bound[nseen++] = is_bound;
		}
		if (want)
			break;
		if (!settle)
			settle = now_ns() + DISCOVERY_SETTLE_MS * 1000000ull;
	}
	if (nseen > 1) {
		char list[MAX_DISCOVERED * 20] = "", name[18];
		for (int i = 0; i < nseen; i++) {
			format_mac(name, seen[i].mac);
			strcat(list, i ? ", " : "");
			strcat(list, name);
		}
		return fail(err, errlen, "%d boards answered on %s (%s): name the one to use, e.g. --link eth:%s@%s",
			    nseen, h->ifname, list, h->ifname, name);
	}
	if (bound[0] && !takeover)
		return bound_elsewhere(h, seen[0].mac, err, errlen);
	*found = seen[0];
	return 0;
}

/* Binding: a unicast HELLO (TAKEOVER if asked) to the board found, with a new
 * session; repeated (the same request) until its answer comes. */
static int bind_board(struct hl *h, uint64_t deadline, uint32_t timeout_ms, const struct hl_board *found,
		      int takeover, struct hl_board *answer, char *err, size_t errlen)
{
	uint32_t session = new_session(h->session);
	uint64_t next_hello = now_ns();
	int sent = 0;
	char name[18];
	format_mac(name, found->mac);
	for (;;) {
		uint64_t now = now_ns();
		if (now >= deadline)
			return fail(err, errlen, "the board %s on %s answered discovery but not our HELLO within %.1f s "
				    "(sent %d times); is it bound to another host meanwhile?", name, h->ifname,
				    timeout_ms / 1000.0, sent);
		if (now >= next_hello) {
			send_hello(h, found->mac, session, takeover ? F_TAKEOVER : 0);
			sent++;
			next_hello = now + HELLO_REPEAT_MS * 1000000ull;
		}
		struct tpacket2_hdr *ph = wait_frame(h, next_hello < deadline ? next_hello : deadline);
		if (!ph)
			continue;
		const uint8_t *eth = (uint8_t *)ph + ph->tp_mac;
		uint32_t len = ph->tp_snaplen;
		const struct snic_hl_frame_header *fh = (const void *)(eth + ETH_HDR);
		int r = 0;
		if (len >= ETH_HDR + FH_SIZE && fh->session == session && !memcmp(eth + 6, found->mac, 6))
			r = parse_answer(h, eth + 6, eth + ETH_HDR, len - ETH_HDR, answer, err, errlen);
		int is_bound = r > 0 && (fh->flags & F_BOUND);
		frame_done(h, ph);
		if (r < 0)
			return -1;
		if (is_bound)
			return bound_elsewhere(h, found->mac, err, errlen);
		if (r)
			return 0;
		h->c.foreign++;
	}
}

int hl_hello(struct hl *h, uint32_t timeout_ms, const uint8_t *want, int takeover, struct hl_board *out,
	     char *err, size_t errlen)
{
	stop_thread(h);
	h->hello_done = 0;
	/* Frames of an earlier session mean nothing now. */
	for (uint32_t i = 0; i < h->frame_nr && frame_ready(ring_frame(h, h->cur_frame)); i++)
		frame_done(h, ring_frame(h, h->cur_frame));
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
	struct hl_board found, board;
	if (discover(h, deadline, timeout_ms, want, takeover, &found, err, errlen) ||
	    bind_board(h, deadline, timeout_ms, &found, takeover, &board, err, errlen))
		return -1;
	memcpy(h->board_mac, board.mac, 6);
	h->board = board;
	h->tx_mtu = h->board.mtu < h->mtu ? h->board.mtu : h->mtu;
	if (alloc_slots(h, err, errlen))
		return -1;
	pthread_mutex_lock(&h->mu);
	h->head = h->send_next = h->built_tail = 0;
	h->building = 0;
	h->read_pending = 0;
	reset_numbering(h, board.session);
	pthread_mutex_unlock(&h->mu);
	h->hello_done = 1;
	/* The board may follow its answer at once: what the ring holds now are the session's first frames. */
	rx_burst(h);
	*out = h->board;
	if (pthread_create(&h->thread, NULL, rx_main, h))
		return fail(err, errlen, "cannot start the host link's receive thread");
	h->running = 1;
	return 0;
}

/* ------------------------------------------------------------------------ */

uint32_t hl_session(struct hl *h) { return h->hello_done ? h->session : 0; }
int hl_reattaching(struct hl *h) { return h->pending_session != 0; }
int hl_silent(struct hl *h) { return h->silent; }
int hl_out_of_step(struct hl *h)
{
	pthread_mutex_lock(&h->mu);
	/* An idle link agrees at each keepalive's answer; one with work pending at
	 * each resend period's PROBE (at most a second apart): half a keepalive
	 * more is no jitter. */
	int r = h->hello_done && h->disagreed && !h->silent && !h->pending_session &&
		now_ns() - h->agree_ns > SNIC_HL_KEEPALIVE_MS * 1500000ull;
	pthread_mutex_unlock(&h->mu);
	return r;
}
uint32_t hl_window(struct hl *h) { return h->window; }
uint32_t hl_mtu(struct hl *h) { return h->mtu; }
const struct hl_counters *hl_counters(struct hl *h)
{
	/* The kernel's drop count resets when read: add it up here. */
	struct tpacket_stats st;
	socklen_t len = sizeof(st);
	if (getsockopt(h->sock, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
		h->c.ring_drops += st.tp_drops;
	return &h->c;
}

void hl_close(struct hl *h)
{
	if (!h)
		return;
	stop_thread(h);
	if (h->ring)
		munmap(h->ring, h->ring_size);
	if (h->sock >= 0)
		close(h->sock);
	if (h->kick_fd >= 0)
		close(h->kick_fd);
	free(h->slots);
	free(h->slot_mem);
	pthread_mutex_destroy(&h->mu);
	pthread_mutex_destroy(&h->read_mu);
	pthread_cond_destroy(&h->cond);
	free(h);
}

int hl_receive_frames(struct hl *h, const uint8_t *frames, const uint32_t *lens, uint32_t n,
		      uint32_t per_block)
{
	struct burst b = {0};
	for (uint32_t i = 0; i < n; i++) {
		rx_frame(h, frames, lens[i], &b);
		frames += lens[i];
		if ((i + 1) % per_block == 0 || i + 1 == n)
			end_burst(h, &b);
	}
	return 0;
}

void hl_fail_sends(struct hl *h, uint32_t n)
{
	pthread_mutex_lock(&h->mu);
	h->fail_sends = n;
	pthread_mutex_unlock(&h->mu);
}

int hl_send_raw(struct hl *h, const uint8_t *frames, const uint32_t *lens, uint32_t n)
{
	enum { BATCH = 64 };
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	uint32_t done = 0;
	while (done < n) {
		uint32_t k = n - done < BATCH ? n - done : BATCH;
		const uint8_t *p = frames;
		for (uint32_t i = 0; i < k; i++) {
			iov[i] = (struct iovec){ (void *)p, lens[done + i] };
			msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
			p += lens[done + i];
		}
		int sent = sendmmsg(h->sock, msgs, k, 0);
		if (sent <= 0) {
			if (errno == ENOBUFS || errno == EAGAIN) {  /* the queue is full: let it drain */
				usleep(50);
				continue;
			}
			return -1;
		}
		for (int i = 0; i < sent; i++)
			frames += lens[done + i];
		done += sent;
	}
	return (int)done;
}
