// Part of computing kernels/ref/ref_conv.c's convolutions faster: the zero padding of the reference's
// sum, done once per plane by masked AVX-512 expand/compress instead of a bounds check per product.
//
// AVX-512 copies between NCHW planes and the flat planes of cpu_conv_flat.c, where plain loops lose
// to the shape of the data:
//  - small maps (rows of 2 to 8 floats): a padded plane is cut into 16-float vectors; mask bit l of
//    vector i says whether lane l holds a value of the source plane (else padding or a dropped grid
//    position). The source values being consecutive, one expand fills a vector of the padded plane
//    (zeros included) and one compress gathers a grid vector's valid lanes.
//  - stride 2: splitting rows into even and odd columns (the phase planes), and writing a phase back
//    to every other column, are two-register permutes instead of strided scalar accesses.
// Compiled for AVX-512 (target pragma); runs only when gemm_isa() chose AVX-512.
#include "../../nn/bf16.h"

#pragma GCC push_options
#pragma GCC target("avx512f")
#include <immintrin.h>

#include "cpu_bf16_cvt.h"
#include "cpu_conv_flat.h"

static inline __mmask16 below(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

// Each lane rounded to a bf16 operand, as nn/bf16.h's bf16_operand_value (the same steps on 16 lanes):
// ties to even with the carry into the exponent, NaN kept quiet, a result with a zero exponent
// flushed to a zero of its sign, the low half cleared. Done as the planes are copied, so that bf16
// mode costs no extra pass over them. Eleven integer instructions per vector, which on small maps,
// where the copies cost as much as the arithmetic, is what makes a depthwise layer slower in bf16
// than in FP32 (docs/cpu-performance.md has the measurements).
static inline __m512 bf16_operand_int(__m512 x) {
    const __m512i hi = _mm512_set1_epi32((int)0xFFFF0000u), exp = _mm512_set1_epi32(0x7F800000);
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_and_si512(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), hi);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)), exp);
    r = _mm512_mask_and_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x00400000)), hi);
    __mmask16 tiny = _mm512_testn_epi32_mask(r, exp);
    r = _mm512_mask_and_epi32(r, tiny, r, _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(r);
}

// The same value from AVX512_BF16's conversion, in five instructions: vcvtneps2bf16 and the one
// correction it needs (cpu_bf16_cvt.h). Written as inline assembly so that this file still compiles
// for (and runs on) AVX-512 CPUs without AVX512_BF16: it is only called where the CPU has it
// (flat_round_mode).
static inline __m512 bf16_operand_cvt(__m512 x) {
    __m256i h;
    __asm__("vcvtneps2bf16 %1, %0" : "=v"(h) : "v"(x));
    __m512i r = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
    return _mm512_castsi512_ps(_mm512_mask_or_epi32(r, bf16_cvt_rounds_up(x), r, _mm512_set1_epi32(0x00800000)));
}

// n (0 to 16) bf16 values at p, widened exactly to floats; lanes from n on are zero. A full vector is
// one 32-byte load. A partial one (the rows of 8x8, 4x4 and 2x2 maps) loads its whole pairs as
// masked 32-bit lanes (AVX-512F has no masked 16-bit load; no byte past the values is read) and
// inserts an odd last value: staging the values in a zeroed array instead made every such load wait
// for a failed store forwarding, which doubled the time of the stride-2 depthwise layers on small maps.
static inline __m512 widen_bf16(const uint16_t* p, int n) {
    __m256i h = n >= 16 ? _mm256_loadu_si256((const __m256i*)p)
                        : _mm512_castsi512_si256(_mm512_maskz_loadu_epi32(below(n / 2), p));
    __m512i r = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
    if (n < 16 && (n & 1)) r = _mm512_mask_set1_epi32(r, (__mmask16)(1u << (n - 1)), (int)((uint32_t)p[n - 1] << 16));
    return _mm512_castsi512_ps(r);
}

// n (0 to 16) values of the source at element i, as floats (FLAT_FROM_BF16: widened), lanes from n on zero.
static inline __attribute__((always_inline)) __m512 load_values(const void* src, size_t i, int n, int round) {
    if (round == FLAT_FROM_BF16) return widen_bf16((const uint16_t*)src + i, n);
    return _mm512_maskz_loadu_ps(below(n < 0 ? 0 : n), (const float*)src + i);
}

