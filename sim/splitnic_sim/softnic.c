/*
 * A software model of the splitnic NIC for driver tests and driver-cost
 * benchmarks: it serves the CSR window and the DMA rings in shared memory.
 *
 * Ref: spec/splitnic_spec/nic.py and docs/registers.md (CSR map,
 * Descriptor, Completion with PHASE, ring index rules); the RTL in
 * gateware/splitnic_gateware/ (loopback, padding, filtering behaviour).
 *
 * It is NOT the RTL: it models what the driver can observe (ID block, queue
 * HEAD/TAIL/CPL, completions in order with PHASE written last, strobes that
 * read back 0 once handled, counters, address filter, steering, loopback,
 * padding to MIN_FRAME), fast enough that the driver is the bottleneck.
 * Registers the driver writes are plain memory here; the model polls them.
 * Strobe bits (CTRL.RESET, queue RESET) stay set until the model has acted,
 * so a driver that waits for them to read 0 works on both this model and
 * the hardware (where they always read 0).
 *
 * Built by cffi (sim/splitnic_sim/_softnic_build.py) into
 * splitnic_sim._softnic_cffi; splitnic_sim/softnic.py drives it.
 *
 * Host memory across a cable (the eth host link, spec/splitnic_spec/hostlink.py):
 * a second DMA range, host[] at host_base, that the model only writes (RX data,
 * completions), each write handed to host_write() so the board side
 * (hostlink_standin.c) sends it on; the model never reads it, as the board
 * cannot read across the cable: a descriptor or TX buffer there is a DMA error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* ppoll */
#endif
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sched.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "splitnic_spec.h"

/* cdef-begin: this block is handed to cffi's cdef() by _softnic_build.py. */

/* A mailbox of frames between the model and Python: one producer, one
 * consumer, indices free-running. */
struct softnic_box {
	uint8_t *data;          /* slots * slot_size bytes */
	uint16_t *lengths;      /* slots entries */
	uint32_t slots;
	uint32_t slot_size;
	uint32_t head;          /* consumer */
	uint32_t tail;          /* producer */
	uint64_t dropped;       /* producer found it full */
};

struct softnic {
	uint8_t *csr;           /* the CSR window, SNIC_CSR_SIZE bytes */
	uint8_t *dma;           /* DMA memory: device address dma_base is dma[0] */
	uint64_t dma_base;
	uint64_t dma_size;
	uint32_t idle_sleep_ns; /* sleep this long after idle_spins idle polls; 0 spins */
	uint32_t idle_spins;    /* idle polls before the first sleep */
	int32_t stop;           /* softnic_run returns when set */
	/* Generator: frames fed into the RX path while gen_queue has buffers posted. */
	uint8_t *gen_frame;
	uint32_t gen_len;
	uint32_t gen_queue;
	int64_t gen_remaining;  /* -1: forever */
	uint64_t generated;
	/* The wire: frames sent (not looped back) and frames to receive. */
	struct softnic_box wire_out;    /* copies of sent frames (slots 0: only count) */
	struct softnic_box wire_in;     /* Python -> RX path */
	uint64_t wire_frames;
	uint64_t wire_bytes;
	int32_t wire_fd;                /* a TAP as the wire (-1: the boxes): read for RX, written for TX */
	uint64_t wire_errors;           /* frames the TAP refused */
	uint64_t dma_errors;            /* accesses outside DMA memory (also STAT_DMA_ERR) */
	uint64_t steps;
	uint8_t *scratch;               /* MAX_FRAME_JUMBO bytes of work space */
	/* The interrupt: one byte written to irq_fd (a socket; -1: none) per rise of the line. */
	int32_t irq_fd;
	uint64_t irqs;                  /* rises of the line */
	uint32_t irq_status;            /* the causes latched (IRQ_STATUS as the model keeps it) */
	uint32_t irq_published;         /* what the model last stored in the IRQ_STATUS word */
	uint32_t irq_line;
	uint32_t irq_link_seen;         /* LINK as last seen: a change is a cause */
	uint64_t irq_holdoff_until;     /* ns: the line may not rise again before */
	uint32_t irq_causes;            /* causes of the current step */
	/* Model state. */
	uint32_t rx_head[SNIC_NUM_RX_QUEUES];
	uint32_t rx_cpl[SNIC_NUM_RX_QUEUES];
	uint32_t tx_head[SNIC_NUM_TX_QUEUES];
	uint32_t tx_cpl[SNIC_NUM_TX_QUEUES];
	/* Host memory (host_size 0: none): written, never read; device address host_base is host[0]. */
	uint8_t *host;
	uint64_t host_base;
	uint64_t host_size;
	/* Hooks (NULL: none), called in the model's thread: after each write into host[],
	 * and at each rise of the interrupt line (rises: irqs after it). */
	void (*host_write)(void *ctx, uint64_t addr, const uint8_t *p, uint32_t len);
	void (*irq_rise)(void *ctx, uint64_t rises);
	void *hook_ctx;
};

