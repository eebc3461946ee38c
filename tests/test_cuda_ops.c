// The CUDA backend against the reference backend (kernels/ref, the oracle): every case of the shared
// op table (tests/op_cases.c, MobileNet included), the diagonalwise depthwise layer over many C and
// g, the kernels the table does not reach (metrics, SGD variants, max pooling with NaN and ties),
// memory round trips through the upload ring, the profiling events, and one whole MobileNet
// training step with TF32 off and on.
//
// Each comparison is ||cuda - ref|| / ||ref|| over a whole tensor, printed as a table
// (tests/op_compare.c, which test_gradcheck runs for the tuned CPU backend). With TF32 off both
// backends compute in FP32 and differ only in summation order: the bound is 1e-5 for every tensor
// of a single op (and the small chain). Whole networks amplify those differences layer by layer and
// get wider bounds (COMPARE_NET). Activation arenas are filled with NaN before each step, so an
// output a kernel forgets to write (or a beta = 0 that reads its destination) shows up as NaN.
//
// ReLU kinks: where a pre-activation lies within rounding of zero, the two backends may disagree on
// the ReLU mask and the gradients then legitimately differ by a whole element. A run counts such
// disagreements after the forward pass and, if there are any, retries with other random values
// (as test_gradcheck skips samples at kinks). If every attempt has some, the forward results are
// compared as they are, then the reference's forward state is copied into the CUDA engine
// (align_forward) so that both backward passes use the same masks.
//
// Exits 77 (CTest's skip) when the build has no CUDA backend or the machine has no CUDA device;
// DRNET_REQUIRE_GPU=1 turns that into a failure (on a GPU machine a skip would hide a broken
// driver). Argument --quick skips the MobileNet training steps and the bf16 part. The bf16 part:
// the rounding kernel bit for bit, then the op table and a MobileNet step with both backends in
// bf16 mixed precision (bounds at CUDA_BF16_SINGLE below).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef WITH_CUDA
#include "../kernels/cuda/cuda_stream.h" // drnet_cuda_conv_report
#endif

#include "../nn/sgd.h"
#include "../nn/util.h"
#include "op_compare.h"
#include "test_util.h"

#define ATTEMPTS 4 // random draws tried before aligning the forward state (ReLU kinks, see above)

static const Backend* be[2]; // [0] the reference, [1] CUDA

// TF32 rounds conv and GEMM operands to 10 mantissa bits: ~4e-4 relative per convolution, which
// the training-mode amplification of COMPARE_NET's comment turns into ~0.1 at the last layers.
// Measured by the same method with the second backend's convolution and linear operands rounded to
// TF32 (to nearest, and truncated), 20 draws each, largest seen: activations 0.14, logits 0.12,
// loss 8e-3, gradients 2e-2 (the backward starts from the first backend's forward state, see
// align_forward; ~2000 ReLU masks differ), running statistics 3e-2, weights 2e-2, eval logits 2e-3
// (evaluation mode does not amplify). About 4x those: a smoke test of the TF32 path (NaN, garbage,
// a lost write); the eval logits are its sharpest check.
static const Bounds TF32 = {0.5, 0.5, 4e-2, 2e-1, 1e-1, 1e-1, 2e-2};

