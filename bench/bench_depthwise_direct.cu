// BASELINE for bench-depthwise only: straightforward direct depthwise kernels on CUDA (one thread
// per output, per input, and a block per channel for the filter gradient). The project's depthwise
// layer never uses these: it is diagonalwise refactorization on cuDNN (nn/depthwise.c).
#include <cstdio>
#include <cstdlib>

#include "../kernels/cuda/cuda_stream.h"
#include "bench_depthwise.h"

#define CUDA_OK(call)                                                                               \
    do {                                                                                            \
        cudaError_t err_ = (call);                                                                  \
        if (err_ != cudaSuccess) {                                                                  \
            fprintf(stderr, "error (%s:%d): %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
            exit(1);                                                                                \
        }                                                                                           \
    } while (0)

__global__ void dw_forward(float* y, const float* x, const float* w, ConvShape s) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t total = (size_t)s.n * s.c_in * s.h_out * s.w_out;
    if (i >= total) return;
    int ox = i % s.w_out, oy = (i / s.w_out) % s.h_out;
    size_t plane = i / ((size_t)s.h_out * s.w_out);
    int c = plane % s.c_in;
    const float* in = x + plane * s.h * s.w;
    float acc = 0;
    for (int ky = 0; ky < 3; ky++) {
        int iy = oy * s.stride - s.pad + ky;
        if (iy < 0 || iy >= s.h) continue;
        for (int kx = 0; kx < 3; kx++) {
            int ix = ox * s.stride - s.pad + kx;
            if (ix >= 0 && ix < s.w) acc += w[c * 9 + ky * 3 + kx] * in[iy * s.w + ix];
        }
    }
    y[i] = acc;
}

__global__ void dw_backward_data(float* dx, const float* dy, const float* w, ConvShape s) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t total = (size_t)s.n * s.c_in * s.h * s.w;
    if (i >= total) return;
    int ix = i % s.w, iy = (i / s.w) % s.h;
    size_t plane = i / ((size_t)s.h * s.w);
    int c = plane % s.c_in;
    const float* out = dy + plane * s.h_out * s.w_out;
    float acc = 0;
    for (int ky = 0; ky < 3; ky++) {
        int ty = iy + s.pad - ky;
        if (ty < 0 || ty % s.stride) continue;
        int oy = ty / s.stride;
        if (oy >= s.h_out) continue;
        for (int kx = 0; kx < 3; kx++) {
            int tx = ix + s.pad - kx;
            if (tx < 0 || tx % s.stride) continue;
            int ox = tx / s.stride;
            if (ox < s.w_out) acc += w[c * 9 + ky * 3 + kx] * out[oy * s.w_out + ox];
        }
    }
    dx[i] = acc;
}

// One block per channel; each thread sums its share of (image, output pixel), then a tree reduction.
__global__ void dw_backward_filter(float* dw, const float* dy, const float* x, ConvShape s) {
    int c = blockIdx.x;
    float acc[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    int per_image = s.h_out * s.w_out;
    for (int j = threadIdx.x; j < s.n * per_image; j += blockDim.x) {
        int n = j / per_image, o = j % per_image, oy = o / s.w_out, ox = o % s.w_out;
        size_t plane = (size_t)n * s.c_in + c;
        float g = dy[plane * per_image + o];
        const float* in = x + plane * s.h * s.w;
#pragma unroll
        for (int ky = 0; ky < 3; ky++) {
            int iy = oy * s.stride - s.pad + ky;
#pragma unroll
            for (int kx = 0; kx < 3; kx++) {
                int ix = ox * s.stride - s.pad + kx;
                if (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w) acc[ky * 3 + kx] += in[iy * s.w + ix] * g;
            }
        }
    }
    __shared__ float part[9][256];
#pragma unroll
    for (int k = 0; k < 9; k++) part[k][threadIdx.x] = acc[k];
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride)
#pragma unroll
            for (int k = 0; k < 9; k++) part[k][threadIdx.x] += part[k][threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x < 9) dw[c * 9 + threadIdx.x] = part[threadIdx.x][0];
}

extern "C" void direct_depthwise_forward_cuda(float* y, const float* x, const float* w, const ConvShape* s) {
    size_t total = (size_t)s->n * s->c_in * s->h_out * s->w_out;
    dw_forward<<<(unsigned)((total + 255) / 256), 256, 0, drnet_cuda_stream()>>>(y, x, w, *s);
    CUDA_OK(cudaGetLastError());
}

extern "C" void direct_depthwise_backward_data_cuda(float* dx, const float* dy, const float* w, const ConvShape* s) {
    size_t total = (size_t)s->n * s->c_in * s->h * s->w;
    dw_backward_data<<<(unsigned)((total + 255) / 256), 256, 0, drnet_cuda_stream()>>>(dx, dy, w, *s);
    CUDA_OK(cudaGetLastError());
}

extern "C" void direct_depthwise_backward_filter_cuda(float* dw, const float* dy, const float* x, const ConvShape* s) {
    dw_backward_filter<<<s->c_in, 256, 0, drnet_cuda_stream()>>>(dw, dy, x, *s);
    CUDA_OK(cudaGetLastError());
}
