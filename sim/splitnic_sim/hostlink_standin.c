/*
 * The board's side of the eth host link, on the software NIC model: a stand-in
 * for the board, at full speed, that behaves like the board on the cable.
 *
 * Ref: spec/splitnic_spec/hostlink.py, module docstring (the contract:
 * sessions, frames, messages, sequence numbers, go-back-N both ways, NAK,
 * PROBE, credit), generated into hostdrv/splitnic/hostlink_spec.h;
 * spec/splitnic_spec/board.py (the board's address map);
 * gateware/splitnic_gateware/hostlink/ (the board itself: what it checks);
 * sim/splitnic_sim/hostlink_standin.py drives it.
 *
 * One thread (standin_run) owns the model (softnic.c, compiled into the same
 * cffi module) and the raw socket: it carries out the host's messages in
 * order, steps the model, turns the model's writes into the host window and
 * its interrupt rises into messages, batches them into frames up to the
 * host's mtu and sends them when the step ends (so a lone completion waits
 * for nothing), within the host's credit.  Idle, it sleeps in ppoll().
 *
 * Board to host, every frame of messages stays in a replay buffer until the
 * host's acked passes it: `replay` frames, the one being built included, as
 * the board's ring of block RAM slots (so replay - 1 may be unacknowledged); a NAK, or RESEND_US without progress of acked, sends them
 * again from the first unacknowledged one (go-back-N, whole frames, new frame
 * numbers).  While the replay buffer is full the model is not stepped: its
 * wire input (mailbox, TAP) backs up and drops, as the board's receive FIFO
 * does behind its stalled DMA.  One step's messages are always kept whole, so
 * frames beyond the replay buffer wait for it, bounded by a step's work
 * (RX_BUDGET frames per source): the board stalls its DMA at the word instead.
 *
 * Host to board, the stand-in carries out each frame as it arrives, so it
 * always has its whole window free; a numbered frame at or past the newest
 * credit it granted is an overrun, as on the board, whose slots would be full.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <sys/mman.h>

#include "hostlink_spec.h"

/* cdef-begin: this block is handed to cffi's cdef() by _softnic_build.py. */

/* What the stand-in saw and did; every drop is counted somewhere here.  A board
 * reset (standin_reset) clears them, as the board's BoardCounters read 0 after one. */
struct standin_counters {
	uint64_t frames_in;         /* host frames of the session taken in sequence (empty ones included) */
	uint64_t messages_in;       /* messages carried out, in order */
	uint64_t frames_out;        /* frames handed to the socket (answers, acks, probes, resends included) */
	uint64_t messages_out;      /* messages sent (each once, however often its frame is sent) */
	uint64_t bytes_out;         /* bytes of those frames after the Ethernet header */
	uint64_t hellos;            /* binding HELLOs answered (bound, or answered again: same session) */
	uint64_t takeovers;         /* of those, the ones that took the board from another station */
	uint64_t discoveries;       /* discovery HELLOs (PROBE) answered */
	uint64_t hellos_refused;    /* HELLOs of another magic or spec hash, unusable fields, a broadcast request */
	uint64_t foreign;           /* bound: frames and HELLO requests of another station (no answer) */
	uint64_t stale;             /* frames answered with STALE: unbound, or the bound station's old session */
	uint64_t malformed;         /* another version, headers or messages past the frame, bad lengths or numbers */
	uint64_t bad_address;       /* WRITE/READ outside NIC-local memory, the registers and the counters */
	uint64_t bad_op;            /* messages the board does not take (ANSWER, IRQ, HELLO unflagged, ...) */
	uint64_t gaps;              /* host-to-board gaps (one NAK each) */
	uint64_t gap_messages;      /* messages missing at those gaps */
	uint64_t gap_frames;        /* frames that did not start at the expected message (dropped) */
	uint64_t duplicates;        /* frames wholly or partly before the expected message: dropped, acked at once */
	uint64_t overruns;          /* in-sequence frames numbered at or past the credit granted: dropped, NAKed */
	uint64_t naks_sent;
	uint64_t naks_received;
	uint64_t probes_received;   /* host PROBEs, each answered at once */
	uint64_t probes_sent;       /* the stand-in's PROBEs (resend periods that ran out) */
	uint64_t resend_timeouts;   /* resend periods that ran out with frames unacknowledged or waiting */
	uint64_t resent_frames;     /* frames of messages sent again (NAK or resend timer) */
	uint64_t credit_stalls;     /* times a finished frame had to wait for the host's credit */
	uint64_t irqs_sent;
	uint64_t reads;             /* READs answered */
	uint64_t send_errors;       /* frames the socket refused (lost, as on a cable) */
	uint64_t resets;            /* board resets (standin_reset); kept across them */
	uint64_t test_drops_out;    /* frames dropped by the drop_out_nth knob */
	uint64_t test_drops_in;     /* frames dropped by the drop_in_nth knob */
};

struct standin {
	struct softnic *nic;        /* the model; its dma[] is NIC-local memory */
	int32_t sock;               /* AF_PACKET socket, SOCK_RAW, bound to SNIC_HL_ETHERTYPE on the port */
	int32_t wake_fd;            /* an eventfd: written to wake the loop (stop, reset, frames injected) */
	int32_t stop;               /* standin_run returns when set */
	int32_t reset_request;      /* set from any thread: the loop resets the board (standin_reset), clears it */
	uint8_t mac[6];             /* the port's address */
	uint32_t csr_base;          /* the NIC's register window on the board's bus */
	uint32_t csr_size;
	uint16_t mtu;               /* largest frame after the Ethernet header this side takes */
	uint16_t window;            /* frames this side buffers: Hello.window, the credit it grants */
	uint16_t replay;            /* frames of the replay buffer, the one being built included (>= 2) */
	uint32_t resend_us;         /* the resend period (RESEND_US) */
	/* Loss knobs: drop the Nth frame from now (1: the next one) sent / received; 0: none. */
	uint32_t drop_out_nth;
	uint32_t drop_in_nth;
	int32_t bound;              /* a host bound the board: host_mac and session are its */
	uint8_t host_mac[6];
	uint32_t session;
	uint16_t host_mtu;
	uint16_t host_window;
	struct standin_counters c;
	void *priv;                 /* standin_init's state */
};

