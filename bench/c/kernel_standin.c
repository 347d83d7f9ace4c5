/*
 * The kernel's side of the stub module's rings, as fast as it can go, for
 * the pump benchmark: it produces frames into k2u and consumes u2k in the
 * shared area's format (spec/splitnic_spec/tunnel.py, "Ring protocol"), in
 * plain memory: standin_step() one burst, standin_run() until *stop.  Built
 * as a shared library for ctypes.
 */
#include <stdint.h>
#include <string.h>

struct standin {
	uint8_t *area;
	uint32_t k2u_prod, k2u_cons, u2k_prod, u2k_cons;  /* control page offsets */
	uint32_t k2u_desc, k2u_data, u2k_desc, u2k_data;  /* area offsets */
	uint32_t k2u_log2, u2k_log2, slot_size;
	uint32_t frame_len;
	const uint8_t *frame;                             /* the frame to produce */
	volatile int32_t *stop;
	uint64_t produced, consumed;
};

static inline uint32_t *word(struct standin *s, uint32_t off)
{
	return (uint32_t *)(s->area + off);
}

/* One pass: produce up to a burst into k2u, consume everything in u2k.  Returns the frames handled. */
int standin_step(struct standin *s)
{
	uint32_t kn = 1u << s->k2u_log2, un = 1u << s->u2k_log2;
	uint32_t prod = __atomic_load_n(word(s, s->k2u_prod), __ATOMIC_RELAXED);
	uint32_t cons = __atomic_load_n(word(s, s->u2k_cons), __ATOMIC_RELAXED);
	uint32_t their_cons = __atomic_load_n(word(s, s->k2u_cons), __ATOMIC_ACQUIRE);
	uint32_t their_prod = __atomic_load_n(word(s, s->u2k_prod), __ATOMIC_ACQUIRE);
	int burst = 64, work = 0;
	uint64_t sum = 0;

	while (prod - their_cons < kn && burst--) {
		uint32_t slot = prod & (kn - 1);
		uint32_t *d = (uint32_t *)(s->area + s->k2u_desc + slot * 8u);

		memcpy(s->area + s->k2u_data + (size_t)slot * s->slot_size, s->frame, s->frame_len);
		d[0] = s->frame_len;
		d[1] = 0;
		prod++;
		work++;
	}
	__atomic_store_n(word(s, s->k2u_prod), prod, __ATOMIC_RELEASE);
	s->produced += (uint64_t)work;
	while (cons != their_prod) {
		/* the kernel copies each frame into an skb: touch its bytes as that would */
		uint32_t slot = cons & (un - 1);
		uint32_t len = *(uint32_t *)(s->area + s->u2k_desc + slot * 8u);
		const uint8_t *f = s->area + s->u2k_data + (size_t)slot * s->slot_size;

		sum += f[0] + f[len > 0 ? len - 1 : 0];
		cons++;
		s->consumed++;
		work++;
	}
	__atomic_store_n(word(s, s->u2k_cons), cons, __ATOMIC_RELEASE);
	(void)sum;
	return work;
}

void standin_run(struct standin *s)
{
	while (!*s->stop)
		standin_step(s);
}