// bf16 mixed precision on cuDNN's bf16 tensors (DRNET_CUDA_BF16_DIRS; the default is below, in main),
// CUDA against the reference in bf16 mode with BackendOptions.bf16_conv_results:
// both round the same operands with one function (nn/bf16.h; test_bf16_rounding checks the kernel bit
// for bit), and the reference also rounds each convolution's result to bf16 as cuDNN does
// (kernels/cuda/cuda_bf16.cu). What remains is summation order, as in FP32, except that an FP32
// result lying within that order's ~1e-7 of the midpoint between two bf16 numbers rounds to a
// different neighbour on each: one bf16 step, at most 2^-7 of the element. Such flips are rare (a
// few in 1e4 elements, more where cuDNN sums in FP32 on a GPU than in the emulator, which sums in
// double like the reference), but one flip in a 16-element weight gradient moves its norm by ~2e-3,
// so a single op's bound is the flips' ceiling, 2^-7 = 7.8e-3 (every element one step off). Measured
// on the emulator: every single op and the chain at most 1.2e-7 (no flip). Real bugs are larger: a
// wrong rounding is caught bit for bit by test_bf16_rounding, a lost accumulate or a stale or
// unconverted buffer is an O(1) error. The chain gets 3e-2 on gradients, where a flip passes through
// batch norm. A whole network amplifies flips like any other difference (COMPARE_NET's comment), in
// training mode by far the most: the MobileNet step measured activations 0.10 at the last layer,
// logits 7.5e-2, loss 5.4e-4, gradients 3.9e-2, running statistics 2.2e-2, weights after SGD 2.1e-3
// over all of them and 2.2e-2 for the worst single parameter or statistic after the step, eval logits 6.5e-4 (the MobileNet op case: gradients 1.1e-4); about 5x those, as for TF32, a smoke
// test of the whole bf16 path whose sharpest check is the eval logits. The first GPU run reports the
// figures a GPU gives.
#define BF16_STEP 7.8125e-3 // 2^-7: one bf16 step relative to values in [1, 2)
static const Bounds CUDA_BF16_SINGLE = {BF16_STEP, BF16_STEP, BF16_STEP, BF16_STEP, BF16_STEP, BF16_STEP, BF16_STEP};
static const Bounds CUDA_BF16_CHAIN = {BF16_STEP, BF16_STEP, BF16_STEP, 3e-2, BF16_STEP, BF16_STEP, BF16_STEP};
static const Bounds CUDA_BF16_NET = {0.5, 0.4, 3e-3, 0.2, 0.1, 0.1, 3e-3};

#ifdef WITH_CUDA
// Name the cuDNN algorithms that ran after a failing row (FFT and Winograd round differently).
static void report_algorithms(const char* where) {
    (void)where;
    drnet_cuda_conv_report(stderr);
}
#endif

// ---------------------------------------------------------------------------------------------
// Kernels outside the table

// Uploads reuse one host buffer as soon as upload returns (the contract); sizes from 4 bytes to
// more than two ring slots; then device copies and zeroing; everything read back and checked.
static void test_memory(void) {
    const Backend* g = be[1];
    const size_t sizes[] = {1, 3, 1000, 1 << 20, 5u << 20, 7, 2u << 20, 64, 3u << 20, 1};
    enum { K = sizeof(sizes) / sizeof(sizes[0]) };
    uint32_t* host = NN_MALLOC(sizeof(uint32_t) * (5u << 20));
    uint32_t* dev[K];
    for (int k = 0; k < K; k++) {
        for (size_t i = 0; i < sizes[k]; i++) host[i] = (uint32_t)k * 0x9E3779B9u + (uint32_t)i;
        dev[k] = g->alloc(sizes[k] * sizeof(uint32_t), "test buffer");
        g->upload(dev[k], host, sizes[k] * sizeof(uint32_t));
    }
    int bad = 0;
    for (int k = 0; k < K; k++) {
        g->download(host, dev[k], sizes[k] * sizeof(uint32_t));
        for (size_t i = 0; i < sizes[k]; i++) bad += host[i] != (uint32_t)k * 0x9E3779B9u + (uint32_t)i;
    }
    CHECK(bad == 0, "upload/download: %d words differ", bad);
    g->copy(dev[3] + 10, dev[4] + 100, 1000 * sizeof(uint32_t));
    g->zero(dev[3] + 2000, 500 * sizeof(uint32_t));
    g->download(host, dev[3], sizes[3] * sizeof(uint32_t));
    int badc = 0;
    for (size_t i = 0; i < sizes[3]; i++) {
        uint32_t want = i >= 10 && i < 1010 ? 4u * 0x9E3779B9u + (uint32_t)(i - 10 + 100)
                        : i >= 2000 && i < 2500 ? 0u
                                                : 3u * 0x9E3779B9u + (uint32_t)i;
        badc += host[i] != want;
    }
    CHECK(badc == 0, "copy/zero: %d words differ", badc);
    g->synchronize();
    for (int k = 0; k < K; k++) g->free(dev[k]);
    free(host);
    printf("  %-34s %-30s %9s  %9s  %s\n", "memory", "upload ring, copy, zero", "", "exact", bad || badc ? "FAIL" : "ok");
}