int standin_init(struct standin *t);
void standin_run(struct standin *t);
void standin_reset(struct standin *t);
void standin_free(struct standin *t);

/* cdef-end */

#define ETH_HLEN_ 14
#define FRAME_START (ETH_HLEN_ + SNIC_HL_FRAME_HEADER_SIZE)
/* A frame buffer: the Ethernet header and the largest mtu, rounded up. */
#define SLOT_SIZE 9216
#define RX_BATCH 32
#define TX_BATCH 32
#define OUT_SLOTS_MIN 64
/* Acknowledged frames at the front of the queue before it is moved down. */
#define COMPACT_AT 32
/* The board answers a READ of at most a standard frame's room (the gateware's DEFAULT_MAX_READ_WORDS). */
#define MAX_READ_WORDS ((SNIC_HL_MTU_STANDARD - SNIC_HL_FRAME_HEADER_SIZE - SNIC_HL_MESSAGE_HEADER_SIZE) / 4)
/* ppoll() timeouts: idle (the model's mailbox and registers written from
 * Python are seen at least this often), and while an interrupt waits for
 * its hold-off (IRQ_COALESCE) to run out. */
#define IDLE_POLL_NS 100000000ull
#define HOLDOFF_POLL_NS 1000000ull

#define FLAG(name) SNIC_HL_FRAME_HEADER_FLAGS_##name##_MASK

_Static_assert(SLOT_SIZE >= ETH_HLEN_ + SNIC_HL_MTU_JUMBO, "a slot holds a jumbo frame");

struct standin_priv {
	/* Host memory as the model wrote it (the host's DMA memory from its Hello). */
	uint8_t *shadow;
	size_t shadow_size;
	/*
	 * Board to host: frames [0, nclosed) are closed, frame nclosed is being
	 * filled if open.  [base, nsent): sent, not acknowledged (the replay
	 * buffer); [nsent, nclosed): to send, or to send again after a go-back.
	 * sent_hw: one past the furthest frame ever sent (one below it that
	 * leaves is a resend).
	 */
	uint8_t *slots;
	uint32_t *lens;
	uint32_t cap, base, nsent, nclosed, sent_hw;
	int open;
	uint32_t open_len, open_count, open_seq, last_msg;  /* last_msg: offset of the newest header, 0: none */
	uint32_t tx_seq;            /* number of the next new message */
	uint32_t sent_seq;          /* one past the newest message ever sent */
	uint32_t peer_acked;        /* the host's acked: every message before it arrived */
	uint16_t tx_frame;          /* number of the next frame */
	uint16_t peer_credit;       /* frames numbered below it may be sent */
	int stalled;                /* the next frame waits for credit */
	int probe_due;              /* the resend period ran out: PROBE on the next frame */
	uint64_t period_start;      /* ns: the resend period runs from here (progress restarts it) */
	/* Host to board. */
	uint32_t rx_expected;       /* number of the next message to carry out */
	uint16_t rx_next_frame;     /* the newest of one past a numbered frame, an empty frame's number */
	uint16_t granted;           /* the newest credit sent */
	uint32_t acked_sent;        /* the acked last sent */
	int in_gap, nak_pending;
	int ack_now;                /* a duplicate or a PROBE came: acked and credit go out at once */
	/* Batches of system calls. */
	uint8_t *rxbuf;
	struct mmsghdr rxmsg[RX_BATCH];
	struct iovec rxiov[RX_BATCH];
	struct sockaddr_ll rxaddr[RX_BATCH];
	struct mmsghdr txmsg[TX_BATCH];
	struct iovec txiov[TX_BATCH];
};

