// Computes the products of kernels/ref/ref_conv.c's and ref_linear_*'s sums faster: 384 of them per
// loop step in AVX-512 registers, with fused multiply-adds.
//
// The AVX-512 GEMM micro-kernel: a 12 x 32 tile of C held in 24 zmm registers. Per k it loads one
// 32-float row of the packed B panel (2 zmm) and broadcasts the 12 values of the packed A panel's
// column, for 24 FMAs: enough independent accumulators to cover the FMA latency on both FMA ports,
// and 14 loads per 24 FMAs, which the load ports sustain. The whole file is compiled for AVX-512
// (GCC target pragma) but only runs when gemm_isa() has checked the CPU at run time.
#pragma GCC push_options
#pragma GCC target("avx512f")
#include <immintrin.h>

#include "cpu_gemm.h"
#include "cpu_gemm_avx512_transpose.h"

enum { MR = 12, NR = 32 };

// The first n lanes of a vector (none for n <= 0, all for n >= 16).
static inline __mmask16 below(int n) { return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

// Stores (or adds) the accumulators of an m x (16 * halves) tile: columns 0-15 at c, 16-31 at c + hi,
// masked by m0/m1 past the tile's n columns.
static inline __attribute__((always_inline)) void store(const int m, const int halves, const __m512* c0,
                                                        const __m512* c1, float* c, ptrdiff_t ldc, ptrdiff_t hi,
                                                        __mmask16 m0, __mmask16 m1, int accumulate) {
#pragma GCC unroll 12
    for (int i = 0; i < m; i++) {
        float* ci = c + i * ldc;
        __m512 v0 = c0[i], v1 = c1[i];
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));
            if (halves > 1) v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci + hi));
        }
        _mm512_mask_storeu_ps(ci, m0, v0);
        if (halves > 1) _mm512_mask_storeu_ps(ci + hi, m1, v1);
    }
}

// One m x (16 * halves) tile; m and halves are compile-time constants in each instance, so the
// accumulator arrays live in registers. m0/m1 mask the columns past n on store (the B panel itself
// is zero-padded, so the FMAs need no masks).
static inline __attribute__((always_inline)) void tile(const int m, const int halves, int k, const float* a,
                                                       const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi,
                                                       __mmask16 m0, __mmask16 m1, int accumulate) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int i = 0; i < m; i++) c0[i] = c1[i] = _mm512_setzero_ps();
#pragma GCC unroll 12
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
    store(m, halves, c0, c1, c, ldc, hi, m0, m1, accumulate);
}

// The same with B read in place: row p is the 32 floats at b[p] + j.
static inline __attribute__((always_inline)) void itile(const int m, const int halves, int k, const float* a,
                                                        const float* const* b, ptrdiff_t j, float* c, ptrdiff_t ldc,
                                                        ptrdiff_t hi, __mmask16 m0, __mmask16 m1, int accumulate) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int i = 0; i < m; i++) c0[i] = c1[i] = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int p = 0; p < k; p++) {
        const float* bp = b[p] + j;
        __m512 b0 = _mm512_loadu_ps(bp), b1 = halves > 1 ? _mm512_loadu_ps(bp + 16) : b0;
#pragma GCC unroll 12
        for (int i = 0; i < m; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            if (halves > 1) c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
        a += MR;
    }
    store(m, halves, c0, c1, c, ldc, hi, m0, m1, accumulate);
}

#define INSTANCE(M)                                                                                    \
    static void tile##M##x32(int k, const float* a, const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, \
                             __mmask16 m0, __mmask16 m1, int acc) {                                    \
        tile(M, 2, k, a, b, c, ldc, hi, m0, m1, acc);                                                  \
    }                                                                                                  \
    static void tile##M##x16(int k, const float* a, const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, \
                             __mmask16 m0, __mmask16 m1, int acc) {                                    \
        tile(M, 1, k, a, b, c, ldc, hi, m0, m1, acc);                                                  \
    }                                                                                                  \
    static void itile##M##x32(int k, const float* a, const float* const* b, ptrdiff_t j, float* c,      \
                              ptrdiff_t ldc, ptrdiff_t hi, __mmask16 m0, __mmask16 m1, int acc) {       \
        itile(M, 2, k, a, b, j, c, ldc, hi, m0, m1, acc);                                              \
    }                                                                                                  \
    static void itile##M##x16(int k, const float* a, const float* const* b, ptrdiff_t j, float* c,      \
                              ptrdiff_t ldc, ptrdiff_t hi, __mmask16 m0, __mmask16 m1, int acc) {       \
        itile(M, 1, k, a, b, j, c, ldc, hi, m0, m1, acc);                                              \
    }
