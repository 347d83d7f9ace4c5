// The bare reference for bench/bench_sim.py: the native harness (snic_harness.sv and
// snic_harness.cpp) in a plain Verilator main loop, no cocotb, no VPI, and the driver of
// sim/splitnic_sim/tb/nic_native_speed.py written in C: RX queue 0 and TX queue 0 with
// 256-entry rings, reaped and refilled every POLL_CYCLES, frames back to back both ways.
//
// Usage: bare_main FRAME_BYTES CYCLES SHM_PATH; prints one JSON line.
// Ref: docs/simulation.md ("The native harness"); hostdrv/kmod/splitnic_spec.h (generated).
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "Vtop.h"
#include "verilated.h"
#include "splitnic_spec.h"

extern "C" {
int snic_h_init(void);
int snic_h_memory(const char *path, uint64_t size, uint32_t base);
void snic_h_dma(double stall_prob, uint32_t latency, uint64_t seed);
uint64_t snic_h_cycle(void);
void snic_h_csr_push(uint32_t op, uint32_t offset, uint32_t value);
uint32_t snic_h_csr_pending(void);
uint32_t snic_h_csr_results(uint32_t *out, uint32_t max);
void snic_h_rx_push(const uint8_t *data, uint32_t len, int raw, uint32_t tag);
uint32_t snic_h_rx_pending(void);
int snic_h_tx_pop(uint8_t *buf, uint32_t max, uint64_t *sfd, uint64_t *end, uint32_t *flags);
}