// round is a constant wherever this is inlined (always_inline, below): each copy loop is compiled
// once per mode, with no test inside it. A value widened from bf16 is already an operand.
static inline __attribute__((always_inline)) __m512 round_lanes(__m512 x, int round) {
    return round == FLAT_ROUND_CVT ? bf16_operand_cvt(x) : round == FLAT_ROUND_INT ? bf16_operand_int(x) : x;
}

int flat_round_mode_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") ? FLAT_ROUND_CVT : FLAT_ROUND_INT;
}

static inline __attribute__((always_inline)) void round_loop(float* x, size_t n, int round) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = below(n - i < 16 ? (int)(n - i) : 16);
        _mm512_mask_storeu_ps(x + i, m, round_lanes(_mm512_maskz_loadu_ps(m, x + i), round));
    }
}

void flat_round_bf16_avx512(float* x, size_t n, int round) {
    if (round == FLAT_ROUND_CVT) round_loop(x, n, FLAT_ROUND_CVT);
    else round_loop(x, n, FLAT_ROUND_INT);
}

// Each vector's source offset comes from the table (a prefix sum of the masks' popcounts) rather
// than from the previous vector: no loop-carried dependency, so the loads stream.
//
// In bf16 mode a plane's values are rounded before they are padded, not after: rounding the padded
// vectors rounds the padding too (a 4x4 map's 16 values fill three vectors of its 6x6 plane), and on
// Zen 4 rounding a vector right after its expand is slow whatever the rounding method (the copy of a
// 32x32 or a 2x2 plane took about three times as long as the unrounded copy), while rounding the
// values first in a tight loop costs far less. Where the rounded values go:
//  - at most 16 (4x4 and 2x2 maps): one register, each padded vector's values cut out of it by a
//    one-register permute;
//  - up to ROUND_FIRST_MAX (32x32 maps): an aligned buffer in L1 (4 KiB). Each expand's 16 source
//    values start at any offset, so they are not reloaded from that offset (a load that straddles
//    two just-stored vectors cannot be forwarded from the stores and waits for them to reach the
//    cache: on 4x4 maps that stall cost more than the rounding itself) but cut out of the two
//    aligned vectors that hold them by one two-register permute;
//  - larger planes: each padded vector is rounded after its expand.
// A plane stored in bf16 (FLAT_FROM_BF16) is widened, which costs two instructions, not rounded:
// beyond 16 values it is expanded straight from the source as an exact copy is (through the buffer,
// the 32x32 depthwise layer took 7.0 ms a step instead of 5.7 on Zen 4).
enum { ROUND_FIRST_MAX = 1024 }; // values

// Lane indices off, off + 1, ..., off + 15: a permute by them cuts 16 consecutive values out of a
// register (indices taken mod 16) or out of two (mod 32).
static inline __m512i lanes_from(int off) {
    return _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                            _mm512_set1_epi32(off));
}

// The 16 floats at buf + off, from the aligned vectors buf[16j] and buf[16j + 16] that hold them.
static inline __m512 window16(const float* buf, int off) {
    const float* v = buf + (off & ~15);
    return _mm512_permutex2var_ps(_mm512_load_ps(v), lanes_from(off & 15), _mm512_load_ps(v + 16));
}