static inline struct standin_priv *priv(struct standin *t) { return t->priv; }
static inline uint8_t *slot(struct standin_priv *p, uint32_t i) { return p->slots + (size_t)i * SLOT_SIZE; }
/* Serial arithmetic: 16-bit frame numbers, a before b; 32-bit message numbers, a after b. */
static inline int before16(uint16_t a, uint16_t b) { return (int16_t)(a - b) < 0; }
static inline int after32(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

static void put_eth_header(struct standin *t, uint8_t *f, const uint8_t *dst)
{
	uint16_t type = htons(SNIC_HL_ETHERTYPE);

	memcpy(f, dst, 6);
	memcpy(f + 6, t->mac, 6);
	memcpy(f + 12, &type, 2);
}

static struct snic_hl_frame_header frame_header(const uint8_t *f)
{
	struct snic_hl_frame_header h;

	memcpy(&h, f + ETH_HLEN_, sizeof(h));
	return h;
}

/* ------------------------------------------------------------------ board to host: building frames */

static int open_frame(struct standin *t)
{
	struct standin_priv *p = priv(t);

	if (p->nclosed + 1 >= p->cap) {
		uint32_t cap = p->cap * 2;
		uint8_t *slots = realloc(p->slots, (size_t)cap * SLOT_SIZE);
		uint32_t *lens = slots ? realloc(p->lens, cap * sizeof(*lens)) : NULL;

		if (slots)
			p->slots = slots;
		if (!lens)
			return -1;
		p->lens = lens;
		p->cap = cap;
	}
	put_eth_header(t, slot(p, p->nclosed), t->host_mac);
	p->open = 1;
	p->open_len = FRAME_START;
	p->open_count = 0;
	p->open_seq = p->tx_seq;
	p->last_msg = 0;
	return 0;
}

/* The frame being filled is complete: its number, credit, acked and flags are set each time it is sent. */
static void close_frame(struct standin *t)
{
	struct standin_priv *p = priv(t);
	struct snic_hl_frame_header h;

	memset(&h, 0, sizeof(h));
	h.version = SNIC_HL_VERSION;
	h.count = (uint16_t)p->open_count;
	h.seq = p->open_seq;
	memcpy(slot(p, p->nclosed) + ETH_HLEN_, &h, sizeof(h));
	p->lens[p->nclosed++] = p->open_len;
	p->open = 0;
}

/* Room for message data in the frame being filled (0 if none is open). */
static uint32_t data_room(struct standin *t)
{
	struct standin_priv *p = priv(t);
	uint32_t end = ETH_HLEN_ + t->host_mtu;

	if (!p->open || p->open_len + SNIC_HL_MESSAGE_HEADER_SIZE >= end)
		return 0;
	return (end - p->open_len - SNIC_HL_MESSAGE_HEADER_SIZE) & ~3u;
}

/* Start a message of len bytes (which fit, see data_room) and return where its data goes. */
static uint8_t *add_message(struct standin *t, uint8_t op, uint32_t addr, uint32_t len)
{
	struct standin_priv *p = priv(t);
	struct snic_hl_message_header h;
	uint8_t *f = slot(p, p->nclosed) + p->open_len;

	h.op = op;
	h.seq = (uint8_t)p->tx_seq;
	h.len = (uint16_t)len;
	h.addr = addr;
	memcpy(f, &h, sizeof(h));
	p->last_msg = p->open_len;
	p->open_len += SNIC_HL_MESSAGE_HEADER_SIZE + len;
	p->open_count++;
	p->tx_seq++;
	return f + SNIC_HL_MESSAGE_HEADER_SIZE;
}

/* A message whose data cannot be split (ANSWER, IRQ): in this frame or the next. */
static uint8_t *whole_message(struct standin *t, uint8_t op, uint32_t addr, uint32_t len)
{
	struct standin_priv *p = priv(t);

	if (data_room(t) < len) {
		if (p->open)
			close_frame(t);
		if (open_frame(t) < 0 || data_room(t) < len)
			return NULL;
	}
	return add_message(t, op, addr, len);
}

/* WRITE messages of data (whole words) at addr: appended to the previous WRITE when it
 * ends at addr (consecutive completions), split over frames when longer than one. */
static void write_messages(struct standin *t, uint32_t addr, const uint8_t *data, uint32_t len)
{
	struct standin_priv *p = priv(t);

	while (len) {
		uint32_t room = data_room(t), chunk;

		if (p->open && p->last_msg && p->open_count) {
			struct snic_hl_message_header h;
			uint8_t *last = slot(p, p->nclosed) + p->last_msg;

			memcpy(&h, last, sizeof(h));
			if (h.op == SNIC_HL_OP_WRITE && h.addr + h.len == addr) {
				uint32_t end = ETH_HLEN_ + t->host_mtu, free = end - p->open_len;

				chunk = len < free ? len : free & ~3u;
				if (chunk > (uint32_t)SNIC_HL_MAX_MESSAGE_DATA - h.len)
					chunk = (uint32_t)SNIC_HL_MAX_MESSAGE_DATA - h.len;
				if (chunk) {
					memcpy(slot(p, p->nclosed) + p->open_len, data, chunk);
					p->open_len += chunk;
					h.len = (uint16_t)(h.len + chunk);
					memcpy(last, &h, sizeof(h));
					addr += chunk, data += chunk, len -= chunk;
					continue;
				}
			}
		}
		/* Not worth a header for a sliver when the next frame takes it whole. */
		if (room < len && room < 256) {
			if (p->open)
				close_frame(t);
			if (open_frame(t) < 0)
				return;
			room = data_room(t);
		}
		chunk = len < room ? len : room;
		if (chunk > SNIC_HL_MAX_MESSAGE_DATA)
			chunk = SNIC_HL_MAX_MESSAGE_DATA;
		memcpy(add_message(t, SNIC_HL_OP_WRITE, addr, chunk), data, chunk);
		addr += chunk, data += chunk, len -= chunk;
	}
}

/* The model's hook: it wrote len bytes at addr in host memory (p, in the shadow).  The DMA
 * engines move whole words, so the write goes out widened to them, from the shadow. */
static void on_host_write(void *ctx, uint64_t addr, const uint8_t *ptr, uint32_t len)
{
	struct standin *t = ctx;
	uint64_t first = addr & ~3ull, end = (addr + len + 3) & ~3ull;

	if (!t->bound || !len)
		return;
	write_messages(t, (uint32_t)first, ptr - (addr - first), (uint32_t)(end - first));
}

/* The model's hook: its interrupt line rose. */
static void on_irq_rise(void *ctx, uint64_t rises)
{
	struct standin *t = ctx;
	uint32_t word = (uint32_t)rises;
	uint8_t *d;

	if (!t->bound)
		return;
	d = whole_message(t, SNIC_HL_OP_IRQ, 0, 4);
	if (d) {
		memcpy(d, &word, 4);
		t->c.irqs_sent++;
	}
}

/* ------------------------------------------------------------------ board to host: the replay buffer */

/* Unacknowledged frames the replay buffer holds beside the one being built (the board's ring). */
static inline uint32_t replay_frames(const struct standin *t) { return t->replay - 1u; }

/* The replay buffer has room for another frame: the model may run (see the top). */
static int replay_has_room(struct standin *t)
{
	struct standin_priv *p = priv(t);

	return p->nclosed - p->base < replay_frames(t);
}

/* Move the frames still kept down to the front, now and then, so the queue stays small. */
static void compact(struct standin_priv *p)
{
	uint32_t i, keep;

	if (!p->base)
		return;
	if (p->base == p->nclosed && !p->open) {
		p->base = p->nsent = p->nclosed = p->sent_hw = 0;
		return;
	}
	if (p->base < COMPACT_AT)
		return;
	keep = p->nclosed - p->base;
	for (i = 0; i < keep; i++) {
		memcpy(slot(p, i), slot(p, p->base + i), p->lens[p->base + i]);
		p->lens[i] = p->lens[p->base + i];
	}
	if (p->open)
		memcpy(slot(p, keep), slot(p, p->nclosed), p->open_len);
	p->nsent -= p->base;
	p->nclosed -= p->base;
	p->sent_hw = p->sent_hw > p->base ? p->sent_hw - p->base : 0;
	p->base = 0;
}

/* The host's acked: frames whose messages all arrived leave the replay buffer.  Only a newer
 * value counts (a late frame carries an old one), and none past what was sent. */
static void take_acked(struct standin *t, uint32_t acked)
{
	struct standin_priv *p = priv(t);

	if (!after32(acked, p->peer_acked) || after32(acked, p->sent_seq))
		return;
	p->peer_acked = acked;
	p->period_start = now_ns();             /* progress: the resend period starts again */
	while (p->base < p->sent_hw) {
		struct snic_hl_frame_header h = frame_header(slot(p, p->base));

		if (after32(h.seq + h.count, acked))
			break;
		p->base++;
	}
	if (p->nsent < p->base)
		p->nsent = p->base;
	compact(p);
}

/* Whether the drop knob takes the frame about to be sent. */
static int knob_drops_out(struct standin *t)
{
	if (t->drop_out_nth && --t->drop_out_nth == 0) {
		t->c.test_drops_out++;
		return 1;
	}
	return 0;
}

/* Hand n prepared frames (txiov) to the socket; a frame it refuses is lost, as on a cable. */
static void transmit(struct standin *t, unsigned n)
{
	struct standin_priv *p = priv(t);
	unsigned done = 0, i;

	for (i = 0; i < n; i++) {
		p->txmsg[i].msg_hdr.msg_iov = &p->txiov[i];
		p->txmsg[i].msg_hdr.msg_iovlen = 1;
	}
	while (done < n) {
		int r = sendmmsg(t->sock, p->txmsg + done, n - done, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			t->c.send_errors++;
			done++;
			continue;
		}
		for (i = done; i < done + (unsigned)r; i++) {
			t->c.frames_out++;
			t->c.bytes_out += p->txiov[i].iov_len - ETH_HLEN_;
		}
		done += (unsigned)r;
	}
}

/* Every frame leaves with the newest acked and credit (and a due NAK): the host needs no other. */
static void stamp(struct standin *t, struct snic_hl_frame_header *h)
{
	struct standin_priv *p = priv(t);

	h->credit = p->granted = (uint16_t)(p->rx_next_frame + t->window);
	h->acked = p->acked_sent = p->rx_expected;
	h->session = t->session;
	p->ack_now = 0;
	if (p->probe_due) {
		h->flags |= FLAG(PROBE);
		p->probe_due = 0;
	}
	if (p->nak_pending) {
		h->flags |= FLAG(NAK);
		p->nak_pending = 0;
		t->c.naks_sent++;
	}
}

/* Send the frames the replay buffer and the host's credit allow; returns how many went. */
static int send_frames(struct standin *t)
{
	struct standin_priv *p = priv(t);
	int sent = 0;

	while (p->nsent < p->nclosed) {
		unsigned n = 0;

		while (p->nsent < p->nclosed && n < TX_BATCH) {
			uint8_t *f = slot(p, p->nsent);
			struct snic_hl_frame_header h;

			if (p->nsent - p->base >= replay_frames(t))
				break;          /* the replay buffer is full: acks make room */
			if (!before16(p->tx_frame, p->peer_credit)) {
				if (!p->stalled) {
					t->c.credit_stalls++;
					if (p->nsent == p->base)
						p->period_start = now_ns();
				}
				p->stalled = 1;
				break;
			}
			p->stalled = 0;
			if (p->nsent == p->base)
				p->period_start = now_ns();     /* nothing was in flight: the period starts */
			h = frame_header(f);
			h.frame = p->tx_frame++;
			h.flags = 0;
			stamp(t, &h);
			memcpy(f + ETH_HLEN_, &h, sizeof(h));
			if (p->nsent < p->sent_hw) {
				t->c.resent_frames++;
			} else {
				p->sent_hw = p->nsent + 1;
				p->sent_seq = h.seq + h.count;
				t->c.messages_out += h.count;   /* each once, as the board counts them */
			}
			if (!knob_drops_out(t)) {
				p->txiov[n].iov_base = f;
				p->txiov[n].iov_len = p->lens[p->nsent];
				n++;
			}
			p->nsent++;
			sent++;
		}
		if (n)
			transmit(t, n);
		if (p->stalled || (p->nsent < p->nclosed && p->nsent - p->base >= replay_frames(t)))
			break;
	}
	if (p->nsent == p->nclosed)
		p->stalled = 0;
	return sent;
}

/* Go back to the first unacknowledged frame: every frame after it is sent again. */
static void go_back(struct standin *t)
{
	struct standin_priv *p = priv(t);

	p->nsent = p->base;
}

/* A frame of the header alone to dst (an acknowledgement, a grant, a NAK, a probe, STALE). */
static void send_bare(struct standin *t, const uint8_t *dst, const struct snic_hl_frame_header *h)
{
	uint8_t f[FRAME_START];

	put_eth_header(t, f, dst);
	memcpy(f + ETH_HLEN_, h, sizeof(*h));
	if (send(t->sock, f, sizeof(f), MSG_DONTWAIT) < 0) {
		t->c.send_errors++;
		return;
	}
	t->c.frames_out++;
	t->c.bytes_out += SNIC_HL_FRAME_HEADER_SIZE;
}

/* A frame of no messages (flags: PROBE, or 0) when the host must hear acked, credit or a NAK now:
 * messages were taken and not acknowledged yet (so the host's resend timer fires only on a loss),
 * a duplicate or a PROBE came, a NAK is due, or the grant grew by half the window.  It is not
 * numbered and needs no credit (spec), so it gets through when both sides have used theirs. */
static void send_control(struct standin *t, uint8_t flags)
{
	struct standin_priv *p = priv(t);
	uint16_t credit = (uint16_t)(p->rx_next_frame + t->window);
	uint16_t half = t->window / 2 ? t->window / 2 : 1;
	struct snic_hl_frame_header h;

	if (!t->bound)
		return;
	if (!flags && !p->nak_pending && !p->ack_now && p->acked_sent == p->rx_expected &&
	    (uint16_t)(credit - p->granted) < half)
		return;
	memset(&h, 0, sizeof(h));
	h.version = SNIC_HL_VERSION;
	h.flags = flags;
	/* seq: the next message the host will get; a frame waiting to be sent (again) holds it
	 * (a larger one would show the host a false gap). */
	h.seq = p->nsent < p->nclosed ? frame_header(slot(p, p->nsent)).seq : p->tx_seq;
	h.frame = p->tx_frame;
	stamp(t, &h);
	send_bare(t, t->host_mac, &h);
}

/* The resend period ran out with frames unacknowledged or waiting: send them again from the
 * first unacknowledged one (as far as credit goes), the first with flag PROBE so that the host
 * answers at once with acked and credit; a frame of no messages carries it if none can go.
 * (The board's encoder does the same.) */
static void resend_timer(struct standin *t, uint64_t now)
{
	struct standin_priv *p = priv(t);

	if (!t->bound || p->base == p->nclosed || now - p->period_start < (uint64_t)t->resend_us * 1000)
		return;
	p->period_start = now;
	t->c.resend_timeouts++;
	go_back(t);
	p->probe_due = 1;
	t->c.probes_sent++;
	send_frames(t);
	if (p->probe_due)
		send_control(t, FLAG(PROBE));
}

/* ------------------------------------------------------------------ host to board: messages */

/* The board's windows take whole words only (the gateware's _in_windows). */
static int in_local(const struct softnic *s, uint64_t addr, uint64_t len)
{
	return !(addr & 3) && addr >= s->dma_base && addr - s->dma_base + len <= s->dma_size;
}

static int in_csr(const struct standin *t, uint64_t addr, uint64_t len)
{
	return !(addr & 3) && addr >= t->csr_base && addr - t->csr_base + len <= t->csr_size;
}

static int in_counters(uint64_t addr, uint64_t len)
{
	return !(addr & 3) && addr >= SNIC_HL_COUNTERS_BASE && addr - SNIC_HL_COUNTERS_BASE + len <= SNIC_HL_COUNTERS_SIZE;
}

/* The counters window as the board's link serves it (BoardCounters, then zeros), from the
 * stand-in's own counts; the board's counters are 32 bits and wrap. */
static void counters_window(const struct standin *t, uint8_t out[SNIC_HL_COUNTERS_SIZE])
{
	struct snic_hl_board_counters b = {
		.rx_frames = (uint32_t)t->c.frames_in,
		.rx_messages = (uint32_t)t->c.messages_in,
		.malformed = (uint32_t)t->c.malformed,
		.gaps = (uint32_t)t->c.gap_frames,
		.bad_address = (uint32_t)(t->c.bad_address + t->c.bad_op),
		.duplicates = (uint32_t)t->c.duplicates,
		.overruns = (uint32_t)t->c.overruns,
		.tx_frames = (uint32_t)t->c.frames_out,
		.tx_messages = (uint32_t)t->c.messages_out,
		.credit_stalls = (uint32_t)t->c.credit_stalls,
		.foreign = (uint32_t)t->c.foreign,
		.resent_frames = (uint32_t)t->c.resent_frames,
		.stale = (uint32_t)t->c.stale,
	};

	memset(out, 0, SNIC_HL_COUNTERS_SIZE);
	memcpy(out, &b, sizeof(b));
}

/* WRITE: NIC-local memory, or the register window word by word as the bus would (the model
 * polls its registers, so a doorbell after descriptors is seen after them).  As on the board,
 * a WRITE of no data is no operation. */
static void apply_write(struct standin *t, uint32_t addr, const uint8_t *data, uint32_t len)
{
	struct softnic *s = t->nic;
	uint32_t i, w;

	if (!len)
		return;
	if (in_local(s, addr, len)) {
		memcpy(s->dma + (addr - s->dma_base), data, len);
	} else if (in_csr(t, addr, len)) {
		for (i = 0; i < len; i += 4) {
			memcpy(&w, data + i, 4);
			__atomic_store_n((uint32_t *)(s->csr + (addr - t->csr_base) + i), w, __ATOMIC_RELEASE);
		}
	} else if (!in_counters(addr, len)) {     /* the counters take no writes */
		t->c.bad_address++;
	}
}

/* READ: the words, as an ANSWER in the ordered stream (after every write made before it).
 * The board reads the ReadRequest from the first data word and asks for at most a standard
 * frame's room; a READ without data, of 0 or more words, or outside the windows is skipped. */
static void apply_read(struct standin *t, uint32_t addr, const uint8_t *data, uint32_t len)
{
	struct softnic *s = t->nic;
	struct snic_hl_read_request r;
	uint32_t bytes, i, w;
	uint8_t *out;

	if (len < SNIC_HL_READ_REQUEST_SIZE) {
		t->c.bad_address++;
		return;
	}
	memcpy(&r, data, sizeof(r));
	bytes = (uint32_t)r.words * 4;
	if (!r.words || r.words > MAX_READ_WORDS ||
	    (!in_local(s, addr, bytes) && !in_csr(t, addr, bytes) && !in_counters(addr, bytes))) {
		t->c.bad_address++;
		return;
	}
	out = whole_message(t, SNIC_HL_OP_ANSWER, r.tag, bytes);
	if (!out)
		return;
	if (in_local(s, addr, bytes)) {
		memcpy(out, s->dma + (addr - s->dma_base), bytes);
	} else if (in_counters(addr, bytes)) {
		uint8_t window[SNIC_HL_COUNTERS_SIZE];

		counters_window(t, window);
		memcpy(out, window + (addr - SNIC_HL_COUNTERS_BASE), bytes);
	} else {
		for (i = 0; i < bytes; i += 4) {
			w = __atomic_load_n((uint32_t *)(s->csr + (addr - t->csr_base) + i), __ATOMIC_ACQUIRE);
			memcpy(out + i, &w, 4);
		}
	}
	t->c.reads++;
}

static void apply(struct standin *t, const struct snic_hl_message_header *m, const uint8_t *data)
{
	switch (m->op) {
	case SNIC_HL_OP_WRITE:
		apply_write(t, m->addr, data, m->len);
		break;
	case SNIC_HL_OP_READ:
		apply_read(t, m->addr, data, m->len);
		break;
	default:
		t->c.bad_op++;
		return;
	}
}

/* ------------------------------------------------------------------ sessions */

/* The board's answer to a HELLO: flags HELLO|ANSWER (and BOUND, ...), the request's session. */
static void answer_hello(struct standin *t, const uint8_t *dst, uint32_t session, uint8_t flags, uint16_t credit)
{
	uint8_t f[FRAME_START + SNIC_HL_MESSAGE_HEADER_SIZE + SNIC_HL_HELLO_SIZE];
	struct snic_hl_frame_header fh;
	struct snic_hl_message_header mh;
	struct snic_hl_hello h;

	memset(&fh, 0, sizeof(fh));
	fh.version = SNIC_HL_VERSION;
	fh.flags = FLAG(HELLO) | FLAG(ANSWER) | flags;
	fh.count = 1;
	fh.credit = credit;
	fh.session = session;
	memset(&mh, 0, sizeof(mh));
	mh.op = SNIC_HL_OP_HELLO;
	mh.len = SNIC_HL_HELLO_SIZE;
	h.magic = SNIC_HL_HELLO_MAGIC;
	h.spec_hash = SNIC_HL_SPEC_HASH;
	h.mtu = t->mtu;
	h.window = t->window;
	h.host_base = SNIC_HL_HOST_WINDOW_BASE;
	h.host_size = SNIC_HL_HOST_WINDOW_SIZE;
	h.local_base = (uint32_t)t->nic->dma_base;
	h.local_size = (uint32_t)t->nic->dma_size;
	put_eth_header(t, f, dst);
	memcpy(f + ETH_HLEN_, &fh, sizeof(fh));
	memcpy(f + FRAME_START, &mh, sizeof(mh));
	memcpy(f + FRAME_START + SNIC_HL_MESSAGE_HEADER_SIZE, &h, sizeof(h));
	if (knob_drops_out(t))
		return;
	if (send(t->sock, f, sizeof(f), 0) < 0) {
		t->c.send_errors++;
		return;
	}
	t->c.frames_out++;
	t->c.bytes_out += sizeof(f) - ETH_HLEN_;
}

/* Numbering restarts both ways, and what was queued for a previous session is void. */
static void restart_numbering(struct standin *t, uint16_t peer_credit)
{
	struct standin_priv *p = priv(t);

	p->base = p->nsent = p->nclosed = p->sent_hw = 0;
	p->open = 0;
	p->stalled = 0;
	p->tx_seq = p->sent_seq = p->peer_acked = 0;
	p->tx_frame = 0;
	p->peer_credit = peer_credit;
	p->rx_expected = 0;
	p->rx_next_frame = 0;
	p->granted = t->window;
	p->acked_sent = 0;
	p->in_gap = p->nak_pending = p->ack_now = p->probe_due = 0;
}

/* Bind to the host at src for session: its memory becomes the model's host memory. */
static int bind_host(struct standin *t, const uint8_t *src, uint32_t session, const struct snic_hl_hello *h)
{
	struct standin_priv *p = priv(t);
	struct softnic *s = t->nic;

	/* Host memory as the model writes it: only the pages it touches are ever allocated. */
	if (p->shadow_size != h->host_size) {
		s->host_size = 0;
		if (p->shadow)
			munmap(p->shadow, p->shadow_size);
		p->shadow_size = 0;
		p->shadow = mmap(NULL, h->host_size, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p->shadow == MAP_FAILED) {
			p->shadow = NULL;
			t->bound = 0;
			return -1;
		}
		p->shadow_size = h->host_size;
	}
	s->host = p->shadow;
	s->host_base = h->host_base;
	s->host_size = h->host_size;
	memcpy(t->host_mac, src, 6);
	t->session = session;
	t->host_mtu = h->mtu < SNIC_HL_MTU_JUMBO ? h->mtu : SNIC_HL_MTU_JUMBO;
	t->host_window = h->window;
	t->bound = 1;
	restart_numbering(t, h->window);
	return 0;
}

/*
 * A frame with flag HELLO.  Discovery (PROBE): answered, nothing changes (BOUND if bound to
 * another station).  Binding (unicast to the board): an unbound board, or one bound to the same
 * station, or any with TAKEOVER, binds and answers; one bound to another station ignores it.
 * The same request again (same station and session: its answer was lost) is answered again
 * without restarting anything, so a late copy cannot undo what the session did since.
 */
static void take_hello(struct standin *t, const uint8_t *buf, uint32_t len)
{
	const uint8_t *src = buf + 6;
	struct snic_hl_frame_header fh = frame_header(buf);
	struct snic_hl_message_header mh;
	struct snic_hl_hello h;
	int elsewhere;

	if (len < FRAME_START + SNIC_HL_MESSAGE_HEADER_SIZE + SNIC_HL_HELLO_SIZE) {
		t->c.malformed++;
		return;
	}
	memcpy(&mh, buf + FRAME_START, sizeof(mh));
	memcpy(&h, buf + FRAME_START + SNIC_HL_MESSAGE_HEADER_SIZE, sizeof(h));
	if (fh.count != 1 || mh.op != SNIC_HL_OP_HELLO || mh.len < SNIC_HL_HELLO_SIZE || (mh.len & 3) ||
	    (uint32_t)FRAME_START + SNIC_HL_MESSAGE_HEADER_SIZE + mh.len > len || mh.seq != (uint8_t)fh.seq ||
	    h.magic != SNIC_HL_HELLO_MAGIC || h.spec_hash != SNIC_HL_SPEC_HASH || !fh.session) {
		t->c.malformed++;
		t->c.hellos_refused++;
		return;
	}
	if (fh.flags & FLAG(ANSWER)) {          /* another board's answer: not for a board */
		t->c.foreign++;
		return;
	}
	elsewhere = t->bound && memcmp(src, t->host_mac, 6);
	if (fh.flags & FLAG(PROBE)) {
		t->c.discoveries++;
		answer_hello(t, src, fh.session, elsewhere ? FLAG(BOUND) : 0, t->window);
		return;
	}
	if (elsewhere && !(fh.flags & FLAG(TAKEOVER))) {
		t->c.foreign++;
		return;
	}
	/* A window of 2**15 or more: its first credit (the window, past frame 0) compares as older
	 * than frame 0 modulo 2**16, so the board could never send in the session. */
	if (memcmp(buf, t->mac, 6) || h.mtu < SNIC_HL_MTU_STANDARD ||
	    h.window < SNIC_HL_MIN_WINDOW || h.window > 0x7FFF || ((h.host_base | h.host_size) & 3) || !h.host_size ||
	    h.host_base < SNIC_HL_HOST_WINDOW_BASE ||
	    (uint64_t)h.host_base + h.host_size > (uint64_t)SNIC_HL_HOST_WINDOW_BASE + SNIC_HL_HOST_WINDOW_SIZE) {
		/* A binding HELLO is unicast (a broadcast one would bind every board on the segment). */
		t->c.malformed++;
		t->c.hellos_refused++;
		return;
	}
	if (t->bound && !elsewhere && fh.session == t->session) {
		struct standin_priv *p = priv(t);

		t->c.hellos++;
		p->granted = (uint16_t)(p->rx_next_frame + t->window);     /* the newest grant, as any frame's */
		answer_hello(t, src, fh.session, 0, p->granted);
		return;
	}
	if (bind_host(t, src, fh.session, &h) < 0) {
		t->c.hellos_refused++;
		return;
	}
	t->c.hellos++;
	if (elsewhere)
		t->c.takeovers++;
	answer_hello(t, src, fh.session, 0, t->window);
}

/* An unbound board (reset, power cycle) tells a station that talks to it in a session that the
 * session is gone, and a bound one tells its own station that a frame of another session (the
 * host restarted, the frame is late) is not taken: a frame of no messages, flag STALE, the
 * frame's session. */
static void answer_stale(struct standin *t, const uint8_t *dst, uint32_t session)
{
	struct snic_hl_frame_header h;

	memset(&h, 0, sizeof(h));
	h.version = SNIC_HL_VERSION;
	h.flags = FLAG(STALE);
	h.session = session;
	t->c.stale++;
	send_bare(t, dst, &h);
}

/* ------------------------------------------------------------------ host to board: frames */

/* Messages from `ahead` past the expected one: a gap, NAKed once until it is filled. */
static void saw_gap(struct standin *t, int32_t ahead)
{
	struct standin_priv *p = priv(t);

	t->c.gap_frames++;
	if (!p->in_gap) {
		t->c.gaps++;
		t->c.gap_messages += (uint32_t)ahead;
		p->in_gap = p->nak_pending = 1;
	}
}

/* One frame from the socket: checked whole before any message of it takes effect. */
static void take_frame(struct standin *t, const uint8_t *buf, uint32_t len)
{
	struct standin_priv *p = priv(t);
	struct snic_hl_frame_header fh;
	struct snic_hl_message_header m;
	uint32_t pos, i;
	uint16_t frame_end;
	int32_t ahead;

	if (t->drop_in_nth && --t->drop_in_nth == 0) {
		t->c.test_drops_in++;
		return;
	}
	if (len < FRAME_START) {
		t->c.malformed++;
		return;
	}
	fh = frame_header(buf);
	if (fh.version != SNIC_HL_VERSION) {
		t->c.malformed++;
		return;
	}
	if (fh.flags & FLAG(HELLO)) {
		take_hello(t, buf, len);
		return;
	}
	if (t->bound && memcmp(buf + 6, t->host_mac, 6)) {
		t->c.foreign++;                 /* another station: not a word back */
		return;
	}
	if (!t->bound || fh.session != t->session) {
		answer_stale(t, buf + 6, fh.session);
		return;
	}
	if (len - ETH_HLEN_ > t->mtu) {
		t->c.malformed++;
		return;
	}
	for (i = 0, pos = FRAME_START; i < fh.count; i++) {
		if (pos + SNIC_HL_MESSAGE_HEADER_SIZE > len) {
			t->c.malformed++;
			return;
		}
		memcpy(&m, buf + pos, sizeof(m));
		pos += SNIC_HL_MESSAGE_HEADER_SIZE;
		if ((m.len & 3) || m.len > SNIC_HL_MAX_MESSAGE_DATA || pos + m.len > len ||
		    m.seq != (uint8_t)(fh.seq + i)) {
			t->c.malformed++;
			return;
		}
		pos += m.len;
	}
	/* What every well-formed frame of the session says, whatever becomes of its messages. */
	take_acked(t, fh.acked);
	if (before16(p->peer_credit, fh.credit))        /* grants only grow: a late one takes nothing back */
		p->peer_credit = fh.credit;
	if (fh.flags & FLAG(NAK)) {
		t->c.naks_received++;
		go_back(t);
	}
	if (fh.flags & FLAG(PROBE)) {
		t->c.probes_received++;
		p->ack_now = 1;
	}
	/* A frame of no messages is not numbered: its number is the host's next (spec). */
	frame_end = fh.count ? (uint16_t)(fh.frame + 1) : fh.frame;
	if (!before16(frame_end, p->rx_next_frame))
		p->rx_next_frame = frame_end;
	ahead = (int32_t)(fh.seq - p->rx_expected);
	if (ahead > 0) {
		/* Go-back-N: nothing after a gap takes effect; one NAK per gap, the host's
		 * resend timer covers a lost NAK or a lost resend. */
		saw_gap(t, ahead);
		return;
	}
	if (ahead < 0) {
		/* Wholly or partly carried out already (a resend): dropped whole, as the board
		 * does, and acked again at once so that a lost acknowledgement costs one resend.
		 * A frame of no messages numbered so says the host is about to send again what
		 * arrived: it too is told acked at once (and counted, as the board counts it). */
		t->c.duplicates++;
		p->ack_now = 1;
		return;
	}
	if (!fh.count) {
		/* The host's next message is the expected one: any gap is being filled already. */
		p->in_gap = p->nak_pending = 0;
		t->c.frames_in++;
		return;
	}
	if (!before16(fh.frame, p->granted)) {
		/* Beyond the newest credit granted: on the board every slot would be full. */
		t->c.overruns++;
		if (!p->in_gap)
			p->in_gap = p->nak_pending = 1;
		return;
	}
	p->in_gap = 0;
	for (i = 0, pos = FRAME_START; i < fh.count; i++) {
		memcpy(&m, buf + pos, sizeof(m));
		pos += SNIC_HL_MESSAGE_HEADER_SIZE;
		apply(t, &m, buf + pos);
		pos += m.len;
	}
	p->rx_expected += fh.count;
	t->c.messages_in += fh.count;
	t->c.frames_in++;
}

/* The frames waiting on the socket, a batch per system call; returns how many. */
static int receive_frames(struct standin *t)
{
	struct standin_priv *p = priv(t);
	int n, i;

	for (i = 0; i < RX_BATCH; i++)
		p->rxmsg[i].msg_hdr.msg_namelen = sizeof(p->rxaddr[i]);
	n = recvmmsg(t->sock, p->rxmsg, RX_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (p->rxaddr[i].sll_pkttype == PACKET_OUTGOING)
			continue;
		if (p->rxmsg[i].msg_hdr.msg_flags & MSG_TRUNC) {
			t->c.malformed++;
			continue;
		}
		take_frame(t, p->rxbuf + (size_t)i * SLOT_SIZE, p->rxmsg[i].msg_len);
	}
	return n;
}

/* ------------------------------------------------------------------ the loop */

static void wait_for_work(struct standin *t)
{
	struct standin_priv *p = priv(t);
	struct softnic *s = t->nic;
	struct pollfd fds[3];
	int n = 0;
	int model = !t->bound || replay_has_room(t);
	uint64_t timeout = IDLE_POLL_NS, v;
	struct timespec ts;

	fds[n++] = (struct pollfd){ .fd = t->sock, .events = POLLIN };
	fds[n++] = (struct pollfd){ .fd = t->wake_fd, .events = POLLIN };
	/* With the replay buffer full the model's wire input waits (backs up), so it wakes no one. */
	if (model && s->wire_fd >= 0)
		fds[n++] = (struct pollfd){ .fd = s->wire_fd, .events = POLLIN };
	if (model && (s->irq_status & rd(s, SNIC_REG_IRQ_MASK)) && !s->irq_line)
		timeout = HOLDOFF_POLL_NS;
	if (t->bound && p->base != p->nclosed) {
		uint64_t period = (uint64_t)t->resend_us * 1000, gone = now_ns() - p->period_start;

		if (period - (gone < period ? gone : period) < timeout)
			timeout = period - (gone < period ? gone : period);
	}
	ts.tv_sec = (time_t)(timeout / 1000000000u);
	ts.tv_nsec = (long)(timeout % 1000000000u);
	if (ppoll(fds, (nfds_t)n, &ts, NULL) > 0 && (fds[1].revents & POLLIN))
		if (read(t->wake_fd, &v, sizeof(v)) < 0)
			v = 0;
}

/*
 * A board reset (or power cycle): the session is forgotten (the board starts unbound and
 * answers the host's next frame with STALE), the NIC is reset as by its power-on reset, and
 * the link's counters read 0.  NIC-local memory keeps what it held, as block RAM does.
 */
void standin_reset(struct standin *t)
{
	struct softnic *s = t->nic;
	int32_t wire_fd = s->wire_fd, irq_fd = s->irq_fd;
	uint32_t build_id = rd(s, SNIC_REG_ID_BUILD), link = rd(s, SNIC_REG_LINK);
	uint64_t resets = t->c.resets;

	softnic_init(s, build_id);
	s->wire_fd = wire_fd;                   /* the cable and the PHY stay */
	s->irq_fd = irq_fd;
	wr(s, SNIC_REG_LINK, link);
	t->bound = 0;
	t->session = 0;
	memset(t->host_mac, 0, sizeof(t->host_mac));
	restart_numbering(t, 0);
	memset(&t->c, 0, sizeof(t->c));
	t->c.resets = resets + 1;
}

void standin_run(struct standin *t)
{
	struct standin_priv *p = priv(t);

	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		int busy;

		if (__atomic_load_n(&t->reset_request, __ATOMIC_ACQUIRE)) {
			standin_reset(t);
			__atomic_store_n(&t->reset_request, 0, __ATOMIC_RELEASE);
		}
		busy = receive_frames(t);
		/* The model moves only while the replay buffer has room (see the top). */
		if (!t->bound || replay_has_room(t))
			busy += softnic_step(t->nic);
		/* The step is over: what it wrote leaves now, not when a frame is full. */
		if (p->open)
			close_frame(t);
		busy += send_frames(t);
		resend_timer(t, now_ns());
		send_control(t, 0);
		if (!busy)
			wait_for_work(t);
	}
}

