// The AVX512_BF16 GEMM micro-kernel: the AVX-512 kernel's 12 x 32 tile of C in 24 zmm registers, fed
// by vdpbf16ps. Per pair of reduction indices it loads one row of the packed B panel (32 words of two
// bf16 each, 2 zmm) and broadcasts the 12 words of the packed A panel, for 24 vdpbf16ps: each does two
// multiply-adds per lane, twice the work of an FMA, in the same registers and loads. Compiled for
// AVX512F + AVX512_BF16 (GCC target pragma; AVX512BW and VL too, which every CPU with AVX512_BF16 has) but
// run only when gemm_bf16_isa() has checked the CPU.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")
#include <immintrin.h>

#include "cpu_bf16_cvt.h"
#include "cpu_gemm.h"
#include "cpu_gemm_avx512_transpose.h"

enum { MR = 12, NR = 32 };

// Stores alpha * acc (or adds it to C with one FMA) for an m x (16 * halves) tile: columns 0-15 at c,
// 16-31 at c + hi, masked by m0/m1 past the tile's n columns.
static inline __attribute__((always_inline)) void store(const int m, const int halves, const __m512* c0,
                                                        const __m512* c1, float* c, ptrdiff_t ldc, ptrdiff_t hi,
                                                        __mmask16 m0, __mmask16 m1, float alpha, int accumulate) {
    __m512 al = _mm512_set1_ps(alpha);
#pragma GCC unroll 12
    for (int i = 0; i < m; i++) {
        float* ci = c + i * ldc;
        __m512 v0, v1 = c1[i];
        if (accumulate) {
            v0 = _mm512_fmadd_ps(al, c0[i], _mm512_maskz_loadu_ps(m0, ci));
            if (halves > 1) v1 = _mm512_fmadd_ps(al, c1[i], _mm512_maskz_loadu_ps(m1, ci + hi));
        } else {
            v0 = _mm512_mul_ps(al, c0[i]);
            if (halves > 1) v1 = _mm512_mul_ps(al, c1[i]);
        }
        _mm512_mask_storeu_ps(ci, m0, v0);
        if (halves > 1) _mm512_mask_storeu_ps(ci + hi, m1, v1);
    }
}

// One m x (16 * halves) tile over kp pairs; m and halves are compile-time constants in each instance,
// so the accumulators live in registers. The B panel is zero-padded past n: no masks in the loop.
static inline __attribute__((always_inline)) void tile(const int m, const int halves, int kp, const uint32_t* a,
                                                       const uint32_t* b, float* c, ptrdiff_t ldc, ptrdiff_t hi,
                                                       __mmask16 m0, __mmask16 m1, float alpha, int accumulate) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int i = 0; i < m; i++) c0[i] = c1[i] = _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int i = 0; i < m; i++) _mm_prefetch((const char*)(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
    for (int p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = halves > 1 ? (__m512bh)_mm512_load_si512(b + 16) : b0;
#pragma GCC unroll 12
        for (int i = 0; i < m; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
            c0[i] = _mm512_dpbf16_ps(c0[i], ai, b0);
            if (halves > 1) c1[i] = _mm512_dpbf16_ps(c1[i], ai, b1);
        }
        a += MR;
        b += NR;
    }
    store(m, halves, c0, c1, c, ldc, hi, m0, m1, alpha, accumulate);
}

#define INSTANCE(M)                                                                                          \
    static void tile##M##x32(int kp, const uint32_t* a, const uint32_t* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, \
                             __mmask16 m0, __mmask16 m1, float alpha, int acc) {                             \
        tile(M, 2, kp, a, b, c, ldc, hi, m0, m1, alpha, acc);                                                \
    }                                                                                                        \
    static void tile##M##x16(int kp, const uint32_t* a, const uint32_t* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, \
                             __mmask16 m0, __mmask16 m1, float alpha, int acc) {                             \
        tile(M, 1, kp, a, b, c, ldc, hi, m0, m1, alpha, acc);                                                \
    }