// The profiler's events: two timestamps around some device work, and an NVTX range.
static void test_events(void) {
    const Backend* g = be[1];
    size_t bytes = (size_t)64 << 20;
    void* buf = g->alloc(bytes, "test buffer");
    void *a = g->event_create(), *b = g->event_create();
    g->event_record(a);
    g->zero(buf, bytes);
    g->event_record(b);
    float ms = g->event_elapsed_ms(a, b);
    if (g->range_push) g->range_push("test_cuda_ops"), g->range_pop();
    g->event_destroy(a), g->event_destroy(b);
    g->free(buf);
    CHECK(ms >= 0.0f && ms < 1e4f, "events: clearing 64 MiB took %g ms", (double)ms);
    printf("  %-34s %-30s %9s  %9.3f  %s\n", "events", "64 MiB memset (ms)", "", (double)ms,
           ms >= 0.0f && ms < 1e4f ? "ok" : "FAIL");
}

#ifdef WITH_CUDA
#include "../nn/bf16.h"
// The bf16 conversion kernel bit for bit against nn/bf16.h's bf16_operand on the host: ties to even
// both ways, values that round up into the next binade, denormals (flushed), the largest floats
// (round to Inf), Inf, NaN (stays NaN), zeros, and random values.
static void test_bf16_rounding(void) {
    enum { N = 4096 };
    static float x[N];
    uint32_t special[] = {0x3F808000u, 0x3F818000u, 0x3F808001u, 0x3F817FFFu, 0x3FFFFFFFu, 0x3F7FFF80u,
                          0x00000001u, 0x807FFFFFu, 0x00800000u, 0x007FFFFFu, 0x7F7FFFFFu, 0xFF7FFFFFu,
                          0x7F7F8000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x7F800001u, 0xFFC00001u,
                          0x00000000u, 0x80000000u, 0x00FF8000u, 0x00808000u};
    const int S = (int)(sizeof(special) / sizeof(special[0]));
    Rng rng = rng_derive(77, 1, 2);
    for (int i = 0; i < N; i++) {
        uint32_t u = i < S ? special[i] : (uint32_t)rng_next(&rng);
        memcpy(&x[i], &u, sizeof(u));
    }
    const Backend* g = be[1];
    float* xd = to_device(g, x, sizeof(x));
    uint16_t* hd = g->alloc(N * sizeof(uint16_t), "test buffer");
    drnet_cuda_bf16_round(hd, xd, N);
    uint16_t h[N];
    g->download(h, hd, sizeof(h));
    g->free(xd), g->free(hd);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        uint16_t want = bf16_operand(x[i]);
        int nan_both = (want & 0x7F80u) == 0x7F80u && (want & 0x7Fu) && (h[i] & 0x7F80u) == 0x7F80u && (h[i] & 0x7Fu);
        if (h[i] != want && !nan_both) {
            if (bad < 5) fprintf(stderr, "  bf16 rounding of %a (0x%08x): kernel 0x%04x, nn/bf16.h 0x%04x\n", (double)x[i],
                                 (unsigned)(i < S ? special[i] : 0), h[i], want);
            bad++;
        }
    }
    CHECK(bad == 0, "bf16 rounding kernel: %d of %d values differ from nn/bf16.h", bad, N);
    printf("  %-34s %-30s %9d  %9s  %s\n", "bf16 rounding kernel", "vs nn/bf16.h bf16_operand", N, "exact", bad ? "FAIL" : "ok");
}
#endif

