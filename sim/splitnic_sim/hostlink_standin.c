/*
 * The board's side of the eth host link, on the software NIC model: a stand-in
 * for the board at full speed, to measure the host side at line rate.
 *
 * Ref: spec/splitnic_spec/hostlink.py, module docstring (the contract: frames,
 * messages, sequence numbers, NAK, credit), generated into
 * hostdrv/splitnic/hostlink_spec.h; spec/splitnic_spec/board.py (the board's
 * address map); sim/splitnic_sim/hostlink_standin.py drives it.
 *
 * One thread (standin_run) owns the model (softnic.c, compiled into the same
 * cffi module) and the raw socket: it applies the host's messages in order,
 * steps the model, turns the model's writes into the host window and its
 * interrupt rises into messages, batches them into frames up to the host's
 * mtu and sends them when the step ends (so a lone completion waits for
 * nothing), within the host's credit.  Idle, it sleeps in poll().
 *
 * Out of credit, the model is not stepped until credit comes: its wire input
 * (mailbox, TAP) backs up and drops, as the board's receive FIFO would.  One
 * step's messages are always kept whole, so the queue of frames is bounded by
 * a step's work (RX_BUDGET frames per source), not by the host's window.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <sys/mman.h>

#include "hostlink_spec.h"

/* cdef-begin: this block is handed to cffi's cdef() by _softnic_build.py. */

/* What the stand-in saw and did; every drop is counted somewhere here. */
struct standin_counters {
	uint64_t frames_in;         /* host-link frames taken from the host (HELLOs included) */
	uint64_t messages_in;       /* messages applied, in order */
	uint64_t frames_out;        /* frames handed to the socket (HELLO answers included) */
	uint64_t messages_out;
	uint64_t bytes_out;         /* bytes of those frames after the Ethernet header */
	uint64_t hellos;            /* HELLOs answered */
	uint64_t hellos_refused;    /* HELLOs of another spec hash or magic, or with unusable fields */
	uint64_t foreign;           /* another source address than the host's, or another version */
	uint64_t malformed;         /* headers or messages past the frame's end, bad lengths or numbers */
	uint64_t bad_address;       /* WRITE/READ outside NIC-local memory, the registers and the counters */
	uint64_t bad_op;            /* messages the board does not take (ANSWER, IRQ, HELLO unflagged, ...) */
	uint64_t gaps;              /* host-to-NIC gaps (one per NAK) */
	uint64_t gap_messages;      /* messages missing at those gaps */
	uint64_t dropped_after_gap; /* frames dropped while waiting for the expected message */
	uint64_t duplicates;        /* frames whose messages had all been applied (a resend) */
	uint64_t naks_sent;
	uint64_t credit_stalls;     /* times the board ran out of the host's credit */
	uint64_t irqs_sent;
	uint64_t reads;             /* READs answered */
	uint64_t send_errors;       /* frames the socket refused (lost, as on a cable) */
	uint64_t test_drops_out;    /* frames dropped by the drop_out_nth knob */
	uint64_t test_drops_in;     /* frames dropped by the drop_in_nth knob */
};

struct standin {
	struct softnic *nic;        /* the model; its dma[] is NIC-local memory */
	int32_t sock;               /* AF_PACKET socket, SOCK_RAW, bound to SNIC_HL_ETHERTYPE on the port */
	int32_t wake_fd;            /* an eventfd: written to wake the loop (stop, frames injected) */
	int32_t stop;               /* standin_run returns when set */
	uint8_t mac[6];             /* the port's address */
	uint32_t csr_base;          /* the NIC's register window on the board's bus */
	uint32_t csr_size;
	uint16_t mtu;               /* largest frame after the Ethernet header this side takes */
	uint16_t window;            /* frames this side buffers: the credit it grants */
	/* Loss knobs: drop the Nth frame from now (1: the next one) sent / received; 0: none. */
	uint32_t drop_out_nth;
	uint32_t drop_in_nth;
	int32_t linked;             /* a host said HELLO; host_mac is its address */
	uint8_t host_mac[6];
	uint16_t host_mtu;
	uint16_t host_window;
	struct standin_counters c;
	void *priv;                 /* standin_init's state */
};

int standin_init(struct standin *t);
void standin_run(struct standin *t);
void standin_free(struct standin *t);

/* cdef-end */

