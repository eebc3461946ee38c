// Activations stored in bf16 (bf16 mixed precision, BN_FEEDS_CONV and BN_AFTER_CONV in nn/ops.h): a
// batch norm whose output only convolutions read writes it as bf16 values, one whose input's gradient
// only a convolution's backward reads writes that gradient so, and the convolutions read them. Since
// the convolutions round those tensors to bf16 anyway, storing them rounded must change no result. Checked
// bit for bit, on the tuned CPU backend (AVX-512 kernels and the portable ones) and on the reference:
//   1. batch norm, forward (training and evaluation): y stored in bf16 = bf16_operand(y in FP32), also
//      for every kind of float (random bits: NaNs, infinities, denormals, the edges of the flush);
//      backward with the ReLU mask read from the bf16 y = backward from the FP32 y (all outputs);
//      backward with dx stored in bf16 = bf16_operand(dx in FP32);
//   2. convolution forward, data and filter gradients with x and dy stored in bf16 = the same passes
//      with them stored as the same values in FP32: the 1x1 GEMM path on 32x32, 4x4, 2x4, 2x2 and 1x2
//      maps (the small ones' filter gradients pack bf16 pixels run by image run, FP32 ones row by row),
//      the k x k paths (the stem's 3x3, depthwise by DR with g = 1 and 4 at stride 1 and 2, on small
//      and large maps);
//   3. a whole training step of MobileNet and MobileNetV2: with bf16 storage and with every activation
//      in FP32 (Engine.fp32_activations), the same loss, logits and every parameter gradient, and
//      the storage really used (the arena is smaller, and so are the bytes the profiler counts).
// A path that reads a bf16 tensor as floats, rounds it again differently or masks differently shows
// as a bit difference. On the CPU the batch-norm checks run twice where the CPU has AVX512_BF16: with
// bf16 outputs stored by its conversion (what runs there) and by the integer rounding (what runs
// elsewhere).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/cpu_gemm.h"
#include "../kernels/cpu/cpu_kernels.h"
#include "../models/model.h"
#include "../nn/backend.h"
#include "../nn/bf16.h"
#include "../nn/ops.h"
#include "../nn/profile.h"
#include "../nn/util.h"
#include "test_util.h"

static const Backend* open_backend(const char* name) {
    char err[256];
    BackendOptions opt = {.threads = 2, .bf16 = 1};
    const Backend* be = backend_open(name, &opt, err, sizeof(err));
    if (!be) nn_fatal("%s", err);
    return be;
}

// Uniform in [-1, 1) (a batch norm's input, a convolution's operands, a gradient).
static float* random_floats(size_t n, uint64_t seed) { return uniform_floats(n, 51, 52, seed); }

static size_t differ(const float* a, const float* b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += float_bits(a[i]) != float_bits(b[i]);
    return d;
}

static void report(const char* what, const char* be, size_t bad, size_t n) {
    CHECK(bad == 0, "%s (%s): %zu of %zu values differ with bf16 storage", what, be, bad, n);
    printf("  %-52s %-4s %8zu values: %s\n", what, be, n, bad ? "DIFFER" : "identical");
}