// ---------------------------------------------------------------------------------------------
// One MobileNet training step: width 0.25, batch 8, natural-looking images, SGD as in the recipe.

#define MB_BATCH 8

// Smooth colour fields with some texture and noise, normalized with the CIFAR-10 statistics.
static void make_images(float* x, uint64_t seed) {
    static const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, sd[3] = {0.2470f, 0.2435f, 0.2616f};
    Rng rng = rng_derive(seed, 31, 0);
    for (int n = 0; n < MB_BATCH; n++) {
        float fx = 0.1f + 0.4f * rng_uniform(&rng), fy = 0.1f + 0.4f * rng_uniform(&rng);
        float px = 6.3f * rng_uniform(&rng), py = 6.3f * rng_uniform(&rng);
        for (int c = 0; c < 3; c++) {
            float base = 0.2f + 0.6f * rng_uniform(&rng), amp = 0.1f + 0.3f * rng_uniform(&rng);
            for (int i = 0; i < 32; i++)
                for (int j = 0; j < 32; j++) {
                    float v = base + amp * sinf(fx * (float)j + px) * cosf(fy * (float)i + py) +
                              0.08f * (rng_uniform(&rng) - 0.5f);
                    v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                    x[(((size_t)n * 3 + c) * 32 + i) * 32 + j] = (v - mean[c]) / sd[c];
                }
        }
    }
}

static Tensor* mobilenet_loss(Engine* e, const MobileNet* net, const float* images, const int* labels,
                              Tensor** logits) {
    Tensor* x = engine_input(e, MB_BATCH, 3, 32, 32, images);
    int* lab = engine_labels(e, MB_BATCH, labels);
    *logits = mobilenet_forward(e, net, x);
    return cross_entropy(e, *logits, lab, "loss");
}

// PyTorch's BN init (gamma 1, beta 0) makes every BN+ReLU output scale-free for the next BN, so
// d loss / d gamma is ~0 there: a sum of cancelling terms whose relative error means nothing.
// Random affine parameters (the same on both engines) make every gradient a well-conditioned number.
static void randomize_bn_affine(Engine* e, uint64_t seed) {
    for (int i = 0; i < e->num_params; i++) {
        Param* p = &e->params[i];
        if (p->is_buffer || p->init == INIT_UNIFORM) continue; // leaves BN gamma (ones) and beta (zeros)
        Rng rng = rng_derive(seed, 51, (uint64_t)i);
        float* host = NN_MALLOC(p->numel * sizeof(float));
        for (size_t j = 0; j < p->numel; j++)
            host[j] = p->init == INIT_ONES ? 0.5f + rng_uniform(&rng) : rng_uniform(&rng) - 0.5f;
        engine_write(e, &p->t, host);
        free(host);
    }
}