static inline __attribute__((always_inline)) void expand_loop(float* dst, size_t dst_stride, const void* src,
                                                              size_t src_stride, int planes, const FlatMasks* fm,
                                                              int round) {
    int plane = fm->plane, nvec = (plane + 15) / 16;
    int values = fm->offset[nvec - 1] + __builtin_popcount(fm->mask[nvec - 1]);
    if (round != FLAT_EXACT && values <= 16) { // the rounded (or widened) values in one register
        for (int p = 0; p < planes; p++) {
            const void* s = bf16_or_float_at(src, (ptrdiff_t)(p * src_stride), round == FLAT_FROM_BF16);
            float* d = dst + (size_t)p * dst_stride;
            __m512 r = round_lanes(load_values(s, 0, values, round), round);
            for (int i = 0; i < nvec; i++)
                _mm512_mask_storeu_ps(d + 16 * i, below(plane - 16 * i),
                                      _mm512_maskz_expand_ps(fm->mask[i], _mm512_permutexvar_ps(lanes_from(fm->offset[i]), r)));
        }
        return;
    }
    if ((round == FLAT_ROUND_INT || round == FLAT_ROUND_CVT) && values <= ROUND_FIRST_MAX) { // the rounded values in a buffer
        // (+ the two vectors that window16 may read past the values, for an offset at or near the
        // end: zeros, never expanded into the plane)
        float rounded[ROUND_FIRST_MAX + 32] __attribute__((aligned(64)));
        for (int i = (values + 15) / 16 * 16; i < (values + 15) / 16 * 16 + 32; i += 16)
            _mm512_store_ps(rounded + i, _mm512_setzero_ps());
        for (int p = 0; p < planes; p++) {
            const void* s = bf16_or_float_at(src, (ptrdiff_t)(p * src_stride), round == FLAT_FROM_BF16);
            float* d = dst + (size_t)p * dst_stride;
            for (int i = 0; i < values; i += 16)
                _mm512_store_ps(rounded + i, round_lanes(load_values(s, (size_t)i, values - i, round), round));
            for (int i = 0; i < nvec; i++)
                _mm512_mask_storeu_ps(d + 16 * i, below(plane - 16 * i),
                                      _mm512_maskz_expand_ps(fm->mask[i], window16(rounded, fm->offset[i])));
        }
        return;
    }
    for (int p = 0; p < planes; p++) { // exact, widened, or planes beyond 32x32 rounded after the expand
        const void* s = bf16_or_float_at(src, (ptrdiff_t)(p * src_stride), round == FLAT_FROM_BF16);
        float* d = dst + (size_t)p * dst_stride;
        for (int i = 0; i < nvec; i++) {
            __mmask16 m = fm->mask[i];
            // register form: the memory form of vexpandps is microcoded on Intel cores
            __m512 v = _mm512_maskz_expand_ps(m, load_values(s, (size_t)fm->offset[i], __builtin_popcount(m), round));
            _mm512_mask_storeu_ps(d + 16 * i, below(plane - 16 * i), round_lanes(v, round));
        }
    }
}

void flat_expand_avx512(float* dst, size_t dst_stride, const void* src, size_t src_stride, int planes,
                        const FlatMasks* fm, int round) {
    if (round == FLAT_FROM_BF16) expand_loop(dst, dst_stride, src, src_stride, planes, fm, FLAT_FROM_BF16);
    else if (round == FLAT_ROUND_CVT) expand_loop(dst, dst_stride, src, src_stride, planes, fm, FLAT_ROUND_CVT);
    else if (round == FLAT_ROUND_INT) expand_loop(dst, dst_stride, src, src_stride, planes, fm, FLAT_ROUND_INT);
    else expand_loop(dst, dst_stride, src, src_stride, planes, fm, FLAT_EXACT);
}

void flat_compress_avx512(float* dst, size_t dst_stride, const float* grid, size_t grid_stride, int planes,
                          const FlatMasks* fm, int accumulate) {
    int plane = fm->plane, nvec = (plane + 15) / 16;
    for (int p = 0; p < planes; p++) {
        const float* g = grid + (size_t)p * grid_stride;
        float* d = dst + (size_t)p * dst_stride;
        for (int i = 0; i < nvec; i++) {
            __mmask16 m = fm->mask[i];
            if (!m) continue;
            __mmask16 out = below(__builtin_popcount(m));
            float* di = d + fm->offset[i];
            __m512 v = _mm512_maskz_compress_ps(m, _mm512_maskz_loadu_ps(m, g + 16 * i));
            if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(out, di));
            _mm512_mask_storeu_ps(di, out, v);
        }
    }
}

static inline __attribute__((always_inline)) void split2_loop(float* ph, size_t phase_stride, int ws, const void* src,
                                                              int h, int w, int pad, int round) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    // Column x = 2i (even) lands in phase column be at v = i + ve; x = 2i + 1 in phase bo at i + vo.
    int be = pad & 1, bo = be ^ 1, ve = pad >> 1, vo = (pad + 1) >> 1;
    for (int y = 0; y < h; y++) {
        int a = (y + pad) & 1, u = (y + pad) >> 1;
        float* re = ph + (size_t)(2 * a + be) * phase_stride + (size_t)u * ws + ve;
        float* ro = ph + (size_t)(2 * a + bo) * phase_stride + (size_t)u * ws + vo;
        size_t sr = (size_t)y * w; // the row's first element
        for (int x = 0; x < w; x += 32) {
            int n = w - x;
            __m512 lo = load_values(src, sr + x, n < 16 ? n : 16, round);
            __m512 hi = load_values(src, sr + x + 16, n > 32 ? 16 : n > 16 ? n - 16 : 0, round);
            lo = round_lanes(lo, round), hi = round_lanes(hi, round);
            _mm512_mask_storeu_ps(re + x / 2, below((n + 1) / 2), _mm512_permutex2var_ps(lo, even, hi));
            _mm512_mask_storeu_ps(ro + x / 2, below(n / 2), _mm512_permutex2var_ps(lo, odd, hi));
        }
    }
}

