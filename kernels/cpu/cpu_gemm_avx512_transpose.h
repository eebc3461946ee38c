// The 16 x 16 in-register transpose of 32-bit elements that the AVX-512 packers share: FP32 panels
// (cpu_gemm_avx512.c) and bf16 pairs (cpu_gemm_avx512bf16.c). Include only where AVX-512 code is
// being compiled (after the files' target pragma).
#ifndef KERNELS_CPU_GEMM_AVX512_TRANSPOSE_H
#define KERNELS_CPU_GEMM_AVX512_TRANSPOSE_H

#include <immintrin.h>

// r[i] holds row i (16 floats); afterwards r[j] holds column j.
static inline __attribute__((always_inline)) void gemm_transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    // r[4q + e] now holds, in each 128-bit lane l, column e of rows 4l'.. of block q; regroup lanes
    for (int e = 0; e < 4; e++) {
        __m512 a0 = _mm512_shuffle_f32x4(r[e], r[4 + e], 0x88), a1 = _mm512_shuffle_f32x4(r[e], r[4 + e], 0xdd);
        __m512 a2 = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0x88), a3 = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0xdd);
        t[e] = _mm512_shuffle_f32x4(a0, a2, 0x88);
        t[8 + e] = _mm512_shuffle_f32x4(a0, a2, 0xdd);
        t[4 + e] = _mm512_shuffle_f32x4(a1, a3, 0x88);
        t[12 + e] = _mm512_shuffle_f32x4(a1, a3, 0xdd);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

#endif
