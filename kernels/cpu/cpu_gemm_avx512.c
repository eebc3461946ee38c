// The AVX-512 GEMM micro-kernel: a 12 x 32 tile of C held in 24 zmm registers. Per k it loads one
// 32-float row of the packed B panel (2 zmm) and broadcasts the 12 values of the packed A panel's
// column, for 24 FMAs: enough independent accumulators to cover the FMA latency on both FMA ports,
// and 14 loads per 24 FMAs, which the load ports sustain. The whole file is compiled for AVX-512
// (GCC target pragma) but only runs when gemm_isa() has checked the CPU at run time.
#pragma GCC push_options
#pragma GCC target("avx512f")
#include <immintrin.h>

#include "cpu_gemm.h"

enum { MR = 12, NR = 32 };

// One m x (16 * halves) tile; m and halves are compile-time constants in each instance, so the
// accumulator arrays live in registers. m0/m1 mask the columns past n on store (the B panel itself
// is zero-padded, so the FMAs need no masks).
static inline __attribute__((always_inline)) void tile(const int m, const int halves, int k, const float* a,
                                                       const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi,
                                                       __mmask16 m0, __mmask16 m1, int accumulate) {
    __m512 c0[MR], c1[MR];
    for (int i = 0; i < m; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    for (int i = 0; i < m; i++) _mm_prefetch((const char*)(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
    for (int p = 0; p < k; p++) {
        __m512 b0 = _mm512_load_ps(b), b1 = halves > 1 ? _mm512_load_ps(b + 16) : b0;
#pragma GCC unroll 12
        for (int i = 0; i < m; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            if (halves > 1) c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
        a += MR;
        b += NR;
    }
#pragma GCC unroll 12
    for (int i = 0; i < m; i++) {
        float* ci = c + i * ldc;
        if (accumulate) {
            c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, ci));
            if (halves > 1) c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, ci + hi));
        }
        _mm512_mask_storeu_ps(ci, m0, c0[i]);
        if (halves > 1) _mm512_mask_storeu_ps(ci + hi, m1, c1[i]);
    }
}

#define INSTANCE(M)                                                                                    \
    static void tile##M##x32(int k, const float* a, const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, \
                             __mmask16 m0, __mmask16 m1, int acc) {                                    \
        tile(M, 2, k, a, b, c, ldc, hi, m0, m1, acc);                                                  \
    }                                                                                                  \
    static void tile##M##x16(int k, const float* a, const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, \
                             __mmask16 m0, __mmask16 m1, int acc) {                                    \
        tile(M, 1, k, a, b, c, ldc, hi, m0, m1, acc);                                                  \
    }
INSTANCE(1) INSTANCE(2) INSTANCE(3) INSTANCE(4) INSTANCE(5) INSTANCE(6)
INSTANCE(7) INSTANCE(8) INSTANCE(9) INSTANCE(10) INSTANCE(11) INSTANCE(12)
#undef INSTANCE

typedef void (*TileFn)(int, const float*, const float*, float*, ptrdiff_t, ptrdiff_t, __mmask16, __mmask16, int);
static const TileFn TILES32[MR + 1] = {0, tile1x32, tile2x32, tile3x32, tile4x32, tile5x32, tile6x32,
                                       tile7x32, tile8x32, tile9x32, tile10x32, tile11x32, tile12x32};
static const TileFn TILES16[MR + 1] = {0, tile1x16, tile2x16, tile3x16, tile4x16, tile5x16, tile6x16,
                                       tile7x16, tile8x16, tile9x16, tile10x16, tile11x16, tile12x16};

// Columns past n (a tile at the right edge of C) are masked; n <= 16 runs the half-width tile.
static void kernel(int k, const float* a, const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, int m, int n,
                   int accumulate) {
    __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
    __mmask16 m1 = n >= 32 ? 0xFFFF : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
    (n > 16 ? TILES32 : TILES16)[m](k, a, b, c, ldc, hi, m0, m1, accumulate);
}

// --- the dot-product form: a 4 x 6 block of rows, 24 accumulators of 16 partial sums each ---------
enum { DM = 4, DN = 6 };

static inline __attribute__((always_inline)) void dot_block(const int m, const int n, int len,
                                                            const float* const* a, const float* const* b,
                                                            float* c, ptrdiff_t ldc) {
    __m512 acc[DM][DN];
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) acc[i][j] = _mm512_setzero_ps();
    int t = 0;
    for (; t + 16 <= len; t += 16) {
        __m512 av[DM];
        for (int i = 0; i < m; i++) av[i] = _mm512_loadu_ps(a[i] + t);
        for (int j = 0; j < n; j++) {
            __m512 bv = _mm512_loadu_ps(b[j] + t);
            for (int i = 0; i < m; i++) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    if (t < len) { // the last partial vector, masked
        __mmask16 k = (__mmask16)((1u << (len - t)) - 1);
        __m512 av[DM];
        for (int i = 0; i < m; i++) av[i] = _mm512_maskz_loadu_ps(k, a[i] + t);
        for (int j = 0; j < n; j++) {
            __m512 bv = _mm512_maskz_loadu_ps(k, b[j] + t);
            for (int i = 0; i < m; i++) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[i * ldc + j] += _mm512_reduce_add_ps(acc[i][j]);
}

#define DOT(M, N)                                                                                        \
    static void dot##M##x##N(int len, const float* const* a, const float* const* b, float* c, ptrdiff_t ldc) { \
        dot_block(M, N, len, a, b, c, ldc);                                                              \
    }
#define DOTS(M) DOT(M, 1) DOT(M, 2) DOT(M, 3) DOT(M, 4) DOT(M, 5) DOT(M, 6)
DOTS(1) DOTS(2) DOTS(3) DOTS(4)
#undef DOTS
#undef DOT

typedef void (*DotFn)(int, const float* const*, const float* const*, float*, ptrdiff_t);
#define ROW(M) {0, dot##M##x1, dot##M##x2, dot##M##x3, dot##M##x4, dot##M##x5, dot##M##x6}
static const DotFn DOTS[DM + 1][DN + 1] = {{0}, ROW(1), ROW(2), ROW(3), ROW(4)};
#undef ROW

static void dot(int m, int n, int len, const float* const* a, const float* const* b, float* c, ptrdiff_t ldc) {
    for (int i = 0; i < m; i += DM)
        for (int j = 0; j < n; j += DN) {
            int mi = m - i < DM ? m - i : DM, nj = n - j < DN ? n - j : DN;
            DOTS[mi][nj](len, a + i, b + j, c + i * ldc + j, ldc);
        }
}

#pragma GCC pop_options

const GemmIsa gemm_isa_avx512 = {
    .name = "avx512",
    .mr = MR,
    .nr = NR,
    .mc = 240,  // A block 240 x 256 floats = 240 KiB: well inside the 2 MiB L2
    .kc = 256,  // B panel 256 x 32 floats = 32 KiB: stays in the 48 KiB L1 while A panels stream by
    .nc = 3072, // packed B block 256 x 3072 floats = 3 MiB
    .kernel = kernel,
    .dot = dot,
};
