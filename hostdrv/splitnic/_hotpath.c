/*
 * The driver's hot path: harvest completions, re-post RX buffers, post TX
 * frames, and the volatile 32-bit register accessors of the mmio link.
 *
 * Ref: spec/splitnic_spec/nic.py (Descriptor, Completion and its PHASE
 * bit, ring index rules); docs/registers.md (RXQ/TXQ TAIL, HEAD, CPL).
 *
 * Built by cffi in API mode (hostdrv/splitnic/_hotpath_build.py) into
 * splitnic._hotpath_cffi.  Every offset and layout comes from the generated
 * splitnic_spec.h; the queues in rx_queue.py / tx_queue.py call these
 * functions, there is no second Python implementation of them.
 *
 * Memory ordering, written down once (ixy does the same in its device.h):
 *
 * - Descriptors and completions live in DMA memory: ordinary write-back
 *   memory that the NIC (or, in simulation, another process) reads and writes
 *   behind the compiler's back.  Every access goes through a volatile pointer
 *   so the compiler emits exactly one load/store per access and never caches
 *   a completion's PHASE in a register across polls.
 * - Producer side (driver posts descriptors, then rings TAIL): the descriptor
 *   stores must be visible before the TAIL store.  On x86-64 (TSO) stores are
 *   not reordered with other stores, including a store to an uncached BAR, so
 *   a compiler barrier is enough; elsewhere a full fence (snic_wmb) is used.
 * - Consumer side (driver sees PHASE, then reads cookie/length/status): the
 *   NIC writes a completion's words in ascending order, PHASE last.  The
 *   driver must not read the other words before it has seen PHASE flip.  On
 *   x86-64 loads are not reordered with older loads, so again a compiler
 *   barrier suffices; elsewhere an acquire fence (snic_rmb).
 * - The same holds for the mmio link's register window (a shared-memory file
 *   in tests, the PCIe BAR later): 32-bit aligned volatile accesses are single
 *   instructions and therefore atomic.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "splitnic_spec.h"

#if defined(__x86_64__) || defined(__i386__)
#define snic_wmb() __asm__ __volatile__("" ::: "memory")
#define snic_rmb() __asm__ __volatile__("" ::: "memory")
#else
#define snic_wmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define snic_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#endif

/* cdef-begin: this block is handed to cffi's cdef() by _hotpath_build.py. */

/* Buffer states (one byte per buffer) for the accounting checks. */
#define SNIC_BUF_FREE 0     /* on the driver's free stack */
#define SNIC_BUF_POSTED 1   /* in the descriptor ring: the NIC owns it */
#define SNIC_BUF_HELD 2     /* lent to the application (RX packet, TX buffer) */

/* Driver-side state of one RX or TX queue. Python fills the pointers and
 * sizes, then calls snic_queue_init(). */
struct snic_queue {
	uint8_t *desc;              /* descriptor ring, 2**log2 entries */
	uint8_t *cpl;               /* completion ring, 2**log2 entries */
	uint8_t *bufs;              /* buffer k at bufs + k * buf_stride */
	uint64_t bufs_dev;          /* device address of bufs */
	volatile uint32_t *tail_reg;   /* TAIL register if it is memory (mmio link), else NULL */
	uint32_t buf_stride;
	uint32_t buf_size;          /* RX: Descriptor.length of every buffer */
	uint32_t log2;
	uint32_t nbufs;
	uint32_t is_tx;
	uint32_t tail;              /* next descriptor index to write (free-running) */
	uint32_t next_cpl;          /* next completion index to read (free-running) */
	uint32_t nfree;
	uint32_t *free_stack;       /* nbufs entries */
	uint8_t *state;             /* nbufs entries, SNIC_BUF_* */
	uint64_t bad_cookies;       /* completions naming a buffer the NIC does not own */
	uint64_t errors;            /* completions with a non-zero status, or a length past the buffer */
	uint64_t bad_lengths;       /* RX completions claiming more bytes than the buffer holds (clamped) */
};

/* One ring of the stub module's shared area (spec/splitnic_spec/tunnel.py):
 * Desc entries (len, flags: two little-endian u32) and one slot per entry. */
