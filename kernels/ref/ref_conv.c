// Convolution by its defining sum, and the weight plumbing of diagonalwise refactorization.
//
// One convolution, three loops over the same products. With cig = c_in / groups input channels and
// cog = c_out / groups output channels per group, output channel o reads the input channels
// [first_in(o), first_in(o) + cig), and tap (ky, kx) of output pixel (oy, ox) reads input pixel
//     iy = oy * stride - pad + ky,   ix = ox * stride - pad + kx      (zero outside the plane).
// The forward sums those products into y; backward-data sums, for each input pixel, the products
// that read it (with dy in place of x); backward-filter sums, for each weight, the products that
// used it. A depthwise layer arrives here as a grouped convolution with a block-diagonal weight
// (nn/depthwise.c): this sum then does every multiply-add of the zero blocks too, which is g times
// the depthwise work, and is exactly what the tuned backends are checked against. Every factor goes
// through ref_factor: itself, or in bf16 mode its bf16 rounding (ref_kernels.h); every result through
// ref_conv_result (rounded to bf16 too only as CUDA's oracle).
#include "ref_kernels.h"

// The first input channel of output channel o's group.
static int first_in(const ConvShape* s, int o) { return o / (s->c_out / s->groups) * (s->c_in / s->groups); }

static int inside(const ConvShape* s, int iy, int ix) { return iy >= 0 && iy < s->h && ix >= 0 && ix < s->w; }

// Value number `at` of x or dy, whether stored as floats or as bf16 values (s->x_bf16, s->dy_bf16).
static float input_at(const float* x, const ConvShape* s, size_t at) {
    return s->x_bf16 ? bf16_float(((const uint16_t*)x)[at]) : x[at];
}
static float grad_at(const float* dy, const ConvShape* s, size_t at) {
    return s->dy_bf16 ? bf16_float(((const uint16_t*)dy)[at]) : dy[at];
}

// y[n][o][oy][ox] = sum over i < cig, ky, kx of x[n][first_in(o) + i][iy][ix] * w[o][i][ky][kx]
// x (n, c_in, h, w), w (c_out, cig, k, k), y (n, c_out, h_out, w_out).
void ref_conv2d_forward(float* y, const float* x, const float* w, const ConvShape* s) {
    int cig = s->c_in / s->groups, k = s->k;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->c_out; o++)
            for (int oy = 0; oy < s->h_out; oy++)
                for (int ox = 0; ox < s->w_out; ox++) {
                    double sum = 0.0;
                    for (int i = 0; i < cig; i++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
                                if (!inside(s, iy, ix)) continue;
                                sum += ref_factor(input_at(x, s, ref_at(n, first_in(s, o) + i, iy, ix, s->c_in, s->h, s->w))) *
                                       ref_factor(w[ref_at(o, i, ky, kx, cig, k, k)]);
                            }
                    y[ref_at(n, o, oy, ox, s->c_out, s->h_out, s->w_out)] = (float)ref_conv_result(sum);
                }
}

// dx[n][c][iy][ix] (+)= sum over the outputs o of c's group and the taps (ky, kx) that read
// (iy, ix), i.e. oy = (iy + pad - ky) / stride and ox = (ix + pad - kx) / stride divide exactly and
// land inside y, of dy[n][o][oy][ox] * w[o][c - first_in(o)][ky][kx]: the forward's products with
// dy in place of x. dy (n, c_out, h_out, w_out), w (c_out, cig, k, k), dx (n, c_in, h, w).
void ref_conv2d_backward_data(float* dx, const float* dy, const float* w, const ConvShape* s, int accumulate) {
    int cig = s->c_in / s->groups, cog = s->c_out / s->groups, k = s->k;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < s->n; n++)
        for (int c = 0; c < s->c_in; c++)
            for (int iy = 0; iy < s->h; iy++)
                for (int ix = 0; ix < s->w; ix++) {
                    double sum = 0.0;
                    for (int o = c / cig * cog; o < (c / cig + 1) * cog; o++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int ty = iy + s->pad - ky, tx = ix + s->pad - kx; // = oy * stride, ox * stride
                                if (ty < 0 || tx < 0 || ty % s->stride || tx % s->stride) continue;
                                int oy = ty / s->stride, ox = tx / s->stride;
                                if (oy >= s->h_out || ox >= s->w_out) continue;
                                sum += ref_factor(grad_at(dy, s, ref_at(n, o, oy, ox, s->c_out, s->h_out, s->w_out))) *
                                       ref_factor(w[ref_at(o, c % cig, ky, kx, cig, k, k)]);
                            }
                    float* out = &dx[ref_at(n, c, iy, ix, s->c_in, s->h, s->w)];
                    *out = accumulate ? (float)(*out + ref_conv_result(sum)) : (float)ref_conv_result(sum);
                }
}

// dw[o][i][ky][kx] (+)= sum over n, oy, ox of dy[n][o][oy][ox] * x[n][first_in(o) + i][iy][ix]
// dy (n, c_out, h_out, w_out), x (n, c_in, h, w), dw (c_out, cig, k, k).
void ref_conv2d_backward_filter(float* dw, const float* dy, const float* x, const ConvShape* s, int accumulate) {
    int cig = s->c_in / s->groups, k = s->k;
#pragma omp parallel for collapse(2) schedule(static)
    for (int o = 0; o < s->c_out; o++)
        for (int i = 0; i < cig; i++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    double sum = 0.0;
                    for (int n = 0; n < s->n; n++)
                        for (int oy = 0; oy < s->h_out; oy++)
                            for (int ox = 0; ox < s->w_out; ox++) {
                                int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
                                if (!inside(s, iy, ix)) continue;
                                sum += ref_factor(grad_at(dy, s, ref_at(n, o, oy, ox, s->c_out, s->h_out, s->w_out))) *
                                       ref_factor(input_at(x, s, ref_at(n, first_in(s, o) + i, iy, ix, s->c_in, s->h, s->w)));
                            }
                    float* out = &dw[ref_at(o, i, ky, kx, cig, k, k)];
                    *out = accumulate ? (float)(*out + ref_conv_result(sum)) : (float)ref_conv_result(sum);
                }
}

// The block-diagonal weight of diagonalwise refactorization (picture: nn/depthwise.c). Output
// channel o is input j = o % g of its group of g, so its filter goes there and the others are zero:
//   wbig[o][j] = (j == o % g) ? w[o] : 0       w (c, 1, kk), wbig (c, g, kk)
void ref_dr_scatter(float* wbig, const float* w, int c, int g, int kk) {
    for (int o = 0; o < c; o++)
        for (int j = 0; j < g; j++)
            for (int t = 0; t < kk; t++)
                wbig[((size_t)o * g + j) * kk + t] = j == o % g ? w[(size_t)o * kk + t] : 0.0f;
}

// Only the diagonal of the dense filter gradient belongs to the layer's weight:
//   dw[o] += dwbig[o][o % g]                   dwbig (c, g, kk), dw (c, 1, kk)
void ref_dr_gather(float* dw, const float* dwbig, int c, int g, int kk) {
    for (int o = 0; o < c; o++)
        for (int t = 0; t < kk; t++) dw[(size_t)o * kk + t] += dwbig[((size_t)o * g + o % g) * kk + t];
}