INSTANCE(1) INSTANCE(2) INSTANCE(3) INSTANCE(4) INSTANCE(5) INSTANCE(6)
INSTANCE(7) INSTANCE(8) INSTANCE(9) INSTANCE(10) INSTANCE(11) INSTANCE(12)
#undef INSTANCE

typedef void (*TileFn)(int, const uint32_t*, const uint32_t*, float*, ptrdiff_t, ptrdiff_t, __mmask16, __mmask16, float,
                       int);
static const TileFn TILES32[MR + 1] = {0, tile1x32, tile2x32, tile3x32, tile4x32, tile5x32, tile6x32,
                                       tile7x32, tile8x32, tile9x32, tile10x32, tile11x32, tile12x32};
static const TileFn TILES16[MR + 1] = {0, tile1x16, tile2x16, tile3x16, tile4x16, tile5x16, tile6x16,
                                       tile7x16, tile8x16, tile9x16, tile10x16, tile11x16, tile12x16};

// Columns past n (a tile at the right edge of C) are masked; n <= 16 runs the half-width tile.
static void kernel(int kp, const uint32_t* a, const uint32_t* b, float* c, ptrdiff_t ldc, ptrdiff_t hi, int m, int n,
                   float alpha, int accumulate) {
    __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
    __mmask16 m1 = n >= 32 ? 0xFFFF : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
    (n > 16 ? TILES32 : TILES16)[m](kp, a, b, c, ldc, hi, m0, m1, alpha, accumulate);
}

// gemm_bf16_pairs (cpu_gemm_bf16.c) by the CPU's own conversion, with the same bits: vcvtne2ps2bf16
// rounds 16 lanes of two rows at once (nearest, ties to even, NaN kept quiet: bf16_round), one word
// permute interleaves them into pairs: a third of the integer rounding's instructions, on shapes
// of small depth where packing is much of the GEMM's work. The one difference to make up is
// cpu_bf16_cvt.h's.

static inline __mmask16 lanes_below(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

// 32 bf16 operands: words 0-15 are lo's lanes, 16-31 hi's, each rounded as bf16_operand rounds.
static inline __m512i operands(__m512 lo, __m512 hi) {
    __m512i r = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    __mmask32 up = (__mmask32)bf16_cvt_rounds_up(lo) | (__mmask32)bf16_cvt_rounds_up(hi) << 16;
    return _mm512_mask_mov_epi16(r, up, _mm512_or_si512(r, _mm512_set1_epi16(0x0080)));
}

// 16 lanes of pairs: lane w = (l[w] low, h[w] high), each rounded to a bf16 operand.
static inline __m512i pair_lanes(__m512 l, __m512 h) {
    // pair w takes words w and 16 + w of operands()
    static const uint16_t order[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    return _mm512_permutexvar_epi16(_mm512_loadu_si512(order), operands(l, h));
}

void gemm_bf16_pairs_avx512(uint32_t* restrict dst, const float* restrict src, int rn, int W) {
    for (int p = 0; p < (rn + 1) / 2; p++) {
        const float *lo = src + (size_t)2 * p * W, *hi = lo + W;
        int has_hi = 2 * p + 1 < rn; // an odd depth ends with a zero high half
        for (int w = 0; w < W; w += 16) {
            __mmask16 m = lanes_below(W - w);
            __m512 l = _mm512_maskz_loadu_ps(m, lo + w), h = has_hi ? _mm512_maskz_loadu_ps(m, hi + w) : _mm512_setzero_ps();
            _mm512_mask_storeu_epi32(dst + (size_t)p * W + w, m, pair_lanes(l, h));
        }
    }
}

// Pairs straight from an operand whose lanes are adjacent in memory (activations as B: pixels along
// each channel row): lanes [w, w + len) of every pair row, from rows[r], the first of those lanes at
// reduction index r. The staged path would copy the same values into an FP32 panel first.
// From bf16 values (an activation stored in bf16) the pair is the two 16-bit values side by side:
// no rounding, two zero-extensions and a shift per 16 lanes, half the bytes read.
static void pairs_from_lanes_bf16(uint32_t* dst, int W, int w, int len, const uint16_t* const* rows, int rn) {
    for (int p = 0; p < (rn + 1) / 2; p++) {
        const uint16_t *lo = rows[2 * p], *hi = 2 * p + 1 < rn ? rows[2 * p + 1] : NULL;
        for (int t = 0; t < len; t += 16) {
            __mmask16 m = lanes_below(len - t);
            __m512i l = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, lo + t));
            __m512i h = hi ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, hi + t)) : _mm512_setzero_si512();
            _mm512_mask_storeu_epi32(dst + (size_t)p * W + w + t, m, _mm512_or_si512(l, _mm512_slli_epi32(h, 16)));
        }
    }
}

