// Computes kernels/ref/ref_ops.c's ReLU, pooling and SGD faster by the same loops over OpenMP
// threads, and ref_linear_forward/_backward through the GEMM (cpu_gemm.c); loss and metrics as ref.
//
// The CPU backend's remaining kernels: ReLU, pooling, linear, loss, metrics and SGD.
#include <float.h>
#include <math.h>
#include <string.h>

#include "../../nn/util.h"
#include "cpu_gemm.h"
#include "cpu_kernels.h"

void cpu_relu_forward(float* y, const float* x, size_t count) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void cpu_relu_backward(float* dx, const float* dy, const float* y, size_t count, int accumulate) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) {
        float v = y[i] > 0.0f ? dy[i] : 0.0f;
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

// Global average pooling (one window covering the whole plane, MobileNet's last pool): each plane's
// values summed in row order from 0 and scaled, as the general loop below does, without its bounds
// checks per element, which cost more than the 4 values of a 2x2 plane.
static int pool_is_global(const PoolShape* p) {
    return p->k == p->h && p->k == p->w && p->pad == 0 && p->h_out == 1 && p->w_out == 1;
}

void cpu_avgpool_forward(float* y, const float* x, const PoolShape* p) {
    int planes = p->n * p->c;
    float inv = 1.0f / (float)(p->k * p->k);
    if (pool_is_global(p)) {
        int hw = p->h * p->w;
#pragma omp parallel for schedule(static)
        for (int pl = 0; pl < planes; pl++) {
            const float* in = x + (size_t)pl * hw;
            float sum = 0.0f;
            for (int i = 0; i < hw; i++) sum += in[i];
            y[pl] = sum * inv;
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        const float* in = x + (size_t)pl * p->h * p->w;
        float* out = y + (size_t)pl * p->h_out * p->w_out;
        for (int oy = 0; oy < p->h_out; oy++)
            for (int ox = 0; ox < p->w_out; ox++) {
                float sum = 0.0f;
                for (int ky = 0; ky < p->k; ky++) {
                    int iy = oy * p->stride - p->pad + ky;
                    if (iy < 0 || iy >= p->h) continue;
                    for (int kx = 0; kx < p->k; kx++) {
                        int ix = ox * p->stride - p->pad + kx;
                        if (ix >= 0 && ix < p->w) sum += in[iy * p->w + ix];
                    }
                }
                out[oy * p->w_out + ox] = sum * inv;
            }
    }
}

void cpu_avgpool_backward(float* dx, const float* dy, const PoolShape* p, int accumulate) {
    int planes = p->n * p->c;
    float inv = 1.0f / (float)(p->k * p->k);
    if (pool_is_global(p)) { // every element gets dy / (h w): 0 + g, as the loop below adds g to a zeroed plane
        int hw = p->h * p->w;
#pragma omp parallel for schedule(static)
        for (int pl = 0; pl < planes; pl++) {
            float g = dy[pl] * inv, *in = dx + (size_t)pl * hw;
            for (int i = 0; i < hw; i++) in[i] = (accumulate ? in[i] : 0.0f) + g;
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        float* in = dx + (size_t)pl * p->h * p->w;
        const float* out = dy + (size_t)pl * p->h_out * p->w_out;
        if (!accumulate) memset(in, 0, (size_t)p->h * p->w * sizeof(float));
        for (int oy = 0; oy < p->h_out; oy++)
            for (int ox = 0; ox < p->w_out; ox++) {
                float g = out[oy * p->w_out + ox] * inv;
                for (int ky = 0; ky < p->k; ky++) {
                    int iy = oy * p->stride - p->pad + ky;
                    if (iy < 0 || iy >= p->h) continue;
                    for (int kx = 0; kx < p->k; kx++) {
                        int ix = ox * p->stride - p->pad + kx;
                        if (ix >= 0 && ix < p->w) in[iy * p->w + ix] += g;
                    }
                }
            }
    }
}

void cpu_maxpool_forward(float* y, int* argmax, const float* x, const PoolShape* p) {
    int planes = p->n * p->c;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        const float* in = x + (size_t)pl * p->h * p->w;
        size_t base = (size_t)pl * p->h_out * p->w_out;
        for (int oy = 0; oy < p->h_out; oy++)
            for (int ox = 0; ox < p->w_out; ox++) {
                float best = -INFINITY;
                int where = -1;
                for (int ky = 0; ky < p->k; ky++) {
                    int iy = oy * p->stride - p->pad + ky;
                    if (iy < 0 || iy >= p->h) continue;
                    for (int kx = 0; kx < p->k; kx++) {
                        int ix = ox * p->stride - p->pad + kx;
                        if (ix < 0 || ix >= p->w) continue;
                        float v = in[iy * p->w + ix];
                        if (where < 0 || v > best || isnan(v)) best = v, where = iy * p->w + ix;
                    }
                }
                y[base + oy * p->w_out + ox] = best;
                argmax[base + oy * p->w_out + ox] = where;
            }
    }
}

void cpu_maxpool_backward(float* dx, const float* dy, const int* argmax, const PoolShape* p, int accumulate) {
    int planes = p->n * p->c;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        float* in = dx + (size_t)pl * p->h * p->w;
        size_t base = (size_t)pl * p->h_out * p->w_out;
        if (!accumulate) memset(in, 0, (size_t)p->h * p->w * sizeof(float));
        for (int o = 0; o < p->h_out * p->w_out; o++)
            if (argmax[base + o] >= 0) in[argmax[base + o]] += dy[base + o];
    }
}

// C (M, N) = alpha op(A) op(B) + beta C as cpu_sgemm, in the backend's precision (cpu_gemm_product).
static void linear_gemm(int transA, int transB, int M, int N, int K, const float* A, int lda, const float* B,
                        int ldb, float beta, float* C, int ldc) {
    GemmOperand a = gemm_a_matrix(A, lda, transA), b = gemm_b_matrix(B, ldb, transB);
    GemmOut c = gemm_c_matrix(C, ldc);
    cpu_gemm_product(M, N, K, 1.0f, &a, &b, beta, &c);
}

void cpu_linear_forward(float* y, const float* x, const float* w, const float* b, int n, int in, int out) {
    linear_gemm(0, 1, n, out, in, x, in, w, in, 0.0f, y, out);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < out; j++) y[(size_t)i * out + j] += b[j];
}

