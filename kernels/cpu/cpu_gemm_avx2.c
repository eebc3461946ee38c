// Computes the products of kernels/ref/ref_conv.c's and ref_linear_*'s sums faster: 96 of them per
// loop step in AVX2 registers, with fused multiply-adds.
//
// The AVX2 + FMA GEMM micro-kernel: a 6 x 16 tile of C in 12 ymm registers (2 loads of B and 6
// broadcasts of A per 12 FMAs), for CPUs without AVX-512. Compiled for AVX2 by a target pragma; runs
// only when gemm_isa() has checked the CPU at run time.
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include "cpu_gemm.h"

enum { MR = 6, NR = 16 };

// Lane i of a mask vector is all ones when i < n (maskload/maskstore use the sign bit).
static inline __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Stores (or adds) an m x (8 * halves) tile: columns 0-7 at c, 8-15 at c + hi, none past n.
static inline __attribute__((always_inline)) void store(const int m, const int halves, const __m256* c0,
                                                        const __m256* c1, float* c, ptrdiff_t ldc, ptrdiff_t hi,
                                                        int n, int accumulate) {
    if (n == NR) {
#pragma GCC unroll 6
        for (int i = 0; i < m; i++) {
            float* ci = c + i * ldc;
            __m256 v0 = c0[i], v1 = c1[i];
            if (accumulate) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ci));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ci + hi));
            }
            _mm256_storeu_ps(ci, v0);
            _mm256_storeu_ps(ci + hi, v1);
        }
        return;
    }
    __m256i k0 = lanes_below(n), k1 = lanes_below(n - 8);
#pragma GCC unroll 6
    for (int i = 0; i < m; i++) {
        float* ci = c + i * ldc;
        __m256 v0 = c0[i], v1 = c1[i];
        if (accumulate) {
            v0 = _mm256_add_ps(v0, _mm256_maskload_ps(ci, k0));
            if (halves > 1) v1 = _mm256_add_ps(v1, _mm256_maskload_ps(ci + hi, k1));
        }
        _mm256_maskstore_ps(ci, k0, v0);
        if (halves > 1) _mm256_maskstore_ps(ci + hi, k1, v1);
    }
}

static inline __attribute__((always_inline)) void tile(const int m, const int halves, int k, const float* a,
                                                       const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi,
                                                       int n, int accumulate) {
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int i = 0; i < m; i++) c0[i] = c1[i] = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int p = 0; p < k; p++) {
        __m256 b0 = _mm256_load_ps(b), b1 = halves > 1 ? _mm256_load_ps(b + 8) : b0;
#pragma GCC unroll 6
        for (int i = 0; i < m; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            if (halves > 1) c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
        a += MR;
        b += NR;
    }
    store(m, halves, c0, c1, c, ldc, hi, n, accumulate);
}

// The same with B read in place: row p is the 16 floats at b[p] + j.
static inline __attribute__((always_inline)) void itile(const int m, const int halves, int k, const float* a,
                                                        const float* const* b, ptrdiff_t j, float* c, ptrdiff_t ldc,
                                                        ptrdiff_t hi, int n, int accumulate) {
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int i = 0; i < m; i++) c0[i] = c1[i] = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int p = 0; p < k; p++) {
        const float* bp = b[p] + j;
        __m256 b0 = _mm256_loadu_ps(bp), b1 = halves > 1 ? _mm256_loadu_ps(bp + 8) : b0;
#pragma GCC unroll 6
        for (int i = 0; i < m; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            if (halves > 1) c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
        a += MR;
    }
    store(m, halves, c0, c1, c, ldc, hi, n, accumulate);
}

#define INSTANCE(M)                                                                                      \
    static void tile##M##x16(int k, const float* a, const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, int n, \
                             int acc) {                                                                  \
        tile(M, 2, k, a, b, c, ldc, hi, n, acc);                                                         \
    }                                                                                                    \
    static void tile##M##x8(int k, const float* a, const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, int n, \
                            int acc) {                                                                   \
        tile(M, 1, k, a, b, c, ldc, hi, n, acc);                                                         \
    }                                                                                                    \
    static void itile##M##x16(int k, const float* a, const float* const* b, ptrdiff_t j, float* c,        \
                              ptrdiff_t ldc, ptrdiff_t hi, int n, int acc) {                             \
        itile(M, 2, k, a, b, j, c, ldc, hi, n, acc);                                                     \
    }                                                                                                    \
    static void itile##M##x8(int k, const float* a, const float* const* b, ptrdiff_t j, float* c,         \
                             ptrdiff_t ldc, ptrdiff_t hi, int n, int acc) {                              \
        itile(M, 1, k, a, b, j, c, ldc, hi, n, acc);                                                     \
    }