struct snic_kring {
	uint8_t *desc;
	uint8_t *data;
	uint32_t *prod;             /* the PROD word in the control page */
	uint32_t *cons;             /* the CONS word in the control page */
	uint32_t log2;
	uint32_t slot_size;
	uint32_t desc_size;
	uint32_t index;             /* our copy of the index we own: k2u CONS, u2k PROD */
	uint64_t bad_index;         /* the other side's index was more than a ring away */
};

/* The kernel path's per-frame work: NIC RX queue 0 -> kernel, kernel -> NIC TX
 * queue 0, one copy each way, one doorbell and one kick per burst. */
struct snic_pump {
	struct snic_queue *rx;      /* NIC RX queue 0: frames for the kernel */
	struct snic_queue *tx;      /* NIC TX queue 0: the kernel's frames */
	struct snic_kring *k2u;     /* stub backend: the kernel's frames */
	struct snic_kring *u2k;     /* stub backend: frames for the kernel */
	int32_t fd;                 /* /dev/splitnic (kick; -1: rings in plain memory) or the TAP */
	uint32_t tap;               /* 1: TAP backend (one read/write per frame), 0: stub rings */
	uint32_t kick_request;      /* IOC_KICK */
	uint32_t frame_min;         /* shortest frame either side takes: an Ethernet header */
	uint8_t *spill;             /* TAP: where read() puts what does not fit a TX buffer */
	uint32_t spill_size;        /* (a TX buffer plus this is the largest frame TAP gives) */
	uint64_t to_kernel;
	uint64_t to_nic;
	uint64_t drop_to_kernel;    /* NIC frames the kernel side cannot take (short, errored, too long) */
	uint64_t drop_to_nic;       /* kernel frames that do not fit a TX buffer (or are shorter than a header) */
	uint64_t tap_errors;        /* TAP write()s the kernel refused */
	uint64_t kicks;
	uint32_t rx_blocked;        /* last pass: NIC frames wait, the kernel side had no room */
	uint32_t tx_blocked;        /* last pass: kernel frames wait, the TX ring had no room */
};

void snic_queue_init(struct snic_queue *q);
int snic_harvest(struct snic_queue *q, int max, uint32_t *cookies, uint16_t *lengths, uint8_t *status);
int snic_refill(struct snic_queue *q);
int snic_release(struct snic_queue *q, const uint32_t *cookies, int n);
int snic_release_one(struct snic_queue *q, uint32_t cookie);
int snic_take(struct snic_queue *q);
int snic_tx_copy(struct snic_queue *q, const uint8_t *data, const uint16_t *lengths, int n);
int snic_tx_forward(struct snic_queue *tx, const struct snic_queue *rx, const uint32_t *cookies,
		    const uint16_t *lengths, int n);
int snic_tx_post_held(struct snic_queue *q, const uint32_t *cookies, const uint16_t *lengths, int n);
int snic_pump_n2k(struct snic_pump *p, int max);
int snic_pump_k2n(struct snic_pump *p, int max);
int snic_pump_step(struct snic_pump *p, int max);
int snic_rx_pending(const struct snic_queue *q);
int snic_udp_swap(const struct snic_queue *q, uint32_t *cookies, uint16_t *lengths, uint8_t *status, int n);
int snic_tx_room(const struct snic_queue *q);
int snic_kring_recv(struct snic_kring *r, int max, uint8_t *out, uint32_t out_size, uint32_t *lengths);
int snic_kring_send(struct snic_kring *r, const uint8_t *data, const uint32_t *lengths, int n,
		    uint64_t *oversize);
uint32_t snic_mmio_read32(uint8_t *base, uint32_t offset);
void snic_mmio_write32(uint8_t *base, uint32_t offset, uint32_t value);
void snic_mmio_read_burst(uint8_t *base, uint32_t offset, uint32_t *out, int count);

/* cdef-end */

#define RING_ENTRIES(q) (1u << (q)->log2)
#define RING_MASK(q) (RING_ENTRIES(q) - 1u)
#define INDEX_MASK ((1u << SNIC_INDEX_BITS) - 1u)