// --- 1. batch norm ---------------------------------------------------------------------------------
static void check_batchnorm(const Backend* be, const char* label, int n, int c, int hw, int relu) {
    size_t total = (size_t)n * c * hw;
    float *x = random_floats(total, 1), *dy = random_floats(total, 2), *p = random_floats(4 * (size_t)c, 3);
    float *gamma = p, *beta = p + c, *rm = p + 2 * (size_t)c, *rv = p + 3 * (size_t)c;
    for (int i = 0; i < c; i++) rv[i] = 0.5f + rv[i] * rv[i];
    float* y32 = NN_MALLOC(total * sizeof(float));
    uint16_t* y16 = NN_MALLOC(total * sizeof(uint16_t));
    float *stats = NN_CALLOC(12 * (size_t)c, sizeof(float)), *want = NN_MALLOC(total * sizeof(float));
    float *mean = stats, *invstd = stats + c, *run = stats + 2 * c; // run: two copies of (mean, var)
    char what[96];

    memcpy(run, rm, (size_t)c * sizeof(float)), memcpy(run + c, rv, (size_t)c * sizeof(float));
    memcpy(run + 2 * c, rm, (size_t)c * sizeof(float)), memcpy(run + 3 * c, rv, (size_t)c * sizeof(float));
    be->batchnorm_forward_train(y32, mean, invstd, run, run + c, x, gamma, beta, n, c, hw, 0.1f, 1e-5f, relu, 0);
    be->batchnorm_forward_train((float*)(void*)y16, mean, invstd, run + 2 * c, run + 3 * c, x, gamma, beta, n, c, hw,
                                0.1f, 1e-5f, relu, 1);
    size_t bad = 0;
    for (size_t i = 0; i < total; i++) bad += y16[i] != bf16_operand(y32[i]);
    snprintf(what, sizeof(what), "%s forward (training)", label);
    report(what, be->name, bad, total);

    be->batchnorm_forward_eval(y32, x, gamma, beta, rm, rv, n, c, hw, 1e-5f, relu, 0);
    be->batchnorm_forward_eval((float*)(void*)y16, x, gamma, beta, rm, rv, n, c, hw, 1e-5f, relu, 1);
    bad = 0;
    for (size_t i = 0; i < total; i++) bad += y16[i] != bf16_operand(y32[i]);
    snprintf(what, sizeof(what), "%s forward (evaluation)", label);
    report(what, be->name, bad, total);

    // Backward: the mask from the bf16 y against the mask from the same values as floats.
    float* yw = NN_MALLOC(total * sizeof(float));
    for (size_t i = 0; i < total; i++) yw[i] = bf16_float(y16[i]);
    float *dx32 = NN_MALLOC(total * sizeof(float)), *dx16 = NN_MALLOC(total * sizeof(float));
    float *g32 = NN_CALLOC(2 * (size_t)c, sizeof(float)), *g16 = NN_CALLOC(2 * (size_t)c, sizeof(float));
    be->batchnorm_backward(dx32, g32, g32 + c, dy, x, yw, mean, invstd, gamma, beta, n, c, hw, relu, 0, 0, 0);
    be->batchnorm_backward(dx16, g16, g16 + c, dy, x, (float*)(void*)y16, mean, invstd, gamma, beta, n, c, hw, relu, 1,
                           0, 0);
    snprintf(what, sizeof(what), "%s backward (dx, dgamma, dbeta)", label);
    report(what, be->name, differ(dx32, dx16, total) + differ(g32, g16, 2 * (size_t)c), total + 2 * (size_t)c);
    // dx stored in bf16: bf16_operand of the FP32 dx.
    uint16_t* dxh = NN_MALLOC(total * sizeof(uint16_t));
    memset(g16, 0, 2 * (size_t)c * sizeof(float));
    be->batchnorm_backward((float*)(void*)dxh, g16, g16 + c, dy, x, (float*)(void*)y16, mean, invstd, gamma, beta, n, c,
                           hw, relu, 1, 1, 0);
    bad = differ(g32, g16, 2 * (size_t)c);
    for (size_t i = 0; i < total; i++) bad += dxh[i] != bf16_operand(dx32[i]);
    snprintf(what, sizeof(what), "%s backward, dx stored in bf16", label);
    report(what, be->name, bad, total + 2 * (size_t)c);
    free(dxh);
    free(x), free(dy), free(p), free(y32), free(y16), free(stats), free(want), free(yw), free(dx32), free(dx16);
    free(g32), free(g16);
}