void softnic_init(struct softnic *s, uint32_t build_id);
int softnic_step(struct softnic *s);
void softnic_run(struct softnic *s);
int softnic_box_put(struct softnic_box *b, const uint8_t *frame, uint32_t len);
int softnic_box_get(struct softnic_box *b, uint8_t *out, uint32_t max);

/* cdef-end */

#define CLOCK_HZ 125000000u
#define RX_BUDGET 64
#define TX_BUDGET 64
#define IDX16(x) ((uint16_t)(x))
#define IRQ_RX_BIT(q) (1u << (SNIC_IRQ_STATUS_RX_SHIFT + (q)))
#define IRQ_TX_BIT(q) (1u << (SNIC_IRQ_STATUS_TX_SHIFT + (q)))

static inline uint32_t rd(const struct softnic *s, uint32_t off)
{
	return __atomic_load_n((uint32_t *)(s->csr + off), __ATOMIC_ACQUIRE);
}

static inline void wr(struct softnic *s, uint32_t off, uint32_t v)
{
	__atomic_store_n((uint32_t *)(s->csr + off), v, __ATOMIC_RELEASE);
}

static inline void add(struct softnic *s, uint32_t off, uint32_t v)
{
	wr(s, off, rd(s, off) + v);
}

static inline uint32_t rxq(unsigned q, uint32_t reg) { return SNIC_RXQ_BASE + q * SNIC_RXQ_STRIDE + reg; }
static inline uint32_t txq(unsigned q, uint32_t reg) { return SNIC_TXQ_BASE + q * SNIC_TXQ_STRIDE + reg; }
static inline uint32_t steer(unsigned e, uint32_t reg) { return SNIC_STEER_BASE + e * SNIC_STEER_STRIDE + reg; }

static uint32_t cycles(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)(((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) / (1000000000u / CLOCK_HZ));
}

/* Host pointer of [addr, addr + len) in DMA memory, or NULL. */
static uint8_t *dma_ptr(struct softnic *s, uint64_t addr, uint32_t len)
{
	if (addr < s->dma_base || addr - s->dma_base + len > s->dma_size) {
		s->dma_errors++;
		add(s, SNIC_REG_STAT_DMA_ERR, 1);	/* where the driver reads it, as on the board */
		return NULL;
	}
	return s->dma + (addr - s->dma_base);
}

/* Host pointer of [addr, addr + len) the model is about to write: DMA memory or host memory. */
static uint8_t *dma_wptr(struct softnic *s, uint64_t addr, uint32_t len)
{
	if (s->host_size && addr >= s->host_base && addr - s->host_base + len <= s->host_size)
		return s->host + (addr - s->host_base);
	return dma_ptr(s, addr, len);
}

/* The model wrote len bytes at p (from dma_wptr); a write into host memory goes to the hook. */
static inline void dma_wrote(struct softnic *s, uint64_t addr, const uint8_t *p, uint32_t len)
{
	if (s->host_write && p >= s->host && p < s->host + s->host_size)
		s->host_write(s->hook_ctx, addr, p, len);
}

int softnic_box_put(struct softnic_box *b, const uint8_t *frame, uint32_t len)
{
	uint32_t head = __atomic_load_n(&b->head, __ATOMIC_ACQUIRE);

	if (!b->slots || b->tail - head >= b->slots || len > b->slot_size) {
		b->dropped++;
		return -1;
	}
	memcpy(b->data + (size_t)(b->tail % b->slots) * b->slot_size, frame, len);
	b->lengths[b->tail % b->slots] = (uint16_t)len;
	__atomic_store_n(&b->tail, b->tail + 1, __ATOMIC_RELEASE);
	return 0;
}