#define ETH_HLEN_ 14
#define FRAME_START (ETH_HLEN_ + SNIC_HL_FRAME_HEADER_SIZE)
/* A frame buffer: the Ethernet header and the largest mtu, rounded up. */
#define SLOT_SIZE 9216
#define RX_BATCH 32
#define TX_BATCH 32
#define OUT_SLOTS_MIN 64
/* poll() timeouts: idle (the model's mailbox and registers written from
 * Python are seen at least this often), and while an interrupt waits for
 * its hold-off (IRQ_COALESCE) to run out. */
#define IDLE_POLL_MS 100
#define HOLDOFF_POLL_MS 1

_Static_assert(SLOT_SIZE >= ETH_HLEN_ + SNIC_HL_MTU_JUMBO, "a slot holds a jumbo frame");

struct standin_priv {
	/* Host memory as the model wrote it (the host's DMA memory from its Hello). */
	uint8_t *shadow;
	size_t shadow_size;
	/* NIC to host: frames [nsent, nclosed) wait for credit; frame nclosed is being filled if open. */
	uint8_t *slots;
	uint32_t *lens;
	uint32_t cap, nsent, nclosed;
	int open;
	uint32_t open_len, open_count, open_seq, last_msg;  /* last_msg: offset of the newest header, 0: none */
	uint32_t tx_seq;            /* number of the next message */
	uint16_t tx_frame;          /* number of the next frame */
	uint16_t peer_credit;       /* frames numbered below it may be sent */
	int stalled;
	/* Host to NIC. */
	uint32_t rx_expected;       /* number of the next message to apply */
	uint16_t rx_next_frame;     /* one past the newest frame number received */
	uint16_t granted;           /* the credit last sent */
	uint32_t acked_sent;        /* the acked last sent */
	int in_gap, nak_pending;
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
/* Serial arithmetic of the 16-bit frame numbers: a before b. */
static inline int before16(uint16_t a, uint16_t b) { return (int16_t)(a - b) < 0; }

/* ------------------------------------------------------------------ NIC to host */

static int open_frame(struct standin *t)
{
	struct standin_priv *p = priv(t);
	uint8_t *f;
	uint16_t type = htons(SNIC_HL_ETHERTYPE);

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
	f = slot(p, p->nclosed);
	memcpy(f, t->host_mac, 6);
	memcpy(f + 6, t->mac, 6);
	memcpy(f + 12, &type, 2);
	p->open = 1;
	p->open_len = FRAME_START;
	p->open_count = 0;
	p->open_seq = p->tx_seq;
	p->last_msg = 0;
	return 0;
}

/* The frame being filled is complete: its number, credit and acked are set when it is sent. */
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
	t->c.messages_out++;
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

	if (!t->linked || !len)
		return;
	write_messages(t, (uint32_t)first, ptr - (addr - first), (uint32_t)(end - first));
}

