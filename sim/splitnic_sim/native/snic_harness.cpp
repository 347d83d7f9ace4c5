// The per-cycle half of the simulated NIC's harness: GMII wire, DMA memory, CSR initiator.
//
// Ref: docs/simulation.md ("The native harness"); snic_harness.sv calls snic_falling() and
// snic_rising() through DPI-C once per clock edge; Python (splitnic_sim.native) drives the
// rest through the snic_h_* functions below with ctypes, in the same process.  IEEE Std
// 802.3-2018 §3.2 (preamble, SFD, FCS), §4.4.2 (interpacket gap); Wishbone B4 §3.2, §4.3.
//
// Nothing here calls Python.  When something happens that Python waits for (a CSR batch
// done, a frame captured, a watched descriptor readable, a wall-clock tick), the next rising
// edge toggles the harness's `notify` signal and cocotb wakes the waiting coroutine.
// With idle blocking on (the simulation server), a harness with nothing to do for
// idle_cycles blocks in poll() on the watched descriptors and the TAP: the process sleeps and
// simulated time stands still until a request or a frame arrives.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <deque>
#include <vector>

#include "svdpi.h"

namespace {

const int IFG_BYTES = 12;            // minimum interpacket gap, byte times
const int MIN_FRAME = 60;            // without FCS
const uint8_t PRE = 0x55, SFD = 0xD5;
const unsigned CTI_INCR = 2;
// Cycles between non-blocking polls of the descriptors: often while a driver is talking (each
// CSR access is a round trip through the socket), less often otherwise.
const unsigned POLL_HOT = 8, POLL_COLD = 64;
const uint64_t HOT_CYCLES = 20000;   // "talking": socket or TAP activity this recently
const unsigned TICK_EVERY = 1024;    // cycles between looks at the wall clock
const unsigned TAP_QUEUE = 8;        // frames queued towards the NIC at most, from the TAP
const size_t MAX_WATCH = 4;

enum { OP_READ = 1, OP_WRITE = 2, OP_SYNC = 4 };

struct RxFrame {
    std::vector<uint8_t> data;       // preamble, SFD, frame, FCS: what goes on the wire
    uint32_t tag;                    // non-zero: report its SFD and end cycles
};
struct RxDone { uint32_t tag; uint64_t sfd, end; };
struct TxFrame { std::vector<uint8_t> data; uint64_t sfd, end; uint32_t flags; };
struct CsrOp { uint8_t op; uint32_t offset, value; };

uint32_t crc_table[256];

void crc_init() {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t crc32(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--) c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

double now_s() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Harness {
    uint64_t cycle = 0;              // rising edges since the start
    uint32_t reset_left = 5;
    bool notify = false;
    uint64_t last_activity = 0;

    // DMA memory
    uint8_t *mem = nullptr;
    uint64_t mem_size = 0;
    uint32_t mem_base = 0;
    uint32_t stall_threshold = 0;    // stall when rng < threshold (probability * 2^32)
    uint32_t latency = 0;
    uint64_t rng = 1;
    bool acking = false, in_burst = false, waiting = false;
    uint32_t wait = 0;
    uint32_t dat_r = 0;
    uint64_t dma_reads = 0, dma_writes = 0, dma_errors = 0;

    // CSR initiator
    std::deque<CsrOp> csr_queue;
    std::vector<uint32_t> csr_results;
    bool csr_active = false, csr_we = false, csr_drained = false;
    uint32_t csr_adr = 0, csr_dat_w = 0;

    // The interrupt line, to a socket: a byte per rise, and again after an acknowledgement
    // (a write to IRQ_STATUS) while it stays up, as nic_server.IrqSocket does.
    int irq_fd = -1;
    uint32_t irq_status_offset = 0xFFFFFFFFu;
    bool irq_level = false, irq_acked = false;
    uint64_t irq_check_at = 0, irq_rises = 0;
    uint64_t csr_ops = 0;

    // GMII towards the NIC
    std::deque<RxFrame> rx_queue;
    std::vector<RxDone> rx_done;
    bool rx_notify = false;
    size_t rx_pos = 0;
    bool rx_active = false;
    int ifg = 0;
    uint64_t rx_sfd = 0;
    uint64_t rx_frames = 0;

    // GMII from the NIC
    std::vector<uint8_t> tx_buf;
    bool tx_in = false, tx_er = false;
    uint64_t tx_sfd = 0;
    bool tx_sfd_seen = false;
    std::deque<TxFrame> tx_queue;
    bool tx_notify = false;
    uint64_t tx_frames = 0, tx_bad = 0;

    // Descriptors
    int tap_fd = -1;
    uint64_t tap_in = 0, tap_out = 0, tap_dropped = 0;
    int watch[MAX_WATCH];
    size_t n_watch = 0;
    bool watch_armed = true, fd_ready = false;
    bool idle_block = false;
    uint64_t last_io = 0, last_poll = 0;
    uint64_t idle_cycles = 200000;
    double tick_s = 0, next_tick = 0;
    uint64_t blocks = 0;

    uint32_t random32() {            // xorshift64*
        rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
        return (uint32_t)((rng * 0x2545F4914F6CDD1DULL) >> 32);
    }
};

Harness H;

void push_payload(const uint8_t *frame, size_t len, uint32_t tag) {
    RxFrame f;
    f.tag = tag;
    size_t padded = len < (size_t)MIN_FRAME ? MIN_FRAME : len;
    f.data.assign(7, PRE);
    f.data.push_back(SFD);
    f.data.insert(f.data.end(), frame, frame + len);
    f.data.resize(8 + padded, 0);
    uint32_t fcs = crc32(f.data.data() + 8, padded);
    for (int i = 0; i < 4; i++) f.data.push_back((fcs >> (8 * i)) & 0xFF);
    H.rx_queue.push_back(std::move(f));
}

// Frames waiting on the TAP, into the queue towards the NIC (room permitting).
void read_tap() {
    uint8_t buf[16384];
    while (H.rx_queue.size() < TAP_QUEUE) {
        ssize_t n = read(H.tap_fd, buf, sizeof buf);
        if (n <= 0) break;
        push_payload(buf, (size_t)n, 0);
        H.tap_in++;
    }
}

// A frame the NIC finished sending: checked, then to the TAP or to Python's queue.
void tx_frame_done() {
    std::vector<uint8_t> &b = H.tx_buf;
    size_t sfd = 0;
    while (sfd < b.size() && b[sfd] == PRE) sfd++;
    bool good = !H.tx_er && sfd >= 1 && sfd < b.size() && b[sfd] == SFD && b.size() >= sfd + 1 + 4 + 14;
    if (good) {
        const uint8_t *p = b.data() + sfd + 1;
        size_t n = b.size() - sfd - 1 - 4;
        uint32_t fcs = p[n] | p[n + 1] << 8 | p[n + 2] << 16 | (uint32_t)p[n + 3] << 24;
        good = crc32(p, n) == fcs;
    }
    H.tx_frames++;
    if (H.tap_fd >= 0) {
        if (!good) {
            H.tx_bad++;
        } else if (write(H.tap_fd, b.data() + sfd + 1, b.size() - sfd - 1 - 4) < 0) {
            H.tap_dropped++;
        } else {
            H.tap_out++;
        }
        return;
    }
    TxFrame f;
    f.data.swap(b);
    f.sfd = H.tx_sfd;
    f.end = H.cycle;
    f.flags = (H.tx_er ? 1 : 0) | (good ? 2 : 0);
    H.tx_queue.push_back(std::move(f));
    if (H.tx_notify) H.notify = true;
}

bool is_idle() {
    return H.csr_queue.empty() && !H.csr_active && H.rx_queue.empty() && !H.rx_active && H.ifg == 0
           && !H.tx_in && H.cycle - H.last_activity > H.idle_cycles;
}

// Poll the watched descriptors and the TAP: without waiting, or (idle) until one is ready,
// a signal arrives or the next wall-clock tick is due.
void poll_fds(bool block) {
    pollfd p[MAX_WATCH + 1];
    size_t n = 0;
    if (H.watch_armed)
        for (size_t i = 0; i < H.n_watch; i++) p[n++] = {H.watch[i], POLLIN, 0};
    size_t tap = n;
    if (H.tap_fd >= 0 && H.rx_queue.size() < TAP_QUEUE) p[n++] = {H.tap_fd, POLLIN, 0};
    int timeout = 0;
    if (block) {
        timeout = H.tick_s > 0 ? (int)((H.next_tick - now_s()) * 1000) + 1 : 1000;
        if (timeout < 0) timeout = 0;
        H.blocks++;
    }
    if (n == 0 && !block) return;
    int r = poll(p, n, timeout);
    if (r < 0) {
        if (errno == EINTR) H.notify = true;     // a signal: Python looks at its stop flag
        return;
    }
    // The tick: Python's housekeeping.  The harness stays idle: after Python has looked, the
    // next poll blocks again (a tick or a signal is not activity; a request or a frame is).
    if (block && r == 0) {
        H.notify = true;
        H.next_tick = now_s() + H.tick_s;
    }
    for (size_t i = 0; i < tap; i++) {
        if (p[i].revents) {
            H.fd_ready = true;
            H.watch_armed = false;                 // until Python has served it (snic_h_arm)
            H.notify = true;
            H.last_io = H.cycle;
        }
    }
    if (tap < n && p[tap].revents) {
        read_tap();
        H.last_io = H.cycle;
    }
}

}  // namespace

extern "C" {

// ---- DPI-C: called by snic_harness.sv once per edge ----------------------------------------

void snic_falling(svBit dma_cyc, svBit dma_stb, svBit dma_we, unsigned int dma_adr, unsigned int dma_dat_w,
                  unsigned char dma_sel, unsigned char dma_cti, svBit csr_ack, unsigned int csr_dat_r,
                  svBit *dma_ack_o, unsigned int *dma_dat_r_o, svBit *csr_cyc_o, svBit *csr_we_o,
                  unsigned int *csr_adr_o, unsigned int *csr_dat_w_o) {
    Harness &h = H;
    // DMA target: an asynchronous slave, as hostmem.WishboneDmaTarget (same latency and stalls).
    if (!(dma_cyc && dma_stb)) {
        h.acking = false;
        if (!dma_cyc) h.in_burst = false;
        h.waiting = false;
    } else {
        if (!h.in_burst && !h.waiting && h.latency) {
            h.wait = h.latency;
            h.waiting = true;
        }
        bool go;
        if (h.wait) {
            h.wait--;
            go = false;
        } else {
            go = !(h.stall_threshold && h.random32() < h.stall_threshold);
        }
        if (go) {
            h.waiting = false;
            uint64_t off = ((uint64_t)dma_adr << 2) - h.mem_base;
            bool inside = h.mem && ((uint64_t)dma_adr << 2) >= h.mem_base && off + 4 <= h.mem_size;
            if (dma_we) {
                h.dma_writes++;
                if (!inside) {
                    h.dma_errors++;
                } else if (dma_sel == 0xF) {
                    memcpy(h.mem + off, &dma_dat_w, 4);
                } else {
                    for (int b = 0; b < 4; b++)
                        if (dma_sel >> b & 1) h.mem[off + b] = (dma_dat_w >> (8 * b)) & 0xFF;
                }
                h.dat_r = 0;
            } else {
                h.dma_reads++;
                if (!inside) {
                    h.dma_errors++;
                    h.dat_r = 0;
                } else {
                    memcpy(&h.dat_r, h.mem + off, 4);
                }
            }
            h.in_burst = dma_cti == CTI_INCR;
            h.last_activity = h.cycle;
        }
        h.acking = go;
    }
    *dma_ack_o = h.acking;
    *dma_dat_r_o = h.dat_r;

    // CSR initiator: one access at a time, the next one starting as the last is acknowledged.
    if (h.csr_active && csr_ack) {
        if (!h.csr_we) h.csr_results.push_back(csr_dat_r);
        if (h.csr_we && h.csr_adr << 2 == h.irq_status_offset) {
            // Look at the line again once the write has taken effect.
            h.irq_acked = true;
            h.irq_check_at = h.cycle + 4;
        }
        h.csr_active = false;
        h.csr_ops++;
    }
    while (!h.csr_active && !h.reset_left && !h.csr_queue.empty()) {
        CsrOp op = h.csr_queue.front();
        h.csr_queue.pop_front();
        h.last_activity = h.cycle;
        if (op.op == OP_SYNC) {
            h.csr_results.push_back((uint32_t)h.cycle);
            h.csr_results.push_back((uint32_t)(h.cycle >> 32));
            continue;
        }
        h.csr_active = true;
        h.csr_we = op.op == OP_WRITE;
        h.csr_adr = op.offset >> 2;
        h.csr_dat_w = op.value;
        h.csr_drained = true;
    }
    if (h.csr_drained && !h.csr_active && h.csr_queue.empty()) {
        h.csr_drained = false;
        h.notify = true;
    }
    *csr_cyc_o = h.csr_active;
    *csr_we_o = h.csr_active && h.csr_we;
    *csr_adr_o = h.csr_adr;
    *csr_dat_w_o = h.csr_dat_w;
}

svBit snic_rising(unsigned char tx_d, svBit tx_en, svBit tx_er, svBit irq, unsigned char *rx_d_o, svBit *rx_dv_o,
                  svBit *rx_er_o, svBit *rst_o) {
    Harness &h = H;
    h.cycle++;
    *rx_er_o = 0;
    if (h.reset_left) {
        h.reset_left--;
        *rst_o = 1;
        *rx_d_o = 0;
        *rx_dv_o = 0;
        h.tx_in = false;
        h.tx_buf.clear();
        return 0;
    }
    *rst_o = 0;

    if (!h.irq_acked || h.cycle >= h.irq_check_at) {
        if (irq && (!h.irq_level || h.irq_acked)) {
            h.irq_rises++;
            // Unread bytes already say it rose; a gone reader is Python's to notice.
            if (h.irq_fd >= 0) send(h.irq_fd, "i", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        h.irq_level = irq;
        h.irq_acked = false;
    }

    // The NIC's transmitter, sampled as it drove the cycle that ends here.
    if (tx_en) {
        if (!h.tx_in) {
            h.tx_in = true;
            h.tx_er = false;
            h.tx_sfd_seen = false;
            h.tx_buf.clear();
        }
        if (!h.tx_sfd_seen && h.tx_buf.size() && h.tx_buf.back() == SFD) {
            h.tx_sfd_seen = true;
            h.tx_sfd = h.cycle;
        }
        h.tx_buf.push_back(tx_d);
        h.tx_er |= tx_er;
        h.last_activity = h.cycle;
    } else if (h.tx_in) {
        h.tx_in = false;
        tx_frame_done();
    }

    // The NIC's receiver: frames back to back with the minimum gap.
    if (!h.rx_active && h.ifg == 0 && !h.rx_queue.empty()) {
        h.rx_active = true;
        h.rx_pos = 0;
    }
    if (h.rx_active) {
        RxFrame &f = h.rx_queue.front();
        if (h.rx_pos && f.data[h.rx_pos - 1] == SFD && (h.rx_pos < 2 || f.data[h.rx_pos - 2] == PRE))
            h.rx_sfd = h.cycle;
        *rx_d_o = f.data[h.rx_pos++];
        *rx_dv_o = 1;
        if (h.rx_pos >= f.data.size()) {
            if (f.tag) {
                h.rx_done.push_back({f.tag, h.rx_sfd, h.cycle});
                if (h.rx_notify) h.notify = true;
            }
            h.rx_frames++;
            h.rx_queue.pop_front();
            h.rx_active = false;
            h.ifg = IFG_BYTES;
        }
        h.last_activity = h.cycle;
    } else {
        *rx_d_o = 0;
        *rx_dv_o = 0;
        if (h.ifg) h.ifg--;
    }

    if ((h.cycle & (TICK_EVERY - 1)) == 0 && h.tick_s > 0 && now_s() >= h.next_tick) {
        h.next_tick = now_s() + h.tick_s;
        h.notify = true;
    }
    if (h.cycle - h.last_poll >= (h.cycle - h.last_io < HOT_CYCLES ? POLL_HOT : POLL_COLD)) {
        h.last_poll = h.cycle;
        poll_fds(h.idle_block && !h.notify && is_idle());
    }
    bool n = h.notify;
    h.notify = false;
    return n;
}

// ---- Python's side (ctypes, same process) ---------------------------------------------------

int snic_h_init(void) {
    crc_init();
    return 1;
}

// Map the shared-memory file at path (size bytes, device address base); 0 or -errno.
int snic_h_memory(const char *path, uint64_t size, uint32_t base) {
    int fd = open(path, O_RDWR);
    if (fd < 0) return -errno;
    void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int err = errno;
    close(fd);
    if (p == MAP_FAILED) return -err;
    if (H.mem) munmap(H.mem, H.mem_size);
    H.mem = (uint8_t *)p;
    H.mem_size = size;
    H.mem_base = base;
    return 0;
}

void snic_h_dma(double stall_prob, uint32_t latency, uint64_t seed) {
    H.stall_threshold = (uint32_t)(stall_prob * 4294967296.0);
    H.latency = latency;
    H.rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    H.acking = H.in_burst = H.waiting = false;
    H.wait = 0;
}

// Hold the NIC in reset for cycles rising edges (drops frames in flight on the wire).
void snic_h_reset(uint32_t cycles) {
    H.reset_left = cycles;
    H.rx_queue.clear();
    H.rx_active = false;
    H.ifg = 0;
    H.tx_queue.clear();
    H.rx_done.clear();
}

uint64_t snic_h_cycle(void) { return H.cycle; }
int snic_h_in_reset(void) { return H.reset_left != 0; }

// CSR accesses, done in order; snic_h_csr_pending() is 0 once all are.
void snic_h_csr_push(uint32_t op, uint32_t offset, uint32_t value) {
    H.csr_queue.push_back({(uint8_t)op, offset, value});
}
uint32_t snic_h_csr_pending(void) { return H.csr_queue.size() + H.csr_active; }
// Results so far (read data; two words, low first, per sync), removed from the harness.
uint32_t snic_h_csr_results(uint32_t *out, uint32_t max) {
    uint32_t n = H.csr_results.size() < max ? H.csr_results.size() : max;
    memcpy(out, H.csr_results.data(), 4 * n);
    H.csr_results.erase(H.csr_results.begin(), H.csr_results.begin() + n);
    return n;
}

// A frame towards the NIC: raw = the wire bytes as given (preamble, SFD, FCS included);
// otherwise preamble, SFD, padding to 60 bytes and FCS are added.  A non-zero tag reports
// the frame's SFD and end cycles in snic_h_rx_done().
void snic_h_rx_push(const uint8_t *data, uint32_t len, int raw, uint32_t tag) {
    if (raw) {
        H.rx_queue.push_back({std::vector<uint8_t>(data, data + len), tag});
    } else {
        push_payload(data, len, tag);
    }
}
uint32_t snic_h_rx_pending(void) { return H.rx_queue.size(); }
void snic_h_rx_notify(int on) { H.rx_notify = on; }
uint32_t snic_h_rx_done(uint32_t *tags, uint64_t *sfd, uint64_t *end, uint32_t max) {
    uint32_t n = H.rx_done.size() < max ? H.rx_done.size() : max;
    for (uint32_t i = 0; i < n; i++) {
        tags[i] = H.rx_done[i].tag;
        sfd[i] = H.rx_done[i].sfd;
        end[i] = H.rx_done[i].end;
    }
    H.rx_done.erase(H.rx_done.begin(), H.rx_done.begin() + n);
    return n;
}

// Frames the NIC sent (when no TAP takes them): the wire bytes from the first preamble byte.
void snic_h_tx_notify(int on) { H.tx_notify = on; }
uint32_t snic_h_tx_count(void) { return H.tx_queue.size(); }
int snic_h_tx_busy(void) { return H.tx_in; }
int snic_h_tx_pop(uint8_t *buf, uint32_t max, uint64_t *sfd, uint64_t *end, uint32_t *flags) {
    if (H.tx_queue.empty()) return -1;
    TxFrame &f = H.tx_queue.front();
    uint32_t n = f.data.size() < max ? f.data.size() : max;
    memcpy(buf, f.data.data(), n);
    *sfd = f.sfd;
    *end = f.end;
    *flags = f.flags;
    H.tx_queue.pop_front();
    return n;
}

// The wire is this TAP descriptor: frames move between it and the NIC without Python.
void snic_h_tap(int fd) {
    H.tap_fd = fd;
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Descriptors whose readability wakes Python (snic_h_fd_ready), once until snic_h_arm().
void snic_h_watch(const int *fds, uint32_t n) {
    H.n_watch = n < MAX_WATCH ? n : MAX_WATCH;
    memcpy(H.watch, fds, sizeof(int) * H.n_watch);
    H.watch_armed = true;
}
void snic_h_arm(void) {
    H.fd_ready = false;
    H.watch_armed = true;
}
int snic_h_fd_ready(void) { return H.fd_ready; }

// The interrupt's reader (a connected socket, or -1) and the offset of IRQ_STATUS.
void snic_h_irq(int fd, uint32_t status_offset) {
    H.irq_fd = fd;
    H.irq_status_offset = status_offset;
}

// Block in poll() after idle_cycles without activity (0: never); wake Python every tick_s.
void snic_h_idle(uint64_t idle_cycles, double tick_s) {
    H.idle_block = idle_cycles != 0;
    H.idle_cycles = idle_cycles;
    H.tick_s = tick_s;
    H.next_tick = now_s() + tick_s;
}

// Counters: DMA reads, writes, errors; frames to the NIC, from the NIC, bad from the NIC;
// TAP frames in, out, dropped; CSR accesses; idle blocks; interrupt rises.
void snic_h_stats(uint64_t *out) {
    uint64_t v[] = {H.dma_reads, H.dma_writes, H.dma_errors, H.rx_frames, H.tx_frames, H.tx_bad,
                    H.tap_in, H.tap_out, H.tap_dropped, H.csr_ops, H.blocks, H.irq_rises};
    memcpy(out, v, sizeof v);
}

}  // extern "C"