/* Copies the oldest frame to out; returns its length, or -1 when empty. */
int softnic_box_get(struct softnic_box *b, uint8_t *out, uint32_t max)
{
	uint32_t tail = __atomic_load_n(&b->tail, __ATOMIC_ACQUIRE);
	uint32_t len;

	if (b->head == tail)
		return -1;
	len = b->lengths[b->head % b->slots];
	if (len > max)
		len = max;
	memcpy(out, b->data + (size_t)(b->head % b->slots) * b->slot_size, len);
	__atomic_store_n(&b->head, b->head + 1, __ATOMIC_RELEASE);
	return (int)len;
}

static void reset_rx_queue(struct softnic *s, unsigned q)
{
	s->rx_head[q] = s->rx_cpl[q] = 0;
	wr(s, rxq(q, SNIC_RXQ_TAIL), 0);
	wr(s, rxq(q, SNIC_RXQ_HEAD), 0);
	wr(s, rxq(q, SNIC_RXQ_CPL), 0);
}

static void reset_tx_queue(struct softnic *s, unsigned q)
{
	s->tx_head[q] = s->tx_cpl[q] = 0;
	wr(s, txq(q, SNIC_TXQ_TAIL), 0);
	wr(s, txq(q, SNIC_TXQ_HEAD), 0);
	wr(s, txq(q, SNIC_TXQ_CPL), 0);
}

static void reset_all(struct softnic *s)
{
	unsigned q, off;

	for (q = 0; q < SNIC_NUM_RX_QUEUES; q++) {
		for (off = 0; off < SNIC_RXQ_STRIDE; off += 4)
			wr(s, rxq(q, off), 0);
		wr(s, rxq(q, SNIC_RXQ_SIZE), SNIC_RING_LOG2_MIN);
		reset_rx_queue(s, q);
	}
	for (q = 0; q < SNIC_NUM_TX_QUEUES; q++) {
		for (off = 0; off < SNIC_TXQ_STRIDE; off += 4)
			wr(s, txq(q, off), 0);
		wr(s, txq(q, SNIC_TXQ_SIZE), SNIC_RING_LOG2_MIN);
		reset_tx_queue(s, q);
	}
	for (off = 0; off < SNIC_STEER_COUNT * SNIC_STEER_STRIDE; off += 4)
		wr(s, SNIC_STEER_BASE + off, 0);
	for (off = SNIC_REG_STAT_RX_OK; off <= SNIC_REG_STAT_DMA_ERR; off += 4)
		wr(s, off, 0);
	wr(s, SNIC_REG_IRQ_STATUS, 0);
	wr(s, SNIC_REG_IRQ_MASK, 0);
	s->irq_status = s->irq_published = s->irq_line = 0;
	s->irq_holdoff_until = 0;
}

void softnic_init(struct softnic *s, uint32_t build_id)
{
	memset(s->csr, 0, SNIC_CSR_SIZE);
	wr(s, SNIC_REG_ID_MAGIC, SNIC_ID_MAGIC);
	wr(s, SNIC_REG_ID_VERSION, (SNIC_VERSION_MAJOR << SNIC_ID_VERSION_MAJOR_SHIFT) |
	   (SNIC_VERSION_MINOR << SNIC_ID_VERSION_MINOR_SHIFT));
	wr(s, SNIC_REG_ID_SPEC_HASH, SNIC_SPEC_HASH);
	wr(s, SNIC_REG_ID_BUILD, build_id);
	wr(s, SNIC_REG_ID_FEATURES, (SNIC_NUM_RX_QUEUES << SNIC_ID_FEATURES_RX_QUEUES_SHIFT) |
	   (SNIC_NUM_TX_QUEUES << SNIC_ID_FEATURES_TX_QUEUES_SHIFT) |
	   (SNIC_NUM_STEER_ENTRIES << SNIC_ID_FEATURES_STEER_ENTRIES_SHIFT) |
	   ((uint32_t)SNIC_DMA_ADDR_BITS << SNIC_ID_FEATURES_DMA_ADDR_BITS_SHIFT));
	wr(s, SNIC_REG_CLOCK_HZ, CLOCK_HZ);
	wr(s, SNIC_REG_CTRL, SNIC_CTRL_BROADCAST_MASK);
	wr(s, SNIC_REG_MAX_FRAME, SNIC_MAX_FRAME_STD);
	s->irq_fd = -1;
	s->wire_fd = -1;
	s->irq_link_seen = 0;
	reset_all(s);
}

