// BASELINE for bench-depthwise only: a straightforward direct depthwise convolution on the CPU
// (one plane per (image, channel), OpenMP across them). The project's depthwise layer never uses
// this: it is diagonalwise refactorization (nn/depthwise.c).
#include <string.h>

#include "../nn/util.h"
#include "bench_depthwise.h"

static void cpu_forward(float* y, const float* x, const float* w, const ConvShape* s) {
    int planes = s->n * s->c_in;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; p++) {
        int c = p % s->c_in;
        const float* in = x + (size_t)p * s->h * s->w;
        const float* k = w + (size_t)c * 9;
        float* out = y + (size_t)p * s->h_out * s->w_out;
        for (int oy = 0; oy < s->h_out; oy++)
            for (int ox = 0; ox < s->w_out; ox++) {
                float acc = 0;
                for (int ky = 0; ky < 3; ky++) {
                    int iy = oy * s->stride - s->pad + ky;
                    if (iy < 0 || iy >= s->h) continue;
                    for (int kx = 0; kx < 3; kx++) {
                        int ix = ox * s->stride - s->pad + kx;
                        if (ix >= 0 && ix < s->w) acc += k[ky * 3 + kx] * in[iy * s->w + ix];
                    }
                }
                out[oy * s->w_out + ox] = acc;
            }
    }
}

static void cpu_backward_data(float* dx, const float* dy, const float* w, const ConvShape* s) {
    int planes = s->n * s->c_in;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; p++) {
        int c = p % s->c_in;
        float* in = dx + (size_t)p * s->h * s->w;
        const float* k = w + (size_t)c * 9;
        const float* out = dy + (size_t)p * s->h_out * s->w_out;
        memset(in, 0, sizeof(float) * (size_t)s->h * s->w);
        for (int oy = 0; oy < s->h_out; oy++)
            for (int ox = 0; ox < s->w_out; ox++) {
                float g = out[oy * s->w_out + ox];
                for (int ky = 0; ky < 3; ky++) {
                    int iy = oy * s->stride - s->pad + ky;
                    if (iy < 0 || iy >= s->h) continue;
                    for (int kx = 0; kx < 3; kx++) {
                        int ix = ox * s->stride - s->pad + kx;
                        if (ix >= 0 && ix < s->w) in[iy * s->w + ix] += k[ky * 3 + kx] * g;
                    }
                }
            }
    }
}

static void cpu_backward_filter(float* dw, const float* dy, const float* x, const ConvShape* s) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < s->c_in; c++) {
        float acc[9] = {0};
        for (int n = 0; n < s->n; n++) {
            size_t p = (size_t)n * s->c_in + c;
            const float* in = x + p * s->h * s->w;
            const float* out = dy + p * s->h_out * s->w_out;
            for (int oy = 0; oy < s->h_out; oy++)
                for (int ox = 0; ox < s->w_out; ox++) {
                    float g = out[oy * s->w_out + ox];
                    for (int ky = 0; ky < 3; ky++) {
                        int iy = oy * s->stride - s->pad + ky;
                        if (iy < 0 || iy >= s->h) continue;
                        for (int kx = 0; kx < 3; kx++) {
                            int ix = ox * s->stride - s->pad + kx;
                            if (ix >= 0 && ix < s->w) acc[ky * 3 + kx] += in[iy * s->w + ix] * g;
                        }
                    }
                }
        }
        memcpy(dw + (size_t)c * 9, acc, sizeof(acc));
    }
}

#ifndef WITH_CUDA
void direct_depthwise_forward_cuda(float* y, const float* x, const float* w, const ConvShape* s) {
    (void)y, (void)x, (void)w, (void)s;
    nn_fatal("bench-depthwise: built without CUDA");
}
void direct_depthwise_backward_data_cuda(float* dx, const float* dy, const float* w, const ConvShape* s) {
    (void)dx, (void)dy, (void)w, (void)s;
    nn_fatal("bench-depthwise: built without CUDA");
}
void direct_depthwise_backward_filter_cuda(float* dw, const float* dy, const float* x, const ConvShape* s) {
    (void)dw, (void)dy, (void)x, (void)s;
    nn_fatal("bench-depthwise: built without CUDA");
}
#endif

// Host memory on the CPU and reference backends: the loops above; the CUDA kernels on the GPU.
static int on_gpu(const Backend* be) { return strcmp(be->name, "cuda") == 0; }

void direct_depthwise_forward(const Backend* be, float* y, const float* x, const float* w, const ConvShape* s) {
    if (on_gpu(be)) direct_depthwise_forward_cuda(y, x, w, s);
    else cpu_forward(y, x, w, s);
}
void direct_depthwise_backward_data(const Backend* be, float* dx, const float* dy, const float* w, const ConvShape* s) {
    if (on_gpu(be)) direct_depthwise_backward_data_cuda(dx, dy, w, s);
    else cpu_backward_data(dx, dy, w, s);
}
void direct_depthwise_backward_filter(const Backend* be, float* dw, const float* dy, const float* x, const ConvShape* s) {
    if (on_gpu(be)) direct_depthwise_backward_filter_cuda(dw, dy, x, s);
    else cpu_backward_filter(dw, dy, x, s);
}
