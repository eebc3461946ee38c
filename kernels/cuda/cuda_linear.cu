// The linear layer through cuBLAS. cuBLAS is column-major; a row-major (r, c) array is the
// column-major (c, r) array, its transpose. So each row-major product below is computed as the
// column-major product of the transposes: y = x w^T  <=>  y^T = w x^T, and so on.
// The bias and its gradient are small kernels (the bias-gradient one sums in the CPU's order).
#include "cuda_internal.h"

static const float ONE = 1.0f, ZERO = 0.0f; // cuBLAS alpha and beta (host pointer mode)

// y (n, out) += b (out) broadcast over rows.
static __global__ void add_bias_kernel(float* y, const float* b, int out, size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        y[i] += b[i % out];
}

// db (out) += column sums of dy (n, out); thread j walks column j top to bottom.
static __global__ void bias_grad_kernel(float* db, const float* dy, int n, int out) {
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < out; j += gridDim.x * blockDim.x) {
        float sum = 0.0f;
        for (int i = 0; i < n; i++) sum += dy[(size_t)i * out + j];
        db[j] += sum;
    }
}

// y (n, out) = x (n, in) * w^T + b, w (out, in).
void cuda_linear_forward(float* y, const float* x, const float* w, const float* b, int n, int in, int out) {
    if (n <= 0 || out <= 0) return;
    // Column-major: y^T (out, n) = op(w) (out, in) * x^T (in, n), where w's memory is w^T (in, out).
    CUBLAS_CHECK(cublasSgemm(g_cuda.cublas, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &ONE, w, in, x, in, &ZERO, y, out));
    LIBRARY_DONE("cublasSgemm (linear forward)");
    size_t total = (size_t)n * out;
    add_bias_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(y, b, out, total);
    KERNEL_CHECK("add_bias_kernel");
}

// dx (n, in) = dy (n, out) * w (+= with accumulate_dx); dw (out, in) += dy^T * x; db (out) += sum over rows of dy.
void cuda_linear_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                          const float* w, int n, int in, int out, int accumulate_dx) {
    if (n <= 0 || out <= 0 || in <= 0) return;
    if (dx) {
        // Column-major: dx^T (in, n) = w^T (in, out) * dy^T (out, n); both are stored as they are needed.
        CUBLAS_CHECK(cublasSgemm(g_cuda.cublas, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &ONE, w, in, dy, out,
                                 accumulate_dx ? &ONE : &ZERO, dx, in));
        LIBRARY_DONE("cublasSgemm (linear backward-data)");
    }
    // Column-major: dw^T (in, out) += x^T (in, n) * dy (n, out), dy's memory being dy^T (out, n).
    CUBLAS_CHECK(cublasSgemm(g_cuda.cublas, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &ONE, x, in, dy, out, &ONE, dw, in));
    LIBRARY_DONE("cublasSgemm (linear backward-weight)");
    bias_grad_kernel<<<cuda_grid((size_t)out, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(db, dy, n, out);
    KERNEL_CHECK("bias_grad_kernel");
}