static void mobilenet_step(const char* label, const Bounds* bd, int retry_on_kinks) {
    MobileNet* net = NN_CALLOC(2, sizeof(MobileNet));
    float* images = NN_MALLOC(sizeof(float) * MB_BATCH * 3 * 32 * 32);
    int labels[MB_BATCH];
    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        uint64_t seed = 2024 + (uint64_t)attempt;
        make_images(images, seed);
        Rng rng = rng_derive(seed, 41, 0);
        for (int i = 0; i < MB_BATCH; i++) labels[i] = (int)rng_below(&rng, 10);
        Engine* e[2];
        Tensor *logits[2], *loss[2];
        for (int b = 0; b < 2; b++) {
            e[b] = engine_create(be[b]);
            e[b]->fp32_activations = !compare_bf16_activations(); // (CUDA has none: arenas alike)
            mobilenet_init(&net[b], e[b], 0.25f, 32, 10);
            engine_alloc_params(e[b]);
            engine_init_params(e[b], seed);
            randomize_bn_affine(e[b], seed);
            engine_plan_begin(e[b]);
            mobilenet_loss(e[b], &net[b], NULL, NULL, &logits[b]);
            engine_plan_end(e[b]);
            poison_activations(e[b]);
            engine_begin(e[b], 1);
            loss[b] = mobilenet_loss(e[b], &net[b], images, labels, &logits[b]);
        }
        long flips = relu_disagreements(e);
        if (flips && retry_on_kinks && attempt + 1 < ATTEMPTS) {
            printf("  %-34s %ld ReLU output(s) on a kink: retrying with other random values\n", label, flips);
            for (int b = 0; b < 2; b++) engine_destroy(e[b]);
            continue;
        }
        if (flips)
            printf("  %-34s %ld ReLU output(s) differ in sign%s: forward compared as is, backward from "
                   "the reference's forward state\n", label, flips, retry_on_kinks ? " in every attempt" : " (TF32)");

        // Every activation in tape order: where the backends start to diverge, if they do.
        compare_quiet_ok = 0;
        for (int i = 0; i < e[0]->tape_len; i++) {
            Tensor* t[2] = {e[0]->tape[i].out, e[1]->tape[i].out};
            char name[96];
            snprintf(name, sizeof(name), "%s (%s)", e[0]->tape[i].name, e[0]->tape[i].op->kind);
            compare_data(e, t, label, name, bd->act);
        }
        compare_data(e, logits, label, "logits", bd->logits);
        compare_data(e, loss, label, "loss", bd->loss);
        compare_params(e, label, 0, 1, bd->stats); // running statistics
        if (flips) align_forward(e);

        for (int b = 0; b < 2; b++) {
            engine_zero_grad(e[b]);
            engine_backward(e[b], loss[b]);
        }
        compare_params(e, label, 1, 0, bd->grad);
        const float* g[2] = {e[0]->param_grad, e[1]->param_grad};
        compare_arrays(e, g, e[0]->num_param_floats, label, "all gradients", bd->grad);

        SGD opt = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1};
        for (int b = 0; b < 2; b++) sgd_step(e[b], &opt);
        const float* w[2] = {e[0]->param_data, e[1]->param_data};
        compare_arrays(e, w, e[0]->num_param_floats, label, "all weights after SGD", bd->weights);
        compare_quiet_ok = 1; // per-parameter weights: only failures are printed
        compare_params(e, label, 0, 0, bd->weights);
        compare_quiet_ok = 0;

        // Evaluation with the moved running statistics and weights.
        for (int b = 0; b < 2; b++) {
            poison_activations(e[b]);
            engine_begin(e[b], 0);
            mobilenet_loss(e[b], &net[b], images, labels, &logits[b]);
        }
        compare_data(e, logits, label, "logits (eval, after SGD)", bd->eval);
        for (int b = 0; b < 2; b++) engine_destroy(e[b]);
        break;
    }
    free(images);
    free(net);
}

// ---------------------------------------------------------------------------------------------

static int skip(const char* why) { return test_gpu_unavailable("test_cuda_ops", why); }