void gemm_bf16_pairs_from_lanes_avx512(uint32_t* dst, int W, int w, int len, const void* const* rows_any, int rn,
                                       int src_bf16) {
    if (src_bf16) {
        pairs_from_lanes_bf16(dst, W, w, len, (const uint16_t* const*)rows_any, rn);
        return;
    }
    const float* const* rows = (const float* const*)rows_any;
    for (int p = 0; p < (rn + 1) / 2; p++) {
        const float *lo = rows[2 * p], *hi = 2 * p + 1 < rn ? rows[2 * p + 1] : NULL;
        for (int t = 0; t < len; t += 16) {
            __mmask16 m = lanes_below(len - t);
            __m512 l = _mm512_maskz_loadu_ps(m, lo + t), h = hi ? _mm512_maskz_loadu_ps(m, hi + t) : _mm512_setzero_ps();
            _mm512_mask_storeu_epi32(dst + (size_t)p * W + w + t, m, pair_lanes(l, h));
        }
    }
}

// Pairs straight from lanes whose reduction indices are adjacent in memory (a filter gradient's
// operands: pixels along each channel): src[w] holds the n consecutive values of lane w, which are
// already in pair order (index 2p, then 2p + 1), so 32 of them convert into the 16 pairs of one
// register as they are loaded; a 16 x 16 transpose of 32-bit pairs then makes rows of the panel. One
// pass where the FP32 packer's transpose followed by pairs is two, over twice the data. dst:
// (ceil(n / 2), W); an odd n ends with a zero high half, lanes from wn to W are zero. From bf16 values
// (src_bf16) the 32 values are one load, already pairs in order.
void gemm_bf16_pairs_from_rows_avx512(uint32_t* dst, int W, const void* const* src_any, int wn, int n, int src_bf16) {
    const float* const* src = (const float* const*)src_any;
    const uint16_t* const* src16 = (const uint16_t* const*)src_any;
    int np = (n + 1) / 2;
    for (int w0 = 0; w0 < W; w0 += 16) {
        __mmask16 store = lanes_below(W - w0);
        for (int r = 0; r < n; r += 32) {
            __mmask16 m0 = lanes_below(n - r), m1 = lanes_below(n - r - 16);
            __m512 v[16]; // (loops fully unrolled, so v stays in registers)
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                if (w0 + i >= wn) {
                    v[i] = _mm512_setzero_ps();
                    continue;
                }
                if (src_bf16) {
                    __mmask32 m = (__mmask32)m0 | (__mmask32)m1 << 16;
                    v[i] = _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, src16[w0 + i] + r));
                    continue;
                }
                __m512 lo = _mm512_maskz_loadu_ps(m0, src[w0 + i] + r), hi = _mm512_maskz_loadu_ps(m1, src[w0 + i] + r + 16);
                v[i] = _mm512_castsi512_ps(operands(lo, hi)); // 32 consecutive values: 16 pairs in order
            }
            gemm_transpose16(v);
            int rows = np - r / 2 < 16 ? np - r / 2 : 16;
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                if (i < rows) _mm512_mask_storeu_ps(dst + (size_t)(r / 2 + i) * W + w0, store, v[i]);
        }
    }
}

