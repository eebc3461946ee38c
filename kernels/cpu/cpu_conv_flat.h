// Part of computing kernels/ref/ref_conv.c's convolutions faster: the vector copies that build the
// zero-padded planes (ref_conv2d_forward's "zero outside the plane") without per-pixel branches.
//
// AVX-512 copies between NCHW planes and the flat planes of cpu_conv_flat.c (cpu_conv_flat_avx512.c).
#ifndef KERNELS_CPU_CONV_FLAT_H
#define KERNELS_CPU_CONV_FLAT_H

#include <stddef.h>
#include <stdint.h>

// Where the values of a plane go in a flat plane of `plane` floats: bit l of mask[i] says whether lane
// l of the flat plane's i-th 16-float vector holds a value (else padding, or a grid position that is
// dropped); offset[i] is the index of that vector's first value among the plane's values.
#define FLAT_MAX_VECTORS 1024
typedef struct FlatMasks {
    int plane;
    uint16_t mask[FLAT_MAX_VECTORS];
    int32_t offset[FLAT_MAX_VECTORS];
} FlatMasks;

// How the copies below treat the values (round): FLAT_EXACT copies them; the other two round each to
// a bf16 operand as it is copied (nn/bf16.h's bf16_operand_value, bit for bit), by integer arithmetic
// on any AVX-512 CPU or, faster, by AVX512_BF16's conversion. flat_round_mode_avx512: the faster one
// this CPU runs. FLAT_FROM_BF16: the source holds bf16 values (uint16_t: an activation stored in bf16,
// ConvShape.x_bf16), widened exactly as they are copied; its offsets and strides count those values.
enum { FLAT_EXACT = 0, FLAT_ROUND_INT = 1, FLAT_ROUND_CVT = 2, FLAT_FROM_BF16 = 3 };
int flat_round_mode_avx512(void);
// The mode cpu_conv_flat.c's copies use in bf16 mode: -1 (the default) for flat_round_mode_avx512's,
// else the one given (tests run both).
void cpu_conv_flat_set_rounding(int mode);

// `planes` planes: dst (plane floats each, dst_stride apart) = the values of a source plane
// (consecutive, src_stride apart) spread as the masks say, zeros elsewhere.
void flat_expand_avx512(float* dst, size_t dst_stride, const void* src, size_t src_stride, int planes,
                        const FlatMasks* fm, int round);
// The reverse: dst (consecutive values, dst_stride apart) (+)= the selected lanes of each grid plane.
void flat_compress_avx512(float* dst, size_t dst_stride, const float* grid, size_t grid_stride, int planes,
                          const FlatMasks* fm, int accumulate);
// Stride 2: the plane src (h, w) into the four phase planes ph + (2a + b) * phase_stride (rows of ws
// floats, already zero): element (y, x) goes to phase ((y + pad) % 2, (x + pad) % 2) at
// ((y + pad) / 2, (x + pad) / 2).
void flat_split2_avx512(float* ph, size_t phase_stride, int ws, const void* src, int h, int w, int pad, int round);
// flat_split2_avx512 for `planes` planes of at most 64 values (h * w <= 64), src_stride values
// apart, into phase planes of hs x ws = plane <= 64 floats, `plane` apart: the phase planes written
// whole, zeros included (they need not be zeroed first).
void flat_split2_small_avx512(float* ph, size_t phase_stride, int plane, int hs, int ws, const void* src,
                              size_t src_stride, int planes, int h, int w, int pad, int round);
// x (n) rounded in place to bf16 operands, 16 lanes at a time, as the two copies above round
// (FLAT_ROUND_INT or FLAT_ROUND_CVT).
void flat_round_bf16_avx512(float* x, size_t n, int round);
// The reverse interleave of four output grids (rows of ws floats): dst[y][x] (+)= grid[2 (y % 2) + x % 2]
// at (y / 2, x / 2), for the (h, w) plane dst.
void flat_merge2_avx512(float* dst, int h, int w, const float* const grid[4], int ws, int accumulate);

// flat_merge2_avx512 for `planes` planes of at most 64 values (h * w <= 64, ((h-1)/2) * ws + (w-1)/2
// < 32), dst_stride apart, their grids grid_stride after the four given.
void flat_merge2_small_avx512(float* dst, size_t dst_stride, int h, int w, const float* const grid[4],
                              size_t grid_stride, int ws, int planes, int accumulate);

#endif
