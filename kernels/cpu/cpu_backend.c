// Computes kernels/ref/ref_backend.c's table faster: the same entries, pointing at this folder's
// tuned kernels, with per-thread scratch that only grows (a steady-state step allocates nothing).
//
// The CPU backend: backend memory is host memory, kernels are plain C parallelized with OpenMP.
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../../nn/util.h"
#include "cpu_gemm.h"
#include "cpu_kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif


typedef struct Scratch {
    float* p;
    size_t count;
} Scratch;
static Scratch scratch[CPU_MAX_THREADS][SCRATCH_SLOTS];

int cpu_max_threads(void) {
#ifdef _OPENMP
    int t = omp_get_max_threads();
    return t < CPU_MAX_THREADS ? t : CPU_MAX_THREADS;
#else
    return 1;
#endif
}

int cpu_thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int cpu_in_parallel(void) {
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}

float* cpu_scratch(int slot, size_t count) {
    int t = cpu_thread_num();
    NN_ASSERT(t < CPU_MAX_THREADS && slot < SCRATCH_SLOTS, "scratch slot %d of thread %d", slot, t);
    Scratch* s = &scratch[t][slot];
    if (s->count < count) {
        free(s->p);
        s->p = NN_ALIGNED_ALLOC(64, count * sizeof(float));
        s->count = count;
    }
    return s->p;
}

int cpu_bf16;

static int requested_threads; // --threads as given (0: every core)

// bf16 runs on every CPU: without AVX512_BF16 the portable kernel computes the same sums, slowly
// (describe says which runs).
static int cpu_init(const BackendOptions* opt, char* err, size_t errlen) {
    (void)err, (void)errlen;
    cpu_bf16 = opt && opt->bf16;
#ifdef _OPENMP
    // The kernels split work over at most CPU_MAX_THREADS threads (their per-thread scratch): more
    // would only start idle threads.
    if (opt && opt->threads > 0) omp_set_num_threads(opt->threads < CPU_MAX_THREADS ? opt->threads : CPU_MAX_THREADS);
    requested_threads = opt ? opt->threads : 0;
#else
    (void)opt;
#endif
    return 0;
}

static void cpu_describe(char* buf, size_t len) {
    char model[128] = "unknown CPU";
    FILE* f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char* colon = strchr(line, ':');
                if (colon) {
                    snprintf(model, sizeof(model), "%s", colon + 2);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        }
        fclose(f);
    }
    const GemmBf16Isa* isa = gemm_bf16_isa();
    // In FP32 on a CPU with AVX512_BF16, a pointer to the faster precision (docs/cpu-performance.md:
    // about 1.6x the FP32 step on a 2-core Zen 4, the same accuracy after 10 epochs).
    int fast_bf16 = isa == &gemm_bf16_isa_avx512 || isa == &gemm_bf16_isa_amx;
    const char* bf16 = !cpu_bf16 ? (fast_bf16 ? ", FP32 (this CPU has AVX512_BF16: --precision bf16 is faster)" : "")
                       : isa == &gemm_bf16_isa_avx512
                           ? ", bf16 mixed precision (1x1 and linear GEMMs by vdpbf16ps, AVX512_BF16)"
                       : isa == &gemm_bf16_isa_amx
                           ? ", bf16 mixed precision (1x1 and linear GEMMs by tdpbf16ps on AMX tiles, DRNET_CPU_AMX=1)"
                           : ", bf16 mixed precision (portable C bf16 GEMM: this CPU or DRNET_CPU_ISA has no "
                             "AVX512_BF16, so it is slower than FP32)";
    const char* no_amx = cpu_bf16 && gemm_amx_requested() && isa != &gemm_bf16_isa_amx
                             ? " (DRNET_CPU_AMX=1 asked for AMX: this CPU, or Linux, does not offer it)"
                             : "";
    char threads_note[96]; // a thread count the machine cannot serve, said where the user reads the count
    nn_threads_note(threads_note, sizeof(threads_note), requested_threads, cpu_max_threads());
    snprintf(buf, len, "CPU: %s, %d thread%s%s%s%s", model, cpu_max_threads(), cpu_max_threads() == 1 ? "" : "s",
             threads_note, bf16, no_amx);
}