// --- 1a. the bf16 store on every kind of float ---------------------------------------------------------
// Evaluation mode with gamma = 1, beta = 0, mean = 0, var = 1, eps = 0 makes y = x * 1 + 0, so y spans
// whatever x holds: random bit patterns (a quarter of them NaN, infinity or denormal once the
// exponents are skewed toward the ends below) and the values where rounding and flushing meet:
// +-0x007F8000..0x007FFFFF (denormals that round up to 2^-126), the largest denormal below them, the
// least normal, a tie each way, the largest finite float (rounds to infinity), NaNs with their payload
// only in the low half. Each stored bf16 y must be bf16_operand of the FP32 y.
static void check_bf16_store_edges(const Backend* be, const char* label, int n, int c, int hw) {
    size_t total = (size_t)n * c * hw;
    float *x = NN_MALLOC(total * sizeof(float)), *y32 = NN_MALLOC(total * sizeof(float));
    uint16_t* y16 = NN_MALLOC(total * sizeof(uint16_t));
    float *gamma = NN_MALLOC(4 * (size_t)c * sizeof(float)), *beta = gamma + c, *rm = gamma + 2 * c, *rv = gamma + 3 * c;
    for (int i = 0; i < c; i++) gamma[i] = 1.0f, beta[i] = 0.0f, rm[i] = 0.0f, rv[i] = 1.0f;
    static const uint32_t edges[] = {0x007F8000u, 0x007FFFFFu, 0x807F8000u, 0x807FFFFFu, 0x007F7FFFu, 0x807F7FFFu,
                                     0x00800000u, 0x00000001u, 0x3F808000u, 0x3F818000u, 0xBF808000u, 0x7F7FFFFFu,
                                     0xFF7FFFFFu, 0x7F800001u, 0xFF800001u, 0x7F800000u, 0xFF800000u, 0x80000000u};
    Rng rng = rng_derive(53, 54, 1);
    for (size_t i = 0; i < total; i++) {
        uint32_t u = (uint32_t)rng_next(&rng);
        if (i % 4 == 1) u = (u & 0x807FFFFFu) | ((u >> 30) & 1u ? 0x7F800000u : 0u); // exponent all ones or zero
        if (i % 8 == 3) u = edges[(i / 8) % (sizeof(edges) / sizeof(edges[0]))];
        memcpy(&x[i], &u, sizeof(u));
    }
    be->batchnorm_forward_eval(y32, x, gamma, beta, rm, rv, n, c, hw, 0.0f, 0, 0);
    be->batchnorm_forward_eval((float*)(void*)y16, x, gamma, beta, rm, rv, n, c, hw, 0.0f, 0, 1);
    size_t bad = 0;
    for (size_t i = 0; i < total; i++) bad += y16[i] != bf16_operand(y32[i]);
    char what[96];
    snprintf(what, sizeof(what), "%s, y = x of random bits and edges", label);
    report(what, be->name, bad, total);
    free(x), free(y32), free(y16), free(gamma);
}