INSTANCE(1) INSTANCE(2) INSTANCE(3) INSTANCE(4) INSTANCE(5) INSTANCE(6)
INSTANCE(7) INSTANCE(8) INSTANCE(9) INSTANCE(10) INSTANCE(11) INSTANCE(12)
#undef INSTANCE

typedef void (*TileFn)(int, const float*, const float*, float*, ptrdiff_t, ptrdiff_t, __mmask16, __mmask16, int);
static const TileFn TILES32[MR + 1] = {0, tile1x32, tile2x32, tile3x32, tile4x32, tile5x32, tile6x32,
                                       tile7x32, tile8x32, tile9x32, tile10x32, tile11x32, tile12x32};
static const TileFn TILES16[MR + 1] = {0, tile1x16, tile2x16, tile3x16, tile4x16, tile5x16, tile6x16,
                                       tile7x16, tile8x16, tile9x16, tile10x16, tile11x16, tile12x16};

typedef void (*ITileFn)(int, const float*, const float* const*, ptrdiff_t, float*, ptrdiff_t, ptrdiff_t, __mmask16,
                        __mmask16, int);
static const ITileFn ITILES32[MR + 1] = {0, itile1x32, itile2x32, itile3x32, itile4x32, itile5x32, itile6x32,
                                         itile7x32, itile8x32, itile9x32, itile10x32, itile11x32, itile12x32};
static const ITileFn ITILES16[MR + 1] = {0, itile1x16, itile2x16, itile3x16, itile4x16, itile5x16, itile6x16,
                                         itile7x16, itile8x16, itile9x16, itile10x16, itile11x16, itile12x16};

// Columns past n (a tile at the right edge of C) are masked; n <= 16 runs the half-width tile.
static void kernel(int k, const float* a, const float* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, int m, int n,
                   int accumulate) {
    __mmask16 m0 = below(n), m1 = below(n - 16);
    (n > 16 ? TILES32 : TILES16)[m](k, a, b, c, ldc, hi, m0, m1, accumulate);
}

// One row of a wide tile out: c[0, n) (+)= the v accumulators' lanes, the last vector masked.
static inline __attribute__((always_inline)) void store_wide_row(float* c, const __m512* acc, int v, int n,
                                                                 int accumulate) {
#pragma GCC unroll 8
    for (int q = 0; q < v; q++) {
        int left = n - 16 * q;
        if (left > 0) { // (no early exit: the loop unrolls and acc stays in registers)
            __mmask16 mk = below(left);
            float* cq = c + 16 * q;
            __m512 r = acc[q];
            if (accumulate) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mk, cq));
            _mm512_mask_storeu_ps(cq, mk, r);
        }
    }
}

// Wide tiles for one or two rows: m x (16 * v) with m * v = 8 accumulators, columns contiguous.
static inline __attribute__((always_inline)) void wtile(const int m, const int v, int k, const float* a,
                                                        const float* const* b, ptrdiff_t j, float* c, ptrdiff_t ldc,
                                                        int n, int accumulate) {
    __m512 acc[2][8];
#pragma GCC unroll 2
    for (int i = 0; i < m; i++)
#pragma GCC unroll 8
        for (int q = 0; q < v; q++) acc[i][q] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int p = 0; p < k; p++) {
        const float* bp = b[p] + j;
        __m512 ai[2];
        for (int i = 0; i < m; i++) ai[i] = _mm512_set1_ps(a[i]);
        for (int q = 0; q < v; q++) {
            __m512 bq = _mm512_loadu_ps(bp + 16 * q);
            for (int i = 0; i < m; i++) acc[i][q] = _mm512_fmadd_ps(ai[i], bq, acc[i][q]);
        }
        a += MR;
    }
    for (int i = 0; i < m; i++) store_wide_row(c + i * ldc, acc[i], v, n, accumulate);
}

static void wtile1(int k, const float* a, const float* const* b, ptrdiff_t j, float* c, ptrdiff_t ldc, int n, int acc) {
    wtile(1, 8, k, a, b, j, c, ldc, n, acc);
}
static void wtile2(int k, const float* a, const float* const* b, ptrdiff_t j, float* c, ptrdiff_t ldc, int n, int acc) {
    wtile(2, 4, k, a, b, j, c, ldc, n, acc);
}

