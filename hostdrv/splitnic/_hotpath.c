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
#include <stdint.h>
#include <string.h>

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
	uint64_t errors;            /* completions with a non-zero status */
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
			cookies[n] = cookie;
			lengths[n] = c->length;
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

	for (k = 0; k < take; k++)
		if (cookies[k] >= q->nbufs || q->state[cookies[k]] != SNIC_BUF_HELD)
			return -(int)(k + 1);
	for (k = 0; k < take; k++)
		tx_post(q, q->tail + k, cookies[k], lengths[k]);
	if (take) {
		q->tail += take;
		ring_doorbell(q);
	}
	return (int)take;
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