// --- 1b. the ReLU mask at its edges -----------------------------------------------------------------
// A backend may recompute the backward's ReLU mask from x and the forward's coefficients instead of
// reading y (the CPU does); it must be y > 0 exactly, for y stored in FP32 and in bf16. Counted: with
// dy = 1, dbeta is the number of elements the mask lets through, which must equal the number of
// stored y > 0, channel by channel. The inputs aim at the edges: each channel holds m - d, m, m, m + d
// repeated, so its mean is m exactly and every third value sits at x = mean, where beta = 0 makes
// y = x * a + k (a = gamma * invstd, k = -mean * a) a rounding residual whose sign depends on whether
// it was computed with an FMA (so forward and backward must compute it alike); with `tiny`, gamma
// spans 2^-127..2^-126, so y = +-d * a lands on both sides of the least value a bf16 y keeps
// (2^-126 - 2^-134; FP32 keeps them all).
static void check_relu_mask(const Backend* be, const char* label, int n, int c, int hw, int tiny) {
    size_t total = (size_t)n * c * hw, per = (size_t)n * hw;
    NN_ASSERT(per % 4 == 0, "the pattern needs a multiple of 4 values per channel");
    float *x = NN_MALLOC(total * sizeof(float)), *dy = NN_MALLOC(total * sizeof(float));
    float *p = NN_CALLOC(8 * (size_t)c, sizeof(float)), *y = NN_MALLOC(total * sizeof(float));
    float *gamma = p, *beta = p + c, *mean = p + 2 * c, *invstd = p + 3 * c, *run = p + 4 * c, *dgb = p + 6 * c;
    const float step[4] = {-1, 0, 0, 1};
    for (int ch = 0; ch < c; ch++) {
        float m = 0.75f + 0.3125f * ch, d = 0.5f + 0.125f * (ch % 3);
        gamma[ch] = tiny ? ldexpf(1.0f + (float)ch / c, -127) : 0.3f + 0.37f * ch;
        for (size_t e = 0; e < per; e++) {
            size_t at = (e / hw * c + ch) * hw + e % hw;
            x[at] = m + d * step[e % 4];
            dy[at] = 1.0f;
        }
    }
    // And a NaN (the last channel's first value: its statistics and every y become NaN, y > 0 nowhere).
    if (!tiny) x[(size_t)(c - 1) * hw] = NAN;
    for (int yb = 0; yb < 2; yb++) {
        for (int ch = 0; ch < c; ch++) run[ch] = 0.0f, run[c + ch] = 1.0f, dgb[ch] = dgb[c + ch] = 0.0f;
        be->batchnorm_forward_train(y, mean, invstd, run, run + c, x, gamma, beta, n, c, hw, 0.1f, 1e-5f, 1, yb);
        be->batchnorm_backward(NULL, dgb, dgb + c, dy, x, y, mean, invstd, gamma, beta, n, c, hw, 1, yb, 0, 0);
        size_t bad = 0, kept = 0;
        for (int ch = 0; ch < c; ch++) {
            size_t count = 0;
            for (size_t e = 0; e < per; e++) {
                size_t at = (e / hw * c + ch) * hw + e % hw;
                count += (yb ? bf16_float(((const uint16_t*)(const void*)y)[at]) : y[at]) > 0.0f;
            }
            bad += (double)dgb[c + ch] != (double)count;
            kept += count;
        }
        char what[96];
        snprintf(what, sizeof(what), "%s, y in %s: mask = y > 0 (%zu kept)", label, yb ? "bf16" : "FP32", kept);
        CHECK(bad == 0, "%s (%s): %zu of %d channels count a mask other than y > 0", what, be->name, bad, c);
        printf("  %-52s %-4s %8d channels: %s\n", what, be->name, c, bad ? "DIFFER" : "identical");
    }
    // y edited after the forward (what test_parity does to adopt PyTorch's decisions on ties): without
    // beta the mask is read from y as it is now. Every element flipped: 0 <-> 1e-30 (FP32 y).
    be->batchnorm_forward_train(y, mean, invstd, run, run + c, x, gamma, beta, n, c, hw, 0.1f, 1e-5f, 1, 0);
    for (size_t i = 0; i < total; i++) y[i] = y[i] > 0.0f ? 0.0f : 1e-30f;
    for (int ch = 0; ch < c; ch++) dgb[c + ch] = 0.0f;
    be->batchnorm_backward(NULL, dgb, dgb + c, dy, x, y, mean, invstd, gamma, NULL, n, c, hw, 1, 0, 0, 0);
    size_t bad = 0;
    for (int ch = 0; ch < c; ch++) {
        size_t count = 0;
        for (size_t e = 0; e < per; e++) count += y[(e / hw * c + ch) * hw + e % hw] > 0.0f;
        bad += (double)dgb[c + ch] != (double)count;
    }
    char what[96];
    snprintf(what, sizeof(what), "%s, y edited: mask read from y", label);
    CHECK(bad == 0, "%s (%s): %zu of %d channels count a mask other than the edited y > 0", what, be->name, bad, c);
    printf("  %-52s %-4s %8d channels: %s\n", what, be->name, c, bad ? "DIFFER" : "identical");
    free(x), free(dy), free(p), free(y);
}

