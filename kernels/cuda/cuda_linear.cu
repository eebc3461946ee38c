// The linear layer through cuBLAS. cuBLAS is column-major; a row-major (r, c) array is the
// column-major (c, r) array, its transpose. So each row-major product below is computed as the
// column-major product of the transposes: y = x w^T  <=>  y^T = w x^T, and so on.
// The bias and its gradient are small kernels (the bias-gradient one sums in the CPU's order).
// In bf16 mode (cuda_bf16.cu) the two factors of each product are rounded into bf16 copies and
// cublasGemmEx multiplies them with FP32 compute into the FP32 result, as the CPU does.
#include "cuda_internal.h"

static const float ONE = 1.0f, ZERO = 0.0f; // cuBLAS alpha and beta (host pointer mode)

// C (m, n) = alpha op(A) op(B) + beta C, column-major, as cublasSgemm; in bf16 mode A (a_elems) and
// B (b_elems) are first rounded to bf16 and cublasGemmEx multiplies those with FP32 compute.
static void gemm(const char* what, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float* A,
                 int lda, size_t a_elems, const float* B, int ldb, size_t b_elems, const float* beta, float* C, int ldc) {
    if (!g_cuda.bf16) {
        CUBLAS_CHECK(cublasSgemm(g_cuda.cublas, ta, tb, m, n, k, &ONE, A, lda, B, ldb, beta, C, ldc));
    } else {
        const uint16_t* a = cuda_bf16_operand(CUDA_BF16_A, A, a_elems);
        const uint16_t* b = cuda_bf16_operand(CUDA_BF16_B, B, b_elems);
        CUBLAS_CHECK(cublasGemmEx(g_cuda.cublas, ta, tb, m, n, k, &ONE, a, CUDA_R_16BF, lda, b, CUDA_R_16BF, ldb,
                                  beta, C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    LIBRARY_DONE(what);
}

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
    gemm("linear forward GEMM", CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, w, in, (size_t)out * in, x, in,
         (size_t)n * in, &ZERO, y, out);
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
        gemm("linear backward-data GEMM", CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w, in, (size_t)out * in, dy, out,
             (size_t)n * out, accumulate_dx ? &ONE : &ZERO, dx, in);
    }
    // Column-major: dw^T (in, out) += x^T (in, n) * dy (n, out), dy's memory being dy^T (out, n).
    gemm("linear backward-weight GEMM", CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, x, in, (size_t)n * in, dy, out,
         (size_t)n * out, &ONE, dw, in);
    bias_grad_kernel<<<cuda_grid((size_t)out, CUDA_BLOCK), CUDA_BLOCK, 0, g_cuda.stream>>>(db, dy, n, out);
    KERNEL_CHECK("bias_grad_kernel");
}
