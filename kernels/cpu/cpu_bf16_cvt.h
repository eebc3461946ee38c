// Part of rounding to bf16 as nn/bf16.h's bf16_operand does (the reference's rule), by AVX512_BF16's
// conversion: the one correction that conversion needs, shared by every AVX-512 kernel that uses it
// (the GEMM's pair packers, the k x k convolutions' plane copies, batch norm's bf16 store).
//
// vcvtneps2bf16 (and vcvtne2ps2bf16) round a normal float to nearest even with the carry and keep a
// NaN quiet, as bf16_round does, but read a denormal input as a zero of its sign. bf16_operand rounds
// first and flushes after, so the two differ only on the denormals that round up to the smallest
// normal, 2^-126: |x| in [0x007F8000, 0x007FFFFF] (exponent zero, the seven fraction bits bf16 keeps
// and the next one all ones). Those lanes get 2^-126's exponent bit (0x0080 in the bf16) back.
//
// Include where AVX-512F is enabled (a target pragma); the conversion itself is the includer's.
#ifndef KERNELS_CPU_BF16_CVT_H
#define KERNELS_CPU_BF16_CVT_H

#include <immintrin.h>

// The lanes of x whose conversion must get 2^-126's exponent bit back.
static inline __attribute__((always_inline)) __mmask16 bf16_cvt_rounds_up(__m512 x) {
    return _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFF8000)),
                                   _mm512_set1_epi32(0x007F8000));
}

#endif