// The 16 pairs of 32 / L consecutive runs of L bf16 values from p (pair k is pair k % (L/2) of run
// k / (L/2)); pairs from `pairs` on are zero. Runs of 16 values are two 256-bit loads; shorter ones
// one masked gather (idx: each pair's offset in pairs), which on Zen 4 loses to the two loads for
// 16-value runs and wins over run-by-run packing for 4-value ones.
static inline __attribute__((always_inline)) __m512 gather_runs(const uint16_t* p, int L, ptrdiff_t jump, __m512i idx, int pairs) {
    __mmask16 m = lanes_below(pairs);
    if (L == 16) {
        __m512i v = _mm512_castsi256_si512(_mm256_maskz_loadu_epi32((__mmask8)m, p));
        if (pairs > 8) v = _mm512_inserti64x4(v, _mm256_maskz_loadu_epi32((__mmask8)(m >> 8), p + jump), 1);
        return _mm512_castsi512_ps(v);
    }
    return _mm512_castsi512_ps(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, p, 4));
}

// pairs_from_rows for short runs of bf16 values (cpu_gemm.h): on 4x4 and 2x2 maps a run is 16 or 4
// values, so run by run each 16 x 16 transpose would make 8 or 2 pair rows of its 16. Here each lane
// loads the 16 pairs of 32 / L consecutive runs at once (gather_runs), and one transpose makes 16
// pair rows: the same panel (docs/results/cpu-bf16-wgrad-runs-ab.log times it in the network).
void gemm_bf16_pairs_from_runs_avx512(uint32_t* dst, int W, const uint16_t* const* src, int wn, int L, ptrdiff_t jump,
                                      int n) {
    int np = n / 2, half = L / 2;
    int32_t at[16]; // each pair's offset from the group's first value, in pairs (jump is even: L is)
    for (int k = 0; k < 16; k++) at[k] = (int32_t)((k / half) * (jump / 2) + k % half);
    __m512i idx = _mm512_loadu_si512(at);
    for (int w0 = 0; w0 < W; w0 += 16) {
        __mmask16 store = lanes_below(W - w0);
        for (int r = 0; r < n; r += 32) { // runs r / L to r / L + 32 / L
            int rows = np - r / 2 < 16 ? np - r / 2 : 16;
            ptrdiff_t first = (ptrdiff_t)(r / L) * jump;
            __m512 v[16]; // (loops fully unrolled, so v stays in registers)
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                v[i] = w0 + i < wn ? gather_runs(src[w0 + i] + first, L, jump, idx, rows) : _mm512_setzero_ps();
            gemm_transpose16(v);
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                if (i < rows) _mm512_mask_storeu_ps(dst + (size_t)(r / 2 + i) * W + w0, store, v[i]);
        }
    }
}

#pragma GCC pop_options

const GemmBf16Isa gemm_bf16_isa_avx512 = {
    .name = "avx512bf16",
    .mr = MR,
    .nr = NR,
    .mc = 240,  // A block 240 x 256 bf16 = 120 KiB in L2
    .kc = 256,  // the portable kernel's too: the same depth blocks give the same sums
    .nc = 3072, // B block 256 x 3072 bf16 = 1.5 MiB
    .kernel = kernel,
    .pairs = gemm_bf16_pairs_avx512,
    .pairs_from_rows = gemm_bf16_pairs_from_rows_avx512,
    .pairs_from_lanes = gemm_bf16_pairs_from_lanes_avx512,
    .pairs_from_runs = gemm_bf16_pairs_from_runs_avx512,
};