INSTANCE(1) INSTANCE(2) INSTANCE(3) INSTANCE(4) INSTANCE(5) INSTANCE(6)
#undef INSTANCE

typedef void (*TileFn)(int, const float*, const float*, float*, ptrdiff_t, ptrdiff_t, int, int);
static const TileFn TILES16[MR + 1] = {0, tile1x16, tile2x16, tile3x16, tile4x16, tile5x16, tile6x16};
static const TileFn TILES8[MR + 1] = {0, tile1x8, tile2x8, tile3x8, tile4x8, tile5x8, tile6x8};

static void kernel(int k, const float* a, const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, int m, int n,
                   int accumulate) {
    (n > 8 ? TILES16 : TILES8)[m](k, a, b, c, ldc, hi, n, accumulate);
}

typedef void (*ITileFn)(int, const float*, const float* const*, ptrdiff_t, float*, ptrdiff_t, ptrdiff_t, int, int);
static const ITileFn ITILES16[MR + 1] = {0, itile1x16, itile2x16, itile3x16, itile4x16, itile5x16, itile6x16};
static const ITileFn ITILES8[MR + 1] = {0, itile1x8, itile2x8, itile3x8, itile4x8, itile5x8, itile6x8};

static void indirect(int k, const float* a, const float* const* b, ptrdiff_t j, float* c, ptrdiff_t ldc, ptrdiff_t hi,
                     int m, int n, int accumulate) {
    (n > 8 ? ITILES16 : ITILES8)[m](k, a, b, j, c, ldc, hi, n, accumulate);
}

// --- the dot-product form: a 3 x 4 block of rows, 12 accumulators of 8 partial sums each ----------
enum { DM = 3, DN = 4 };

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __attribute__((always_inline)) void dot_block(const int m, const int n, int len,
                                                            const float* const* a, const float* const* b,
                                                            float* c, ptrdiff_t ldc) {
    __m256 acc[DM][DN];
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) acc[i][j] = _mm256_setzero_ps();
    int t = 0;
    for (; t + 8 <= len; t += 8) {
        __m256 av[DM];
        for (int i = 0; i < m; i++) av[i] = _mm256_loadu_ps(a[i] + t);
        for (int j = 0; j < n; j++) {
            __m256 bv = _mm256_loadu_ps(b[j] + t);
            for (int i = 0; i < m; i++) acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    if (t < len) { // the last partial vector, masked
        __m256i k = lanes_below(len - t);
        __m256 av[DM];
        for (int i = 0; i < m; i++) av[i] = _mm256_maskload_ps(a[i] + t, k);
        for (int j = 0; j < n; j++) {
            __m256 bv = _mm256_maskload_ps(b[j] + t, k);
            for (int i = 0; i < m; i++) acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[i * ldc + j] += hsum(acc[i][j]);
}

#define DOT(M, N)                                                                                        \
    static void dot##M##x##N(int len, const float* const* a, const float* const* b, float* c, ptrdiff_t ldc) { \
        dot_block(M, N, len, a, b, c, ldc);                                                              \
    }
#define DOTS(M) DOT(M, 1) DOT(M, 2) DOT(M, 3) DOT(M, 4)
DOTS(1) DOTS(2) DOTS(3)
#undef DOTS
#undef DOT

typedef void (*DotFn)(int, const float* const*, const float* const*, float*, ptrdiff_t);
#define ROW(M) {0, dot##M##x1, dot##M##x2, dot##M##x3, dot##M##x4}
static const DotFn DOTS[DM + 1][DN + 1] = {{0}, ROW(1), ROW(2), ROW(3)};
#undef ROW

static void dot(int m, int n, int len, const float* const* a, const float* const* b, float* c, ptrdiff_t ldc) {
    for (int i = 0; i < m; i += DM)
        for (int j = 0; j < n; j += DN) {
            int mi = m - i < DM ? m - i : DM, nj = n - j < DN ? n - j : DN;
            DOTS[mi][nj](len, a + i, b + j, c + i * ldc + j, ldc);
        }
}

#pragma GCC pop_options

const GemmIsa gemm_isa_avx2 = {
    .name = "avx2",
    .mr = MR,
    .nr = NR,
    .mc = 120,  // A block 120 x 256 floats = 120 KiB (L2)
    .kc = 256,  // B panel 256 x 16 floats = 16 KiB (L1)
    .nc = 3072,
    .kernel = kernel,
    .indirect = indirect,
    .dot = dot,
};
