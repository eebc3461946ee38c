// The reference backend ("--device ref"): every op of the backend table as its defining formula in
// plain C loops (ref_conv.c, ref_norm.c, ref_ops.c), in host memory. It is what the tuned backends
// compute faster: the tests check kernels/cpu and kernels/cuda against it op by op
// (tests/op_compare.c), and it trains like any backend, only slowly. Read it first to learn what an
// op computes; read kernels/cpu to learn how to compute it fast.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../nn/util.h"
#include "ref_kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

int ref_bf16, ref_bf16_conv_results;

static int ref_init(const BackendOptions* opt, char* err, size_t errlen) {
    (void)err, (void)errlen;
    ref_bf16 = opt && opt->bf16;
    ref_bf16_conv_results = opt && opt->bf16_conv_results;
#ifdef _OPENMP
    if (opt && opt->threads > 0) omp_set_num_threads(opt->threads);
#else
    (void)opt;
#endif
    return 0;
}

static void ref_describe(char* buf, size_t len) {
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    char note[96];
    snprintf(buf, len, "reference backend (plain C loops, kernels/ref), %d thread%s%s%s", threads, threads == 1 ? "" : "s",
             nn_threads_note(note, sizeof(note), threads, threads),
             !ref_bf16                ? ""
             : ref_bf16_conv_results ? ", bf16 mixed precision (convolution and linear operands rounded to bf16, and "
                                       "convolution results, as on CUDA)"
                                     : ", bf16 mixed precision (convolution and linear operands rounded to bf16)");
}

// Backend memory is host memory: upload, download and copy are all memmove, and nothing is asynchronous.
static void* ref_alloc(size_t bytes, const char* what) {
    void* p = malloc(bytes ? bytes : 1);
    if (!p) {
        char b[32];
        nn_fatal("out of host memory: %s needs %s", what, nn_format_bytes(b, sizeof(b), (double)bytes));
    }
    return p;
}
static void ref_free(void* p) { free(p); }
static void ref_zero(void* p, size_t bytes) { memset(p, 0, bytes); }
static void ref_copy(void* dst, const void* src, size_t bytes) { memmove(dst, src, bytes); }
static void ref_synchronize(void) {}

// In bf16 mode, as the CPU backend: convolutions read inputs stored in bf16, batch norms write them.
static int ref_bf16_activations(void) { return ref_bf16; }

// What is left NULL exists only for a GPU, and every caller checks for it: profiling events (the
// profiler then reads the host clock), NVTX ranges, graph capture and its device-side learning
// rate (--cuda-graph is refused), and the allocation counters.
const Backend ref_backend = {
    .name = "ref",
    .init = ref_init,
    .describe = ref_describe,
    .alloc = ref_alloc,
    .free = ref_free,
    .zero = ref_zero,
    .upload = ref_copy,
    .download = ref_copy,
    .copy = ref_copy,
    .synchronize = ref_synchronize,
    .conv2d_forward = ref_conv2d_forward,
    .conv2d_backward_data = ref_conv2d_backward_data,
    .conv2d_backward_filter = ref_conv2d_backward_filter,
    .dr_scatter = ref_dr_scatter,
    .dr_gather = ref_dr_gather,
    .batchnorm_forward_train = ref_batchnorm_forward_train,
    .batchnorm_forward_eval = ref_batchnorm_forward_eval,
    .batchnorm_backward = ref_batchnorm_backward,
    .relu_forward = ref_relu_forward,
    .relu_backward = ref_relu_backward,
    .add_forward = ref_add_forward,
    .add_backward = ref_add_backward,
    .avgpool_forward = ref_avgpool_forward,
    .avgpool_backward = ref_avgpool_backward,
    .maxpool_forward = ref_maxpool_forward,
    .maxpool_backward = ref_maxpool_backward,
    .linear_forward = ref_linear_forward,
    .linear_backward = ref_linear_backward,
    .cross_entropy_forward = ref_cross_entropy_forward,
    .cross_entropy_backward = ref_cross_entropy_backward,
    .metrics_accumulate = ref_metrics_accumulate,
    .sgd_step = ref_sgd_step,
    // The convolution's sum does every multiply-add of the block-diagonal weight, zeros included:
    // g times a depthwise layer's work, so g = 1 is the cheapest here.
    .bf16_activations = ref_bf16_activations,
    .default_dw_group = 1,
    .augment_batch = ref_augment_batch,
};
