// The CUDA runtime, emulated on the CPU for tests: the subset of the runtime API the project calls,
// implemented so that the mistakes a first GPU run would hit show up here instead:
//
// - Device memory is mapped with a guard page on either side and is accessible only while emulated
//   device work runs. Host code that dereferences a device pointer, or a kernel that runs past the end
//   of its buffer, stops with a message naming the allocation (SIGSEGV handler below).
// - Work runs as late as CUDA allows: queued per stream and executed only when the host synchronizes
//   (a stream or event synchronization, a download to pageable memory, cudaFree). A host read of a
//   result before its synchronization, or a staging buffer reused before its copy ran, gives wrong
//   data here as it may on a GPU.
// - Graph capture records the stream's work; what CUDA refuses during a global-mode capture
//   (allocation, synchronization, work on the legacy stream, pageable copies) fails the same way and
//   invalidates the capture.
// - Launch configurations are checked as CUDA checks them (block <= 1024 threads, grid y/z <= 65535).
//   A block's threads run as fibers, so __syncthreads and warp shuffles work; a barrier that not all
//   threads reach, or a full-mask shuffle with missing lanes, is reported as a deadlock/defect.
// Fibers switch with _setjmp/_longjmp between stacks, which the fortified longjmp would refuse.
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "emu_kernel.h" // first: it defines __shared__ before the CUDA headers do
#include "emu.h"

namespace emu {

// ---------------------------------------------------------------------------------------------
// Errors

void fatal(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fprintf(stderr, "cuda-emu: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    void* frames[64];
    int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, 2);
    abort();
}

float round_tf32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return x; // Inf and NaN unchanged
    u += 0x0fffu + ((u >> 13) & 1u);                 // round to nearest even at mantissa bit 13
    u &= ~0x1fffu;
    memcpy(&x, &u, 4);
    return x;
}

static cudaError_t last_error = cudaSuccess;
static cudaError_t fail(cudaError_t e) {
    last_error = e;
    return e;
}

// ---------------------------------------------------------------------------------------------
// Device memory: [guard page][... slack | user bytes][guard page], the user bytes 256-byte aligned as
// cudaMalloc's are (cuBLAS requires it of its workspace) and ending as close to the trailing guard
// page as that allows. An access past the end faults once it passes the slack (under 256 bytes);
// a write into the slack, or into the 256 bytes before the start, is caught by the canary bytes
// there, checked after every piece of device work (check_canaries), which names the work.

struct Allocation {
    char *map, *user;
    size_t map_bytes, data_bytes, user_bytes; // data: the pages between the guards
    unsigned long id;
};
static std::map<uintptr_t, Allocation> allocations; // by user start
static size_t page_bytes, allocated_bytes;
static unsigned long next_id = 1;
static int device_mode;           // > 0 while device work runs: device memory is readable
static const char* running = ""; // the device work running, for fault messages
static const size_t DEVICE_MEMORY = (size_t)16 << 30; // what cudaMemGetInfo reports as total

static const unsigned char CANARY = 0xa5;

// The first byte of [p, p + n) (n <= 256) that is not CANARY, or NULL. Runs after every piece of
// device work for every allocation, so the intact case is one memcmp.
static const unsigned char* broken(const unsigned char* p, size_t n) {
    static unsigned char intact[256];
    if (!intact[0]) memset(intact, CANARY, sizeof(intact));
    if (memcmp(p, intact, n) == 0) return NULL;
    while (*p == CANARY) p++;
    return p;
}

// The first canary byte that is not intact just before or just after the allocation, or NULL.
static const unsigned char* broken_canary(const Allocation& a) {
    const unsigned char* data = (const unsigned char*)a.map + page_bytes;
    const unsigned char* user = (const unsigned char*)a.user;
    const unsigned char* lo = user - 256 < data ? data : user - 256;
    const unsigned char* q = broken(lo, (size_t)(user - lo));
    return q ? q : broken(user + a.user_bytes, (size_t)(data + a.data_bytes - (user + a.user_bytes)));
}

static void protect(const Allocation& a, int prot) {
    if (mprotect(a.map + page_bytes, a.data_bytes, prot) != 0)
        fatal("mprotect of allocation #%lu failed: %s", a.id, strerror(errno));
}

static void enter_device(const char* what) {
    running = what;
    if (device_mode++ == 0)
        for (auto& kv : allocations) protect(kv.second, PROT_READ | PROT_WRITE);
}

static void leave_device(void) {
    if (--device_mode == 0) {
        for (auto& kv : allocations) protect(kv.second, PROT_NONE);
        running = "";
    }
}