// --- 2. convolutions ---------------------------------------------------------------------------------
static void check_conv(const Backend* be, const char* label, ConvShape s) {
    size_t nx = (size_t)s.n * s.c_in * s.h * s.w, ny = (size_t)s.n * s.c_out * s.h_out * s.w_out;
    size_t nw = (size_t)s.c_out * (s.c_in / s.groups) * s.k * s.k;
    float *x = random_floats(nx, 11), *w = random_floats(nw, 12), *dy = random_floats(ny, 13);
    uint16_t* x16 = NN_MALLOC(nx * sizeof(uint16_t));
    for (size_t i = 0; i < nx; i++) x16[i] = bf16_operand(x[i]), x[i] = bf16_float(x16[i]);
    float *y32 = NN_MALLOC(ny * sizeof(float)), *y16 = NN_MALLOC(ny * sizeof(float));
    float *dw32 = NN_MALLOC(nw * sizeof(float)), *dw16 = NN_MALLOC(nw * sizeof(float));
    float *dx32 = NN_MALLOC(nx * sizeof(float)), *dx16 = NN_MALLOC(nx * sizeof(float));
    uint16_t* dy16 = NN_MALLOC(ny * sizeof(uint16_t)); // dy stored in bf16; dy the same values as floats
    for (size_t i = 0; i < ny; i++) dy16[i] = bf16_operand(dy[i]), dy[i] = bf16_float(dy16[i]);
    ConvShape s16 = s;
    s16.x_bf16 = 1, s16.dy_bf16 = 1;
    const float *xh = (const float*)(const void*)x16, *dyh = (const float*)(const void*)dy16;
    be->conv2d_forward(y32, x, w, &s);
    be->conv2d_forward(y16, xh, w, &s16);
    be->conv2d_backward_filter(dw32, dy, x, &s, 0);
    be->conv2d_backward_filter(dw16, dyh, xh, &s16, 0);
    be->conv2d_backward_data(dx32, dy, w, &s, 0);
    be->conv2d_backward_data(dx16, dyh, w, &s16, 0);
    char what[96];
    snprintf(what, sizeof(what), "%s forward", label);
    report(what, be->name, differ(y32, y16, ny), ny);
    snprintf(what, sizeof(what), "%s filter gradient", label);
    report(what, be->name, differ(dw32, dw16, nw), nw);
    snprintf(what, sizeof(what), "%s data gradient", label);
    report(what, be->name, differ(dx32, dx16, nx), nx);
    free(x), free(w), free(dy), free(x16), free(dy16), free(y32), free(y16), free(dw32), free(dw16), free(dx32), free(dx16);
}

static void check_batchnorms(const Backend* be) {
    check_bf16_store_edges(be, "bn 16 ch, 8x8", 3, 16, 64);
    check_bf16_store_edges(be, "bn 24 ch, 2x2 (flat)", 5, 24, 4);
    check_bf16_store_edges(be, "bn 8 ch, 7x7 (tails)", 2, 8, 49);
    check_batchnorm(be, "bn+relu 16 ch, 8x8", 3, 16, 64, 1);
    check_batchnorm(be, "bn+relu 24 ch, 2x2 (flat)", 5, 24, 4, 1);
    check_batchnorm(be, "bn 8 ch, 7x7 (tails)", 2, 8, 49, 0);
    check_relu_mask(be, "bn+relu edges 8x8", 4, 6, 64, 0);
    check_relu_mask(be, "bn+relu edges 7x7 (tails)", 4, 6, 49, 0);
    check_relu_mask(be, "bn+relu edges 2x2 (flat, tail)", 4, 5, 4, 0);
    check_relu_mask(be, "bn+relu edges 8x8, tiny gamma", 4, 6, 64, 1);
    check_relu_mask(be, "bn+relu edges 2x2 (flat), tiny gamma", 4, 5, 4, 1);
}

