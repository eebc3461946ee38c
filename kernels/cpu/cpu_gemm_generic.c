// Computes the products of kernels/ref/ref_conv.c's and ref_linear_*'s sums faster on any CPU: a
// register tile the compiler vectorizes.
//
// The portable GEMM micro-kernel: a 4 x 16 tile in plain C, written so that the compiler keeps the
// tile in registers and vectorizes the j loop with whatever the baseline ISA offers (SSE2 on
// x86-64). Used on CPUs without AVX2, and by the tests as a second opinion.
#include <float.h>
#include <math.h>

#include "cpu_gemm.h"

enum { MR = 4, NR = 16 };

static void kernel(int k, const float* a, const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, int m, int n,
                   int accumulate) {
    float acc[MR][NR] = {{0}};
    for (int p = 0; p < k; p++) {
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += a[i] * b[j];
        a += MR;
        b += NR;
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float* cij = c + i * ldc + (j < NR / 2 ? j : hi + j - NR / 2);
            *cij = accumulate ? *cij + acc[i][j] : acc[i][j];
        }
}

static void indirect(int k, const float* a, const float* const* b, ptrdiff_t j, float* c, ptrdiff_t ldc, ptrdiff_t hi,
                     int m, int n, int accumulate) {
    float acc[MR][NR] = {{0}};
    for (int p = 0; p < k; p++) {
        const float* bp = b[p] + j;
        for (int i = 0; i < MR; i++)
            for (int t = 0; t < NR; t++) acc[i][t] += a[i] * bp[t];
        a += MR;
    }
    for (int i = 0; i < m; i++)
        for (int t = 0; t < n; t++) {
            float* cij = c + i * ldc + (t < NR / 2 ? t : hi + t - NR / 2);
            *cij = accumulate ? *cij + acc[i][t] : acc[i][t];
        }
}

static void dot(int m, int n, int len, const float* const* a, const float* const* b, float* c, ptrdiff_t ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float acc[8] = {0}; // eight interleaved partial sums, which the compiler can vectorize
            int t = 0;
            for (; t + 8 <= len; t += 8)
                for (int u = 0; u < 8; u++) acc[u] += a[i][t + u] * b[j][t + u];
            for (; t < len; t++) acc[0] += a[i][t] * b[j][t];
            c[i * ldc + j] += ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        }
}

const GemmIsa gemm_isa_generic = {
    .name = "generic",
    .mr = MR,
    .nr = NR,
    .mc = 128,
    .kc = 256,
    .nc = 2048,
    .kernel = kernel,
    .indirect = indirect,
    .dot = dot,
};

// --- bf16: the portable kernel, bit for bit what vdpbf16ps computes -----------------------------------
// Used where the CPU lacks AVX512_BF16, and by the tests as the kernel the fast one must match.

// One step of vdpbf16ps: acc + a * b as one FMA, then a denormal result flushed to a zero of its
// sign (FTZ). The product of two bf16 is exact in double and the sum of two numbers of at most 24
// significant bits, rounded to double and then to float, is the correctly rounded float sum (double
// has more than 2 * 24 + 2 bits), so this is the FMA without needing an FMA unit. acc is never denormal
// (it starts at zero and every step flushes), so the instruction's DAZ on it needs nothing here.
static inline float dp_step(float acc, float a, float b) {
    float r = (float)((double)acc + (double)a * (double)b);
    return fabsf(r) < FLT_MIN ? r * 0.0f : r;
}

static inline float pair_lo(uint32_t w) { return gemm_bf16_float((uint16_t)(w & 0xFFFFu)); }
static inline float pair_hi(uint32_t w) { return gemm_bf16_float((uint16_t)(w >> 16)); }

static void kernel_bf16(int kp, const uint32_t* a, const uint32_t* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, int m,
                        int n, float alpha, int accumulate) {
    float acc[MR][NR] = {{0}};
    for (int p = 0; p < kp; p++) {
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) {
                float t = dp_step(acc[i][j], pair_hi(a[i]), pair_hi(b[j])); // the odd k first, as vdpbf16ps
                acc[i][j] = dp_step(t, pair_lo(a[i]), pair_lo(b[j]));
            }
        a += MR;
        b += NR;
    }
    // fmaf: one rounding, as the AVX-512 kernel's store (a contracted or uncontracted a * b + c would
    // depend on the compiler's flags)
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float* cij = c + i * ldc + (j < NR / 2 ? j : hi + j - NR / 2);
            *cij = accumulate ? fmaf(alpha, acc[i][j], *cij) : alpha * acc[i][j];
        }
}

const GemmBf16Isa gemm_bf16_isa_generic = {
    .name = "generic",
    .mr = MR,
    .nr = NR,
    .mc = 128,
    .kc = 256, // the AVX-512 bf16 kernel's: the same depth blocks, hence the same sums
    .nc = 2048,
    .kernel = kernel_bf16,
    .pairs = gemm_bf16_pairs,
};
