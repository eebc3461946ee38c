// AVX-512 copies between NCHW planes and the flat planes of cpu_conv_flat.c (cpu_conv_flat_avx512.c).
#ifndef KERNELS_CPU_CONV_FLAT_H
#define KERNELS_CPU_CONV_FLAT_H

#include <stddef.h>
#include <stdint.h>

// `planes` planes: dst (plane floats each, dst_stride apart) = the source plane's values (consecutive,
// src_stride apart) spread over the lanes that masks select (bit l of masks[i]: lane l of the plane's
// i-th 16-float vector), zeros elsewhere.
void flat_expand_avx512(float* dst, size_t dst_stride, const float* src, size_t src_stride, int planes,
                        const uint16_t* masks, int plane);
// The reverse: dst (consecutive values, dst_stride apart) (+)= the lanes of each grid plane that masks
// select.
void flat_compress_avx512(float* dst, size_t dst_stride, const float* grid, size_t grid_stride, int planes,
                          const uint16_t* masks, int plane, int accumulate);
// Stride 2: the plane src (h, w) into the four phase planes ph + (2a + b) * phase_stride (rows of ws
// floats, already zero): element (y, x) goes to phase ((y + pad) % 2, (x + pad) % 2) at
// ((y + pad) / 2, (x + pad) / 2).
void flat_split2_avx512(float* ph, size_t phase_stride, int ws, const float* src, int h, int w, int pad);
// The reverse interleave of four output grids (rows of ws floats): dst[y][x] (+)= grid[2 (y % 2) + x % 2]
// at (y / 2, x / 2), for the (h, w) plane dst.
void flat_merge2_avx512(float* dst, int h, int w, const float* const grid[4], int ws, int accumulate);

#endif