// wtile1 where the B rows come in threes, each the previous one shifted by one float (the three taps
// of a kernel row in the flat planes of cpu_conv_flat.c): each 16-float vector of a triple's lowest
// row is loaded once and the two shifted vectors are cut from it and the next by valignd, so a
// triple costs one load per output vector instead of three (most of which crossed a cache line).
// The forward's rows go up by one float (taps kx = 0, 1, 2), the data gradient's down (its taps
// read dy at +1, 0, -1). The same products added in the same order as wtile1's, and no float read
// that wtile1 would not read.
static int rows_in_threes(int k, const float* const* b) { // +1 or -1: the step; 0: not threes
    if (k % 3) return 0;
    int up = 1, down = 1;
    for (int p = 0; p < k; p += 3) {
        up &= b[p + 1] == b[p] + 1 && b[p + 2] == b[p] + 2;
        down &= b[p + 1] == b[p] - 1 && b[p + 2] == b[p] - 2;
    }
    return up ? 1 : down ? -1 : 0;
}

static inline __attribute__((always_inline)) void threes(const int step, int k, const float* a, const float* const* b,
                                                         ptrdiff_t j, float* c, int n, int accumulate) {
    enum { V = 8 };
    __m512 acc[V];
#pragma GCC unroll 8
    for (int q = 0; q < V; q++) acc[q] = _mm512_setzero_ps();
    for (int p = 0; p < k; p += 3) {
        const float* bp = b[step > 0 ? p : p + 2] + j; // the triple's lowest row
        __m512 a0 = _mm512_set1_ps(a[0]), a1 = _mm512_set1_ps(a[MR]), a2 = _mm512_set1_ps(a[2 * MR]);
        __m512i cur = _mm512_loadu_si512(bp);
#pragma GCC unroll 8
        for (int q = 0; q < V; q++) {
            // the next vector; after the last only its first two floats are needed (what the
            // highest row reads)
            __m512i next = q + 1 < V ? _mm512_loadu_si512(bp + 16 * (q + 1)) : _mm512_maskz_loadu_epi32(0x3, bp + 16 * V);
            __m512 lowest = _mm512_castsi512_ps(cur), middle = _mm512_castsi512_ps(_mm512_alignr_epi32(next, cur, 1)),
                   highest = _mm512_castsi512_ps(_mm512_alignr_epi32(next, cur, 2));
            acc[q] = _mm512_fmadd_ps(a0, step > 0 ? lowest : highest, acc[q]); // row p
            acc[q] = _mm512_fmadd_ps(a1, middle, acc[q]);                       // row p + 1
            acc[q] = _mm512_fmadd_ps(a2, step > 0 ? highest : lowest, acc[q]); // row p + 2
            cur = next;
        }
        a += 3 * MR;
    }
    store_wide_row(c, acc, V, n, accumulate);
}

static void wtile1_threes_up(int k, const float* a, const float* const* b, ptrdiff_t j, float* c, int n, int acc) {
    threes(1, k, a, b, j, c, n, acc);
}
static void wtile1_threes_down(int k, const float* a, const float* const* b, ptrdiff_t j, float* c, int n, int acc) {
    threes(-1, k, a, b, j, c, n, acc);
}

