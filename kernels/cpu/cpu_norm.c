// Batch normalization on the CPU, one channel per loop iteration (channels spread over threads),
// statistics accumulated in double so that large batches lose nothing to rounding.
#include <math.h>

#include "cpu_kernels.h"

void cpu_batchnorm_forward_train(float* y, float* mean, float* invstd, float* running_mean,
                                 float* running_var, const float* x, const float* gamma,
                                 const float* beta, int n, int c, int hw, float momentum, float eps,
                                 int relu) {
    double count = (double)n * hw;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            const float* p = x + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) sum += p[j];
        }
        double mu = sum / count, sq = 0.0;
        for (int i = 0; i < n; i++) {
            const float* p = x + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                double d = p[j] - mu;
                sq += d * d;
            }
        }
        double var = sq / count; // biased: what normalizes
        float is = (float)(1.0 / sqrt(var + eps));
        mean[ch] = (float)mu;
        invstd[ch] = is;
        running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * (float)mu;
        running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * (float)(var * count / (count - 1.0));
        float scale = gamma[ch] * is, shift = beta[ch] - (float)mu * scale;
        for (int i = 0; i < n; i++) {
            const float* p = x + ((size_t)i * c + ch) * hw;
            float* q = y + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                float v = p[j] * scale + shift;
                q[j] = relu && v < 0.0f ? 0.0f : v;
            }
        }
    }
}

void cpu_batchnorm_forward_eval(float* y, const float* x, const float* gamma, const float* beta,
                                const float* running_mean, const float* running_var, int n, int c,
                                int hw, float eps, int relu) {
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float scale = gamma[ch] / sqrtf(running_var[ch] + eps);
        float shift = beta[ch] - running_mean[ch] * scale;
        for (int i = 0; i < n; i++) {
            const float* p = x + ((size_t)i * c + ch) * hw;
            float* q = y + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                float v = p[j] * scale + shift;
                q[j] = relu && v < 0.0f ? 0.0f : v;
            }
        }
    }
}

// With xhat = (x - mean) * invstd and dz = dy masked by the fused ReLU (y > 0):
//   dbeta = sum(dz), dgamma = sum(dz * xhat),
//   dx = gamma * invstd * (dz - dbeta / M - xhat * dgamma / M), M = n * hw.
void cpu_batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                            const float* y, const float* mean, const float* invstd, const float* gamma,
                            int n, int c, int hw, int relu, int accumulate) {
    double count = (double)n * hw;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float mu = mean[ch], is = invstd[ch];
        double sum_dz = 0.0, sum_dz_xhat = 0.0;
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                float dz = relu && y[off + j] <= 0.0f ? 0.0f : dy[off + j];
                sum_dz += dz;
                sum_dz_xhat += (double)dz * ((x[off + j] - mu) * is);
            }
        }
        dbeta[ch] += (float)sum_dz;
        dgamma[ch] += (float)sum_dz_xhat;
        if (!dx) continue;
        float k = gamma[ch] * is;
        float mean_dz = (float)(sum_dz / count), mean_dz_xhat = (float)(sum_dz_xhat / count);
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                float dz = relu && y[off + j] <= 0.0f ? 0.0f : dy[off + j];
                float xhat = (x[off + j] - mu) * is;
                float v = k * (dz - mean_dz - xhat * mean_dz_xhat);
                dx[off + j] = accumulate ? dx[off + j] + v : v;
            }
        }
    }
}
