// The CPU's k x k convolutions in bf16 mode (kernels/cpu/cpu_conv_flat.c: the stem, and the grouped
// convolutions that diagonalwise refactorization runs the depthwise layers as). Their FP32 kernels
// multiply planes whose values were rounded to bf16 operands as they were copied, so:
//   1. the rounding itself, nn/bf16.h's bf16_operand_value and the AVX-512 copies' 16-lane version,
//      equals bf16_float(bf16_operand(x)) (the 16-bit definition) on every sign and exponent with the
//      low half at each rounding boundary (ties both ways, the carry into the exponent and into Inf,
//      NaN payloads that only the low half holds, denormals flushed);
//   2. each pass in bf16 mode on (a, b) gives the same bits as the same pass in FP32 mode on the
//      operands rounded beforehand by that definition, for shapes that take each copy path (AVX-512
//      expand on small maps, the stride-2 split, the plain loops for stride 3 and for large maps), on
//      the AVX-512 kernels and the portable ones, with inputs that hold exact ties and denormals.
// A copy that rounds differently or forgets to round shows as a bit difference.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/cpu_conv_flat.h"
#include "../kernels/cpu/cpu_gemm.h"
#include "../nn/backend.h"
#include "../nn/bf16.h"
#include "../nn/util.h"
#include "test_util.h"

static const char* const ROUNDING[] = {"exact", "integer steps", "vcvtneps2bf16"};

// The 16-bit definition the faster forms must equal.
static float oracle(float x) { return bf16_float(bf16_operand(x)); }

static void check_rounding(void) {
    size_t n;
    float* x = bf16_boundary_patterns(&n);
    size_t scalar_bad = 0;
    for (size_t i = 0; i < n; i++) scalar_bad += float_bits(bf16_operand_value(x[i])) != float_bits(oracle(x[i]));
    CHECK(scalar_bad == 0, "bf16_operand_value differs from bf16_float(bf16_operand(x)) on %zu of %zu patterns",
          scalar_bad, n);
    int avx512 = gemm_cpu_has_avx512(), cvt = avx512 && flat_round_mode_avx512() == FLAT_ROUND_CVT;
    size_t vector_bad[3] = {0};
    for (int mode = FLAT_ROUND_INT; avx512 && mode <= (cvt ? FLAT_ROUND_CVT : FLAT_ROUND_INT); mode++) {
        float* v = NN_MALLOC(n * sizeof(float));
        memcpy(v, x, n * sizeof(float));
        flat_round_bf16_avx512(v + 1, n - 1, mode); // odd start and length: the masked tail too
        for (size_t i = 1; i < n; i++) vector_bad[mode] += float_bits(v[i]) != float_bits(oracle(x[i]));
        CHECK(vector_bad[mode] == 0, "flat_round_bf16_avx512 (%s) differs from bf16_float(bf16_operand(x)) on %zu of %zu patterns",
              ROUNDING[mode], vector_bad[mode], n - 1);
        free(v);
    }
    printf("rounding: %zu bit patterns (every sign and exponent, 9 low halves): bf16_operand_value %s, "
           "AVX-512 copies by integer steps %s, by vcvtneps2bf16 %s\n", n, scalar_bad ? "DIFFERS" : "identical",
           !avx512 ? "not run (no AVX-512 here)" : vector_bad[FLAT_ROUND_INT] ? "DIFFER" : "identical",
           !cvt ? "not run (no AVX512_BF16 here)" : vector_bad[FLAT_ROUND_CVT] ? "DIFFER" : "identical");
    free(x);
}

static const Backend* open_cpu(int bf16) {
    char err[256];
    BackendOptions opt = {.threads = 2, .bf16 = bf16};
    const Backend* be = backend_open("cpu", &opt, err, sizeof(err));
    if (!be) nn_fatal("%s", err);
    return be;
}

// Uniform in [-1, 1), then every 7th value an exact tie (low half 0x8000; even and odd kept bits
// alternate with the values) and every 13th a denormal: the cases where a wrong rounding differs.
static float* operand(size_t n, uint64_t seed) {
    float* x = NN_MALLOC(n * sizeof(float));
    Rng rng = rng_derive(41, 42, seed);
    fill_uniform(x, n, -1.0f, 1.0f, &rng);
    for (size_t i = 0; i < n; i += 7) x[i] = bits_float((float_bits(x[i]) & 0xFFFF0000u) | 0x8000u);
    for (size_t i = 3; i < n; i += 13) x[i] = bits_float((float_bits(x[i]) & 0x80000000u) | (uint32_t)(i * 2654435761u % 0x7FFFFFu + 1));
    return x;
}

static float* rounded(const float* x, size_t n) {
    float* r = NN_MALLOC(n * sizeof(float));
    for (size_t i = 0; i < n; i++) r[i] = oracle(x[i]);
    return r;
}

enum { FWD, DATA, FILTER };
static const char* const PASS[] = {"forward", "backward-data", "backward-filter"};