static uint32_t frame_limit(uint32_t ctrl, uint32_t max_frame)
{
	uint32_t len = max_frame & SNIC_MAX_FRAME_LEN_MASK;

	if (!(ctrl & SNIC_CTRL_JUMBO_MASK))
		return SNIC_MAX_FRAME_STD;
	return len < SNIC_MAX_FRAME_JUMBO ? len : SNIC_MAX_FRAME_JUMBO;
}

static int mac_equal(const uint8_t *a, uint32_t lo, uint32_t hi)
{
	return a[0] == (lo & 0xff) && a[1] == ((lo >> 8) & 0xff) && a[2] == ((lo >> 16) & 0xff) &&
	       a[3] == (lo >> 24) && a[4] == (hi & 0xff) && a[5] == ((hi >> 8) & 0xff);
}

/* Steering: the lowest enabled entry whose enabled matches all hold. */
/* MC_HASH_LO: the bit of the multicast hash filter for destination address a, the low
 * 6 bits of its CRC-32 (the reflected FCS algorithm, as zlib.crc32). */
static unsigned mc_hash_index(const uint8_t *a)
{
	uint32_t crc = 0xffffffff;
	int i, b;

	for (i = 0; i < 6; i++) {
		crc ^= a[i];
		for (b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (crc & 1 ? 0xedb88320 : 0);
	}
	return ~crc & (SNIC_MC_HASH_BITS - 1);
}

static int mc_hash_accepts(const struct softnic *s, const uint8_t *a)
{
	unsigned i = mc_hash_index(a);

	return rd(s, i < 32 ? SNIC_REG_MC_HASH_LO : SNIC_REG_MC_HASH_HI) >> (i & 31) & 1;
}

static int steer_frame(struct softnic *s, const uint8_t *f, uint32_t len, unsigned *queue)
{
	unsigned e;
	uint16_t ethertype = len >= 14 ? (uint16_t)(f[12] << 8 | f[13]) : 0;
	int proto = -1, dport = -1;

	if (ethertype == 0x0800 && len >= 34) {
		unsigned ihl = (f[14] & 0x0f) * 4u;
		unsigned frag = ((f[20] & 0x1f) << 8) | f[21];

		proto = f[23];
		if ((proto == 6 || proto == 17) && frag == 0 && len >= 14 + ihl + 4)
			dport = f[14 + ihl + 2] << 8 | f[14 + ihl + 3];
	} else if (ethertype == 0x86DD && len >= 54) {
		proto = f[20];
		if ((proto == 6 || proto == 17) && len >= 58)
			dport = f[56] << 8 | f[57];
	}
	for (e = 0; e < SNIC_NUM_STEER_ENTRIES; e++) {
		uint32_t c = rd(s, steer(e, SNIC_STEER_CTRL));

		if (!(c & SNIC_STEER_CTRL_ENABLE_MASK))
			continue;
		if ((c & SNIC_STEER_CTRL_MATCH_DMAC_MASK) &&
		    !mac_equal(f, rd(s, steer(e, SNIC_STEER_DMAC_LO)), rd(s, steer(e, SNIC_STEER_DMAC_HI))))
			continue;
		if ((c & SNIC_STEER_CTRL_MATCH_ETHERTYPE_MASK) &&
		    ethertype != (rd(s, steer(e, SNIC_STEER_ETHERTYPE)) & SNIC_STEER_ETHERTYPE_VALUE_MASK))
			continue;
		if ((c & SNIC_STEER_CTRL_MATCH_IP_PROTO_MASK) &&
		    proto != (int)(rd(s, steer(e, SNIC_STEER_IP_PROTO)) & SNIC_STEER_IP_PROTO_VALUE_MASK))
			continue;
		if ((c & SNIC_STEER_CTRL_MATCH_L4_DPORT_MASK) &&
		    dport != (int)(rd(s, steer(e, SNIC_STEER_L4_DPORT)) & SNIC_STEER_L4_DPORT_VALUE_MASK))
			continue;
		*queue = (c & SNIC_STEER_CTRL_QUEUE_MASK) >> SNIC_STEER_CTRL_QUEUE_SHIFT;
		add(s, steer(e, SNIC_STEER_HITS), 1);
		return (int)e;
	}
	*queue = SNIC_KERNEL_QUEUE;
	return SNIC_RULE_NONE;
}

/* Write a completion: the first three words, then the word holding PHASE. */
static void write_completion(uint8_t *slot, uint32_t cookie, uint16_t length, uint8_t queue, uint8_t status,
			     uint8_t rule, uint8_t phase)
{
	struct snic_completion c;
	uint32_t last;

	memset(&c, 0, sizeof(c));
	c.cookie = cookie;
	c.length = length;
	c.queue = queue;
	c.status = status;
	c.timestamp = cycles();
	c.rule = rule;
	c.flags = phase;
	memcpy(slot, &c, 12);
	memcpy(&last, (uint8_t *)&c + 12, 4);
	__atomic_store_n((uint32_t *)(slot + 12), last, __ATOMIC_RELEASE);
}

static inline uint8_t phase_of(uint32_t index, uint32_t log2)
{
	return (uint8_t)(1u - ((index >> log2) & 1u));
}

static uint32_t ring_log2(struct softnic *s, uint32_t size_reg)
{
	uint32_t log2 = rd(s, size_reg) & SNIC_RXQ_SIZE_LOG2_MASK;

	if (log2 < SNIC_RING_LOG2_MIN)
		log2 = SNIC_RING_LOG2_MIN;
	if (log2 > SNIC_RING_LOG2_MAX)
		log2 = SNIC_RING_LOG2_MAX;
	return log2;
}

/* Whether RX queue q is enabled and has a buffer posted. */
static int rx_ready(struct softnic *s, unsigned q)
{
	return (rd(s, rxq(q, SNIC_RXQ_CTRL)) & SNIC_RXQ_CTRL_ENABLE_MASK) &&
	       IDX16(s->rx_head[q]) != IDX16(rd(s, rxq(q, SNIC_RXQ_TAIL)));
}

/* A frame (FCS excluded) from the wire or the loopback enters the RX path. */
static void rx_frame(struct softnic *s, const uint8_t *f, uint32_t len)
{
	uint32_t ctrl = rd(s, SNIC_REG_CTRL);
	unsigned q;
	int rule;
	uint32_t log2, slot, lo, hi, buflen, copy;
	uint64_t addr, dslot;
	uint8_t status = 0, *dst;
	struct snic_descriptor d;

	if (!(ctrl & SNIC_CTRL_RX_EN_MASK))
		return;
	if (len < SNIC_MIN_FRAME) {
		add(s, SNIC_REG_STAT_RX_RUNT, 1);
		return;
	}
	if (len + SNIC_FCS_LEN > frame_limit(ctrl, rd(s, SNIC_REG_MAX_FRAME))) {
		add(s, SNIC_REG_STAT_RX_OVERSIZE, 1);
		return;
	}
	add(s, SNIC_REG_STAT_RX_OK, 1);
	add(s, SNIC_REG_STAT_RX_OK_BYTES, len);
	lo = rd(s, SNIC_REG_MAC_ADDR_LO);
	hi = rd(s, SNIC_REG_MAC_ADDR_HI);
	if (!(ctrl & SNIC_CTRL_PROMISC_MASK) && !mac_equal(f, lo, hi)) {
		int bcast = f[0] == 0xff && f[1] == 0xff && f[2] == 0xff && f[3] == 0xff && f[4] == 0xff && f[5] == 0xff;

		if (bcast ? !(ctrl & SNIC_CTRL_BROADCAST_MASK)
			  : !((f[0] & 1) && ((ctrl & SNIC_CTRL_ALLMULTI_MASK) || mc_hash_accepts(s, f)))) {
			add(s, SNIC_REG_STAT_RX_FILTERED, 1);
			return;
		}
	}
	rule = steer_frame(s, f, len, &q);
	if (q >= SNIC_NUM_RX_QUEUES) {
		add(s, SNIC_REG_STAT_RX_FIFO_DROP, 1);
		return;
	}
	if (!rx_ready(s, q)) {
		add(s, rxq(q, SNIC_RXQ_DROPS), 1);
		return;
	}
	log2 = ring_log2(s, rxq(q, SNIC_RXQ_SIZE));
	dslot = ((uint64_t)rd(s, rxq(q, SNIC_RXQ_DESC_HI)) << 32) | rd(s, rxq(q, SNIC_RXQ_DESC_LO));
	slot = s->rx_head[q] & ((1u << log2) - 1u);
	dst = dma_ptr(s, dslot + (uint64_t)slot * SNIC_DESCRIPTOR_SIZE, SNIC_DESCRIPTOR_SIZE);
	if (!dst)
		return;
	memcpy(&d, dst, sizeof(d));
	addr = d.addr;
	buflen = d.length;
	copy = len <= buflen ? len : buflen;
	if (copy < len)
		status |= SNIC_COMPLETION_STATUS_TRUNCATED_MASK;
	dst = dma_wptr(s, addr, copy);
	if (dst) {
		memcpy(dst, f, copy);
		dma_wrote(s, addr, dst, copy);
	} else {
		copy = 0;
	}
	s->rx_head[q]++;
	wr(s, rxq(q, SNIC_RXQ_HEAD), IDX16(s->rx_head[q]));
	dslot = ((uint64_t)rd(s, rxq(q, SNIC_RXQ_CPL_HI)) << 32) | rd(s, rxq(q, SNIC_RXQ_CPL_LO));
	slot = s->rx_cpl[q] & ((1u << log2) - 1u);
	dslot += (uint64_t)slot * SNIC_COMPLETION_SIZE;
	dst = dma_wptr(s, dslot, SNIC_COMPLETION_SIZE);
	if (dst) {
		write_completion(dst, d.cookie, (uint16_t)copy, (uint8_t)q, status, (uint8_t)rule,
				 phase_of(s->rx_cpl[q], log2));
		dma_wrote(s, dslot, dst, SNIC_COMPLETION_SIZE);
	}
	s->rx_cpl[q]++;
	s->irq_causes |= IRQ_RX_BIT(q);
	wr(s, rxq(q, SNIC_RXQ_CPL), IDX16(s->rx_cpl[q]));
	add(s, rxq(q, SNIC_RXQ_PACKETS), 1);
	add(s, rxq(q, SNIC_RXQ_BYTES), copy);
}

static int tx_queue_step(struct softnic *s, unsigned q, uint32_t ctrl)
{
	uint32_t log2, tail, limit = frame_limit(ctrl, rd(s, SNIC_REG_MAX_FRAME));
	uint64_t dring, cring;
	int n = 0;
	uint8_t *pad = s->scratch;

	if (!(rd(s, txq(q, SNIC_TXQ_CTRL)) & SNIC_TXQ_CTRL_ENABLE_MASK))
		return 0;
	tail = rd(s, txq(q, SNIC_TXQ_TAIL));
	if (IDX16(s->tx_head[q]) == IDX16(tail))
		return 0;
	log2 = ring_log2(s, txq(q, SNIC_TXQ_SIZE));
	dring = ((uint64_t)rd(s, txq(q, SNIC_TXQ_DESC_HI)) << 32) | rd(s, txq(q, SNIC_TXQ_DESC_LO));
	cring = ((uint64_t)rd(s, txq(q, SNIC_TXQ_CPL_HI)) << 32) | rd(s, txq(q, SNIC_TXQ_CPL_LO));
	while (IDX16(s->tx_head[q]) != IDX16(tail) && n < TX_BUDGET) {
		uint32_t mask = (1u << log2) - 1u, len;
		uint8_t *p = dma_ptr(s, dring + (uint64_t)(s->tx_head[q] & mask) * SNIC_DESCRIPTOR_SIZE,
				     SNIC_DESCRIPTOR_SIZE);
		struct snic_descriptor d;
		uint8_t status = 0;

		if (!p)
			return n;
		memcpy(&d, p, sizeof(d));
		len = d.length;
		p = NULL;
		if (len < 14 || len + SNIC_FCS_LEN > limit)
			status = SNIC_COMPLETION_STATUS_LEN_ERROR_MASK;
		else
			p = dma_ptr(s, d.addr, len);
		if (p) {
			const uint8_t *frame = p;
			uint32_t wire_len = len;

			if (len < SNIC_MIN_FRAME) {  /* the MAC pads short frames */
				memset(pad, 0, SNIC_MIN_FRAME);
				memcpy(pad, p, len);
				frame = pad;
				wire_len = SNIC_MIN_FRAME;
			}
			if (ctrl & SNIC_CTRL_LOOPBACK_MASK) {
				rx_frame(s, frame, wire_len);
			} else {
				s->wire_frames++;
				s->wire_bytes += wire_len;
				if (s->wire_fd >= 0) {
					if (write(s->wire_fd, frame, wire_len) < 0)
						s->wire_errors++;
				} else if (s->wire_out.slots) {
					softnic_box_put(&s->wire_out, frame, wire_len);
				}
			}
			add(s, SNIC_REG_STAT_TX_OK, 1);
			add(s, SNIC_REG_STAT_TX_OK_BYTES, len);
			add(s, txq(q, SNIC_TXQ_PACKETS), 1);
			add(s, txq(q, SNIC_TXQ_BYTES), len);
		} else {
			if (!status)
				status = SNIC_COMPLETION_STATUS_LEN_ERROR_MASK;
			add(s, txq(q, SNIC_TXQ_DROPS), 1);
		}
		s->tx_head[q]++;
		wr(s, txq(q, SNIC_TXQ_HEAD), IDX16(s->tx_head[q]));
		{
			uint64_t caddr = cring + (uint64_t)(s->tx_cpl[q] & mask) * SNIC_COMPLETION_SIZE;

			p = dma_wptr(s, caddr, SNIC_COMPLETION_SIZE);
			if (p) {
				write_completion(p, d.cookie, (uint16_t)(status ? 0 : len), (uint8_t)q, status,
						 SNIC_RULE_NONE, phase_of(s->tx_cpl[q], log2));
				dma_wrote(s, caddr, p, SNIC_COMPLETION_SIZE);
			}
		}
		s->tx_cpl[q]++;
		s->irq_causes |= IRQ_TX_BIT(q);
		wr(s, txq(q, SNIC_TXQ_CPL), IDX16(s->tx_cpl[q]));
		n++;
	}
	return n;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The interrupt, as csr.py has it: causes latch in IRQ_STATUS (write 1 to
 * clear); the line is (IRQ_STATUS & IRQ_MASK) != 0 and may rise only when the
 * hold-off (IRQ_COALESCE cycles) since the previous rise has run out; each
 * rise writes one byte to irq_fd.  The register window is plain memory, so a
 * driver's write to IRQ_STATUS shows as a value the model did not store; its
 * bits are cleared.  (Writing back exactly the value read is not seen: the
 * driver writes all ones.) */
static void irq_update(struct softnic *s)
{
	uint32_t *word = (uint32_t *)(s->csr + SNIC_REG_IRQ_STATUS);
	uint32_t seen = __atomic_load_n(word, __ATOMIC_ACQUIRE);
	uint32_t link = rd(s, SNIC_REG_LINK), expected = seen;
	uint64_t now;

	if (link != s->irq_link_seen) {
		s->irq_link_seen = link;
		s->irq_causes |= SNIC_IRQ_STATUS_LINK_MASK;
	}
	if (seen != s->irq_published) {
		/* The driver's write-1-to-clear acknowledges the interrupt: what is
		 * still (or newly) pending after it raises the line again, as a level
		 * interrupt is delivered again after its acknowledgement. */
		s->irq_status &= ~seen;
		s->irq_line = 0;
	}
	s->irq_status |= s->irq_causes;
	s->irq_causes = 0;
	if (s->irq_status != seen) {
		/* A driver's write landing meanwhile fails the exchange: seen next step. */
		if (__atomic_compare_exchange_n(word, &expected, s->irq_status, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			s->irq_published = s->irq_status;
	} else {
		s->irq_published = seen;
	}
	if (!(s->irq_status & rd(s, SNIC_REG_IRQ_MASK))) {
		s->irq_line = 0;
		return;
	}
	if (s->irq_line)
		return;
	now = now_ns();
	if (now < s->irq_holdoff_until)
		return;
	s->irq_line = 1;
	s->irqs++;
	s->irq_holdoff_until = now + (uint64_t)(rd(s, SNIC_REG_IRQ_COALESCE) & SNIC_IRQ_COALESCE_CYCLES_MASK) *
				     (1000000000u / CLOCK_HZ);
	if (s->irq_fd >= 0)
		send(s->irq_fd, "i", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (s->irq_rise)
		s->irq_rise(s->hook_ctx, s->irqs);
}

/* One pass over everything; returns how much work was done. */
int softnic_step(struct softnic *s)
{
	uint32_t ctrl = rd(s, SNIC_REG_CTRL);
	unsigned q;
	int work = 0, k;
	uint8_t *frame = s->scratch;

	s->steps++;
	wr(s, SNIC_REG_CYCLES, cycles());
	if (ctrl & SNIC_CTRL_RESET_MASK) {
		reset_all(s);
		ctrl &= ~SNIC_CTRL_RESET_MASK;
		wr(s, SNIC_REG_CTRL, ctrl);
		work++;
	}
	for (q = 0; q < SNIC_NUM_RX_QUEUES; q++) {
		uint32_t c = rd(s, rxq(q, SNIC_RXQ_CTRL));

		if (c & SNIC_RXQ_CTRL_RESET_MASK) {
			reset_rx_queue(s, q);
			wr(s, rxq(q, SNIC_RXQ_CTRL), c & ~SNIC_RXQ_CTRL_RESET_MASK);
			work++;
		}
	}
	for (q = 0; q < SNIC_NUM_TX_QUEUES; q++) {
		uint32_t c = rd(s, txq(q, SNIC_TXQ_CTRL));

		if (c & SNIC_TXQ_CTRL_RESET_MASK) {
			reset_tx_queue(s, q);
			wr(s, txq(q, SNIC_TXQ_CTRL), c & ~SNIC_TXQ_CTRL_RESET_MASK);
			work++;
		}
	}
	for (k = 0; k < RX_BUDGET && s->wire_fd >= 0; k++) {
		ssize_t len = read(s->wire_fd, frame, SNIC_MAX_FRAME_JUMBO);

		if (len < 0)
			break;
		/* A sender pads to the minimum on the wire; TAP hands out the kernel's frames
		 * unpadded (a 42-byte ARP), which the RX path would count as runts. */
		if (len < SNIC_MIN_FRAME) {
			memset(frame + len, 0, SNIC_MIN_FRAME - len);
			len = SNIC_MIN_FRAME;
		}
		rx_frame(s, frame, (uint32_t)len);
		work++;
	}
	for (k = 0; k < RX_BUDGET; k++) {
		int len = softnic_box_get(&s->wire_in, frame, SNIC_MAX_FRAME_JUMBO);

		if (len < 0)
			break;
		rx_frame(s, frame, (uint32_t)len);
		work++;
	}
	if (ctrl & SNIC_CTRL_TX_EN_MASK)
		for (q = 0; q < SNIC_NUM_TX_QUEUES; q++)
			work += tx_queue_step(s, q, ctrl);
	if (s->gen_remaining && s->gen_queue < SNIC_NUM_RX_QUEUES && (ctrl & SNIC_CTRL_RX_EN_MASK))
		for (k = 0; k < RX_BUDGET && s->gen_remaining && rx_ready(s, s->gen_queue); k++) {
			rx_frame(s, s->gen_frame, s->gen_len);
			s->generated++;
			if (s->gen_remaining > 0)
				s->gen_remaining--;
			work++;
		}
	irq_update(s);
	return work;
}

void softnic_run(struct softnic *s)
{
	unsigned idle = 0;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		if (softnic_step(s)) {
			idle = 0;
		} else if (++idle > s->idle_spins && s->idle_sleep_ns) {
			struct timespec ts = { 0, (long)s->idle_sleep_ns };

			/* A frame on the wire wakes the NIC at once, as it would the
			 * hardware; the driver's doorbells (plain memory) are seen
			 * after at most the sleep. */
			if (s->wire_fd >= 0) {
				struct pollfd pfd = { .fd = s->wire_fd, .events = POLLIN };

				ppoll(&pfd, 1, &ts, NULL);
			} else {
				nanosleep(&ts, NULL);
			}
		} else if (idle > s->idle_spins) {
			sched_yield();
		}
	}
}