void snic_queue_init(struct snic_queue *q)
{
	uint32_t k;

	q->tail = 0;
	q->next_cpl = 0;
	q->bad_cookies = 0;
	q->errors = 0;
	q->bad_lengths = 0;
	/* Stack order: buffer 0 is popped first, so buffers go out in address order. */
	for (k = 0; k < q->nbufs; k++) {
		q->free_stack[k] = q->nbufs - 1 - k;
		q->state[k] = SNIC_BUF_FREE;
	}
	q->nfree = q->nbufs;
}

static inline volatile struct snic_completion *cpl_slot(const struct snic_queue *q, uint32_t i)
{
	return (volatile struct snic_completion *)(q->cpl + (size_t)(i & RING_MASK(q)) * SNIC_COMPLETION_SIZE);
}

static inline volatile struct snic_descriptor *desc_slot(const struct snic_queue *q, uint32_t i)
{
	return (volatile struct snic_descriptor *)(q->desc + (size_t)(i & RING_MASK(q)) * SNIC_DESCRIPTOR_SIZE);
}

/* Free descriptor slots: a slot is reusable once its completion was harvested
 * (RX and TX complete in descriptor order, one completion per descriptor). */
static inline uint32_t ring_space(const struct snic_queue *q)
{
	return RING_ENTRIES(q) - (q->tail - q->next_cpl);
}

static inline void ring_doorbell(struct snic_queue *q)
{
	snic_wmb();  /* descriptors before TAIL; see the header comment */
	if (q->tail_reg)
		*q->tail_reg = q->tail & INDEX_MASK;
}

/* Collect up to `max` completions whose PHASE says they belong to this lap.
 * RX: the buffers become HELD (lent to the caller). TX: they return to the
 * free stack. Returns the number collected. */
int snic_harvest(struct snic_queue *q, int max, uint32_t *cookies, uint16_t *lengths, uint8_t *status)
{
	int n = 0;

	while (n < max && q->next_cpl != q->tail) {
		volatile struct snic_completion *c = cpl_slot(q, q->next_cpl);
		uint8_t phase = 1u - ((q->next_cpl >> q->log2) & 1u);
		uint32_t cookie;
		uint8_t st;

		if ((c->flags & SNIC_COMPLETION_FLAGS_PHASE_MASK) != phase)
			break;
		snic_rmb();  /* PHASE before the words written ahead of it */
		cookie = c->cookie;
		st = c->status;
		q->next_cpl++;
		if (cookie >= q->nbufs || q->state[cookie] != SNIC_BUF_POSTED) {
			q->bad_cookies++;
			continue;
		}
		if (st)
			q->errors++;
		if (q->is_tx) {
			q->state[cookie] = SNIC_BUF_FREE;
			q->free_stack[q->nfree++] = cookie;
		} else {
			q->state[cookie] = SNIC_BUF_HELD;
		}
		if (cookies) {
			uint16_t len = c->length;

			/* A NIC that misreports the length must not make anyone read
			 * past the buffer we posted. */
			if (!q->is_tx && len > q->buf_size) {
				len = (uint16_t)q->buf_size;
				q->bad_lengths++;
				q->errors++;
			}
			cookies[n] = cookie;
			lengths[n] = len;
			status[n] = st;
		}
		n++;
	}
	return n;
}

/* RX: post free buffers into the ring, one TAIL write for the batch.
 * Returns how many were posted (the caller writes TAIL itself when the
 * register is not memory-mapped). */
int snic_refill(struct snic_queue *q)
{
	uint32_t k, n = ring_space(q);

	if (n > q->nfree)
		n = q->nfree;
	for (k = 0; k < n; k++) {
		uint32_t cookie = q->free_stack[--q->nfree];
		volatile struct snic_descriptor *d = desc_slot(q, q->tail + k);

		d->addr = q->bufs_dev + (uint64_t)cookie * q->buf_stride;
		d->length = (uint16_t)q->buf_size;
		d->flags = 0;
		d->cookie = cookie;
		q->state[cookie] = SNIC_BUF_POSTED;
	}
	if (n) {
		q->tail += n;
		ring_doorbell(q);
	}
	return (int)n;
}