static const Allocation* find_allocation(const void* p) {
    uintptr_t a = (uintptr_t)p;
    auto it = allocations.upper_bound(a);
    if (it == allocations.begin()) return NULL;
    --it;
    const Allocation& al = it->second;
    return a < (uintptr_t)al.user + al.user_bytes ? &al : NULL;
}

bool is_device_range(const void* p, size_t bytes) {
    const Allocation* a = find_allocation(p);
    return a && (uintptr_t)p + bytes <= (uintptr_t)a->user + a->user_bytes;
}

// The allocation whose mapping (guards included) holds p, for fault messages.
static const Allocation* find_mapping(const void* p) {
    for (auto& kv : allocations) {
        const Allocation& a = kv.second;
        if ((const char*)p >= a.map && (const char*)p < a.map + a.map_bytes) return &a;
    }
    return NULL;
}

static void on_segv(int sig, siginfo_t* info, void*) {
    const void* addr = info->si_addr;
    const Allocation* a = find_mapping(addr);
    char msg[512];
    if (a && device_mode) {
        long off = (long)((const char*)addr - a->user);
        snprintf(msg, sizeof(msg), "cuda-emu: %s accessed byte %ld of device allocation #%lu, which has %zu bytes "
                 "(%s): an illegal memory access on a GPU\n", running, off, a->id, a->user_bytes,
                 off < 0 ? "before its start" : "past its end");
    } else if (a) {
        snprintf(msg, sizeof(msg), "cuda-emu: host code dereferenced device memory at %p (allocation #%lu, %zu bytes):"
                 " a segmentation fault on a GPU machine too\n", addr, a->id, a->user_bytes);
    } else {
        snprintf(msg, sizeof(msg), "cuda-emu: segmentation fault at %p (%s) outside device memory%s%s\n", addr,
                 sig == SIGBUS ? "SIGBUS" : "SIGSEGV", device_mode ? " while running " : "", device_mode ? running : "");
    }
    if (write(2, msg, strlen(msg)) < 0) {}
    void* frames[64];
    int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, 2);
    signal(SIGABRT, SIG_DFL);
    abort();
}

