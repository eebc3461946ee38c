// The portable GEMM micro-kernel: a 4 x 16 tile in plain C, written so that the compiler keeps the
// tile in registers and vectorizes the j loop with whatever the baseline ISA offers (SSE2 on
// x86-64). Used on CPUs without AVX2, and by the tests as a second opinion.
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