/* Return lent buffers to the free stack. Returns 0, or -(i + 1) if cookie i
 * was not lent out (a double release or a stranger's cookie); the ones before
 * it were released. */
int snic_release(struct snic_queue *q, const uint32_t *cookies, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		uint32_t cookie = cookies[i];

		if (cookie >= q->nbufs || q->state[cookie] != SNIC_BUF_HELD)
			return -(i + 1);
		q->state[cookie] = SNIC_BUF_FREE;
		q->free_stack[q->nfree++] = cookie;
	}
	return 0;
}

int snic_release_one(struct snic_queue *q, uint32_t cookie)
{
	return snic_release(q, &cookie, 1);
}

/* Lend one free buffer to the caller (zero-copy TX). Returns its cookie or -1. */
int snic_take(struct snic_queue *q)
{
	uint32_t cookie;

	if (!q->nfree)
		return -1;
	cookie = q->free_stack[--q->nfree];
	q->state[cookie] = SNIC_BUF_HELD;
	return (int)cookie;
}

static inline uint32_t tx_room(const struct snic_queue *q, int n)
{
	uint32_t room = ring_space(q);

	if (room > q->nfree)
		room = q->nfree;
	return (uint32_t)n < room ? (uint32_t)n : room;
}

/* Frames a TX burst can post now: free ring entries and free buffers, the fewer. */
int snic_tx_room(const struct snic_queue *q)
{
	return (int)tx_room(q, INT32_MAX);
}

static inline void tx_post(struct snic_queue *q, uint32_t index, uint32_t cookie, uint16_t length)
{
	volatile struct snic_descriptor *d = desc_slot(q, index);

	d->addr = q->bufs_dev + (uint64_t)cookie * q->buf_stride;
	d->length = length;
	d->flags = 0;
	d->cookie = cookie;
	q->state[cookie] = SNIC_BUF_POSTED;
}

/* TX: copy frames (concatenated in `data`, lengths[i] bytes each) into free
 * TX buffers and post them. Lengths must be <= buf_size (checked by the
 * caller). Returns how many frames were taken. */
int snic_tx_copy(struct snic_queue *q, const uint8_t *data, const uint16_t *lengths, int n)
{
	uint32_t k, take = tx_room(q, n);

	for (k = 0; k < take; k++) {
		uint32_t cookie = q->free_stack[--q->nfree];

		memcpy(q->bufs + (size_t)cookie * q->buf_stride, data, lengths[k]);
		data += lengths[k];
		tx_post(q, q->tail + k, cookie, lengths[k]);
	}
	if (take) {
		q->tail += take;
		ring_doorbell(q);
	}
	return (int)take;
}

/* TX: copy received frames straight from RX buffers (forwarding). */
int snic_tx_forward(struct snic_queue *tx, const struct snic_queue *rx, const uint32_t *cookies,
		    const uint16_t *lengths, int n)
{
	uint32_t k, take = tx_room(tx, n);

	for (k = 0; k < take; k++) {
		uint32_t cookie = tx->free_stack[--tx->nfree];
		uint16_t len = lengths[k] <= tx->buf_size ? lengths[k] : (uint16_t)tx->buf_size;

		memcpy(tx->bufs + (size_t)cookie * tx->buf_stride,
		       rx->bufs + (size_t)cookies[k] * rx->buf_stride, len);
		tx_post(tx, tx->tail + k, cookie, len);
	}
	if (take) {
		tx->tail += take;
		ring_doorbell(tx);
	}
	return (int)take;
}

/* TX: post buffers the caller took with snic_take and filled (zero-copy).
 * Returns how many were posted, or -(i + 1) if cookie i was not lent out. */
int snic_tx_post_held(struct snic_queue *q, const uint32_t *cookies, const uint16_t *lengths, int n)
{
	uint32_t k, room = ring_space(q);
	uint32_t take = (uint32_t)n < room ? (uint32_t)n : room;

	/* Each buffer must be lent out, and named once: marking it posted as we
	 * check makes a second mention of it fail the check. */
	for (k = 0; k < take; k++) {
		if (cookies[k] >= q->nbufs || q->state[cookies[k]] != SNIC_BUF_HELD) {
			uint32_t bad = k;

			while (k--)
				q->state[cookies[k]] = SNIC_BUF_HELD;
			return -(int)(bad + 1);
		}
		q->state[cookies[k]] = SNIC_BUF_POSTED;
	}
	for (k = 0; k < take; k++)
		tx_post(q, q->tail + k, cookies[k], lengths[k]);
	if (take) {
		q->tail += take;
		ring_doorbell(q);
	}
	return (int)take;
}