static void indirect(int k, const float* a, const float* const* b, ptrdiff_t j, float* c, ptrdiff_t ldc, ptrdiff_t hi,
                     int m, int n, int accumulate) {
    if (n > 32) { // a wide tile (gemm_indirect asks for them only when m <= 2)
        int step = m == 1 ? rows_in_threes(k, b) : 0;
        if (step) (step > 0 ? wtile1_threes_up : wtile1_threes_down)(k, a, b, j, c, n, accumulate);
        else (m == 1 ? wtile1 : wtile2)(k, a, b, j, c, ldc, n, accumulate);
        return;
    }
    __mmask16 m0 = below(n), m1 = below(n - 16);
    (n > 16 ? ITILES32 : ITILES16)[m](k, a, b, j, c, ldc, hi, m0, m1, accumulate);
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

// One row against T triples of rows that step up by one float (a depthwise filter gradient at
// stride 1: dy against the three taps of each kernel row in the flat input planes): as in the
// three-tap tile (threes, above), each triple's vectors are loaded once from its lowest row and the
// two shifted vectors cut out by valignd, one load where dot_block makes three unaligned ones. Each accumulator
// adds the same products in the same order as dot_block's, and is reduced the same way; the masks
// keep every read inside what dot_block reads (a triple's rows span len + 2 floats) and zero the
// lanes past len as its masked loads do.

static inline __attribute__((always_inline)) void dot_threes(const int T, int len, const float* a,
                                                             const float* const* b, float* c) {
    __m512 acc[9], cur[3];
#pragma GCC unroll 9
    for (int j = 0; j < 3 * T; j++) acc[j] = _mm512_setzero_ps();
#pragma GCC unroll 3
    for (int g = 0; g < T; g++) cur[g] = _mm512_maskz_loadu_ps(below(len + 2), b[3 * g]);
    for (int t = 0; t < len; t += 16) {
        __mmask16 k = below(len - t), more = below(len + 2 - (t + 16));
        __m512 av = _mm512_maskz_loadu_ps(k, a + t);
#pragma GCC unroll 3
        for (int g = 0; g < T; g++) {
            __m512 next = _mm512_maskz_loadu_ps(more, b[3 * g] + t + 16);
            __m512i ci = _mm512_castps_si512(cur[g]), ni = _mm512_castps_si512(next);
            __m512 r1 = _mm512_castsi512_ps(_mm512_alignr_epi32(ni, ci, 1));
            __m512 r2 = _mm512_castsi512_ps(_mm512_alignr_epi32(ni, ci, 2));
            if (k != 0xFFFF) { // the last partial vector: lanes past len are zero, as dot_block loads them
                r1 = _mm512_maskz_mov_ps(k, r1), r2 = _mm512_maskz_mov_ps(k, r2);
                cur[g] = _mm512_maskz_mov_ps(k, cur[g]);
            }
            acc[3 * g] = _mm512_fmadd_ps(av, cur[g], acc[3 * g]);
            acc[3 * g + 1] = _mm512_fmadd_ps(av, r1, acc[3 * g + 1]);
            acc[3 * g + 2] = _mm512_fmadd_ps(av, r2, acc[3 * g + 2]);
            cur[g] = next;
        }
    }
#pragma GCC unroll 9
    for (int j = 0; j < 3 * T; j++) c[j] += _mm512_reduce_add_ps(acc[j]);
}

static void dot_threes1(int len, const float* a, const float* const* b, float* c) { dot_threes(1, len, a, b, c); }
static void dot_threes2(int len, const float* a, const float* const* b, float* c) { dot_threes(2, len, a, b, c); }
static void dot_threes3(int len, const float* a, const float* const* b, float* c) { dot_threes(3, len, a, b, c); }

static void dot(int m, int n, int len, const float* const* a, const float* const* b, float* c, ptrdiff_t ldc) {
    if (m == 1 && n <= 9 && rows_in_threes(n, b) > 0) {
        (n == 3 ? dot_threes1 : n == 6 ? dot_threes2 : dot_threes3)(len, a[0], b, c);
        return;
    }
    for (int i = 0; i < m; i += DM)
        for (int j = 0; j < n; j += DN) {
            int mi = m - i < DM ? m - i : DM, nj = n - j < DN ? n - j : DN;
            DOTS[mi][nj](len, a + i, b + j, c + i * ldc + j, ldc);
        }
}

// --- transposing pack: 16 x 16 blocks transposed in registers ------------------------------------

static void transpose(float* dst, int W, const float* const* src, int wn, int rn, float scale) {
    __m512 sc = _mm512_set1_ps(scale);
    for (int w0 = 0; w0 < wn; w0 += 16) {
        int wb = wn - w0 < 16 ? wn - w0 : 16;
        for (int r0 = 0; r0 < rn; r0 += 16) {
            __mmask16 rm = below(rn - r0), wm = below(wb);
            __m512 v[16]; // (loops fully unrolled, so v stays in registers)
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                v[i] = i < wb ? _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(rm, src[w0 + i] + r0)) : _mm512_setzero_ps();
            gemm_transpose16(v);
            int rb = rn - r0 < 16 ? rn - r0 : 16;
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                if (i < rb) _mm512_mask_storeu_ps(dst + (size_t)(r0 + i) * W + w0, wm, v[i]);
        }
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
    .indirect = indirect,
    .indirect_wide = {0, 128, 64},
    .dot = dot,
    .transpose = transpose,
};