// The CPU's batch norm stores bf16 by AVX512_BF16's conversion where the CPU has it, else by integer
// arithmetic (cpu_kernels.h): both, where both can run.
static void check_cpu_batchnorms(const Backend* be) {
    for (int cvt = 0; cvt < 2; cvt++) {
        if (cvt && !gemm_cpu_has_avx512bf16()) {
            printf("  (batch norm's bf16 store by vcvtneps2bf16: not on this CPU)\n");
            continue;
        }
        printf("  batch norm, bf16 stored by %s\n", cvt ? "vcvtneps2bf16" : "integer rounding");
        cpu_norm_set_rounding(cvt);
        check_batchnorms(be);
    }
    cpu_norm_set_rounding(-1);
}

static void check_kernels(const Backend* be, int ref) {
    if (ref) check_batchnorms(be);
    else check_cpu_batchnorms(be);
    int n = ref ? 2 : 4;
    //                                                  n c_in h   w  c_out k  s  p  groups h_out w_out x_bf16 dy_bf16
    check_conv(be, "1x1 32->48, 32x32", (ConvShape){n, 32, 32, 32, 48, 1, 1, 0, 1, 32, 32, 0, 0});
    check_conv(be, "1x1 64->40, 4x4", (ConvShape){n, 64, 4, 4, 40, 1, 1, 0, 1, 4, 4, 0, 0});
    check_conv(be, "1x1 37->20, 2x2 (odd depth)", (ConvShape){n, 37, 2, 2, 20, 1, 1, 0, 1, 2, 2, 0, 0});
    check_conv(be, "1x1 24->16, 2x4 (8-pixel runs)", (ConvShape){n, 24, 2, 4, 16, 1, 1, 0, 1, 2, 4, 0, 0});
    check_conv(be, "1x1 16->8, 1x2 (2-pixel runs)", (ConvShape){n, 16, 1, 2, 8, 1, 1, 0, 1, 1, 2, 0, 0});
    check_conv(be, "conv 3x3 s1 p1 3->8, 8x8", (ConvShape){n, 3, 8, 8, 8, 3, 1, 1, 1, 8, 8, 0, 0});
    check_conv(be, "DR g=1 3x3 s1 p1 16 ch, 32x32", (ConvShape){n, 16, 32, 32, 16, 3, 1, 1, 16, 32, 32, 0, 0});
    check_conv(be, "DR g=1 3x3 s1 p1 32 ch, 4x4", (ConvShape){n, 32, 4, 4, 32, 3, 1, 1, 32, 4, 4, 0, 0});
    check_conv(be, "DR g=4 3x3 s2 p1 16 ch, 16x16", (ConvShape){n, 16, 16, 16, 16, 3, 2, 1, 4, 8, 8, 0, 0});
    check_conv(be, "DR g=1 3x3 s2 p1 8 ch, 33x33", (ConvShape){n, 8, 33, 33, 8, 3, 2, 1, 8, 17, 17, 0, 0});
    check_conv(be, "DR g=2 3x3 s1 p1 4 ch, 40x40 (large)", (ConvShape){1, 4, 40, 40, 4, 3, 1, 1, 2, 40, 40, 0, 0});
    check_conv(be, "5x5 s3 p2 4->6, 11x10", (ConvShape){n, 4, 11, 10, 6, 5, 3, 2, 1, 4, 4, 0, 0});
}

// --- 3. whole training steps ------------------------------------------------------------------------
typedef struct StepResult {
    float* values; // loss, logits, then every parameter gradient
    size_t count, arena;
    double bytes; // the profiler's least bytes moved by the step (profile_step_cost)
} StepResult;