/* An echo's per-frame work, for a batch of received frames (RX buffers):
 * every Ethernet/IPv4/UDP frame becomes its own answer where it lies --
 * MAC addresses, IPv4 addresses and UDP ports swapped, which leaves both
 * checksums valid (the same 16-bit words summed in another order) -- and
 * moves to the front of the batch's arrays, in order; the other frames
 * follow, untouched.  Returns how many were swapped (the caller forwards
 * those).  Ref: RFC 768, RFC 791 section 3.1. */
#define SWAP_MAX 4096

static inline void swap_bytes(uint8_t *a, uint8_t *b, unsigned n)
{
	while (n--) {
		uint8_t t = *a;

		*a++ = *b;
		*b++ = t;
	}
}

int snic_udp_swap(const struct snic_queue *q, uint32_t *cookies, uint16_t *lengths, uint8_t *status, int n)
{
	uint32_t rest_cookie[SWAP_MAX];
	uint16_t rest_length[SWAP_MAX];
	uint8_t rest_status[SWAP_MAX];
	int k, front = 0, rest = 0;

	if (n > SWAP_MAX)
		n = SWAP_MAX;
	for (k = 0; k < n; k++) {
		uint8_t *f = q->bufs + (size_t)cookies[k] * q->buf_stride;
		unsigned len = lengths[k], l4 = 14u + (f[14] & 0x0fu) * 4u;

		if (len >= 42 && f[12] == 0x08 && f[13] == 0x00 && (f[14] >> 4) == 4 && l4 >= 34 &&
		    f[23] == 17 && len >= l4 + 8) {
			swap_bytes(f, f + 6, 6);
			swap_bytes(f + 26, f + 30, 4);
			swap_bytes(f + l4, f + l4 + 2, 2);
			cookies[front] = cookies[k];
			lengths[front] = lengths[k];
			status[front] = status[k];
			front++;
		} else {
			rest_cookie[rest] = cookies[k];
			rest_length[rest] = lengths[k];
			rest_status[rest] = status[k];
			rest++;
		}
	}
	memcpy(cookies + front, rest_cookie, (size_t)rest * sizeof(*cookies));
	memcpy(lengths + front, rest_length, (size_t)rest * sizeof(*lengths));
	memcpy(status + front, rest_status, (size_t)rest);
	return front;
}

/* ------------------------------------------------------------------------
 * The kernel path (Ref: spec/splitnic_spec/tunnel.py, "Ring protocol").
 *
 * The stub's ring indices are shared with the module: the other side's index
 * is loaded with acquire (the entries it covers are read after it), ours is
 * stored with release (the entries we wrote or read before it).  Neither side
 * trusts the other's index: one more than a ring away is counted and ignored.
 */
#define PUMP_BURST 256

static inline uint32_t kring_mask(const struct snic_kring *r)
{
	return (1u << r->log2) - 1u;
}

static inline uint8_t *kring_slot(const struct snic_kring *r, uint32_t i)
{
	return r->data + (size_t)(i & kring_mask(r)) * r->slot_size;
}

static inline volatile uint32_t *kring_desc(const struct snic_kring *r, uint32_t i)
{
	return (volatile uint32_t *)(r->desc + (size_t)(i & kring_mask(r)) * r->desc_size);
}

/* k2u: entries the kernel produced and we have not consumed. */
static uint32_t kring_avail(struct snic_kring *r)
{
	uint32_t n = __atomic_load_n(r->prod, __ATOMIC_ACQUIRE) - r->index;

	if (n > (1u << r->log2)) {
		r->bad_index++;
		return 0;
	}
	return n;
}

