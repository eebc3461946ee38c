// The two small kernels of diagonalwise refactorization (nn/depthwise.c): building the
// block-diagonal weight of the grouped convolution, and keeping the diagonal of its gradient.
// The convolutions themselves are ordinary grouped ones (cuda_conv.cu).
#include "cuda_internal.h"

// wbig (c, g, kk): output channel o's g filters are zero except filter o % g, which is w[o] (c, 1, kk).
// Every element is written, so wbig needs no clearing.
static __global__ void dr_scatter_kernel(float* wbig, const float* w, int g, int kk, size_t total) {
    size_t row = (size_t)g * kk;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t o = i / row, r = i % row;
        size_t j = r / kk, t = r % kk;
        wbig[i] = j == o % g ? w[o * kk + t] : 0.0f;
    }
}

// dw (c, 1, kk) += the diagonal of dwbig (c, g, kk): filter o % g of output channel o.
static __global__ void dr_gather_kernel(float* dw, const float* dwbig, int g, int kk, size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t o = i / kk, t = i % kk;
        dw[i] += dwbig[(o * g + o % g) * kk + t];
    }
}

void cuda_dr_scatter(float* wbig, const float* w, int c, int g, int kk) {
    size_t total = (size_t)c * g * kk;
    if (!total) return;
    dr_scatter_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(wbig, w, g, kk, total);
    KERNEL_CHECK("dr_scatter_kernel");
}

void cuda_dr_gather(float* dw, const float* dwbig, int c, int g, int kk) {
    size_t total = (size_t)c * kk;
    if (!total) return;
    dr_gather_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(dw, dwbig, g, kk, total);
    KERNEL_CHECK("dr_gather_kernel");
}