static void install_handler(void) {
    static int done;
    if (done) return;
    done = 1;
    page_bytes = (size_t)sysconf(_SC_PAGESIZE);
    static char altstack[1 << 16];
    stack_t ss = {};
    ss.ss_sp = altstack;
    ss.ss_size = sizeof(altstack);
    sigaltstack(&ss, NULL);
    struct sigaction sa = {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

static cudaError_t device_malloc(void** p, size_t bytes) {
    install_handler();
    if (!p) return fail(cudaErrorInvalidValue);
    *p = NULL;
    if (bytes == 0) return cudaSuccess; // as CUDA: success, and NULL
    if (bytes > DEVICE_MEMORY - allocated_bytes) return fail(cudaErrorMemoryAllocation);
    Allocation a;
    a.data_bytes = (bytes + page_bytes - 1) / page_bytes * page_bytes;
    a.map_bytes = a.data_bytes + 2 * page_bytes;
    void* m = mmap(NULL, a.map_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return fail(cudaErrorMemoryAllocation);
    a.map = (char*)m;
    a.user = (char*)(((uintptr_t)(a.map + page_bytes + a.data_bytes - bytes)) & ~(uintptr_t)255);
    a.user_bytes = bytes;
    a.id = next_id++;
    protect(a, PROT_READ | PROT_WRITE);
    memset(a.map + page_bytes, CANARY, a.data_bytes);
    // Fresh device memory holds whatever was there before: here all bits set, a NaN in every float
    // and -1 in every int, so a read of memory nothing wrote shows.
    memset(a.user, 0xff, bytes);
    if (!device_mode) protect(a, PROT_NONE);
    allocations[(uintptr_t)a.user] = a;
    allocated_bytes += bytes;
    *p = a.user;
    return cudaSuccess;
}

// Pinned host memory (cudaMallocHost): ordinary memory, remembered so that copies know it is pinned.
static std::map<uintptr_t, size_t> pinned;
static bool is_pinned(const void* p, size_t bytes) {
    auto it = pinned.upper_bound((uintptr_t)p);
    if (it == pinned.begin()) return false;
    --it;
    return (uintptr_t)p + bytes <= it->first + it->second;
}

// ---------------------------------------------------------------------------------------------
// Streams, deferred work, graphs

struct Work {
    std::string what;
    std::function<void()> run;
};
struct Graph {
    std::vector<Work> nodes;
};
struct Stream {
    std::deque<Work> queue;
    Graph* capture = NULL;   // non-NULL while capturing
    bool invalidated = false; // a refused call during the capture
};
} // namespace emu

// The runtime's opaque handles are pointers to these.
struct CUstream_st : emu::Stream {};
struct CUevent_st {
    bool pending = false, recorded = false; // recorded: ever recorded; pending: its position not reached
    double ms = 0;                           // host clock when its position was reached
    bool timing = true;
};
struct CUgraph_st : emu::Graph {};
struct CUgraphExec_st : emu::Graph {};

namespace emu {

static CUstream_st legacy_stream;
static std::vector<CUstream_st*> streams = {&legacy_stream};
static CUstream_st* stream_of(cudaStream_t s) { return s ? (CUstream_st*)s : &legacy_stream; }
static CUstream_st* capturing_stream; // the one capture in progress (global mode), or NULL

bool is_capturing(cudaStream_t s) {
    return s ? stream_of(s)->capture != NULL : capturing_stream != NULL;
}

// What CUDA does with a call it cannot capture: the call fails with `e` and the capture is invalid.
static void invalidate_capture(const char* what, cudaError_t e) {
    capturing_stream->invalidated = true;
    fprintf(stderr, "cuda-emu: %s during a stream capture: CUDA refuses it (%s) and invalidates the capture\n", what,
            cudaGetErrorName(e));
    last_error = e;
}

static cudaStreamCaptureMode capture_mode; // of the capture in progress

// A "potentially unsafe" call (an allocation, a free, a memory query), which CUDA refuses while a
// global- or thread-local-mode capture is in progress (this emulator has one thread, so the two are
// alike) and lets through in relaxed mode: true (after invalidating the capture) when refused.
static bool refused_in_capture(const char* what) {
    if (!capturing_stream || capture_mode == cudaStreamCaptureModeRelaxed) return false;
    invalidate_capture(what, cudaErrorStreamCaptureUnsupported);
    return true;
}

// A call no capture mode allows (a synchronization, a synchronous copy): true after invalidating.
static bool refused_in_any_capture(const char* what) {
    if (!capturing_stream) return false;
    invalidate_capture(what, cudaErrorStreamCaptureUnsupported);
    return true;
}

// After a piece of device work: it must not have written next to any allocation.
static void check_canaries(const char* what) {
    for (auto& kv : allocations) {
        const Allocation& a = kv.second;
        const unsigned char* q = broken_canary(a);
        if (!q) continue;
        long off = (long)((const char*)q - a.user);
        fatal("%s wrote byte %ld of device allocation #%lu, which has %zu bytes (%s): an out-of-bounds write "
              "on a GPU", what, off, a.id, a.user_bytes, off < 0 ? "before its start" : "past its end");
    }
}

// Runs one piece of work (device memory is open) and checks that it wrote inside its buffers.
static void run_work(const Work& w) {
    running = w.what.c_str();
    w.run();
    check_canaries(w.what.c_str());
}

// Runs a stream's queue; device memory is opened once for the whole batch of work.
static void drain(CUstream_st* s) {
    if (s->queue.empty()) return;
    enter_device("queued work");
    while (!s->queue.empty()) {
        Work w = std::move(s->queue.front());
        s->queue.pop_front();
        run_work(w);
    }
    leave_device();
}

void flush_all(void) {
    for (CUstream_st* s : streams) drain(s);
}

void submit(cudaStream_t stream, const char* what, std::function<void()> work) {
    CUstream_st* s = stream_of(stream);
    if (s->capture) {
        s->capture->nodes.push_back(Work{what, std::move(work)});
        return;
    }
    if (s == &legacy_stream) {
        if (capturing_stream) { // the legacy stream synchronizes with the capturing stream: not capturable
            invalidate_capture(what, cudaErrorStreamCaptureImplicit);
            return;
        }
        for (CUstream_st* o : streams) // the legacy stream waits for every blocking stream and they for it
            if (o != s) drain(o);
    } else {
        drain(&legacy_stream);
    }
    s->queue.push_back(Work{what, std::move(work)});
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Kernels: a block's threads as fibers

ThreadState* current;
static ThreadState direct_state;

enum FiberState { RUNNABLE, AT_SYNCTHREADS, AT_SHUFFLE, EXITED };
// A fiber is one emulated thread's stack. It is started once (makecontext) and then kept: after the
// body returns it waits in fiber_main's loop for the next block, so switching costs no system call
// (swapcontext saves the signal mask with one; _setjmp/_longjmp do not).
struct Fiber {
    ucontext_t start;        // for the first entry only
    jmp_buf env;             // where the fiber continues
    char* stack = NULL;
    bool started = false;
    FiberState state = EXITED;
    ThreadState ts;
    uint64_t exchange_src = 0; // the lane to read at the shuffle being waited on
};

static const size_t FIBER_STACK = (size_t)128 << 10;
static const int MAX_THREADS = 1024;
static Fiber fibers[MAX_THREADS];
static jmp_buf scheduler_env;
static Fiber* running_fiber;
static bool fiber_mode;
static const std::function<void()>* fiber_body;
static bool block_used_barrier;
static uint64_t warp_slots[32][2][32]; // [warp][generation parity][lane]
static unsigned warp_generation[32];
static const char* kernel_name = "";

// Back to the scheduler; returns when the scheduler resumes this fiber.
__attribute__((noinline)) static void switch_to_scheduler(FiberState state) {
    Fiber* f = running_fiber;
    f->state = state;
    if (_setjmp(f->env) == 0) _longjmp(scheduler_env, 1);
    current = &f->ts; // resumed
}

static void fiber_main(void) {
    for (;;) {
        (*fiber_body)();
        switch_to_scheduler(EXITED); // resumed for the next block
    }
}

// Runs fiber f until it waits or its thread exits.
__attribute__((noinline)) static void resume(Fiber& f) { // its own frame for _setjmp
    running_fiber = &f;
    current = &f.ts;
    if (_setjmp(scheduler_env) != 0) return;
    if (!f.started) {
        f.started = true;
        ucontext_t here;
        swapcontext(&here, &f.start); // never returns here: the fiber comes back by _longjmp
    }
    _longjmp(f.env, 1);
}

void syncthreads(void) {
    if (!fiber_mode)
        fatal("kernel %s reached __syncthreads in a launch run without fibers (its first launch never did)",
              kernel_name);
    block_used_barrier = true;
    switch_to_scheduler(AT_SYNCTHREADS);
}

uint64_t warp_exchange(unsigned mask, uint64_t mine, int src_lane) {
    if (!fiber_mode)
        fatal("kernel %s used a warp shuffle in a launch run without fibers (its first launch never did)",
              kernel_name);
    if (mask != 0xffffffffu) fatal("kernel %s: the emulator supports full-mask shuffles only (mask 0x%x)", kernel_name, mask);
    block_used_barrier = true;
    const unsigned lane = current->thread_idx.x & 31u, warp = (current->thread_idx.x >> 5) & 31u;
    if (current->thread_idx.y || current->thread_idx.z) fatal("kernel %s: shuffles in 2-d/3-d blocks are not emulated", kernel_name);
    const unsigned parity = warp_generation[warp] & 1u;
    warp_slots[warp][parity][lane] = mine;
    running_fiber->exchange_src = (uint64_t)src_lane;
    switch_to_scheduler(AT_SHUFFLE);
    return warp_slots[warp][parity][running_fiber->exchange_src];
}

// Releases warp w's lanes when every live lane waits in the same shuffle; false when they do not.
static bool release_warp(unsigned w, size_t n) {
    size_t first = (size_t)w * 32, last = first + 32 < n ? first + 32 : n;
    size_t waiting = 0, lanes_live = 0;
    for (size_t i = first; i < last; i++) {
        waiting += fibers[i].state == AT_SHUFFLE;
        lanes_live += fibers[i].state != EXITED;
    }
    if (waiting == 0 || waiting != lanes_live) return false;
    if (waiting != 32)
        fatal("kernel %s block (%u,%u,%u): a full-mask warp shuffle in warp %u with only %zu lanes taking part "
              "(exited lanes or a block size that is not a multiple of 32): undefined on a GPU", kernel_name,
              fibers[0].ts.block_idx.x, fibers[0].ts.block_idx.y, fibers[0].ts.block_idx.z, w, waiting);
    for (size_t i = first; i < last; i++) {
        if (fibers[i].exchange_src >= 32) fatal("kernel %s: shuffle source lane %llu", kernel_name,
                                                (unsigned long long)fibers[i].exchange_src);
        fibers[i].state = RUNNABLE;
    }
    warp_generation[w]++;
    return true;
}

// Releases the waiters of a complete barrier; returns false when no barrier can complete.
static bool release_barriers(size_t n) {
    size_t live = 0, at_sync = 0;
    for (size_t i = 0; i < n; i++) {
        live += fibers[i].state != EXITED;
        at_sync += fibers[i].state == AT_SYNCTHREADS;
    }
    bool released = false;
    if (live > 0 && at_sync == live) {
        for (size_t i = 0; i < n; i++)
            if (fibers[i].state == AT_SYNCTHREADS) fibers[i].state = RUNNABLE;
        released = true;
    }
    for (unsigned w = 0; w < (n + 31) / 32; w++) released |= release_warp(w, n);
    return released;
}

// Between two barriers the threads run one after another: a thread that reads what another wrote
// without a barrier in between sees it in one order and not in another, so a missing barrier
// changes the result in some order. DRNET_EMU_ORDER picks it: "threads" (the default: each thread
// in turn until it waits), "reverse" (the same, last thread first, and the blocks of a grid last
// first: a kernel relying on the order of blocks is wrong on a GPU), or "warps" (each warp as far
// as its own shuffles let it before the next warp starts, as when one warp runs ahead).
enum { ORDER_THREADS, ORDER_REVERSE, ORDER_WARPS };
static int run_order(void) {
    static const int order = [] {
        const char* o = getenv("DRNET_EMU_ORDER");
        if (!o || !*o || !strcmp(o, "threads")) return (int)ORDER_THREADS;
        if (!strcmp(o, "reverse")) return (int)ORDER_REVERSE;
        if (!strcmp(o, "warps")) return (int)ORDER_WARPS;
        fatal("DRNET_EMU_ORDER=%s: expected threads, reverse or warps", o);
    }();
    return order;
}

// Its own frame: getcontext returns twice.
__attribute__((noinline)) static void make_fiber(Fiber& f) {
    f.stack = (char*)malloc(FIBER_STACK);
    if (!f.stack) fatal("out of memory for fiber stacks");
    getcontext(&f.start);
    f.start.uc_stack.ss_sp = f.stack;
    f.start.uc_stack.ss_size = FIBER_STACK;
    f.start.uc_link = NULL;
    makecontext(&f.start, fiber_main, 0);
}

static void run_block_fibers(const std::function<void()>& body, dim3 grid, dim3 block, uint3 b) {
    const size_t n = (size_t)block.x * block.y * block.z;
    fiber_body = &body;
    memset(warp_generation, 0, sizeof(warp_generation));
    for (size_t i = 0; i < n; i++) {
        Fiber& f = fibers[i];
        if (!f.stack) make_fiber(f);
        f.state = RUNNABLE;
        f.ts.thread_idx = make_uint3((unsigned)(i % block.x), (unsigned)(i / block.x % block.y),
                                     (unsigned)(i / ((size_t)block.x * block.y)));
        f.ts.block_idx = b;
        f.ts.block_dim = block;
        f.ts.grid_dim = grid;
    }
    const int order = run_order();
    for (;;) {
        bool ran = false, all_done = true;
        for (size_t j = 0; j < n; j++) {
            Fiber& f = fibers[order == ORDER_REVERSE ? n - 1 - j : j];
            if (f.state == RUNNABLE) {
                resume(f);
                ran = true;
                // "warps": at a warp's last lane, run the warp on through its shuffles.
                if (order == ORDER_WARPS && (j % 32 == 31 || j == n - 1))
                    while (release_warp((unsigned)(j / 32), n))
                        for (size_t i = j / 32 * 32; i <= j; i++)
                            if (fibers[i].state == RUNNABLE) resume(fibers[i]);
            }
            all_done &= f.state == EXITED;
        }
        if (all_done) break;
        if (!release_barriers(n) && !ran) {
            size_t sync = 0, shfl = 0, done = 0;
            for (size_t i = 0; i < n; i++)
                sync += fibers[i].state == AT_SYNCTHREADS, shfl += fibers[i].state == AT_SHUFFLE,
                done += fibers[i].state == EXITED;
            fatal("kernel %s block (%u,%u,%u) deadlocks: %zu threads wait at __syncthreads, %zu in a warp shuffle, "
                  "%zu have exited (a barrier not every thread reaches)", kernel_name, b.x, b.y, b.z, sync, shfl, done);
        }
    }
    current = NULL;
}

// Kernels seen to use no barrier in their first launch run as plain loops afterwards.
static std::unordered_map<const void*, bool> needs_fibers;

static void run_grid(const char* name, const void* key, dim3 grid, dim3 block, const std::function<void()>& body) {
    kernel_name = name;
    auto known = needs_fibers.find(key);
    const bool fibers_on = known == needs_fibers.end() || known->second;
    bool used = false;
    const bool rev = run_order() == ORDER_REVERSE;
    for (unsigned zi = 0; zi < grid.z; zi++)
        for (unsigned yi = 0; yi < grid.y; yi++)
            for (unsigned xi = 0; xi < grid.x; xi++) {
                const uint3 b = rev ? make_uint3(grid.x - 1 - xi, grid.y - 1 - yi, grid.z - 1 - zi)
                                    : make_uint3(xi, yi, zi);
                if (fibers_on) {
                    fiber_mode = true;
                    block_used_barrier = false;
                    run_block_fibers(body, grid, block, b);
                    fiber_mode = false;
                    used |= block_used_barrier;
                    continue;
                }
                direct_state.block_idx = b;
                direct_state.block_dim = block;
                direct_state.grid_dim = grid;
                current = &direct_state;
                for (unsigned tz = 0; tz < block.z; tz++)
                    for (unsigned ty = 0; ty < block.y; ty++)
                        for (unsigned tx = 0; tx < block.x; tx++) {
                            direct_state.thread_idx = rev ? make_uint3(block.x - 1 - tx, block.y - 1 - ty, block.z - 1 - tz)
                                                          : make_uint3(tx, ty, tz);
                            body();
                        }
                current = NULL;
            }
    if (known == needs_fibers.end()) needs_fibers[key] = used;
    kernel_name = "";
}

void launch(const char* name, const void* key, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
            std::function<void()> body) {
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.x == 0 ||
        grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535 ||
        shared_bytes > 48 * 1024) {
        fprintf(stderr, "cuda-emu: launch of %s with grid (%u,%u,%u), block (%u,%u,%u), %zu bytes shared: "
                        "invalid configuration\n", name, grid.x, grid.y, grid.z, block.x, block.y, block.z, shared_bytes);
        last_error = cudaErrorInvalidConfiguration;
        return;
    }
    std::string what = std::string("kernel ") + name;
    submit(stream, what.c_str(), [name, key, grid, block, body]() { run_grid(name, key, grid, block, body); });
}

} // namespace emu

// ---------------------------------------------------------------------------------------------
// The runtime API

using namespace emu;

static const struct {
    cudaError_t code;
    const char *name, *text;
} error_table[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration", "invalid configuration argument"},
    {cudaErrorNotReady, "cudaErrorNotReady", "device not ready"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorStreamCaptureUnsupported, "cudaErrorStreamCaptureUnsupported",
     "operation not permitted when stream is capturing"},
    {cudaErrorStreamCaptureInvalidated, "cudaErrorStreamCaptureInvalidated",
     "operation failed due to a previous error during capture"},
    {cudaErrorStreamCaptureImplicit, "cudaErrorStreamCaptureImplicit",
     "operation would make the legacy stream depend on a capturing blocking stream"},
    {cudaErrorIllegalState, "cudaErrorIllegalState", "the operation cannot be performed in the present state"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection", "invalid copy direction for memcpy"},
};

extern "C" {

const char* cudaGetErrorName(cudaError_t e) {
    for (auto& r : error_table)
        if (r.code == e) return r.name;
    return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
    for (auto& r : error_table)
        if (r.code == e) return r.text;
    return "unknown error";
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

cudaError_t cudaGetDeviceCount(int* count) {
    if (!count) return fail(cudaErrorInvalidValue);
    *count = 1;
    return cudaSuccess;
}

static int current_device;
cudaError_t cudaGetDevice(int* dev) {
    if (!dev) return fail(cudaErrorInvalidValue);
    *dev = current_device;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int dev) {
    if (dev != 0) return fail(cudaErrorInvalidDevice);
    current_device = dev;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int dev) {
    if (!p) return fail(cudaErrorInvalidValue);
    if (dev != 0) return fail(cudaErrorInvalidDevice);
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "CUDA emulator on the CPU");
    p->major = 9, p->minor = 0;
    p->multiProcessorCount = 132;
    p->totalGlobalMem = DEVICE_MEMORY;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->sharedMemPerBlock = 48 * 1024;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* v) {
    if (!v) return fail(cudaErrorInvalidValue);
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* v) {
    if (!v) return fail(cudaErrorInvalidValue);
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_b, size_t* total_b) {
    if (refused_in_capture("cudaMemGetInfo")) return cudaErrorStreamCaptureUnsupported;
    if (free_b) *free_b = DEVICE_MEMORY - allocated_bytes;
    if (total_b) *total_b = DEVICE_MEMORY;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
    if (refused_in_capture("cudaMalloc")) return cudaErrorStreamCaptureUnsupported;
    return device_malloc(p, bytes);
}

cudaError_t cudaFree(void* p) {
    if (refused_in_capture("cudaFree")) return cudaErrorStreamCaptureUnsupported;
    if (!p) return cudaSuccess;
    flush_all(); // cudaFree synchronizes the device
    auto it = allocations.find((uintptr_t)p);
    if (it == allocations.end()) fatal("cudaFree(%p): not a pointer cudaMalloc returned (or freed twice)", p);
    allocated_bytes -= it->second.user_bytes;
    munmap(it->second.map, it->second.map_bytes);
    allocations.erase(it);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void** p, size_t bytes) {
    if (refused_in_capture("cudaMallocHost")) return cudaErrorStreamCaptureUnsupported;
    if (!p) return fail(cudaErrorInvalidValue);
    *p = NULL;
    if (posix_memalign(p, 4096, bytes ? bytes : 1) != 0) return fail(cudaErrorMemoryAllocation);
    pinned[(uintptr_t)*p] = bytes;
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void* p) {
    if (refused_in_capture("cudaFreeHost")) return cudaErrorStreamCaptureUnsupported;
    if (!p) return cudaSuccess;
    flush_all();
    if (!pinned.erase((uintptr_t)p)) fatal("cudaFreeHost(%p): not a pointer cudaMallocHost returned", p);
    free(p);
    return cudaSuccess;
}

// The direction must match where the pointers are (cudaMemcpyDefault infers it).
static void check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const char* call) {
    if (kind == cudaMemcpyDefault || kind == cudaMemcpyHostToHost) return;
    const bool dd = is_device_range(dst, bytes), sd = is_device_range(src, bytes);
    const bool want_dd = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool want_sd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (want_dd != dd || want_sd != sd)
        fatal("%s of %zu bytes, kind %d: destination %p is %s, source %p is %s (a device range must lie inside one "
              "cudaMalloc allocation)", call, bytes, (int)kind, dst, dd ? "device memory" : "not device memory", src,
              sd ? "device memory" : "not device memory");
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
    if (bytes == 0) return cudaSuccess;
    check_copy(dst, src, bytes, kind, "cudaMemcpyAsync");
    const bool host_dst = !is_device_range(dst, bytes), host_src = !is_device_range(src, bytes);
    const bool pageable = (host_dst && !is_pinned(dst, bytes)) || (host_src && !is_pinned(src, bytes));
    if (pageable && refused_in_any_capture("cudaMemcpyAsync with pageable host memory"))
        return cudaErrorStreamCaptureUnsupported;
    if (pageable && host_src && !host_dst) {
        // From pageable memory CUDA stages the source before returning: snapshot it now.
        std::shared_ptr<std::vector<char>> copy = std::make_shared<std::vector<char>>((const char*)src, (const char*)src + bytes);
        submit(stream, "cudaMemcpyAsync (host to device)", [dst, copy]() { memcpy(dst, copy->data(), copy->size()); });
        return cudaSuccess;
    }
    submit(stream, "cudaMemcpyAsync", [dst, src, bytes]() { memcpy(dst, src, bytes); });
    if (pageable && host_dst) drain(stream_of(stream)); // to pageable memory the copy is synchronous
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    if (refused_in_any_capture("cudaMemcpy (synchronous)")) return cudaErrorStreamCaptureUnsupported;
    if (bytes == 0) return cudaSuccess;
    check_copy(dst, src, bytes, kind, "cudaMemcpy");
    flush_all();
    enter_device("cudaMemcpy");
    memcpy(dst, src, bytes);
    leave_device();
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream) {
    if (bytes == 0) return cudaSuccess;
    if (!is_device_range(p, bytes)) fatal("cudaMemsetAsync(%p, %d, %zu): not inside one device allocation", p, value, bytes);
    submit(stream, "cudaMemsetAsync", [p, value, bytes]() { memset(p, value, bytes); });
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    if (refused_in_any_capture("cudaDeviceSynchronize")) return cudaErrorStreamCaptureUnsupported;
    flush_all();
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* s) {
    if (!s) return fail(cudaErrorInvalidValue);
    CUstream_st* st = new CUstream_st();
    streams.push_back(st);
    *s = st;
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) { return cudaStreamCreate(s); }

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (!s) return fail(cudaErrorInvalidResourceHandle);
    drain(stream_of(s));
    for (size_t i = 0; i < streams.size(); i++)
        if (streams[i] == s) streams.erase(streams.begin() + (long)i);
    delete (CUstream_st*)s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (capturing_stream && (s == NULL || stream_of(s) == capturing_stream) &&
        refused_in_any_capture("cudaStreamSynchronize"))
        return cudaErrorStreamCaptureUnsupported;
    if (s == NULL) flush_all();
    else drain(stream_of(s));
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    if (!s) return fail(cudaErrorStreamCaptureUnsupported); // the legacy stream cannot capture
    if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
        mode != cudaStreamCaptureModeRelaxed)
        return fail(cudaErrorInvalidValue);
    CUstream_st* st = stream_of(s);
    if (st->capture || capturing_stream) return fail(cudaErrorIllegalState);
    drain(st); // what was queued before the capture is not part of it
    st->capture = new Graph();
    st->invalidated = false;
    capturing_stream = st;
    capture_mode = mode;
    // DRNET_EMU_CAPTURE_FAILS=global|thread-local|relaxed: captures in that mode fail at their end, as
    // one would on a GPU if a library call inside it were refused in that mode (for the tests of the
    // fallback to another mode).
    const char* fails = getenv("DRNET_EMU_CAPTURE_FAILS");
    const char* name = mode == cudaStreamCaptureModeGlobal ? "global"
                       : mode == cudaStreamCaptureModeThreadLocal ? "thread-local" : "relaxed";
    if (fails && !strcmp(fails, name)) {
        fprintf(stderr, "cuda-emu: DRNET_EMU_CAPTURE_FAILS=%s: this capture will fail at its end\n", fails);
        st->invalidated = true;
    }
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
    if (!status) return fail(cudaErrorInvalidValue);
    CUstream_st* st = stream_of(s);
    *status = !st->capture ? cudaStreamCaptureStatusNone
              : st->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
    if (!graph) return fail(cudaErrorInvalidValue);
    CUstream_st* st = stream_of(s);
    if (!st->capture) return fail(cudaErrorIllegalState);
    Graph* g = st->capture;
    st->capture = NULL;
    capturing_stream = NULL;
    if (st->invalidated) {
        delete g;
        *graph = NULL;
        return fail(cudaErrorStreamCaptureInvalidated);
    }
    CUgraph_st* out = new CUgraph_st();
    out->nodes = std::move(g->nodes);
    delete g;
    *graph = out;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags) {
    (void)flags;
    if (!exec || !graph) return fail(cudaErrorInvalidValue);
    CUgraphExec_st* e = new CUgraphExec_st();
    e->nodes = ((CUgraph_st*)graph)->nodes; // the executable graph copies the nodes
    *exec = e;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete (CUgraph_st*)graph;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete (CUgraphExec_st*)exec;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    if (!exec) return fail(cudaErrorInvalidValue);
    CUgraphExec_st* e = (CUgraphExec_st*)exec;
    submit(stream, "cudaGraphLaunch", [e]() {
        for (const Work& w : e->nodes) run_work(w);
    });
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) {
    if (!e) return fail(cudaErrorInvalidValue);
    *e = new CUevent_st();
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int flags) {
    cudaError_t r = cudaEventCreate(e);
    if (r == cudaSuccess) (*e)->timing = !(flags & cudaEventDisableTiming);
    return r;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t stream) {
    if (!e) return fail(cudaErrorInvalidResourceHandle);
    e->pending = true;
    e->recorded = true;
    submit(stream, "cudaEventRecord", [e]() {
        e->pending = false;
        e->ms = now_ms();
    });
    return cudaSuccess;
}

// Not ready while work queued before the event has not run (a legal answer at any time on a GPU).
cudaError_t cudaEventQuery(cudaEvent_t e) {
    if (!e) return fail(cudaErrorInvalidResourceHandle);
    if (refused_in_capture("cudaEventQuery")) return cudaErrorStreamCaptureUnsupported;
    return e->pending ? cudaErrorNotReady : cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    if (!e) return fail(cudaErrorInvalidResourceHandle);
    if (refused_in_capture("cudaEventSynchronize")) return cudaErrorStreamCaptureUnsupported;
    if (e->pending) flush_all();
    if (e->pending) fatal("cudaEventSynchronize: an event recorded only inside a graph that was never launched");
    return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    if (!ms || !start || !end) return fail(cudaErrorInvalidValue);
    if (!start->timing || !end->timing) return fail(cudaErrorInvalidResourceHandle);
    if (!start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle);
    if (start->pending || end->pending) return fail(cudaErrorNotReady);
    *ms = (float)(end->ms - start->ms);
    return cudaSuccess;
}

} // extern "C"