void cpu_linear_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                         const float* w, int n, int in, int out, int accumulate_dx) {
    if (dx) linear_gemm(0, 0, n, in, out, dy, out, w, in, accumulate_dx ? 1.0f : 0.0f, dx, in);
    linear_gemm(1, 0, out, in, n, dy, out, x, in, 1.0f, dw, in);
    for (int j = 0; j < out; j++) {
        float sum = 0.0f;
        for (int i = 0; i < n; i++) sum += dy[(size_t)i * out + j];
        db[j] += sum;
    }
}

static void check_label(int label, int classes, int row) {
    if (label < 0 || label >= classes)
        nn_fatal("cross-entropy: label %d of batch row %d is outside 0..%d", label, row, classes - 1);
}

void cpu_cross_entropy_forward(float* loss, float* probs, const float* logits, const int* labels,
                               int n, int classes) {
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float* z = logits + (size_t)i * classes;
        float* p = probs + (size_t)i * classes;
        check_label(labels[i], classes, i);
        float m = -FLT_MAX;
        for (int j = 0; j < classes; j++) m = z[j] > m ? z[j] : m;
        double sum = 0.0;
        for (int j = 0; j < classes; j++) sum += exp((double)z[j] - m);
        double lse = m + log(sum);
        for (int j = 0; j < classes; j++) p[j] = (float)exp((double)z[j] - lse);
        total += lse - z[labels[i]];
    }
    *loss = (float)(total / n);
}

void cpu_cross_entropy_backward(float* dlogits, const float* dloss, const float* probs,
                                const int* labels, int n, int classes, int accumulate) {
    float scale = dloss[0] / (float)n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < classes; j++) {
            size_t k = (size_t)i * classes + j;
            float v = scale * (probs[k] - (j == labels[i] ? 1.0f : 0.0f));
            dlogits[k] = accumulate ? dlogits[k] + v : v;
        }
}

void cpu_metrics_accumulate(float* loss_sum, int* correct, const float* loss, const float* logits,
                            const int* labels, int n, int classes) {
    *loss_sum += loss[0] * (float)n;
    for (int i = 0; i < n; i++) {
        const float* z = logits + (size_t)i * classes;
        int best = 0;
        for (int j = 1; j < classes; j++)
            if (z[j] > z[best]) best = j;
        *correct += best == labels[i];
    }
}

void cpu_sgd_step(float* p, float* buf, const float* g, size_t count, float lr, float momentum,
                  float weight_decay, int nesterov) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) {
        float d = g[i] + weight_decay * p[i];
        float b = momentum * buf[i] + d;
        buf[i] = b;
        p[i] -= lr * (nesterov ? d + momentum * b : b);
    }
}