void flat_split2_avx512(float* ph, size_t phase_stride, int ws, const void* src, int h, int w, int pad, int round) {
    if (round == FLAT_FROM_BF16) split2_loop(ph, phase_stride, ws, src, h, w, pad, FLAT_FROM_BF16);
    else if (round == FLAT_ROUND_CVT) split2_loop(ph, phase_stride, ws, src, h, w, pad, FLAT_ROUND_CVT);
    else if (round == FLAT_ROUND_INT) split2_loop(ph, phase_stride, ws, src, h, w, pad, FLAT_ROUND_INT);
    else split2_loop(ph, phase_stride, ws, src, h, w, pad, FLAT_EXACT);
}

// The same split for planes of at most 64 values (8x8 maps and smaller), `planes` of them: the whole
// plane in (up to) four registers, each 16-float vector of each phase plane (zeros included) cut out
// of them by permutes (one two-register permute per pair of source registers it draws on, blended),
// and stored whole. The rows of such maps hold 2 to 8 values, so split2_loop's per-row work (two
// loads, two permutes, two stores and the addressing, for a few values) was what these layers cost;
// and phase planes written whole need no zeroing first.
enum { SMALL_VECTORS = 4 }; // source registers, and vectors per phase plane
static inline __attribute__((always_inline)) void split2_small_loop(float* ph, size_t phase_stride, int plane, int hs,
                                                                    int ws, const void* src, size_t src_stride,
                                                                    int planes, int h, int w, int pad, int round) {
    enum { V = SMALL_VECTORS };
    int values = h * w, nsrc = (values + 15) / 16, nvec = (plane + 15) / 16;
    __m512i idx[4][V];
    __mmask16 keep[4][V], upper[4][V]; // lanes that hold a value; lanes whose value is in registers 2-3
    for (int p4 = 0; p4 < 4; p4++)
        for (int i = 0; i < nvec; i++) {
            int a = p4 >> 1, b = p4 & 1, lane[16] = {0};
            keep[p4][i] = upper[p4][i] = 0;
            for (int l = 0; l < 16 && 16 * i + l < hs * ws; l++) {
                int e = 16 * i + l, r = 2 * (e / ws) + a - pad, c = 2 * (e % ws) + b - pad;
                if (r < 0 || r >= h || c < 0 || c >= w) continue;
                lane[l] = (r * w + c) & 31;
                keep[p4][i] |= (__mmask16)(1u << l);
                if (r * w + c >= 32) upper[p4][i] |= (__mmask16)(1u << l);
            }
            idx[p4][i] = _mm512_loadu_si512(lane);
        }
    for (int p = 0; p < planes; p++) {
        const void* sp = bf16_or_float_at(src, (ptrdiff_t)(p * src_stride), round == FLAT_FROM_BF16);
        __m512 r[V];
        for (int j = 0; j < V; j++)
            r[j] = j < nsrc ? round_lanes(load_values(sp, (size_t)16 * j, values - 16 * j < 16 ? values - 16 * j : 16, round), round)
                            : _mm512_setzero_ps();
        for (int p4 = 0; p4 < 4; p4++)
            for (int i = 0; i < nvec; i++) {
                __m512 v = _mm512_permutex2var_ps(r[0], idx[p4][i], r[1]);
                if (nsrc > 2) v = _mm512_mask_blend_ps(upper[p4][i], v, _mm512_permutex2var_ps(r[2], idx[p4][i], r[3]));
                _mm512_mask_storeu_ps(ph + (size_t)p4 * phase_stride + (size_t)p * plane + 16 * i,
                                      below(plane - 16 * i), _mm512_maskz_mov_ps(keep[p4][i], v));
            }
    }
}