/* u2k: free entries. */
static uint32_t kring_room(struct snic_kring *r)
{
	uint32_t used = r->index - __atomic_load_n(r->cons, __ATOMIC_ACQUIRE);

	if (used > (1u << r->log2)) {
		r->bad_index++;
		return 0;
	}
	return (1u << r->log2) - used;
}

static inline void kring_publish(struct snic_kring *r, uint32_t *word)
{
	__atomic_store_n(word, r->index, __ATOMIC_RELEASE);
}

/* Whether RX completions wait (the next one's PHASE is this lap's). */
int snic_rx_pending(const struct snic_queue *q)
{
	volatile struct snic_completion *c;

	if (q->next_cpl == q->tail)
		return 0;
	c = cpl_slot(q, q->next_cpl);
	return (c->flags & SNIC_COMPLETION_FLAGS_PHASE_MASK) == (uint8_t)(1u - ((q->next_cpl >> q->log2) & 1u));
}

/* NIC -> kernel: harvest up to `max` RX completions, copy each frame once (into
 * a u2k slot, or by the TAP's write()), give every buffer straight back to the
 * RX ring, publish u2k and kick once.  Returns the completions handled. */
int snic_pump_n2k(struct snic_pump *p, int max)
{
	struct snic_queue *q = p->rx;
	struct snic_kring *r = p->u2k;
	uint32_t cookies[PUMP_BURST];
	uint16_t lengths[PUMP_BURST];
	uint8_t status[PUMP_BURST];
	uint32_t limit = p->tap ? 0xFFFFu : r->slot_size;
	int n, k, moved = 0;

	if (max > PUMP_BURST)
		max = PUMP_BURST;
	p->rx_blocked = 0;
	if (!p->tap) {
		uint32_t room = kring_room(r);

		if (room < (uint32_t)max)
			max = (int)room;
		if (!max) {
			p->rx_blocked = (uint32_t)snic_rx_pending(q);
			return 0;
		}
	}
	n = snic_harvest(q, max, cookies, lengths, status);
	for (k = 0; k < n; k++) {
		const uint8_t *frame = q->bufs + (size_t)cookies[k] * q->buf_stride;
		uint32_t len = lengths[k];

		if (status[k] || len < p->frame_min || len > limit) {
			p->drop_to_kernel++;
			continue;
		}
		if (p->tap) {
			if (write(p->fd, frame, len) < 0) {
				/* EINVAL: not a frame the kernel takes; EIO: the interface is down. */
				p->tap_errors++;
				p->drop_to_kernel++;
				continue;
			}
		} else {
			volatile uint32_t *d = kring_desc(r, r->index);

			memcpy(kring_slot(r, r->index), frame, len);
			d[0] = len;
			d[1] = 0;
			r->index++;
		}
		moved++;
	}
	for (k = 0; k < n; k++) {
		q->state[cookies[k]] = SNIC_BUF_FREE;
		q->free_stack[q->nfree++] = cookies[k];
	}
	if (n)
		snic_refill(q);
	if (moved && !p->tap) {
		kring_publish(r, r->prod);
		if (p->fd >= 0) {
			ioctl(p->fd, p->kick_request);
			p->kicks++;
		}
	}
	p->to_kernel += (uint64_t)moved;
	return n;
}

/* Kernel -> NIC: reclaim finished TX buffers, then copy up to `max` kernel
 * frames once each (from a k2u slot, or by the TAP's read() straight into the
 * TX buffer) and post them with one doorbell.  A frame longer than a TX buffer
 * is dropped and counted.  Returns the kernel frames consumed. */