static StepResult train_step(const Backend* be, const char* model, float width, int n, int fp32_activations) {
    Engine* e = engine_create(be);
    e->fp32_activations = fp32_activations;
    Model m;
    model_build(&m, model_find(model), e, width, 1, 10);
    engine_alloc_params(e);
    engine_init_params(e, 7);
    float* images = random_floats((size_t)n * 3 * 32 * 32, 21);
    int labels[16];
    for (int i = 0; i < n; i++) labels[i] = (i * 7) % 10;
    StepResult r = {0};
    for (int pass = 0; pass < 2; pass++) { // planning, then the step
        if (pass) engine_plan_end(e);
        else engine_plan_begin(e);
        engine_begin(e, 1);
        Tensor* x = engine_input(e, n, 3, 32, 32, images);
        Tensor* logits = model_forward(e, &m, x);
        Tensor* loss = cross_entropy(e, logits, engine_labels(e, n, labels), "loss");
        if (pass) engine_zero_grad(e);
        engine_backward(e, loss);
        if (!pass) continue;
        r.count = 1 + (size_t)n * 10;
        for (int i = 0; i < e->num_params; i++) r.count += e->params[i].is_buffer ? 0 : e->params[i].numel;
        r.values = NN_MALLOC(r.count * sizeof(float));
        r.values[0] = engine_read_scalar(e, loss);
        engine_read(e, r.values + 1, logits);
        size_t at = 1 + (size_t)n * 10;
        for (int i = 0; i < e->num_params; i++) {
            if (e->params[i].is_buffer) continue;
            engine_read_grad(e, r.values + at, &e->params[i].t);
            at += e->params[i].numel;
        }
    }
    r.arena = e->act_capacity;
    r.bytes = profile_step_cost(e).bytes;
    model_free(&m);
    engine_destroy(e);
    free(images);
    return r;
}

static void check_step(const Backend* be, const char* model, float width, int n) {
    StepResult a = train_step(be, model, width, n, 0), b = train_step(be, model, width, n, 1);
    char what[96];
    snprintf(what, sizeof(what), "%s x%.2f step: loss, logits, gradients", model, width);
    report(what, be->name, differ(a.values, b.values, a.count), a.count);
    CHECK(a.arena < b.arena, "%s (%s): the arena with bf16 storage (%zu bytes) is not smaller than without (%zu): "
          "nothing was stored in bf16", model, be->name, a.arena, b.arena);
    CHECK(a.bytes < b.bytes, "%s (%s): the profiler counts %.0f bytes with bf16 storage, not fewer than %.0f without",
          model, be->name, a.bytes, b.bytes);
    printf("  %-52s %-4s activations %.1f MiB with bf16 storage, %.1f MiB without; bytes moved %.1f MB, %.1f MB\n", "",
           "", a.arena / 1048576.0, b.arena / 1048576.0, a.bytes / 1e6, b.bytes / 1e6);
    free(a.values), free(b.values);
}

int main(void) {
    printf("bf16 storage against FP32 storage of the same values, bit for bit:\n");
    const char* isas[] = {"avx512", "generic"};
    for (int i = 0; i < 2; i++) {
        if (!gemm_set_isa(isas[i])) {
            printf("  (%s kernels: not on this CPU)\n", isas[i]);
            continue;
        }
        printf(" CPU backend, %s kernels (bf16 GEMM: %s)\n", isas[i], gemm_bf16_isa()->name);
        const Backend* cpu = open_backend("cpu");
        check_kernels(cpu, 0);
        check_step(cpu, "mobilenet", 0.25f, 8);
        check_step(cpu, "mobilenetv2", 0.25f, 4);
    }
    printf(" reference backend\n");
    const Backend* ref = open_backend("ref");
    check_kernels(ref, 1);
    check_step(ref, "mobilenet", 0.125f, 2);
    return test_finish("test_bf16_activations");
}
