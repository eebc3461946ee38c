// Computes kernels/ref/ref_conv.c (ref_conv2d_forward, _backward_data, _backward_filter,
// ref_dr_scatter, ref_dr_gather) faster: each defining sum becomes one GEMM over the whole batch,
// read in place through strided views (1x1) or flat phase planes (k x k, cpu_conv_flat.c).
//
// Convolution on the CPU: every pass is a GEMM (cpu_gemm.c); this file chooses the lowering.
//
// 1x1 convolutions (stride 1, no padding: MobileNet's pointwise layers, ~95% of its arithmetic) need
// no lowering at all: for group g, with P = h*w pixels per image,
//   forward:         y[:, g] (co, n*P)   = w[g] (co, ci)        * x[:, g] (ci, n*P)
//   backward-data:   dx[:, g] (ci, n*P)  = w[g]^T (ci, co)      * dy[:, g] (co, n*P)
//   backward-filter: dw[g] (co, ci)     += dy[:, g] (co, n*P)   * x[:, g]^T (n*P, ci)
// where (c, n*P) is the whole batch seen through an NCHW view (cpu_gemm.h: columns jump from image
// to image), so the late layers with 4x4 and 2x2 maps still make one GEMM of 2048 or 512 columns
// instead of 128 tiny ones. Every other convolution (3x3 stem, the depthwise layers run as grouped
// convolutions by diagonalwise refactorization, any stride and padding) goes through flat phase
// planes (cpu_conv_flat.c). In bf16 mode (cpu_bf16) the 1x1 GEMMs are cpu_gemm_bf16's, which round
// both operands as they pack them; an input or output gradient stored in bf16 (ConvShape.x_bf16,
// dy_bf16) is an operand of bf16 values (GemmOperand.bf16), packed without rounding.
#include <string.h>

#include "../../nn/bf16.h"
#include "cpu_conv.h"
#include "cpu_gemm.h"
#include "cpu_kernels.h"

static int is_pointwise(const ConvShape* s) { return s->k == 1 && s->stride == 1 && s->pad == 0; }

// The first value of channel c0 of an (n, C, P) tensor stored as floats or (bf16) bf16 values.
static const float* channel_start(const float* t, int P, int c0, int bf16) {
    return (const float*)bf16_or_float_at(t, (ptrdiff_t)c0 * P, bf16);
}
// The batch's channels [c0, c0 + c) of an (n, C, P) tensor as a (c, n*P) matrix.
static GemmOperand channels_by_pixels(const float* t, int C, int P, int c0, int bf16) {
    return (GemmOperand){.p = channel_start(t, P, c0, bf16), .free = {1, P, (ptrdiff_t)C * P}, .red = gemm_axis(P),
                         .bf16 = bf16};
}
static GemmOut out_channels_by_pixels(float* t, int C, int P, int c0) {
    return (GemmOut){.p = t + (size_t)c0 * P, .row = gemm_axis(P), .col = {1, P, (ptrdiff_t)C * P}};
}
// The same channels with the pixels as the depth (reduction) index: the operands of a filter gradient.
static GemmOperand pixels_by_channels(const float* t, int C, int P, int c0, int bf16) {
    return (GemmOperand){.p = channel_start(t, P, c0, bf16), .free = gemm_axis(P), .red = {1, P, (ptrdiff_t)C * P},
                         .bf16 = bf16};
}

void cpu_conv2d_forward(float* y, const float* x, const float* w, const ConvShape* s) {
    if (!is_pointwise(s)) {
        cpu_conv_flat_forward(y, x, w, s);
        return;
    }
    int G = s->groups, ci = s->c_in / G, co = s->c_out / G, P = s->h * s->w;
    for (int g = 0; g < G; g++) {
        GemmOperand A = gemm_a_matrix(w + (size_t)g * co * ci, ci, 0);
        GemmOperand B = channels_by_pixels(x, s->c_in, P, g * ci, s->x_bf16);
        GemmOut C = out_channels_by_pixels(y, s->c_out, P, g * co);
        cpu_gemm_product(co, s->n * P, ci, 1.0f, &A, &B, 0.0f, &C);
    }
}

void cpu_conv2d_backward_data(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate) {
    if (!is_pointwise(s)) {
        cpu_conv_flat_backward_data(dx, dy, w, s, accumulate);
        return;
    }
    int G = s->groups, ci = s->c_in / G, co = s->c_out / G, P = s->h * s->w;
    for (int g = 0; g < G; g++) {
        GemmOperand A = gemm_a_matrix(w + (size_t)g * co * ci, ci, 1); // w[g]^T
        GemmOperand B = channels_by_pixels(dy, s->c_out, P, g * co, s->dy_bf16);
        GemmOut C = out_channels_by_pixels(dx, s->c_in, P, g * ci);
        cpu_gemm_product(ci, s->n * P, co, 1.0f, &A, &B, accumulate ? 1.0f : 0.0f, &C);
    }
}

void cpu_conv2d_backward_filter(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate) {
    if (!is_pointwise(s)) {
        cpu_conv_flat_backward_filter(dw, dy, x, s, accumulate);
        return;
    }
    int G = s->groups, ci = s->c_in / G, co = s->c_out / G, P = s->h * s->w;
    for (int g = 0; g < G; g++) {
        GemmOperand A = pixels_by_channels(dy, s->c_out, P, g * co, s->dy_bf16); // dy[:, g] (co, n*P), depth along pixels
        GemmOperand B = pixels_by_channels(x, s->c_in, P, g * ci, s->x_bf16); // x[:, g]^T (n*P, ci)
        GemmOut C = gemm_c_matrix(dw + (size_t)g * co * ci, ci);
        cpu_gemm_product(co, ci, s->n * P, 1.0f, &A, &B, accumulate ? 1.0f : 0.0f, &C);
    }
}

// Diagonalwise refactorization's weight plumbing (nn/depthwise.c): the block-diagonal weight is
// an ordinary dense grouped-convolution weight to everything above.
void cpu_dr_scatter(float* wbig, const float* w, int c, int g, int kk) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < c; o++) {
        float* row = wbig + (size_t)o * g * kk; // output channel o: its g input filters
        memset(row, 0, (size_t)g * kk * sizeof(float));
        memcpy(row + (size_t)(o % g) * kk, w + (size_t)o * kk, (size_t)kk * sizeof(float));
    }
}

void cpu_dr_gather(float* dw, const float* dwbig, int c, int g, int kk) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < c; o++) {
        const float* diag = dwbig + ((size_t)o * g + (size_t)(o % g)) * kk;
        for (int i = 0; i < kk; i++) dw[(size_t)o * kk + i] += diag[i];
    }
}