int snic_pump_k2n(struct snic_pump *p, int max)
{
	struct snic_queue *q = p->tx;
	struct snic_kring *r = p->k2u;
	uint32_t room, posted = 0;
	int consumed = 0;

	if (q->tail != q->next_cpl)
		snic_harvest(q, 1 << 30, NULL, NULL, NULL);
	room = tx_room(q, max);
	p->tx_blocked = 0;
	if (p->tap) {
		while (posted < room && consumed < max) {
			uint32_t cookie = q->free_stack[q->nfree - 1];
			struct iovec iov[2] = {
				{ q->bufs + (size_t)cookie * q->buf_stride, q->buf_size },
				{ p->spill, p->spill_size },
			};
			/* TAP cuts a frame silently to the buffer it is given: a spill area
			 * behind the TX buffer shows a frame too long for it. */
			ssize_t got = readv(p->fd, iov, p->spill ? 2 : 1);

			if (got < 0)
				break;  /* EAGAIN: nothing more */
			consumed++;
			if ((size_t)got > q->buf_size || (uint32_t)got < p->frame_min) {
				p->drop_to_nic++;
				continue;
			}
			q->nfree--;
			tx_post(q, q->tail + posted, cookie, (uint16_t)got);
			posted++;
		}
		p->tx_blocked = !room;
	} else {
		uint32_t avail = kring_avail(r);

		while ((uint32_t)consumed < avail && consumed < max && posted < room) {
			uint32_t len = kring_desc(r, r->index)[0];

			if (len > q->buf_size || len < p->frame_min || len > r->slot_size) {
				p->drop_to_nic++;
			} else {
				uint32_t cookie = q->free_stack[--q->nfree];

				memcpy(q->bufs + (size_t)cookie * q->buf_stride, kring_slot(r, r->index), len);
				tx_post(q, q->tail + posted, cookie, (uint16_t)len);
				posted++;
			}
			r->index++;
			consumed++;
		}
		if (consumed)
			kring_publish(r, r->cons);
		p->tx_blocked = (uint32_t)consumed < avail && posted == room;
	}
	if (posted) {
		q->tail += posted;
		ring_doorbell(q);
	}
	p->to_nic += posted;
	return consumed;
}

/* One pass each way; returns the frames handled. */
int snic_pump_step(struct snic_pump *p, int max)
{
	return snic_pump_n2k(p, max) + snic_pump_k2n(p, max);
}

/* The stub rings from Python (tests, the packet: port): copy out up to `max`
 * k2u frames into `out` (out_size bytes per frame); returns how many. */
int snic_kring_recv(struct snic_kring *r, int max, uint8_t *out, uint32_t out_size, uint32_t *lengths)
{
	uint32_t avail = kring_avail(r);
	int n = 0;

	while ((uint32_t)n < avail && n < max) {
		uint32_t len = kring_desc(r, r->index)[0];

		if (len > r->slot_size)
			len = r->slot_size;
		if (len > out_size)
			len = out_size;
		memcpy(out + (size_t)n * out_size, kring_slot(r, r->index), len);
		lengths[n++] = len;
		r->index++;
	}
	if (n)
		kring_publish(r, r->cons);
	return n;
}

/* Copy frames (concatenated in `data`) into u2k and publish them; a frame
 * longer than a slot is taken and dropped (counted in *oversize).  Returns
 * how many were taken; the caller kicks. */
int snic_kring_send(struct snic_kring *r, const uint8_t *data, const uint32_t *lengths, int n,
		    uint64_t *oversize)
{
	uint32_t room = kring_room(r);
	int k;

	for (k = 0; k < n && (uint32_t)k < room; k++) {
		if (lengths[k] > r->slot_size) {
			(*oversize)++;
		} else {
			volatile uint32_t *d = kring_desc(r, r->index);

			memcpy(kring_slot(r, r->index), data, lengths[k]);
			d[0] = lengths[k];
			d[1] = 0;
			r->index++;
		}
		data += lengths[k];
	}
	kring_publish(r, r->prod);
	return k;
}

/* The mmio link's register accessors: one volatile 32-bit access each. */
uint32_t snic_mmio_read32(uint8_t *base, uint32_t offset)
{
	uint32_t v = *(volatile uint32_t *)(base + offset);

	snic_rmb();
	return v;
}

void snic_mmio_write32(uint8_t *base, uint32_t offset, uint32_t value)
{
	snic_wmb();  /* earlier DMA-memory stores before the register write */
	*(volatile uint32_t *)(base + offset) = value;
}

void snic_mmio_read_burst(uint8_t *base, uint32_t offset, uint32_t *out, int count)
{
	int i;

	for (i = 0; i < count; i++)
		out[i] = *(volatile uint32_t *)(base + offset + 4u * (uint32_t)i);
	snic_rmb();
}