static void run_pass(const Backend* be, int pass, float* out, const float* a, const float* b, const ConvShape* s) {
    if (pass == FWD) be->conv2d_forward(out, a, b, s);
    else if (pass == DATA) be->conv2d_backward_data(out, a, b, s, 0);
    else be->conv2d_backward_filter(out, a, b, s, 0);
}

// isa: the kernels (and, on AVX-512, the copies' rounding method) that ran, for the messages.
static void check_conv(const char* name, ConvShape s, const char* isa, uint64_t seed) {
    size_t nx = (size_t)s.n * s.c_in * s.h * s.w, ny = (size_t)s.n * s.c_out * s.h_out * s.w_out;
    size_t nw = (size_t)s.c_out * (s.c_in / s.groups) * s.k * s.k;
    for (int pass = FWD; pass <= FILTER; pass++) {
        size_t na = pass == FWD ? nx : ny, nb = pass == FILTER ? nx : nw, nout = pass == FWD ? ny : pass == DATA ? nx : nw;
        float *a = operand(na, seed + pass), *b = operand(nb, seed + 10 + pass);
        float *ar = rounded(a, na), *br = rounded(b, nb);
        float *y16 = NN_CALLOC(nout, sizeof(float)), *y32 = NN_CALLOC(nout, sizeof(float));
        run_pass(open_cpu(1), pass, y16, a, b, &s);
        run_pass(open_cpu(0), pass, y32, ar, br, &s);
        size_t differ = 0;
        for (size_t i = 0; i < nout; i++) differ += float_bits(y16[i]) != float_bits(y32[i]);
        CHECK(differ == 0, "%s %s (%s kernels): %zu of %zu outputs in bf16 mode differ from FP32 on rounded operands",
              name, PASS[pass], isa, differ, nout);
        printf("  %-34s %-16s %-22s %7zu outputs: %s\n", name, PASS[pass], isa, nout, differ ? "DIFFER" : "identical");
        free(a), free(b), free(ar), free(br), free(y16), free(y32);
    }
}

int main(void) {
    check_rounding();
    printf("k x k convolutions in bf16 mode against FP32 on pre-rounded operands, bit for bit:\n");
    // The AVX-512 kernels with each rounding method their copies can use, then the portable ones.
    struct { const char *isa, *label; int rounding; } runs[] = {
        {"avx512", "avx512, vcvtneps2bf16", FLAT_ROUND_CVT},
        {"avx512", "avx512, integer steps", FLAT_ROUND_INT},
        {"generic", "generic", -1},
    };
    for (int i = 0; i < 3; i++) {
        if (!gemm_set_isa(runs[i].isa) || (runs[i].rounding == FLAT_ROUND_CVT && flat_round_mode_avx512() != FLAT_ROUND_CVT)) {
            printf("  (%s: not on this CPU)\n", runs[i].label);
            continue;
        }
        cpu_conv_flat_set_rounding(runs[i].rounding);
        const char* l = runs[i].label;
        //                                     n  c_in h   w  c_out k  s  p  groups h_out w_out
        check_conv("stem 3x3 s1 p1, 3->8, 8x8", (ConvShape){2, 3, 8, 8, 8, 3, 1, 1, 1, 8, 8, 0, 0}, l, 1);
        check_conv("DR g=2 3x3 s1 p1, 16 ch, 4x4", (ConvShape){3, 16, 4, 4, 16, 3, 1, 1, 8, 4, 4, 0, 0}, l, 11);
        check_conv("DR g=4 3x3 s2 p1, 8 ch, 9x9", (ConvShape){2, 8, 9, 9, 8, 3, 2, 1, 2, 5, 5, 0, 0}, l, 21);
        check_conv("DR g=1 3x3 s2 p1, 4 ch, 34x34", (ConvShape){2, 4, 34, 34, 4, 3, 2, 1, 4, 17, 17, 0, 0}, l, 31);
        check_conv("5x5 s3 p2, 4->6, 11x10", (ConvShape){2, 4, 11, 10, 6, 5, 3, 2, 1, 4, 4, 0, 0}, l, 41);
        // planes rounded before they are padded: in one register (2x2: one padded vector), through the
        // buffer at its largest (1024 values), and with a partial last vector
        check_conv("DR g=1 3x3 s1 p1, 8 ch, 2x2", (ConvShape){3, 8, 2, 2, 8, 3, 1, 1, 8, 2, 2, 0, 0}, l, 81);
        check_conv("DR g=1 3x3 s1 p1, 3 ch, 32x32", (ConvShape){2, 3, 32, 32, 3, 3, 1, 1, 3, 32, 32, 0, 0}, l, 61);
        check_conv("DR g=2 3x3 s1 p1, 4 ch, 31x31", (ConvShape){2, 4, 31, 31, 4, 3, 1, 1, 2, 31, 31, 0, 0}, l, 71);
        check_conv("DR g=2 3x3 s1 p1, 2 ch, 130x130", (ConvShape){1, 2, 130, 130, 2, 3, 1, 1, 1, 130, 130, 0, 0}, l, 51);
    }
    cpu_conv_flat_set_rounding(-1);
    return test_finish("test_conv_flat_bf16");
}