int main(int argc, char** argv) {
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    char why[256];
    if (test_cuda_missing(why, sizeof(why))) return skip(why);
    char err[512], desc[256];
    BackendOptions opt = {0};
    opt.tf32 = 0;
    // Deterministic cuDNN algorithms (chosen by heuristics, no atomics): a rerun repeats exactly, and
    // a failing row is reproducible. The TF32 MobileNet step below uses the timed search instead,
    // so the default path of ./train is exercised too.
    opt.deterministic = 1;
    be[0] = backend_open("ref", &opt, err, sizeof(err));
    if (!be[0]) nn_fatal("%s", err);
    be[1] = backend_open("cuda", &opt, err, sizeof(err));
    if (!be[1]) {
        fprintf(stderr, "FAIL test_cuda_ops: a CUDA device is present but the backend did not start: %s\n", err);
        return 1;
    }
    compare_backends(be[0], be[1]);
#ifdef WITH_CUDA
    compare_on_failure = report_algorithms;
#endif
    be[1]->describe(desc, sizeof(desc));
    printf("%s\n", desc);

    compare_header("Kernels outside the op table (TF32 off)");
    test_memory();
    test_events();
    test_maxpool_special();
    test_relu_overwrite();
    test_metrics();
    test_sgd_variants();

    compare_header("Op table, CUDA vs the reference, TF32 off: output, running stats, gradients, 2nd backward, "
                   "eval (bound 1e-5; the MobileNet case: COMPARE_NET)");
    for (int i = 0; i < NUM_OP_CASES; i++) compare_case(&OP_CASES[i]);

    compare_header("Diagonalwise depthwise layers, TF32 off (bound 1e-5)");
    compare_depthwise_sweep();

    if (!quick) {
        compare_header("MobileNet width 0.25, batch 8: one training step, TF32 off (NET bounds, see the source)");
        mobilenet_step("mobilenet step, TF32 off", &COMPARE_NET, 1);

        // TF32: see the TF32 bounds above; the table shows the actual numbers.
        opt.tf32 = 1;
        opt.deterministic = 0;
        if (!backend_open("cuda", &opt, err, sizeof(err))) nn_fatal("%s", err);
        be[1]->describe(desc, sizeof(desc));
        compare_header("MobileNet width 0.25, batch 8: one training step, TF32 on (loose bounds, see the source)");
        printf("%s\n", desc);
        mobilenet_step("mobilenet step, TF32 on", &TF32, 0);
    }
    test_check_algo_filter();

    if (quick) return test_finish("test_cuda_ops");

    // bf16 mixed precision: both backends reopened in bf16 mode (deterministic cuDNN algorithms).
    // By default the CUDA convolutions multiply bf16-valued FP32 copies in cuDNN's FP32 kernels, the
    // CPU's arithmetic, so the bounds are the CPU's against the reference (op_compare.c:
    // COMPARE_SINGLE, COMPARE_BF16_CHAIN, COMPARE_BF16_NET for the op table), where a missing or wrong
    // rounding (2^-9 of a value and more) fails the 1e-5 of a single op. With DRNET_CUDA_BF16_DIRS naming a direction
    // (test_cuda_ops_bf16_tensors) cuDNN runs on bf16 tensors and rounds its results: the reference
    // rounds them too (bf16_conv_results) and the CUDA_BF16_* bounds above apply.
    const char* dirs = getenv("DRNET_CUDA_BF16_DIRS");
    int tensors = dirs && *dirs && strcmp(dirs, "none") != 0;
    opt.tf32 = 0;
    opt.deterministic = 1;
    opt.bf16 = 1;
    opt.bf16_conv_results = tensors;
    if (!(be[0] = backend_open("ref", &opt, err, sizeof(err)))) nn_fatal("%s", err);
    if (!(be[1] = backend_open("cuda", &opt, err, sizeof(err)))) nn_fatal("%s", err);
    compare_backends(be[0], be[1]);
    compare_bf16 = 1;
    if (tensors)
        compare_bf16_single = &CUDA_BF16_SINGLE, compare_bf16_chain = &CUDA_BF16_CHAIN, compare_bf16_net = &CUDA_BF16_NET;
    be[1]->describe(desc, sizeof(desc));
    compare_header(tensors ? "bf16 mixed precision on cuDNN bf16 tensors, CUDA vs the reference in bf16 (bounds: CUDA_BF16_* above)"
                           : "bf16 mixed precision, CUDA vs the reference in bf16 (bounds: the CPU's, op_compare.c)");
    printf("%s\n", desc);
#ifdef WITH_CUDA
    test_bf16_rounding();
#endif
    for (int i = 0; i < NUM_OP_CASES; i++) compare_case(&OP_CASES[i]);
    // The MobileNet step (width 0.25, batch 8) amplifies flips as on bf16 tensors: CUDA_BF16_NET either way.
    mobilenet_step("mobilenet step, bf16", &CUDA_BF16_NET, 1);
    return test_finish("test_cuda_ops");
}
