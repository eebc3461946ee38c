// Single-precision GEMM for the CPU backend: blocked so that a panel of B stays in cache while rows
// of A stream past it, with the innermost loop running along contiguous rows of B and C so the
// compiler vectorizes it. Transposed operands are first copied into row-major scratch.
#include <string.h>

#include "cpu_kernels.h"

#define KC 256 // rows of B (depth) per block
#define NC 512 // columns of B per block

// Copies op(X) (rows x cols, row-major result) from X stored transposed with leading dimension ld.
static void transpose_into(float* dst, const float* src, int rows, int cols, int ld) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)r * cols + c] = src[(size_t)c * ld + r];
}

void cpu_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float* A, int lda,
               const float* B, int ldb, float beta, float* C, int ldc) {
    if (M <= 0 || N <= 0) return;
    for (int i = 0; i < M; i++) {
        float* c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
    if (K <= 0 || alpha == 0.0f) return;
    if (transA) {
        float* a = cpu_scratch(2, (size_t)M * K);
        transpose_into(a, A, M, K, lda);
        A = a, lda = K;
    }
    if (transB) {
        float* b = cpu_scratch(3, (size_t)K * N);
        transpose_into(b, B, K, N, ldb);
        B = b, ldb = N;
    }
    for (int j0 = 0; j0 < N; j0 += NC) {
        int nb = N - j0 < NC ? N - j0 : NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kb = K - k0 < KC ? K - k0 : KC;
            for (int i = 0; i < M; i++) {
                float* restrict c = C + (size_t)i * ldc + j0;
                const float* a = A + (size_t)i * lda + k0;
                for (int k = 0; k < kb; k++) {
                    float av = alpha * a[k];
                    const float* restrict b = B + (size_t)(k0 + k) * ldb + j0;
                    for (int j = 0; j < nb; j++) c[j] += av * b[j];
                }
            }
        }
    }
}