// The engine's arenas (activations, gradients, weights) are hundreds of MiB that every step streams
// through, 33 MiB per tensor on the 32x32 maps: with 4 KiB pages each pass over a tensor walks 8192
// pages, more than the TLB holds. Where Linux gives transparent huge pages only on request (its
// "madvise" setting), allocations of HUGE_MIN bytes or more start on a 2 MiB boundary and ask for
// them: 3-4 % of the bf16 step on a 2-core Zen 4 (docs/cpu-performance.md). DRNET_CPU_HUGEPAGES=0
// leaves the pages as they are, for measuring.
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)4 << 20)

static int huge_pages_wanted(void) {
    const char* env = getenv("DRNET_CPU_HUGEPAGES");
    return !(env && strcmp(env, "0") == 0);
}

static void* cpu_alloc(size_t bytes, const char* what) {
    void* p = NULL;
    int huge = bytes >= HUGE_MIN && huge_pages_wanted();
    if (posix_memalign(&p, huge ? HUGE_PAGE : 256, bytes ? bytes : 256) != 0 || !p) {
        char b[32];
        nn_fatal("out of host memory: %s needs %s", what, nn_format_bytes(b, sizeof(b), (double)bytes));
    }
    // Advice only: a kernel without transparent huge pages refuses it (EINVAL), and the memory is
    // the same either way, so its result is not an error.
    if (huge) (void)madvise(p, bytes & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
    return p;
}

static void cpu_free(void* p) { free(p); }
static void cpu_zero(void* p, size_t bytes) { memset(p, 0, bytes); }
static void cpu_copy(void* dst, const void* src, size_t bytes) { memmove(dst, src, bytes); }
static void cpu_synchronize(void) {}

// In bf16 mode the convolutions read inputs stored in bf16 and batch norms write them (nn/ops.h,
// BN_FEEDS_CONV). DRNET_BF16_ACTIVATIONS=0 keeps every activation in FP32: the same results, for
// benchmarks that measure what the halved bytes are worth.
static int cpu_bf16_activations(void) {
    const char* env = getenv("DRNET_BF16_ACTIVATIONS");
    return cpu_bf16 && !(env && strcmp(env, "0") == 0);
}

const Backend cpu_backend = {
    .name = "cpu",
    .init = cpu_init,
    .describe = cpu_describe,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .zero = cpu_zero,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .synchronize = cpu_synchronize,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward_data = cpu_conv2d_backward_data,
    .conv2d_backward_filter = cpu_conv2d_backward_filter,
    .dr_scatter = cpu_dr_scatter,
    .dr_gather = cpu_dr_gather,
    .batchnorm_forward_train = cpu_batchnorm_forward_train,
    .batchnorm_forward_eval = cpu_batchnorm_forward_eval,
    .batchnorm_backward = cpu_batchnorm_backward,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .add_forward = cpu_add_forward,
    .add_backward = cpu_add_backward,
    .avgpool_forward = cpu_avgpool_forward,
    .avgpool_backward = cpu_avgpool_backward,
    .maxpool_forward = cpu_maxpool_forward,
    .maxpool_backward = cpu_maxpool_backward,
    .linear_forward = cpu_linear_forward,
    .linear_backward = cpu_linear_backward,
    .cross_entropy_forward = cpu_cross_entropy_forward,
    .cross_entropy_backward = cpu_cross_entropy_backward,
    .metrics_accumulate = cpu_metrics_accumulate,
    .sgd_step = cpu_sgd_step,
    // g = 1 is fastest on 12 of the 13 MobileNet layer shapes here; g = 32 costs ~40% of the step
    // (docs/cpu-performance.md).
    .bf16_activations = cpu_bf16_activations,
    .default_dw_group = 1,
    .augment_batch = cpu_augment_batch,
    .sgd_step_device_lr = cpu_sgd_step_device_lr,
    .read_counters = cpu_read_counters,
};
