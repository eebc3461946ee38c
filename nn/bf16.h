// bfloat16 rounding, shared by every backend that offers bf16 mixed precision (BackendOptions.bf16):
// the reference backend rounds with these functions where the tuned CPU kernels do, so it can be
// their oracle bit for bit in the operands.
//
// bfloat16 is the upper half of an FP32: sign, the same 8 exponent bits, 7 fraction bits. It keeps
// FP32's range with 8 significant bits, so rounding to nearest moves a value by at most 2^-8 of
// itself (half of the 2^-7 step between bf16 numbers in [1, 2)). A product of two bf16 values has at
// most 16 significant bits, so it is exact in FP32: an FP32 FMA on bf16-valued floats multiplies
// exactly as vdpbf16ps does.
#ifndef NN_BF16_H
#define NN_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// The CUDA backend compiles these same functions into its conversion kernel (kernels/cuda/cuda_bf16.cu),
// so every backend rounds alike; for C and the CPU emulator they are plain inline functions.
#ifdef __CUDACC__
#define BF16_FN static inline __host__ __device__
#else
#define BF16_FN static inline
#endif

// x rounded to the nearest bf16, ties to even: what PyTorch's float -> bfloat16 conversion does.
// Adding 0x7FFF plus the lowest kept bit rounds at bit 16 and carries into the exponent where it must
// (the largest finite floats round to Inf). A NaN is truncated with its quiet bit set: truncation
// alone would turn a NaN whose payload lies only in the low bits into Inf. Written as a select, not a
// branch, so that loops over it vectorize.
BF16_FN uint16_t bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16, nan = (u >> 16) | 0x0040u;
    return (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

// The FP32 value of a bf16 (exact: bf16 is a prefix of FP32).
BF16_FN float bf16_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof(x));
    return x;
}

// What a bf16 product multiplies: x rounded to bf16, then a denormal (|x| < 2^-126) replaced by a zero
// of its sign. vdpbf16ps treats denormal inputs as zero whatever MXCSR says (DAZ); flushing them when
// rounding gives every other path the same operands.
BF16_FN uint16_t bf16_operand(float x) {
    uint16_t h = bf16_round(x);
    return (h & 0x7F80u) == 0 ? (uint16_t)(h & 0x8000u) : h;
}

// The same operand as an FP32 value: what the reference backend multiplies in bf16 mode, and what
// the CPU's k x k convolutions round their planes to. bf16_float(bf16_operand(x)), computed in the
// 32-bit domain (bf16_round's carry and NaN rule, bf16_operand's flush, the low half cleared) so that
// loops over it vectorize without narrowing to 16 bits and back, with the same bits for
// all 2^32 inputs (checked exhaustively when it was written; test_conv_flat_bf16 checks every exponent
// and sign with the rounding boundaries of the low half).
BF16_FN float bf16_operand_value(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u, nan = (u | 0x00400000u) & 0xFFFF0000u;
    r = (u & 0x7FFFFFFFu) > 0x7F800000u ? nan : r;
    r = (r & 0x7F800000u) == 0 ? (r & 0x80000000u) : r;
    memcpy(&x, &r, sizeof(x));
    return x;
}

// Value i of a tensor that holds floats, or (bf16 nonzero) bf16 values as uint16_t: a tensor the
// engine stores in bf16 (Tensor.bf16) keeps its float pointer, so every reader that takes both
// finds its values through this. (Host code only: the CUDA backend has no bf16-stored tensors.)
#ifndef __CUDACC__
static inline const void* bf16_or_float_at(const void* p, ptrdiff_t i, int bf16) {
    return bf16 ? (const void*)((const uint16_t*)p + i) : (const void*)((const float*)p + i);
}
#endif

#endif
