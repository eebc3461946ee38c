// Batch normalization (PyTorch's BatchNorm2d) as the textbook equations, channel by channel, with the
// optional ReLU on its output. Channel ch's values are x[i][ch][j] for every image i < n and pixel
// j < hw: M = n * hw of them. All tensors are (n, c, hw); mean, invstd, gamma, beta and the
// running statistics are (c).
#include <math.h>

#include "ref_kernels.h"

// The fused ReLU, as relu_forward defines it.
static float relu_if(int relu, double v) { return relu && !(v > 0.0) ? 0.0f : (float)v; }

// Stores output value `at`: the float, or with y_bf16 its bf16 operand (nn/bf16.h: what every
// convolution reading it would round it to anyway).
static void store_y(float* y, int y_bf16, size_t at, float v) {
    if (y_bf16) ((uint16_t*)y)[at] = bf16_operand(v);
    else y[at] = v;
}
// Output value `at`, as stored.
static float y_at(const float* y, int y_bf16, size_t at) {
    return y_bf16 ? bf16_float(((const uint16_t*)y)[at]) : y[at];
}

// Training:  mean = sum(x) / M,  var = sum((x - mean)^2) / M  (biased),  invstd = 1 / sqrt(var + eps)
//            y = gamma * (x - mean) * invstd + beta   (then the ReLU)
//            running_mean = (1 - momentum) * running_mean + momentum * mean
//            running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)  (unbiased)
// mean and invstd are saved for the backward.
void ref_batchnorm_forward_train(float* y, float* mean, float* invstd, float* running_mean,
                                 float* running_var, const float* x, const float* gamma,
                                 const float* beta, int n, int c, int hw, float momentum, float eps,
                                 int relu, int y_bf16) {
    double M = (double)n * hw;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0, sq = 0.0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) sum += x[((size_t)i * c + ch) * hw + j];
        double mu = sum / M;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                double d = x[((size_t)i * c + ch) * hw + j] - mu;
                sq += d * d;
            }
        double var = sq / M, is = 1.0 / sqrt(var + eps);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t at = ((size_t)i * c + ch) * hw + j;
                store_y(y, y_bf16, at, relu_if(relu, gamma[ch] * (x[at] - mu) * is + beta[ch]));
            }
        mean[ch] = (float)mu, invstd[ch] = (float)is;
        running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * (float)mu;
        running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * (float)(var * M / (M - 1.0));
    }
}

// Evaluation: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta   (then the ReLU)
void ref_batchnorm_forward_eval(float* y, const float* x, const float* gamma, const float* beta,
                                const float* running_mean, const float* running_var, int n, int c,
                                int hw, float eps, int relu, int y_bf16) {
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double is = 1.0 / sqrt((double)running_var[ch] + eps);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t at = ((size_t)i * c + ch) * hw + j;
                store_y(y, y_bf16, at, relu_if(relu, gamma[ch] * (x[at] - (double)running_mean[ch]) * is + beta[ch]));
            }
    }
}

// With xhat = (x - mean) * invstd and dz = dy, or 0 where the fused ReLU's output y (as stored) is not > 0
// (dx stored as bf16 if dx_bf16, rounded as y is):
//   dbeta  += sum(dz),   dgamma += sum(dz * xhat)
//   dx (+)= gamma * invstd * (dz - sum(dz) / M - xhat * sum(dz * xhat) / M)     (dx may be NULL)
void ref_batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                            const float* y, const float* mean, const float* invstd, const float* gamma,
                            const float* beta, int n, int c, int hw, int relu, int y_bf16, int dx_bf16,
                            int accumulate) {
    (void)beta; // the mask is read from y, as defined (the CPU and CUDA backends recompute it)
    double M = (double)n * hw;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double sum_dz = 0.0, sum_dz_xhat = 0.0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t at = ((size_t)i * c + ch) * hw + j;
                double dz = relu && !(y_at(y, y_bf16, at) > 0.0f) ? 0.0 : dy[at];
                sum_dz += dz;
                sum_dz_xhat += dz * (x[at] - (double)mean[ch]) * invstd[ch];
            }
        dbeta[ch] += (float)sum_dz;
        dgamma[ch] += (float)sum_dz_xhat;
        if (!dx) continue;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t at = ((size_t)i * c + ch) * hw + j;
                double dz = relu && !(y_at(y, y_bf16, at) > 0.0f) ? 0.0 : dy[at];
                double xhat = (x[at] - (double)mean[ch]) * invstd[ch];
                double v = (double)gamma[ch] * invstd[ch] * (dz - sum_dz / M - xhat * sum_dz_xhat / M);
                store_y(dx, dx_bf16, at, accumulate ? (float)(y_at(dx, dx_bf16, at) + v) : (float)v);
            }
    }
}