int standin_init(struct standin *t)
{
	struct standin_priv *p = calloc(1, sizeof(*p));
	int i;

	if (!p)
		return -ENOMEM;
	p->cap = OUT_SLOTS_MIN;
	p->slots = malloc((size_t)p->cap * SLOT_SIZE);
	p->lens = malloc(p->cap * sizeof(*p->lens));
	p->rxbuf = malloc((size_t)RX_BATCH * SLOT_SIZE);
	if (!p->slots || !p->lens || !p->rxbuf) {
		free(p->slots);
		free(p->lens);
		free(p->rxbuf);
		free(p);
		return -ENOMEM;
	}
	for (i = 0; i < RX_BATCH; i++) {
		p->rxiov[i].iov_base = p->rxbuf + (size_t)i * SLOT_SIZE;
		p->rxiov[i].iov_len = SLOT_SIZE;
		p->rxmsg[i].msg_hdr.msg_iov = &p->rxiov[i];
		p->rxmsg[i].msg_hdr.msg_iovlen = 1;
		p->rxmsg[i].msg_hdr.msg_name = &p->rxaddr[i];
	}
	if (t->replay < 2)
		t->replay = 4;
	if (!t->resend_us)
		t->resend_us = SNIC_HL_RESEND_US;
	t->priv = p;
	t->bound = 0;
	t->nic->hook_ctx = t;
	t->nic->host_write = on_host_write;
	t->nic->irq_rise = on_irq_rise;
	return 0;
}

void standin_free(struct standin *t)
{
	struct standin_priv *p = priv(t);

	if (!p)
		return;
	t->nic->host_write = NULL;
	t->nic->irq_rise = NULL;
	t->nic->hook_ctx = NULL;
	t->nic->host_size = 0;
	t->nic->host = NULL;
	if (p->shadow)
		munmap(p->shadow, p->shadow_size);
	free(p->slots);
	free(p->lens);
	free(p->rxbuf);
	free(p);
	t->priv = NULL;
}