void flat_split2_small_avx512(float* ph, size_t phase_stride, int plane, int hs, int ws, const void* src,
                              size_t src_stride, int planes, int h, int w, int pad, int round) {
    if (round == FLAT_FROM_BF16) split2_small_loop(ph, phase_stride, plane, hs, ws, src, src_stride, planes, h, w, pad, FLAT_FROM_BF16);
    else if (round == FLAT_ROUND_CVT) split2_small_loop(ph, phase_stride, plane, hs, ws, src, src_stride, planes, h, w, pad, FLAT_ROUND_CVT);
    else if (round == FLAT_ROUND_INT) split2_small_loop(ph, phase_stride, plane, hs, ws, src, src_stride, planes, h, w, pad, FLAT_ROUND_INT);
    else split2_small_loop(ph, phase_stride, plane, hs, ws, src, src_stride, planes, h, w, pad, FLAT_EXACT);
}

void flat_merge2_avx512(float* dst, int h, int w, const float* const grid[4], int ws, int accumulate) {
    // out lanes 0..15 take g0[0], g1[0], g0[1], g1[1], ...; lanes 16..31 the next 8 of each
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(8));
    for (int y = 0; y < h; y++) {
        int a = y & 1, u = y >> 1;
        const float* g0 = grid[2 * a] + (size_t)u * ws;     // columns 0, 2, 4, ...
        const float* g1 = grid[2 * a + 1] + (size_t)u * ws; // columns 1, 3, 5, ...
        float* d = dst + (size_t)y * w;
        for (int x = 0; x < w; x += 32) {
            int n = w - x;
            __m512 e = _mm512_maskz_loadu_ps(below((n + 1) / 2), g0 + x / 2);
            __m512 o = _mm512_maskz_loadu_ps(below(n / 2), g1 + x / 2);
            __m512 v0 = _mm512_permutex2var_ps(e, lo_idx, o), v1 = _mm512_permutex2var_ps(e, hi_idx, o);
            __mmask16 m0 = below(n), m1 = below(n > 16 ? n - 16 : 0);
            if (accumulate) {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, d + x));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, d + x + 16));
            }
            _mm512_mask_storeu_ps(d + x, m0, v0);
            _mm512_mask_storeu_ps(d + x + 16, m1, v1);
        }
    }
}

// flat_merge2_avx512 for `planes` planes of at most 64 values (8x8 maps and smaller), whose pixels
// come from the first 32 elements of each phase grid: each grid in two registers, and each 16-float
// vector of the plane four two-register permutes (one per grid, at the same element index) blended by
// which grid each lane takes, stored whole, instead of two loads, two permutes and two stores per row
// of 2 to 8 values.
void flat_merge2_small_avx512(float* dst, size_t dst_stride, int h, int w, const float* const grid[4],
                              size_t grid_stride, int ws, int planes, int accumulate) {
    enum { V = SMALL_VECTORS };
    int values = h * w, nvec = (values + 15) / 16, need = 0;
    __m512i idx[V];
    __mmask16 from[V][4]; // lanes taken from grid g
    for (int i = 0; i < nvec; i++) {
        int lane[16] = {0};
        for (int g = 0; g < 4; g++) from[i][g] = 0;
        for (int l = 0; l < 16 && 16 * i + l < values; l++) {
            int y = (16 * i + l) / w, x = (16 * i + l) % w, e = (y >> 1) * ws + (x >> 1);
            lane[l] = e;
            from[i][2 * (y & 1) + (x & 1)] |= (__mmask16)(1u << l);
            if (e + 1 > need) need = e + 1;
        }
        idx[i] = _mm512_loadu_si512(lane);
    }
    __mmask16 lo = below(need), hi = need > 16 ? below(need - 16) : 0;
    for (int p = 0; p < planes; p++) {
        size_t at = (size_t)p * grid_stride;
        __m512 g0[4], g1[4]; // elements 0-15 and 16-31 of each grid
        for (int g = 0; g < 4; g++) {
            g0[g] = _mm512_maskz_loadu_ps(lo, grid[g] + at);
            g1[g] = need > 16 ? _mm512_maskz_loadu_ps(hi, grid[g] + at + 16) : _mm512_setzero_ps();
        }
        float* d = dst + (size_t)p * dst_stride;
        for (int i = 0; i < nvec; i++) {
            __m512 v = _mm512_permutex2var_ps(g0[0], idx[i], g1[0]);
            for (int g = 1; g < 4; g++)
                v = _mm512_mask_blend_ps(from[i][g], v, _mm512_permutex2var_ps(g0[g], idx[i], g1[g]));
            __mmask16 out = below(values - 16 * i);
            if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(out, d + 16 * i));
            _mm512_mask_storeu_ps(d + 16 * i, out, v);
        }
    }
}

#pragma GCC pop_options