namespace {

const uint32_t DMA_BASE = 0x10000000, MEM_SIZE = 4 << 20;
const unsigned POLL_CYCLES = 2048, RING_LOG2 = 8, RING = 1 << RING_LOG2, BUF_SIZE = 2048, WIRE_QUEUE = 64;
const uint64_t WARMUP_CYCLES = 50000;
const uint8_t OWN_MAC[6] = {2, 0, 0, 0, 0, 1}, PEER_MAC[6] = {2, 0, 0, 0, 0, 0x99};

uint8_t *mem;

struct Ring {
    unsigned q;
    uint32_t desc, cpl, bufs;
    unsigned tail = 0, seen = 0;
};

void wr(uint32_t offset, uint32_t value) { snic_h_csr_push(2, offset, value); }

void post(Ring &r, uint16_t length) {
    unsigned slot = r.tail % RING;
    snic_descriptor d = {r.bufs + slot * BUF_SIZE, length, 0, r.tail};
    memcpy(mem + r.desc - DMA_BASE + 16 * slot, &d, sizeof d);
    r.tail = (r.tail + 1) & 0xFFFF;
}

// Completions seen (phase bit of the current lap), each reposted with length.
unsigned reap(Ring &r, uint16_t length, unsigned *bad) {
    unsigned n = 0;
    for (;;) {
        unsigned slot = r.seen % RING;
        snic_completion c;
        memcpy(&c, mem + r.cpl - DMA_BASE + 16 * slot, sizeof c);
        unsigned phase = 1 - ((r.seen >> RING_LOG2) & 1);
        if ((c.flags & SNIC_COMPLETION_FLAGS_PHASE_MASK) != phase) return n;
        if (c.status) (*bad)++;
        r.seen = (r.seen + 1) & 0xFFFF;
        post(r, length);
        n++;
    }
}

void ring(Ring &r, uint32_t base, uint32_t &next) {
    r.desc = next;
    r.cpl = next + 16 * RING;
    r.bufs = next + 32 * RING;
    next = r.bufs + RING * BUF_SIZE;
    memset(mem + r.cpl - DMA_BASE, 0, 16 * RING);
    wr(base + SNIC_RXQ_DESC_LO, r.desc);
    wr(base + SNIC_RXQ_CPL_LO, r.cpl);
    wr(base + SNIC_RXQ_SIZE, RING_LOG2);
    wr(base + SNIC_RXQ_CTRL, SNIC_RXQ_CTRL_ENABLE_MASK);
}

double now_s() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s FRAME_BYTES CYCLES SHM_PATH\n", argv[0]);
        return 2;
    }
    unsigned frame_bytes = atoi(argv[1]);
    uint64_t total = strtoull(argv[2], nullptr, 0);
    unsigned payload = frame_bytes - 4;
    int fd = open(argv[3], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, MEM_SIZE)) {
        perror(argv[3]);
        return 1;
    }
    close(fd);
    snic_h_init();
    if (snic_h_memory(argv[3], MEM_SIZE, DMA_BASE)) {
        fprintf(stderr, "cannot map %s\n", argv[3]);
        return 1;
    }
    // The driver maps the same file, as splitnic's driver does.
    fd = open(argv[3], O_RDWR);
    mem = (uint8_t *)mmap(nullptr, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    unlink(argv[3]);
    if (mem == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    snic_h_dma(0.0, 0, 1);

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    auto top = std::make_unique<Vtop>(ctx.get(), "");

    std::vector<uint8_t> in_frame(payload), out_frame(payload);
    memcpy(in_frame.data(), OWN_MAC, 6);
    memcpy(in_frame.data() + 6, PEER_MAC, 6);
    memcpy(out_frame.data(), PEER_MAC, 6);
    memcpy(out_frame.data() + 6, OWN_MAC, 6);
    for (unsigned i = 12; i < payload; i++) in_frame[i] = out_frame[i] = i < 14 ? (i == 12 ? 0x88 : 0xB5) : i;

    Ring rx, tx;
    uint32_t next = DMA_BASE + 0x1000;
    uint64_t mac = 0;
    for (int i = 5; i >= 0; i--) mac = mac << 8 | OWN_MAC[i];
    wr(SNIC_REG_MAC_ADDR_LO, (uint32_t)mac);
    wr(SNIC_REG_MAC_ADDR_HI, (uint32_t)(mac >> 32));
    ring(rx, SNIC_RXQ_BASE, next);
    ring(tx, SNIC_TXQ_BASE, next);
    for (unsigned s = 0; s < RING; s++) memcpy(mem + tx.bufs - DMA_BASE + s * BUF_SIZE, out_frame.data(), payload);
    for (unsigned s = 0; s < RING; s++) post(rx, BUF_SIZE);
    for (unsigned s = 0; s < RING; s++) post(tx, payload);
    wr(SNIC_RXQ_BASE + SNIC_RXQ_TAIL, rx.tail);
    wr(SNIC_TXQ_BASE + SNIC_TXQ_TAIL, tx.tail);
    wr(SNIC_REG_CTRL, SNIC_CTRL_RX_EN_MASK | SNIC_CTRL_TX_EN_MASK);

    uint64_t next_poll = 10, c0 = 0, rx_n = 0, tx_n = 0, wire_n = 0, rx0 = 0, wire0 = 0;
    unsigned bad = 0;
    double t0 = 0;
    uint8_t buf[16384];
    uint64_t sfd, end;
    uint32_t flags, results[64];
    while (!ctx->gotFinish()) {
        top->eval();
        if (!top->eventsPending()) break;
        ctx->time(top->nextTimeSlot());
        uint64_t cycle = snic_h_cycle();
        if (cycle < next_poll) continue;
        next_poll = cycle + POLL_CYCLES;
        while (snic_h_csr_results(results, 64)) {
        }
        unsigned got = reap(rx, BUF_SIZE, &bad), sent = reap(tx, payload, &bad);
        if (got) wr(SNIC_RXQ_BASE + SNIC_RXQ_TAIL, rx.tail);
        if (sent) wr(SNIC_TXQ_BASE + SNIC_TXQ_TAIL, tx.tail);
        rx_n += got;
        tx_n += sent;
        while (snic_h_tx_pop(buf, sizeof buf, &sfd, &end, &flags) >= 0) {
            wire_n++;
            if (flags != 2) bad++;
        }
        for (unsigned k = snic_h_rx_pending(); k < WIRE_QUEUE; k++) snic_h_rx_push(in_frame.data(), payload, 0, 0);
        if (!c0 && cycle >= WARMUP_CYCLES) {
            c0 = cycle;
            t0 = now_s();
            rx0 = rx_n;
            wire0 = wire_n;
        }
        if (c0 && cycle - c0 >= total) break;
    }
    double wall = now_s() - t0;
    uint64_t cycles = snic_h_cycle() - c0;
    double line = (double)cycles / (frame_bytes + 20);
    printf("{\"frame_bytes\": %u, \"cycles\": %llu, \"wall_s\": %.3f, \"cycles_per_s\": %.0f, "
           "\"rx_line_fraction\": %.3f, \"tx_line_fraction\": %.3f, \"bad\": %u}\n",
           frame_bytes, (unsigned long long)cycles, wall, cycles / wall, (rx_n - rx0) / line, (wire_n - wire0) / line,
           bad);
    top->final();
    return bad ? 1 : 0;
}