/* The model's hook: its interrupt line rose. */
static void on_irq_rise(void *ctx, uint64_t rises)
{
	struct standin *t = ctx;
	uint32_t word = (uint32_t)rises;
	uint8_t *d;

	if (!t->linked)
		return;
	d = whole_message(t, SNIC_HL_OP_IRQ, 0, 4);
	if (d) {
		memcpy(d, &word, 4);
		t->c.irqs_sent++;
	}
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

/* Send the closed frames the host's credit allows; returns how many went. */
static int send_frames(struct standin *t)
{
	struct standin_priv *p = priv(t);
	int sent = 0;

	while (p->nsent < p->nclosed) {
		unsigned n = 0;

		while (p->nsent < p->nclosed && n < TX_BATCH) {
			uint8_t *f = slot(p, p->nsent);
			struct snic_hl_frame_header h;

			if (!before16(p->tx_frame, p->peer_credit)) {
				if (!p->stalled)
					t->c.credit_stalls++;
				p->stalled = 1;
				break;
			}
			p->stalled = 0;
			/* Numbered, acknowledged and granted as it leaves, so both are the newest. */
			memcpy(&h, f + ETH_HLEN_, sizeof(h));
			h.frame = p->tx_frame++;
			h.credit = p->granted = (uint16_t)(p->rx_next_frame + t->window);
			h.acked = p->acked_sent = p->rx_expected;
			h.flags = 0;
			if (p->nak_pending) {
				h.flags |= SNIC_HL_FRAME_HEADER_FLAGS_NAK_MASK;
				p->nak_pending = 0;
				t->c.naks_sent++;
			}
			memcpy(f + ETH_HLEN_, &h, sizeof(h));
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
		if (p->stalled)
			break;
	}
	if (p->nsent == p->nclosed && !p->open)
		p->nsent = p->nclosed = 0;
	return sent;
}

/* A frame with no messages when messages were taken and not acknowledged yet, the host
 * has used half the credit it has seen, or a NAK is due, and nothing else is about to
 * carry the news.  Acknowledging at once keeps the host's resend timer for real losses. */
static void send_grant(struct standin *t)
{
	struct standin_priv *p = priv(t);
	uint16_t credit = (uint16_t)(p->rx_next_frame + t->window);

	/* A frame about to leave carries the news; one waiting for credit does not. */
	if (!t->linked || p->open || (p->nsent != p->nclosed && before16(p->tx_frame, p->peer_credit)))
		return;
	if (!p->nak_pending && (uint16_t)(credit - p->granted) < t->window / 2 && p->acked_sent == p->rx_expected)
		return;
	/* Not numbered and outside the credit (spec): a grant or a NAK must get through
	 * when both sides have used their credit. */
	/* seq: the next message the host will get; frames waiting for credit hold it
	 * (a larger one would look like a gap to the host). */
	uint32_t next_seq = p->tx_seq;
	if (p->nsent != p->nclosed)
		memcpy(&next_seq, slot(p, p->nsent) + ETH_HLEN_ + offsetof(struct snic_hl_frame_header, seq), 4);
	struct snic_hl_frame_header h = {
		.version = SNIC_HL_VERSION, .seq = next_seq, .frame = p->tx_frame,
		.credit = p->granted = credit, .acked = p->acked_sent = p->rx_expected,
	};
	if (p->nak_pending) {
		h.flags |= SNIC_HL_FRAME_HEADER_FLAGS_NAK_MASK;
		p->nak_pending = 0;
		t->c.naks_sent++;
	}
	uint8_t f[ETH_HLEN_ + sizeof(h)];
	uint16_t type = htons(SNIC_HL_ETHERTYPE);
	memcpy(f, t->host_mac, 6);
	memcpy(f + 6, t->mac, 6);
	memcpy(f + 12, &type, 2);
	memcpy(f + ETH_HLEN_, &h, sizeof(h));
	if (send(t->sock, f, sizeof(f), MSG_DONTWAIT) < 0)
		t->c.send_errors++;
	t->c.frames_out++;
}

/* ------------------------------------------------------------------ host to NIC */

static int in_local(const struct softnic *s, uint64_t addr, uint64_t len)
{
	return addr >= s->dma_base && addr - s->dma_base + len <= s->dma_size;
}

static int in_csr(const struct standin *t, uint64_t addr, uint64_t len)
{
	return !(addr & 3) && !(len & 3) && addr >= t->csr_base && addr - t->csr_base + len <= t->csr_size;
}

static int in_counters(uint64_t addr, uint64_t len)
{
	return !(addr & 3) && !(len & 3) && addr >= SNIC_HL_COUNTERS_BASE &&
	       addr - SNIC_HL_COUNTERS_BASE + len <= SNIC_HL_COUNTERS_SIZE;
}

/* The counters window as the board's link serves it (BoardCounters, then zeros), from the
 * stand-in's own counts; the board's counters are 32 bits and wrap. */
static void counters_window(const struct standin *t, uint8_t out[SNIC_HL_COUNTERS_SIZE])
{
	struct snic_hl_board_counters b = {
		.rx_frames = (uint32_t)t->c.frames_in,
		.rx_messages = (uint32_t)t->c.messages_in,
		.malformed = (uint32_t)(t->c.malformed + t->c.foreign),
		.gaps = (uint32_t)t->c.gaps,
		.bad_address = (uint32_t)(t->c.bad_address + t->c.bad_op),
		.duplicates = (uint32_t)t->c.duplicates,
		.overruns = 0,          /* it takes each frame as it comes: no buffer to run over */
		.tx_frames = (uint32_t)t->c.frames_out,
		.tx_messages = (uint32_t)t->c.messages_out,
		.credit_stalls = (uint32_t)t->c.credit_stalls,
	};

	memset(out, 0, SNIC_HL_COUNTERS_SIZE);
	memcpy(out, &b, sizeof(b));
}

/* WRITE: NIC-local memory, or the register window word by word as the bus would (the model
 * polls its registers, so a doorbell after descriptors is seen after them). */
static void apply_write(struct standin *t, uint32_t addr, const uint8_t *data, uint32_t len)
{
	struct softnic *s = t->nic;
	uint32_t i, w;

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

/* READ: the words, as an ANSWER in the ordered stream (after every write made before it). */
static void apply_read(struct standin *t, uint32_t addr, const uint8_t *data, uint32_t len)
{
	struct softnic *s = t->nic;
	struct snic_hl_read_request r;
	uint32_t bytes, i, w;
	uint8_t *out;

	if (len < SNIC_HL_READ_REQUEST_SIZE) {
		t->c.malformed++;
		return;
	}
	memcpy(&r, data, sizeof(r));
	bytes = (uint32_t)r.words * 4;
	/* The answer must fit one of the host's frames. */
	if (!r.words || bytes > SNIC_HL_MAX_MESSAGE_DATA ||
	    bytes + SNIC_HL_FRAME_HEADER_SIZE + SNIC_HL_MESSAGE_HEADER_SIZE > t->host_mtu) {
		t->c.malformed++;
		return;
	}
	if (!in_local(s, addr, bytes) && !in_csr(t, addr, bytes) && !in_counters(addr, bytes)) {
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

/* The host's HELLO frame opens (or reopens) the link: numbering restarts on both sides. */
static void answer_hello(struct standin *t)
{
	uint8_t f[FRAME_START + SNIC_HL_MESSAGE_HEADER_SIZE + SNIC_HL_HELLO_SIZE];
	uint16_t type = htons(SNIC_HL_ETHERTYPE);
	struct snic_hl_frame_header fh;
	struct snic_hl_message_header mh;
	struct snic_hl_hello h;

	memset(&fh, 0, sizeof(fh));
	fh.version = SNIC_HL_VERSION;
	fh.flags = SNIC_HL_FRAME_HEADER_FLAGS_HELLO_MASK;
	fh.count = 1;
	fh.credit = t->window;
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
	memcpy(f, t->host_mac, 6);
	memcpy(f + 6, t->mac, 6);
	memcpy(f + 12, &type, 2);
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

static void take_hello(struct standin *t, const uint8_t *src, const uint8_t *buf, uint32_t len)
{
	struct standin_priv *p = priv(t);
	struct snic_hl_frame_header fh;
	struct snic_hl_message_header mh;
	struct snic_hl_hello h;
	struct softnic *s = t->nic;

	if (len < FRAME_START + SNIC_HL_MESSAGE_HEADER_SIZE + SNIC_HL_HELLO_SIZE) {
		t->c.malformed++;
		return;
	}
	memcpy(&fh, buf + ETH_HLEN_, sizeof(fh));
	memcpy(&mh, buf + FRAME_START, sizeof(mh));
	if (fh.count != 1 || mh.op != SNIC_HL_OP_HELLO || mh.len < SNIC_HL_HELLO_SIZE ||
	    (uint32_t)FRAME_START + SNIC_HL_MESSAGE_HEADER_SIZE + mh.len > len) {
		t->c.malformed++;
		return;
	}
	memcpy(&h, buf + FRAME_START + SNIC_HL_MESSAGE_HEADER_SIZE, sizeof(h));
	if (h.magic != SNIC_HL_HELLO_MAGIC || h.spec_hash != SNIC_HL_SPEC_HASH || h.mtu < SNIC_HL_MTU_STANDARD ||
	    h.window < SNIC_HL_MIN_WINDOW || ((h.host_base | h.host_size) & 3) || !h.host_size ||
	    h.host_base < SNIC_HL_HOST_WINDOW_BASE ||
	    (uint64_t)h.host_base + h.host_size > (uint64_t)SNIC_HL_HOST_WINDOW_BASE + SNIC_HL_HOST_WINDOW_SIZE) {
		t->c.hellos_refused++;
		return;
	}
	/* Host memory as the model writes it: only the pages it touches are ever allocated. */
	if (p->shadow_size != h.host_size) {
		s->host_size = 0;
		if (p->shadow)
			munmap(p->shadow, p->shadow_size);
		p->shadow_size = 0;
		p->shadow = mmap(NULL, h.host_size, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p->shadow == MAP_FAILED) {
			p->shadow = NULL;
			t->linked = 0;
			t->c.hellos_refused++;
			return;
		}
		p->shadow_size = h.host_size;
	}
	s->host = p->shadow;
	s->host_base = h.host_base;
	s->host_size = h.host_size;
	memcpy(t->host_mac, src, 6);
	t->host_mtu = h.mtu < SNIC_HL_MTU_JUMBO ? h.mtu : SNIC_HL_MTU_JUMBO;
	t->host_window = h.window;
	t->linked = 1;
	/* What was queued for the previous session is void: the host starts afresh. */
	p->nsent = p->nclosed = 0;
	p->open = 0;
	p->stalled = 0;
	p->tx_seq = 0;
	p->tx_frame = 0;
	p->peer_credit = h.window;
	p->rx_expected = 0;
	p->rx_next_frame = 0;
	p->granted = t->window;
	p->acked_sent = 0;
	p->in_gap = p->nak_pending = 0;
	t->c.frames_in++;
	t->c.hellos++;
	answer_hello(t);
}

/* One frame from the socket: checked whole before any message of it takes effect. */
static void take_frame(struct standin *t, const uint8_t *buf, uint32_t len)
{
	struct standin_priv *p = priv(t);
	struct snic_hl_frame_header fh;
	struct snic_hl_message_header m;
	uint32_t pos, i, skip;
	int32_t ahead;

	if (t->drop_in_nth && --t->drop_in_nth == 0) {
		t->c.test_drops_in++;
		return;
	}
	if (len < FRAME_START) {
		t->c.malformed++;
		return;
	}
	memcpy(&fh, buf + ETH_HLEN_, sizeof(fh));
	if (fh.version != SNIC_HL_VERSION) {
		t->c.foreign++;
		return;
	}
	if (fh.flags & SNIC_HL_FRAME_HEADER_FLAGS_HELLO_MASK) {
		take_hello(t, buf + 6, buf, len);
		return;
	}
	if (!t->linked || memcmp(buf + 6, t->host_mac, 6)) {
		t->c.foreign++;
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
	t->c.frames_in++;
	/* Credit and frame numbers only move forward (an old resend carries old ones). */
	if (before16(p->peer_credit, fh.credit))
		p->peer_credit = fh.credit;
	/* A frame of no messages is not numbered (spec): it takes no credit. */
	if (fh.count && !before16((uint16_t)(fh.frame + 1), p->rx_next_frame))
		p->rx_next_frame = (uint16_t)(fh.frame + 1);
	ahead = (int32_t)(fh.seq - p->rx_expected);
	if (ahead > 0) {
		/* Go-back-N: nothing after a gap takes effect; one NAK per gap, the host's
		 * RESEND_US timer covers a lost NAK or a lost resend. */
		if (!p->in_gap) {
			t->c.gaps++;
			t->c.gap_messages += (uint32_t)ahead;
			p->in_gap = p->nak_pending = 1;
		}
		t->c.dropped_after_gap++;
		return;
	}
	skip = (uint32_t)-ahead;
	if (skip && skip >= fh.count) {
		t->c.duplicates++;
		return;
	}
	p->in_gap = 0;
	for (i = 0, pos = FRAME_START; i < fh.count; i++) {
		memcpy(&m, buf + pos, sizeof(m));
		pos += SNIC_HL_MESSAGE_HEADER_SIZE;
		if (i >= skip) {
			apply(t, &m, buf + pos);
			p->rx_expected++;
			t->c.messages_in++;
		}
		pos += m.len;
	}
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
	int n = 0, timeout = IDLE_POLL_MS;
	uint64_t v;

	fds[n++] = (struct pollfd){ .fd = t->sock, .events = POLLIN };
	fds[n++] = (struct pollfd){ .fd = t->wake_fd, .events = POLLIN };
	/* Out of credit the model's wire input waits (backs up), so it wakes no one. */
	if (!p->stalled && s->wire_fd >= 0)
		fds[n++] = (struct pollfd){ .fd = s->wire_fd, .events = POLLIN };
	if (!p->stalled && (s->irq_status & rd(s, SNIC_REG_IRQ_MASK)) && !s->irq_line)
		timeout = HOLDOFF_POLL_MS;
	if (poll(fds, (nfds_t)n, timeout) > 0 && (fds[1].revents & POLLIN))
		if (read(t->wake_fd, &v, sizeof(v)) < 0)
			v = 0;
}

void standin_run(struct standin *t)
{
	struct standin_priv *p = priv(t);

	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		int busy = receive_frames(t);

		/* The model moves only when everything it wrote has left (see the top). */
		if (p->nsent == p->nclosed)
			busy += softnic_step(t->nic);
		/* The step is over: what it wrote leaves now, not when a frame is full. */
		if (p->open)
			close_frame(t);
		busy += send_frames(t);
		send_grant(t);
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
	t->priv = p;
	t->linked = 0;
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
